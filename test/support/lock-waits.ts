import type pg from 'pg';

/**
 * How many sessions of the current database wait for a lock, polled until at least one does
 * or `timeoutMs` passes: a statement sent elsewhere has reached the lock a test holds.
 */
export async function sessionsWaitingForLocks(pool: pg.Pool, timeoutMs = 5_000): Promise<number> {
  let waiting = 0;
  for (let attempt = 0; attempt < timeoutMs / 20 && waiting === 0; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const { rows } = await pool.query<{ waiting: number }>(
      `SELECT count(*)::int AS waiting FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    );
    waiting = rows[0]?.waiting ?? 0;
  }
  return waiting;
}
