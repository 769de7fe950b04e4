import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, deliverDummy, setUpDummyPaymentsApp } from '../../support/dummy-payments.js';
import { buildStripeChargeRefunded, buildStripeEvent } from '../../support/fake-stripe.js';
import { voidAndBillAgain } from '../../support/receipt-steps.js';
import { type Agent, csrfTokenOf } from '../../support/sign-in.js';
import { useStripeApp } from '../../support/stripe-webhooks.js';
import type { buildTestApp } from '../../support/test-app.js';
import type { TestDatabase } from '../../support/test-database.js';

// A payment held for review that did not pay its receipt (paid short, paid after its receipt was
// voided) and that the provider then reports refunded in full has nothing left for finance to
// decide: all the money went back to the payer. It stayed `needs_review` all the same, and while
// it did the receipt (and any receipt billing the same jobs) could not be paid online, until an
// admin resolved it by hand as "refunded", which the provider had already said.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('heldrefundadmin'));
});
afterAll(() => db?.drop());

const { researcherWithReceipt, startCheckout, latestPaymentOf, paidOnline } = createPayingResearchers(
  () => ({ db, app }),
  'heldrefund',
);

/** A pending receipt of 10.00 THB whose payment received 1.00 THB and is held for review. */
async function receiptWithShortPaymentHeld() {
  const researcher = await researcherWithReceipt();
  await startCheckout(researcher.agent, researcher.receiptId);
  const payment = await latestPaymentOf(researcher.receiptId);
  await deliverDummy(app, {
    event_id: `short_${payment.id}`,
    event_type: 'payment.succeeded',
    external_payment_id: payment.externalPaymentId,
    amount_cents: 100,
    currency: 'THB',
  }).expect(200);
  const held = await latestPaymentOf(researcher.receiptId);
  expect(held).toMatchObject({ status: 'needs_review' });
  return { ...researcher, payment: held };
}

function refundOf(externalPaymentId: string | null, amountCents: number, eventId: string) {
  return {
    event_id: eventId,
    event_type: 'payment.refunded',
    external_payment_id: externalPaymentId,
    amount_cents: amountCents,
    currency: 'THB',
  };
}

async function startAnswer(agent: Agent, receiptId: number) {
  return agent
    .post(`/payments/receipt/${receiptId}/start`)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(agent))
    .send({});
}

