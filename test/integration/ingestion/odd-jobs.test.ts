/**
 * Real Slurm 22.05 jobs of shapes a centre sees and the parsers once mishandled, recorded on the
 * lab (test/fixtures/slurm/22.05/<case>/), ingested through every source into a real database.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createIngestionService } from '../../../src/modules/ingestion/ingestion.service.js';
import type { JobSource } from '../../../src/modules/ingestion/job-source.js';
import { createSacctSource } from '../../../src/modules/ingestion/sacct.source.js';
import { createSacctFileSource } from '../../../src/modules/ingestion/sacct-file.source.js';
import { parseSlurmRestJobsResponse } from '../../../src/modules/ingestion/slurm-rest.parser.js';
import { createMetrics } from '../../../src/modules/metrics/metrics.js';
import { createLogger } from '../../../src/shared/logger.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

const CAPTURES = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05');
const FAKE_SACCT = path.resolve(import.meta.dirname, '../../fixtures/slurm/fake-sacct.mjs');

let db: TestDatabase;
let dir: string;

beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(path.join(os.tmpdir(), 'odd-jobs-'));
});
afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await db.pool.query('TRUNCATE slurm_jobs, ingestion_runs RESTART IDENTITY');
});

function ingest(source: JobSource, window: { start: Date; end: Date }) {
  return createIngestionService({
    db,
    sources: [source],
    unconfigured: {},
    logger: createLogger('silent'),
    metrics: createMetrics(),
    overlapSec: 0,
    initialLookbackSec: 3600,
  }).runOnce({ trigger: 'manual', window });
}

/** The fake sacct under a name that picks its behaviour (see the script's header). */
function fakeSacct(mode: string): string {
  const link = path.join(dir, `sacct-${mode}`);
  if (!existsSync(link)) symlinkSync(FAKE_SACCT, link);
  return link;
}

/** The sacct source (over the capture's recorded output) and the file source of one capture, by name. */
function sacctSourcesOf(capture: string): [string, () => JobSource][] {
  return [
    [
      'sacct',
      () =>
        createSacctSource({
          sacctPath: fakeSacct(capture),
          timeZone: 'UTC',
          cluster: undefined,
          defaultCluster: 'lab',
          timeoutMs: 10_000,
        }),
    ],
    [
      'file',
      () =>
        createSacctFileSource({
          path: path.join(CAPTURES, `${capture}/sacct.psv`),
          timeZone: 'UTC',
          defaultCluster: 'lab',
        }),
    ],
  ];
}

const storedJobs = async () =>
  (
    await db.pool.query(
      `SELECT job_id, job_key, name, "user", account, state, is_terminal, elapsed_sec, alloc_cpus,
              alloc_mem_mb::text, cpu_time_sec::text, total_cpu_sec::text, step_count
         FROM slurm_jobs ORDER BY job_id`,
    )
  ).rows;

// Jobs 16 and 19 of the lab (each ran 1 s); sacct.psv is what the sacct source's own arguments printed.
describe.each([
  {
    what: 'a `|` (sbatch -J "a|b"), which sacct --parsable2 prints unescaped',
    capture: 'pipe-in-name',
    window: { start: new Date('2026-12-03T22:45:08Z'), end: new Date('2026-12-03T22:45:10Z') },
    jobId: '16',
    name: 'a|b',
    totalCpuSec: '0.010',
  },
  {
    what: "a newline (sbatch -J $'line1\\nline2'), which sacct prints across two lines",
    capture: 'newline-in-name',
    window: { start: new Date('2026-12-03T22:45:11Z'), end: new Date('2026-12-03T22:45:13Z') },
    jobId: '19',
    name: 'line1\nline2',
    totalCpuSec: '0.012',
  },
])('a job named with $what', ({ capture, window, jobId, name, totalCpuSec }) => {
  const expected = {
    job_id: jobId,
    job_key: jobId,
    name,
    user: 'bob',
    account: 'physics',
    state: 'COMPLETED',
    is_terminal: true,
    elapsed_sec: 1,
    alloc_cpus: 1,
    alloc_mem_mb: '50.000',
    cpu_time_sec: '1',
    total_cpu_sec: totalCpuSec,
    step_count: 1,
  };

  it('slurmrestd gives it whole', () => {
    const body = JSON.parse(readFileSync(path.join(CAPTURES, `${capture}/rest-dbv0.0.38-jobs.json`), 'utf8'));
    const { items } = parseSlurmRestJobsResponse(body, { version: 'v0.0.38', defaultCluster: 'lab' });
    expect(items).toMatchObject([{ kind: 'job', job: { jobId, name, state: 'COMPLETED' } }]);
  });

  it.each(sacctSourcesOf(capture))(
    'through %s it is stored, billable, as slurmrestd gives it (it used to be skipped, never billed)',
    async (source, build) => {
      const result = await ingest(build(), window);
      expect(result).toMatchObject({
        status: 'finished',
        run: { outcome: 'success', source, seen: 1, skipped: 0 },
      });
      expect(await storedJobs()).toEqual([expected]);
    },
  );
});

