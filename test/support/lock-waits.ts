import type pg from 'pg';

/**
 * How many sessions of the current database wait for a lock, polled until at least `atLeast` do
 * or `timeoutMs` passes: a statement sent elsewhere has reached the lock a test holds.
 */
export async function sessionsWaitingForLocks(pool: pg.Pool, timeoutMs = 5_000, atLeast = 1): Promise<number> {
  let waiting = 0;
  for (let attempt = 0; attempt < timeoutMs / 20 && waiting < atLeast; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const { rows } = await pool.query<{ waiting: number }>(
      `SELECT count(*)::int AS waiting FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    );
    waiting = rows[0]?.waiting ?? 0;
  }
  return waiting;
}

/**
 * How many sessions of the current database wait for another transaction to end (a row it
 * changed, a unique key it inserted), polled as sessionsWaitingForLocks is: a table lock that
 * was just released is not counted.
 */
export async function transactionsWaitedOn(pool: pg.Pool, timeoutMs = 5_000): Promise<number> {
  let waiting = 0;
  for (let attempt = 0; attempt < timeoutMs / 20 && waiting === 0; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const { rows } = await pool.query<{ waiting: number }>(
      `SELECT count(*)::int AS waiting FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE a.datname = current_database() AND NOT l.granted AND l.locktype IN ('transactionid', 'tuple')`,
    );
    waiting = rows[0]?.waiting ?? 0;
  }
  return waiting;
}

/**
 * Holds a SHARE lock on `table` while a server's prune timer keeps ticking, and returns how many
 * `DELETE FROM <table>` statements then wait for it: 1 when the prunes of every process of an
 * instance are one, more when each worker prunes on its own (or a tick starts another meanwhile).
 */
export async function prunesWaitingOnLockedTable(pool: pg.Pool, table: string): Promise<number> {
  const waitingPrunes = async () => {
    const { rows } = await pool.query<{ waiting: number }>(
      `SELECT count(*)::int AS waiting FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE $1`,
      [`%DELETE FROM ${table}%`],
    );
    return rows[0]?.waiting ?? 0;
  };
  const blocker = await pool.connect();
  try {
    await blocker.query(`BEGIN; LOCK TABLE ${table} IN SHARE MODE`);
    for (let poll = 0; poll < 100 && (await waitingPrunes()) === 0; poll++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // Several more ticks of a 1 s timer: any other prune would be waiting by now.
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    return await waitingPrunes();
  } finally {
    await blocker.query('COMMIT');
    blocker.release();
  }
}
