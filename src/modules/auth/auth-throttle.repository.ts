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

/**
 * Before a sign-in: clears the locks of these pairs that have run out (a lock that ended
 * starts a fresh window, so old failures do not count against the next attempt) and
 * reports any lock still running, in one statement (sign-in runs it every time). The
 * CTE's reads see the rows as they were; a cleared lock had ended, so it is never
 * reported as running.
 */
export async function checkLocks(db: Db, username: string, ips: string[], now: Date): Promise<LockCheck> {
  // Raw statements on the sign-in path: Prisma's query compiler costs more CPU than the query.
  const rows = await db.$queryRaw<{ ended: number; locked_until: Date | null; has_rows: boolean }[]>`
    WITH ended AS (
      UPDATE auth_throttle SET locked_until = NULL, failure_count = 0, window_start = ${now}
       WHERE username = ${username} AND ip = ANY(${ips}) AND locked_until IS NOT NULL AND locked_until <= ${now}
      RETURNING 1)
    SELECT (SELECT count(*) FROM ended)::int AS ended,
           (SELECT max(locked_until) FROM auth_throttle
             WHERE username = ${username} AND ip = ANY(${ips}) AND locked_until > ${now}) AS locked_until,
           EXISTS (SELECT 1 FROM auth_throttle WHERE username = ${username}) AS has_rows`;
  const row = rows[0];
  return { endedLocks: row?.ended ?? 0, lockedUntil: row?.locked_until ?? null, hasFailures: row?.has_rows ?? false };
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

/** A successful sign-in forgets the failures of that user. */
export async function reset(db: Db, username: string) {
  await db.$executeRaw`DELETE FROM auth_throttle WHERE username = ${username}`;
}

export async function findState(db: Db, username: string, ip: string): Promise<ThrottleState | null> {
  return db.authThrottle.findUnique({
    where: { username_ip: { username, ip } },
    select: { failureCount: true, lockedUntil: true },
  });
}
