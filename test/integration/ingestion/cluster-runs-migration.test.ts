import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyMigrations, MIGRATIONS_DIR } from '../../../src/db/migrations.js';
import { createSacctFileSource } from '../../../src/modules/ingestion/sacct-file.source.js';
import { createLogger } from '../../../src/shared/logger.js';
import { ingestionService } from '../../support/ingest-window.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

// A single-cluster site upgrades: its runs, recorded before 20261208000000_ingestion_run_cluster, have no
// cluster, and the migration cannot know SLURM_CLUSTER. Its window must go on where it was, not start
// INGEST_LOOKBACK_DAYS back nor, worse, be lost.
const MIGRATION = '20261208000000_ingestion_run_cluster';

let db: TestDatabase;
let before: string;
let dir: string;
beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(path.join(os.tmpdir(), 'cluster-runs-migration-'));
  before = mkdtempSync(path.join(os.tmpdir(), 'migrations-before-'));
  cpSync(MIGRATIONS_DIR, before, { recursive: true });
  // The schema of the release before: this migration and every later one (they may need its column) left out.
  for (const name of readdirSync(before)) {
    if (/^\d/.test(name) && name >= MIGRATION) rmSync(path.join(before, name), { recursive: true });
  }
  await db.pool.query('DROP SCHEMA public CASCADE');
  await db.pool.query('CREATE SCHEMA public');
  await applyMigrations(db.url, createLogger('silent'), { migrationsDir: before });
});
afterAll(async () => {
  await db?.drop();
  rmSync(before, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

describe(MIGRATION, () => {
  it("leaves the runs before it without a cluster, and the first run of the site's SLURM_CLUSTER goes on from their window", async () => {
    // The last scheduled run before the upgrade read up to 13:00; the one after it failed.
    await db.pool.query(
      `INSERT INTO ingestion_runs (trigger, window_start, window_end, outcome, started_at, finished_at)
       VALUES ('schedule', '2026-11-23T12:40:00Z', '2026-11-23T13:00:00Z', 'success', '2026-11-23T13:00:00Z', '2026-11-23T13:00:05Z'),
              ('schedule', '2026-11-23T12:50:00Z', '2026-11-23T13:20:00Z', 'failed', '2026-11-23T13:20:00Z', '2026-11-23T13:20:05Z')`,
    );

    const applied = await applyMigrations(db.url, createLogger('silent'));
    expect(applied[0]).toBe(MIGRATION);
    expect(applied.every((name) => name >= MIGRATION)).toBe(true);
    const clusters = await db.pool.query<{ cluster: string | null }>('SELECT cluster FROM ingestion_runs ORDER BY id');
    expect(clusters.rows).toEqual([{ cluster: null }, { cluster: null }]);

    const file = path.join(dir, 'hpc.psv');
    // Ended at 13:10, after the last run that read, and at 13:15, in the window of the failed one.
    writeFileSync(
      file,
      'JobID|JobIDRaw|User|State|ElapsedRaw|Start|End|AllocTRES\n' +
        '7|7|ann|COMPLETED|600|2026-11-23T13:00:00|2026-11-23T13:10:00|cpu=1,mem=1G,node=1\n' +
        '8|8|ann|COMPLETED|600|2026-11-23T13:05:00|2026-11-23T13:15:00|cpu=1,mem=1G,node=1\n',
    );
    const hpc = ingestionService(db, createSacctFileSource({ path: file, timeZone: 'UTC', defaultCluster: 'hpc' }), {
      cluster: 'hpc',
      overlapSec: 600,
      initialLookbackSec: 60,
      now: () => new Date('2026-11-23T14:00:00Z'),
    });
    const result = await hpc.runOnce({ trigger: 'schedule' });
    expect(result).toMatchObject({
      status: 'finished',
      run: { outcome: 'success', inserted: 2, window: { start: new Date('2026-11-23T12:50:00Z') } },
    });
    const after = await db.pool.query<{ cluster: string | null }>('SELECT cluster FROM ingestion_runs ORDER BY id');
    expect(after.rows).toEqual([{ cluster: 'hpc' }, { cluster: 'hpc' }, { cluster: 'hpc' }]);
  });
});
