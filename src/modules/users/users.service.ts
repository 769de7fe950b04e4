import { randomInt } from 'node:crypto';
import type { Prisma } from '@prisma/client';
import type { Db } from '../../db/database.js';
import { counted } from '../../shared/counted.js';
import {
  ACCOUNT_DISABLED_MESSAGE,
  AccountDisabledError,
  BadRequestError,
  ConflictError,
  InvalidFieldsError,
  isUniqueViolation,
  notFoundById,
  TooManyRequestsError,
} from '../../shared/errors.js';
import { pageCountOrNotFound } from '../../shared/paging.js';
import { toolCommand } from '../../shared/tool-commands.js';
import { type AuditContext, appendAudit, recordAudit } from '../audit/audit.service.js';
import { SYSTEM_ACTOR } from '../audit/audit-actors.js';
import { userTarget } from '../audit/audit-target.js';
import { FirstRefusals } from '../audit/first-refusals.js';
import {
  type AuthServiceDeps,
  checkPasswordForChange,
  formatTimeLeft,
  type SessionUser,
  secondsLeft,
} from '../auth/auth.service.js';
import * as throttleRepository from '../auth/auth-throttle.repository.js';
import * as receiptsRepository from '../receipts/receipts.repository.js';
import { hashPassword, verifyPassword } from './password.js';
import * as usersRepository from './users.repository.js';
import { CREATE_USER_FIELD_LABELS, usernameReadAsNoteOf } from './users.schema.js';

export type { UserRecord } from './users.repository.js';

/**
 * Letters and digits that cannot be taken for one another when read off a screen or a printout:
 * no 0, O, o, 1, l or I (nor base64url's - and _, easy to miss at an edge). 56 characters.
 */
export const GENERATED_PASSWORD_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789';
/** 17 of those carry 98.7 bits, no fewer than the 96 of the 16 base64url characters generated before. */
export const GENERATED_PASSWORD_LENGTH = 17;

/** A password a person can type from the screen once. randomInt draws each character without modulo bias. */
export function generatePassword(): string {
  return Array.from(
    { length: GENERATED_PASSWORD_LENGTH },
    () => GENERATED_PASSWORD_ALPHABET[randomInt(GENERATED_PASSWORD_ALPHABET.length)],
  ).join('');
}

/** The user with this username, if any. */
export function findUserByUsername(db: Db, username: string) {
  return usersRepository.findByUsername(db, username);
}

/** Users a page of /admin/users (and /admin/tiers) lists: 503 on one page made it 658 KB. */
export const USERS_PAGE_SIZE = 50;

/** A list of users' search and filters (/admin/users; /admin/tiers searches alone). */
export interface UserListQuery {
  search?: string | undefined;
  role?: 'admin' | 'user' | undefined;
  status?: 'active' | 'disabled' | undefined;
  page: number;
}

/** What the users of `query` match, as its page and its 404 say it ("“zed”, role admin"); undefined for everyone. */
export function userListMatchOf(query: Omit<UserListQuery, 'page'>): string | undefined {
  const parts = [
    ...(query.search ? [`“${query.search}”`] : []),
    ...(query.role ? [`role ${query.role}`] : []),
    ...(query.status ? [`status ${query.status}`] : []),
  ];
  return parts.length === 0 ? undefined : parts.join(', ');
}

/**
 * The pages of a list of `count` users found for `query` (/admin/users, /admin/tiers): a page
 * past the last is a 404 saying what there is, as the receipt lists answer it.
 */
export function userListPageCount(count: number, query: UserListQuery): number {
  return pageCountOrNotFound(count, USERS_PAGE_SIZE, query.page, (pages) => {
    const matched = userListMatchOf(query);
    const subject = matched ? `${counted(count, 'user')} match ${matched}` : `There are ${counted(count, 'user')}`;
    return `${subject} on ${counted(pages, 'page')}`;
  });
}

/** The repository's filter of `query`: its status as whether the account is disabled. */
function userListFilterOf(query: UserListQuery): usersRepository.UserListFilter {
  return {
    search: query.search,
    role: query.role,
    isDisabled: query.status === undefined ? undefined : query.status === 'disabled',
  };
}

/**
 * What /admin/users refuses in its page, a page past the last (404), for a HEAD (a link checker,
 * `curl -I`), which answers the status and headers of its GET and used to read the page's users and
 * their sign-in locks for nothing: the users found counted, none read. Page 1 is always there (with
 * no one found, it says so) and needs no query.
 */
