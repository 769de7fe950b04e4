import Stripe from 'stripe';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import {
  buildStripeChargeRefunded,
  buildStripeDisputeCreated,
  buildStripeEvent,
  buildStripeRefundUpdated,
  type FakeStripe,
  startFakeStripe,
} from '../support/fake-stripe.js';
import { csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A release from before refunds were read (2026-12-02 and earlier) answered Stripe's charge.refunded
 * 200 `ignored` and stored the event under its id. Stripe does not send a 2xx again, and once the
 * upgraded app was there, resending it from Stripe's dashboard was answered `duplicate`: the money
 * went back to the payer while the receipt stayed paid for good (upgrade walk from 2026-12-02, a
 * refund delivered to the older instance still serving while the new schema was applied).
 */
const SECRET_KEY = 'sk_test_fakekeyforolderreleaseevents';
const WEBHOOK_SECRET = 'whsec_testsecretforolderreleaseevents';
const signer = new Stripe(SECRET_KEY);

let db: TestDatabase;
let fake: FakeStripe;
afterAll(async () => {
  await fake?.close();
  await db?.drop();
});
beforeAll(async () => {
  db = await createTestDatabase();
  fake = await startFakeStripe(SECRET_KEY);
  await buildTiers(db, [{ name: 'std', isDefault: true, cpu: '4', gpu: '0', mem: '0' }], 'THB');
});

let counter = 0;
/**
 * A researcher's 10.00 THB receipt paid through Stripe Checkout with the PaymentIntent returned, or
 * (`isIntentRecorded` false) paid as a release from 2026-12-02 or earlier recorded it: without it.
 */
async function paidReceipt({ isIntentRecorded = true } = {}) {
  counter += 1;
  const app = buildTestApp(db, {
    env: {
      CURRENCY: 'THB',
      PAYMENT_PROVIDER: 'stripe',
      STRIPE_SECRET_KEY: SECRET_KEY,
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      STRIPE_API_URL: fake.url,
      PUBLIC_BASE_URL: 'http://billing.test',
    },
  });
  const user = await buildUser(db.prisma, { username: `older${counter}` });
  await buildJobs(db, [{ user: user.username, end: '2026-01-10T10:00:00Z', totalCpuSec: '9000', stepMemGbHours: '0' }]);
  const agent = await signInAs(app, user.username, user.password);
  const created = await agent
    .post('/me/receipt')
    .type('form')
    .send({ before: '2026-01-31', csrf_token: await csrfTokenOf(agent) });
  expect(created.status, created.text.slice(0, 300)).toBe(303);
  const receiptId = Number(/^\/me\/receipts\/(\d+)#receipt$/.exec(created.headers.location ?? '')?.[1]);
  await agent
    .post(`/payments/receipt/${receiptId}/start`)
    .type('form')
    .send({ csrf_token: await csrfTokenOf(agent) })
    .expect(303);
  const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId } });
  const deliver = (payload: string) =>
    request(app)
      .post('/payments/webhook/stripe')
      .set('Content-Type', 'application/json')
      .set('Stripe-Signature', signer.webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET }))
      .send(payload);
  const intent = `pi_test_older_${counter}`;
  const paid = await deliver(
    JSON.stringify(
      buildStripeEvent(
        'checkout.session.completed',
        {
          id: payment.externalPaymentId,
          amount_total: 1000,
          currency: 'thb',
          payment_status: 'paid',
          status: 'complete',
          payment_intent: isIntentRecorded ? intent : null,
        },
        `evt_older_paid_${counter}`,
      ),
    ),
  );
  expect(paid.body).toEqual({ received: true, outcome: 'ok' });
  return { receiptId, paymentId: payment.id, sessionId: payment.externalPaymentId ?? '', intent, deliver };
}

/** The row a release that did not read the event's type left: its Stripe type, outcome ignored. */
async function storedAsOlderReleaseDid(eventId: string, stripeType: string, body: string) {
  await db.prisma.$executeRaw`
    INSERT INTO payment_events (provider, external_event_id, type, signature_verdict, outcome, raw_payload)
    VALUES ('stripe', ${eventId}, ${stripeType}, 'valid', 'ignored', ${body})`;
}

describe('a Stripe event an older release stored as ignored, sent again after the upgrade', () => {
  it('a refund in full the older release ignored is applied when Stripe sends it again, once', async () => {
    const { receiptId, paymentId, intent, deliver } = await paidReceipt();
    const body = JSON.stringify(
      buildStripeChargeRefunded(
        { payment_intent: intent, amount: 1000, amount_refunded: 1000, currency: 'thb' },
        `evt_older_refund_${counter}`,
      ),
    );
    await storedAsOlderReleaseDid(`evt_older_refund_${counter}`, 'charge.refunded', body);

    const resent = await deliver(body);
    expect(resent.body).toEqual({ received: true, outcome: 'ok' });
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
      status: 'pending',
    });
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: paymentId } })).toMatchObject({
      refundedMinor: 1000n,
    });
    const event = await db.prisma.paymentEvent.findFirstOrThrow({
      where: { externalEventId: `evt_older_refund_${counter}` },
    });
    expect(event).toMatchObject({ type: 'payment.refunded', outcome: 'ok', paymentId });

    expect((await deliver(body)).body).toEqual({ received: true, outcome: 'duplicate' });
  });

  it('an event this release read and ignored stays a duplicate when it is sent again', async () => {
    const { paymentId, intent, deliver } = await paidReceipt();
    // A refund that succeeded: not a failure, so this release reads it and ignores it.
    const body = JSON.stringify(
      buildStripeRefundUpdated(
        { payment_intent: intent, amount: 1000, currency: 'thb', status: 'succeeded' },
        `evt_older_update_${counter}`,
      ),
    );
    expect((await deliver(body)).body).toEqual({ received: true, outcome: 'ignored' });
    expect((await deliver(body)).body).toEqual({ received: true, outcome: 'duplicate' });
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: paymentId } })).toMatchObject({
      status: 'succeeded',
      refundedMinor: null,
    });
  });
});

describe('a payment an older release recorded without its PaymentIntent', () => {
  it('once Stripe has named its checkout, a later dispute of that money is applied while Stripe cannot be asked', async () => {
    const { paymentId, sessionId, intent, deliver } = await paidReceipt({ isIntentRecorded: false });
    fake.completeSession(sessionId, intent);
    const refunded = await deliver(
      JSON.stringify(
        buildStripeChargeRefunded(
          { payment_intent: intent, amount: 1000, amount_refunded: 300, currency: 'thb' },
          `evt_older_part_${counter}`,
        ),
      ),
    );
    expect(refunded.status, refunded.text).toBe(200);
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: paymentId } })).toMatchObject({
      refundedMinor: 300n,
    });

    // Stripe's API down: the money is known here now, so nothing needs asking.
    fake.failNext(500, 'An unknown error occurred');
    const disputed = await deliver(
      JSON.stringify(
        buildStripeDisputeCreated(
          { id: `dp_older_${counter}`, payment_intent: intent, amount: 700, currency: 'thb' },
          `evt_older_dispute_${counter}`,
        ),
      ),
    );
    expect(disputed.status, disputed.text).toBe(200);
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: paymentId } })).toMatchObject({
      disputedMinor: 700n,
    });
  });
});
