import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyMigrations, MIGRATIONS_DIR } from '../../../src/db/migrations.js';
import { findLastLiveRunFinish } from '../../../src/modules/ingestion/ingestion.repository.js';
import { createLogger } from '../../../src/shared/logger.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

// Runs recorded before 20261207090000_ingestion_run_stopped_by_shutdown were told stopped by their
// server's shutdown by their error's ending alone; the migration marks them, so that a scheduled run
// still does not take one for this interval's run (findLastLiveRunFinish reads the column only).
const MIGRATION = '20261207090000_ingestion_run_stopped_by_shutdown';

let db: TestDatabase;
let before: string;
beforeAll(async () => {
  db = await createTestDatabase();
  // The project's migrations up to the one before this one.
  before = mkdtempSync(path.join(os.tmpdir(), 'migrations-before-'));
  cpSync(MIGRATIONS_DIR, before, { recursive: true });
  rmSync(path.join(before, MIGRATION), { recursive: true });
  await db.pool.query('DROP SCHEMA public CASCADE');
  await db.pool.query('CREATE SCHEMA public');
  await applyMigrations(db.url, createLogger('silent'), { migrationsDir: before });
});
afterAll(async () => {
  await db?.drop();
  rmSync(before, { recursive: true, force: true });
});

/** A finished run as the release before the migration recorded it; its id. */
async function recordAsBefore(run: { trigger: string; outcome: string; error: string | null; finishedAt: string }) {
  const { rows } = await db.pool.query<{ id: number }>(
    `INSERT INTO ingestion_runs (trigger, window_start, window_end, outcome, error, started_at, finished_at)
     VALUES ($1, '2026-12-07T08:00:00Z', '2026-12-07T09:00:00Z', $2::"IngestionOutcome", $3, $4::timestamptz - interval '1 second', $4)
     RETURNING id`,
    [run.trigger, run.outcome, run.error, run.finishedAt],
  );
  return rows[0]?.id as number;
}

describe(MIGRATION, () => {
  it('marks the runs a server shutdown stopped, by their old error, and no other', async () => {
    const completed = await recordAsBefore({
      trigger: 'schedule',
      outcome: 'success',
      error: null,
      finishedAt: '2026-12-07T09:00:00Z',
    });
    const failed = await recordAsBefore({
      trigger: 'schedule',
      outcome: 'failed',
      error: 'slurmrestd: slurmrestd cannot be reached',
      finishedAt: '2026-12-07T09:01:00Z',
    });
    const interrupted = await recordAsBefore({
      trigger: 'schedule',
      outcome: 'failed',
      error: 'sacct: stopped: interrupted with Ctrl-C',
      finishedAt: '2026-12-07T09:02:00Z',
    });
    // Only a server's scheduler stopped its runs so: Run now's words ending so were its source's.
    const manual = await recordAsBefore({
      trigger: 'manual',
      outcome: 'failed',
      error: 'slurmrestd: backend stopped: the process is shutting down',
      finishedAt: '2026-12-07T09:03:00Z',
    });
    const stopped = await recordAsBefore({
      trigger: 'schedule',
      outcome: 'failed',
      error: 'slurmrestd: failed: slurmrestd cannot be reached; sacct: stopped: the process is shutting down',
      finishedAt: '2026-12-07T09:04:00Z',
    });

    expect(await applyMigrations(db.url, createLogger('silent'))).toEqual([MIGRATION]);

    const { rows } = await db.pool.query<{ id: number; stopped_by_shutdown: boolean; error: string | null }>(
      'SELECT id, stopped_by_shutdown, error FROM ingestion_runs ORDER BY id',
    );
    expect(rows.map((row) => [row.id, row.stopped_by_shutdown])).toEqual([
      [completed, false],
      [failed, false],
      [interrupted, false],
      [manual, false],
      [stopped, true],
    ]);
    // The error is kept for people (the admin page, the log).
    expect(rows.at(-1)?.error).toBe(
      'slurmrestd: failed: slurmrestd cannot be reached; sacct: stopped: the process is shutting down',
    );
    // The newest run a server's shutdown did not stop: Run now's.
    expect(await findLastLiveRunFinish(db.prisma)).toEqual(new Date('2026-12-07T09:03:00Z'));
  });
});