export async function checkUserListPage(db: Db, query: UserListQuery): Promise<void> {
  if (query.page === 1) return;
  userListPageCount(await usersRepository.countUsers(db, userListFilterOf(query)), query);
}

/**
 * A page of /admin/users: the users whose name contains `search` (everyone without one), of a role
 * and a status when asked, each with the end of its running sign-in lock (`lockedUntil`, null when it
 * has none) at `now`.
 */
export async function listUsers(db: Db, query: UserListQuery, now: Date) {
  const { rows, count } = await usersRepository.listPage(db, {
    ...userListFilterOf(query),
    offset: (query.page - 1) * USERS_PAGE_SIZE,
    limit: USERS_PAGE_SIZE,
  });
  const pageCount = userListPageCount(count, query);
  const locks = await throttleRepository.findAccountLocks(
    db,
    rows.map((row) => row.username),
    now,
  );
  const users = rows.map((row) => ({ ...row, lockedUntil: locks.get(row.username) ?? null }));
  return { users, page: query.page, pageCount, count };
}

/**
 * Why a new user's name is refused when an account has it. A disabled one is said so: the admin creating
 * a returning researcher again was told only that the name existed, and the way back is that account,
 * enabled ("Offboarding a user"): its receipts and history are under the name, and it is never replaced.
 */
function takenUsernameReasonOf(username: string, existing?: { isDisabled: boolean }): string {
  return existing?.isDisabled
    ? `A user named "${username}" already exists and is disabled: enable it to give the account back, with its receipts and history.`
    : `A user named "${username}" already exists.`;
}

/**
 * Creates a user; returns the password too when it was generated. `usernameAsTyped` is the name as
 * the form had it (Zoe, read as zoe): a name taken says so, as the creation's confirmation does.
 */
export async function createUser(
  db: Db,
  input: { username: string; role: 'admin' | 'user'; password?: string; usernameAsTyped?: string },
  context: AuditContext,
): Promise<{ user: usersRepository.UserRecord; generatedPassword?: string }> {
  const generatedPassword = input.password ? undefined : generatePassword();
  const passwordHash = await hashPassword(input.password || (generatedPassword as string));
  // "A user named "zoe" already exists." alone, to Zoe typed, did not say Zoe had been read as zoe.
  const readAs =
    input.usernameAsTyped === undefined ? undefined : usernameReadAsNoteOf(input.usernameAsTyped, input.username);
  const taken = (existing?: { isDisabled: boolean }) =>
    new ConflictError(
      `${takenUsernameReasonOf(input.username, existing)}${readAs ? ` Username ${readAs}` : ''}`,
      { field: 'username', username: input.username },
      readAs ? { publicFields: { usernameAsTyped: input.usernameAsTyped?.trim() } } : undefined,
    );
  try {
    const user = await db.$transaction(async (tx) => {
      const existing = await usersRepository.findByUsername(tx, input.username);
      if (existing) throw taken(existing);
      const created = await usersRepository.insert(tx, { username: input.username, passwordHash, role: input.role });
      await appendAudit(tx, {
        ...context,
        action: 'user.create',
        target: userTarget(input.username),
        status: 'ok',
        details: { role: input.role },
      });
      return created;
    });
    return { user, generatedPassword };
  } catch (error) {
    // Created meanwhile by another request (a double click on Create) that committed after this
    // one looked: the same refusal, where the unique index's error gave a bare "This conflicts
    // with something that already exists." page instead of the form.
    if (isUniqueViolation(error)) throw taken();
    throw error;
  }
}

async function requireUser(db: Db, id: number) {
  const user = await usersRepository.findById(db, id);
  if (!user) throw notFoundById('User', id);
  return user;
}

/**
 * Sets a new password (generated when none is given) and ends the user's sessions, but the one
 * named `keepSessionId` (an admin resetting their own: the caller signs it in again on a new id,
 * with the new stamp). It lifts the account's sign-in lock too, as Unlock sign-in does: the
 * failures were against the old password, and the user given the new one (often because they
 * were locked out) could not use it until the lock ended. Returns the stamp, and the end of the
 * lock it lifted (null when none ran) with how many locks it ended (for the metrics).
 */
