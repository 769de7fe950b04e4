import { Prisma } from '@prisma/client';
import type { Db } from '../../db/database.js';
import { usernameSearchOf } from '../../db/username-search.js';
import { PASSWORD_SIGN_OUTS, type PasswordSignOut } from '../../shared/errors.js';

type Tx = Prisma.TransactionClient;
type Client = Db | Tx;

export interface UserRecord {
  id: number;
  username: string;
  role: 'admin' | 'user';
  isDisabled: boolean;
  createdAt: Date;
}

const SELECT_USER = { id: true, username: true, role: true, isDisabled: true, createdAt: true } as const;

/** The user with this id, if any. */
export function findById(db: Client, id: number): Promise<UserRecord | null> {
  return db.user.findUnique({ where: { id }, select: SELECT_USER });
}

/**
 * The signed-in user a session points at, read on every request: one raw statement, which
 * skips Prisma's query compiler on the hottest lookup of the app.
 */
export async function findSessionUserById(
  db: Client,
  id: number,
): Promise<Pick<UserRecord, 'id' | 'username' | 'role' | 'isDisabled'> | null> {
  const rows = await db.$queryRaw<Pick<UserRecord, 'id' | 'username' | 'role' | 'isDisabled'>[]>(Prisma.sql`
    SELECT id, username, role::text AS role, is_disabled AS "isDisabled" FROM users WHERE id = ${id}`);
  return rows[0] ?? null;
}

/** The user with this username, if any. */
export function findByUsername(db: Client, username: string): Promise<UserRecord | null> {
  return db.user.findUnique({ where: { username }, select: SELECT_USER });
}

/** How many enabled admins there are: none, and no one can manage users, rates or receipts. */
export function countEnabledAdmins(db: Client): Promise<number> {
  return db.user.count({ where: { role: 'admin', isDisabled: false } });
}

/** A user with their password hash, for checking a password given in the settings (ADMIN_PASSWORD). */
export function findWithPasswordHashByUsername(
  db: Client,
  username: string,
): Promise<(UserRecord & { passwordHash: string }) | null> {
  return db.user.findUnique({ where: { username }, select: { ...SELECT_USER, passwordHash: true } });
}

/** Which users a list of /admin/users holds: names containing `search` (any case), of a role, active or disabled. */
export interface UserListFilter {
  search?: string | undefined;
  role?: 'admin' | 'user' | undefined;
  isDisabled?: boolean | undefined;
}

/** The WHERE clause of `filter` (empty for everyone) and its first ORDER BY key (the exact name first). */
function userListWhereOf(filter: UserListFilter): { where: Prisma.Sql; exactFirst: Prisma.Sql } {
  const { where: searched, exactFirst } = usernameSearchOf(filter.search);
  const conditions = [
    ...(filter.role === undefined ? [] : [Prisma.sql`role = ${filter.role}::"Role"`]),
    ...(filter.isDisabled === undefined ? [] : [Prisma.sql`is_disabled = ${filter.isDisabled}`]),
  ];
  if (conditions.length === 0) return { where: searched, exactFirst };
  const joined = Prisma.join(conditions, ' AND ');
  return { where: filter.search ? Prisma.sql`${searched} AND ${joined}` : Prisma.sql`WHERE ${joined}`, exactFirst };
}

/**
 * One page of the users whose name contains `search` (any case; everyone without one) by name,
 * the exact name first: the redirect after acting on a user (?q=<username>) lands on page 1 with
 * them at the top, however many longer names contain theirs. And how many match. `role` and
 * `isDisabled` keep the users of that role, and the disabled (or active) ones.
 */
export async function listPage(
  db: Client,
  options: UserListFilter & { offset: number; limit: number },
): Promise<{ rows: Array<UserRecord & { passwordChangedAt: Date | null }>; count: number }> {
  const { offset, limit } = options;
  const { where, exactFirst } = userListWhereOf(options);
  const [rows, count] = await Promise.all([
    db.$queryRaw<Array<UserRecord & { passwordChangedAt: Date | null }>>(Prisma.sql`
      SELECT id, username, role::text AS role, is_disabled AS "isDisabled", created_at AS "createdAt",
             password_changed_at AS "passwordChangedAt"
      FROM users ${where} ORDER BY ${exactFirst} username OFFSET ${offset} LIMIT ${limit}`),
    countUsers(db, options),
  ]);
  return { rows, count };
}

/** How many users `filter` keeps (everyone without one): listPage's count, without a row. */
export async function countUsers(db: Client, filter: UserListFilter = {}): Promise<number> {
  const { where } = userListWhereOf(filter);
  const counts = await db.$queryRaw<{ count: number }[]>(Prisma.sql`SELECT count(*)::int AS count FROM users ${where}`);
  return counts[0]?.count ?? 0;
}

/** Records a new user. */
export function insert(
  db: Client,
  data: { username: string; passwordHash: string; role: 'admin' | 'user' },
): Promise<UserRecord> {
  return db.user.create({ data: { ...data, passwordChangedAt: new Date() }, select: SELECT_USER });
}

