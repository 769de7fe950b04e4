import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { cellsLabelled } from '../support/html.js';
import { billJobs } from '../support/receipt-steps.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let alice: Agent;
// 2025-09-20 12:00 in Bangkok.
const now = () => new Date('2025-09-20T05:00:00Z');

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'bob', password: 'bob-password' });
  const app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now });
  await buildJobs(db, [
    { user: 'alice', jobId: '101', name: 'first', end: '2025-09-18T03:00:00Z', totalCpuSec: '7200', elapsedSec: 3600 },
    { user: 'alice', jobId: '102', name: 'second', end: '2025-09-19T03:00:00Z', totalCpuSec: '1234.567' },
    { user: 'bob', jobId: '201', end: '2025-09-19T03:00:00Z' },
  ]);
  alice = await signInAs(app, 'alice', 'alice-password');
  // Job 101 on a receipt, so the Billed view has a row.
  await billJobs(alice, '2025-09-18');
});
afterAll(() => db?.drop());

const json = (path: string) => alice.get(path).set('Accept', 'application/json');
const html = (path: string) => alice.get(path).set('Accept', 'text/html');
const MONEY = /^\d+\.\d{2}$/;

describe('GET /me for a JSON client', () => {
  it('answers the Jobs view as JSON: the window, tier and rates, and each job with money as decimal strings', async () => {
    const answer = await json('/me?start=2025-09-14&end=2025-09-20&sort=job&dir=asc').expect(200);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    const body = answer.body;
    expect(body).toMatchObject({
      view: 'detail',
      window: { start: '2025-09-14', end: '2025-09-20', timeZone: 'Asia/Bangkok' },
      currency: 'THB',
      tier: { name: 'mu', rates: { cpu: '0.50', gpu: '12.00', mem: '0.05', currency: 'THB' } },
      sort: 'job',
      dir: 'asc',
      page: 1,
      pageCount: 1,
      count: 2,
    });
    expect(body.jobs.map((job: { jobId: string }) => job.jobId)).toEqual(['101', '102']);
    const [first, second] = body.jobs;
    expect(first).toMatchObject({
      jobId: '101',
      name: 'first',
      endAt: '2025-09-18T03:00:00.000Z',
      cpuHours: '2.000000',
      receipt: { id: expect.any(Number), status: 'pending' },
    });
    expect(second.receipt).toBeNull();
    for (const job of body.jobs) {
      expect(job.cost).toMatch(MONEY);
      for (const hours of [job.cpuHours, job.gpuHours, job.memGbHours]) expect(hours).toMatch(/^\d+\.\d{6}$/);
    }
    // The same figures as the page shows.
    const page = await html('/me?start=2025-09-14&end=2025-09-20&sort=job&dir=asc').expect(200);
    expect(cellsLabelled(page.text, 'Cost (THB)')).toEqual(body.jobs.map((job: { cost: string }) => job.cost));
    expect(cellsLabelled(page.text, 'CPU h')).toEqual(body.jobs.map((job: { cpuHours: string }) => job.cpuHours));
    // Another user's jobs are not in it.
    expect(JSON.stringify(body)).not.toContain('"201"');
  });

  it('answers Per day and Billed as JSON too, with totals as decimal strings', async () => {
    const days = (await json('/me?view=aggregate&start=2025-09-17&end=2025-09-19').expect(200)).body;
    expect(days.view).toBe('aggregate');
    expect(days.days.map((day: { day: string; jobs: number }) => [day.day, day.jobs])).toEqual([
      ['2025-09-19', 1],
      ['2025-09-18', 1],
      ['2025-09-17', 0],
    ]);
    expect(days.totals.jobs).toBe(2);
    expect(days.totals.cost).toMatch(MONEY);
    expect(days.days.at(-1).cost).toBe('0.00');
    const page = await html('/me?view=aggregate&start=2025-09-17&end=2025-09-19').expect(200);
    expect(page.text).toContain(`<td data-label="Cost (THB)" class="num">${days.totals.cost}</td>`);

    const billed = (await json('/me?view=billed&start=2025-09-14&end=2025-09-20').expect(200)).body;
    expect(billed).toMatchObject({ view: 'billed', page: 1, pageCount: 1, count: 1 });
    expect(billed.jobs).toEqual([
      {
        receiptId: expect.any(Number),
        receiptStatus: 'pending',
        receiptCreatedAt: expect.any(String),
        cluster: 'test',
        jobId: '101',
        name: 'first',
        endAt: '2025-09-18T03:00:00.000Z',
        cost: expect.stringMatching(MONEY),
      },
    ]);
  });

  it('refuses a bad window, view or page with {error, code} instead of the page', async () => {
    const reversed = await json('/me?start=2025-09-20&end=2025-09-01').expect(400);
    expect(reversed.headers['content-type']).toMatch(/^application\/json/);
    expect(reversed.body).toEqual({ error: expect.any(String), code: 400 });
    const view = await json('/me?view=bogus').expect(400);
    expect(view.body).toEqual({ error: expect.stringMatching(/^view: /), code: 400 });
    const past = await json('/me?start=2025-09-14&end=2025-09-20&page=9').expect(404);
    expect(past.body).toEqual({ error: expect.any(String), code: 404 });
  });

  it('still gives a browser (and a client accepting both) the page', async () => {
    const both = await alice.get('/me').set('Accept', 'text/html,application/json').expect(200);
    expect(both.headers['content-type']).toMatch(/^text\/html/);
  });
});
