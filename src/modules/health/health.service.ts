import type pg from 'pg';

export type Readiness = { isReady: true } | { isReady: false; error: string };

/** Ready means the database answers `SELECT 1` within the timeout. */
export async function checkReadiness(pool: pg.Pool, timeoutMs: number): Promise<Readiness> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`database did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([pool.query('SELECT 1'), timeout]);
    return { isReady: true };
  } catch (error) {
    return { isReady: false, error: `database unavailable: ${(error as Error).message}` };
  } finally {
    clearTimeout(timer);
  }
}
