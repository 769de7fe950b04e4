import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, type Metrics } from '../../src/modules/metrics/metrics.js';
import { buildTiers } from '../support/billing-factories.js';
import { createPayingResearchers, DUMMY_PAYMENTS_ENV, deliverDummy } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { buildStripeChargeRefunded, buildStripeEvent } from '../support/fake-stripe.js';
import { signInAs } from '../support/sign-in.js';
import { useStripeApp } from '../support/stripe-webhooks.js';
import { buildTestApp, metricValue } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A refund or dispute the app refuses (more than the payment received, another currency) answered
// 409 and was kept only in the log and a metric: the provider retried it for days, and finance, who
// read /admin/payments, never saw it.
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
  'refusedclaim',
);

/** The money rows a refused claim must leave as they were. */
async function moneyOf(receiptId: number) {
  return {
    receipt: await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } }),
    payments: await db.prisma.payment.findMany({ where: { receiptId }, orderBy: { id: 'asc' } }),
    items: await db.prisma.receiptItem.findMany({ where: { receiptId }, orderBy: { id: 'asc' } }),
  };
}

let adminCounter = 0;
async function signInAdmin() {
  adminCounter += 1;
  const username = `claimreviewer${adminCounter}`;
  await buildUser(db.prisma, { username, role: 'admin', password: `${username}-password` });
  return signInAs(app, username, `${username}-password`);
}

const refusalsOf = (eventId: string) =>
  db.prisma.paymentRefusedClaim.findMany({ where: { externalEventId: eventId }, orderBy: { id: 'asc' } });
const refusalAuditsOf = (receiptId: number) =>
  db.prisma.auditLog.findMany({
    where: { action: 'payment.claim_refused', target: `receipt:${receiptId}` },
    orderBy: { id: 'asc' },
  });

describe('a refused refund', () => {
  it('still answers 409 and changes no money, but is listed on /admin/payments once, however often it is retried, and audited once', async () => {
    const { receiptId, payment } = await paidOnline();
    const before = await moneyOf(receiptId);
    const event = {
      event_id: `refused_refund_${payment.id}`,
      event_type: 'payment.refunded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 1001,
      currency: 'THB',
    };
    const message = `Webhook rejected: the refund of payment #${payment.id} (10.01 THB in all) is more than the 10.00 THB it received; nothing was changed.`;
    const errorsBefore = await metricValue(metrics, 'payments_webhook_events_total', {
      provider: 'dummy',
      event: 'payment.refunded',
      outcome: 'error',
    });

    // The provider retries a refused delivery: three tries, two of them at once.
    const first = await deliverDummy(app, event);
    const retries = await Promise.all([deliverDummy(app, event), deliverDummy(app, event)]);
    for (const answer of [first, ...retries]) {
      expect(answer.status).toBe(409);
      expect(answer.body).toEqual({ error: message, code: 409 });
    }
    expect(
      await metricValue(metrics, 'payments_webhook_events_total', {
        provider: 'dummy',
        event: 'payment.refunded',
        outcome: 'error',
      }),
    ).toBe(errorsBefore + 3);

    // Money, receipt and jobs as they were; the event itself is not stored as a delivery.
    expect(await moneyOf(receiptId)).toEqual(before);
    expect(await db.prisma.paymentEvent.count({ where: { externalEventId: event.event_id } })).toBe(0);

    // One entry per provider event id, however often it came.
    const refusals = await refusalsOf(event.event_id);
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({
      provider: 'dummy',
      eventType: 'payment.refunded',
      paymentId: payment.id,
      claimedMinor: 1001n,
      claimedCurrency: 'THB',
      reason: `the refund of payment #${payment.id} (10.01 THB in all) is more than the 10.00 THB it received`,
      deliveries: 3,
    });
    expect(JSON.parse(refusals[0]?.rawPayload ?? '{}')).toMatchObject({ event_id: event.event_id });
    const audits = await refusalAuditsOf(receiptId);
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ actor: 'provider:dummy', status: 'failed' });
    expect(audits[0]?.details).toMatchObject({
      paymentId: payment.id,
      eventId: event.event_id,
      eventType: 'payment.refunded',
      claimedMinor: '1001',
      claimedCurrency: 'THB',
      reason: `the refund of payment #${payment.id} (10.01 THB in all) is more than the 10.00 THB it received`,
    });

    // Finance sees it where they look for money that needs a decision.
    const admin = await signInAdmin();
    const page = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('<h2 id="refused-claims">Refused refunds and disputes</h2>');
    expect(page.text).toContain(`id="refused-claim-${refusals[0]?.id}"`);
    expect(page.text).toContain(
      `Refund of 10.01 THB claimed for payment #${payment.id} (<a href="/admin/receipts/${receiptId}">receipt #${receiptId}</a>), refused: the refund of payment #${payment.id} (10.01 THB in all) is more than the 10.00 THB it received`,
    );
    expect(page.text).toContain('3 deliveries');
    // The first refused here: the banner counts it.
    expect(page.text).toContain('1 refund or dispute was refused: the provider claimed money back that does not fit');
  });

  it('in another currency is listed with what was claimed, and another event id is an entry of its own', async () => {
    const { receiptId, payment } = await paidOnline();
    const before = await moneyOf(receiptId);
    for (const eventId of [`usd_refund_${payment.id}_a`, `usd_refund_${payment.id}_b`]) {
      const answer = await deliverDummy(app, {
        event_id: eventId,
        event_type: 'payment.refunded',
        external_payment_id: payment.externalPaymentId,
        amount_cents: 500,
        currency: 'USD',
      });
      expect(answer.status).toBe(409);
    }
    expect(await moneyOf(receiptId)).toEqual(before);
    for (const eventId of [`usd_refund_${payment.id}_a`, `usd_refund_${payment.id}_b`]) {
      expect(await refusalsOf(eventId)).toMatchObject([
        {
          claimedMinor: 500n,
          claimedCurrency: 'USD',
          deliveries: 1,
          reason: `the refund of payment #${payment.id} is in USD (5.00 USD), but the payment received 10.00 THB`,
        },
      ]);
    }
    expect(await refusalAuditsOf(receiptId)).toHaveLength(2);
  });
});

