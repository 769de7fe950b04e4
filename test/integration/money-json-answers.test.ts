import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { monthEndRunPathOf, waitForMonthEndRun } from '../support/month-end.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Money in JSON is the decimal's text at the currency's scale: "5.20", never 5.2 nor "5.2".
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;
let alice: Agent;
const STARTED = Date.now();
const now = () => new Date(Date.parse('2025-09-20T05:00:00Z') + (Date.now() - STARTED));

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now });
  admin = await signInAs(app, 'boss', 'boss-password');
  alice = await signInAs(app, 'alice', 'alice-password');
});
afterAll(() => db?.drop());

beforeEach(async () => {
  await db.prisma.monthEndRun.deleteMany();
  await db.prisma.receiptItem.deleteMany();
  await db.prisma.receipt.deleteMany();
  await db.prisma.slurmJob.deleteMany();
});

/** A job of `user` that costs exactly `cpuHours` × 0.50 THB on the mu tier (no GPU, no memory). */
function jobOf(user: string, end: string, cpuHours: number) {
  return { user, end, totalCpuSec: String(cpuHours * 3600), stepMemGbHours: '0', allocMemMb: 0 };
}

describe('money in JSON answers keeps the currency scale', () => {
  it('a receipt of 5.20 THB is created with total "5.20", one of 0.00 with "0.00"', async () => {
    await buildJobs(db, [jobOf('alice', '2025-09-10T03:00:00Z', 10.4)]);
    const token = await csrfTokenOf(alice, '/me');
    const created = await alice
      .post('/me/receipt')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ before: '2025-09-15' });
    expect(created.status, created.text.slice(0, 300)).toBe(201);
    expect(created.body.receipt).toMatchObject({ status: 'pending', total: '5.20', currency: 'THB' });

    await buildJobs(db, [jobOf('alice', '2025-09-11T03:00:00Z', 0)]);
    const free = await alice
      .post('/me/receipt')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ before: '2025-09-15' });
    expect(free.status, free.text.slice(0, 300)).toBe(201);
    expect(free.body.receipt).toMatchObject({ status: 'paid', total: '0.00', currency: 'THB' });
  });

  it('a month-end run that billed 5.20 THB answers its totals as "5.20"', async () => {
    await buildJobs(db, [jobOf('alice', '2025-08-20T03:00:00Z', 4), jobOf('boss', '2025-08-21T03:00:00Z', 6.4)]);
    const started = await admin
      .post('/admin/month-end')
      .set('Accept', 'text/html')
      .type('form')
      .send({ before: '2025-08-31', csrf_token: await csrfTokenOf(admin, '/admin/receipts') });
    const run = await waitForMonthEndRun(admin, monthEndRunPathOf(started));
    expect(run.outcome).toBe('succeeded');
    expect(run.receiptCount).toBe(2);
    expect(run.totals).toEqual([{ currency: 'THB', total: '5.20' }]);
  });

  it('/formula answers rates as text with at least the currency scale, and every digit stored', async () => {
    // The demo tiers: mu at 0.50, 12.00 and 0.05 THB an hour.
    const mu = await request(app).get('/formula?type=mu').expect(200);
    expect(mu.body.rates).toEqual({ cpu: '0.50', gpu: '12.00', mem: '0.05' });

    const token = await csrfTokenOf(admin, '/admin/rates');
    const set = (body: Record<string, unknown>) =>
      admin.post('/formula').set('Accept', 'application/json').set('X-CSRFToken', token).send(body);
    const changed = await set({ type: 'gov', cpu: '0.9', gpu: '18', mem: '0.1234' });
    expect(changed.status, changed.text).toBe(200);
    expect(changed.body.updated).toMatchObject({ cpu: '0.90', gpu: '18.00', mem: '0.1234', isChanged: true });
    const again = await set({ type: 'gov', cpu: '0.90', gpu: '18', mem: '0.1234' });
    expect(again.body.updated).toMatchObject({ cpu: '0.90', gpu: '18.00', mem: '0.1234', isChanged: false });
    const gov = await request(app).get('/formula?type=gov').expect(200);
    expect(gov.body.rates).toEqual({ cpu: '0.90', gpu: '18.00', mem: '0.1234' });
  });
});