export async function resetPassword(
  db: Db,
  id: number,
  password: string | undefined,
  context: AuditContext,
  options: {
    keepSessionId?: string;
    now?: Date;
    /**
     * When the password was set as the admin's page showed it (ms; null: never stamped): a reset
     * of a password set since (another admin's reset, the user's own change) is refused. Left
     * out (a script), nothing is compared.
     */
    basedOnPasswordChangedAt?: number | null;
    /** How the refusal writes the time of that change (the pages' time zone). */
    formatTime?: (at: Date) => string;
  } = {},
) {
  const user = await requireUser(db, id);
  const generatedPassword = password ? undefined : generatePassword();
  const passwordHash = await hashPassword(password || (generatedPassword as string));
  const now = options.now ?? new Date();
  const { passwordChangedAt, unlocked } = await db.$transaction(async (tx) => {
    const stamp = await usersRepository.lockPasswordStamp(tx, id);
    if (stamp === undefined) throw notFoundById('User', id);
    const basedOn = options.basedOnPasswordChangedAt;
    if (basedOn !== undefined && (stamp?.getTime() ?? null) !== basedOn) {
      const last = await usersRepository.findLastPasswordSet(tx, user.username);
      throw passwordSetMeanwhileError(user.username, last, stamp, options.formatTime);
    }
    const updated = await usersRepository.updatePasswordHash(tx, id, passwordHash);
    const endedSessions = await usersRepository.signOutOtherSessionsOf(tx, id, 'password_reset', {
      exceptSessionId: options.keepSessionId,
    });
    // Every failure was typed against the old password: kept (a lock's too), they locked the user out
    // at the first typo of the password just handed over, as a change of their own forgets them.
    const lifted = await throttleRepository.forgetAccountFailures(tx, user.username, now);
    await appendAudit(tx, {
      ...context,
      action: 'user.password_reset',
      target: userTarget(user.username),
      status: 'ok',
      // Whether the password was generated or chosen (never the password), and the user's sessions
      // it ended: the entry said neither, so whoever read it could not tell who knew the password.
      details: {
        isPasswordGenerated: generatedPassword !== undefined,
        endedSessions,
        ...(lifted.lockedUntil ? { lockedUntil: lifted.lockedUntil.toISOString() } : {}),
      },
    });
    return { passwordChangedAt: updated.passwordChangedAt, unlocked: lifted };
  });
  return {
    user,
    generatedPassword,
    passwordChangedAt: passwordChangedAt?.getTime() ?? null,
    lockedUntil: unlocked.lockedUntil,
    endedLocks: unlocked.endedLocks,
  };
}

/**
 * Said after a new password is set for a disabled account: a users page opened before the disable still
 * offers Reset password as for an active one, and the admin handed over a password that signs no one in.
 */
export const DISABLED_ACCOUNT_PASSWORD_NOTE =
  'Their account is disabled: they cannot sign in with it until an admin enables it.';

/** Said after a disabled account is made an admin, in place of "The admin pages open at their next sign-in.". */
export const DISABLED_ACCOUNT_PROMOTION_NOTE =
  'Their account is disabled: the admin pages open once an admin enables it and they sign in.';

/**
 * The 409 for a reset from a page opened before the password was set again: the admin who set it
 * first was shown the new one (or chose it), and overwriting it left that admin handing the user a
 * password that no longer worked, while both pages said "changed".
 */
function passwordSetMeanwhileError(
  username: string,
  last: { actor: string; action: string; at: Date } | undefined,
  stamp: Date | null,
  formatTime: (at: Date) => string = (at) => at.toISOString(),
) {
  const at = last?.at ?? stamp;
  const when = at ? ` at ${formatTime(at)}` : '';
  const how = !last
    ? `was changed${when}, after this page was opened`
    : last.action === 'user.password_reset'
      ? `was reset by ${last.actor}${when}, after this page was opened, and ${last.actor} has the new one`
      : last.action === 'user.create'
        ? `was set by ${last.actor}${when}, after this page was opened`
        : `was changed by ${last.actor}${when}, after this page was opened`;
  return new ConflictError(
    `The password of ${username} ${how}; yours was not set. Reload the page to reset it again, only if it still needs a new password.`,
    { username },
  );
}

/**
 * The signed-in user changes their own password after proving the current one, under the
 * sign-in lockout. Every other session of theirs ends, as after an admin's reset: whoever
 * holds one may be who the change is meant to shut out. `sessionId` is the session making
 * the change; it stays (the caller gives it a new id). Answers how many other sessions ended.
 */
