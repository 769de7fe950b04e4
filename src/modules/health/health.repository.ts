import type pg from 'pg';
import { queryWithin, sharedReadWithin } from '../../db/query-timeout.js';

/** What /readyz reads of the database in one query (health.service.ts says what each means). */
export interface ReadinessState {
  hasSchema: boolean;
  isReadOnly: boolean;
  /** Shipped migrations the database has not applied. */
  pending: string[];
  /** Migrations that started and never finished (and were not applied since). */
  failed: string[];
  /** Applied migrations this build does not ship. */
  unknown: string[];
}

const readReadiness = sharedReadWithin<ReadinessState>();

/**
 * The readiness query, given up after `timeoutMs`. Throws what the driver throws: a missing
 * `_prisma_migrations` as PostgreSQL's undefined-table error, which the service tells apart.
 * Checks while one is in flight wait for its answer instead of asking again (sharedReadWithin).
 */
export async function readReadinessState(
  pool: pg.Pool,
  timeoutMs: number,
  expectedMigrations: readonly string[],
): Promise<ReadinessState> {
  const { rows } = await readReadiness(pool, timeoutMs, () => readinessQuery(expectedMigrations), expectedMigrations);
  return rows[0] as ReadinessState;
}

function readinessQuery(expectedMigrations: readonly string[]): pg.QueryConfig {
  return {
    text: `SELECT to_regclass('users') IS NOT NULL AS "hasSchema",
        current_setting('transaction_read_only') = 'on' AS "isReadOnly",
        ARRAY(SELECT shipped FROM unnest($1::text[]) AS shipped WHERE NOT EXISTS (
          SELECT 1 FROM "_prisma_migrations" m
          WHERE m.migration_name = shipped AND m.finished_at IS NOT NULL AND m.rolled_back_at IS NULL
        ) ORDER BY shipped) AS "pending",
        ARRAY(SELECT DISTINCT m.migration_name FROM "_prisma_migrations" m
          WHERE m.finished_at IS NULL AND m.rolled_back_at IS NULL AND NOT EXISTS (
            SELECT 1 FROM "_prisma_migrations" done WHERE done.migration_name = m.migration_name
              AND done.finished_at IS NOT NULL AND done.rolled_back_at IS NULL
          ) ORDER BY 1) AS "failed",
        ARRAY(SELECT DISTINCT m.migration_name FROM "_prisma_migrations" m
          WHERE m.finished_at IS NOT NULL AND m.rolled_back_at IS NULL
            AND m.migration_name <> ALL($1::text[]) ORDER BY 1) AS "unknown"`,
    values: [expectedMigrations],
  };
}

/** Whether the `users` table exists, given up after `timeoutMs`. */
export async function hasUsersTable(pool: pg.Pool, timeoutMs: number): Promise<boolean> {
  const { rows } = await queryWithin<{ hasUsers: boolean }>(
    pool,
    { text: `SELECT to_regclass('users') IS NOT NULL AS "hasUsers"` },
    timeoutMs,
  );
  return rows[0]?.hasUsers === true;
}
