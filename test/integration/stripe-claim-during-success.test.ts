import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, setUpDummyPayments } from '../support/dummy-payments.js';
import {
  buildStripeChargeRefunded,
  buildStripeCheckoutPaid,
  buildStripeDisputeCreated,
} from '../support/fake-stripe.js';
import { sessionsWaitingForLocks } from '../support/lock-waits.js';
import { useStripeApp } from '../support/stripe-webhooks.js';
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
  'claimrace',
);

// Stripe names a refund's or dispute's payment by its PaymentIntent, which the app records from the
// success; one that finds no payment by it asks Stripe for the Checkout Session that took it and
// locks that session's payment. When the success was being applied at that moment (both retried
// after an outage, say), the claim waited for the payment's lock and then found the PaymentIntent
// recorded: it took that for "other money" and answered 200 `unknown_payment`, so Stripe never sent
// it again and the receipt stayed paid with money that had gone back to the payer.
describe("a Stripe refund or dispute that arrives while its payment's success is being applied", () => {
  const { stripe, deliver } = useStripeApp(() => db, {
    secretKey: 'sk_test_fakekeyforclaimrace',
    webhookSecret: 'whsec_claimracesecretfortests',
  });

  /**
   * Delivers the success of a new 10.00 THB payment and then `claim`, holding the receipt's row so
   * that the success waits inside its transaction (the payment's row locked, its PaymentIntent not
   * yet recorded) until the claim waits for that payment too; then lets both go.
   */
  async function successAndClaimTogether(intent: string, claim: (intent: string) => unknown) {
    const { agent, receiptId } = await researcherWithReceipt(stripe.app);
    await startCheckout(agent, receiptId);
    const payment = await latestPaymentOf(receiptId);
    stripe.fake.completeSession(String(payment.externalPaymentId), intent);
    const blocker = await db.pool.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT id FROM receipts WHERE id = $1 FOR UPDATE', [receiptId]);
      const success = deliver(buildStripeCheckoutPaid(payment.externalPaymentId, intent, `evt_${intent}_paid`)).then(
        (answer) => answer,
      );
      expect(await sessionsWaitingForLocks(db.pool, 5_000, 1)).toBe(1);
      const claimed = deliver(claim(intent)).then((answer) => answer);
      expect(await sessionsWaitingForLocks(db.pool, 5_000, 2)).toBe(2);
      await blocker.query('COMMIT');
      return { receiptId, payment, success: await success, claimed: await claimed };
    } finally {
      blocker.release();
    }
  }

  it('a refund in full waits for the success and unpays the receipt, not answered unknown_payment', async () => {
    const { receiptId, payment, success, claimed } = await successAndClaimTogether('pi_test_claimrace_refund', (pi) =>
      buildStripeChargeRefunded(
        { payment_intent: pi, amount: 1000, amount_refunded: 1000, currency: 'thb' },
        `evt_${pi}_refund`,
      ),
    );
    expect(success.body).toEqual({ received: true, outcome: 'ok' });
    expect(claimed.status, claimed.text).toBe(200);
    expect(claimed.body).toEqual({ received: true, outcome: 'ok' });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
    expect(await latestPaymentOf(receiptId)).toMatchObject({
      id: payment.id,
      status: 'resolved',
      reviewOutcome: 'refunded',
      refundedMinor: 1000n,
    });
    expect(
      await db.prisma.paymentEvent.findFirstOrThrow({
        where: { externalEventId: 'evt_pi_test_claimrace_refund_refund' },
      }),
    ).toMatchObject({ outcome: 'ok', paymentId: payment.id });
  });

  it('a dispute waits for the success and holds the payment for review', async () => {
    const { receiptId, payment, claimed } = await successAndClaimTogether('pi_test_claimrace_dispute', (pi) =>
      buildStripeDisputeCreated(
        { id: 'dp_test_claimrace', payment_intent: pi, amount: 400, currency: 'thb' },
        `evt_${pi}_dispute`,
      ),
    );
    expect(claimed.body).toEqual({ received: true, outcome: 'review' });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('paid');
    expect(await latestPaymentOf(receiptId)).toMatchObject({
      id: payment.id,
      status: 'needs_review',
      externalDisputeId: 'dp_test_claimrace',
      disputedMinor: 400n,
    });
  });
});
