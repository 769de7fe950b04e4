import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, deliverDummy, setUpDummyPayments } from '../support/dummy-payments.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// A payment provider's developer writes a client of the dummy provider's webhooks from
// docs/payments.md alone, and sends what it says: these are the deliveries where the answer told
// that client something other than what happened to the money.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  ({ db, app } = await setUpDummyPayments());
});
afterAll(() => db?.drop());

const { paidOnline, researcherWithReceipt, startCheckout, latestPaymentOf } = createPayingResearchers(
  () => ({ db, app }),
  'contract',
);

let eventCounter = 0;
/** A dummy event about `externalPaymentId` of 10.00 THB, with its own event id unless `fields` gives one. */
function dummyEvent(externalPaymentId: string | null, eventType: string, fields: Record<string, unknown> = {}) {
  eventCounter += 1;
  return {
    event_id: `contract_${eventCounter}`,
    event_type: eventType,
    external_payment_id: externalPaymentId,
    amount_cents: 1000,
    currency: 'THB',
    ...fields,
  };
}

/** Every row a delivery may touch. */
async function snapshotOf(receiptId: number) {
  return {
    receipt: await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } }),
    payments: await db.prisma.payment.findMany({ where: { receiptId }, orderBy: { id: 'asc' } }),
    audits: await db.prisma.auditLog.findMany({ where: { target: `receipt:${receiptId}` }, orderBy: { id: 'asc' } }),
    events: await db.prisma.paymentEvent.count(),
  };
}

describe('a dummy payment.dispute_closed without dispute_id', () => {
  // dispute_id is optional in payment.disputed (the event's id when left out), and the docs give
  // payment.dispute_closed "the fields of payment.disputed plus dispute_status". Left out there too,
  // the closed dispute's id was its own event id, no dispute recorded on the payment: a lost dispute
  // was answered 200 "ignored", the provider stopped sending it, and the money the bank took back
  // was never counted (the receipt stayed paid).
  it('is refused with 400 saying which dispute id to send, and changes nothing; sent with it, the loss is applied', async () => {
    const { receiptId, payment } = await paidOnline();
    const opened = dummyEvent(payment.externalPaymentId, 'payment.disputed', { dispute_reason: 'fraudulent' });
    await deliverDummy(app, opened).expect(200, { received: true, outcome: 'review' });
    const before = await snapshotOf(receiptId);

    const closed = dummyEvent(payment.externalPaymentId, 'payment.dispute_closed', { dispute_status: 'lost' });
    const refused = await deliverDummy(app, closed);
    expect(refused.status, refused.text).toBe(400);
    expect(refused.body.error).toBe(
      'Webhook rejected: body has no dispute_id; a payment.dispute_closed event names the dispute it closes: ' +
        "the dispute_id its payment.disputed gave, or that event's event_id when it gave none.",
    );
    expect(await snapshotOf(receiptId)).toEqual(before);

    const named = await deliverDummy(app, { ...closed, dispute_id: opened.event_id });
    expect(named.status, named.text).toBe(200);
    expect(named.body).toEqual({ received: true, outcome: 'ok' });
    const after = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(after).toMatchObject({ disputeStatus: 'lost', refundedMinor: 1000n, status: 'resolved' });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
  });
});

describe('a dummy refund or dispute of a canceled or failed payment, before its late success', () => {
  // Providers do not promise order. A checkout canceled here (the payer gave up, the receipt was
  // voided) whose payer had paid at the provider after all: the provider's refund of that money
  // overtook its success. It was answered 200 "ignored" (never sent again), and the late success
  // then held the payment for review with no word of the refund, so finance refunded it a second
  // time. With Stripe the same claim is refused until the success has arrived; now so is the dummy's.
  it.each([
    ['payment.canceled', 'payment.refunded', {}, 'its refund'],
    ['payment.failed', 'payment.disputed', { dispute_id: 'dp_late' }, 'its dispute'],
  ] as const)(
    'after %s, %s is refused unstored (409) and applied when sent again after the success',
    async (ended, claimType, fields, what) => {
      const { agent, receiptId } = await researcherWithReceipt();
      await startCheckout(agent, receiptId);
      const payment = await latestPaymentOf(receiptId);
      await deliverDummy(app, dummyEvent(payment.externalPaymentId, ended)).expect(200, {
        received: true,
        outcome: 'ok',
      });
      const before = await snapshotOf(receiptId);

      const claim = dummyEvent(payment.externalPaymentId, claimType, {
        ...fields,
        event_id: `late_claim_${payment.id}`,
      });
      const early = await deliverDummy(app, claim);
      expect(early.status, early.text).toBe(409);
      expect(early.body.error).toBe(
        `Webhook rejected: payment #${payment.id} has not been reported paid yet, so ${what} cannot be applied before ` +
          'its success; nothing was changed. Send it again once the success has arrived.',
      );
      expect(await snapshotOf(receiptId)).toEqual(before);

      await deliverDummy(app, dummyEvent(payment.externalPaymentId, 'payment.succeeded')).expect(200, {
        received: true,
        outcome: 'review',
      });
      const retried = await deliverDummy(app, claim);
      expect(retried.status, retried.text).toBe(200);
      // Recorded on the held payment, where /admin/payments shows it (Refunded, or the reason). All of
      // its money went back to the payer, so the refund also closes its review, keeping why it was held.
      const held = await latestPaymentOf(receiptId);
      if (claimType === 'payment.refunded')
        expect(held).toMatchObject({
          status: 'resolved',
          reviewOutcome: 'refunded',
          reviewedBy: 'provider:dummy',
          refundedMinor: 1000n,
          reviewReason: expect.stringContaining('payment succeeded after it was canceled'),
        });
      else
        expect(held).toMatchObject({
          status: 'needs_review',
          externalDisputeId: 'dp_late',
          reviewReason: expect.stringContaining('disputed'),
        });
    },
  );
});

