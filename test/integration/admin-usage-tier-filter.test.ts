import { Prisma } from '@prisma/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { cellsLabelled, visibleTextOf } from '../support/html.js';
import { billJobs } from '../support/receipt-steps.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * /admin/usage, its JSON and /admin/usage.csv by tier (an auditor asked for everyone's usage on
 * one tier): `tier=` was ignored as any unknown field, so the answer was everyone's on every tier.
 * A job's tier is the one the page shows for it: its receipt's when billed, else its owner's
 * tier now.
 */

let db: TestDatabase;
let admin: Agent;
const WINDOW = 'start=2025-09-14&end=2025-09-20';
const now = () => new Date('2025-09-20T05:00:00Z');

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'admin', role: 'admin', password: 'admin-password' });
  for (const username of ['alice', 'bob', 'carol']) {
    await buildUser(db.prisma, { username, password: `${username}-password` });
  }
  const app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now });
  await buildJobs(db, [
    { user: 'alice', jobId: '101', end: '2025-09-17T03:00:00Z', totalCpuSec: '7200' },
    { user: 'bob', jobId: '201', end: '2025-09-18T03:00:00Z', totalCpuSec: '3600' },
  ]);
  // Job 101 billed at mu, then alice moved to gov: her next job is priced at gov, the billed one stays mu.
  await billJobs(await signInAs(app, 'alice', 'alice-password'), '2025-09-17');
  const gov = await db.prisma.pricingTier.findUniqueOrThrow({ where: { name: 'gov' } });
  for (const username of ['alice', 'carol']) {
    await db.prisma.tierOverride.create({ data: { username, tierId: gov.id, createdBy: 'test' } });
  }
  await buildJobs(db, [
    { user: 'alice', jobId: '102', end: '2025-09-19T03:00:00Z', totalCpuSec: '1800' },
    { user: 'carol', jobId: '301', end: '2025-09-19T04:00:00Z', totalCpuSec: '5400' },
  ]);
  admin = await signInAs(app, 'admin', 'admin-password');
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

describe('/admin/usage by tier', () => {
  it.each([
    ['gov', ['alice', 'carol'], ['102', '301']],
    ['mu', ['alice', 'bob'], ['101', '201']],
    ['private', [], []],
  ])(
    'tier=%s: page, JSON and CSV list the same jobs, priced at that tier, with the same sums',
    async (tier, users, jobs) => {
      const query = `${WINDOW}&tier=${tier}`;
      const body = await json(query);
      expect(body.filters).toEqual({ tier });
      expect(body.users.map((row: { username: string }) => row.username)).toEqual(users);
      for (const row of body.users) {
        expect(row.tiers.map((share: { tier: string }) => share.tier)).toEqual([tier]);
      }
      expect(body.totals.jobs).toBe(jobs.length);

      const rows = await csvRows(query);
      expect(rows.map((row) => row.job_id).sort()).toEqual(jobs);
      expect(new Set(rows.map((row) => row.tier))).toEqual(new Set(jobs.length ? [tier] : []));
      const csvCost = rows.reduce((sum, row) => sum.plus(row.cost ?? '0'), new Prisma.Decimal(0));
      expect(csvCost.toFixed(2)).toBe(body.totals.cost);

      const page = await admin.get(`/admin/usage?${query}`).set('Accept', 'text/html').expect(200);
      const costs = cellsLabelled(page.text, 'Cost (THB)');
      if (users.length > 0)
        expect(costs).toEqual([...body.users, body.totals].map((row: { cost: string }) => row.cost));
      // The page's form keeps the tier, and its export link takes it.
      expect(page.text).toMatch(new RegExp(`name="tier" value="${tier}"`));
      expect(page.text).toContain(`/admin/usage.csv?start=2025-09-14&amp;end=2025-09-20&amp;tier=${tier}`);
    },
  );

  it('without a tier, every job still', async () => {
    expect((await json(WINDOW)).totals.jobs).toBe(4);
    expect(await csvRows(WINDOW)).toHaveLength(4);
  });

  it('refuses an unknown tier with 400 listing the tiers, on the page, as JSON and for the CSV', async () => {
    const message = 'Tier: unknown tier "gold". Known tiers: mu, gov, private.';
    const asJson = await admin.get(`/admin/usage?${WINDOW}&tier=gold`).set('Accept', 'application/json').expect(400);
    expect(asJson.body).toEqual({
      error: expect.stringContaining('unknown tier "gold". Known tiers: mu, gov, private.'),
      code: 400,
    });
    // A HEAD is refused as its GET is, without summing a job.
    await admin.head(`/admin/usage?${WINDOW}&tier=gold`).set('Accept', 'application/json').expect(400);
    const page = await admin.get(`/admin/usage?${WINDOW}&tier=gold`).set('Accept', 'text/html').expect(400);
    expect(visibleTextOf(page.text).replaceAll('&#34;', '"')).toContain(message);
    const csv = await admin.get(`/admin/usage.csv?${WINDOW}&tier=gold`).set('Accept', 'text/html');
    expect(csv.status).toBe(400);
    expect(visibleTextOf(csv.text).replaceAll('&#34;', '"')).toContain('unknown tier "gold"');
  });
});
