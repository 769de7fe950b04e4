import type { Prisma } from '@prisma/client';
import type pg from 'pg';
import type { Db } from '../../db/database.js';

export interface ThrottleRule {
  maxFailures: number;
  windowSec: number;
  lockSec: number;
}

export interface SignInCredentials {
  id: number;
  username: string;
  role: 'admin' | 'user';
  isDisabled: boolean;
  passwordHash: string;
  /** When that password was set (epoch ms; null before the column existed): the session's stamp. */
  passwordChangedAt: number | null;
  /**
   * The account's session epoch, read with `isDisabled`: a disable raises it, so a session stamped
   * with this one is not served once a disable commits after this read (session.store.ts).
   */
  sessionEpoch: number;
}

/**
 * The rows one attempt is counted in: its network's in `auth_network_throttle` (every
 * username), under `network.rule`, when given; then in `auth_throttle` its address's, under
 * `addressRule`, and '*', under `userRule`.
 */
export interface AttemptKey {
  username: string;
  ip: string;
  addressRule: ThrottleRule;
  userRule: ThrottleRule;
  network?: NetworkKey;
}

/** A client network's row of `auth_network_throttle` and its rule. */
export interface NetworkKey {
  network: string;
  rule: ThrottleRule;
}

/**
 * Which lock: 'network' (the client network, any username), 'address' (this username from
 * this address), 'user' (this username from anywhere).
 */
export type LockScope = 'network' | 'address' | 'user';

export type Reservation = {
  /** Locks that had run out and were cleared by this attempt. */
  endedLocks: number;
  /** The account of that username, or null when there is none. */
  credentials: SignInCredentials | null;
} & (
  | {
      /** Counted as a failure in every row before its password is checked. */
      outcome: 'counted';
      /** The locks this attempt's count started: they stand if its password is wrong. */
      startedLocks: LockScope[];
      /** The latest end of those locks, or null when it started none. */
      lockedUntil: Date | null;
    }
  | {
      outcome: 'locked';
      lockedUntil: Date;
      /** The running locks that refused it. */
      scopes: LockScope[];
    }
);

/**
 * The rest of a failure counter's upsert: on conflict with its row, count one more failure in
 * the window (a window that ran out, or a lock that ended, starts again at 1) and lock the row
 * when the count reaches `max`; a row whose lock is running is left alone and returns nothing.
 * `$3` is now; the others name the statement's parameters for this counter's rule.
 */
function failureCounterUpsertSql(
  conflict: string,
  rule: { max: string; windowStart: string; lockUntil: string },
): string {
  const isNewWindow = `t.locked_until <= $3::timestamptz OR t.window_start < ${rule.windowStart}::timestamptz`;
  return `ON CONFLICT (${conflict}) DO UPDATE SET
    failure_count = CASE WHEN ${isNewWindow} THEN 1 ELSE t.failure_count + 1 END,
    window_start = CASE WHEN ${isNewWindow} THEN $3::timestamptz ELSE t.window_start END,
    locked_until = CASE WHEN (CASE WHEN ${isNewWindow} THEN 1 ELSE t.failure_count + 1 END) >= ${rule.max}::int
                        THEN ${rule.lockUntil}::timestamptz END
   WHERE t.locked_until IS NULL OR t.locked_until <= $3::timestamptz
  RETURNING failure_count, locked_until`;
}

/*
 * Reserves one attempt before its password is checked, in one prepared statement: every
 * sign-in runs it, and one round trip without Prisma's runtime is what the sign-in can spare.
 *
 * Unless a lock of the attempt is running, the attempt is counted as a failure in its
 * network's row (when the key has one), then its address's row, then the '*' row, each by
 * an upsert whose DO UPDATE ... WHERE re-reads the row under its row lock (held until the
 * statement commits, microseconds, never across the password check), so concurrent attempts
 * from any worker take the budget one by one and an attempt that finds the row locked by one
 * of them is not counted. Each upsert runs only when the one before counted, so every
 * statement takes its row locks in that order (network, address, '*') and none waits for
 * another in a cycle. The count that reaches a rule's maximum sets the lock right away, so
 * the attempts that follow are refused without a check. A success deletes the username's
 * rows and gives back its own count in the network's row (`forgetFailures`). A lock that
 * ended starts a fresh window (count 1, or 0 when the attempt is refused).
 *
 * The snapshot reads (`prior`, `prior_network`) see the rows as they were at the start of
 * the statement: a lock started since then shows only as an upsert that returned nothing.
 * $10 (the network) is null when the key has none: that row is then neither read nor counted.
 */