describe('a payment held for review, refunded in full at the provider', () => {
  it('is resolved as refunded by the provider, keeping why it was held, and the receipt can be paid again', async () => {
    const { agent, receiptId, payment } = await receiptWithShortPaymentHeld();
    expect((await startAnswer(agent, receiptId)).status).toBe(409);
    const receiptBefore = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });

    const answer = await deliverDummy(app, refundOf(payment.externalPaymentId, 100, `held_full_${payment.id}`));
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toEqual({ received: true, outcome: 'ok' });

    const resolved = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(resolved).toMatchObject({
      status: 'resolved',
      reviewOutcome: 'refunded',
      reviewedBy: 'provider:dummy',
      refundedMinor: 100n,
      refundedCurrency: 'THB',
      holdsPaidReceipt: false,
      reviewReason: `paid 1.00 THB but 10.00 THB was due; refunded in full at dummy (1.00 THB)`,
    });
    expect(resolved.reviewNote).toBe(`dummy reported the whole 1.00 THB refunded (event held_full_${payment.id})`);
    // The receipt was never paid from it, and stays as it was.
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toEqual(receiptBefore);
    const audits = await db.prisma.auditLog.findMany({
      where: { action: 'payment.refund', target: `receipt:${receiptId}` },
    });
    expect(audits).toHaveLength(1);
    expect(audits[0]?.details).toMatchObject({
      paymentId: payment.id,
      receipt: 'none',
      previousStatus: 'needs_review',
    });

    // The receipt was never paid from that money, so it is not "unpaid again": it is still to be paid.
    const page = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(page.text).toContain(`Payment #${payment.id} of 1.00 THB via dummy was refunded in full on`);
    expect(page.text).toContain('the money went back to the payer, and this receipt is still to be paid.');
    expect(page.text).not.toContain('unpaid again');

    // Nothing is held any more: the researcher pays the receipt again.
    const started = await startAnswer(agent, receiptId);
    expect(started.status, started.text).toBe(200);
    expect(started.body).toMatchObject({ ok: true, receiptId });

    // A replay changes nothing.
    const replay = await deliverDummy(app, refundOf(payment.externalPaymentId, 100, `held_full_${payment.id}`));
    expect(replay.body).toEqual({ received: true, outcome: 'duplicate' });
  });

  it('no longer blocks the new receipt of a voided receipt’s jobs once its money went back', async () => {
    const { agent, receiptId, payment } = await paidOnline();
    const newReceiptId = await voidAndBillAgain(admin, agent, receiptId);
    expect(await latestPaymentOf(receiptId)).toMatchObject({ status: 'needs_review' });
    expect((await startAnswer(agent, newReceiptId)).status).toBe(409);

    const answer = await deliverDummy(app, refundOf(payment.externalPaymentId, 1000, `void_full_${payment.id}`));
    expect(answer.body).toEqual({ received: true, outcome: 'ok' });
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'resolved',
      reviewOutcome: 'refunded',
      reviewedBy: 'provider:dummy',
    });
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({ status: 'void' });
    expect((await startAnswer(agent, newReceiptId)).status).toBe(200);
  });

  it('stays held when refunded in part: money is still with the centre', async () => {
    const { receiptId, payment } = await receiptWithShortPaymentHeld();
    const answer = await deliverDummy(app, refundOf(payment.externalPaymentId, 40, `held_part_${payment.id}`));
    expect(answer.body).toEqual({ received: true, outcome: 'ok' });
    expect(await latestPaymentOf(receiptId)).toMatchObject({
      status: 'needs_review',
      refundedMinor: 40n,
      // The refund and what is left are added to why it was held (they were not: held-refunded-in-part).
      reviewReason:
        'paid 1.00 THB but 10.00 THB was due; 0.40 THB of the 1.00 THB received has been refunded at dummy so far; ' +
        '0.60 THB is still held',
    });
  });

  it('stays held while a dispute of it is open: the bank may still take the money back', async () => {
    const { receiptId, payment } = await receiptWithShortPaymentHeld();
    await deliverDummy(app, {
      event_id: `held_dispute_${payment.id}`,
      event_type: 'payment.disputed',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 100,
      currency: 'THB',
      dispute_id: `dp_${payment.id}`,
      dispute_reason: 'fraudulent',
    }).expect(200);
    const answer = await deliverDummy(app, refundOf(payment.externalPaymentId, 100, `held_disputed_${payment.id}`));
    expect(answer.status, answer.text).toBe(200);
    expect(await latestPaymentOf(receiptId)).toMatchObject({ status: 'needs_review', refundedMinor: 100n });
  });
});

describe('with Stripe, a payment paid short and held, then refunded in full by charge.refunded', () => {
  const { stripe, deliver } = useStripeApp(() => db, {
    secretKey: 'sk_test_heldrefundedinfull',
    webhookSecret: 'whsec_heldrefundedinfull',
  });

  it('is resolved as refunded by stripe, and the receipt can be paid again', async () => {
    const { agent, receiptId } = await researcherWithReceipt(stripe.app);
    await startCheckout(agent, receiptId);
    const payment = await latestPaymentOf(receiptId);
    const short = await deliver(
      buildStripeEvent(
        'checkout.session.completed',
        {
          id: payment.externalPaymentId,
          amount_total: 100,
          currency: 'thb',
          payment_status: 'paid',
          status: 'complete',
          payment_intent: 'pi_held_refunded_1',
        },
        'evt_held_short_1',
      ),
    );
    expect(short.body).toEqual({ received: true, outcome: 'mismatch' });

    const refunded = await deliver(
      buildStripeChargeRefunded(
        {
          payment_intent: 'pi_held_refunded_1',
          amount: 100,
          amount_captured: 100,
          amount_refunded: 100,
          currency: 'thb',
        },
        'evt_held_refunded_1',
      ),
    );
    expect(refunded.status, refunded.text).toBe(200);
    expect(refunded.body).toEqual({ received: true, outcome: 'ok' });
    expect(await latestPaymentOf(receiptId)).toMatchObject({
      status: 'resolved',
      reviewOutcome: 'refunded',
      reviewedBy: 'provider:stripe',
      reviewReason: 'paid 1.00 THB but 10.00 THB was due; refunded in full at stripe (1.00 THB)',
    });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
    const started = await agent
      .post(`/payments/receipt/${receiptId}/start`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({});
    expect(started.status, started.text).toBe(200);
  });
});