/**
 * When the user's password was last set (null: before the stamp was stored), with the row locked
 * until the transaction ends, so that a reset compares it with what its page showed and writes
 * before another reset can; undefined when there is no such user.
 */
export async function lockPasswordStamp(db: Client, id: number): Promise<Date | null | undefined> {
  const rows = await db.$queryRaw<{ passwordChangedAt: Date | null }[]>`
    SELECT password_changed_at AS "passwordChangedAt" FROM users WHERE id = ${id} FOR UPDATE`;
  return rows[0] === undefined ? undefined : rows[0].passwordChangedAt;
}

/** Who last set `username`'s password and how (an admin's reset, their own change), as the audit log has it. */
export async function findLastPasswordSet(
  db: Client,
  username: string,
): Promise<{ actor: string; action: string; at: Date } | undefined> {
  const rows = await db.$queryRaw<{ actor: string; action: string; at: Date }[]>`
    SELECT actor, action, ts AS at FROM audit_log
     WHERE target = ${`user:${username}`} AND status = 'ok'
       AND action IN ('user.password_reset', 'user.password_change', 'user.create')
     ORDER BY id DESC LIMIT 1`;
  return rows[0];
}

/**
 * Sets a new password. Its `passwordChangedAt` is the stamp every session signed in with the
 * password before it carries (session.store.ts): from the commit on, those sessions are not served.
 */
export function updatePasswordHash(db: Client, id: number, passwordHash: string) {
  return db.user.update({
    where: { id },
    data: { passwordHash, passwordChangedAt: new Date() },
    select: { ...SELECT_USER, passwordChangedAt: true },
  });
}

/**
 * Sets a new password in place of the one a user proved (`checkedHash`), as updatePasswordHash
 * does; null, changing nothing, when the stored hash is another by now: a change or reset
 * committed since the proof (the row is read again once it commits). Returns the new stamp.
 */
export async function replaceProvedPassword(db: Client, id: number, checkedHash: string, passwordHash: string) {
  const passwordChangedAt = new Date();
  const { count } = await db.user.updateMany({
    where: { id, passwordHash: checkedHash },
    data: { passwordHash, passwordChangedAt },
  });
  return count === 1 ? passwordChangedAt : null;
}

/**
 * Stores the same password under a current hash (an imported or outdated one, at sign-in). Not a
 * change of password: the sessions it signed in stay, so `passwordChangedAt` is left as it is.
 * Only while the stored hash is still `checkedHash`, the one the sign-in verified: a change or
 * reset committed since (the row is read again once it commits) keeps its new password, where an
 * unconditional write put the old one back. Returns whether it stored it.
 */
export async function rehashPassword(db: Client, id: number, checkedHash: string, passwordHash: string) {
  const { count } = await db.user.updateMany({ where: { id, passwordHash: checkedHash }, data: { passwordHash } });
  return count === 1;
}

/**
 * Sets a user's role and returns the user as updated. A promotion raises the session epoch too, as a
 * disable does: a sign-in whose check read the account as a user's before this commits, and whose row
 * is written after the promotion signed the user's sessions out (signOutOtherSessionsOf), is never
 * served as an admin's.
 */
export function updateRole(db: Client, id: number, role: 'admin' | 'user') {
  const data = role === 'admin' ? { role, sessionEpoch: { increment: 1 } } : { role };
  return db.user.update({ where: { id }, data, select: SELECT_USER });
}

/**
 * Who took the admin role from user `id` and when: the newest role change audited for its account
 * (users.service's `user.role_change`), when that made it a user. Entries older than the account are
 * another account's of the same name, deleted since; entries written before `userTarget` carry the bare name.
 */
export async function findDemotion(db: Client, id: number): Promise<{ actor: string; at: Date } | undefined> {
  const rows = await db.$queryRaw<{ actor: string; at: Date; to: string | null }[]>`
    SELECT a.actor, a.ts AS at, a.details->>'to' AS "to"
      FROM users u
      JOIN audit_log a ON a.target IN ('user:' || u.username, u.username)
     WHERE u.id = ${id} AND a.action = 'user.role_change' AND a.status = 'ok' AND a.ts >= u.created_at
     ORDER BY a.id DESC
     LIMIT 1`;
  const last = rows[0];
  return last && last.to === 'user' ? { actor: last.actor, at: last.at } : undefined;
}

/**
 * Disables or enables a user. A disable raises the session epoch too: a session whose sign-in read
 * the account before this commits carries the old one and is never served again (session.store.ts),
 * whenever its row was written and whether or not the account is enabled later.
 */
export function updateDisabled(db: Client, id: number, isDisabled: boolean) {
  const data = isDisabled ? { isDisabled, sessionEpoch: { increment: 1 } } : { isDisabled };
  return db.user.update({ where: { id }, data, select: SELECT_USER });
}