const RESERVE_ATTEMPT = {
  name: 'hb_sign_in_reserve',
  text: `WITH prior AS (
  SELECT ip, locked_until FROM auth_throttle WHERE username = $1::text AND ip IN ($2::text, '*')),
prior_network AS (
  SELECT locked_until FROM auth_network_throttle WHERE network = $10::text),
running AS (
  SELECT max(until) AS until
    FROM (SELECT locked_until FROM prior UNION ALL SELECT locked_until FROM prior_network) AS locks (until)
   WHERE until > $3::timestamptz),
ended_network AS (
  UPDATE auth_network_throttle SET locked_until = NULL, failure_count = 0, window_start = $3::timestamptz
   WHERE network = $10::text AND locked_until <= $3::timestamptz
     AND (SELECT until FROM running) IS NOT NULL
  RETURNING 1),
ended AS (
  UPDATE auth_throttle SET locked_until = NULL, failure_count = 0, window_start = $3::timestamptz
   WHERE username = $1::text AND ip IN ($2::text, '*') AND locked_until <= $3::timestamptz
     AND (SELECT until FROM running) IS NOT NULL
     AND (SELECT count(*) FROM ended_network) >= 0
  RETURNING 1),
per_network AS (
  INSERT INTO auth_network_throttle AS t (network, window_start, failure_count, locked_until)
  SELECT $10::text, $3::timestamptz, 1, CASE WHEN 1 >= $11::int THEN $13::timestamptz END
   WHERE $10::text IS NOT NULL AND (SELECT until FROM running) IS NULL
${failureCounterUpsertSql('network', { max: '$11', windowStart: '$12', lockUntil: '$13' })}),
per_address AS (
  INSERT INTO auth_throttle AS t (username, ip, window_start, failure_count, locked_until)
  SELECT $1::text, $2::text, $3::timestamptz, 1, CASE WHEN 1 >= $4::int THEN $6::timestamptz END
   WHERE (SELECT until FROM running) IS NULL AND ($10::text IS NULL OR EXISTS (SELECT 1 FROM per_network))
${failureCounterUpsertSql('username, ip', { max: '$4', windowStart: '$5', lockUntil: '$6' })}),
per_user AS (
  INSERT INTO auth_throttle AS t (username, ip, window_start, failure_count, locked_until)
  SELECT $1::text, '*', $3::timestamptz, 1, CASE WHEN 1 >= $7::int THEN $9::timestamptz END
   WHERE EXISTS (SELECT 1 FROM per_address)
${failureCounterUpsertSql('username, ip', { max: '$7', windowStart: '$8', lockUntil: '$9' })})
SELECT (SELECT until FROM running) AS running_until,
       ((SELECT count(*) FROM ended) + (SELECT count(*) FROM ended_network))::int AS ended_refused,
       (SELECT locked_until FROM prior_network) AS prior_network_locked_until,
       (SELECT locked_until FROM prior WHERE ip = $2::text) AS prior_address_locked_until,
       (SELECT locked_until FROM prior WHERE ip = '*') AS prior_user_locked_until,
       n.failure_count AS network_count, n.locked_until AS network_locked_until,
       a.failure_count AS address_count, a.locked_until AS address_locked_until,
       pu.failure_count AS user_count, pu.locked_until AS user_locked_until,
       u.id, u.username, u.role::text AS role, u.is_disabled, u.password_hash, u.password_changed_at,
       u.session_epoch
  FROM (SELECT) AS one
  LEFT JOIN per_network n ON true
  LEFT JOIN per_address a ON true
  LEFT JOIN per_user pu ON true
  LEFT JOIN users u ON u.username = $1::text`,
};

