import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A script that reads /me as JSON went on to its receipts and got the HTML page (200, text/html),
 * while every refusal on the same paths already answered {error, code}.
 */
let db: TestDatabase;
let alice: Agent;
let bob: Agent;
let receiptId: number;
const now = () => new Date('2025-09-20T05:00:00Z');

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'bob', password: 'bob-password' });
  const app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now });
  await buildJobs(db, [
    { user: 'alice', jobId: '101', name: 'first', end: '2025-09-18T03:00:00Z', totalCpuSec: '7200', elapsedSec: 3600 },
    { user: 'alice', jobId: '102', name: 'second', end: '2025-09-18T04:00:00Z', totalCpuSec: '1234.567' },
  ]);
  alice = await signInAs(app, 'alice', 'alice-password');
  bob = await signInAs(app, 'bob', 'bob-password');
  const created = await alice
    .post('/me/receipt')
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(alice, '/me'))
    .send({ before: '2025-09-18' })
    .expect(201);
  receiptId = created.body.receipt.id;
});
afterAll(() => db?.drop());

const json = (agent: Agent, path: string) => agent.get(path).set('Accept', 'application/json');

describe("a researcher's receipts for a JSON client", () => {
  it('GET /me/receipts answers the list as JSON, money as a decimal string', async () => {
    const answer = await json(alice, '/me/receipts').expect(200);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(answer.body).toMatchObject({ page: 1, pageCount: 1, count: 1 });
    expect(answer.body.receipts).toEqual([
      expect.objectContaining({
        id: receiptId,
        status: 'pending',
        before: '2025-09-18',
        tier: 'mu',
        jobCount: 2,
        total: expect.stringMatching(/^\d+\.\d{2}$/),
        currency: 'THB',
        paidAt: null,
        url: `/me/receipts/${receiptId}`,
      }),
    ]);
  });

  it('GET /me/receipts/:id answers the receipt and its items as JSON, the costs adding up to the total', async () => {
    const answer = await json(alice, `/me/receipts/${receiptId}`).expect(200);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    const { receipt, items } = answer.body;
    expect(receipt).toMatchObject({ id: receiptId, status: 'pending', jobCount: 2, currency: 'THB' });
    expect(answer.body).toMatchObject({ page: 1, pageCount: 1, count: 2 });
    expect(items.map((item: { jobId: string }) => item.jobId).sort()).toEqual(['101', '102']);
    const first = items.find((item: { jobId: string }) => item.jobId === '101');
    expect(first).toMatchObject({ name: 'first', endAt: '2025-09-18T03:00:00.000Z', cpuHours: '2.000000' });
    const cents = items.reduce((sum: number, item: { cost: string }) => sum + Math.round(Number(item.cost) * 100), 0);
    expect(cents).toBe(Math.round(Number(receipt.total) * 100));
  });

  it("another user's receipt, and a page past the last, are {error, code} and change nothing", async () => {
    const other = await json(bob, `/me/receipts/${receiptId}`).expect(404);
    expect(other.body).toEqual({ error: `Receipt #${receiptId} was not found.`, code: 404 });
    const past = await json(alice, '/me/receipts?page=2').expect(404);
    expect(past.body.error).toMatch(/no page 2/);
    const bad = await json(alice, `/me/receipts/${receiptId}?page=0`).expect(400);
    expect(bad.body).toEqual({ error: 'page: must be at least 1', code: 400 });
    expect(await db.prisma.receipt.count()).toBe(1);
    expect(await db.prisma.receiptItem.count()).toBe(2);
  });

  it('a browser still gets the HTML page', async () => {
    const page = await alice.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
  });
});
