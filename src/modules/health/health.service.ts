import pg from 'pg';
import { queryWithin } from '../../db/query-timeout.js';

export type Readiness = { isReady: true } | { isReady: false; error: string };

/**
 * Where the pool connects, as host:port (never the user or password of DATABASE_URL), read as
 * the driver reads its settings. The driver names it when a connection is refused but not when
 * the database is silent, so every readiness failure says it.
 */
export function databaseAddressOf(pool: pg.Pool): string {
  // A Client only parses its settings until it connects.
  const { host, port } = new pg.Client(pool.options);
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Ready means the database answers `SELECT 1` within the timeout. */
export async function checkReadiness(pool: pg.Pool, timeoutMs: number): Promise<Readiness> {
  try {
    await queryWithin(pool, { text: 'SELECT 1' }, timeoutMs);
    return { isReady: true };
  } catch (error) {
    return { isReady: false, error: `database at ${databaseAddressOf(pool)} unavailable: ${(error as Error).message}` };
  }
}
