/**
 * slurmdbd returns with a job only the steps that overlap the window asked (sacct -S/-E and
 * slurmrestd's start_time/end_time alike), so the read of a long job's last window lacks the steps
 * that ended before it. Recorded on the lab (test/fixtures/slurm/22.05/steps-outside-window/window.txt):
 * job 2's first step (2.0, 8.547 s of CPU, AveRSS 3172K) ended at 04:48:09; read running at 04:48:24 it
 * has the step, read for 04:48:30 .. 04:50:30 once it completed it has only batch and 2.1. Each read used
 * to replace the stored steps, so step 2.0 was never billed.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { JobSource } from '../../../src/modules/ingestion/job-source.js';
import { createSacctSource } from '../../../src/modules/ingestion/sacct.source.js';
import { parseSlurmRestJobsResponse } from '../../../src/modules/ingestion/slurm-rest.parser.js';
import { createMetrics } from '../../../src/modules/metrics/metrics.js';
import { createRatesService } from '../../../src/modules/pricing/rates.service.js';
import { createReceiptsService } from '../../../src/modules/receipts/receipts.service.js';
import { buildTiers } from '../../support/billing-factories.js';
import { ingestWindow, labRestSource } from '../../support/ingest-window.js';
import { buildTestConfig } from '../../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

const CAPTURE = 'steps-outside-window';
const CAPTURES = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05', CAPTURE);
const FAKE_SACCT = path.resolve(import.meta.dirname, '../../fixtures/slurm/fake-sacct.mjs');
/** The first window: read at 04:48:24, both jobs running. */
const RUNNING_WINDOW = { start: new Date('2026-12-06T04:47:24Z'), end: new Date('2026-12-06T04:48:24Z') };
/** The next: both jobs ended in it, their first steps before it. */
const LAST_WINDOW = { start: new Date('2026-12-06T04:48:30Z'), end: new Date('2026-12-06T04:50:30Z') };
const NOW = new Date('2026-12-07T00:00:00Z');

let db: TestDatabase;
let dir: string;

beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(path.join(os.tmpdir(), 'steps-across-reads-'));
  // Rates high enough that a few seconds of CPU show in the cost, in THB's two decimals.
  await buildTiers(db, [{ name: 'mu', isDefault: true, cpu: '1000.00', gpu: '0.00', mem: '1000.00' }]);
});
afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await db.pool.query('TRUNCATE receipt_items, receipts, slurm_jobs, ingestion_runs RESTART IDENTITY CASCADE');
});

const restSource = (file: string) => labRestSource(path.join(CAPTURES, file));

/** The sacct source over what the lab's sacct printed for the last window (fake-sacct.mjs, `sacct-<case>`). */
function sacctSource(): JobSource {
  const link = path.join(dir, `sacct-${CAPTURE}`);
  if (!existsSync(link)) symlinkSync(FAKE_SACCT, link);
  return createSacctSource({
    inheritedEnvironment: process.env,
    sacctPath: link,
    timeZone: 'UTC',
    cluster: undefined,
    defaultCluster: 'lab',
    timeoutMs: 10_000,
  });
}

const job2 = async () =>
  (
    await db.pool.query(
      `SELECT state, step_count, total_cpu_sec::text, step_mem_gb_hours::text, max_rss_bytes::text,
              (SELECT array_agg(s->>'id' ORDER BY o) FROM jsonb_array_elements(steps) WITH ORDINALITY AS e(s, o)) AS steps
         FROM slurm_jobs WHERE job_id = '2'`,
    )
  ).rows[0];

const receipts = () => {
  const config = buildTestConfig(db.url, { APP_TZ: 'UTC' });
  const now = () => NOW;
  const rates = createRatesService({ db, config, now });
  return createReceiptsService({ db, config, rates, metrics: createMetrics(), now });
};

