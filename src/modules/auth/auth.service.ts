import { randomBytes } from 'node:crypto';
import type { Database } from '../../db/database.js';
import { UnsealedAuditAppendError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { type AuditContext, type AuditEntry, formatAuditTime, recordAudit } from '../audit/audit.service.js';
import { signInActorOf } from '../audit/audit-actors.js';
import { userTarget } from '../audit/audit-target.js';
import { FirstRefusals } from '../audit/first-refusals.js';
import type { Metrics } from '../metrics/metrics.js';
import { costsLessThanCurrentHash, hashPassword, needsRehash, verifyPassword } from '../users/password.js';
import * as usersRepository from '../users/users.repository.js';
import * as throttleRepository from './auth-throttle.repository.js';
import { clientNetworkOf } from './client-network.js';

export interface SessionUser {
  id: number;
  username: string;
  role: 'admin' | 'user';
}

export interface LockoutSettings {
  /** Per (username, client address). */
  perAddress: throttleRepository.ThrottleRule;
  /** Per username across all addresses: slows a distributed guesser. */
  perUser: throttleRepository.ThrottleRule;
  /** Per client network across all usernames: stops one client spraying a password over every account. */
  perNetwork: throttleRepository.ThrottleRule;
}

export type SignInResult =
  | {
      outcome: 'ok';
      user: SessionUser;
      /** When the password checked was set (epoch ms, or null): the stamp of the session it signs in. */
      passwordChangedAt: number | null;
      /** The account's session epoch, read with its enabled flag: the session's other stamp. */
      sessionEpoch: number;
    }
  | { outcome: 'failed' }
  | { outcome: 'locked'; lockedUntil: Date; scopes: throttleRepository.LockScope[] };

export interface AuthServiceDeps {
  db: Database;
  metrics: Metrics;
  lockout: LockoutSettings;
  now: () => Date;
  /** The locks whose first refusal this process has audited; default: one shared by the process. */
  auditedLocks?: FirstRefusals;
}

// The locks whose first refused sign-in this process has audited (FirstRefusals): a lock's later
// refusals are counted only in auth_lockout_active_total and auth_login_failure_total{reason="locked"}.
const processAuditedLocks = new FirstRefusals();

/**
 * The locks that refused an attempt (its network's, its pair's, its username's rows), each with its
 * end: a lock that ends and starts again is a new lock.
 */
function lockKeysOf(key: throttleRepository.AttemptKey, scopes: throttleRepository.LockScope[], until: Date): string[] {
  return scopes.map(
    (scope) =>
      `${
        scope === 'network'
          ? `network ${key.network?.network ?? ''}`
          : scope === 'address'
            ? `address ${key.username} ${key.ip}`
            : `user ${key.username}`
      } until ${until.getTime()}`,
  );
}

// The row of auth_throttle that counts a username's failures from every address.
const ALL_ADDRESSES = '*';

let dummyHash: Promise<string> | undefined;
/** A real argon2id hash to verify against when the username is unknown, so both cost the same. */
function getDummyHash(): Promise<string> {
  if (!dummyHash) {
    const hashing = hashPassword(randomBytes(16).toString('hex'));
    dummyHash = hashing;
    // A failed hash (its thread closed under it) is not kept: the next sign-in tries again.
    hashing.catch(() => {
      if (dummyHash === hashing) dummyHash = undefined;
    });
  }
  return dummyHash;
}

/**
 * The throttle rows an attempt of `username` from `ip` is counted in: the pair's (an IPv6
 * address by its /64) and the username's, and with `isNetworkCounted` (sign-in, not the
 * change-password form) the client network's.
 */
function attemptKey(
  deps: AuthServiceDeps,
  username: string,
  ip: string,
  isNetworkCounted: boolean,
): throttleRepository.AttemptKey {
  // An address spelled '*' (a forwarded header can say anything) must not be the per-user row.
  const address = ip === ALL_ADDRESSES ? 'unknown' : ip;
  return {
    username,
    // An IPv6 address as its /64, as in the network's row: counted one by one, a client rotating
    // through its 2^64 addresses was never locked by this rule, and reached the per-username lock
    // (the account locked from everywhere) in seconds, which one IPv4 address cannot.
    ip: clientNetworkOf(address),
    addressRule: deps.lockout.perAddress,
    userRule: deps.lockout.perUser,
    network: isNetworkCounted ? networkKey(deps, ip) : undefined,
  };
}

/** The row of auth_network_throttle that counts the failures of every username from `ip` (IPv6: its /64). */
function networkKey(deps: AuthServiceDeps, ip: string): throttleRepository.NetworkKey {
  return { network: clientNetworkOf(ip), rule: deps.lockout.perNetwork };
}

/** A username's longest (users.username, auth_throttle.username and audit_log.actor are varchar(64)). */
const MAX_USERNAME_LENGTH = 64;

/**
 * A username as sign-in looks it up, counts and audits it: trimmed, lower case. One longer than a
 * username can be is no account's: it used to be cut to 64 characters, so a name typed longer whose
 * first 64 characters were an account's name signed in to that account. It is kept as its first 63
 * characters and "…", which fits the throttle's and the audit log's 64 and is never a username, so it
 * fails as an unknown name does and is counted as one, never against the account.
 */
export function normalizedUsernameOf(typed: string): string {
  // Counted in characters, as PostgreSQL counts varchar(64): an emoji is one, not two UTF-16 units.
  const characters = Array.from(typed.trim().toLowerCase());
  if (characters.length <= MAX_USERNAME_LENGTH) return characters.join('');
  return `${characters.slice(0, MAX_USERNAME_LENGTH - 1).join('')}…`;
}

/**
 * Checks a sign-in attempt: lockouts first (even the right password is refused while
 * locked), then the password, always at the cost of one argon2 verify. The attempt is
 * counted as a failure before its password is checked (so concurrent attempts, from any
 * worker, check no more passwords than the lockout allows) and a success forgets it with
 * the user's other failures. Every outcome is counted and audited; the caller shows one
 * neutral message for every failure.
 */
export async function signIn(
  deps: AuthServiceDeps,
  attempt: { username: string; password: string; ip: string; userAgent: string | null },
): Promise<SignInResult> {
  const { metrics } = deps;
  const db = deps.db.prisma;
  const now = deps.now();
  const username = normalizedUsernameOf(attempt.username);
  const key = attemptKey(deps, username, attempt.ip, true);
  const reservation = await throttleRepository.reserveAttempt(deps.db.pool, key, now);
  // Each entry targets the account it is about (user:<name>), so the user's History lists their
  // sign-ins, failures and locks. A name no account has gets no target: its actor already keeps it
  // as typed, and a target would file a stranger's typing (often a password) under a name that an
  // account created later would inherit in its History. Typed as one of the log's own actors (cli,
  // system, provider:…), it is written as `(reserved name)` with the name in its details.
  const signInActor = signInActorOf(username, reservation.credentials !== null);
  const audit = {
    actor: signInActor.actor,
    ip: attempt.ip,
    userAgent: attempt.userAgent,
    target: reservation.credentials ? userTarget(reservation.credentials.username) : null,
  };
  if (reservation.endedLocks > 0) metrics.authLockoutEnd.inc(reservation.endedLocks);
  if (reservation.outcome === 'locked') {
    metrics.authLoginFailure.inc({ reason: 'locked' });
    metrics.authLockoutActive.inc();
    const auditedLocks = deps.auditedLocks ?? processAuditedLocks;
    const lockKeys = lockKeysOf(key, reservation.scopes, reservation.lockedUntil);
    if (auditedLocks.isFirst(lockKeys, reservation.lockedUntil, now)) {
      await sayingWhatBecameOf(
        recordAudit(
          deps.db,
          {
            ...audit,
            action: 'login.failure',
            status: 'denied',
            details: { reason: 'locked', scope: reservation.scopes, ...signInActor.details },
          },
          now,
        ),
        NOT_SIGNED_IN,
      );
    }
    return { outcome: 'locked', lockedUntil: reservation.lockedUntil, scopes: reservation.scopes };
  }

  const { credentials } = reservation;
  const isPasswordRight = await verifyPassword(credentials?.passwordHash ?? (await getDummyHash()), attempt.password);
  if (!credentials || !isPasswordRight || credentials.isDisabled) {
    // A hash still to be replaced (werkzeug's, or argon2 made otherwise than now) costs what its own
    // parameters say, 1,000 pbkdf2 rounds as well as 600,000: refused after it alone, a cheap one
    // told an account's existence (and its age) apart from an unknown name's argon2 check. The
    // refusal also pays that check, so it is never quicker than an unknown name's. A hash to be
    // replaced because it is stronger than now costs that much already, and does not pay it again.
    if (credentials && costsLessThanCurrentHash(credentials.passwordHash))
      await verifyPassword(await getDummyHash(), attempt.password);
    const reason = credentials && isPasswordRight ? 'disabled' : 'bad_credentials';
    metrics.authLoginFailure.inc({ reason });
    const lock = await sayingWhatBecameOf(
      recordCountedFailure(
        deps,
        reservation,
        now,
        { ...audit, action: 'login.failure', status: 'failed', details: { reason, ...signInActor.details } },
        signInActor.details,
      ),
      `${NOT_SIGNED_IN}${STILL_COUNTED}`,
    );
    return lock ? { outcome: 'locked', ...lock } : { outcome: 'failed' };
  }

  // The attempt was counted: forgetting it (the user's failures, and its own count in the
  // network's row) is one statement, sent beside the audit append rather than before it.
  await sayingWhatBecameOf(
    Promise.all([
      throttleRepository.forgetFailures(deps.db.pool, username, key.network),
      (async () => {
        if (needsRehash(credentials.passwordHash)) {
          const rehashed = await hashPassword(attempt.password);
          await usersRepository.rehashPassword(db, credentials.id, credentials.passwordHash, rehashed);
        }
        metrics.authLoginSuccess.inc();
        await recordAudit(deps.db, { ...audit, action: 'login.success', status: 'ok' }, now);
      })(),
    ]),
    NOT_SIGNED_IN,
  );
  return {
    outcome: 'ok',
    user: { id: credentials.id, username: credentials.username, role: credentials.role },
    passwordChangedAt: credentials.passwordChangedAt,
    sessionEpoch: credentials.sessionEpoch,
  };
}

/** What became of a sign-in whose entry was refused (UnsealedAuditAppendError), as its message's first words. */
const NOT_SIGNED_IN = 'You were not signed in';
/** What else became of an attempt counted against the lockout before its entry was refused. */
const STILL_COUNTED = ', and this attempt still counts against the sign-in lockout';
/** What became of a password change whose check's entry was refused. */
const PASSWORD_NOT_CHANGED = 'Your password was not changed';

/**
 * `work`'s answer; an entry of it refused (UnsealedAuditAppendError) says `outcome` of the request
 * instead of "Nothing was changed": the attempt was counted before its entry, and the count stays.
 */
async function sayingWhatBecameOf<T>(work: Promise<T>, outcome: string): Promise<T> {
  try {
    return await work;
  } catch (error) {
    throw error instanceof UnsealedAuditAppendError ? error.withOutcome(outcome) : error;
  }
}

/**
 * Audits a wrong password whose attempt was counted before the check (as `failure`), and
 * the locks that count started, if any (as `login.lockout_start`, with `lockDetails`): they
 * stand now that the password was wrong. Returns their latest end and scopes, or null.
 */
async function recordCountedFailure(
  deps: AuthServiceDeps,
  reservation: Extract<throttleRepository.Reservation, { outcome: 'counted' }>,
  now: Date,
  failure: AuditEntry,
  lockDetails: Record<string, unknown> = {},
): Promise<{ lockedUntil: Date; scopes: throttleRepository.LockScope[] } | null> {
  await recordAudit(deps.db, failure, now);
  const { startedLocks, lockedUntil } = reservation;
  if (startedLocks.length === 0 || !lockedUntil) return null;
  deps.metrics.authLockoutStart.inc();
  await recordAudit(
    deps.db,
    {
      actor: failure.actor,
      ip: failure.ip,
      userAgent: failure.userAgent,
      // The failure's account (none for a name no account has): the lock is in its History too.
      target: failure.target,
      action: 'login.lockout_start',
      status: 'denied',
      details: { scope: startedLocks, until: lockedUntil.toISOString(), ...lockDetails },
    },
    now,
  );
  // Not auth_lockout_active_total: this attempt was checked and refused as a wrong password
  // (counted so by the caller); only attempts refused unchecked during a lock are counted there.
  return { lockedUntil, scopes: startedLocks };
}

export type PasswordChangeCheck =
  | {
      outcome: 'ok';
      /** The stored hash the current password was checked against: the change replaces only it. */
      checkedHash: string;
      /** The account's session epoch, read with its enabled flag: the stamp of the session the change goes on in. */
      sessionEpoch: number;
    }
  | { outcome: 'failed' }
  | { outcome: 'disabled' }
  | { outcome: 'locked'; lockedUntil: Date };

/**
 * Checks the current password a signed-in user gives to change it, under the sign-in
 * lockout: the attempt is counted in the same rows as a sign-in before the check (one budget
 * for both forms, so a stolen session cookie is no way around the lockout), and while
 * locked even the right one is refused. It costs one argon2 verify whatever the outcome,
 * locked included. Failures are audited as `user.password_change` the way sign-in audits its
 * own; after `ok`, forgetting the counted attempt and the other failures is the caller's,
 * with the change (`throttleRepository.reset` in its transaction).
 */
export async function checkPasswordForChange(
  deps: AuthServiceDeps,
  attempt: { user: SessionUser; password: string; context: AuditContext },
): Promise<PasswordChangeCheck> {
  const { metrics } = deps;
  const now = deps.now();
  const { username } = attempt.user;
  const ip = attempt.context.ip ?? 'unknown';
  const audit = { ...attempt.context, action: 'user.password_change', target: userTarget(username) };

  // Not counted in the network's row: see docs/security.md ("Lockout").
  const reservation = await throttleRepository.reserveAttempt(deps.db.pool, attemptKey(deps, username, ip, false), now);
  if (reservation.endedLocks > 0) metrics.authLockoutEnd.inc(reservation.endedLocks);
  const { credentials } = reservation;
  const isPasswordRight = await verifyPassword(credentials?.passwordHash ?? (await getDummyHash()), attempt.password);
  if (reservation.outcome === 'locked') {
    metrics.authLockoutActive.inc();
    await sayingWhatBecameOf(
      recordAudit(
        deps.db,
        { ...audit, status: 'denied', details: { reason: 'locked', scope: reservation.scopes } },
        now,
      ),
      PASSWORD_NOT_CHANGED,
    );
    return { outcome: 'locked', lockedUntil: reservation.lockedUntil };
  }
  // Disabled since this request's session was read: a change would sign a new session in.
  if (credentials?.isDisabled) {
    await sayingWhatBecameOf(
      recordAudit(deps.db, { ...audit, status: 'denied', details: { reason: 'disabled' } }, now),
      PASSWORD_NOT_CHANGED,
    );
    return { outcome: 'disabled' };
  }
  if (!credentials || !isPasswordRight) {
    const lock = await sayingWhatBecameOf(
      recordCountedFailure(
        deps,
        reservation,
        now,
        { ...audit, status: 'failed', details: { reason: 'bad_current_password' } },
        { via: 'password_change' },
      ),
      `${PASSWORD_NOT_CHANGED}${STILL_COUNTED}`,
    );
    return lock ? { outcome: 'locked', lockedUntil: lock.lockedUntil } : { outcome: 'failed' };
  }
  return { outcome: 'ok', checkedHash: credentials.passwordHash, sessionEpoch: credentials.sessionEpoch };
}

/** The whole seconds left of a lock, rounded up (at least 1): its Retry-After, and what formatTimeLeft writes. */
export function secondsLeft(until: Date, now: Date): number {
  return Math.max(1, Math.ceil((until.getTime() - now.getTime()) / 1000));
}

/** The time left of a lock as the forms show it: "4 min 05 s", "12 s". */
export function formatTimeLeft(until: Date, now: Date): string {
  const seconds = secondsLeft(until, now);
  const minutes = Math.floor(seconds / 60);
  return minutes > 0 ? `${minutes} min ${String(seconds % 60).padStart(2, '0')} s` : `${seconds} s`;
}

/** The user behind a session, or null when they were removed or disabled since. */
export async function findSessionUser(db: Database['prisma'], id: number): Promise<SessionUser | null> {
  const user = await usersRepository.findSessionUserById(db, id);
  if (!user || user.isDisabled) return null;
  return toSessionUser(user);
}

/** What a session keeps of a user (id, username, role), whatever else the record given carries. */
export function toSessionUser(user: SessionUser): SessionUser {
  return { id: user.id, username: user.username, role: user.role };
}

/**
 * Audits a sign-out of `user`, targeting their account as their sign-in's entry does. Never rejects:
 * an entry refused (an instance without AUDIT_CHAIN_KEY on a sealed log, UnsealedAuditAppendError) or
 * not written is logged at error level, and the sign-out goes on. Refused, it used to fail the request
 * and leave the session signed in, the worse failure: someone on a shared computer walked away signed in.
 */
export async function recordSignOut(db: Database, user: SessionUser, context: AuditContext, logger: Logger) {
  try {
    await recordAudit(db, { ...context, action: 'logout', target: userTarget(user.username), status: 'ok' });
  } catch (error) {
    // Said before the sign-out goes on, which may still fail (its session's row): not "signed out".
    const what = `the sign-out of ${user.username} was not recorded; signing them out all the same`;
    logger.error(
      { err: error, username: user.username },
      error instanceof UnsealedAuditAppendError
        ? `audit entry refused: ${what}: ${error.logReason}`
        : `audit entry not written: ${what}: ${(error as Error).message}`,
    );
  }
}

/** How long a user's refusal at an admin page stands for their next ones there in the audit log. */
export const FORBIDDEN_AUDIT_WINDOW_MS = 60 * 60 * 1000;

/**
 * Audits a signed-in user's refusal at an admin page, the first at that page (`pageKey`) in
 * FORBIDDEN_AUDIT_WINDOW_MS: each one an entry, a researcher's script could append to the log as fast
 * as it could send. The caller counts every refusal in its metric.
 */
export async function recordAdminPageRefusal(
  deps: { db: Database; refusals: FirstRefusals },
  refusal: { pageKey: string; path: string; method: string; context: AuditContext },
  now: Date,
): Promise<void> {
  const until = new Date(now.getTime() + FORBIDDEN_AUDIT_WINDOW_MS);
  if (!deps.refusals.isFirst([refusal.pageKey], until, now)) return;
  await recordAudit(deps.db, {
    ...refusal.context,
    action: 'admin.forbidden',
    target: refusal.path,
    status: 'denied',
    details: { method: refusal.method },
  });
}

const ONLY_ADMINS = 'Only admins can do this';

/**
 * Why an admin route refused signed-in `user`, a non-admin. An admin demoted by another (in another
 * tab) who sent a form from a page opened before read only "Only admins can do this.": not that the
 * account had lost the role, nor that nothing was done. `isChange`: the request was a form or an API
 * change, which the refusal did not make. `signedInAsAdminAt`: when the session was signed in as an
 * admin (SessionData.signedInAsAdminAt), if it was. The audit log names who demoted the account and
 * when; a demotion it does not hold (an operator's UPDATE in the database) is told from that session,
 * as is one audited before the session was signed in as an admin, which a promotion since undid (not
 * named: it is not the change that took the role). `flashAnswer` ends the warning of a browser sent to
 * My usage.
 */
export async function describeAdminRefusal(
  db: Database,
  user: SessionUser,
  isChange: boolean,
  timeZone: string,
  signedInAsAdminAt?: number,
): Promise<{ message: string; flashAnswer: string }> {
  const audited = await usersRepository.findDemotion(db.prisma, user.id);
  const demotion =
    audited && (signedInAsAdminAt === undefined || audited.at.getTime() >= signedInAsAdminAt) ? audited : undefined;
  if (!demotion && signedInAsAdminAt === undefined) {
    return {
      message: isChange ? `${ONLY_ADMINS}, so nothing was changed.` : `${ONLY_ADMINS}.`,
      flashAnswer: `${user.username} is not one`,
    };
  }
  const changed = demotion
    ? `changed by ${demotion.actor} at ${formatAuditTime(demotion.at, timeZone)}`
    : 'its role was changed since you signed in';
  return {
    message: isChange
      ? `Your account is no longer an administrator (${changed}), so nothing was changed.`
      : `Your account is no longer an administrator (${changed}): only admins can do this.`,
    flashAnswer: `${user.username} is no longer one (${changed})`,
  };
}

/**
 * The sign-in and sign-out pages, which no one signs in to land on: `/login?next=/logout` led, once
 * signed in, to the Sign out page (a sign-in that looked as if it had not worked, one click from
 * signing out). Lower case, as the router matches paths whatever their case.
 */
const SIGN_IN_OUT_PATHS = new Set(['/login', '/logout']);

/**
 * A `next` path that stays on this site and is not the sign-in or sign-out page, or undefined. A
 * string check only: POST /login reads it.
 */
export function toSafeNextPath(next: unknown): string | undefined {
  if (typeof next !== 'string' || !isLocalPath(next)) return undefined;
  try {
    const base = 'http://local.invalid';
    const url = new URL(next, base);
    if (url.origin !== base) return undefined;
    const path = `${url.pathname}${url.search}`;
    // Parsing removes dot segments, tabs and newlines: /.//evil.example and /%2e//evil.example
    // come out as //evil.example, which a browser follows off-site. What is returned is checked.
    if (!isLocalPath(path)) return undefined;
    // The router takes /logout/ and /LogOut for /logout too.
    return SIGN_IN_OUT_PATHS.has(url.pathname.toLowerCase().replace(/\/+$/, '')) ? undefined : path;
  } catch {
    return undefined;
  }
}

function isLocalPath(path: string): boolean {
  return path.startsWith('/') && !path.startsWith('//') && !path.includes('\\');
}
