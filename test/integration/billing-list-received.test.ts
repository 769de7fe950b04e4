import type express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amountDueOf } from '../support/billing-factories.js';
import { createPayingResearchers, deliverDummy, setUpDummyPaymentsApp } from '../support/dummy-payments.js';
import { type Agent, csrfTokenOf } from '../support/sign-in.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * The billing page's list of receipts: its paid card said "received 24,165.02 THB" beside a paid
 * total of 24,087.61 THB, but every row showed only the receipt's total, so finance could not find
 * which receipt was paid short or over (or in another currency) without opening each one.
 */
let db: TestDatabase;
let app: express.Express;
let admin: Agent;
const { researcherWithReceipt, paidOnline, paidShortAndAccepted } = createPayingResearchers(
  () => ({ db, app }),
  'lister',
);

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('ledger'));
});
afterAll(() => db?.drop());

/** The list's row of a receipt. */
async function rowOf(receiptId: number, username: string) {
  const page = await admin.get(`/admin/receipts?user=${username}`).set('Accept', 'text/html').expect(200);
  const start = page.text.indexOf(`<a href="/admin/receipts/${receiptId}" aria-label="Receipt #${receiptId}">`);
  expect(start).toBeGreaterThan(0);
  return page.text.slice(start, page.text.indexOf('</tr>', start));
}

describe("the billing page's list of receipts", () => {
  it('says what a receipt paid short or over received, beside its total', async () => {
    const { user, receiptId } = await paidShortAndAccepted(admin, 100);
    const row = await rowOf(receiptId, user.username);
    expect(row).toContain('10.00 THB');
    expect(row).toContain('received, net of refunds and lost disputes: <span class="nowrap">1.00 THB</span>');
  });

  it('says what stayed of a payment the provider refunded in part, as the paid card counts it', async () => {
    const { user, receiptId, payment } = await paidOnline();
    await deliverDummy(app, {
      event_id: `refund_${payment.id}`,
      event_type: 'payment.refunded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 300,
      currency: 'THB',
    }).expect(200);
    expect(await rowOf(receiptId, user.username)).toContain(
      'received, net of refunds and lost disputes: <span class="nowrap">7.00 THB</span>',
    );
  });

  it('counts a refund that failed as money that stayed, and a lost dispute as gone, as the paid card does', async () => {
    const { user, receiptId, payment } = await paidOnline();
    const event = { external_payment_id: payment.externalPaymentId, currency: 'THB' };
    await deliverDummy(app, {
      ...event,
      event_id: `refund_${payment.id}`,
      event_type: 'payment.refunded',
      amount_cents: 600,
    }).expect(200);
    await deliverDummy(app, {
      ...event,
      event_id: `refund_failed_${payment.id}`,
      event_type: 'payment.refund_failed',
      amount_cents: 600,
      refund_id: `refund_${payment.id}`,
    }).expect(200);
    // The 6.00 THB never left: the receipt brought in its total.
    expect(await rowOf(receiptId, user.username)).not.toContain('received');

    await deliverDummy(app, {
      ...event,
      event_id: `lost_${payment.id}`,
      event_type: 'payment.dispute_closed',
      amount_cents: 400,
      dispute_id: `dp_${payment.id}`,
      dispute_status: 'lost',
    }).expect(200);
    // The bank's 4.00 THB is not a refund: the row and the paid card name the lost dispute too.
    expect(await rowOf(receiptId, user.username)).toContain(
      'received, net of refunds and lost disputes: <span class="nowrap">6.00 THB</span>',
    );
    const page = await admin.get(`/admin/receipts?user=${user.username}`).set('Accept', 'text/html').expect(200);
    expect(page.text).toMatch(
      /<span class="received-different">received, net of refunds and lost disputes: 6\.00 THB<\/span>\s*<\/div>/,
    );
    expect(page.text).not.toMatch(/net of refunds(?! and lost disputes)/);
    // The JSON's fields count the same, as docs/billing.md says.
    const json = await admin.get(`/admin/receipts?user=${user.username}`).set('Accept', 'application/json').expect(200);
    expect(json.body.received.byCurrency).toEqual([{ currency: 'THB', total: '6.00' }]);
    expect(json.body.receipts[0].receivedNetOfRefunds).toEqual({ amount: '6.00', currency: 'THB' });
  });

  it('says nothing more of a receipt paid its total, online or by hand', async () => {
    const online = await paidOnline();
    expect(await rowOf(online.receiptId, online.user.username)).not.toContain('received');
    const byHand = await researcherWithReceipt();
    await admin
      .post(`/admin/receipts/${byHand.receiptId}/paid`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ method: 'cash', amount_received: await amountDueOf(db, byHand.receiptId) })
      .expect(200);
    expect(await rowOf(byHand.receiptId, byHand.user.username)).not.toContain('received');
  });
});