describe('a step that ended before the window of its job\'s end (the lab\'s job 2: "srun <35 s of CPU>; srun sleep 120")', () => {
  it('read running, it has all three steps', async () => {
    const running = await ingestWindow(db, restSource('rest-dbv0.0.38-jobs-running.json'), RUNNING_WINDOW);
    expect(running).toMatchObject({ status: 'finished', run: { outcome: 'success' } });
    expect(await job2()).toMatchObject({ state: 'RUNNING', step_count: 3, steps: ['batch', '0', '1'] });
  });

  it.each<[string, () => JobSource]>([
    ['slurmrestd', () => restSource('rest-dbv0.0.38-jobs.json')],
    ['sacct', sacctSource],
  ])(
    'read again completed through %s without it, keeps it: its CPU time and memory stored and billed',
    async (_source, last) => {
      await ingestWindow(db, restSource('rest-dbv0.0.38-jobs-running.json'), RUNNING_WINDOW);
      const completed = await ingestWindow(db, last(), LAST_WINDOW);
      expect(completed).toMatchObject({ status: 'finished', run: { outcome: 'success' } });
      const stored = await job2();
      // Step 2.0's 8.547 s and 3172K x 35 s; the last window alone holds batch (0.021 s) and 2.1 (0.001 s).
      // It used to be stored with 2 steps, 0.022 s of CPU and 0.000489 GiB-hours: step 2.0 never billed.
      expect(stored).toEqual({
        state: 'COMPLETED',
        step_count: 3,
        steps: ['batch', '0', '1'],
        total_cpu_sec: '8.569',
        step_mem_gb_hours: '0.000518',
        max_rss_bytes: '10956800',
      });

      await receipts().createForUser({ username: 'alice' }, '2026-12-06', {
        actor: 'alice',
        ip: '127.0.0.1',
        userAgent: 'test',
      });
      const item = await db.pool.query(
        `SELECT cpu_hours::text, mem_gb_hours::text, cost::text FROM receipt_items WHERE job_key = '2'`,
      );
      // Billed under the default `used` CPU basis: the stored CPU time, step 2.0's among it (it was
      // 0.000006 CPU-hours and 0.000489 GiB-hours, 0.50 at these rates).
      expect(item.rows).toEqual([{ cpu_hours: '0.002380', mem_gb_hours: '0.000518', cost: '2.9000' }]);
    },
  );

  // A requeued job's next run is a record of its own, submitted when it was requeued (the lab's job 21,
  // fixtures 22.05/requeue); the run before it is not billed, nor are its steps.
  it("a requeued job's next run does not keep the steps of the run before it", async () => {
    await ingestWindow(db, restSource('rest-dbv0.0.38-jobs-running.json'), RUNNING_WINDOW);
    const nextRun: JobSource = {
      name: 'slurmrestd',
      async *read() {
        const body = JSON.parse(readFileSync(path.join(CAPTURES, 'rest-dbv0.0.38-jobs.json'), 'utf8')) as {
          jobs: { job_id: number; time: { submission: number } }[];
        };
        for (const job of body.jobs) {
          // Requeued at 04:48:09, when step 0 ended: the next run's submit time.
          if (job.job_id === 2) job.time.submission = Date.parse('2026-12-06T04:48:09Z') / 1000;
        }
        yield* parseSlurmRestJobsResponse(body, { version: 'v0.0.38', defaultCluster: 'lab' }).items;
      },
    };
    expect(await ingestWindow(db, nextRun, LAST_WINDOW)).toMatchObject({
      status: 'finished',
      run: { outcome: 'success' },
    });
    expect(await job2()).toEqual({
      state: 'COMPLETED',
      step_count: 2,
      steps: ['batch', '1'],
      total_cpu_sec: '0.022',
      step_mem_gb_hours: '0.000489',
      max_rss_bytes: '10956800',
    });
    const rows = await db.pool.query(`SELECT job_id FROM slurm_jobs WHERE job_id LIKE '2%' ORDER BY job_id`);
    expect(rows.rows).toEqual([{ job_id: '2' }]);
  });

  it('the same window read again changes nothing', async () => {
    await ingestWindow(db, restSource('rest-dbv0.0.38-jobs-running.json'), RUNNING_WINDOW);
    await ingestWindow(db, restSource('rest-dbv0.0.38-jobs.json'), LAST_WINDOW);
    const again = await ingestWindow(db, restSource('rest-dbv0.0.38-jobs.json'), LAST_WINDOW);
    expect(again).toMatchObject({ status: 'finished', run: { inserted: 0, updated: 0 } });
    expect(await job2()).toMatchObject({ step_count: 3, total_cpu_sec: '8.569' });
  });
});
