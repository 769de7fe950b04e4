import Stripe from 'stripe';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, type Metrics } from '../../src/modules/metrics/metrics.js';
import { signDummyWebhook } from '../../src/modules/payments/dummy.provider.js';
import { DUMMY_PAYMENTS_ENV, DUMMY_WEBHOOK_SECRET } from '../support/dummy-payments.js';
import { buildStripeEvent } from '../support/fake-stripe.js';
import { buildTestApp, metricValue } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let metrics: Metrics;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  db = await createTestDatabase();
  metrics = createMetrics();
  app = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV, metrics });
});
afterAll(() => db?.drop());

const outcomes = async () => ({
  badSignature: await metricValue(metrics, 'payments_webhook_events_total', {
    provider: 'dummy',
    event: 'other',
    outcome: 'bad_signature',
  }),
  error: await metricValue(metrics, 'payments_webhook_events_total', {
    provider: 'dummy',
    event: 'other',
    outcome: 'error',
  }),
});

describe('a correctly signed webhook whose body is no event', () => {
  it.each([
    ['text that is not JSON', 'not json', 'Webhook rejected: body is not JSON.'],
    ['a JSON array', '[]', 'Webhook rejected: body is not a JSON object with the dummy event fields.'],
  ])('%s is refused with 400 and counted as an error, not as a bad signature', async (_label, body, message) => {
    const before = await outcomes();
    const response = await request(app)
      .post('/payments/webhook/dummy')
      .set('Content-Type', 'application/json')
      .set('X-Dummy-Signature', signDummyWebhook(body, DUMMY_WEBHOOK_SECRET))
      .send(body);
    expect(response.status).toBe(400);
    expect(response.body).toEqual({ error: message, code: 400 });
    expect(await db.prisma.paymentEvent.count()).toBe(0);
    // The secret is right: an alert on bad signatures must not send anyone to rotate it.
    expect(await outcomes()).toEqual({ badSignature: before.badSignature, error: before.error + 1 });
  });
});

