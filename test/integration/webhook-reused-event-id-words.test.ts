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

const { paidOnline } = createPayingResearchers(() => ({ db, app }), 'reusedid');

/** Every row an event may touch, to check that a refused one touched nothing. */
async function snapshotOf(receiptId: number) {
  return {
    receipt: await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } }),
    payments: await db.prisma.payment.findMany({ where: { receiptId }, orderBy: { id: 'asc' } }),
    audits: await db.prisma.auditLog.count(),
    events: await db.prisma.paymentEvent.count(),
  };
}

// The 409 for another event under a used event id said what the id was first received as and what
// this delivery says. When they differed only in what the short description leaves out (a dispute's
// outcome or reason, a failed refund's status or reason), both halves read the same: "already
// received as payment.dispute_closed of 4.00 THB for dummy_… (dp_…), and this delivery says
// payment.dispute_closed of 4.00 THB for dummy_… (dp_…)", and its sender could not tell what to fix.
describe('another event under a used event id that differs only in its details', () => {
  it('a dispute outcome of lost under the id of one told won is refused 409 naming both outcomes', async () => {
    const { receiptId, payment } = await paidOnline();
    const dispute = {
      event_type: 'payment.disputed',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 400,
      currency: 'THB',
      dispute_id: `dp_words_${receiptId}`,
      dispute_reason: 'fraudulent',
    };
    await deliverDummy(app, { ...dispute, event_id: `disputed_${receiptId}` }).expect(200);
    const closed = { ...dispute, event_type: 'payment.dispute_closed', event_id: `closed_${receiptId}` };
    await deliverDummy(app, { ...closed, dispute_status: 'won' }).expect(200);
    const before = await snapshotOf(receiptId);

    const answer = await deliverDummy(app, { ...closed, dispute_status: 'lost' });
    expect(answer.status).toBe(409);
    const about = `payment.dispute_closed of 4.00 THB for ${payment.externalPaymentId} (dp_words_${receiptId}`;
    expect(answer.body.error).toBe(
      `Webhook rejected: event closed_${receiptId} was already received as ${about}; dispute won), and this delivery ` +
        `says ${about}; dispute lost); an event id names one event, so this one was not applied. ` +
        'Send it with an event id of its own; nothing was changed.',
    );
    expect(await snapshotOf(receiptId)).toEqual(before);
  });

  it('a dispute with another reason, or a failed refund with another status or reason, names what differs', async () => {
    const { receiptId, payment } = await paidOnline();
    const dispute = {
      event_id: `disputed_reason_${receiptId}`,
      event_type: 'payment.disputed',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 400,
      currency: 'THB',
      dispute_id: `dp_reason_${receiptId}`,
      dispute_reason: 'fraudulent',
    };
    await deliverDummy(app, dispute).expect(200);
    const reworded = await deliverDummy(app, { ...dispute, dispute_reason: 'duplicate' });
    expect(reworded.status).toBe(409);
    expect(reworded.body.error).toContain(
      `already received as payment.disputed of 4.00 THB for ${payment.externalPaymentId} (dp_reason_${receiptId}; ` +
        `reason fraudulent), and this delivery says payment.disputed of 4.00 THB for ${payment.externalPaymentId} ` +
        `(dp_reason_${receiptId}; reason duplicate);`,
    );

    const refund = {
      event_type: 'payment.refunded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 300,
      currency: 'THB',
    };
    await deliverDummy(app, { ...refund, event_id: `refund_${receiptId}` }).expect(200);
    const failed = {
      ...refund,
      event_id: `refund_failed_${receiptId}`,
      event_type: 'payment.refund_failed',
      refund_id: `re_words_${receiptId}`,
      failure_reason: 'expired_or_canceled_card',
    };
    await deliverDummy(app, failed).expect(200);
    const before = await snapshotOf(receiptId);
    const canceled = await deliverDummy(app, { ...failed, refund_status: 'canceled', failure_reason: 'unknown' });
    expect(canceled.status).toBe(409);
    expect(canceled.body.error).toContain(
      `already received as payment.refund_failed of 3.00 THB for ${payment.externalPaymentId} (re_words_${receiptId}; ` +
        `refund failed; failure reason expired_or_canceled_card), and this delivery says payment.refund_failed of ` +
        `3.00 THB for ${payment.externalPaymentId} (re_words_${receiptId}; refund canceled; failure reason unknown);`,
    );
    expect(await snapshotOf(receiptId)).toEqual(before);
  });
});