/*
 * After an attempt that lost the race for a lock (not in its snapshot, so one of its upserts
 * found the row locked): gives back the counts it made in the rows before the one that refused
 * it (so a network and an address are charged only for passwords checked), and reads the
 * running locks of the rows it was not counted in, which committed before it was refused.
 * The network's row is given back first, in the order the reservation takes row locks. Its
 * lock goes when the count falls below the maximum again: the lock is the budget spent, and a
 * count given back was never a password checked.
 */
const GIVE_BACK_AND_READ_LOCK = {
  name: 'hb_sign_in_give_back',
  text: `WITH given_back_network AS (
  UPDATE auth_network_throttle SET failure_count = greatest(failure_count - 1, 0),
         locked_until = CASE WHEN failure_count - 1 < $7::int THEN NULL ELSE locked_until END
   WHERE network = $6::text AND $8::boolean
  RETURNING 1),
given_back AS (
  UPDATE auth_throttle SET failure_count = greatest(failure_count - 1, 0),
         locked_until = CASE WHEN locked_until = $4::timestamptz THEN NULL ELSE locked_until END
   WHERE username = $1::text AND ip = $2::text AND $5::boolean
     AND (SELECT count(*) FROM given_back_network) >= 0
  RETURNING 1)
SELECT (SELECT locked_until FROM auth_network_throttle
         WHERE network = $6::text AND NOT $8::boolean AND locked_until > $3::timestamptz) AS network_locked_until,
       (SELECT locked_until FROM auth_throttle
         WHERE username = $1::text AND ip = $2::text AND NOT $5::boolean AND locked_until > $3::timestamptz)
         AS address_locked_until,
       (SELECT locked_until FROM auth_throttle
         WHERE username = $1::text AND ip = '*' AND locked_until > $3::timestamptz) AS user_locked_until,
       ((SELECT count(*) FROM given_back_network) + (SELECT count(*) FROM given_back))::int AS given_back`,
};

interface ReserveRow {
  running_until: Date | null;
  ended_refused: number;
  prior_network_locked_until: Date | null;
  prior_address_locked_until: Date | null;
  prior_user_locked_until: Date | null;
  network_count: number | null;
  network_locked_until: Date | null;
  address_count: number | null;
  address_locked_until: Date | null;
  user_count: number | null;
  user_locked_until: Date | null;
  id: number | null;
  username: string | null;
  role: 'admin' | 'user' | null;
  is_disabled: boolean | null;
  password_hash: string | null;
  password_changed_at: Date | null;
  session_epoch: number | null;
}

function credentialsOf(row: ReserveRow): SignInCredentials | null {
  return row.id !== null && row.username !== null && row.role !== null && row.password_hash !== null
    ? {
        id: row.id,
        username: row.username,
        role: row.role,
        isDisabled: row.is_disabled === true,
        passwordHash: row.password_hash,
        passwordChangedAt: row.password_changed_at?.getTime() ?? null,
        sessionEpoch: row.session_epoch ?? 0,
      }
    : null;
}

/** Whether a row's lock ended and this attempt's upsert cleared it (starting the window again at 1). */
const hasClearedEndedLock = (priorLockedUntil: Date | null, count: number | null, now: Date) =>
  priorLockedUntil !== null && priorLockedUntil.getTime() <= now.getTime() && count === 1;

/** The scopes of the locks given (null when that row has none) and the latest end among them. */
function locksOf(locks: Record<LockScope, Date | null>, isRunning: (end: Date) => boolean) {
  const scopes = (Object.keys(locks) as LockScope[]).filter((scope) => {
    const end = locks[scope];
    return end !== null && isRunning(end);
  });
  const ends = scopes.map((scope) => (locks[scope] as Date).getTime());
  return { scopes, until: ends.length > 0 ? new Date(Math.max(...ends)) : null };
}

// A refused attempt whose lock vanished before it could read it (a success deleted the rows)
// tries again; it is counted at most once.
const MAX_TRIES = 3;

/**
 * Counts an attempt as a failure before its password is checked, unless one of its rows is
 * locked; reads the account too. A counted attempt whose password is right is forgotten
 * with the rest by `forgetFailures`; a wrong one stays counted.
 */
