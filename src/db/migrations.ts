import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from '../shared/logger.js';
import { PROJECT_ROOT } from '../shared/paths.js';
import { ADVISORY_LOCK_KEYS } from './advisory-locks.js';

export const MIGRATIONS_DIR = path.join(PROJECT_ROOT, 'prisma', 'migrations');

// Any constant works; it only has to be the same for every process.
const MIGRATION_LOCK_KEY = ADVISORY_LOCK_KEYS.migrations;

/**
 * Applies prisma/migrations in order, each in its own transaction, recording them in
 * Prisma's `_prisma_migrations` table so `prisma migrate status` agrees.
 *
 * Prisma's WebAssembly schema engine (the only one that works without downloading
 * native binaries) splits scripts on semicolons and cannot apply PL/pgSQL bodies;
 * Postgres applies a whole script in one simple query just fine.
 */
export async function applyMigrations(databaseUrl: string, logger: Logger): Promise<string[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    // A statement_timeout set for the app's role or database (docs/operations.md) is sized for
    // requests. Rebuilding an index or a column of a large table takes longer, and so may waiting
    // for the lock below while another host migrates: cut by it, a migration failed again at every
    // try and the app never started.
    await client.query('SET statement_timeout = 0');
    // Several workers or replicas may start at once; one migrates, the rest wait.
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
      "id" VARCHAR(36) PRIMARY KEY,
      "checksum" VARCHAR(64) NOT NULL,
      "finished_at" TIMESTAMPTZ,
      "migration_name" VARCHAR(255) NOT NULL,
      "logs" TEXT,
      "rolled_back_at" TIMESTAMPTZ,
      "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
      "applied_steps_count" INTEGER NOT NULL DEFAULT 0)`);
    const applied = await client.query<{ migration_name: string; checksum: string }>(
      'SELECT migration_name, checksum FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL',
    );
    const appliedChecksums = new Map(applied.rows.map((row) => [row.migration_name, row.checksum]));
    const names = (await readdir(MIGRATIONS_DIR, { withFileTypes: true }))
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
    warnIfMigratedByANewerRelease(names, [...appliedChecksums.keys()], logger);
    const newlyApplied: string[] = [];
    for (const name of names) {
      const sql = await readFile(path.join(MIGRATIONS_DIR, name, 'migration.sql'), 'utf8');
      const checksum = createHash('sha256').update(sql).digest('hex');
      const known = appliedChecksums.get(name);
      if (known !== undefined) {
        if (known !== checksum) logger.warn({ migration: name }, 'applied migration was edited afterwards');
        continue;
      }
      await client.query('BEGIN');
      try {
        await client.query(sql);
        await client.query(
          `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count)
           VALUES ($1, $2, now(), $3, 1)`,
          [randomUUID(), checksum, name],
        );
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${name} failed: ${(error as Error).message}`);
      }
      logger.info({ migration: name }, 'migration applied');
      newlyApplied.push(name);
    }
    return newlyApplied;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await client.end();
  }
}

/**
 * An older release started on a database a newer one migrated (a rollback of the code alone, an
 * instance left behind in a deploy) runs on a schema it does not know: it may fail where the newer
 * schema changed (an older release's receipts failed on a NOT NULL column it never wrote). Said at
 * start, so that the errors that follow have an explanation; not refused, since additive migrations
 * leave the older release working.
 */
function warnIfMigratedByANewerRelease(known: string[], applied: string[], logger: Logger) {
  const knownNames = new Set(known);
  const unknown = applied.filter((name) => !knownNames.has(name)).sort();
  if (unknown.length === 0) return;
  logger.warn(
    { unknownMigrations: unknown },
    `the database was migrated by a newer release: ${unknown.length} applied migration(s) are not in this one (newest ${unknown.at(-1)}); ` +
      'it may fail on that schema. Run the newer release, or restore the backup taken before that upgrade (docs/operations.md, "Upgrading")',
  );
}