export async function changeOwnPassword(
  auth: AuthServiceDeps,
  user: SessionUser,
  change: { current: string; password: string; sessionId: string },
  context: AuditContext,
): Promise<{ endedSessions: number; passwordChangedAt: number; sessionEpoch: number }> {
  const check = await checkPasswordForChange(auth, { user, password: change.current, context });
  if (check.outcome === 'locked') {
    const now = auth.now();
    // What the lock means, not only how long: it is the sign-in lock (one budget for both forms), so
    // a researcher who signed out to start again found sign-in refused too, and did not know an
    // administrator could end the wait. The network's lock never refuses this form: the pair's or
    // the username's, which an administrator can lift, is the one running.
    throw new TooManyRequestsError(
      `Too many failed attempts. Try again in ${formatTimeLeft(check.lockedUntil, now)}. Until then even the right password is refused, here and at sign-in: stay signed in meanwhile; an administrator can lift the lock sooner.`,
      secondsLeft(check.lockedUntil, now),
    );
  }
  if (check.outcome === 'failed') throw new BadRequestError('The current password is not right.', { field: 'current' });
  if (check.outcome === 'disabled') throw new AccountDisabledError();
  // Only now that the current password is proven: refused before the check, a wrong current password
  // typed as the new one too was told it "must differ from the current password", naming the wrong
  // one as current (the researcher then signed in with it), and the attempt was not counted.
  if (change.password === change.current) {
    // The check counted this attempt before the password was known right: forget it, as a change does.
    await throttleRepository.reset(auth.db.prisma, user.username);
    throw new InvalidFieldsError({ password: 'must differ from the current password' }, { password: 'New password' });
  }
  const passwordHash = await hashPassword(change.password);
  const now = auth.now();
  const changed = await auth.db.prisma.$transaction(async (tx) => {
    // Only over the password it proved: two changes proving the same one at once (two tabs, or
    // whoever else holds a session and the old password) must not both win, the later unseen.
    const passwordChangedAt = await usersRepository.replaceProvedPassword(tx, user.id, check.checkedHash, passwordHash);
    if (!passwordChangedAt) return null;
    const endedSessions = await usersRepository.signOutOtherSessionsOf(tx, user.id, 'password_change', {
      exceptSessionId: change.sessionId,
    });
    // The check counted this attempt before the password was known right: forget it with the rest.
    await throttleRepository.reset(tx, user.username);
    await appendAudit(
      tx,
      {
        ...context,
        action: 'user.password_change',
        target: userTarget(user.username),
        status: 'ok',
        details: { endedSessions },
      },
      now,
    );
    return { endedSessions, passwordChangedAt: passwordChangedAt.getTime(), sessionEpoch: check.sessionEpoch };
  });
  if (!changed) {
    // Audited as a wrong current password is, in a transaction of its own: the change's rolled back.
    await recordAudit(
      auth.db,
      {
        ...context,
        action: 'user.password_change',
        target: userTarget(user.username),
        status: 'failed',
        details: { reason: 'changed_meanwhile' },
      },
      now,
    );
    throw new BadRequestError('The current password is not right: it was changed while this form was sent.', {
      field: 'current',
    });
  }
  return changed;
}

/** How long a user's own sign-out of other sessions that ended none stands for their next ones in the audit log. */
export const QUIET_SIGN_OUT_AUDIT_WINDOW_MS = 60 * 60 * 1000;

/**
 * The users whose own sign-out of other sessions that ended none this process has audited
 * (FirstRefusals): it needs no password and has no rate limit, so each one audited let a
 * researcher's loop append to the log, which nothing may delete, as fast as it could send.
 */
const processQuietSignOuts = new FirstRefusals();

/**
 * Sign out everywhere: signs out every session of user `id` (a lab computer left signed in, say),
 * which until then only a change of password did. Done by the user themselves (`acting.userId` is
 * `id`: the user's own from /account, or an admin's of their own account) it keeps the session
 * making it, `acting.sessionId`, which the caller signs in again on a new id; done by an admin to
 * someone else it ends them all. Whoever holds an ended session is told which of the two it was
 * (`signedOutBy`). Audited as `user.sessions_end` with how many live sessions it ended, counted
 * as a password change counts them; a disabled user, whose sessions the disable ended, has 0. One
 * of their own that ended none is audited the first time in QUIET_SIGN_OUT_AUDIT_WINDOW_MS only.
 */
