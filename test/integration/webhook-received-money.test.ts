import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, deliverDummy, setUpDummyPayments } from '../support/dummy-payments.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  ({ db, app } = await setUpDummyPayments());
});
afterAll(() => db?.drop());

const { researcherWithReceipt, startCheckout, latestPaymentOf } = createPayingResearchers(
  () => ({ db, app }),
  'recvmoney',
);

// docs/payments.md, Webhooks 3: what a success says was received is recorded on the payment, "a code
// that is no currency is kept only in the reason". A three-letter code no currency has ("XYZ") was
// recorded as money received, shown as "1,000.00 XYZ" on /admin/payments, and a refund claimed in that
// same code then matched it and was recorded as money gone back.
describe('a success in a three-letter code that is no currency', () => {
  it('holds the payment with the code in the reason only, and a refund in that code is refused', async () => {
    const { agent, receiptId } = await researcherWithReceipt();
    await startCheckout(agent, receiptId);
    const payment = await latestPaymentOf(receiptId);
    await deliverDummy(app, {
      event_id: `xyz_${payment.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 1000,
      currency: 'XYZ',
    }).expect(200, { received: true, outcome: 'mismatch' });
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(held).toMatchObject({ status: 'needs_review', receivedMinor: null, receivedCurrency: null });
    expect(held.reviewReason).toBe('paid 10.00 XYZ but 10.00 THB was due');
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'payment.mismatch', target: `receipt:${receiptId}` },
    });
    expect(audit.details).not.toHaveProperty('receivedCurrency');

    const refund = await deliverDummy(app, {
      event_id: `xyz_refund_${payment.id}`,
      event_type: 'payment.refunded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 1000,
      currency: 'XYZ',
    }).expect(409);
    expect(refund.body.error).toMatch(/^Webhook rejected: the refund of payment #\d+ is in XYZ/);
    const after = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(after).toMatchObject({ status: 'needs_review', refundedMinor: null, refundedCurrency: null });
  });
});
