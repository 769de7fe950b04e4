/**
 * Real Slurm 22.05 jobs of shapes a centre sees and the parsers once mishandled, recorded on the
 * lab (test/fixtures/slurm/22.05/<case>/), ingested through every source into a real database.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { JobSource } from '../../../src/modules/ingestion/job-source.js';
import { createSacctSource } from '../../../src/modules/ingestion/sacct.source.js';
import { createSacctFileSource } from '../../../src/modules/ingestion/sacct-file.source.js';
import { parseSlurmRestJobsResponse } from '../../../src/modules/ingestion/slurm-rest.parser.js';
import { createMetrics } from '../../../src/modules/metrics/metrics.js';
import { createRatesService } from '../../../src/modules/pricing/rates.service.js';
import { createReceiptsService } from '../../../src/modules/receipts/receipts.service.js';
import { buildTiers } from '../../support/billing-factories.js';
import { ingestWindow, labFileSource, labRestSource } from '../../support/ingest-window.js';
import { RESIZED_SACCT, RESIZED_WINDOW, resizedRestAnswer } from '../../support/resized-job.js';
import { buildTestConfig } from '../../support/test-app.js';
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
          inheritedEnvironment: process.env,
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

// Jobs 16 and 19 of the lab (each ran 1 s), and job 4 of a later lab; sacct.psv is what the sacct source's own
// arguments printed.
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
  {
    what: "both (sbatch -J $'a|b\\nc|d'), which sacct prints across two lines with the `|`s unescaped",
    capture: 'pipe-and-newline-in-name',
    window: { start: new Date('2026-12-04T03:20:57Z'), end: new Date('2026-12-04T03:21:06Z') },
    jobId: '4',
    name: 'a|b\nc|d',
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
      const result = await ingestWindow(db, build(), window);
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
  const restSource = (file: string) => labRestSource(path.join(CAPTURES, 'requeue', file));
  const job21 = async () =>
    (
      await db.pool.query(
        `SELECT state, is_terminal, elapsed_sec, EXISTS (SELECT 1 FROM unbilled_jobs u WHERE u.job_id = j.id) AS is_unbilled
           FROM slurm_jobs j WHERE job_id = '21'`,
      )
    ).rows;

  it('reading the earlier window again (a backfill day) keeps the job as its last run ended, billable', async () => {
    const live = await ingestWindow(db, restSource('rest-dbv0.0.38-jobs-2247.json'), {
      start: new Date('2026-12-03T22:47:00Z'),
      end: new Date('2026-12-03T22:49:00Z'),
    });
    expect(live).toMatchObject({ status: 'finished', run: { outcome: 'success' } });
    const completed = { state: 'COMPLETED', is_terminal: true, elapsed_sec: 25, is_unbilled: true };
    expect(await job21()).toEqual([completed]);

    const again = await ingestWindow(db, restSource('rest-dbv0.0.38-jobs-2245.json'), {
      start: new Date('2026-12-03T22:45:15Z'),
      end: new Date('2026-12-03T22:45:30Z'),
    });
    expect(again).toMatchObject({ status: 'finished', run: { outcome: 'success', seen: 1 } });
    // It used to become the superseded run: REQUEUED, not terminal, out of the billing queue.
    expect(await job21()).toEqual([completed]);
  });

  // data_parser v0.0.39+ (Slurm 23.02 and later) prints a state as its base state and then its flags: slurmdbd
  // keeps a superseded run as the REQUEUED flag alone (base 0, PENDING), so it reads ["PENDING", "REQUEUED"]
  // where sacct and 22.05's slurmrestd print REQUEUED (Slurm's job_state_string puts such flags first).
  const asStateArrays = (file: string): JobSource => ({
    name: 'slurmrestd',
    async *read() {
      const body = JSON.parse(readFileSync(path.join(CAPTURES, 'requeue', file), 'utf8')) as {
        jobs: { state: { current: unknown } }[];
      };
      for (const job of body.jobs) {
        const current = job.state.current as string;
        job.state.current = current === 'REQUEUED' ? ['PENDING', 'REQUEUED'] : [current];
      }
      yield* parseSlurmRestJobsResponse(body, { version: 'v0.0.42', defaultCluster: 'lab' }).items;
    },
  });

  it('v0.0.39+: the earlier window read again adds no second, pending, job 21 beside the billed run', async () => {
    await ingestWindow(db, asStateArrays('rest-dbv0.0.38-jobs-2247.json'), {
      start: new Date('2026-12-03T22:47:00Z'),
      end: new Date('2026-12-03T22:49:00Z'),
    });
    const again = await ingestWindow(db, asStateArrays('rest-dbv0.0.38-jobs-2245.json'), {
      start: new Date('2026-12-03T22:45:15Z'),
      end: new Date('2026-12-03T22:45:30Z'),
    });
    expect(again).toMatchObject({ status: 'finished', run: { outcome: 'success' } });
    // The superseded run was read as PENDING: stored beside the finished run as another job,
    // 21@20261203T224333Z, pending for good on the user's usage page.
    expect((await db.pool.query('SELECT job_id, job_key, state FROM slurm_jobs ORDER BY job_id')).rows).toEqual([
      { job_id: '15', job_key: '15', state: 'TIMEOUT' },
      { job_id: '21', job_key: '21', state: 'COMPLETED' },
    ]);
  });

  it('the earlier window alone stores neither superseded run, as sacct reads none', async () => {
    await ingestWindow(db, restSource('rest-dbv0.0.38-jobs-2245.json'), {
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
  const rest = labRestSource(path.join(dir, 'rest-dbv0.0.38-jobs.json'));
  const sacct = labFileSource(path.join(dir, 'sacct.psv'));
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
    expect(await ingestWindow(db, rest, window)).toMatchObject({ status: 'finished', run: { outcome: 'success' } });
    // It used to be stored as 68 and 70 through slurmrestd: receipts know a job by its key, and a
    // switch to sacct gave a job already on a receipt a new key, unbilled.
    expect(await arrays()).toEqual(expected);
    const switched = await ingestWindow(db, sacct, window);
    expect(switched).toMatchObject({ status: 'finished', run: { outcome: 'success', source: 'file' } });
    expect(await arrays()).toEqual(expected);
  });
});

describe("a job id Slurm gave again (slurmctld's state lost), whose two jobs slurmdbd keeps apart by submit time", () => {
  // Recorded on the lab (test/fixtures/slurm/README.md): jobs 1 (bob) and 2 (alice) ran, slurmctld was
  // restarted with its state cleared, and the next two jobs (alice, bob) were given ids 1 and 2 again.
  // reused-id-before holds the first two alone, reused-id-after the window of all four.
  const WINDOW = { start: new Date('2026-12-04T03:13:00Z'), end: new Date('2026-12-04T03:15:00Z') };
  const NOW = new Date('2026-12-05T00:00:00Z');
  const BILL_DAY = '2026-12-04';
  const FIRST = new Date('2026-12-04T03:13:48Z');
  const LATER = new Date('2026-12-04T03:14:30Z');
  const job = (jobId: string, user: string, name: string, elapsedSec: number, submitAt: Date, isUnbilled: boolean) => ({
    job_id: jobId,
    job_key: jobId,
    user,
    name,
    elapsed_sec: elapsedSec,
    submit_at: submitAt,
    is_unbilled: isUnbilled,
  });
  const FIRST_JOBS = [
    job('1', 'bob', 'reuse-first-bob', 3, FIRST, true),
    job('2', 'alice', 'reuse-first-alice', 2, FIRST, true),
  ];
  // After the first two were billed.
  const ALL_JOBS = [
    job('1', 'bob', 'reuse-first-bob', 3, FIRST, false),
    job('1@20261204T031430Z', 'alice', 'reuse-later-alice', 5, LATER, true),
    job('2', 'alice', 'reuse-first-alice', 2, FIRST, false),
    job('2@20261204T031430Z', 'bob', 'reuse-later-bob', 2, LATER, true),
  ];
  const restSourceOf = (capture: string) => labRestSource(path.join(CAPTURES, capture, 'rest-dbv0.0.38-jobs.json'));
  const sourcesOf = (capture: string): [string, () => JobSource][] => [
    ['slurmrestd', () => restSourceOf(capture)],
    ...sacctSourcesOf(capture),
  ];
  const BEFORE = 'reused-id-before';
  const AFTER = 'reused-id-after';
  const jobs = async () =>
    (
      await db.pool.query(
        `SELECT job_id, job_key, "user", name, elapsed_sec, submit_at,
                EXISTS (SELECT 1 FROM unbilled_jobs u WHERE u.job_id = j.id) AS is_unbilled
           FROM slurm_jobs j ORDER BY job_id`,
      )
    ).rows;
  const receipts = () => {
    const config = buildTestConfig(db.url, { APP_TZ: 'UTC' });
    const now = () => NOW;
    const rates = createRatesService({ db, config, now });
    return createReceiptsService({ db, config, rates, metrics: createMetrics(), now });
  };
  const actor = (username: string) => ({ actor: username, ip: '127.0.0.1', userAgent: 'test' });

  beforeAll(async () => {
    await buildTiers(db);
  });
  beforeEach(async () => {
    await db.pool.query('TRUNCATE receipt_items, receipts CASCADE');
  });

  it.each(sourcesOf(BEFORE).map(([name, before], index) => [name, before, sourcesOf(AFTER)[index]?.[1]] as const))(
    'through %s the later jobs are stored and billed beside the earlier ones, billed already, which keep their keys and usage',
    async (_source, readBefore, readAfter) => {
      if (!readAfter) throw new Error('no source for the later window');
      expect(await ingestWindow(db, readBefore(), WINDOW)).toMatchObject({
        status: 'finished',
        run: { outcome: 'success' },
      });
      expect(await jobs()).toEqual(FIRST_JOBS);
      for (const user of ['alice', 'bob']) await receipts().createForUser({ username: user }, BILL_DAY, actor(user));

      const later = await ingestWindow(db, readAfter(), WINDOW);
      expect(later).toMatchObject({ status: 'finished', run: { outcome: 'success', seen: 4, inserted: 2 } });
      // The later jobs used to overwrite the earlier rows: the first jobs' usage gone, the later jobs on
      // the first jobs' receipts, never billed themselves.
      expect(await jobs()).toEqual(ALL_JOBS);
      for (const user of ['alice', 'bob']) await receipts().createForUser({ username: user }, BILL_DAY, actor(user));
      const items = await db.pool.query(
        'SELECT r.username, ri.job_key FROM receipt_items ri JOIN receipts r ON r.id = ri.receipt_id ORDER BY ri.id',
      );
      expect(items.rows).toEqual([
        { username: 'alice', job_key: '2' },
        { username: 'bob', job_key: '1' },
        { username: 'alice', job_key: '1@20261204T031430Z' },
        { username: 'bob', job_key: '2@20261204T031430Z' },
      ]);

      // Read again: nothing changes.
      const again = await ingestWindow(db, readAfter(), WINDOW);
      expect(again).toMatchObject({ status: 'finished', run: { inserted: 0, updated: 0 } });
      expect((await jobs()).map((job) => job.job_key)).toEqual(ALL_JOBS.map((job) => job.job_key));
    },
  );

  it('every source gives both jobs the same keys, so a switch of source bills nothing again', async () => {
    for (const [name, build] of sourcesOf(AFTER)) {
      const run = await ingestWindow(db, build(), WINDOW);
      expect(run, name).toMatchObject({ status: 'finished', run: { outcome: 'success', seen: 4 } });
      expect(
        (await jobs()).map(({ job_id, job_key, user }) => ({ job_id, job_key, user })),
        name,
      ).toEqual(ALL_JOBS.map(({ job_id, job_key, user }) => ({ job_id, job_key, user })));
    }
    const runs = await db.pool.query('SELECT source, inserted FROM ingestion_runs ORDER BY id');
    expect(runs.rows).toEqual([
      { source: 'slurmrestd', inserted: 4 },
      { source: 'sacct', inserted: 0 },
      { source: 'file', inserted: 0 },
    ]);
  });
});

describe('a job resized while it ran (scontrol update JobId=2 NumNodes=1), whose two records share its JobID', () => {
  // slurmdbd closes the record before the resize as RESIZING (End the resize time) and the job goes on
  // as a record submitted and started at the resize (test/support/resized-job.ts).
  const NOW = new Date('2026-12-05T00:00:00Z');
  const restSource = (stateArrays: boolean): JobSource => ({
    name: 'slurmrestd',
    async *read() {
      const version = stateArrays ? 'v0.0.42' : 'v0.0.38';
      yield* parseSlurmRestJobsResponse(resizedRestAnswer({ stateArrays }), { version, defaultCluster: 'lab' }).items;
    },
  });
  const fileSource = (): JobSource => {
    const file = path.join(dir, 'resized.psv');
    writeFileSync(file, RESIZED_SACCT);
    return labFileSource(file);
  };
  const rows = async () =>
    (
      await db.pool.query(
        `SELECT job_id, job_key, state, is_terminal, elapsed_sec, alloc_cpus, cpu_time_sec::text,
                EXISTS (SELECT 1 FROM unbilled_jobs u WHERE u.job_id = j.id) AS is_unbilled
           FROM slurm_jobs j ORDER BY submit_at`,
      )
    ).rows;
  const receipts = () => {
    const config = buildTestConfig(db.url, { APP_TZ: 'UTC' });
    const now = () => NOW;
    const rates = createRatesService({ db, config, now });
    return createReceiptsService({ db, config, rates, metrics: createMetrics(), now });
  };

  beforeAll(async () => {
    // The tiers of the reused-id cases, when they ran before these.
    if ((await db.prisma.pricingTier.count()) === 0) await buildTiers(db);
  });
  beforeEach(async () => {
    await db.pool.query('TRUNCATE receipt_items, receipts CASCADE');
  });

  it.each<[string, () => JobSource]>([
    ['sacct output (a file)', fileSource],
    ['slurmrestd v0.0.38', () => restSource(false)],
    ['slurmrestd v0.0.42', () => restSource(true)],
  ])('through %s both parts are stored, and billed, once each', async (_name, source) => {
    const run = await ingestWindow(db, source(), RESIZED_WINDOW);
    expect(run).toMatchObject({ status: 'finished', run: { outcome: 'success', seen: 2, inserted: 2 } });
    // The part after the resize used to overwrite the RESIZING record, not billable itself: the usage
    // before the resize was never billed.
    const before = { job_id: '2', job_key: '2', state: 'RESIZING', is_terminal: true, elapsed_sec: 1, alloc_cpus: 2 };
    const after = {
      job_id: '2@20261204T031353Z',
      job_key: '2@20261204T031353Z',
      state: 'COMPLETED',
      is_terminal: true,
      elapsed_sec: 1,
      alloc_cpus: 1,
    };
    expect(await rows()).toEqual([
      { ...before, cpu_time_sec: '2', is_unbilled: true },
      { ...after, cpu_time_sec: '1', is_unbilled: true },
    ]);

    await receipts().createForUser({ username: 'alice' }, '2026-12-04', {
      actor: 'alice',
      ip: '127.0.0.1',
      userAgent: 'test',
    });
    const items = await db.pool.query('SELECT job_key FROM receipt_items ORDER BY job_key');
    expect(items.rows).toEqual([{ job_key: '2' }, { job_key: '2@20261204T031353Z' }]);

    // Read again (the next run's overlap, a backfill day): nothing changes, nothing is billed twice.
    const again = await ingestWindow(db, source(), RESIZED_WINDOW);
    expect(again).toMatchObject({ status: 'finished', run: { inserted: 0, updated: 0 } });
    expect((await rows()).map(({ job_key, is_unbilled }) => ({ job_key, is_unbilled }))).toEqual([
      { job_key: '2', is_unbilled: false },
      { job_key: '2@20261204T031353Z', is_unbilled: false },
    ]);
  });
});

describe('a resized job stored before resizes were read apart (only the part after the resize kept)', () => {
  // Before RESIZING was read as terminal, the record after the resize (same JobID, submitted at the resize)
  // was taken for a requeued job's next run and overwrote the row, and sacct did not read RS at all: the
  // job's row holds the part after the resize alone, under its plain id and key. docs/ingestion.md says
  // reading its day again (--force) adds the part before it beside that row, billable; a billed row is
  // never changed (its receipt billed it as it is).
  const NOW = new Date('2026-12-05T00:00:00Z');
  const afterOnly = RESIZED_SACCT.split('\n')
    .filter((_line, index) => index === 0 || index >= 3)
    .join('\n');
  const file = (name: string, text: string): JobSource => {
    const at = path.join(dir, name);
    writeFileSync(at, text);
    return labFileSource(at);
  };
  const rest = (): JobSource => ({
    name: 'slurmrestd',
    async *read() {
      yield* parseSlurmRestJobsResponse(resizedRestAnswer(), { version: 'v0.0.38', defaultCluster: 'lab' }).items;
    },
  });
  const rows = async () =>
    (
      await db.pool.query(
        `SELECT job_id, job_key, state, alloc_cpus, cpu_time_sec::text,
                EXISTS (SELECT 1 FROM unbilled_jobs u WHERE u.job_id = j.id) AS is_unbilled
           FROM slurm_jobs j ORDER BY submit_at`,
      )
    ).rows;
  const receipts = () => {
    const config = buildTestConfig(db.url, { APP_TZ: 'UTC' });
    const now = () => NOW;
    const rates = createRatesService({ db, config, now });
    return createReceiptsService({ db, config, rates, metrics: createMetrics(), now });
  };
  const before = { job_id: '2@20261204T031348Z', job_key: '2@20261204T031348Z', state: 'RESIZING', alloc_cpus: 2 };
  const after = { job_id: '2', job_key: '2', state: 'COMPLETED', alloc_cpus: 1 };

  beforeAll(async () => {
    if ((await db.prisma.pricingTier.count()) === 0) await buildTiers(db);
  });
  beforeEach(async () => {
    await db.pool.query('TRUNCATE receipt_items, receipts CASCADE');
  });

  it.each<[string, () => JobSource]>([
    ['sacct output (a file)', () => file('again.psv', RESIZED_SACCT)],
    ['slurmrestd v0.0.38', rest],
  ])(
    'reading its window again through %s adds the part before the resize beside it, billable',
    async (_name, source) => {
      await ingestWindow(db, file('old.psv', afterOnly), RESIZED_WINDOW);
      expect(await rows()).toEqual([{ ...after, cpu_time_sec: '1', is_unbilled: true }]);

      const run = await ingestWindow(db, source(), RESIZED_WINDOW);
      expect(run).toMatchObject({ status: 'finished', run: { outcome: 'success', seen: 2, inserted: 1 } });
      // The stored row keeps its id and key (a receipt may name it); the part before the resize, the one
      // not stored, is the one placed beside it, under its own submit time.
      expect(await rows()).toEqual([
        { ...before, cpu_time_sec: '2', is_unbilled: true },
        { ...after, cpu_time_sec: '1', is_unbilled: true },
      ]);
      const again = await ingestWindow(db, source(), RESIZED_WINDOW);
      expect(again).toMatchObject({ status: 'finished', run: { inserted: 0, updated: 0 } });
    },
  );

  it('a billed old row stays as billed; the part before the resize is added and billed on its own', async () => {
    await ingestWindow(db, file('old.psv', afterOnly), RESIZED_WINDOW);
    const request = { actor: 'alice', ip: '127.0.0.1', userAgent: 'test' };
    await receipts().createForUser({ username: 'alice' }, '2026-12-04', request);
    await ingestWindow(db, file('again.psv', RESIZED_SACCT), RESIZED_WINDOW);
    expect(await rows()).toEqual([
      { ...before, cpu_time_sec: '2', is_unbilled: true },
      { ...after, cpu_time_sec: '1', is_unbilled: false },
    ]);
    await receipts().createForUser({ username: 'alice' }, '2026-12-04', request);
    const items = await db.pool.query('SELECT job_key FROM receipt_items ORDER BY job_key');
    expect(items.rows).toEqual([{ job_key: '2' }, { job_key: '2@20261204T031348Z' }]);
  });
});
