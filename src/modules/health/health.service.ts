import type pg from 'pg';
import { withQueryTimeout } from '../../db/query-timeout.js';

export type Readiness = { isReady: true } | { isReady: false; error: string };

/** Ready means the database answers `SELECT 1` within the timeout. */
export async function checkReadiness(pool: pg.Pool, timeoutMs: number): Promise<Readiness> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`database did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    // The query gets the same limit, so a probe of a silent database gives its connection up
    // (destroyed) when it gives up, instead of holding it for the pool's longer query timeout:
    // a load balancer probing every few seconds would otherwise take the pool from the pages.
    await Promise.race([pool.query(withQueryTimeout({ text: 'SELECT 1' }, timeoutMs)), timeout]);
    return { isReady: true };
  } catch (error) {
    return { isReady: false, error: `database unavailable: ${(error as Error).message}` };
  } finally {
    clearTimeout(timer);
  }
}
