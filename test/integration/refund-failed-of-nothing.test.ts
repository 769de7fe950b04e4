import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, deliverDummy, setUpDummyPayments } from '../support/dummy-payments.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// A refund of nothing returns nothing, so its failure leaves nothing with the centre. A dispute of
// nothing and a refund total of nothing are answered "ignored" and change nothing; a failed refund
// of 0.00 THB was recorded and held its payment for review ("the refund rf0 of 0.00 THB failed: the
// money was not returned to the payer and is still with the centre"): finance was asked to decide
// on money that is not there, and a receipt refunded in full could no longer be paid online while
// its payment was held.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  ({ db, app } = await setUpDummyPayments());
});
afterAll(() => db?.drop());

const { paidOnline, startCheckout } = createPayingResearchers(() => ({ db, app }), 'refundfailednothing');

async function everythingOf(receiptId: number) {
  return {
    receipt: await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } }),
    payments: await db.prisma.payment.findMany({ where: { receiptId }, orderBy: { id: 'asc' } }),
    failedRefunds: await db.prisma.paymentFailedRefund.findMany({ orderBy: { id: 'asc' } }),
    audits: await db.prisma.auditLog.findMany({ where: { target: `receipt:${receiptId}` }, orderBy: { id: 'asc' } }),
  };
}

describe('a failed refund of 0.00', () => {
  it('is answered "ignored" and holds nothing; the receipt refunded in full can still be paid online', async () => {
    const { agent, receiptId, payment } = await paidOnline();
    await deliverDummy(app, {
      event_id: `nothing_refund_${payment.id}`,
      event_type: 'payment.refunded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 1000,
      currency: 'THB',
    }).expect(200, { received: true, outcome: 'ok' });
    const before = await everythingOf(receiptId);
    expect(before.receipt.status).toBe('pending');

    const answer = await deliverDummy(app, {
      event_id: `nothing_failed_${payment.id}`,
      event_type: 'payment.refund_failed',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 0,
      currency: 'THB',
      refund_id: `nothing_${payment.id}`,
    });
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toEqual({ received: true, outcome: 'ignored' });
    expect(await everythingOf(receiptId)).toEqual(before);
    // Recorded as a delivery, as every event applied or not.
    const event = await db.prisma.paymentEvent.findFirstOrThrow({
      where: { externalEventId: `nothing_failed_${payment.id}` },
    });
    expect(event).toMatchObject({ outcome: 'ignored', paymentId: payment.id });

    // Nothing is held, so the researcher can pay the receipt again.
    expect(await startCheckout(agent, receiptId)).toMatch(/^\/payments\/dummy\/checkout\//);
  });
});
