import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amountDueOf, buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The billing page's Paid column showed a void receipt's paid date and method as for a paid one
 * ("2026-02-03 · cash"): only the void badge beside it said otherwise, and a finance person reading
 * down the column took the receipt as paid.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;
// Payments and voids happen "today", 2026-02-10 in the site's zone, wherever the test runs.
const STARTED = Date.now();
const now = () => new Date(Date.parse('2026-02-10T05:00:00Z') + (Date.now() - STARTED));

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'books', role: 'admin', password: 'books-password' });
  app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now });
  admin = await signInAs(app, 'books', 'books-password');
});
afterAll(() => db?.drop());

let counter = 0;
/** A researcher's pending receipt. */
async function pendingReceipt() {
  counter += 1;
  const user = await buildUser(db.prisma, { username: `voidlister${counter}` });
  await buildJobs(db, [{ user: user.username, end: '2026-01-10T10:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
  const agent = await signInAs(app, user.username, user.password);
  const created = await agent
    .post('/me/receipt')
    .type('form')
    .send({ before: '2026-01-31', csrf_token: await csrfTokenOf(agent) });
  expect(created.status, created.text.slice(0, 200)).toBe(303);
  const receiptId = Number(/^\/me\/receipts\/(\d+)#receipt$/.exec(created.headers.location ?? '')?.[1]);
  return { username: user.username, receiptId };
}

async function markPaidByHand(receiptId: number) {
  await admin
    .post(`/admin/receipts/${receiptId}/paid`)
    .type('form')
    .send({ method: 'cash', amount_received: await amountDueOf(db, receiptId), csrf_token: await csrfTokenOf(admin) })
    .expect(303);
}

async function voidReceipt(receiptId: number) {
  await admin
    .post(`/admin/receipts/${receiptId}/void`)
    .type('form')
    .send({ reason: 'billed to the wrong project', csrf_token: await csrfTokenOf(admin) })
    .expect(303);
}

/** The text of the receipt's Paid cell in the billing list, as a reader sees it. */
async function paidCellOf(receiptId: number, username: string): Promise<string> {
  const page = await admin.get(`/admin/receipts?user=${username}`).set('Accept', 'text/html').expect(200);
  const start = page.text.indexOf(`<a href="/admin/receipts/${receiptId}" aria-label="Receipt #${receiptId}">`);
  expect(start).toBeGreaterThan(0);
  const row = page.text.slice(start, page.text.indexOf('</tr>', start));
  const cell = /<td data-label="Paid">([\s\S]*?)<\/td>/.exec(row)?.[1];
  expect(cell).toBeDefined();
  return visibleTextOf(cell ?? '');
}

describe("the billing list's Paid column", () => {
  it('says a receipt voided after it was paid is void, and that the payment was before the void', async () => {
    const { username, receiptId } = await pendingReceipt();
    await markPaidByHand(receiptId);
    await voidReceipt(receiptId);
    expect(await paidCellOf(receiptId, username)).toBe('voided 2026-02-10 was paid 2026-02-10 · cash');
  });

  it('says a receipt voided unpaid is void, with the day', async () => {
    const { username, receiptId } = await pendingReceipt();
    await voidReceipt(receiptId);
    expect(await paidCellOf(receiptId, username)).toBe('voided 2026-02-10');
  });

  it('still says when and how a paid receipt was paid', async () => {
    const { username, receiptId } = await pendingReceipt();
    await markPaidByHand(receiptId);
    expect(await paidCellOf(receiptId, username)).toBe('2026-02-10 · cash');
  });
});
