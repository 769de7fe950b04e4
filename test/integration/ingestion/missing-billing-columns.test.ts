import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createIngestionService } from '../../../src/modules/ingestion/ingestion.service.js';
import { SACCT_FORMAT } from '../../../src/modules/ingestion/sacct.parser.js';
import { createMetrics } from '../../../src/modules/metrics/metrics.js';
import { createLogger } from '../../../src/shared/logger.js';
import { labFileSource } from '../../support/ingest-window.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

/**
 * A file of an older sacct --format is read on purpose: without AllocTRES, CPUs come from AllocCPUS
 * and memory from ReqMem. But without AllocTRES and ReqTRES no GPU can be read, and without AllocTRES
 * and AllocCPUS no allocated CPU: its jobs were stored, and billed, with none, and the run said success
 * and nothing more. The run's notes (which /admin/ingestion and `npm run ingest` show) say so now,
 * naming the columns, the jobs and what was billed as zero.
 */
const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures');
const WINDOW = { start: new Date('2026-11-23T15:00:00Z'), end: new Date('2026-11-23T16:00:00Z') };
const EXPORT_AGAIN =
  `. Export it with --format=${SACCT_FORMAT.join(',')} and read those days again ` +
  '(npm run ingest -- --from … --to … --force)';
const NO_GPU =
  '2 job(s) stored with no GPU, billed 0 GPU-hours: the sacct output has no AllocTRES or ReqTRES column ' +
  '(first: job 101 of cluster lab (line 2))';
const NO_CPU =
  '2 job(s) stored with no allocated CPU, billed 0 CPU-hours under PRICING_CPU_BASIS=allocated (under used, ' +
  'those without TotalCPU and CPUTimeRAW): the sacct output has no AllocTRES or AllocCPUS column ' +
  '(first: job 101 of cluster lab (line 2))';

let db: TestDatabase;
let dir: string;

beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(path.join(os.tmpdir(), 'missing-billing-columns-'));
});
afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await db.pool.query('TRUNCATE slurm_jobs, ingestion_runs RESTART IDENTITY');
});

/** One run of the file source over a copy of `fixture`. */
async function runOver(fixture: string) {
  const file = path.join(dir, 'sacct.psv');
  copyFileSync(path.join(FIXTURES, fixture), file);
  const service = createIngestionService({
    db,
    sources: [labFileSource(file)],
    unconfigured: {},
    logger: createLogger('silent'),
    metrics: createMetrics(),
    overlapSec: 600,
    initialLookbackSec: 86_400,
    timeZone: 'UTC',
    now: () => WINDOW.end,
  });
  const result = await service.runOnce({ trigger: 'manual', window: WINDOW });
  if (result.status !== 'finished') throw new Error(`expected a finished run, got ${result.status}`);
  return result.run;
}

const storedJobs = async () =>
  (await db.pool.query('SELECT job_id, alloc_cpus, alloc_gpus, req_gpus FROM slurm_jobs ORDER BY job_id')).rows;

describe('a file without the columns GPU or CPU billing reads', () => {
  it('without AllocTRES and ReqTRES: read, and the notes say its jobs were billed no GPU', async () => {
    const run = await runOver('sacct-old-columns/alloccpus-no-tres.psv');
    expect(run).toMatchObject({ outcome: 'success', inserted: 2, skipped: 0 });
    expect(run.sourceNotes.columns).toBe(`${NO_GPU}${EXPORT_AGAIN}`);
    expect(await storedJobs()).toEqual([
      { job_id: '101', alloc_cpus: 4, alloc_gpus: 0, req_gpus: 0 },
      { job_id: '102', alloc_cpus: 2, alloc_gpus: 0, req_gpus: 0 },
    ]);
  });

  it('without AllocCPUS too: the notes say no allocated CPU either', async () => {
    const run = await runOver('sacct-old-columns/no-tres-no-alloccpus.psv');
    expect(run).toMatchObject({ outcome: 'success', inserted: 2, skipped: 0 });
    expect(run.sourceNotes.columns).toBe(`${NO_GPU}; ${NO_CPU}${EXPORT_AGAIN}`);
    expect((await storedJobs()).map((job) => job.alloc_cpus)).toEqual([0, 0]);
  });

  it('a file with the sacct source’s columns has no such note', async () => {
    const run = await runOver('slurm/22.05/final/sacct-steps-extra.psv');
    expect(run.outcome).toBe('success');
    expect(run.sourceNotes).not.toHaveProperty('columns');
  });
});
