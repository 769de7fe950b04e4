import type { Prisma } from '@prisma/client';
import type pg from 'pg';
import type { Db } from '../../db/database.js';

export interface ThrottleRule {
  maxFailures: number;
  windowSec: number;
  lockSec: number;
}

export interface ThrottleState {
  failureCount: number;
  lockedUntil: Date | null;
}

export interface LockCheck {
  /** Locks that had run out and were cleared by this check. */
  endedLocks: number;
  /** The latest end of a lock still running at `now`, if any. */
  lockedUntil: Date | null;
  /** Whether the username has any throttle row (so a success has failures to forget). */
  hasFailures: boolean;
}

export interface SignInCredentials {
  id: number;
  username: string;
  role: 'admin' | 'user';
  isDisabled: boolean;
  passwordHash: string;
}

export interface SignInState extends LockCheck {
  /** The account of that username, or null when there is none. */
  credentials: SignInCredentials | null;
}

/*
 * Before a sign-in: clears the locks of these pairs that have run out (a lock that ended
 * starts a fresh window, so old failures do not count against the next attempt), reports
 * any lock still running, and reads the account, in one prepared statement: every sign-in
 * runs it, and one round trip without Prisma's runtime is what the sign-in can spare. The
 * CTE's reads see the rows as they were; a cleared lock had ended, so it is never reported
 * as running.
 */
const LOAD_SIGN_IN_STATE = {
  name: 'hb_sign_in_state',
  text: `WITH ended AS (
  UPDATE auth_throttle SET locked_until = NULL, failure_count = 0, window_start = $3
   WHERE username = $1 AND ip = ANY($2::text[]) AND locked_until IS NOT NULL AND locked_until <= $3
  RETURNING 1)
SELECT (SELECT count(*) FROM ended)::int AS ended,
       (SELECT max(locked_until) FROM auth_throttle
         WHERE username = $1 AND ip = ANY($2::text[]) AND locked_until > $3) AS locked_until,
       EXISTS (SELECT 1 FROM auth_throttle WHERE username = $1) AS has_rows,
       u.id, u.username, u.role::text AS role, u.is_disabled, u.password_hash
  FROM (SELECT) AS one
  LEFT JOIN users u ON u.username = $1`,
};

interface SignInStateRow {
  ended: number;
  locked_until: Date | null;
  has_rows: boolean;
  id: number | null;
  username: string | null;
  role: 'admin' | 'user' | null;
  is_disabled: boolean | null;
  password_hash: string | null;
}

export async function loadSignInState(pool: pg.Pool, username: string, ips: string[], now: Date): Promise<SignInState> {
  const { rows } = await pool.query<SignInStateRow>({ ...LOAD_SIGN_IN_STATE, values: [username, ips, now] });
  const row = rows[0];
  if (!row) throw new Error('the sign-in state query returned no row');
  const credentials =
    row.id !== null && row.username !== null && row.role !== null && row.password_hash !== null
      ? {
          id: row.id,
          username: row.username,
          role: row.role,
          isDisabled: row.is_disabled === true,
          passwordHash: row.password_hash,
        }
      : null;
  return { endedLocks: row.ended, lockedUntil: row.locked_until, hasFailures: row.has_rows, credentials };
}

/**
 * Counts one failure in a single atomic statement (the row lock of the upsert
 * serializes concurrent attempts, across workers too) and locks the pair when the
 * count reaches the rule's maximum inside its window.
 */
export async function recordFailure(
  db: Db,
  username: string,
  ip: string,
  rule: ThrottleRule,
  now: Date,
): Promise<ThrottleState & { hasJustLocked: boolean }> {
  const windowStartLimit = new Date(now.getTime() - rule.windowSec * 1000);
  const lockUntil = new Date(now.getTime() + rule.lockSec * 1000);
  const rows = await db.$queryRaw<Array<{ failure_count: number; locked_until: Date | null }>>`
    INSERT INTO auth_throttle (username, ip, window_start, failure_count, locked_until)
    VALUES (${username}, ${ip}, ${now}, 1, CASE WHEN 1 >= ${rule.maxFailures} THEN ${lockUntil}::timestamptz END)
    ON CONFLICT (username, ip) DO UPDATE SET
      failure_count = CASE WHEN auth_throttle.window_start < ${windowStartLimit} THEN 1 ELSE auth_throttle.failure_count + 1 END,
      window_start = CASE WHEN auth_throttle.window_start < ${windowStartLimit} THEN ${now} ELSE auth_throttle.window_start END,
      locked_until = CASE
        WHEN auth_throttle.locked_until > ${now} THEN auth_throttle.locked_until
        WHEN (CASE WHEN auth_throttle.window_start < ${windowStartLimit} THEN 1 ELSE auth_throttle.failure_count + 1 END) >= ${rule.maxFailures}
          THEN ${lockUntil}::timestamptz
        ELSE auth_throttle.locked_until END
    RETURNING failure_count, locked_until`;
  const row = rows[0];
  if (!row) throw new Error('auth_throttle upsert returned nothing');
  // A running lock keeps its end; only the attempt that set this end started it.
  const hasJustLocked = row.locked_until !== null && row.locked_until.getTime() === lockUntil.getTime();
  return { failureCount: row.failure_count, lockedUntil: row.locked_until, hasJustLocked };
}

/** A successful sign-in (or password change) forgets the failures of that user. */
export async function reset(db: Db | Prisma.TransactionClient, username: string) {
  await db.$executeRaw`DELETE FROM auth_throttle WHERE username = ${username}`;
}

export async function findState(db: Db, username: string, ip: string): Promise<ThrottleState | null> {
  return db.authThrottle.findUnique({
    where: { username_ip: { username, ip } },
    select: { failureCount: true, lockedUntil: true },
  });
}