export async function endSessions(
  db: Db,
  id: number,
  context: AuditContext,
  acting: { userId: number; sessionId: string; now: Date },
): Promise<{ user: usersRepository.UserRecord; endedSessions: number; isOwn: boolean }> {
  const isOwn = id === acting.userId;
  return db.$transaction(async (tx) => {
    const user = await usersRepository.findById(tx, id);
    if (!user) throw notFoundById('User', id);
    const endedSessions = await usersRepository.signOutOtherSessionsOf(
      tx,
      id,
      isOwn ? 'sessions_end' : 'sessions_end_by_admin',
      { exceptSessionId: isOwn ? acting.sessionId : undefined, at: acting.now },
    );
    const until = new Date(acting.now.getTime() + QUIET_SIGN_OUT_AUDIT_WINDOW_MS);
    const isQuietRepeat =
      isOwn && endedSessions === 0 && !processQuietSignOuts.isFirst([`user ${id}`], until, acting.now);
    if (isQuietRepeat) return { user, endedSessions, isOwn };
    await appendAudit(
      tx,
      {
        ...context,
        action: 'user.sessions_end',
        target: userTarget(user.username),
        status: 'ok',
        details: { endedSessions },
      },
      acting.now,
    );
    return { user, endedSessions, isOwn };
  });
}

/**
 * Lifts a user's sign-in lockout before it ends (an admin on /admin/users, or `npm run
 * user:unlock`): their failure counts and locks go, from every address, in the transaction of
 * the audit entry naming who lifted whose (`user.unlock_sign_in`, with the end of the lock that
 * was running). With no lock running nothing changes and nothing is audited; the end is null.
 * Returns that end too, and how many locks it ended (for the metrics).
 */
export async function unlockSignIn(db: Db, id: number, context: AuditContext, now: Date) {
  const user = await requireUser(db, id);
  const { lockedUntil, endedLocks } = await db.$transaction(async (tx) => {
    const unlocked = await throttleRepository.unlockAccount(tx, user.username, now);
    // Nothing was locked, so nothing changed: an audit entry would record an unlock that never was.
    if (unlocked.lockedUntil === null) return unlocked;
    await appendAudit(
      tx,
      {
        ...context,
        action: 'user.unlock_sign_in',
        target: userTarget(user.username),
        status: 'ok',
        details: { lockedUntil: unlocked.lockedUntil.toISOString() },
      },
      now,
    );
    return unlocked;
  });
  return { user, lockedUntil, endedLocks };
}

/**
 * Locks the user and every active admin until the transaction ends, and reads the user then.
 * Two admins disabling or demoting each other at once would each count the other as still
 * active; locked, the second waits for the first to commit and counts again, in any process.
 */
async function lockForAdminChange(tx: Prisma.TransactionClient, id: number) {
  const locked = await usersRepository.lockWithActiveAdmins(tx, id);
  const user = locked.find((row) => row.id === id);
  if (!user) throw notFoundById('User', id);
  const activeAdmins = locked.filter((row) => row.role === 'admin' && !row.isDisabled).length;
  return { user, isLastActiveAdmin: user.role === 'admin' && !user.isDisabled && activeAdmins <= 1 };
}

/** How many disabled admins the last-admin refusal names; the others are counted. */
const NAMED_DISABLED_ADMINS = 3;

/**
 * The last active admin's refusal, naming a disabled admin who could be enabled instead: "make
 * another admin first" alone had an admin make a new account while a colleague's waited for Enable.
 */
async function lastAdminError(tx: Prisma.TransactionClient) {
  const { usernames, total } = await usersRepository.findDisabledAdmins(tx, NAMED_DISABLED_ADMINS);
  const others = total - usernames.length;
  const enable =
    total === 0
      ? ''
      : total === 1
        ? `, or enable the disabled admin ${usernames[0]}`
        : `, or enable one of the disabled admins: ${usernames.join(', ')}${others > 0 ? ` and ${others} more` : ''}`;
  return new ConflictError(`This is the last active admin; make another admin first${enable}.`);
}
const selfDisableError = () =>
  new ConflictError(
    'You cannot disable your own account: you would be signed out of this page at once. Another admin can.',
  );

