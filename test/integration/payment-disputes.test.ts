import Stripe from 'stripe';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, type Metrics } from '../../src/modules/metrics/metrics.js';
import { buildTiers } from '../support/billing-factories.js';
import { createPayingResearchers, DUMMY_PAYMENTS_ENV, deliverDummy } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import {
  buildStripeDisputeCreated,
  buildStripeEvent,
  type FakeStripe,
  startFakeStripe,
} from '../support/fake-stripe.js';
import { csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp, metricValue } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A payer who disputes a card payment with their bank (a chargeback) takes the money back
// through the provider, which reports it as a dispute. The app ignored it: the receipt stayed paid
// and nothing on /admin/payments told finance that the money was being claimed back.
let db: TestDatabase;
let metrics: Metrics;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  metrics = createMetrics();
  app = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV, metrics });
});
afterAll(() => db?.drop());

const { researcherWithReceipt, startCheckout, latestPaymentOf, paidOnline } = createPayingResearchers(
  () => ({ db, app }),
  'disputed',
);

/** The dummy provider's dispute event: amount_cents is what the payer disputes of the payment. */
function disputeEvent(externalPaymentId: string | null, eventId: string, fields: Record<string, unknown> = {}) {
  return {
    event_id: eventId,
    event_type: 'payment.disputed',
    external_payment_id: externalPaymentId,
    amount_cents: 1000,
    currency: 'THB',
    dispute_id: `dp_${eventId}`,
    dispute_reason: 'fraudulent',
    ...fields,
  };
}

/** Every row a dispute may touch, to check that a repeated one touched nothing. */
async function snapshotOf(receiptId: number) {
  return {
    receipt: await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } }),
    payments: await db.prisma.payment.findMany({ where: { receiptId }, orderBy: { id: 'asc' } }),
    audits: await db.prisma.auditLog.findMany({ where: { target: `receipt:${receiptId}` }, orderBy: { id: 'asc' } }),
  };
}

let adminCounter = 0;
async function signInAdmin() {
  adminCounter += 1;
  const username = `disputereviewer${adminCounter}`;
  await buildUser(db.prisma, { username, role: 'admin', password: `${username}-password` });
  return signInAs(app, username, `${username}-password`);
}

const disputeMetric = (outcome: string, provider = 'dummy', on = metrics) =>
  metricValue(on, 'payments_webhook_events_total', { provider, event: 'payment.disputed', outcome });

// Webhooks are amount-checked: a dispute can claim back no more than the payment took, in its currency.
describe('a dispute that does not fit the payment is refused and changes nothing', () => {
  it.each([
    [
      'of more than the payment received',
      { amount_cents: 1001 },
      (paymentId: number) =>
        `Webhook rejected: the dispute of payment #${paymentId} (10.01 THB) is more than the 10.00 THB it received; nothing was changed.`,
    ],
    [
      'in another currency',
      { amount_cents: 500, currency: 'USD' },
      (paymentId: number) =>
        `Webhook rejected: the dispute of payment #${paymentId} is in USD (5.00 USD), but the payment received 10.00 THB; nothing was changed.`,
    ],
  ])('a dispute %s', async (_label, fields, messageOf) => {
    const { receiptId, payment } = await paidOnline();
    const before = await snapshotOf(receiptId);
    const errorsBefore = await disputeMetric('error');
    const answer = await deliverDummy(app, disputeEvent(payment.externalPaymentId, `evt_misfit_${payment.id}`, fields));
    expect(answer.status).toBe(409);
    expect(answer.body).toEqual({ error: messageOf(payment.id), code: 409 });
    expect(await snapshotOf(receiptId)).toEqual(before);
    expect(await db.prisma.paymentEvent.count({ where: { externalEventId: `evt_misfit_${payment.id}` } })).toBe(0);
    expect(await disputeMetric('error')).toBe(errorsBefore + 1);
  });
});