/** The first `limit` disabled admins by name, and how many there are in all. */
export async function findDisabledAdmins(db: Client, limit: number): Promise<{ usernames: string[]; total: number }> {
  const rows = await db.$queryRaw<{ username: string; total: bigint }[]>`
    SELECT username, count(*) OVER () AS total
      FROM users
     WHERE role = 'admin' AND is_disabled
     ORDER BY username
     LIMIT ${limit}`;
  return { usernames: rows.map((row) => row.username), total: Number(rows[0]?.total ?? 0) };
}

/**
 * Locks the user's row and every active admin's for the rest of the transaction and returns
 * them as they are once locked. Rows are locked in id order, so two of these never deadlock.
 * Under READ COMMITTED a row another transaction changed is checked again once it commits: an
 * admin it disabled or demoted is no longer returned.
 */
export function lockWithActiveAdmins(tx: Tx, id: number): Promise<UserRecord[]> {
  return tx.$queryRaw<UserRecord[]>(Prisma.sql`
    SELECT id, username, role::text AS role, is_disabled AS "isDisabled", created_at AS "createdAt"
      FROM users
     WHERE id = ${id} OR (role = 'admin' AND NOT is_disabled)
     ORDER BY id
       FOR NO KEY UPDATE`);
}

/*
 * How many of the rows an UPDATE ... RETURNING expire signed out were live at `at`: a session
 * whose row expired and waits for the prune (session.pruner.ts) was over already, and counting it
 * told the user, and the audit entry, that a device was signed out that no longer was signed in.
 * Live as the session store serves a row (session.store.ts GET_SESSION: `expire >= to_timestamp`
 * of the app's clock). The expired rows are signed out all the same: a row is one write, and a
 * replica whose clock runs behind this one's would still have served it.
 */
async function countLiveSignedOut(db: Client, signOut: Prisma.Sql, at: Date): Promise<number> {
  const [row] = await db.$queryRaw<{ ended: number }[]>`WITH signed_out AS (${signOut} RETURNING expire)
    SELECT count(*)::int AS ended FROM signed_out WHERE expire >= to_timestamp(${at.getTime() / 1000})`;
  return row?.ended ?? 0;
}

/**
 * Signs every session of a user out, keeping only the cookie settings and, for whoever holds the
 * session, `flash`, the mark `isAccountDisabled` and the `disabledUsername` (src/http/session.ts);
 * returns how many of them were live (not expired) at `at`. A session another action signed out
 * already (a Sign out all sessions, a password change or reset: signOutOtherSessionsOf), found by
 * the `signedOutUserId` it kept, is given the same message, uncounted (it was not signed in): its
 * holder was told only the earlier reason, and tried to sign in again into a disabled account.
 */
export async function signOutSessionsOf(
  db: Client,
  user: { id: number; username: string },
  flash: { type: 'error'; message: string },
  at: Date = new Date(),
): Promise<number> {
  const disabledSess = Prisma.sql`jsonb_build_object('cookie', sess -> 'cookie',
       'flash', ${JSON.stringify(flash)}::jsonb,
       'isAccountDisabled', true, 'disabledUsername', ${user.username}::text)`;
  const signOut = Prisma.sql`UPDATE "session" SET sess = ${disabledSess}
   WHERE sess -> 'passport' ->> 'user' = ${String(user.id)}`;
  const ended = await countLiveSignedOut(db, signOut, at);
  await db.$executeRaw`UPDATE "session" SET sess = ${disabledSess}
   WHERE sess ->> 'signedOutUserId' = ${String(user.id)}`;
  return ended;
}

/**
 * Signs every session of a user out but the one named `exceptSessionId`, keeping only the cookie
 * settings, the reason `signedOutBy` and its notice as a flash, so that whoever holds one learns why
 * on the sign-in page it is sent to (and a script, or a form sent from it, at its next request), and
 * the user's id as `signedOutUserId`, by which a later disable finds it (signOutSessionsOf);
 * returns how many of them were live (not expired) at `at`. Deleted, such a session was no session
 * at all: the researcher at their other computer was sent to the sign-in form with no word why, as
 * if nothing had happened.
 */
export function signOutOtherSessionsOf(
  db: Client,
  userId: number,
  reason: PasswordSignOut,
  options: { exceptSessionId?: string; at?: Date } = {},
): Promise<number> {
  const except =
    options.exceptSessionId === undefined ? Prisma.empty : Prisma.sql`AND sid <> ${options.exceptSessionId}`;
  const flash = { type: 'warning', message: PASSWORD_SIGN_OUTS[reason].notice };
  const signOut = Prisma.sql`UPDATE "session"
     SET sess = jsonb_build_object('cookie', sess -> 'cookie', 'flash', ${JSON.stringify(flash)}::jsonb,
                                   'signedOutBy', ${reason}::text, 'signedOutUserId', ${String(userId)}::text)
   WHERE sess -> 'passport' ->> 'user' = ${String(userId)} ${except}`;
  return countLiveSignedOut(db, signOut, options.at ?? new Date());
}