/**
 * Answers whether anything changed, as setDisabled does: a role the user already has (a second tab, a
 * double click) changes nothing and audits nothing, and was confirmed as if it had been changed.
 * A promotion signs every session of the user out, each keeping the reason (`role_promotion`) to
 * tell whoever holds it: the session id is renewed at a change of privilege, as at sign-in, so the
 * admin pages are reached only from a sign-in made as an admin, never from a session (or a copy of
 * its cookie) signed in as a user. A demotion ends none: the role is read with the session on every
 * request, so a demoted session loses the admin pages at its next one. `endedSessions` counts the
 * live sessions ended (0 for a demotion), audited with the change.
 */
export async function changeRole(db: Db, id: number, role: 'admin' | 'user', context: AuditContext) {
  return db.$transaction(async (tx) => {
    const { user, isLastActiveAdmin } = await lockForAdminChange(tx, id);
    if (user.role === role) return { user, isChanged: false, endedSessions: 0 };
    if (role === 'user' && isLastActiveAdmin) throw await lastAdminError(tx);
    const updated = await usersRepository.updateRole(tx, id, role);
    const endedSessions = role === 'admin' ? await usersRepository.signOutOtherSessionsOf(tx, id, 'role_promotion') : 0;
    await appendAudit(tx, {
      ...context,
      action: 'user.role_change',
      target: userTarget(user.username),
      status: 'ok',
      details: { from: user.role, to: role, endedSessions },
    });
    return { user: updated, isChanged: true, endedSessions };
  });
}

/**
 * Disabling also signs out every session the user has; each keeps only a message saying why, so
 * the user is told on their next request instead of landing on the sign-in page unexplained. Like
 * changeRole, it answers whether anything changed: a state the user already has changes nothing.
 */
export async function setDisabled(
  db: Db,
  id: number,
  isDisabled: boolean,
  context: AuditContext,
  /** The signed-in user making the change, if any (not `npm run user:disable`): they cannot disable themselves. */
  actingUserId?: number,
) {
  return db.$transaction(async (tx) => {
    const { user, isLastActiveAdmin } = await lockForAdminChange(tx, id);
    if (user.isDisabled === isDisabled) return { user, isChanged: false, pendingReceipts: null };
    // An enable ends none: said as 0, so that each of the two entries says what became of the sessions.
    let endedSessions = 0;
    if (isDisabled) {
      if (isLastActiveAdmin) throw await lastAdminError(tx);
      // It signed its own session out mid-click: the page came back as "Your account has been
      // disabled", pointing at the users page the admin could no longer open. Another admin (or
      // `npm run user:disable`) can still do it.
      if (user.id === actingUserId) throw selfDisableError();
      endedSessions = await usersRepository.signOutSessionsOf(tx, user, {
        type: 'error',
        message: ACCOUNT_DISABLED_MESSAGE,
      });
    }
    const updated = await usersRepository.updateDisabled(tx, id, isDisabled);
    await appendAudit(tx, {
      ...context,
      action: isDisabled ? 'user.disable' : 'user.enable',
      target: userTarget(user.username),
      status: 'ok',
      details: { endedSessions },
    });
    // Kept, as every receipt is, but left pending: the user can no longer sign in to see or pay
    // them, and nothing said so, so they waited unnoticed. The disable still goes ahead; the admin decides.
    const pendingReceipts = isDisabled
      ? pendingReceiptsOf(await receiptsRepository.sumPendingOf(tx, user.username))
      : null;
    return { user: updated, isChanged: true, pendingReceipts };
  });
}

/** A disabled user's pending receipts: how many, and their total in each currency (null when none). */
export interface PendingReceipts {
  count: number;
  totals: { currency: string; total: Prisma.Decimal }[];
}

function pendingReceiptsOf(
  groups: { currency: string; total: Prisma.Decimal; count: number }[],
): PendingReceipts | null {
  const count = groups.reduce((sum, group) => sum + group.count, 0);
  if (count === 0) return null;
  return { count, totals: groups.map(({ currency, total }) => ({ currency, total })) };
}

/** The billing list filtered to a user's pending receipts (/admin/receipts?status=pending&user=NAME). */
export function pendingReceiptsPathOf(username: string): string {
  return `/admin/receipts?${new URLSearchParams({ status: 'pending', user: username })}`;
}

/**
 * The sentence said after "NAME is disabled." (the users page, its JSON and `npm run user:disable`)
 * when the user has pending receipts; `money` writes an amount as the pages do (1,500.75).
 */