export async function reserveAttempt(pool: pg.Pool, key: AttemptKey, now: Date): Promise<Reservation> {
  const { username, ip, addressRule, userRule, network } = key;
  const addressLockUntil = new Date(now.getTime() + addressRule.lockSec * 1000);
  const userLockUntil = new Date(now.getTime() + userRule.lockSec * 1000);
  const values = [
    username,
    ip,
    now,
    addressRule.maxFailures,
    new Date(now.getTime() - addressRule.windowSec * 1000),
    addressLockUntil,
    userRule.maxFailures,
    new Date(now.getTime() - userRule.windowSec * 1000),
    userLockUntil,
    network?.network ?? null,
    network?.rule.maxFailures ?? null,
    network ? new Date(now.getTime() - network.rule.windowSec * 1000) : null,
    network ? new Date(now.getTime() + network.rule.lockSec * 1000) : null,
  ];
  const isRunning = (end: Date) => end.getTime() > now.getTime();
  let endedLocks = 0;
  for (let attempt = 1; attempt <= MAX_TRIES; attempt++) {
    const { rows } = await pool.query<ReserveRow>({ ...RESERVE_ATTEMPT, values });
    const row = rows[0];
    if (!row) throw new Error('the sign-in reservation returned no row');
    const credentials = credentialsOf(row);
    endedLocks +=
      row.ended_refused +
      Number(hasClearedEndedLock(row.prior_network_locked_until, row.network_count, now)) +
      Number(hasClearedEndedLock(row.prior_address_locked_until, row.address_count, now)) +
      Number(hasClearedEndedLock(row.prior_user_locked_until, row.user_count, now));
    if (row.running_until) {
      const { scopes } = locksOf(
        {
          network: row.prior_network_locked_until,
          address: row.prior_address_locked_until,
          user: row.prior_user_locked_until,
        },
        isRunning,
      );
      return { outcome: 'locked', lockedUntil: row.running_until, scopes, endedLocks, credentials };
    }
    const isNetworkCounted = network !== undefined && row.network_count !== null;
    if ((isNetworkCounted || !network) && row.address_count !== null && row.user_count !== null) {
      // No row was locked before this count, so a lock on any is the one it set.
      const started = locksOf(
        { network: row.network_locked_until, address: row.address_locked_until, user: row.user_locked_until },
        () => true,
      );
      return { outcome: 'counted', startedLocks: started.scopes, lockedUntil: started.until, endedLocks, credentials };
    }
    // Lost the race: a concurrent attempt locked a row after this statement's snapshot.
    const isAddressCounted = row.address_count !== null;
    const lock = await pool.query<{
      network_locked_until: Date | null;
      address_locked_until: Date | null;
      user_locked_until: Date | null;
    }>({
      ...GIVE_BACK_AND_READ_LOCK,
      values: [
        username,
        ip,
        now,
        addressLockUntil,
        isAddressCounted,
        network?.network ?? null,
        network?.rule.maxFailures ?? null,
        isNetworkCounted,
      ],
    });
    const locks = lock.rows[0];
    const running = locksOf(
      {
        network: locks?.network_locked_until ?? null,
        address: locks?.address_locked_until ?? null,
        user: locks?.user_locked_until ?? null,
      },
      isRunning,
    );
    if (running.until) {
      return { outcome: 'locked', lockedUntil: running.until, scopes: running.scopes, endedLocks, credentials };
    }
  }
  throw new Error(`the sign-in throttle of ${username} changed under ${MAX_TRIES} attempts in a row`);
}

/*
 * A success deletes the username's rows and gives back its own count in its network's row
 * (network first, the order the reservation takes row locks). The network's other failures
 * stay: a success says nothing about the other usernames tried from there, and one account
 * of its own must not let a client reset its budget for spraying the rest. Its lock goes
 * when the count falls below the maximum again (a lock this success's own count set, say).
 * $2 is null when the attempt was not counted in a network's row.
 */
