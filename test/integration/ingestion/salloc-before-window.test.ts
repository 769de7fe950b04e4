/**
 * The sacct source reads a window's jobs that started before it again by id (sacct-reread.test.ts), and
 * under PRICING_CPU_BASIS=used each sacct output is refused when its jobs ran and it has no step row (an
 * `-X` wrapper's, allocations-only.ts). The re-read by id was refused so when the jobs it read had no step:
 * an `salloc` in which nothing ran (its command ran on the login node, no srun), started before the window.
 * Recorded on the lab (test/fixtures/slurm/22.05/salloc-before-window/window.txt).
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createIngestionService } from '../../../src/modules/ingestion/ingestion.service.js';
import { createSacctSource } from '../../../src/modules/ingestion/sacct.source.js';
import { createMetrics } from '../../../src/modules/metrics/metrics.js';
import { createLogger } from '../../../src/shared/logger.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

const CAPTURE = 'salloc-before-window';
const FAKE_SACCT = path.resolve(import.meta.dirname, '../../fixtures/slurm/fake-sacct.mjs');
/** After job 20 (the salloc) started at 07:27:42; job 21 ran inside it, job 20 ended in it. */
const WINDOW = { start: new Date('2026-12-06T07:27:45Z'), end: new Date('2026-12-06T07:28:40Z') };

let db: TestDatabase;
let dir: string;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await db.pool.query('TRUNCATE slurm_jobs, ingestion_runs RESTART IDENTITY CASCADE');
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = mkdtempSync(path.join(os.tmpdir(), 'salloc-before-window-'));
});

function ingest(cpuBasis: 'used' | 'allocated', capture = CAPTURE, window = WINDOW, addsX = false) {
  const link = path.join(dir, `sacct-${capture}`);
  if (!existsSync(link)) symlinkSync(FAKE_SACCT, link);
  // A SACCT_PATH wrapper that adds -X (`exec sacct -X "$@"`).
  const wrapper = path.join(dir, 'sacct-adding-x');
  writeFileSync(wrapper, `#!/bin/sh\nexec '${link}' -X "$@"\n`);
  chmodSync(wrapper, 0o755);
  const source = createSacctSource({
    inheritedEnvironment: process.env,
    sacctPath: addsX ? wrapper : link,
    timeZone: 'UTC',
    cluster: undefined,
    defaultCluster: 'lab',
    timeoutMs: 10_000,
    runAs: null,
    cpuBasis,
  });
  const service = createIngestionService({
    db,
    sources: [source],
    unconfigured: {},
    logger: createLogger('silent'),
    metrics: createMetrics(),
    overlapSec: 0,
    initialLookbackSec: 3600,
  });
  return {
    run: () => service.runOnce({ trigger: 'manual', window }),
    calls: () =>
      readFileSync(`${link}.args`, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as string[]),
  };
}

const stored = async () =>
  (
    await db.pool.query(
      `SELECT job_id, name, state, step_count, total_cpu_sec::text, cpu_time_sec::text FROM slurm_jobs ORDER BY job_id`,
    )
  ).rows;

describe('sacct: an salloc without steps that started before the window is read again by id', () => {
  it.each(['used', 'allocated'] as const)('stores it and completes the window (%s basis)', async (basis) => {
    const { run, calls } = ingest(basis);
    const result = await run();
    // It failed with "sacct: SACCT_PATH … printed no step rows (does it run sacct with -X / --allocations?)
    // … its 1 job(s) that ran (first: job 20) …", and as a failed run does not move the window, so did every
    // run after it (seen on the lab: a later job with steps ending in the window did not help).
    expect(result).toMatchObject({ status: 'finished', run: { outcome: 'success', inserted: 2, error: null } });
    // Its TotalCPU of 0 is sacct's own for a job in which nothing ran, a real zero (docs/pricing.md).
    expect(await stored()).toEqual([
      {
        job_id: '20',
        name: 'salloc-idle',
        state: 'COMPLETED',
        step_count: 0,
        total_cpu_sec: '0.000',
        cpu_time_sec: '50',
      },
      {
        job_id: '21',
        name: 'short-inside',
        state: 'COMPLETED',
        step_count: 1,
        total_cpu_sec: '0.002',
        cpu_time_sec: '3',
      },
    ]);
    const [window, reread, ...more] = calls();
    expect(window).toContain('--starttime=2026-12-06T07:27:45');
    expect(reread).toEqual(expect.arrayContaining(['--jobs=20', '--starttime=2026-12-06T07:27:42']));
    expect(more).toEqual([]);
  });
});

/**
 * A window whose only job that ran is such an salloc (recorded on the lab, 22.05/salloc-alone: job 20 alone in
 * 07:28:00 .. 07:28:40) prints no step row, as -X output does. sacct tells them apart when asked for the job's
 * batch step (`--jobs=20.batch`): nothing (it has none), where sacct -X prints the job's own row.
 */
describe('sacct: a window whose only job that ran is an salloc without steps', () => {
  const ALONE = { start: new Date('2026-12-06T07:28:00Z'), end: new Date('2026-12-06T07:28:40Z') };

  it('is read (it was refused as -X output, and a day of a backfill so for good)', async () => {
    const { run, calls } = ingest('used', 'salloc-alone', ALONE);
    const result = await run();
    expect(result).toMatchObject({ status: 'finished', run: { outcome: 'success', inserted: 1, error: null } });
    expect(await stored()).toEqual([
      {
        job_id: '20',
        name: 'salloc-idle',
        state: 'COMPLETED',
        step_count: 0,
        total_cpu_sec: '0.000',
        cpu_time_sec: '50',
      },
    ]);
    // The window's read, then the check: job 20's batch step, by id, over its run; then job 20 again by id, as
    // it started before the window (sacct-reread.test.ts).
    const [window, check, reread, ...more] = calls();
    expect(reread).toEqual(expect.arrayContaining(['--jobs=20', '--starttime=2026-12-06T07:27:42']));
    expect(window).toContain('--starttime=2026-12-06T07:28:00');
    expect(check).toEqual(
      expect.arrayContaining(['--jobs=20.batch', '--starttime=2026-12-06T07:27:42', '--endtime=2026-12-06T07:28:32']),
    );
    expect(more).toEqual([]);
  });

  it('is still refused when SACCT_PATH adds -X, which prints the job row for its batch step', async () => {
    const { run } = ingest('used', 'salloc-alone', ALONE, true);
    const result = await run();
    expect(result).toMatchObject({ run: { outcome: 'failed' } });
    expect(JSON.stringify(result)).toContain('printed no step rows (does it run sacct with -X / --allocations?)');
    expect(await stored()).toEqual([]);
  });
});