describe('a correctly signed Stripe delivery whose body is no event', () => {
  const secretKey = 'sk_test_fake_key_for_body_metrics';
  const webhookSecret = 'whsec_body_metrics';
  const signer = new Stripe(secretKey);
  let stripeMetrics: Metrics;
  let stripeApp: ReturnType<typeof buildTestApp>;
  beforeAll(() => {
    stripeMetrics = createMetrics();
    stripeApp = buildTestApp(db, {
      env: {
        PAYMENT_PROVIDER: 'stripe',
        STRIPE_SECRET_KEY: secretKey,
        STRIPE_WEBHOOK_SECRET: webhookSecret,
        STRIPE_API_URL: 'http://127.0.0.1:9',
      },
      metrics: stripeMetrics,
    });
  });
  const stripeOutcomes = async () => ({
    badSignature: await metricValue(stripeMetrics, 'payments_webhook_events_total', {
      provider: 'stripe',
      event: 'other',
      outcome: 'bad_signature',
    }),
    error: await metricValue(stripeMetrics, 'payments_webhook_events_total', {
      provider: 'stripe',
      event: 'other',
      outcome: 'error',
    }),
  });

  it.each([
    ['text that is not JSON', 'not json', 'Webhook rejected: body is not JSON.'],
    [
      'a JSON array',
      '[]',
      'Webhook rejected: body is not a Stripe event (an object with an id, a type and data.object).',
    ],
    [
      'a Checkout Session event about another kind of object',
      JSON.stringify({
        ...buildStripeEvent('checkout.session.completed', {}, 'evt_body_other_object'),
        data: { object: { id: 'ch_1', object: 'charge' } },
      }),
      'Webhook rejected: body\'s checkout.session.completed event is about a "charge", not a Checkout Session.',
    ],
    // Longer than the columns that keep them (varchar(128) ids, varchar(64) types): such a delivery
    // used to fail inside the query with a 500, which Stripe retries for three days.
    [
      'an event id of 129 characters',
      JSON.stringify(buildStripeEvent('checkout.session.completed', {}, `evt_${'x'.repeat(125)}`)),
      "Webhook rejected: body's event id must be text of 1 to 128 characters.",
    ],
    [
      'an event type of 65 characters',
      JSON.stringify({
        ...buildStripeEvent('checkout.session.completed', {}, 'evt_body_long_type'),
        type: `treasury.${'t'.repeat(56)}`,
      }),
      "Webhook rejected: body's event type must be text of 1 to 64 characters.",
    ],
    [
      'a PaymentIntent id of 129 characters',
      JSON.stringify(
        buildStripeEvent('checkout.session.completed', { payment_intent: `pi_${'x'.repeat(126)}` }, 'evt_body_long_pi'),
      ),
      "Webhook rejected: body's Checkout Session payment_intent must be an id of at most 128 characters.",
    ],
    [
      'a Dispute id of 129 characters',
      JSON.stringify({
        ...buildStripeEvent('charge.dispute.created', {}, 'evt_body_long_dispute'),
        data: {
          object: {
            id: `dp_${'x'.repeat(126)}`,
            object: 'dispute',
            amount: 1000,
            currency: 'thb',
            payment_intent: 'pi_body_long_dispute',
            reason: 'fraudulent',
            status: 'needs_response',
          },
        },
      }),
      "Webhook rejected: body's Dispute id must be an id of at most 128 characters.",
    ],
    // Kept in char(3) columns (a refused refund's claimed_currency): "thbx" failed that insert, so the
    // refusal never reached /admin/payments.
    [
      'a refund in a currency of four letters',
      JSON.stringify({
        ...buildStripeEvent('charge.refunded', {}, 'evt_body_refund_currency'),
        data: {
          object: {
            id: 'ch_body_refund_currency',
            object: 'charge',
            amount: 1000,
            amount_refunded: 1000,
            currency: 'thbx',
            payment_intent: 'pi_body_refund_currency',
          },
        },
      }),
      "Webhook rejected: body's Charge currency must be a currency code.",
    ],
    [
      'an event without its object',
      JSON.stringify({ ...buildStripeEvent('checkout.session.completed', {}, 'evt_body_no_object'), data: {} }),
      'Webhook rejected: body is not a Stripe event (an object with an id, a type and data.object).',
    ],
  ])('%s is refused with 400 and counted as an error, not as a bad signature', async (_label, body, message) => {
    const before = await stripeOutcomes();
    const response = await request(stripeApp)
      .post('/payments/webhook/stripe')
      .set('Content-Type', 'application/json')
      .set('Stripe-Signature', signer.webhooks.generateTestHeaderString({ payload: body, secret: webhookSecret }))
      .send(body);
    expect(response.status).toBe(400);
    expect(response.body).toEqual({ error: message, code: 400 });
    expect(await db.prisma.paymentEvent.count()).toBe(0);
    // The secret is right: an alert on bad signatures must not send anyone to rotate it.
    expect(await stripeOutcomes()).toEqual({ badSignature: before.badSignature, error: before.error + 1 });
  });

  it('a body signed with another secret is still a bad signature', async () => {
    const before = await stripeOutcomes();
    const body = JSON.stringify(buildStripeEvent('checkout.session.completed', {}, 'evt_body_wrong_secret'));
    await request(stripeApp)
      .post('/payments/webhook/stripe')
      .set('Content-Type', 'application/json')
      .set('Stripe-Signature', signer.webhooks.generateTestHeaderString({ payload: body, secret: 'whsec_other' }))
      .send(body)
      .expect(400);
    expect(await stripeOutcomes()).toEqual({ badSignature: before.badSignature + 1, error: before.error });
  });

  // Stripe's package reads t= with parseInt: "abc" became NaN, the signature was checked over "NaN."
  // and the answer sent the operator to the webhook secret instead of the header's timestamp.
  it.each([['abc'], [''], ['17e8'], ['1.5']])(
    'a timestamp t=%j is refused as not a whole number of seconds, still a bad signature',
    async (stamp) => {
      const before = await stripeOutcomes();
      const body = JSON.stringify(buildStripeEvent('checkout.session.completed', {}, 'evt_body_bad_stamp'));
      const signed = signer.webhooks.generateTestHeaderString({ payload: body, secret: webhookSecret });
      const response = await request(stripeApp)
        .post('/payments/webhook/stripe')
        .set('Content-Type', 'application/json')
        .set('Stripe-Signature', signed.replace(/^t=\d+/, `t=${stamp}`))
        .send(body);
      expect(response.status).toBe(400);
      expect(response.body).toEqual({
        error: 'Webhook rejected: the Stripe-Signature timestamp is not a whole number of seconds.',
        code: 400,
      });
      expect(await db.prisma.paymentEvent.count()).toBe(0);
      expect(await stripeOutcomes()).toEqual({ badSignature: before.badSignature + 1, error: before.error });
    },
  );
});