const FORGET_FAILURES = {
  name: 'hb_sign_in_forget_failures',
  text: `WITH given_back AS (
  UPDATE auth_network_throttle SET failure_count = greatest(failure_count - 1, 0),
         locked_until = CASE WHEN failure_count - 1 < $3::int THEN NULL ELSE locked_until END
   WHERE network = $2::text
  RETURNING 1)
DELETE FROM auth_throttle WHERE username = $1::text AND (SELECT count(*) FROM given_back) >= 0`,
};

/** A successful sign-in forgets the failures of that user, its own counted attempt included. */
export async function forgetFailures(pool: pg.Pool, username: string, network?: NetworkKey): Promise<void> {
  await pool.query({
    ...FORGET_FAILURES,
    values: [username, network?.network ?? null, network?.rule.maxFailures ?? null],
  });
}

/** A password change forgets the failures of that user (in the change's transaction). */
export async function reset(db: Db | Prisma.TransactionClient, username: string) {
  await db.$executeRaw`DELETE FROM auth_throttle WHERE username = ${username}`;
}

/**
 * The running sign-in locks of these accounts: for each username with one, the latest end among
 * its rows' locks (from one address, or from every address: '*'). A client network's lock is not
 * an account's and is not read.
 */
export async function findAccountLocks(
  db: Db | Prisma.TransactionClient,
  usernames: string[],
  now: Date,
): Promise<Map<string, Date>> {
  if (usernames.length === 0) return new Map();
  const rows = await db.$queryRaw<{ username: string; lockedUntil: Date }[]>`
    SELECT username, max(locked_until) AS "lockedUntil" FROM auth_throttle
     WHERE username = ANY(${usernames}::text[]) AND locked_until > ${now}
     GROUP BY username`;
  return new Map(rows.map((row) => [row.username, row.lockedUntil]));
}

/**
 * Lifts an account's sign-in locks: deletes its rows (every address's and '*'), as a successful
 * sign-in does, so its failures count from 0 again. Returns the latest lock that was still
 * running (null when none was) and how many locks were running. With no lock running nothing is
 * deleted: there was nothing to lift, so nothing changes (and nothing is audited). Client
 * networks' rows stay: they are not the account's.
 */
export async function unlockAccount(
  db: Db | Prisma.TransactionClient,
  username: string,
  now: Date,
): Promise<{ lockedUntil: Date | null; endedLocks: number }> {
  const rows = await db.$queryRaw<{ lockedUntil: Date | null; endedLocks: number }[]>`
    WITH deleted AS (
      DELETE FROM auth_throttle WHERE username = ${username}
         AND EXISTS (SELECT 1 FROM auth_throttle WHERE username = ${username} AND locked_until > ${now})
      RETURNING locked_until)
    SELECT max(locked_until) FILTER (WHERE locked_until > ${now}) AS "lockedUntil",
           (count(*) FILTER (WHERE locked_until > ${now}))::int AS "endedLocks"
      FROM deleted`;
  return { lockedUntil: rows[0]?.lockedUntil ?? null, endedLocks: rows[0]?.endedLocks ?? 0 };
}

/**
 * Forgets an account's failures and locks (every address's rows and '*'), whether or not a lock
 * runs, as a password change does: for a password reset, whose new password none of them was typed
 * against. Returns the latest lock still running (null when none was) and how many were, as
 * `unlockAccount` does. Client networks' rows stay: they are not the account's.
 */
export async function forgetAccountFailures(
  db: Db | Prisma.TransactionClient,
  username: string,
  now: Date,
): Promise<{ lockedUntil: Date | null; endedLocks: number }> {
  const rows = await db.$queryRaw<{ lockedUntil: Date | null; endedLocks: number }[]>`
    WITH deleted AS (DELETE FROM auth_throttle WHERE username = ${username} RETURNING locked_until)
    SELECT max(locked_until) FILTER (WHERE locked_until > ${now}) AS "lockedUntil",
           (count(*) FILTER (WHERE locked_until > ${now}))::int AS "endedLocks"
      FROM deleted`;
  return { lockedUntil: rows[0]?.lockedUntil ?? null, endedLocks: rows[0]?.endedLocks ?? 0 };
}