export function describePendingReceipts(
  username: string,
  pending: PendingReceipts,
  money: (total: Prisma.Decimal, currency: string) => string,
): string {
  const totals = pending.totals.map((total) => `${money(total.total, total.currency)} ${total.currency}`).join(', ');
  const them = pending.count === 1 ? 'it' : 'them';
  return `${username} has ${counted(pending.count, 'pending receipt')} (${totals}), which they can no longer sign in to see or pay: void ${them}, or mark ${them} paid when finance settles ${them}.`;
}

/**
 * A new user's form refused for its other fields, with the reason its name would be refused too
 * when that name is taken: said one at a time, the admin fixed the password, typed it again, and
 * only then heard the name was taken. The error itself when the name is free (or already refused).
 */
export async function withTakenUsername(
  db: Db,
  error: InvalidFieldsError,
  username: string | undefined,
): Promise<InvalidFieldsError> {
  // As the form reads it (ZUsername): BOB is taken when bob is, and said to be read so.
  const name = username?.trim().toLowerCase();
  if (!name || 'username' in error.fields) return error;
  const existing = await usersRepository.findByUsername(db, name);
  if (!existing) return error;
  const readAs = usernameReadAsNoteOf(username ?? '', name);
  const disabled = existing.isDisabled ? ' and is disabled (enable it to give the account back)' : '';
  const reason = `a user named "${name}" already exists${disabled}${readAs ? ` (${readAs.replace(/\.$/, '')})` : ''}`;
  return new InvalidFieldsError({ username: reason, ...error.fields }, CREATE_USER_FIELD_LABELS);
}

/** Creates the bootstrap admin from ADMIN_USERNAME/ADMIN_PASSWORD when it does not exist yet; false when it did. */
export async function ensureBootstrapAdmin(db: Db, username: string, password: string): Promise<boolean> {
  if (await usersRepository.findByUsername(db, username)) return false;
  try {
    await createUser(db, { username, role: 'admin', password }, { actor: SYSTEM_ACTOR, ip: null, userAgent: null });
  } catch (error) {
    // Another instance of the same deployment, started at the same moment, created it after this
    // one looked: it exists, as on any later start. The start used to fail with this conflict.
    if (error instanceof ConflictError) return false;
    throw error;
  }
  return true;
}

/**
 * Why no one can administer the site, or undefined: no enabled admin (a production database before
 * its first admin, the demo with DEMO_SEED=0, the last admin disabled). The start said nothing, and
 * the sign-in page then took no one.
 */
export async function describeMissingAdmin(db: Db): Promise<string | undefined> {
  if ((await usersRepository.countEnabledAdmins(db)) > 0) return undefined;
  return 'No enabled admin exists, so no one can sign in to manage users, rates and receipts: create one with npm run user:create -- --username NAME --role admin (node dist/src/cli/user.cli.js create ... in the Docker image), or set ADMIN_USERNAME and ADMIN_PASSWORD for the next start (docs/operations.md, "First production start")';
}

const ONLY_CREATES = 'ADMIN_USERNAME and ADMIN_PASSWORD only create an admin who does not exist yet';

/**
 * Why the user ADMIN_USERNAME names, who existed already and was left as they are, is not the
 * admin the operator can sign in as with ADMIN_PASSWORD: not an admin, disabled, or another
 * password; undefined when they are. Without it the start said nothing, and the operator found
 * out at the sign-in page.
 */
export async function describeExistingBootstrapAdmin(
  db: Db,
  username: string,
  password: string,
): Promise<string | undefined> {
  const user = await usersRepository.findWithPasswordHashByUsername(db, username);
  if (!user) return undefined;
  if (user.role !== 'admin') {
    return `ADMIN_USERNAME ${username} exists already and is not an admin: it was left as it is, so no admin was created (${ONLY_CREATES}). Choose another ADMIN_USERNAME, or have an admin change its role on /admin/users`;
  }
  if (user.isDisabled) {
    return `ADMIN_USERNAME ${username} exists already and is disabled: it was left as it is, so it cannot sign in (${ONLY_CREATES}). Enable it with ${toolCommand('user:disable', `--username ${username} --enable`)}, or choose another ADMIN_USERNAME`;
  }
  if (!(await verifyPassword(user.passwordHash, password))) {
    return `ADMIN_USERNAME ${username} exists already and ADMIN_PASSWORD is not its password: it was left as it is (${ONLY_CREATES}). Sign in with its own password, or set one with ${toolCommand('user:passwd', `--username ${username}`)}; then remove ADMIN_PASSWORD from the settings`;
  }
  return undefined;
}
