import type pg from 'pg';

/**
 * Counts the SQL statements sent through `pool` (Prisma's and the session store's) while `work`
 * runs: every connection checked out meanwhile has its query counted.
 */
export async function countQueriesDuring(pool: pg.Pool, work: () => Promise<unknown>): Promise<number> {
  let count = 0;
  let isCounting = true;
  const counting = new WeakSet<object>();
  const onAcquire = (client: pg.PoolClient) => {
    if (counting.has(client)) return;
    counting.add(client);
    const query = client.query;
    client.query = ((...args: unknown[]) => {
      if (isCounting) count += 1;
      return (query as (...rest: unknown[]) => unknown).apply(client, args);
    }) as typeof client.query;
  };
  pool.on('acquire', onAcquire);
  try {
    await work();
  } finally {
    isCounting = false;
    pool.off('acquire', onAcquire);
  }
  return count;
}
