import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPayingResearchers,
  deliverDummy,
  dummyRefundEvent,
  setUpDummyPaymentsApp,
} from '../../support/dummy-payments.js';
import type { Agent } from '../../support/sign-in.js';
import type { buildTestApp } from '../../support/test-app.js';
import type { TestDatabase } from '../../support/test-database.js';

// A payment held after one of its refunds failed, then refunded in full (the provider's total leaves
// the failed refund out, so the whole payment can be refunded again), was resolved with "refunded in
// full …" as its only reason: the failed refund it had been held for vanished from the reason the
// admin reads on /admin/payments (it was still recorded apart, in payment_failed_refunds).
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('failedfulladmin'));
});
afterAll(() => db?.drop());

const { paidOnline } = createPayingResearchers(() => ({ db, app }), 'failedfull');

describe('a refund in full of a payment held after a failed refund', () => {
  it('keeps why it was held, the failed refund, before the refund in full in its reason', async () => {
    const { receiptId, payment } = await paidOnline();
    await deliverDummy(app, dummyRefundEvent(payment.externalPaymentId, `part_${payment.id}`, 300)).expect(200);
    const failed = await deliverDummy(app, {
      ...dummyRefundEvent(payment.externalPaymentId, `part_failed_${payment.id}`, 300),
      event_type: 'payment.refund_failed',
      refund_id: `re_part_${payment.id}`,
      failure_reason: 'expired_or_canceled_card',
    });
    expect(failed.body).toEqual({ received: true, outcome: 'review' });
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    const failureWords = `the refund re_part_${payment.id} of 3.00 THB failed at dummy (expired_or_canceled_card)`;
    expect(held.reviewReason).toContain(failureWords);

    const full = await deliverDummy(app, dummyRefundEvent(payment.externalPaymentId, `full_${payment.id}`, 1000));
    expect(full.status, full.text).toBe(200);
    expect(full.body).toEqual({ received: true, outcome: 'ok' });

    const resolved = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(resolved).toMatchObject({
      status: 'resolved',
      reviewOutcome: 'refunded',
      reviewedBy: 'provider:dummy',
      // Both facts, in the order they happened.
      reviewReason: `${held.reviewReason}; refunded in full at dummy (10.00 THB); receipt #${receiptId} is unpaid again`,
    });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');

    // Where the admin reads it: the payment's row on /admin/payments, and the page's JSON.
    const page = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain(
      `${failureWords}: the money was not returned to the payer and is still with the centre`,
    );
    expect(page.text).toContain(`refunded in full at dummy (10.00 THB); receipt #${receiptId} is unpaid again`);
    const json = await admin.get('/admin/payments').set('Accept', 'application/json').expect(200);
    const listed = json.body.payments.find((row: { id: number }) => row.id === payment.id);
    expect(listed).toMatchObject({ status: 'resolved', reviewReason: resolved.reviewReason });
  });
});
