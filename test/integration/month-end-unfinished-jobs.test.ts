/**
 * A job with an end time that has not finished (REQUEUE_HOLD, SPECIAL_EXIT, a state ingestion did not
 * know, stored with is_terminal false) is billed by no receipt until it finishes. Create receipt says how
 * many of the window's jobs it left out so (unfinished-jobs-explained.test.ts); the month-end run bills
 * every user's finished jobs and said nothing of those it left out. Its page and JSON now say how many,
 * in all and by user, counted as Create receipt counts them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
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
