import type express from 'express';
import Stripe from 'stripe';
import request from 'supertest';
import { afterAll, beforeAll } from 'vitest';
import { createMetrics, type Metrics } from '../../src/modules/metrics/metrics.js';
import { type FakeStripe, startFakeStripe } from './fake-stripe.js';
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
