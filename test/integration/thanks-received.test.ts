import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliverDummy, setUpDummyPayments } from '../support/dummy-payments.js';
import { visibleTextOf as textOf } from '../support/html.js';
import { researcherWithReceiptOf, startCheckout } from '../support/receipt-steps.js';
import { csrfTokenOf, signInNewAdmin } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  ({ db, app } = await setUpDummyPayments());
});
afterAll(() => db?.drop());

describe('the payment status page of a payment held because it was not the amount due', () => {
  it('says what arrived next to the total, as the receipt page does', async () => {
    const { agent, receiptId } = await researcherWithReceiptOf(app, db, 'shortpayer', 1);
    await startCheckout(agent, receiptId);
    const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId } });
    await deliverDummy(app, {
      event_id: `evt_short_${payment.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 40,
      currency: 'THB',
    }).expect(200);

    const receiptPage = textOf((await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html')).text);
    expect(receiptPage).toContain('A payment of 0.40 THB for this receipt is being checked');
    const status = textOf((await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html')).text);
    expect(status).toContain('Total: 0.50 THB');
    expect(status).toContain('Received: 0.40 THB, not the total');
  });
});

// A short payment the provider refunded in full, the receipt then paid by bank transfer at its total:
// the status page said "Paid. Thank you. … Received: 0.40 THB, not the total", as if the receipt had
// been paid short, though none of that money stayed and the receipt page said it went back.
describe('the payment status page once that short payment was refunded in full', () => {
  it('no longer says the money was received, whether the receipt is to be paid or paid another way', async () => {
    const { agent, receiptId } = await researcherWithReceiptOf(app, db, 'shortrefunded', 1);
    await startCheckout(agent, receiptId);
    const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId } });
    const event = { external_payment_id: payment.externalPaymentId, amount_cents: 40, currency: 'THB' };
    await deliverDummy(app, {
      ...event,
      event_id: `evt_short_r_${payment.id}`,
      event_type: 'payment.succeeded',
    }).expect(200);
    await deliverDummy(app, {
      ...event,
      event_id: `evt_short_rf_${payment.id}`,
      event_type: 'payment.refunded',
    }).expect(200);
    const statusText = async () =>
      textOf((await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html').expect(200)).text);
    const pending = await statusText();
    expect(pending).toContain('Total: 0.50 THB');
    expect(pending).not.toContain('Received: 0.40 THB');

    const admin = await signInNewAdmin(app, db, 'shortrefundedadmin');
    const marked = await admin
      .post(`/admin/receipts/${receiptId}/paid`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ method: 'bank_transfer', amount_received: '0.50', tx_ref: 'BT-1' });
    expect(marked.status, marked.text).toBe(200);
    const paid = await statusText();
    expect(paid).toContain('Paid. Thank you.');
    expect(paid).not.toContain('Received: 0.40 THB');
  });
});
