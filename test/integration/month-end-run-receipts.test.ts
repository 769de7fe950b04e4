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
let alice: Agent;
const STARTED = Date.now();
const now = () => new Date(Date.parse('2025-09-20T05:00:00Z') + (Date.now() - STARTED));

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  const app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now });
  admin = await signInAs(app, 'boss', 'boss-password');
  alice = await signInAs(app, 'alice', 'alice-password');
});
afterAll(() => db?.drop());

const html = (path: string) => admin.get(path).set('Accept', 'text/html');

/** The receipt ids listed on a billing page, in order. */
function listedReceiptIds(page: string): number[] {
  return [...page.matchAll(/<td data-label="Receipt"><a href="\/admin\/receipts\/(\d+)"[^>]*>/g)].map((match) =>
    Number(match[1]),
  );
}

describe("a month-end run's receipts", () => {
  it("are linked from the run's page, and the billing list filtered to the run shows exactly them", async () => {
    // Alice bills her own August jobs first, the same period, moments before the run.
    await buildJobs(db, [{ user: 'alice', end: '2025-08-20T03:00:00Z' }]);
    const own = await alice
      .post('/me/receipt')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(alice, '/me'))
      .send({ before: '2025-08-31' });
    expect(own.status, own.text.slice(0, 300)).toBe(201);
    await buildJobs(db, [
      { user: 'carol', end: '2025-08-21T03:00:00Z' },
      { user: 'dave', end: '2025-08-22T03:00:00Z' },
      { user: 'erin', end: '2025-08-23T03:00:00Z' },
    ]);
    const started = await admin
      .post('/admin/month-end')
      .set('Accept', 'text/html')
      .type('form')
      .send({ before: '2025-08-31', csrf_token: await csrfTokenOf(admin, '/admin/receipts') });
    const runPath = monthEndRunPathOf(started);
    const run = await waitForMonthEndRun(admin, runPath);
    expect(run.receiptCount).toBe(3);
    const made = await db.prisma.receipt.findMany({
      where: { username: { in: ['carol', 'dave', 'erin'] } },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      select: { id: true, username: true },
    });
    expect(made).toHaveLength(3);

    const receiptsPath = `/admin/receipts?run=${run.id}`;
    expect(run).toMatchObject({ receiptsUrl: receiptsPath });
    const page = await html(runPath).expect(200);
    expect(page.text).toContain(`<a href="${receiptsPath.replace('&', '&amp;')}">See the 3 receipts it made</a>`);

    const listed = await html(receiptsPath).expect(200);
    expect(listedReceiptIds(listed.text)).toEqual(made.map((receipt) => receipt.id));
    expect(visibleTextOf(listed.text)).toContain(`Receipts made by month-end run #${run.id}.`);
    // The filter form keeps the run, so narrowing it by status or user stays within the run.
    expect(listed.text).toContain(`<input type="hidden" name="run" value="${run.id}">`);
    const carol = await html(`${receiptsPath}&user=carol`).expect(200);
    expect(listedReceiptIds(carol.text)).toEqual([made.find((receipt) => receipt.username === 'carol')?.id]);
    const aliceInRun = await html(`${receiptsPath}&user=alice`).expect(200);
    expect(listedReceiptIds(aliceInRun.text)).toEqual([]);

    // And each receipt leads back to the run that made it; the researcher's own does not.
    const receipt = await html(`/admin/receipts/${made[0]?.id}`).expect(200);
    expect(receipt.text).toContain(`<a href="${runPath}">month-end run #${run.id}</a>`);
    const ownReceipt = await html(`/admin/receipts/${own.body.receipt?.id ?? own.body.id}`).expect(200);
    expect(ownReceipt.text).not.toContain('month-end run');
  });

  it('says so when the run made its receipts before receipts recorded their run', async () => {
    const old = await db.prisma.monthEndRun.create({
      data: {
        billedThrough: new Date('2025-07-31T00:00:00Z'),
        startedBy: 'boss',
        startedAt: new Date('2025-08-01T04:00:00Z'),
        finishedAt: new Date('2025-08-01T04:01:00Z'),
        outcome: 'succeeded',
        usersTotal: 2,
        usersDone: 2,
        receiptCount: 2,
        totals: [{ currency: 'THB', total: '9.00' }],
      },
    });
    const page = await html(`/admin/month-end/${old.id}`).expect(200);
    expect(visibleTextOf(page.text)).toContain(
      'This run made its 2 receipts before receipts recorded the run that made them, so they cannot be listed here;',
    );
    expect(page.text).not.toContain(`/admin/receipts?run=${old.id}`);
  });

  it('a run filter that is not a run id names no run "#abc" and is not kept by the Filter button: the error and a way out', async () => {
    const before = await db.prisma.receipt.count();
    const refused = await html('/admin/receipts?run=abc').expect(400);
    const text = visibleTextOf(refused.text);
    expect(text).toContain('Month-end run: must be a whole number');
    expect(text).not.toContain('Receipts made by month-end run #abc');
    expect(text).toContain('Show every receipt');
    expect(refused.text).not.toContain('name="run"');
    expect(await db.prisma.receipt.count()).toBe(before);
  });

  it.each([
    ['2147483648', 'Month-end run: must be at most 2147483647'],
    ['01', 'Month-end run: must be written without leading zeros'],
  ])(
    'a run filter of digits refused as a run id (run=%s) names no run either: its page is a 400 too',
    async (run, reason) => {
      const refused = await html(`/admin/receipts?run=${run}`).expect(400);
      const text = visibleTextOf(refused.text);
      expect(text).toContain(reason);
      expect(text).not.toContain(`Receipts made by month-end run #${run}`);
      expect(text).toContain('Show every receipt');
      expect(refused.text).not.toContain(`href="/admin/month-end/${run}"`);
      expect(refused.text).not.toContain('name="run"');
    },
  );

  it('a run filter refused for another field keeps its run: banner, link back and the Filter button', async () => {
    const refused = await html('/admin/receipts?run=1&status=bogus').expect(400);
    expect(visibleTextOf(refused.text)).toContain('Receipts made by month-end run #1.');
    expect(refused.text).toContain('href="/admin/month-end/1"');
    expect(refused.text).toContain('name="run" value="1"');
  });

  it('a run that does not exist comes back as the billing page saying so, with a way out', async () => {
    const refused = await html('/admin/receipts?run=2000000').expect(404);
    const text = visibleTextOf(refused.text);
    expect(text).toContain('Month-end run #2000000 was not found.');
    expect(text).toContain('Show every receipt');
    expect(text).not.toContain('Back to the start page');
    expect(refused.text).not.toContain('href="/admin/month-end/2000000"');
  });

  it.each([
    ['/admin/receipts?run=abc', 400, 'must be a whole number'],
    ['/admin/receipts?run=2000000', 404, 'Month-end run #2000000 was not found.'],
  ])('refuses %s with %i and says why', async (path, status, message) => {
    const before = await db.prisma.receipt.count();
    const refused = await html(path).expect(status);
    expect(refused.text).toContain(message);
    const json = await admin.get(path).set('Accept', 'application/json').expect(status);
    expect(json.body).toMatchObject({ error: expect.stringContaining(message), code: status });
    expect(await db.prisma.receipt.count()).toBe(before);
    // The page keeps what was typed, but links to no run page that cannot exist.
    expect(refused.text).not.toContain('href="/admin/month-end/abc"');
  });
});
