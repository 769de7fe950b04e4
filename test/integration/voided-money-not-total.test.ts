import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { DUMMY_PAYMENTS_ENV, deliverDummy } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { createPaidCsvStory } from '../support/paid-csv-story.js';
import { csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { createVoidedMoneyStory } from '../support/voided-money-story.js';

// A finance admin voided a receipt paid by hand (billed at the wrong tier, mu), billed its jobs again at
// gov and marked the new receipt paid "with the money of" the voided one: 0.50 THB paid a receipt of
// 0.80 THB in full. The receipt read as settled, paid.csv's line said 0.00 THB received, and the 0.30 THB
// missing was never asked for (an excess, the other way round, never returned). The money of a voided
// receipt now pays a receipt only when it is that receipt's total, as new money does.
let db: TestDatabase;
const clock = new Date('2025-09-05T03:00:00Z');
let app: ReturnType<typeof buildTestApp>;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  for (const username of ['alice', 'bob', 'carol', 'dave', 'eve']) {
    await buildUser(db.prisma, { username, password: `${username}-password` });
  }
  await buildUser(db.prisma, { username: 'finance', role: 'admin', password: 'finance-password' });
  app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok', ...DUMMY_PAYMENTS_ENV }, now: () => clock });
});
afterAll(() => db?.drop());

const signIn = (username: string) => signInAs(app, username, `${username}-password`);
const { billEverything, payOnline } = createPaidCsvStory(() => db);
const { putOn, post, billedAgainAfterHandPaidVoid } = createVoidedMoneyStory(() => db, signIn);

async function expectStillPending(receiptId: number) {
  expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
    status: 'pending',
    paidAt: null,
    paidWithReceiptId: null,
    txRef: null,
  });
  expect(
    await db.prisma.auditLog.count({ where: { action: 'receipt.mark_paid', target: `receipt:${receiptId}` } }),
  ).toBe(0);
}

