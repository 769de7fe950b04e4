import type express from 'express';
import Stripe from 'stripe';
import request from 'supertest';
import { afterAll, beforeAll } from 'vitest';
import { createMetrics, type Metrics } from '../../src/modules/metrics/metrics.js';
import type { createPayingResearchers } from './dummy-payments.js';
import { buildStripeCheckoutPaid, type FakeStripe, startFakeStripe } from './fake-stripe.js';
import { csrfTokenOf, signInNewAdmin } from './sign-in.js';
import { buildTestApp } from './test-app.js';
import type { TestDatabase } from './test-database.js';

/**
 * An app that takes payments through Stripe, whose API calls go to a local fake, for the
 * describe block that calls this (started before its tests, stopped after). `deliver` posts an
 * event to the webhook signed as Stripe signs it. `db` is read when the block starts.
 */
export function useStripeApp(db: () => TestDatabase, keys: { secretKey: string; webhookSecret: string }) {
  const signer = new Stripe(keys.secretKey);
  const stripe = {} as { fake: FakeStripe; app: express.Express; metrics: Metrics };
  beforeAll(async () => {
    stripe.fake = await startFakeStripe(keys.secretKey);
    stripe.metrics = createMetrics();
    stripe.app = buildTestApp(db(), {
      env: {
        PAYMENT_PROVIDER: 'stripe',
        STRIPE_SECRET_KEY: keys.secretKey,
        STRIPE_WEBHOOK_SECRET: keys.webhookSecret,
        STRIPE_API_URL: stripe.fake.url,
      },
      metrics: stripe.metrics,
    });
  });
  afterAll(() => stripe.fake?.close());

  function deliver(event: unknown) {
    const payload = JSON.stringify(event);
    return request(stripe.app)
      .post('/payments/webhook/stripe')
      .set('Content-Type', 'application/json')
      .set('Stripe-Signature', signer.webhooks.generateTestHeaderString({ payload, secret: keys.webhookSecret }))
      .send(payload);
  }

  return { stripe, deliver };
}

/**
 * A receipt of 10.00 THB paid at Stripe (its checkout.session.completed, naming `paymentIntent`),
 * voided by a new admin `adminUsername` (which holds its payment for review), and that review
 * resolved by the admin as `resolvedAs`. `resolve` resolves the payment again, once it is held again.
 */
export async function paidAtStripeVoidedAndResolved(
  on: {
    db: TestDatabase;
    app: express.Express;
    deliver: (event: unknown) => request.Test;
    payers: ReturnType<typeof createPayingResearchers>;
  },
  story: {
    paymentIntent: string;
    paidEventId: string;
    adminUsername: string;
    resolvedAs: { outcome: 'refunded' | 'dismissed'; note: string };
  },
) {
  const { researcherWithReceipt, startCheckout, latestPaymentOf } = on.payers;
  const { agent, receiptId } = await researcherWithReceipt(on.app);
  await startCheckout(agent, receiptId);
  const payment = await latestPaymentOf(receiptId);
  await on
    .deliver(buildStripeCheckoutPaid(payment.externalPaymentId, story.paymentIntent, story.paidEventId))
    .expect(200);
  const username = story.adminUsername;
  const admin = await signInNewAdmin(on.app, on.db, username);
  await admin
    .post(`/admin/receipts/${receiptId}/void`)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin))
    .send({ reason: 'billed to the wrong project' })
    .expect(200);
  const resolve = async (outcome: string, note: string) =>
    admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome, note })
      .expect(200);
  await resolve(story.resolvedAs.outcome, story.resolvedAs.note);
  return { receiptId, payment, admin, resolve };
}
