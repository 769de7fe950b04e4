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

/** The pairs whose lock is still running at `now`, latest end first. */
export async function findActiveLock(db: Db, username: string, ips: string[], now: Date): Promise<Date | null> {
  // Raw statements on the sign-in path: Prisma's query compiler costs more CPU than the query.
  const rows = await db.$queryRaw<{ locked_until: Date }[]>`
    SELECT locked_until FROM auth_throttle
    WHERE username = ${username} AND ip = ANY(${ips}) AND locked_until > ${now}
    ORDER BY locked_until DESC LIMIT 1`;
  return rows[0]?.locked_until ?? null;
}

/**
 * Clears locks that have run out, returning how many ended. A lock that ended
 * starts a fresh window: the old failures do not count against the next attempt.
 */
export async function clearExpiredLocks(db: Db, username: string, ips: string[], now: Date): Promise<number> {
  return db.$executeRaw`
    UPDATE auth_throttle SET locked_until = NULL, failure_count = 0, window_start = ${now}
    WHERE username = ${username} AND ip = ANY(${ips}) AND locked_until IS NOT NULL AND locked_until <= ${now}`;
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