describe('a refused dispute and a refused dispute outcome', () => {
  it('are listed and audited as a refused refund is, and change no money', async () => {
    const { receiptId, payment } = await paidOnline();
    const before = await moneyOf(receiptId);
    const disputed = await deliverDummy(app, {
      event_id: `refused_dispute_${payment.id}`,
      event_type: 'payment.disputed',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 1500,
      currency: 'THB',
      dispute_id: `dp_refused_${payment.id}`,
    });
    expect(disputed.status).toBe(409);
    expect(await moneyOf(receiptId)).toEqual(before);
    expect(await refusalsOf(`refused_dispute_${payment.id}`)).toMatchObject([
      {
        eventType: 'payment.disputed',
        paymentId: payment.id,
        claimedMinor: 1500n,
        claimedCurrency: 'THB',
        reason: `the dispute of payment #${payment.id} (15.00 THB) is more than the 10.00 THB it received`,
      },
    ]);

    // A dispute recorded, then closed for another amount than it was opened for.
    await deliverDummy(app, {
      event_id: `opened_dispute_${payment.id}`,
      event_type: 'payment.disputed',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 1000,
      currency: 'THB',
      dispute_id: `dp_open_${payment.id}`,
    }).expect(200);
    const held = await moneyOf(receiptId);
    const closed = await deliverDummy(app, {
      event_id: `refused_closed_${payment.id}`,
      event_type: 'payment.dispute_closed',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 900,
      currency: 'THB',
      dispute_id: `dp_open_${payment.id}`,
      dispute_status: 'lost',
    });
    expect(closed.status).toBe(409);
    expect(await moneyOf(receiptId)).toEqual(held);
    expect(await refusalsOf(`refused_closed_${payment.id}`)).toMatchObject([
      { eventType: 'payment.dispute_closed', claimedMinor: 900n, claimedCurrency: 'THB' },
    ]);
    expect(
      (await refusalAuditsOf(receiptId)).map((audit) => (audit.details as { eventType: string }).eventType),
    ).toEqual(['payment.disputed', 'payment.dispute_closed']);

    const admin = await signInAdmin();
    const page = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain(
      `Dispute of 15.00 THB claimed for payment #${payment.id} (<a href="/admin/receipts/${receiptId}">receipt #${receiptId}</a>), refused: the dispute of payment #${payment.id} (15.00 THB) is more than the 10.00 THB it received`,
    );
    expect(page.text).toContain(`Dispute outcome of 9.00 THB claimed for payment #${payment.id}`);
  });
});

describe('a delivery refused for another reason', () => {
  it('(a body that is no event, a bad signature) is not listed: it names no payment', async () => {
    const before = await db.prisma.paymentRefusedClaim.count();
    await deliverDummy(app, { event_id: 'no_amount', event_type: 'payment.refunded' }).expect(400);
    await deliverDummy(
      app,
      {
        event_id: 'bad_sig',
        event_type: 'payment.refunded',
        external_payment_id: 'x',
        amount_cents: 1,
        currency: 'THB',
      },
      'another-secret',
    ).expect(400);
    expect(await db.prisma.paymentRefusedClaim.count()).toBe(before);
  });
});

describe("Stripe's charge.refunded refused (SDK against a local fake of the API)", () => {
  const { stripe, deliver: deliverStripe } = useStripeApp(() => db, {
    secretKey: 'sk_test_fakekeyforrefusedclaims',
    webhookSecret: 'whsec_refusedclaimsecretfortests',
  });

  it('is listed once with the Stripe event id', async () => {
    const { agent, receiptId } = await researcherWithReceipt(stripe.app);
    await startCheckout(agent, receiptId);
    const payment = await latestPaymentOf(receiptId);
    await deliverStripe(
      buildStripeEvent(
        'checkout.session.completed',
        {
          id: payment.externalPaymentId,
          amount_total: 1000,
          currency: 'thb',
          payment_status: 'paid',
          status: 'complete',
          payment_intent: 'pi_test_refused_1',
        },
        'evt_refused_paid',
      ),
    ).expect(200);
    const before = await moneyOf(receiptId);
    const event = buildStripeChargeRefunded(
      { payment_intent: 'pi_test_refused_1', amount: 1000, amount_refunded: 1200, currency: 'thb' },
      'evt_refused_too_much',
    );
    await deliverStripe(event).expect(409);
    await deliverStripe(event).expect(409);
    expect(await moneyOf(receiptId)).toEqual(before);
    expect(await refusalsOf('evt_refused_too_much')).toMatchObject([
      { provider: 'stripe', paymentId: payment.id, claimedMinor: 1200n, claimedCurrency: 'THB', deliveries: 2 },
    ]);
    expect(await refusalAuditsOf(receiptId)).toHaveLength(1);
  });
});
