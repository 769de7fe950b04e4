import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { createPayingResearchers } from '../support/dummy-payments.js';
import {
  buildStripeChargeRefunded,
  buildStripeCheckoutPaid,
  buildStripeRefundUpdated,
} from '../support/fake-stripe.js';
import { useStripeApp } from '../support/stripe-webhooks.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Stripe does not promise delivery order: a refund's failure (charge.refund.updated, failed) can
// arrive before the charge.refunded that reported it. The late refund report then unpaid the
// receipt and resolved the payment as refunded, counting money that never left as returned.
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
});
afterAll(() => db?.drop());

const { stripe, deliver } = useStripeApp(() => db, {
  secretKey: 'sk_test_fakekeyforrefundorder',
  webhookSecret: 'whsec_refundordersecretfortests',
});

const { researcherWithReceipt, startCheckout, latestPaymentOf } = createPayingResearchers(
  () => ({ db, app: stripe.app }),
  'refundorder',
);

let paidCounter = 0;
/** Pays a started 10.00 THB checkout at Stripe, its PaymentIntent named by the success. */
async function payAtStripe(receiptId: number) {
  const payment = await latestPaymentOf(receiptId);
  const intent = `pi_test_refund_order_${paidCounter}`;
  const completed = await deliver(
    buildStripeCheckoutPaid(payment.externalPaymentId, intent, `evt_refund_order_paid_${paidCounter}`),
  );
  expect(completed.body).toEqual({ received: true, outcome: 'ok' });
  return { payment, intent };
}

function refundAtStripe(intent: string, amountRefunded: number, eventId: string) {
  return deliver(
    buildStripeChargeRefunded(
      { payment_intent: intent, amount: 1000, amount_refunded: amountRefunded, currency: 'thb' },
      eventId,
    ),
  );
}

function refundFailed(intent: string, refundId: string, amount: number, eventId: string) {
  return deliver(buildStripeRefundUpdated({ id: refundId, payment_intent: intent, amount, currency: 'thb' }, eventId));
}

async function stateOf(receiptId: number, paymentId: number) {
  const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
  const payment = await db.prisma.payment.findUniqueOrThrow({ where: { id: paymentId } });
  return {
    receipt: { status: receipt.status, paidAt: receipt.paidAt, paymentMethod: receipt.paymentMethod },
    payment: {
      status: payment.status,
      holdsPaidReceipt: payment.holdsPaidReceipt,
      reviewOutcome: payment.reviewOutcome,
      refundedMinor: payment.refundedMinor,
      paidAt: payment.paidAt,
    },
    failedRefunds: await db.prisma.paymentFailedRefund.count({ where: { paymentId } }),
  };
}

describe('a refund in full whose failure arrives before the refund report', () => {
  it('does not unpay the receipt or resolve the payment as refunded: the money never left', async () => {
    const { receiptId } = await researcherWithReceiptStarted();
    const { payment, intent } = await payAtStripe(receiptId);
    const paidAt = (await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).paidAt;

    const failed = await refundFailed(intent, 're_order_full', 1000, 'evt_order_full_failed');
    expect(failed.body).toEqual({ received: true, outcome: 'review' });
    const report = await refundAtStripe(intent, 1000, 'evt_order_full_refunded');
    expect(report.status, report.text).toBe(200);
    expect(report.body).toEqual({ received: true, outcome: 'review' });

    const after = await stateOf(receiptId, payment.id);
    expect(after).toMatchObject({
      receipt: { status: 'paid', paidAt, paymentMethod: 'stripe' },
      payment: { status: 'needs_review', holdsPaidReceipt: true, reviewOutcome: null, refundedMinor: 1000n },
      failedRefunds: 1,
    });
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(held.reviewReason).toContain('the refund re_order_full of 10.00 THB failed at stripe');
    expect(held.reviewReason).toContain('of which 10.00 THB had failed already, so nothing went back');
    const refundAudit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'payment.refund', target: `receipt:${receiptId}` },
    });
    expect(refundAudit.details).toMatchObject({
      refundedTotalMinor: '1000',
      returnedTotalMinor: '0',
      receipt: 'stays_paid',
    });

    // Both told again by the same events, and the failure by a new one: nothing changes. (A new
    // charge.refunded of 10.00 THB would be a refund made since: Stripe's amount_refunded leaves a
    // failed refund out once it failed, refund-after-failed-refund.test.ts.)
    await refundFailed(intent, 're_order_full', 1000, 'evt_order_full_failed').expect(200);
    await refundAtStripe(intent, 1000, 'evt_order_full_refunded').expect(200);
    expect((await refundFailed(intent, 're_order_full', 1000, 'evt_order_full_failed_again')).body.outcome).toBe(
      'ignored',
    );
    expect(await stateOf(receiptId, payment.id)).toEqual(after);
  });

  it('ends as the other order ends in what counts: held for review, nothing returned, one failure recorded', async () => {
    const first = await researcherWithReceiptStarted();
    const early = await payAtStripe(first.receiptId);
    await refundFailed(early.intent, 're_order_a', 1000, 'evt_order_a_failed').expect(200);
    await refundAtStripe(early.intent, 1000, 'evt_order_a_refunded').expect(200);

    const second = await researcherWithReceiptStarted();
    const late = await payAtStripe(second.receiptId);
    await refundAtStripe(late.intent, 1000, 'evt_order_b_refunded').expect(200);
    await refundFailed(late.intent, 're_order_b', 1000, 'evt_order_b_failed').expect(200);

    for (const { receiptId, payment } of [
      { receiptId: first.receiptId, payment: early.payment },
      { receiptId: second.receiptId, payment: late.payment },
    ]) {
      expect(await stateOf(receiptId, payment.id)).toMatchObject({
        payment: { status: 'needs_review', reviewOutcome: null, refundedMinor: 1000n },
        failedRefunds: 1,
      });
    }
  });
});

describe('a partial refund whose failure arrives before the refund report', () => {
  it('keeps the receipt paid and the payment held, whichever arrives first', async () => {
    const { receiptId } = await researcherWithReceiptStarted();
    const { payment, intent } = await payAtStripe(receiptId);
    await refundFailed(intent, 're_order_part', 300, 'evt_order_part_failed').expect(200);
    const report = await refundAtStripe(intent, 300, 'evt_order_part_refunded');
    expect(report.body).toEqual({ received: true, outcome: 'review' });
    expect(await stateOf(receiptId, payment.id)).toMatchObject({
      receipt: { status: 'paid' },
      payment: { status: 'needs_review', holdsPaidReceipt: true, refundedMinor: 300n },
      failedRefunds: 1,
    });
  });
});

async function researcherWithReceiptStarted() {
  paidCounter += 1;
  const { agent, receiptId } = await researcherWithReceipt(stripe.app);
  await startCheckout(agent, receiptId);
  return { agent, receiptId };
}