/** Rows are expired when their window started before these times and their lock (if any) ended by `lockEnd`. */
export interface ExpiryCutoffs {
  /** A (username, address) row's window: `AUTH_WINDOW_SEC`. */
  addressWindowStart: Date;
  /** A username's '*' row's window: `AUTH_USER_WINDOW_SEC`. */
  userWindowStart: Date;
  /** A network's row's window: `AUTH_ADDRESS_WINDOW_SEC`. */
  networkWindowStart: Date;
  lockEnd: Date;
}

export interface PrunedBatch {
  deleted: number;
  /** Deleted rows that still held a lock that had ended: no attempt came to clear it. */
  endedLocks: number;
}

/*
 * One batch of a prune: up to `limit` rows, the oldest windows first, through the window_start
 * index (without it every batch reads and sorts the whole table: see its migration). The rows
 * are picked FOR UPDATE SKIP LOCKED: a row a sign-in is counting in at this moment is left for
 * the next prune rather than waited for, and a row one counted in since this statement began is
 * checked again as it is now (a new window: it stays). A sign-in that comes to a picked row waits
 * for the batch, then starts the row afresh, as it would have once the window was over. The
 * DELETE checks `isExpired` again on every row it deletes all the same. `windowStartBefore` is
 * the range read through the index.
 */
function deleteExpired(sql: {
  table: string;
  key: string;
  windowStartBefore: string;
  isExpired: string;
  limit: string;
}): string {
  const { table, key, windowStartBefore, isExpired, limit } = sql;
  return `WITH deleted AS (
  DELETE FROM ${table}
   WHERE ${key} IN (SELECT ${key} FROM ${table}
                     WHERE window_start < ${windowStartBefore} AND ${isExpired}
                     ORDER BY window_start
                     LIMIT ${limit}
                       FOR UPDATE SKIP LOCKED)
     AND ${isExpired}
  RETURNING locked_until)
SELECT count(*)::int AS deleted, count(locked_until)::int AS ended_locks FROM deleted`;
}

// $1 a pair's window start, $2 a username's ('*'), $3 the lock end, $4 the batch size.
const DELETE_EXPIRED_THROTTLE = deleteExpired({
  table: 'auth_throttle',
  key: 'id',
  windowStartBefore: 'greatest($1::timestamptz, $2::timestamptz)',
  isExpired: `window_start < CASE WHEN ip = '*' THEN $2::timestamptz ELSE $1::timestamptz END
              AND (locked_until IS NULL OR locked_until <= $3::timestamptz)`,
  limit: '$4::int',
});

// $1 a network's window start, $2 the lock end, $3 the batch size.
const DELETE_EXPIRED_NETWORK_THROTTLE = deleteExpired({
  table: 'auth_network_throttle',
  key: 'network',
  windowStartBefore: '$1::timestamptz',
  isExpired: 'window_start < $1::timestamptz AND (locked_until IS NULL OR locked_until <= $2::timestamptz)',
  limit: '$3::int',
});

async function deleteBatch(pool: pg.Pool, text: string, values: unknown[]): Promise<PrunedBatch> {
  const { rows } = await pool.query<{ deleted: number; ended_locks: number }>(text, values);
  return { deleted: rows[0]?.deleted ?? 0, endedLocks: rows[0]?.ended_locks ?? 0 };
}

/** Deletes up to `limit` rows of `auth_throttle` whose window and lock ended before the cutoffs. */
export function deleteExpiredThrottles(pool: pg.Pool, cutoffs: ExpiryCutoffs, limit: number): Promise<PrunedBatch> {
  const { addressWindowStart, userWindowStart, lockEnd } = cutoffs;
  return deleteBatch(pool, DELETE_EXPIRED_THROTTLE, [addressWindowStart, userWindowStart, lockEnd, limit]);
}

/** Deletes up to `limit` rows of `auth_network_throttle` whose window and lock ended before the cutoffs. */
export function deleteExpiredNetworkThrottles(
  pool: pg.Pool,
  cutoffs: ExpiryCutoffs,
  limit: number,
): Promise<PrunedBatch> {
  return deleteBatch(pool, DELETE_EXPIRED_NETWORK_THROTTLE, [cutoffs.networkWindowStart, cutoffs.lockEnd, limit]);
}
