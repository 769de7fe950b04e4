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
}

/** The pair of rows one attempt is counted in: its address's, under `addressRule`, and '*', under `userRule`. */
export interface AttemptKey {
  username: string;
  ip: string;
  addressRule: ThrottleRule;
  userRule: ThrottleRule;
}

export type Reservation = {
  /** Locks that had run out and were cleared by this attempt. */
  endedLocks: number;
  /** The account of that username, or null when there is none. */
  credentials: SignInCredentials | null;
} & (
  | {
      /** Counted as a failure in both rows before its password is checked. */
      outcome: 'counted';
      /** The locks this attempt's count started ('address', 'user'): they stand if its password is wrong. */
      startedLocks: Array<'address' | 'user'>;
      /** The latest end of those locks, or null when it started none. */
      lockedUntil: Date | null;
    }
  | { outcome: 'locked'; lockedUntil: Date }
);

/*
 * Reserves one attempt before its password is checked, in one prepared statement: every
 * sign-in runs it, and one round trip without Prisma's runtime is what the sign-in can spare.
 *
 * Unless a lock of the pair is running, the attempt is counted as a failure in its address's
 * row and then in the '*' row, each by an upsert whose DO UPDATE ... WHERE re-reads the row
 * under its row lock (held until the statement commits, microseconds, never across the
 * password check), so concurrent attempts from any worker take the budget one by one and an
 * attempt that finds the row locked by one of them is not counted. The '*' upsert runs only
 * when the address one counted. The count that reaches a rule's maximum sets the lock right
 * away, so the attempts that follow are refused without a check; a success deletes the rows.
 * A lock that ended starts a fresh window (count 1, or 0 when the attempt is refused).
 *
 * The snapshot reads (`prior`) see the rows as they were at the start of the statement:
 * a lock started since then shows only as an upsert that returned nothing.
 */
const RESERVE_ATTEMPT = {
  name: 'hb_sign_in_reserve',
  text: `WITH prior AS (
  SELECT ip, locked_until FROM auth_throttle WHERE username = $1::text AND ip IN ($2::text, '*')),
running AS (
  SELECT max(locked_until) AS until FROM prior WHERE locked_until > $3::timestamptz),
ended AS (
  UPDATE auth_throttle SET locked_until = NULL, failure_count = 0, window_start = $3::timestamptz
   WHERE username = $1::text AND ip IN ($2::text, '*') AND locked_until <= $3::timestamptz
     AND (SELECT until FROM running) IS NOT NULL
  RETURNING 1),
per_address AS (
  INSERT INTO auth_throttle AS t (username, ip, window_start, failure_count, locked_until)
  SELECT $1::text, $2::text, $3::timestamptz, 1, CASE WHEN 1 >= $4::int THEN $6::timestamptz END
   WHERE (SELECT until FROM running) IS NULL
  ON CONFLICT (username, ip) DO UPDATE SET
    failure_count = CASE WHEN t.locked_until <= $3::timestamptz OR t.window_start < $5::timestamptz
                         THEN 1 ELSE t.failure_count + 1 END,
    window_start = CASE WHEN t.locked_until <= $3::timestamptz OR t.window_start < $5::timestamptz
                        THEN $3::timestamptz ELSE t.window_start END,
    locked_until = CASE WHEN (CASE WHEN t.locked_until <= $3::timestamptz OR t.window_start < $5::timestamptz
                                   THEN 1 ELSE t.failure_count + 1 END) >= $4::int
                        THEN $6::timestamptz END
   WHERE t.locked_until IS NULL OR t.locked_until <= $3::timestamptz
  RETURNING failure_count, locked_until),
per_user AS (
  INSERT INTO auth_throttle AS t (username, ip, window_start, failure_count, locked_until)
  SELECT $1::text, '*', $3::timestamptz, 1, CASE WHEN 1 >= $7::int THEN $9::timestamptz END
   WHERE EXISTS (SELECT 1 FROM per_address)
  ON CONFLICT (username, ip) DO UPDATE SET
    failure_count = CASE WHEN t.locked_until <= $3::timestamptz OR t.window_start < $8::timestamptz
                         THEN 1 ELSE t.failure_count + 1 END,
    window_start = CASE WHEN t.locked_until <= $3::timestamptz OR t.window_start < $8::timestamptz
                        THEN $3::timestamptz ELSE t.window_start END,
    locked_until = CASE WHEN (CASE WHEN t.locked_until <= $3::timestamptz OR t.window_start < $8::timestamptz
                                   THEN 1 ELSE t.failure_count + 1 END) >= $7::int
                        THEN $9::timestamptz END
   WHERE t.locked_until IS NULL OR t.locked_until <= $3::timestamptz
  RETURNING failure_count, locked_until)
SELECT (SELECT until FROM running) AS running_until,
       (SELECT count(*) FROM ended)::int AS ended_refused,
       (SELECT locked_until FROM prior WHERE ip = $2::text) AS prior_address_locked_until,
       (SELECT locked_until FROM prior WHERE ip = '*') AS prior_user_locked_until,
       a.failure_count AS address_count, a.locked_until AS address_locked_until,
       pu.failure_count AS user_count, pu.locked_until AS user_locked_until,
       u.id, u.username, u.role::text AS role, u.is_disabled, u.password_hash
  FROM (SELECT) AS one
  LEFT JOIN per_address a ON true
  LEFT JOIN per_user pu ON true
  LEFT JOIN users u ON u.username = $1::text`,
};

