import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amountDueOf, buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { createPaidCsvStory } from '../support/paid-csv-story.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A receipt paid by hand and voided says on its page that the app holds none of its money: "return it
// to the payer or apply it elsewhere". Once an admin marked the receipt billing its jobs again paid
// "with the money of" it, the page still said so, and an admin reading it could return money that
// had paid another receipt. It now names the receipt its money paid.
let db: TestDatabase;
const clock = new Date('2025-09-05T03:00:00Z');
let app: ReturnType<typeof buildTestApp>;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'kim', password: 'kim-password' });
  await buildUser(db.prisma, { username: 'finance', role: 'admin', password: 'finance-password' });
  app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now: () => clock });
});
afterAll(() => db?.drop());

const signIn = (username: string) => signInAs(app, username, `${username}-password`);
const { billEverything } = createPaidCsvStory(() => db);

async function voidAsJson(admin: Agent, receiptId: number) {
  const voided = await admin
    .post(`/admin/receipts/${receiptId}/void`)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin))
    .send({ reason: 'billed at the wrong tier' });
  expect(voided.status, voided.text).toBe(200);
}

async function markPaid(admin: Agent, receiptId: number, fields: Record<string, unknown>) {
  const marked = await admin
    .post(`/admin/receipts/${receiptId}/paid`)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin))
    .send({ method: 'internal_transfer', amount_received: await amountDueOf(db, receiptId), ...fields });
  expect(marked.status, marked.text).toBe(200);
}

const notice = (html: string) =>
  /<div class="alert warning" role="status" id="void-paid-by-hand">(.*?)<\/div>/.exec(html)?.[1];

describe('the page of a receipt voided after it was paid by hand', () => {
  it('names the receipt its money paid, rather than saying to return it to the payer', async () => {
    await buildJobs(db, [{ user: 'kim', end: '2025-09-01T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const kim = await signIn('kim');
    const admin = await signIn('finance');
    const first = await billEverything(kim);
    await markPaid(admin, first, { method: 'bank_transfer', tx_ref: 'BT-51' });
    await voidAsJson(admin, first);
    const again = await billEverything(kim);
    const adminPage = async () =>
      (await admin.get(`/admin/receipts/${first}`).set('Accept', 'text/html').expect(200)).text;

    // Its money paid nothing yet: the advice stands.
    expect(notice(await adminPage())).toBe(
      'Voided after it was paid by hand: 0.50 THB by bank transfer, ref BT-51, on 2025-09-05. ' +
        'The app holds none of this money: return it to the payer or apply it elsewhere.',
    );

    await markPaid(admin, again, { paid_with_receipt: first });
    const paidPage = await adminPage();
    expect(notice(paidPage)).toBe(
      'Voided after it was paid by hand: 0.50 THB by bank transfer, ref BT-51, on 2025-09-05. ' +
        `Its money paid receipt <a href="/admin/receipts/${again}">#${again}</a>.`,
    );
    expect(paidPage).not.toContain('return it to the payer');
    // The researcher's page of it gives no such advice, before or after.
    const ownPage = (await kim.get(`/me/receipts/${first}`).set('Accept', 'text/html').expect(200)).text;
    expect(ownPage).not.toContain('return it to the payer');

    // Voided in turn, that receipt's page says where the money is now.
    await voidAsJson(admin, again);
    expect(notice(await adminPage())).toBe(
      'Voided after it was paid by hand: 0.50 THB by bank transfer, ref BT-51, on 2025-09-05. ' +
        `Its money paid receipt <a href="/admin/receipts/${again}">#${again}</a>, voided since: its page says where the money is now.`,
    );
  });

  it('its admin JSON names that receipt too: moneyPaidReceipt, null while its money paid none', async () => {
    await buildJobs(db, [{ user: 'kim', end: '2025-09-02T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const kim = await signIn('kim');
    const admin = await signIn('finance');
    const first = await billEverything(kim);
    const json = async (id: number) =>
      (await admin.get(`/admin/receipts/${id}`).set('Accept', 'application/json').expect(200)).body.receipt;

    // Pending, and paid by hand before the void: none.
    expect((await json(first)).moneyPaidReceipt).toBeNull();
    await markPaid(admin, first, { method: 'bank_transfer', tx_ref: 'BT-52' });
    expect((await json(first)).moneyPaidReceipt).toBeNull();
    await voidAsJson(admin, first);
    const again = await billEverything(kim);
    expect((await json(first)).moneyPaidReceipt).toBeNull();

    await markPaid(admin, again, { paid_with_receipt: first });
    const voided = await json(first);
    expect(voided.moneyPaidReceipt).toEqual({ id: again, status: 'paid', url: `/admin/receipts/${again}` });
    // What it was paid with is unchanged beside it.
    expect(voided.paidByHand).toMatchObject({ method: 'bank_transfer', txRef: 'BT-52' });
    // The receipt it paid names it the other way round, and names none of its own.
    const paid = await json(again);
    // All of its total was that money: no new money beside it.
    expect(paid.paidWithReceipt).toEqual({
      id: first,
      url: `/admin/receipts/${first}`,
      money: await amountDueOf(db, again),
      newMoney: null,
    });
    expect(paid.moneyPaidReceipt).toBeNull();

    // Voided in turn: its status says so, as the page's "voided since" does.
    await voidAsJson(admin, again);
    expect((await json(first)).moneyPaidReceipt).toEqual({
      id: again,
      status: 'void',
      url: `/admin/receipts/${again}`,
    });
    // The researcher's JSON carries no such field: their page gives no such advice.
    const own = (await kim.get(`/me/receipts/${first}`).set('Accept', 'application/json').expect(200)).body.receipt;
    expect(own).not.toHaveProperty('moneyPaidReceipt');
  });
});
