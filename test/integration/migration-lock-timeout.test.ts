import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyMigrations, MIGRATIONS_DIR } from '../../src/db/migrations.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let dir: string;
beforeAll(async () => {
  db = await createTestDatabase();
  // The project's migrations (all applied to the test database) and one more that needs the lock a
  // schema change takes: nothing else may read slurm_jobs while it waits for it.
  dir = mkdtempSync(path.join(os.tmpdir(), 'migrations-'));
  cpSync(MIGRATIONS_DIR, dir, { recursive: true });
  mkdirSync(path.join(dir, '29991231000000_needs_exclusive_lock'));
  writeFileSync(
    path.join(dir, '29991231000000_needs_exclusive_lock', 'migration.sql'),
    'ALTER TABLE "slurm_jobs" ADD COLUMN "lock_test" INTEGER;',
  );
});
afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

// During a deploy the new release migrates while the old one still serves. A migration that waited
// for a table lock behind a long transaction of the old release (a year's CSV export) queued every
// later query of that table behind itself: /me, receipts and ingestion hung until the export ended.
describe('a migration whose table is held by a long transaction', () => {
  it('waits for the lock a moment at a time, so queries of the table go on, and applies once it is free', async () => {
    const holder = new pg.Client({ connectionString: db.url });
    const reader = new pg.Client({ connectionString: db.url, statement_timeout: 3_000 });
    await holder.connect();
    await reader.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM "slurm_jobs" LIMIT 1');
      const warnings: string[] = [];
      const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line).msg) });
      const migrating = applyMigrations(db.url, logger, { migrationsDir: dir, lockTimeoutMs: 200, retryDelayMs: 100 });
      await expect.poll(() => warnings.length, { timeout: 10_000 }).toBeGreaterThan(0);

      // A request's query of the table while the migration waits: answered, not queued behind it.
      for (let index = 0; index < 5; index++) {
        await expect(reader.query('SELECT count(*) FROM "slurm_jobs"')).resolves.toBeDefined();
      }
      expect(warnings[0]).toMatch(
        /^migration 29991231000000_needs_exclusive_lock waited 200 ms for a lock another session holds \(a long request or export of a running instance\); trying again/,
      );

      await holder.query('COMMIT');
      expect(await migrating).toEqual(['29991231000000_needs_exclusive_lock']);
      const column = await db.pool.query(
        `SELECT 1 FROM information_schema.columns WHERE table_name = 'slurm_jobs' AND column_name = 'lock_test'`,
      );
      expect(column.rowCount).toBe(1);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
      await reader.end();
    }
  }, 60_000);

  it('gives up after a while with an error naming the migration, and applies nothing of it', async () => {
    await db.pool.query('ALTER TABLE "slurm_jobs" DROP COLUMN IF EXISTS "lock_test"');
    await db.pool.query(
      `DELETE FROM "_prisma_migrations" WHERE migration_name = '29991231000000_needs_exclusive_lock'`,
    );
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM "slurm_jobs" LIMIT 1');
      const logger = pino({ level: 'silent' });
      await expect(
        applyMigrations(db.url, logger, { migrationsDir: dir, lockTimeoutMs: 100, retryDelayMs: 50, maxWaitMs: 1_000 }),
      ).rejects.toThrow(
        /^migration 29991231000000_needs_exclusive_lock failed: another session held a lock it needs for more than 1 s \(/,
      );
      const column = await db.pool.query(
        `SELECT 1 FROM information_schema.columns WHERE table_name = 'slurm_jobs' AND column_name = 'lock_test'`,
      );
      expect(column.rowCount).toBe(0);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
    }
  }, 60_000);
});
