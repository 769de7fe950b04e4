import Stripe from 'stripe';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDummyWebhook } from '../../src/modules/payments/dummy.provider.js';
import { createPayingResearchers, DUMMY_WEBHOOK_SECRET, setUpDummyPayments } from '../support/dummy-payments.js';
import { buildStripeChargeRefunded, buildStripeCheckoutPaid } from '../support/fake-stripe.js';
import { useStripeApp } from '../support/stripe-webhooks.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * An amount written with more digits than a JSON number holds (about 17) was read as JSON.parse
 * rounds it: `"amount_cents":999.99999999999999` is 1000 once parsed, so a signed body saying less
 * than the 10.00 THB due, and not a whole number of minor units, paid the receipt in full, where
 * 999.5 is refused as "must be a whole number of minor units". Another reader of the same signed
 * bytes (the provider's log, a decimal type) reads 999.99999999999999. Refused as that, before
 * anything is stored; an amount whose digits are a whole number (1000.0, 1e3) is still that number.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  ({ db, app } = await setUpDummyPayments());
});
afterAll(() => db?.drop());

const payers = createPayingResearchers(() => ({ db, app }), 'amountliteral');

const pendingPayment = (on = app) => payers.pendingPayment(on);

/** Every row a webhook may write: a refused delivery must leave all of them as they were. */
async function everythingWritten() {
  return {
    payments: await db.prisma.payment.findMany({ orderBy: { id: 'asc' } }),
    receipts: await db.prisma.receipt.findMany({ select: { id: true, status: true }, orderBy: { id: 'asc' } }),
    events: await db.prisma.paymentEvent.findMany({ orderBy: { id: 'asc' } }),
    audits: await db.prisma.auditLog.findMany({ select: { id: true }, orderBy: { id: 'asc' } }),
    refusedClaims: await db.prisma.paymentRefusedClaim.findMany({ orderBy: { id: 'asc' } }),
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
  it.each(['999.99999999999999', '1000.0000000000000001', '99999999999999999e-14'])(
    'refuses a signed success whose amount_cents is written %s, not a whole number, paying nothing',
    async (amount) => {
      const payment = await pendingPayment();
      const before = await everythingWritten();
      const answer = await deliverDummyText(
        `{"event_id":"evt-literal-${payment.id}","event_type":"payment.succeeded","external_payment_id":"${payment.externalPaymentId}","amount_cents":${amount},"currency":"THB"}`,
      );
      expect(answer.status, answer.text).toBe(400);
      expect(answer.body.error).toBe(
        "Webhook rejected: body's amount_cents must be a whole number of minor units, 0 or more.",
      );
      expect(await everythingWritten()).toEqual(before);
    },
  );

  it.each(['1000.0', '1e3', '100000e-2'])('takes amount_cents written %s, a whole number, as 1000', async (amount) => {
    const payment = await pendingPayment();
    const answer = await deliverDummyText(
      `{"event_id":"evt-literal-whole-${payment.id}","event_type":"payment.succeeded","external_payment_id":"${payment.externalPaymentId}","amount_cents":${amount},"currency":"THB"}`,
    );
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toEqual({ received: true, outcome: 'ok' });
    const paid = await payers.latestPaymentOf(payment.receiptId);
    expect(paid).toMatchObject({ status: 'succeeded', receivedMinor: 1000n, receivedCurrency: 'THB' });
  });
});

describe('Stripe (SDK against a local fake of the API)', () => {
  const keys = { secretKey: 'sk_test_fakekeyforamountliteral', webhookSecret: 'whsec_amountliteralsecretfortests' };
  const { stripe, deliver } = useStripeApp(() => db, keys);

  function deliverStripeText(payload: string) {
    return request(stripe.app)
      .post('/payments/webhook/stripe')
      .set('Content-Type', 'application/json')
      .set(
        'Stripe-Signature',
        new Stripe(keys.secretKey).webhooks.generateTestHeaderString({ payload, secret: keys.webhookSecret }),
      )
      .send(payload);
  }

  it('refuses a Checkout Session whose amount_total is written 999.99999999999999, paying nothing', async () => {
    const payment = await pendingPayment(stripe.app);
    const before = await everythingWritten();
    const payload = JSON.stringify(
      buildStripeCheckoutPaid(payment.externalPaymentId, 'pi_literal_paid', 'evt_literal_paid'),
    ).replace('"amount_total":1000', '"amount_total":999.99999999999999');
    expect(payload).toContain('"amount_total":999.99999999999999');
    const answer = await deliverStripeText(payload);
    expect(answer.status, answer.text).toBe(400);
    expect(answer.body.error).toBe(
      "Webhook rejected: body's Checkout Session amount_total must be a whole number of minor units, 0 or more, or null.",
    );
    expect(await everythingWritten()).toEqual(before);
  });

  it('refuses a Charge whose amount_refunded is written 1000.0000000000000001, changing nothing', async () => {
    const payment = await pendingPayment(stripe.app);
    await deliver(buildStripeCheckoutPaid(payment.externalPaymentId, 'pi_literal_refund', 'evt_literal_refund_paid'))
      .expect(200)
      .expect({ received: true, outcome: 'ok' });
    const before = await everythingWritten();
    const payload = JSON.stringify(
      buildStripeChargeRefunded(
        { payment_intent: 'pi_literal_refund', amount: 1000, amount_refunded: 999, currency: 'thb' },
        'evt_literal_refund',
      ),
    ).replace('"amount_refunded":999', '"amount_refunded":1000.0000000000000001');
    expect(payload).toContain('"amount_refunded":1000.0000000000000001');
    const answer = await deliverStripeText(payload);
    expect(answer.status, answer.text).toBe(400);
    expect(answer.body.error).toBe(
      "Webhook rejected: body's Charge amount_refunded must be a whole number of minor units, 0 or more.",
    );
    expect(await everythingWritten()).toEqual(before);
  });
});
