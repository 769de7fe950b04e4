/**
 * A job with an end time that has not finished (REQUEUE_HOLD, SPECIAL_EXIT, a state ingestion did not
 * know, stored with is_terminal false) is billed by no receipt until it finishes. Create receipt says how
 * many of the window's jobs it left out so (unfinished-jobs-explained.test.ts); the month-end run bills
 * every user's finished jobs and said nothing of those it left out. Its page and JSON now say how many,
 * in all and by user, counted as Create receipt counts them.
 */
import { Prisma } from '@prisma/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  countUnfinishedUnbilledJobsByUser,
  unfinishedUnbilledJobsByUserSql,
} from '../../src/modules/receipts/receipts.repository.js';
import { buildJobs, buildReceiptRow, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { monthEndRunPathOf, waitForMonthEndRun } from '../support/month-end.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let admin: Agent;
const STARTED = Date.now();
const now = () => new Date(Date.parse('2025-10-20T05:00:00Z') + (Date.now() - STARTED));

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  await buildUser(db.prisma, { username: 'alice' });
  await buildUser(db.prisma, { username: 'dave' });
  const app = buildTestApp(db, { env: { APP_TZ: 'UTC' }, now });
  admin = await signInAs(app, 'boss', 'boss-password');
});
afterAll(() => db?.drop());

/** Starts a month-end run from the billing page's form and waits for it to end; its path and JSON. */
async function runMonthEnd(before: string) {
  const started = await admin
    .post('/admin/month-end')
    .set('Accept', 'text/html')
    .type('form')
    .send({ before, csrf_token: await csrfTokenOf(admin, '/admin/receipts') });
  const path = monthEndRunPathOf(started);
  return { path, run: await waitForMonthEndRun(admin, path) };
}

describe('a month-end run and the jobs it leaves out because they have not finished', () => {
  it('says nothing of them when there are none', async () => {
    await buildJobs(db, [{ user: 'alice', jobId: '10', end: '2025-07-10T10:00:00Z' }]);
    const { path, run } = await runMonthEnd('2025-07-31');
    expect(run).toMatchObject({
      outcome: 'succeeded',
      receiptCount: 1,
      unfinishedJobCount: 0,
      unfinishedJobsByUser: [],
    });
    expect(run.message).not.toContain('left out');
    expect(visibleTextOf((await admin.get(path).set('Accept', 'text/html').expect(200)).text)).not.toContain(
      'left out',
    );
  });

  it('says how many, in all and by user, on its page and in its JSON and the list of runs', async () => {
    await buildJobs(db, [
      { user: 'alice', jobId: '100', end: '2025-08-10T10:00:00Z' },
      { user: 'alice', jobId: '101', state: 'REQUEUE_HOLD', isTerminal: false, end: '2025-08-11T10:00:00Z' },
      { user: 'alice', jobId: '102', state: 'SPECIAL_EXIT', isTerminal: false, end: '2025-08-12T10:00:00Z' },
      // Ended after the run's day: not of its window.
      { user: 'alice', jobId: '103', state: 'REQUEUE_HOLD', isTerminal: false, end: '2025-09-02T10:00:00Z' },
      // A user with no finished job at all: no receipt, but their job is left out all the same.
      { user: 'dave', jobId: '200', state: 'COMPLETD', isTerminal: false, end: '2025-08-13T10:00:00Z' },
    ]);
    const { path, run } = await runMonthEnd('2025-08-31');
    expect(run).toMatchObject({
      outcome: 'succeeded',
      receiptCount: 1,
      unfinishedJobCount: 3,
      unfinishedJobsByUser: [
        { username: 'alice', unfinishedJobCount: 2 },
        { username: 'dave', unfinishedJobCount: 1 },
      ],
    });
    const sentence =
      '3 jobs that ended by 2025-08-31 were left out because they have not finished (REQUEUE_HOLD, SPECIAL_EXIT ' +
      'or another state that is not an end); each is billed by a receipt made once it finishes. By user: ' +
      'alice (2), dave (1).';
    expect(run.message).toContain(sentence);
    expect(visibleTextOf((await admin.get(path).set('Accept', 'text/html').expect(200)).text)).toContain(sentence);
    const list = await admin.get('/admin/month-end').set('Accept', 'application/json').expect(200);
    const listed = list.body.runs.find((one: { url: string }) => one.url === path);
    expect(listed).toMatchObject({ unfinishedJobCount: 3, message: expect.stringContaining(sentence) });
  });

  it('says nothing of them for a run recorded before runs counted them', async () => {
    const { path } = await runMonthEnd('2025-09-01');
    const id = Number(path.split('/').pop());
    await db.pool.query('UPDATE month_end_runs SET unfinished_jobs = NULL WHERE id = $1', [id]);
    const run = (await admin.get(path).set('Accept', 'application/json').expect(200)).body;
    expect(run).toMatchObject({ unfinishedJobCount: null, unfinishedJobsByUser: null });
    expect(run.message).not.toContain('left out');
  });
});

