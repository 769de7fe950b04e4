import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { countQueriesDuring } from '../support/count-queries.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A job that has an end time but has not finished (REQUEUE_HOLD, SPECIAL_EXIT, or a state ingestion
// did not know, stored with is_terminal false) is shown on /me at an estimate and counted in the
// window's totals, as documented (admin-usage-totals.test.ts), but a receipt bills finished jobs only.
// The row said it was "not yet" billed, and Create receipt said only that a receipt "already bills your
// jobs that had ended by then": the researcher was promised a bill that never came, and not told why.
const WINDOW = 'start=2025-09-01&end=2025-09-30';

let db: TestDatabase;
let alice: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  alice = await signInAs(
    buildTestApp(db, { env: { APP_TZ: 'UTC' }, now: () => new Date('2025-10-02T03:00:00Z') }),
    'alice',
    'alice-password',
  );
  await buildJobs(db, [
    { user: 'alice', jobId: '100', end: '2025-09-10T10:00:00Z', totalCpuSec: '7200', stepMemGbHours: '0' },
    { user: 'alice', jobId: '101', state: 'REQUEUE_HOLD', isTerminal: false, end: '2025-09-11T10:00:00Z' },
    { user: 'alice', jobId: '102', state: 'SPECIAL_EXIT', isTerminal: false, end: '2025-09-12T10:00:00Z' },
    { user: 'alice', jobId: '103', state: 'COMPLETD', isTerminal: false, end: '2025-09-13T10:00:00Z' },
  ]);
});
afterAll(() => db?.drop());

/** The Billed cell of job `jobId`'s row on /me, as text. */
function billedCellOf(page: string, jobId: string): string {
  const row = page.split('<tr>').find((one) => one.includes(`<td data-label="Job">${jobId}</td>`)) ?? '';
  return (row.match(/<td data-label="Billed"[^>]*>([\s\S]*?)<\/td>/)?.[1] ?? '').replace(/<[^>]+>/g, '').trim();
}

describe('jobs with an end time that have not finished', () => {
  it('are shown at an estimate, said not billable until they finish, and counted as left out by the receipt', async () => {
    const page = (await alice.get(`/me?${WINDOW}`).set('Accept', 'text/html').expect(200)).text;
    expect(billedCellOf(page, '100')).toBe('not yet');
    for (const jobId of ['101', '102', '103']) {
      expect(billedCellOf(page, jobId), jobId).toBe('not billable until it finishes');
    }
    const detail = await alice.get(`/me?${WINDOW}`).set('Accept', 'application/json').expect(200);
    expect(
      detail.body.jobs.map((job: { jobId: string; isFinished: boolean }) => [job.jobId, job.isFinished]).sort(),
    ).toEqual([
      ['100', true],
      ['101', false],
      ['102', false],
      ['103', false],
    ]);
    // The documented decision stands: the window's totals count them at an estimate.
    const perDay = await alice.get(`/me?${WINDOW}&view=aggregate`).set('Accept', 'application/json').expect(200);
    expect(perDay.body.totals).toMatchObject({ jobs: 4 });

    // HTML: the flash on the receipt's page says how many were left out and why.
    const created = await alice
      .post('/me/receipt')
      .type('form')
      .send({ before: '2025-09-30', csrf_token: await csrfTokenOf(alice, '/me') });
    expect(created.status, created.text.slice(0, 300)).toBe(303);
    const receiptPage = (
      await alice
        .get(created.headers.location as string)
        .set('Accept', 'text/html')
        .expect(200)
    ).text;
    expect(receiptPage.match(/class="alert[^"]*" role="status">([^<]*)/)?.[1]).toMatch(
      /created: 1 job, total 1\.00 THB\. 3 jobs that ended by 2025-09-30 were left out because they have not finished \(REQUEUE_HOLD, SPECIAL_EXIT or another state that is not an end\); each is billed by a receipt made once it finishes\./,
    );

    // JSON: the refusal of a second receipt says it too, with the count.
    const again = await alice
      .post('/me/receipt')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(alice, '/me'))
      .send({ before: '2025-09-30' });
    expect(again.status, again.text).toBe(422);
    expect(again.body.error).toContain('3 jobs that ended by 2025-09-30 were left out because they have not finished');
    expect(again.body.unfinishedJobCount).toBe(3);

    // The refused HTML form says it beside the receipt form.
    const refused = await alice
      .post('/me/receipt')
      .type('form')
      .send({ before: '2025-09-30', csrf_token: await csrfTokenOf(alice, '/me') });
    expect(refused.status).toBe(422);
    expect(refused.text).toContain('3 jobs that ended by 2025-09-30 were left out because they have not finished');
  });

  it('a receipt made with every job finished says nothing of them', async () => {
    await buildUser(db.prisma, { username: 'bob', password: 'bob-password' });
    const bob = await signInAs(
      buildTestApp(db, { env: { APP_TZ: 'UTC' }, now: () => new Date('2025-10-02T03:00:00Z') }),
      'bob',
      'bob-password',
    );
    await buildJobs(db, [{ user: 'bob', jobId: '200', end: '2025-09-10T10:00:00Z' }]);
    const created = await bob
      .post('/me/receipt')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(bob, '/me'))
      .send({ before: '2025-09-30' });
    expect(created.status, created.text).toBe(201);
    expect(created.body.message).not.toContain('left out');
    expect(created.body.receipt.unfinishedJobCount).toBe(0);
  });

  it('are looked up only for a page that lists a job in a state that is not an end', async () => {
    // /me is the page signed-in people load most: the question "finished?" is asked of the database
    // only for rows whose state could mean not finished, so a page of finished jobs costs what it did.
    const app = buildTestApp(db, { env: { APP_TZ: 'UTC' }, now: () => new Date('2025-10-02T03:00:00Z') });
    const queriesOfMe = async (username: string) => {
      await buildUser(db.prisma, { username, password: `${username}-password` });
      const agent = await signInAs(app, username, `${username}-password`);
      await agent.get(`/me?${WINDOW}`).set('Accept', 'application/json').expect(200);
      return countQueriesDuring(db.pool, () =>
        agent.get(`/me?${WINDOW}`).set('Accept', 'application/json').expect(200),
      );
    };
    await buildJobs(db, [
      { user: 'carol', jobId: '300', end: '2025-09-10T10:00:00Z' },
      { user: 'carol', jobId: '301', end: '2025-09-11T10:00:00Z' },
      { user: 'dave', jobId: '400', end: '2025-09-10T10:00:00Z' },
      { user: 'dave', jobId: '401', state: 'SPECIAL_EXIT', isTerminal: false, end: '2025-09-11T10:00:00Z' },
    ]);
    const finishedOnly = await queriesOfMe('carol');
    const withUnfinished = await queriesOfMe('dave');
    expect(withUnfinished).toBe(finishedOnly + 1);
  });
});
