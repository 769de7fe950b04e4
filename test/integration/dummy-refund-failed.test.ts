import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, type Metrics } from '../../src/modules/metrics/metrics.js';
import { createPayingResearchers, deliverDummy, setUpDummyPayments } from '../support/dummy-payments.js';
import { csrfTokenOf } from '../support/sign-in.js';
import { type buildTestApp, metricValue } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// The dummy provider (the demo's, a first-time user's) had no failed refund: its
// payment.refund_failed was refused with 400 "says no refund id", so the flow could only be
// tried against Stripe.
let db: TestDatabase;
let metrics: Metrics;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  metrics = createMetrics();
  ({ db, app } = await setUpDummyPayments({ metrics }));
});
afterAll(() => db?.drop());

const { paidOnline } = createPayingResearchers(() => ({ db, app }), 'dummyrefundfailed');

let eventCounter = 0;
/** The dummy provider's refund event: amount_cents is what it has refunded of the payment so far. */
function refundEvent(externalPaymentId: string | null, amountCents: number) {
  eventCounter += 1;
  return {
    event_id: `dummy_rf_refund_${eventCounter}`,
    event_type: 'payment.refunded',
    external_payment_id: externalPaymentId,
    amount_cents: amountCents,
    currency: 'THB',
  };
}

/** The dummy provider's failed refund: amount_cents is the amount of the refund that failed. */
function refundFailedEvent(
  externalPaymentId: string | null,
  amountCents: number,
  fields: Record<string, unknown> = {},
) {
  eventCounter += 1;
  return {
    event_id: `dummy_rf_failed_${eventCounter}`,
    event_type: 'payment.refund_failed',
    external_payment_id: externalPaymentId,
    amount_cents: amountCents,
    currency: 'THB',
    refund_id: `dummy_refund_${eventCounter}`,
    ...fields,
  };
}

async function snapshotOf(receiptId: number) {
  return {
    receipt: await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } }),
    payments: await db.prisma.payment.findMany({ where: { receiptId }, orderBy: { id: 'asc' } }),
    audits: await db.prisma.auditLog.findMany({ where: { target: `receipt:${receiptId}` }, orderBy: { id: 'asc' } }),
    events: await db.prisma.paymentEvent.count(),
    failed: await db.prisma.paymentFailedRefund.count(),
  };
}

const failedMetric = (outcome: string) =>
  metricValue(metrics, 'payments_webhook_events_total', { provider: 'dummy', event: 'payment.refund_failed', outcome });

describe("the dummy provider's failed refund", () => {
  it('after a refund in full, holds the payment; the receipt cannot be paid again and its page says the refund failed', async () => {
    const { agent, receiptId, payment } = await paidOnline();
    await deliverDummy(app, refundEvent(payment.externalPaymentId, 1000)).expect(200);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
    const reviewBefore = await failedMetric('review');

    const event = refundFailedEvent(payment.externalPaymentId, 1000, {
      refund_id: 'dummy_refund_full',
      failure_reason: 'expired_or_canceled_card',
    });
    const answer = await deliverDummy(app, event);
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toEqual({ received: true, outcome: 'review' });
    expect(await failedMetric('review')).toBe(reviewBefore + 1);
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'needs_review',
      holdsPaidReceipt: false,
      reviewOutcome: null,
      reviewReason:
        'the refund dummy_refund_full of 10.00 THB failed at dummy (expired_or_canceled_card): the money was not ' +
        `returned to the payer and is still with the centre; receipt #${receiptId} was unpaid by that refund and is ` +
        'pending: accept this payment to mark it paid from this money, or refund it again at dummy and resolve as refunded',
    });
    expect(
      await db.prisma.paymentFailedRefund.findMany({ where: { paymentId: payment.id }, select: { status: true } }),
    ).toEqual([{ status: 'failed' }]);
    expect(
      await db.prisma.auditLog.count({ where: { action: 'payment.refund_failed', target: `receipt:${receiptId}` } }),
    ).toBe(1);

    // A replay is a duplicate; the same refund told again by another event changes nothing.
    const after = await snapshotOf(receiptId);
    expect((await deliverDummy(app, event)).body).toEqual({ received: true, outcome: 'duplicate' });
    const retold = await deliverDummy(app, { ...event, event_id: `${event.event_id}_again` });
    expect(retold.body).toEqual({ received: true, outcome: 'ignored' });
    expect({ ...(await snapshotOf(receiptId)), events: after.events + 1 }).toEqual({
      ...after,
      events: after.events + 1,
    });

    const again = await agent
      .post(`/payments/receipt/${receiptId}/start`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent));
    expect(again.status).toBe(409);
    const page = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(page.text).toContain(
      `The refund of 10.00 THB of payment #${payment.id} (10.00 THB via dummy) failed at dummy on`,
    );
    expect(page.text).not.toContain('refunded in full');
  });

  it('a canceled partial refund holds the payment; the receipt stays paid', async () => {
    const { receiptId, payment } = await paidOnline();
    await deliverDummy(app, refundEvent(payment.externalPaymentId, 300)).expect(200);
    const answer = await deliverDummy(
      app,
      refundFailedEvent(payment.externalPaymentId, 300, { refund_id: 'dummy_refund_part', refund_status: 'canceled' }),
    );
    expect(answer.body).toEqual({ received: true, outcome: 'review' });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('paid');
    expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).reviewReason).toContain(
      'the refund dummy_refund_part of 3.00 THB was canceled at dummy: the money was not returned',
    );
  });

  it.each([
    [
      'without a refund id',
      { refund_id: undefined },
      'Webhook rejected: body has no refund_id; a payment.refund_failed event names the refund that failed.',
    ],
    [
      'with another refund status',
      { refund_status: 'succeeded' },
      'Webhook rejected: body\'s refund_status must be "failed" or "canceled".',
    ],
    [
      'with a failure reason that is no short text',
      { failure_reason: 'x'.repeat(65) },
      "Webhook rejected: body's failure_reason must be text of 1 to 64 characters.",
    ],
  ])('%s is refused with 400 and changes nothing', async (_what, fields, error) => {
    const { receiptId, payment } = await paidOnline();
    await deliverDummy(app, refundEvent(payment.externalPaymentId, 1000)).expect(200);
    const before = await snapshotOf(receiptId);
    const answer = await deliverDummy(app, refundFailedEvent(payment.externalPaymentId, 1000, fields));
    expect(answer.status).toBe(400);
    expect(answer.body.error).toBe(error);
    expect(await snapshotOf(receiptId)).toEqual(before);
  });
});