// The run's count read every job ended by its day (a sequential scan of slurm_jobs, about 14,300 pages
// at 200,000 jobs) for the handful that have not finished. A partial index holds those alone
// (migration 20261207000000); its WHERE must stay the query's for the planner to use it.
describe('the count of unfinished jobs through the partial index of such jobs', () => {
  it('counts as before: unfinished, ended before the day, on no live receipt, no superseded REQUEUED run', async () => {
    await buildJobs(db, [
      { user: 'gus', jobId: '900', state: 'REQUEUE_HOLD', isTerminal: false, end: '2025-06-01T10:00:00Z' },
      { user: 'gus', jobId: '901', state: 'COMPLETD', isTerminal: false, end: '2025-06-02T10:00:00Z' },
      // A superseded run of a requeued job: /me leaves it out, and so does the count.
      { user: 'gus', jobId: '902', state: 'REQUEUED', isTerminal: false, end: '2025-06-03T10:00:00Z' },
      { user: 'gus', jobId: '903', state: 'COMPLETED', end: '2025-06-04T10:00:00Z' },
      // No end yet, or ended after the day.
      { user: 'gus', jobId: '904', state: 'RUNNING', isTerminal: false, end: null },
      { user: 'gus', jobId: '905', state: 'SPECIAL_EXIT', isTerminal: false, end: '2025-07-01T00:00:00Z' },
      // On a live receipt (not counted), and on a voided one only (counted).
      { user: 'gus', jobId: '906', state: 'REQUEUE_HOLD', isTerminal: false, end: '2025-06-05T10:00:00Z' },
      { user: 'gus', jobId: '907', state: 'REQUEUE_HOLD', isTerminal: false, end: '2025-06-06T10:00:00Z' },
      { user: 'hank', jobId: '950', state: 'SPECIAL_EXIT', isTerminal: false, end: '2025-06-30T23:59:59Z' },
    ]);
    const receipt = await buildReceiptRow(db, 'gus');
    for (const [jobId, isVoided] of [
      ['906', false],
      ['907', true],
    ] as const) {
      await db.pool.query(
        `INSERT INTO receipt_items (receipt_id, slurm_job_id, cluster, job_key, display_job_id, cpu_hours, gpu_hours,
                                    mem_gb_hours, cost, is_voided, job_end_at)
         SELECT $1, j.id, j.cluster, j.job_key, j.job_id, 1, 0, 0, 0.5, $3, j.end_at
           FROM slurm_jobs j WHERE j.job_id = $2`,
        [receipt.id, jobId, isVoided],
      );
    }
    expect(await countUnfinishedUnbilledJobsByUser(db.prisma, new Date('2025-07-01T00:00:00Z'))).toEqual([
      { username: 'gus', count: 3 },
      { username: 'hank', count: 1 },
    ]);
  });

  it('reads the partial index, not every job ended by the day', async () => {
    const plan = await db.prisma.$transaction(async (tx) => {
      // On a test's few rows a sequential scan costs nothing; without one, the plan shows whether the
      // partial index can serve the query at all (its WHERE implied by the query's).
      await tx.$executeRaw`SET LOCAL enable_seqscan = off`;
      const sql = unfinishedUnbilledJobsByUserSql(new Date('2025-07-01T00:00:00Z'));
      const rows = await tx.$queryRaw<{ 'QUERY PLAN': string }[]>(Prisma.sql`EXPLAIN ${sql}`);
      return rows.map((row) => row['QUERY PLAN']).join('\n');
    });
    expect(plan).toContain('slurm_jobs_unfinished_user_end_at_idx');
  });
});
