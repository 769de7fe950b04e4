import type pg from 'pg';

/**
 * Counts the SQL statements sent through `pool` (Prisma's and the session store's) while `work`
 * runs: every connection checked out meanwhile has its query counted (statementsDuring's).
 */
export async function countQueriesDuring(pool: pg.Pool, work: () => Promise<unknown>): Promise<number> {
  return (await statementsDuring(pool, work)).length;
}

/** A statement sent through the pool: its text and how many parameters it carried. */
export interface SentStatement {
  text: string;
  parameterCount: number;
}

/**
 * The SQL statements sent through `pool` (Prisma's and the session store's) while `work` runs: every
 * connection checked out meanwhile has its statements recorded, to check what a page sends (a list of
 * values spelled out as parameters, say), or how many (countQueriesDuring).
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
