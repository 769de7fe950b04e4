import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, type Metrics } from '../../src/modules/metrics/metrics.js';
import { createPayingResearchers, deliverDummy, setUpDummyPayments } from '../support/dummy-payments.js';
import { type buildTestApp, metricValue } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// A refund's failure is recorded once per refund id (provider-wide: Stripe's re_… ids are). A
// failure naming a refund id already recorded for another payment is not that refund told again:
// it is another refund under a used id, such as a second demo payment's failure sent with the
// docs' "refund_id":"demo_refund_1". It was answered 200 "ignored": the sender read that it was
// taken, and the second payment still read as refunded, its money never shown as still with the centre.
let db: TestDatabase;
let metrics: Metrics;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  metrics = createMetrics();
  ({ db, app } = await setUpDummyPayments({ metrics }));
});
afterAll(() => db?.drop());

const { paidOnline } = createPayingResearchers(() => ({ db, app }), 'refundidreused');

/** A 10.00 THB payment refunded in full at the dummy provider: its receipt is pending again. */
async function refundedInFull() {
  const paid = await paidOnline();
  await deliverDummy(app, {
    event_id: `reused_refund_${paid.payment.id}`,
    event_type: 'payment.refunded',
    external_payment_id: paid.payment.externalPaymentId,
    amount_cents: 1000,
    currency: 'THB',
  }).expect(200, { received: true, outcome: 'ok' });
  return paid;
}

function refundFailed(externalPaymentId: string | null, eventId: string, refundId: string) {
  return deliverDummy(app, {
    event_id: eventId,
    event_type: 'payment.refund_failed',
    external_payment_id: externalPaymentId,
    amount_cents: 1000,
    currency: 'THB',
    refund_id: refundId,
  });
}

/** Every row a delivery may write. */
async function everythingWritten() {
  return {
    payments: await db.prisma.payment.findMany({ orderBy: { id: 'asc' } }),
    receipts: await db.prisma.receipt.findMany({ select: { id: true, status: true }, orderBy: { id: 'asc' } }),
    events: await db.prisma.paymentEvent.findMany({ orderBy: { id: 'asc' } }),
    failedRefunds: await db.prisma.paymentFailedRefund.findMany({ orderBy: { id: 'asc' } }),
    audits: await db.prisma.auditLog.findMany({ select: { id: true }, orderBy: { id: 'asc' } }),
  };
}

describe('a failed refund under a refund id recorded for another payment', () => {
  it('is refused with 409 naming both payments, changing nothing; sent with its own refund id, it is applied', async () => {
    const first = await refundedInFull();
    await refundFailed(first.payment.externalPaymentId, 'reused_failed_1', 'demo_refund_1').expect(200, {
      received: true,
      outcome: 'review',
    });
    const second = await refundedInFull();
    const before = await everythingWritten();
    const errorsBefore = await metricValue(metrics, 'payments_webhook_events_total', {
      provider: 'dummy',
      event: 'payment.refund_failed',
      outcome: 'error',
    });

    const reused = await refundFailed(second.payment.externalPaymentId, 'reused_failed_2', 'demo_refund_1');
    expect(reused.status, reused.text).toBe(409);
    expect(reused.body.error).toBe(
      `Webhook rejected: the refund demo_refund_1 was already reported failed for payment #${first.payment.id}, ` +
        `and this delivery says it was a refund of payment #${second.payment.id}; a refund id names one refund, ` +
        `so this failure was not applied. Send it with the refund_id of payment #${second.payment.id}'s refund; nothing was changed.`,
    );
    expect(await everythingWritten()).toEqual(before);
    expect(
      await metricValue(metrics, 'payments_webhook_events_total', {
        provider: 'dummy',
        event: 'payment.refund_failed',
        outcome: 'error',
      }),
    ).toBe(errorsBefore + 1);

    // The same failure told again for the first payment is still that refund told twice.
    await refundFailed(first.payment.externalPaymentId, 'reused_failed_3', 'demo_refund_1').expect(200, {
      received: true,
      outcome: 'ignored',
    });

    await refundFailed(second.payment.externalPaymentId, 'reused_failed_4', 'demo_refund_2').expect(200, {
      received: true,
      outcome: 'review',
    });
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: second.payment.id } });
    expect(held.status).toBe('needs_review');
    expect(held.reviewReason).toContain('the refund demo_refund_2 of 10.00 THB failed at dummy');
  });
});
