import Stripe from 'stripe';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, type Metrics } from '../../src/modules/metrics/metrics.js';
import { signDummyWebhook } from '../../src/modules/payments/dummy.provider.js';
import { createPayingResearchers, DUMMY_WEBHOOK_SECRET, setUpDummyPayments } from '../support/dummy-payments.js';
import { buildStripeCheckoutPaid } from '../support/fake-stripe.js';
import { useStripeApp } from '../support/stripe-webhooks.js';
import { type buildTestApp, metricValue } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * A signed webhook whose object gives a key twice was read as JSON.parse reads it, by its last value:
 * `"event_type":"payment.failed","event_type":"payment.succeeded"` paid the receipt, and an amount given
 * twice was checked at whichever came last, where another reader of the same signed bytes (the
 * provider's log, a proxy, an auditor's tool) may take the first. The rest of the app refuses such a
 * body (docs/development.md); a webhook is refused as well, before anything is stored.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let metrics: Metrics;
beforeAll(async () => {
  metrics = createMetrics();
  ({ db, app } = await setUpDummyPayments({ metrics }));
});
afterAll(() => db?.drop());

const payers = createPayingResearchers(() => ({ db, app }), 'dupkeys');

const pendingPayment = (on = app) => payers.pendingPayment(on);

/** Every row a webhook may write: a refused delivery must leave all of them as they were. */
async function everythingWritten() {
  return {
    payments: await db.prisma.payment.findMany({ orderBy: { id: 'asc' } }),
    receipts: await db.prisma.receipt.findMany({ select: { id: true, status: true }, orderBy: { id: 'asc' } }),
    events: await db.prisma.paymentEvent.findMany({ orderBy: { id: 'asc' } }),
    audits: await db.prisma.auditLog.findMany({ select: { id: true }, orderBy: { id: 'asc' } }),
  };
}

function deliverDummyText(body: string) {
  return request(app)
    .post('/payments/webhook/dummy')
    .set('Content-Type', 'application/json')
    .set('X-Dummy-Signature', signDummyWebhook(body, DUMMY_WEBHOOK_SECRET))
    .send(body);
}

describe('the dummy provider', () => {
  it.each([
    [
      'event_type',
      (id: string) =>
        `"event_type":"payment.failed","event_type":"payment.succeeded","external_payment_id":"${id}","amount_cents":1000`,
    ],
    [
      'amount_cents',
      (id: string) =>
        `"event_type":"payment.succeeded","external_payment_id":"${id}","amount_cents":1,"amount_cents":1000`,
    ],
  ])('refuses a signed body giving %s twice, storing and paying nothing', async (key, fields) => {
    const payment = await pendingPayment();
    const before = await everythingWritten();
    const errorsBefore = await metricValue(metrics, 'payments_webhook_events_total', {
      provider: 'dummy',
      event: 'other',
      outcome: 'error',
    });
    const answer = await deliverDummyText(
      `{"event_id":"evt-dup-${key}-${payment.id}",${fields(payment.externalPaymentId ?? '')},"currency":"THB"}`,
    );
    expect(answer.status).toBe(400);
    expect(answer.body.error).toBe(
      `Webhook rejected: body gives ${key} more than once; an event gives each field once, so which value it means cannot be told.`,
    );
    expect(await everythingWritten()).toEqual(before);
    expect(
      await metricValue(metrics, 'payments_webhook_events_total', {
        provider: 'dummy',
        event: 'other',
        outcome: 'error',
      }),
    ).toBe(errorsBefore + 1);
  });

  it('refuses a body nested deeper than the check reads, which hid a key given twice after it', async () => {
    const payment = await pendingPayment();
    const before = await everythingWritten();
    const deep = `${'['.repeat(100)}${']'.repeat(100)}`;
    const answer = await deliverDummyText(
      `{"event_id":"evt-dup-deep-${payment.id}","padding":${deep},"event_type":"payment.failed","event_type":"payment.succeeded","external_payment_id":"${payment.externalPaymentId}","amount_cents":1000,"currency":"THB"}`,
    );
    expect(answer.status).toBe(400);
    expect(answer.body.error).toBe('Webhook rejected: body is nested deeper than 64 levels, which no event is.');
    expect(await everythingWritten()).toEqual(before);
  });

  it('still takes the same event with each key once', async () => {
    const payment = await pendingPayment();
    const answer = await deliverDummyText(
      `{"event_id":"evt-dup-none-${payment.id}","event_type":"payment.succeeded","external_payment_id":"${payment.externalPaymentId}","amount_cents":1000,"currency":"THB"}`,
    );
    expect(answer.status).toBe(200);
    expect(answer.body.outcome).toBe('ok');
    expect((await payers.latestPaymentOf(payment.receiptId)).status).toBe('succeeded');
  });
});

describe('Stripe (SDK against a local fake of the API)', () => {
  const keys = { secretKey: 'sk_test_fakekeyforduplicatekeys', webhookSecret: 'whsec_duplicatekeyssecretfortests' };
  const { stripe } = useStripeApp(() => db, keys);

  it('refuses a signed event whose Checkout Session gives amount_total twice', async () => {
    const payment = await pendingPayment(stripe.app);
    const before = await everythingWritten();
    const event = buildStripeCheckoutPaid(payment.externalPaymentId, 'pi_dup_keys', 'evt_dup_keys');
    const payload = JSON.stringify(event).replace('"amount_total":1000', '"amount_total":1,"amount_total":1000');
    expect(payload).toContain('"amount_total":1,"amount_total":1000');
    const answer = await request(stripe.app)
      .post('/payments/webhook/stripe')
      .set('Content-Type', 'application/json')
      .set(
        'Stripe-Signature',
        new Stripe(keys.secretKey).webhooks.generateTestHeaderString({ payload, secret: keys.webhookSecret }),
      )
      .send(payload);
    expect(answer.status).toBe(400);
    expect(answer.body.error).toBe(
      'Webhook rejected: body gives amount_total more than once; an event gives each field once, so which value it means cannot be told.',
    );
    expect(await everythingWritten()).toEqual(before);
  });
});