describe('paying a receipt with the money of a voided receipt that is not its total', () => {
  it('refuses money short of the total, naming both amounts, and changes nothing', async () => {
    const { admin, first, again } = await billedAgainAfterHandPaidVoid('alice', 'mu', 'gov');
    // The receipt's page says so above the form, and offers that money with new money for the rest
    // (voided-money-top-up.test.ts), rather than alone.
    const page = (await admin.get(`/admin/receipts/${again}`).set('Accept', 'text/html').expect(200)).text;
    const notice = visibleTextOf(/id="same-jobs-voided-paid-by-hand">([\s\S]*?)<\/div>/.exec(page)?.[1] ?? '');
    expect(notice).toBe(
      `Receipt #${first}, which billed some of these jobs, was voided after it was paid by hand: 0.50 THB by bank ` +
        "transfer, ref BT-alice, on 2025-09-05. Its money is 0.30 THB short of this receipt's total, 0.80 THB, so it " +
        'cannot pay it alone: once the remaining 0.30 THB has arrived, mark this receipt paid with it (Paid with the ' +
        `money of: receipt #${first}) and 0.30 THB as New money received now, with the reference of that payment.`,
    );
    const marked = await post(admin, `/admin/receipts/${again}/paid`, {
      method: 'internal_transfer',
      amount_received: '0.80',
      paid_with_receipt: String(first),
    });
    expect(marked.status, marked.text).toBe(422);
    expect(marked.body).toMatchObject({
      error:
        `The money of receipt #${first}, 0.50 THB, is 0.30 THB short of the total of receipt #${again}, 0.80 THB, ` +
        'so it cannot pay it in full; nothing was changed. A receipt is paid in full or not at all. Once the ' +
        `remaining 0.30 THB has arrived, mark receipt #${again} paid with the money of receipt #${first} and 0.30 THB ` +
        'as new money received now, with the reference of that payment.',
      field: 'paid_with_receipt',
      money: '0.50',
      moneyCurrency: 'THB',
      total: '0.80',
      currency: 'THB',
    });
    await expectStillPending(again);
  });

  it('refuses money more than the total, and the page shows why beside the form', async () => {
    const { admin, first, again } = await billedAgainAfterHandPaidVoid('bob', 'private', 'mu');
    // Money over the total is not offered, not even with new money (which only makes up a shortfall).
    const page = (await admin.get(`/admin/receipts/${again}`).set('Accept', 'text/html').expect(200)).text;
    expect(page).not.toContain('name="paid_with_receipt"');
    expect(page).not.toContain('name="new_money"');
    const marked = await admin
      .post(`/admin/receipts/${again}/paid`)
      .type('form')
      .set('Accept', 'text/html')
      .send({
        method: 'internal_transfer',
        amount_received: '0.50',
        tx_ref: '',
        paid_with_receipt: String(first),
        csrf_token: await csrfTokenOf(admin),
      });
    expect(marked.status).toBe(422);
    expect(marked.text).toContain(
      `The money of receipt #${first}, 1.50 THB, is 1.00 THB more than the total of receipt #${again}, 0.50 THB`,
    );
    await expectStillPending(again);
  });

  it('refuses the money of a payment online that is not the total', async () => {
    await buildJobs(db, [{ user: 'carol', end: '2025-09-01T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const carol = await signIn('carol');
    const first = await billEverything(carol);
    await payOnline(carol, first);
    const admin = await signIn('finance');
    expect((await post(admin, `/admin/receipts/${first}/void`, { reason: 'billed at the wrong tier' })).status).toBe(
      200,
    );
    await putOn('carol', 'gov');
    const again = await billEverything(carol);
    const held = await db.prisma.payment.findFirstOrThrow({ where: { receiptId: first } });
    const notice = visibleTextOf(
      /id="same-jobs-held">([\s\S]*?)<\/div>/.exec(
        (await admin.get(`/admin/receipts/${again}`).set('Accept', 'text/html').expect(200)).text,
      )?.[1] ?? '',
    );
    expect(notice).toBe(
      `Payment #${held.id} of 0.50 THB for receipt #${first}, which billed some of these jobs, is held for review. ` +
        "Its money is 0.30 THB short of this receipt's total, 0.80 THB, so it cannot pay it alone: once the remaining " +
        `0.30 THB has arrived, mark this receipt paid with it (Paid with the money of: receipt #${first}) and 0.30 THB ` +
        `as New money received now, with the reference of that payment. Then resolve payment #${held.id} as dismissed ` +
        'on the payments page.',
    );
    const marked = await post(admin, `/admin/receipts/${again}/paid`, {
      method: 'internal_transfer',
      amount_received: '0.80',
      paid_with_receipt: String(first),
    });
    expect(marked.status, marked.text).toBe(422);
    expect(marked.body).toMatchObject({ field: 'paid_with_receipt', money: '0.50', total: '0.80' });
    await expectStillPending(again);
  });

  it('counts the money of a payment online less what the provider refunded of it', async () => {
    await buildJobs(db, [{ user: 'eve', end: '2025-09-01T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const eve = await signIn('eve');
    const first = await billEverything(eve);
    const payment = await payOnline(eve, first);
    const admin = await signIn('finance');
    expect((await post(admin, `/admin/receipts/${first}/void`, { reason: 'billed to the wrong project' })).status).toBe(
      200,
    );
    // 0.20 THB of the 0.50 THB went back to the payer: 0.30 THB of that money is left.
    const refund = await deliverDummy(app, {
      event_id: `eve_refund_${payment.id}`,
      event_type: 'payment.refunded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 20,
      currency: 'THB',
    });
    expect(refund.status, refund.text).toBe(200);
    const again = await billEverything(eve);
    // Its page counts the money as the mark paid does: 0.50 THB that is 0.30 THB now.
    const page = (await admin.get(`/admin/receipts/${again}`).set('Accept', 'text/html').expect(200)).text;
    expect(visibleTextOf(/id="same-jobs-held">([\s\S]*?)<\/div>/.exec(page)?.[1] ?? '')).toContain(
      "Its money is 0.20 THB short of this receipt's total, 0.50 THB, so it cannot pay it alone",
    );
    const marked = await post(admin, `/admin/receipts/${again}/paid`, {
      method: 'internal_transfer',
      amount_received: '0.50',
      paid_with_receipt: String(first),
    });
    expect(marked.status, marked.text).toBe(422);
    expect(marked.body).toMatchObject({ field: 'paid_with_receipt', money: '0.30', total: '0.50' });
    await expectStillPending(again);
  });

  it('still pays a receipt whose total that money is', async () => {
    const { admin, first, again } = await billedAgainAfterHandPaidVoid('dave', 'mu', 'mu');
    const page = (await admin.get(`/admin/receipts/${again}`).set('Accept', 'text/html').expect(200)).text;
    expect(visibleTextOf(page)).toContain(
      `it may pay for this receipt: mark this receipt paid with it (Paid with the money of: receipt #${first})`,
    );
    expect(visibleTextOf(page)).not.toContain('Its money is');
    expect(page).toContain(`<option value="${first}">receipt #${first}, voided (paid by hand)</option>`);
    // New money beside it would be more than the total (voided-money-top-up.test.ts).
    const withNewMoney = await post(admin, `/admin/receipts/${again}/paid`, {
      method: 'internal_transfer',
      amount_received: '0.50',
      paid_with_receipt: String(first),
      new_money: '0.10',
      tx_ref: 'BT-extra',
    });
    expect(withNewMoney.status, withNewMoney.text).toBe(422);
    expect(withNewMoney.body.error).toContain(
      `add up to 0.60 THB, 0.10 THB more than the total of receipt #${again}, 0.50 THB; nothing was changed. A ` +
        `receipt is paid in full or not at all: the money of receipt #${first} alone is the total: leave New money ` +
        'received now empty.',
    );
    await expectStillPending(again);
    const marked = await post(admin, `/admin/receipts/${again}/paid`, {
      method: 'internal_transfer',
      amount_received: '0.50',
      paid_with_receipt: String(first),
    });
    expect(marked.status, marked.text).toBe(200);
    expect(marked.body.receipt).toMatchObject({ status: 'paid', paidWithReceiptId: first });
  });
});
