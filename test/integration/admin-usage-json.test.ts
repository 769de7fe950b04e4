import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectPageForBrowsersAndNoJsonForResearchers } from '../support/admin-json.js';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { cellsLabelled } from '../support/html.js';
import { billJobs } from '../support/receipt-steps.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * /admin/usage for a script (a finance export, a monthly report): the figures of the page as
 * JSON, money and hours as decimal text, and a refused filter as {error, code} like every other
 * JSON answer, not the HTML page.
 */

let db: TestDatabase;
let admin: Agent;
let alice: Agent;
// 2025-09-20 12:00 in Bangkok.
const now = () => new Date('2025-09-20T05:00:00Z');

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'admin', role: 'admin', password: 'admin-password' });
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'bob', password: 'bob-password' });
  const app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now });
  await buildJobs(db, [
    {
      user: 'alice',
      jobId: '101',
      end: '2025-09-18T03:00:00Z',
      totalCpuSec: '7200',
      elapsedSec: 3600,
      account: 'chemistry',
    },
    { user: 'alice', jobId: '102', end: '2025-09-19T03:00:00Z', totalCpuSec: '1234.567', account: 'chemistry' },
    { user: 'bob', jobId: '201', end: '2025-09-19T03:00:00Z', account: 'physics' },
  ]);
  alice = await signInAs(app, 'alice', 'alice-password');
  admin = await signInAs(app, 'admin', 'admin-password');
  // Job 101 on a receipt, so "of which billed" is not zero.
  await billJobs(alice, '2025-09-18');
});
afterAll(() => db?.drop());

const MONEY = /^\d+\.\d{2}$/;
const HOURS = /^\d+\.\d{6}$/;

describe('GET /admin/usage for a JSON client', () => {
  it('answers the per-user totals of the page as JSON, money and hours as decimal text', async () => {
    const path = '/admin/usage?start=2025-09-14&end=2025-09-20';
    const answer = await admin.get(path).set('Accept', 'application/json').expect(200);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    const body = answer.body;
    expect(body).toMatchObject({
      window: { start: '2025-09-14', end: '2025-09-20', timeZone: 'Asia/Bangkok' },
      filters: {},
      currency: 'THB',
    });
    expect(body.users.map((row: { username: string; jobs: number }) => [row.username, row.jobs])).toEqual([
      ['alice', 2],
      ['bob', 1],
    ]);
    const [aliceRow] = body.users;
    expect(aliceRow.tier).toBe('mu');
    // Job 101 billed on mu, job 102 unbilled under alice's current tier (mu too): told apart.
    expect(aliceRow.tiers).toEqual([
      { tier: 'mu', billed: false, jobs: 1 },
      { tier: 'mu', billed: true, jobs: 1 },
    ]);
    expect(body.users[1].tiers).toEqual([{ tier: 'mu', billed: false, jobs: 1 }]);
    for (const row of [...body.users, body.totals]) {
      expect(row.cost).toMatch(MONEY);
      expect(row.billedCost).toMatch(MONEY);
      for (const hours of [row.cpuHours, row.gpuHours, row.memGbHours]) expect(hours).toMatch(HOURS);
    }
    expect(body.totals.jobs).toBe(3);
    expect(aliceRow.billedCost).not.toBe('0.00');
    expect(body.users[1].billedCost).toBe('0.00');

    // The same figures as the page: its rows, then its total line.
    const page = await admin.get(path).set('Accept', 'text/html').expect(200);
    const rows = [...body.users, body.totals];
    expect(cellsLabelled(page.text, 'Cost (THB)')).toEqual(rows.map((row: { cost: string }) => row.cost));
    expect(cellsLabelled(page.text, 'Of which billed')).toEqual(
      rows.map((row: { billedCost: string }) => row.billedCost),
    );
    // The page and the JSON both write the six decimals hours are priced at (the page groups thousands).
    expect(cellsLabelled(page.text, 'CPU h').map((cell) => cell.replaceAll(',', ''))).toEqual(
      rows.map((row: { cpuHours: string }) => row.cpuHours),
    );
  });

  it('applies the filters and names them', async () => {
    const body = (
      await admin
        .get('/admin/usage?start=2025-09-14&end=2025-09-20&account=physics')
        .set('Accept', 'application/json')
        .expect(200)
    ).body;
    expect(body.filters).toEqual({ account: 'physics' });
    expect(body.users.map((row: { username: string }) => row.username)).toEqual(['bob']);
    expect(body.totals.jobs).toBe(1);
  });

  it('refuses a bad window or filter with {error, code} instead of the page', async () => {
    const reversed = await admin
      .get('/admin/usage?start=2025-09-20&end=2025-09-01')
      .set('Accept', 'application/json')
      .expect(400);
    expect(reversed.headers['content-type']).toMatch(/^application\/json/);
    expect(reversed.body).toEqual({ error: expect.any(String), code: 400 });
    const notADate = await admin.get('/admin/usage?start=2025-13-01').set('Accept', 'application/json').expect(400);
    expect(notADate.body).toEqual({ error: expect.stringMatching(/^start: /), code: 400 });
  });

  it('lists every user in one answer, so a page field (its address edited, a link from the paged page) is ignored', async () => {
    // The JSON has no pages: ignored as any unknown query field is, as /admin/rates and /admin/ingestion, unpaged too, ignore it.
    const whole = await admin.get('/admin/usage?start=2025-09-14').set('Accept', 'application/json').expect(200);
    expect(whole.body.users.length).toBeGreaterThan(1);
    for (const page of ['2', 'abc', '0']) {
      const answer = await admin.get(`/admin/usage?start=2025-09-14&page=${page}`).set('Accept', 'application/json');
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual(whole.body);
    }
    // The page lists 50 users a page (admin-usage-paging.test.ts): its page 2 of these few users is past the last.
    await admin.get('/admin/usage?start=2025-09-14&page=2').set('Accept', 'text/html').expect(404);
  });

  it('still gives a browser the page, and a researcher asking for JSON no one else’s usage', async () => {
    await expectPageForBrowsersAndNoJsonForResearchers(admin, alice, '/admin/usage');
  });
});