describe('a dummy dispute or failed refund whose own fields hold text no column can store', () => {
  // The webhook refused a NUL or a lone surrogate ("\ud800", which JSON can spell) up front only in
  // the event's id, type, payment and currency. In dispute_id, dispute_reason, refund_id or
  // failure_reason a lone surrogate failed inside the query: 500, which a provider retries for days.
  it.each([
    ['payment.disputed', 'dispute_reason'],
    ['payment.disputed', 'dispute_id'],
    ['payment.refund_failed', 'refund_id'],
    ['payment.refund_failed', 'failure_reason'],
  ] as const)(
    '%s with a lone surrogate in %s is refused with 400 saying so, and changes nothing',
    async (type, field) => {
      const { receiptId, payment } = await paidOnline();
      const before = await snapshotOf(receiptId);
      const event = dummyEvent(payment.externalPaymentId, type, {
        ...(type === 'payment.refund_failed' ? { refund_id: `re_${payment.id}` } : {}),
        [field]: 'fraudulent\ud800',
      });
      const answer = await deliverDummy(app, event);
      expect(answer.status, answer.text).toBe(400);
      expect(answer.body.error).toBe(
        'The request contains an unpaired UTF-16 surrogate (a \\ud800-\\udfff escape without its other half), which no field accepts.',
      );
      expect(await snapshotOf(receiptId)).toEqual(before);
    },
  );
});

describe('a dummy event with a field its events do not have', () => {
  // Refunds, failed refunds and disputes are sent by hand. A field written another way (`disputeId`
  // for `dispute_id`) was ignored: the dispute was recorded under its event id, so the
  // payment.dispute_closed naming dp_1 as written matched no dispute, was answered 200 "ignored",
  // and the money the bank took back was never counted (the receipt stayed paid).
  it('is refused with 400 naming the field, and changes nothing; sent as documented, the loss is applied', async () => {
    const { receiptId, payment } = await paidOnline();
    const before = await snapshotOf(receiptId);
    const misspelt = dummyEvent(payment.externalPaymentId, 'payment.disputed', { disputeId: 'dp_1' });
    const refused = await deliverDummy(app, misspelt);
    expect(refused.status, refused.text).toBe(400);
    expect(refused.body.error).toBe(
      'Webhook rejected: body has a field the dummy events do not have, "disputeId"; the dummy event fields are ' +
        'event_id, event_type, external_payment_id, amount_cents, currency, dispute_id, dispute_reason, ' +
        'dispute_status, refund_id, refund_status, failure_reason.',
    );
    expect(await snapshotOf(receiptId)).toEqual(before);

    // Sent again as the docs spell it, under the same event id (nothing of the refused one was stored).
    const { disputeId, ...asDocumented } = misspelt as Record<string, unknown>;
    await deliverDummy(app, { ...asDocumented, dispute_id: disputeId }).expect(200, {
      received: true,
      outcome: 'review',
    });
    const closed = dummyEvent(payment.externalPaymentId, 'payment.dispute_closed', {
      dispute_id: 'dp_1',
      dispute_status: 'lost',
    });
    await deliverDummy(app, closed).expect(200, { received: true, outcome: 'ok' });
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      externalDisputeId: 'dp_1',
      disputeStatus: 'lost',
      refundedMinor: 1000n,
    });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
  });
});
