import { Prisma } from '@prisma/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { countQueriesDuring } from '../support/count-queries.js';
import { buildUser } from '../support/factories.js';
import { cellsLabelled, visibleTextOf } from '../support/html.js';
import { billJobs } from '../support/receipt-steps.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The Tier filter of /admin/usage (bec0cff3) by a name no tier has now. A receipt keeps the tier
 * name it was billed under, so the jobs of receipts made before mu was renamed uni are priced at
 * "mu" and found under that name alone, which the filter refused as an unknown tier; those of a
 * tier deleted since were not to be found at all. A former name (the audit log's renames) or one
 * receipts still carry is taken, and the page says which tier it is now.
 */

let db: TestDatabase;
let admin: Agent;
const WINDOW = 'start=2025-09-14&end=2025-09-20';
const now = () => new Date('2025-09-20T05:00:00Z');

async function asAdmin(path: string, body: object) {
  return admin
    .post(path)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin))
    .send(body);
}

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildTiers(db, [{ name: 'desk', cpu: '2.00', gpu: '40.00', mem: '0.20' }]);
  await buildUser(db.prisma, { username: 'admin', role: 'admin', password: 'admin-password' });
  for (const username of ['alice', 'bob', 'carol']) {
    await buildUser(db.prisma, { username, password: `${username}-password` });
  }
  const app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now });
  admin = await signInAs(app, 'admin', 'admin-password');
  const desk = await db.prisma.pricingTier.findUniqueOrThrow({ where: { name: 'desk' } });
  await db.prisma.tierOverride.create({ data: { username: 'carol', tierId: desk.id, createdBy: 'test' } });
  await buildJobs(db, [
    { user: 'alice', jobId: '101', end: '2025-09-17T03:00:00Z', totalCpuSec: '7200' },
    { user: 'bob', jobId: '201', end: '2025-09-18T03:00:00Z', totalCpuSec: '3600' },
    { user: 'carol', jobId: '301', end: '2025-09-18T04:00:00Z', totalCpuSec: '5400' },
  ]);
  // Job 101 billed at mu and 301 at desk; then mu is renamed uni and desk deleted (carol back on uni).
  await billJobs(await signInAs(app, 'alice', 'alice-password'), '2025-09-18');
  await billJobs(await signInAs(app, 'carol', 'carol-password'), '2025-09-18');
  await db.prisma.tierOverride.delete({ where: { username: 'carol' } });
  expect((await asAdmin('/admin/rates/tiers/edit', { type: 'mu', name: 'uni' })).status).toBe(200);
  expect((await asAdmin('/admin/rates/tiers/delete', { type: 'desk' })).status).toBe(200);
  await buildJobs(db, [{ user: 'alice', jobId: '102', end: '2025-09-19T03:00:00Z', totalCpuSec: '1800' }]);
});
afterAll(() => db?.drop());

const json = async (query: string) =>
  (await admin.get(`/admin/usage?${query}`).set('Accept', 'application/json').expect(200)).body;

/** The CSV's rows as objects by its header. */
async function csvRows(query: string): Promise<Record<string, string>[]> {
  const [header, ...lines] = (await admin.get(`/admin/usage.csv?${query}`).expect(200)).text.trim().split('\n');
  const columns = (header ?? '').split(',');
  return lines.map((line) => Object.fromEntries(line.split(',').map((cell, i) => [columns[i], cell])));
}

describe('/admin/usage by a tier name no tier has now', () => {
  it.each([
    [
      'mu',
      ['alice'],
      ['101'],
      'uni',
      /^mu is the former name of tier uni: renamed by admin at \d{4}-\d\d-\d\d \d\d:\d\d\./,
    ],
    [
      'desk',
      ['carol'],
      ['301'],
      null,
      /^No tier is called desk now: it was deleted by admin at \d{4}-\d\d-\d\d \d\d:\d\d\./,
    ],
  ])(
    'tier=%s: the jobs billed under that name, alike on the page, as JSON and in the CSV, saying what it is now',
    async (tier, users, jobs, tierNow, note) => {
      const query = `${WINDOW}&tier=${tier}`;
      const body = await json(query);
      expect(body.filters).toEqual({ tier });
      expect(body.formerTier).toEqual({ name: tier, now: tierNow, note: expect.stringMatching(note) });
      expect(body.users.map((row: { username: string }) => row.username)).toEqual(users);
      for (const row of body.users) {
        expect(row.tiers).toEqual([{ tier, billed: true, jobs: 1 }]);
      }
      expect(body.totals.jobs).toBe(jobs.length);

      const rows = await csvRows(query);
      expect(rows.map((row) => row.job_id)).toEqual(jobs);
      expect(rows.map((row) => row.tier)).toEqual([tier]);
      const csvCost = rows.reduce((sum, row) => sum.plus(row.cost ?? '0'), new Prisma.Decimal(0));
      expect(csvCost.toFixed(2)).toBe(body.totals.cost);
      expect(body.totals.cost).not.toBe('0.00');

      const page = await admin.get(`/admin/usage?${query}`).set('Accept', 'text/html').expect(200);
      expect(cellsLabelled(page.text, 'Cost (THB)')).toEqual(
        [...body.users, body.totals].map((row: { cost: string }) => row.cost),
      );
      expect(visibleTextOf(page.text)).toContain(body.formerTier.note);
      expect(page.text).toMatch(new RegExp(`name="tier" value="${tier}"`));
      if (tierNow) expect(page.text).toContain(`href="/admin/usage?start=2025-09-14&amp;end=2025-09-20&amp;tier=uni"`);
    },
  );

  it('tier=uni: the jobs priced at uni since, no note', async () => {
    const body = await json(`${WINDOW}&tier=uni`);
    expect(body.formerTier).toBeNull();
    expect((await csvRows(`${WINDOW}&tier=uni`)).map((row) => row.job_id).sort()).toEqual(['102', '201']);
    expect(body.totals.jobs).toBe(2);
  });

  it('still refuses a name no tier had and no receipt carries, as before', async () => {
    const refused = await admin.get(`/admin/usage?${WINDOW}&tier=gold`).set('Accept', 'application/json').expect(400);
    expect(refused.body.error).toContain('unknown tier "gold". Known tiers: ');
    await admin.head(`/admin/usage?${WINDOW}&tier=gold`).set('Accept', 'application/json').expect(400);
    await admin.head(`/admin/usage?${WINDOW}&tier=mu`).set('Accept', 'application/json').expect(200);
  });

  it('reads no more for a tier there is than without the filter (the former names are looked up only for others)', async () => {
    const count = (query: string) =>
      countQueriesDuring(db.pool, () =>
        admin.get(`/admin/usage?${query}`).set('Accept', 'application/json').expect(200),
      );
    await count(WINDOW);
    expect(await count(`${WINDOW}&tier=gov`)).toBe(await count(WINDOW));
  });
});