describe('a requeued job (scontrol requeue), whose runs slurmrestd returns as two records of one job id', () => {
  // Job 21 of the lab: run 1 22:45:14-22:45:21, requeued (its record turns REQUEUED), eligible again
  // at 22:47:22 (Slurm's requeue delay), run 2 22:47:47-22:48:12 COMPLETED. Captured for two windows:
  // 22:45:15-22:45:30 holds the REQUEUED record alone (run 2 was not eligible yet), 22:47-22:49 run 2.
  const restSource = (file: string): JobSource => ({
    name: 'slurmrestd',
    async *read() {
      const body = JSON.parse(readFileSync(path.join(CAPTURES, 'requeue', file), 'utf8'));
      yield* parseSlurmRestJobsResponse(body, { version: 'v0.0.38', defaultCluster: 'lab' }).items;
    },
  });
  const job21 = async () =>
    (
      await db.pool.query(
        `SELECT state, is_terminal, elapsed_sec, EXISTS (SELECT 1 FROM unbilled_jobs u WHERE u.job_id = j.id) AS is_unbilled
           FROM slurm_jobs j WHERE job_id = '21'`,
      )
    ).rows;

  it('reading the earlier window again (a backfill day) keeps the job as its last run ended, billable', async () => {
    const live = await ingest(restSource('rest-dbv0.0.38-jobs-2247.json'), {
      start: new Date('2026-12-03T22:47:00Z'),
      end: new Date('2026-12-03T22:49:00Z'),
    });
    expect(live).toMatchObject({ status: 'finished', run: { outcome: 'success' } });
    const completed = { state: 'COMPLETED', is_terminal: true, elapsed_sec: 25, is_unbilled: true };
    expect(await job21()).toEqual([completed]);

    const again = await ingest(restSource('rest-dbv0.0.38-jobs-2245.json'), {
      start: new Date('2026-12-03T22:45:15Z'),
      end: new Date('2026-12-03T22:45:30Z'),
    });
    expect(again).toMatchObject({ status: 'finished', run: { outcome: 'success', seen: 1 } });
    // It used to become the superseded run: REQUEUED, not terminal, out of the billing queue.
    expect(await job21()).toEqual([completed]);
  });

  it('the earlier window alone stores neither superseded run, as sacct reads none', async () => {
    await ingest(restSource('rest-dbv0.0.38-jobs-2245.json'), {
      start: new Date('2026-12-03T22:45:15Z'),
      end: new Date('2026-12-03T22:45:30Z'),
    });
    expect((await db.pool.query('SELECT job_id, state FROM slurm_jobs ORDER BY job_id')).rows).toEqual([
      { job_id: '15', state: 'TIMEOUT' },
    ]);
  });
});

describe('an array cancelled while its tasks were pending (scancel before any ran)', () => {
  // Jobs 68 (--array=1-5%2) and 70 (--array=1,3,5-7,200) of the lab, pending on Resources behind
  // job 67 and cancelled; sacct names their one record 68_[1-5%2] and 70_[1,3,5-7,200], and
  // slurmrestd 22.05 gives the tasks as a hex bitmap (array.task "0x3E") without a task id.
  const window = { start: new Date('2026-12-03T23:16:10Z'), end: new Date('2026-12-03T23:16:51Z') };
  const dir = path.join(CAPTURES, 'array-cancelled-pending');
  const rest: JobSource = {
    name: 'slurmrestd',
    async *read() {
      const body = JSON.parse(readFileSync(path.join(dir, 'rest-dbv0.0.38-jobs.json'), 'utf8'));
      yield* parseSlurmRestJobsResponse(body, { version: 'v0.0.38', defaultCluster: 'lab' }).items;
    },
  };
  const sacct = createSacctFileSource({ path: path.join(dir, 'sacct.psv'), timeZone: 'UTC', defaultCluster: 'lab' });
  const arrays = async () =>
    (
      await db.pool.query(
        "SELECT job_id, job_key, array_job_id, array_task_id, state FROM slurm_jobs WHERE job_id IN ('68', '70') ORDER BY job_id",
      )
    ).rows;
  const expected = [
    { job_id: '68', job_key: '68_[1-5%2]', array_job_id: '68', array_task_id: '[1-5%2]', state: 'CANCELLED' },
    {
      job_id: '70',
      job_key: '70_[1,3,5-7,200]',
      array_job_id: '70',
      array_task_id: '[1,3,5-7,200]',
      state: 'CANCELLED',
    },
  ];

  it('has the same job key through slurmrestd as through sacct, so switching the source keeps its key', async () => {
    expect(await ingest(rest, window)).toMatchObject({ status: 'finished', run: { outcome: 'success' } });
    // It used to be stored as 68 and 70 through slurmrestd: receipts know a job by its key, and a
    // switch to sacct gave a job already on a receipt a new key, unbilled.
    expect(await arrays()).toEqual(expected);
    const switched = await ingest(sacct, window);
    expect(switched).toMatchObject({ status: 'finished', run: { outcome: 'success', source: 'file' } });
    expect(await arrays()).toEqual(expected);
  });
});