describe('a dispute of the payment that paid a receipt', () => {
  it('holds the payment for review with the disputed amount and reason, audited once; the receipt stays paid', async () => {
    const { receiptId, payment } = await paidOnline();
    const before = await snapshotOf(receiptId);
    const reviewBefore = await disputeMetric('review');

    const answer = await deliverDummy(app, disputeEvent(payment.externalPaymentId, 'dispute_1'));
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toEqual({ received: true, outcome: 'review' });
    expect(await disputeMetric('review')).toBe(reviewBefore + 1);

    // The receipt is left as it was: paid, by this payment, until an admin decides.
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toEqual(before.receipt);
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(held).toMatchObject({
      status: 'needs_review',
      holdsPaidReceipt: true,
      externalDisputeId: 'dp_dispute_1',
      disputedMinor: 1000n,
      disputedCurrency: 'THB',
      disputeReason: 'fraudulent',
      reviewReason: `the payer disputed 10.00 THB of the 10.00 THB received at dummy (reason: fraudulent); receipt #${receiptId} stays paid until this is resolved`,
    });
    expect(held.disputedAt).toBeInstanceOf(Date);
    const audits = await db.prisma.auditLog.findMany({
      where: { action: 'payment.dispute', target: `receipt:${receiptId}` },
    });
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ actor: 'provider:dummy', status: 'ok' });
    expect(audits[0]?.details).toMatchObject({
      paymentId: payment.id,
      eventId: 'dispute_1',
      disputeId: 'dp_dispute_1',
      amountMinor: '1000',
      currency: 'THB',
      reason: 'fraudulent',
      receipt: 'stays_paid',
    });

    // A replay is a duplicate; the same dispute told again by another event changes nothing either.
    const held1 = await snapshotOf(receiptId);
    const replay = await deliverDummy(app, disputeEvent(payment.externalPaymentId, 'dispute_1'));
    expect(replay.body).toEqual({ received: true, outcome: 'duplicate' });
    const retold = await deliverDummy(
      app,
      disputeEvent(payment.externalPaymentId, 'dispute_1_again', { dispute_id: 'dp_dispute_1' }),
    );
    expect(retold.body).toEqual({ received: true, outcome: 'ignored' });
    expect(await snapshotOf(receiptId)).toEqual(held1);

    // The admin sees it held, with what is disputed and why, and decides.
    const admin = await signInAdmin();
    const list = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(list.text).toContain('the payer disputed 10.00 THB of the 10.00 THB received at dummy (reason: fraudulent)');
    const resolve = async (outcome: string) =>
      admin
        .post(`/admin/payments/${payment.id}/resolve`)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(admin))
        .send({ outcome, note: 'Evidence sent to the bank; the dispute was won.' });
    const refused = await resolve('dismissed');
    expect(refused.status).toBe(409);
    expect(refused.body.error).toBe(
      `Payment #${payment.id} still pays receipt #${receiptId}, and the payer disputed it. Accept it to keep the receipt paid, or void the receipt on the billing page first; nothing was changed.`,
    );
    const accepted = await resolve('accepted');
    expect(accepted.status, accepted.text).toBe(200);
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'resolved',
      reviewOutcome: 'accepted',
      holdsPaidReceipt: false,
      disputedMinor: 1000n,
    });
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toEqual(before.receipt);
  });

  it('for a payment that never received money is recorded and answered 200, and changes nothing', async () => {
    const { agent, receiptId } = await researcherWithReceipt();
    await startCheckout(agent, receiptId);
    const pending = await latestPaymentOf(receiptId);
    const before = await snapshotOf(receiptId);
    const answer = await deliverDummy(app, disputeEvent(pending.externalPaymentId, 'dispute_pending'));
    expect(answer.body).toEqual({ received: true, outcome: 'ignored' });
    expect(await snapshotOf(receiptId)).toEqual(before);
  });
});

describe("Stripe's charge.dispute.created (SDK against a local fake of the API)", () => {
  const secretKey = 'sk_test_fakekeyfordisputes';
  const webhookSecret = 'whsec_disputesecretfortests';
  const signer = new Stripe(secretKey);
  let fake: FakeStripe;
  let stripeMetrics: Metrics;
  let stripeApp: ReturnType<typeof buildTestApp>;
  beforeAll(async () => {
    fake = await startFakeStripe(secretKey);
    stripeMetrics = createMetrics();
    stripeApp = buildTestApp(db, {
      env: {
        PAYMENT_PROVIDER: 'stripe',
        STRIPE_SECRET_KEY: secretKey,
        STRIPE_WEBHOOK_SECRET: webhookSecret,
        STRIPE_API_URL: fake.url,
      },
      metrics: stripeMetrics,
    });
  });
  afterAll(() => fake?.close());

  function deliverStripe(event: unknown) {
    const payload = JSON.stringify(event);
    return request(stripeApp)
      .post('/payments/webhook/stripe')
      .set('Content-Type', 'application/json')
      .set('Stripe-Signature', signer.webhooks.generateTestHeaderString({ payload, secret: webhookSecret }))
      .send(payload);
  }

  it('finds the payment by the PaymentIntent its success named and holds it; a body about another object is refused', async () => {
    const { agent, receiptId } = await researcherWithReceipt(stripeApp);
    await startCheckout(agent, receiptId);
    const payment = await latestPaymentOf(receiptId);
    const completed = await deliverStripe(
      buildStripeEvent(
        'checkout.session.completed',
        {
          id: payment.externalPaymentId,
          amount_total: 1000,
          currency: 'thb',
          payment_status: 'paid',
          status: 'complete',
          payment_intent: 'pi_test_disputes_1',
        },
        'evt_disputes_paid',
      ),
    );
    expect(completed.body).toEqual({ received: true, outcome: 'ok' });

    const notADispute = await deliverStripe(
      buildStripeDisputeCreated({ object: 'charge', payment_intent: 'pi_test_disputes_1' }, 'evt_disputes_charge'),
    );
    expect(notADispute.status).toBe(400);
    expect(notADispute.body.error).toContain('charge.dispute.created event is about a "charge", not a Dispute');

    const disputed = await deliverStripe(
      buildStripeDisputeCreated(
        { id: 'dp_test_disputes_1', payment_intent: 'pi_test_disputes_1', amount: 1000, currency: 'thb' },
        'evt_disputes_created',
      ),
    );
    expect(disputed.status, disputed.text).toBe(200);
    expect(disputed.body).toEqual({ received: true, outcome: 'review' });
    expect(await latestPaymentOf(receiptId)).toMatchObject({
      status: 'needs_review',
      holdsPaidReceipt: true,
      externalDisputeId: 'dp_test_disputes_1',
      disputedMinor: 1000n,
      disputedCurrency: 'THB',
      disputeReason: 'fraudulent',
    });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('paid');
    expect(await disputeMetric('review', 'stripe', stripeMetrics)).toBe(1);
  });
});
