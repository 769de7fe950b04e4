import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, deliverDummy, setUpDummyPayments } from '../support/dummy-payments.js';
import { buildStripeCheckoutPaid } from '../support/fake-stripe.js';
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

// docs/payments.md, Webhooks 1: a signed body with a field of the wrong kind is refused with 400 and
// nothing is stored, "the same for each Stripe amount". A Checkout Session's negative amount_total
// was taken: the success held its payment as "paid -0.05 THB" (or, for a session of no payment here,
// was stored as unknown_payment), where the dummy's amount_cents and Stripe's refund, dispute and
// Refund amounts below 0 are refused.
describe('a Stripe Checkout Session whose amount_total is below 0', () => {
  const { deliver } = useStripeApp(() => db, {
    secretKey: 'sk_test_fakekeyforreceivedmoney',
    webhookSecret: 'whsec_testsecretforreceivedmoney',
  });

  it('is refused with 400 and nothing is stored', async () => {
    const event = buildStripeCheckoutPaid('cs_test_negative_total', 'pi_negative_total', 'evt_negative_total');
    event.data.object = { ...event.data.object, amount_total: -5 };
    const answer = await deliver(event).expect(400);
    expect(answer.body.error).toBe(
      "Webhook rejected: body's Checkout Session amount_total must be a whole number of minor units, 0 or more, or null.",
    );
    expect(await db.prisma.paymentEvent.count({ where: { externalEventId: 'evt_negative_total' } })).toBe(0);
  });
});
