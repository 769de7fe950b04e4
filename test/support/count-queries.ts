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

/** A statement sent through the pool: its text and how many parameters it carried. */
export interface SentStatement {
  text: string;
  parameterCount: number;
}

/**
 * The SQL statements sent through `pool` while `work` runs, as countQueriesDuring counts them: to
 * check what a page sends (a list of values spelled out as parameters, say), not only how many.
 */
export async function statementsDuring(pool: pg.Pool, work: () => Promise<unknown>): Promise<SentStatement[]> {
  const sent: SentStatement[] = [];
  let isRecording = true;
  const recording = new WeakSet<object>();
  const onAcquire = (client: pg.PoolClient) => {
    if (recording.has(client)) return;
    recording.add(client);
    const query = client.query;
    client.query = ((...args: unknown[]) => {
      const [first, second] = args as [unknown, unknown];
      if (isRecording) {
        const config =
          typeof first === 'object' && first !== null ? (first as { text?: string; values?: unknown[] }) : {};
        const text = typeof first === 'string' ? first : (config.text ?? '');
        const values = Array.isArray(second) ? second : (config.values ?? []);
        sent.push({ text, parameterCount: values.length });
      }
      return (query as (...rest: unknown[]) => unknown).apply(client, args);
    }) as typeof client.query;
  };
  pool.on('acquire', onAcquire);
  try {
    await work();
  } finally {
    isRecording = false;
    pool.off('acquire', onAcquire);
  }
  return sent;
}