/*
 * After an attempt that lost the race for a lock (not in its snapshot, so its upsert found
 * the row locked): gives back the count it made in its address's row when only the '*' row
 * refused it (so an address is charged only for passwords checked), and reads the running
 * lock, which committed before that upsert was refused.
 */
const GIVE_BACK_AND_READ_LOCK = {
  name: 'hb_sign_in_give_back',
  text: `WITH given_back AS (
  UPDATE auth_throttle SET failure_count = greatest(failure_count - 1, 0),
         locked_until = CASE WHEN locked_until = $4::timestamptz THEN NULL ELSE locked_until END
   WHERE username = $1::text AND ip = $2::text AND $5::boolean
  RETURNING 1)
SELECT max(locked_until) AS locked_until, (SELECT count(*) FROM given_back)::int AS given_back
  FROM auth_throttle
 WHERE username = $1::text AND locked_until > $3::timestamptz AND (ip = '*' OR (ip = $2::text AND NOT $5::boolean))`,
};

interface ReserveRow {
  running_until: Date | null;
  ended_refused: number;
  prior_address_locked_until: Date | null;
  prior_user_locked_until: Date | null;
  address_count: number | null;
  address_locked_until: Date | null;
  user_count: number | null;
  user_locked_until: Date | null;
  id: number | null;
  username: string | null;
  role: 'admin' | 'user' | null;
  is_disabled: boolean | null;
  password_hash: string | null;
}

function credentialsOf(row: ReserveRow): SignInCredentials | null {
  return row.id !== null && row.username !== null && row.role !== null && row.password_hash !== null
    ? {
        id: row.id,
        username: row.username,
        role: row.role,
        isDisabled: row.is_disabled === true,
        passwordHash: row.password_hash,
      }
    : null;
}

/** Whether a row's lock ended and this attempt's upsert cleared it (starting the window again at 1). */
const hasClearedEndedLock = (priorLockedUntil: Date | null, count: number | null, now: Date) =>
  priorLockedUntil !== null && priorLockedUntil.getTime() <= now.getTime() && count === 1;

// A refused attempt whose lock vanished before it could read it (a success deleted the rows)
// tries again; it is counted at most once.
const MAX_TRIES = 3;

/**
 * Counts an attempt as a failure before its password is checked, unless the pair is locked;
 * reads the account too. A counted attempt whose password is right is forgotten with the
 * rest by `forgetFailures`; a wrong one stays counted.
 */
export async function reserveAttempt(pool: pg.Pool, key: AttemptKey, now: Date): Promise<Reservation> {
  const { username, ip, addressRule, userRule } = key;
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
  ];
  let endedLocks = 0;
  for (let attempt = 1; attempt <= MAX_TRIES; attempt++) {
    const { rows } = await pool.query<ReserveRow>({ ...RESERVE_ATTEMPT, values });
    const row = rows[0];
    if (!row) throw new Error('the sign-in reservation returned no row');
    const credentials = credentialsOf(row);
    endedLocks +=
      row.ended_refused +
      Number(hasClearedEndedLock(row.prior_address_locked_until, row.address_count, now)) +
      Number(hasClearedEndedLock(row.prior_user_locked_until, row.user_count, now));
    if (row.running_until) return { outcome: 'locked', lockedUntil: row.running_until, endedLocks, credentials };
    if (row.address_count !== null && row.user_count !== null) {
      // Neither row was locked before this count, so a lock on either is the one it set.
      const startedLocks = [
        row.address_locked_until && ('address' as const),
        row.user_locked_until && ('user' as const),
      ].filter((scope): scope is 'address' | 'user' => Boolean(scope));
      const ends = [row.address_locked_until, row.user_locked_until].filter((end): end is Date => end !== null);
      const lockedUntil = ends.length > 0 ? new Date(Math.max(...ends.map((end) => end.getTime()))) : null;
      return { outcome: 'counted', startedLocks, lockedUntil, endedLocks, credentials };
    }
    // Lost the race: a concurrent attempt locked a row after this statement's snapshot.
    const isAddressCounted = row.address_count !== null;
    const lock = await pool.query<{ locked_until: Date | null }>({
      ...GIVE_BACK_AND_READ_LOCK,
      values: [username, ip, now, addressLockUntil, isAddressCounted],
    });
    const lockedUntil = lock.rows[0]?.locked_until;
    if (lockedUntil) return { outcome: 'locked', lockedUntil, endedLocks, credentials };
  }
  throw new Error(`the sign-in throttle of ${username} changed under ${MAX_TRIES} attempts in a row`);
}

const FORGET_FAILURES = {
  name: 'hb_sign_in_forget_failures',
  text: 'DELETE FROM auth_throttle WHERE username = $1::text',
};

/** A successful sign-in forgets the failures of that user, its own counted attempt included. */
export async function forgetFailures(pool: pg.Pool, username: string): Promise<void> {
  await pool.query({ ...FORGET_FAILURES, values: [username] });
}

/** A password change forgets the failures of that user (in the change's transaction). */
export async function reset(db: Db | Prisma.TransactionClient, username: string) {
  await db.$executeRaw`DELETE FROM auth_throttle WHERE username = ${username}`;
}
