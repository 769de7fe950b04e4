import pg from 'pg';
import { queryWithin } from '../../db/query-timeout.js';
import { DATABASE_HAS_NO_SCHEMA } from '../../shared/errors.js';

/**
 * What a readiness check saw. `error` is for the log (it names the database's host and port);
 * `publicError` is what /readyz may say to anyone who can reach it.
 */
export type Readiness = { isReady: true } | { isReady: false; error: string; publicError: string };

/** What /readyz says of a database it cannot reach; the cause goes to the log only. */
export const DATABASE_UNAVAILABLE = 'database unavailable';

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

/**
 * Ready means the database answers within the timeout and has the users table. A database restored
 * empty (a restore that failed, a new one nobody migrated) answered `SELECT 1`, so /readyz said
 * ready while every page failed. Probed every few seconds, so one lookup of one name in the catalogue
 * (to_regclass, through the same search_path as the app's queries), not a count of the tables: users
 * is the table every signed-in page reads, and the one the first migration creates.
 */
export async function checkReadiness(pool: pg.Pool, timeoutMs: number): Promise<Readiness> {
  let hasSchema: boolean;
  try {
    const { rows } = await queryWithin<{ hasSchema: boolean }>(
      pool,
      { text: `SELECT to_regclass('users') IS NOT NULL AS "hasSchema"` },
      timeoutMs,
    );
    hasSchema = rows[0]?.hasSchema === true;
  } catch (error) {
    return {
      isReady: false,
      error: `database at ${databaseAddressOf(pool)} unavailable: ${(error as Error).message}`,
      publicError: DATABASE_UNAVAILABLE,
    };
  }
  if (hasSchema) return { isReady: true };
  return {
    isReady: false,
    error: `database at ${databaseAddressOf(pool)} has no schema (no users table): run npm run db:migrate`,
    publicError: DATABASE_HAS_NO_SCHEMA,
  };
}
