import Stripe from 'stripe';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import {
  buildStripeChargeRefunded,
  buildStripeEvent,
  type FakeStripe,
  startFakeStripe,
} from '../support/fake-stripe.js';
import { csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The app bills in the currency's minor unit as Intl knows it (HUF and IDR in whole forints and
 * rupiahs, JPY in yen, KWD in fils), but Stripe reads every amount in its own unit: two decimals for
 * every currency but its zero-decimal list (JPY, KRW, ...) and its three-decimal one (KWD, ...). A
 * receipt of 10,000 HUF was sent to Stripe as 10000, which Stripe reads as 100.00 HUF: the researcher
 * paid a hundredth of the bill, Stripe reported the 10000 it was asked for, and the receipt was paid.
 */
const SECRET_KEY = 'sk_test_fakekeyforcurrencyunits';
const WEBHOOK_SECRET = 'whsec_testsecretforcurrencyunits';
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
});

let counter = 0;
/** An app billing in `currency` at 500 a CPU core-hour, and a researcher with a receipt of `cpuHours` of it. */
async function receiptIn(currency: string, cpuHours: string) {
  counter += 1;
  await db.prisma.$executeRawUnsafe('TRUNCATE pricing_rates, tier_overrides, pricing_tiers CASCADE');
  await buildTiers(db, [{ name: 'mu', isDefault: true, cpu: '500', gpu: '0', mem: '0' }], currency);
  const app = buildTestApp(db, {
    env: {
      CURRENCY: currency,
      PAYMENT_PROVIDER: 'stripe',
      STRIPE_SECRET_KEY: SECRET_KEY,
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      STRIPE_API_URL: fake.url,
      PUBLIC_BASE_URL: 'http://billing.test',
    },
  });
  const user = await buildUser(db.prisma, { username: `payer${counter}` });
  await buildJobs(db, [
    {
      user: user.username,
      end: '2026-01-10T10:00:00Z',
      totalCpuSec: String(Number(cpuHours) * 3600),
      stepMemGbHours: '0',
    },
  ]);
  const agent = await signInAs(app, user.username, user.password);
  const created = await agent
    .post('/me/receipt')
    .type('form')
    .send({ before: '2026-01-31', csrf_token: await csrfTokenOf(agent) });
  expect(created.status, created.text.slice(0, 300)).toBe(303);
  const receiptId = Number(/^\/me\/receipts\/(\d+)#receipt$/.exec(created.headers.location ?? '')?.[1]);
  const started = await agent
    .post(`/payments/receipt/${receiptId}/start`)
    .type('form')
    .send({ csrf_token: await csrfTokenOf(agent) });
  expect(started.status, started.text.slice(0, 300)).toBe(303);
  const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId } });
  const deliver = (event: unknown) => {
    const payload = JSON.stringify(event);
    return request(app)
      .post('/payments/webhook/stripe')
      .set('Content-Type', 'application/json')
      .set('Stripe-Signature', signer.webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET }))
      .send(payload);
  };
  return {
    receiptId,
    payment,
    deliver,
    unitAmount: fake.requests.at(-1)?.form.get('line_items[0][price_data][unit_amount]'),
  };
}

describe('Stripe amounts in currencies whose unit Stripe counts differently', () => {
  it.each([
    // Intl bills HUF and IDR in whole units; Stripe counts them in hundredths.
    ['HUF', '20', '10000', '1000000'],
    ['IDR', '3', '1500', '150000'],
    // The same unit on both sides: unchanged.
    ['JPY', '20', '10000', '10000'],
    ['THB', '2.5', '1250.00', '125000'],
    ['KWD', '0.002', '1.000', '1000'],
  ])(
    "a %s receipt asks Stripe for its total in Stripe's unit and is paid by it",
    async (currency, cpuHours, total, stripeAmount) => {
      const { receiptId, payment, deliver, unitAmount } = await receiptIn(currency, cpuHours);
      const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
      expect(receipt.total.toFixed(total.split('.')[1]?.length ?? 0)).toBe(total);
      expect(unitAmount).toBe(stripeAmount);

      const completed = await deliver(
        buildStripeEvent(
          'checkout.session.completed',
          {
            id: payment.externalPaymentId,
            amount_total: Number(stripeAmount),
            currency: currency.toLowerCase(),
            payment_status: 'paid',
            status: 'complete',
            payment_intent: `pi_test_units_${counter}`,
          },
          `evt_units_paid_${counter}`,
        ),
      );
      expect(completed.body).toEqual({ received: true, outcome: 'ok' });
      expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({ status: 'paid' });
      expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
        status: 'succeeded',
        receivedMinor: payment.amountMinor,
      });
    },
  );

  it('a HUF payment of a hundredth of the bill, as Stripe counts it, is held for review, not taken as payment in full', async () => {
    const { receiptId, payment, deliver } = await receiptIn('HUF', '20');
    const completed = await deliver(
      buildStripeEvent(
        'checkout.session.completed',
        {
          id: payment.externalPaymentId,
          amount_total: 10000,
          currency: 'huf',
          payment_status: 'paid',
          status: 'complete',
          payment_intent: `pi_test_units_${counter}`,
        },
        `evt_units_short_${counter}`,
      ),
    );
    expect(completed.status).toBe(200);
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
      status: 'pending',
    });
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'needs_review',
      receivedMinor: 100n,
    });
  });

  it('a HUF refund in full, as Stripe counts it, refunds the payment in full', async () => {
    const { receiptId, payment, deliver } = await receiptIn('HUF', '20');
    const intent = `pi_test_units_${counter}`;
    await deliver(
      buildStripeEvent(
        'checkout.session.completed',
        {
          id: payment.externalPaymentId,
          amount_total: 1000000,
          currency: 'huf',
          payment_status: 'paid',
          status: 'complete',
          payment_intent: intent,
        },
        `evt_units_refund_paid_${counter}`,
      ),
    ).expect(200);
    const refunded = await deliver(
      buildStripeChargeRefunded(
        { payment_intent: intent, amount: 1000000, amount_refunded: 1000000, currency: 'huf' },
        `evt_units_refunded_${counter}`,
      ),
    );
    expect(refunded.status, JSON.stringify(refunded.body)).toBe(200);
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
      status: 'pending',
    });
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      refundedMinor: 10000n,
    });
  });
});

/**
 * Stripe takes its three-decimal currencies (BHD, JOD, KWD, OMR, TND) in thousandths, but only with a
 * last digit of 0 (docs.stripe.com/currencies). A KWD receipt priced to the fils, 12.345 KWD, opened
 * no checkout: the researcher pressed Pay and got Stripe's refusal (502) instead.
 */
describe('Stripe and the currencies it takes only in steps of ten minor units', () => {
  const stripeEnv = (currency: string) => ({
    CURRENCY: currency,
    PAYMENT_PROVIDER: 'stripe',
    STRIPE_SECRET_KEY: SECRET_KEY,
    STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    STRIPE_API_URL: fake.url,
    PUBLIC_BASE_URL: 'http://billing.test',
  });

  /** A researcher with one job of `totalCpuSec` CPU seconds at 500 KWD a core-hour, and a receipt made by `app`. */
  async function kwdReceiptMadeBy(env: Record<string, string>) {
    counter += 1;
    await db.prisma.$executeRawUnsafe('TRUNCATE pricing_rates, tier_overrides, pricing_tiers CASCADE');
    await buildTiers(db, [{ name: 'mu', isDefault: true, cpu: '500', gpu: '0', mem: '0' }], 'KWD');
    const user = await buildUser(db.prisma, { username: `kwd${counter}` });
    // 88.884 s = 0.024690 core-hours: 12.345 KWD to the fils.
    await buildJobs(db, [
      { user: user.username, end: '2026-01-10T10:00:00Z', totalCpuSec: '88.884', stepMemGbHours: '0' },
    ]);
    const maker = await signInAs(buildTestApp(db, { env }), user.username, user.password);
    // What the usage pages estimate before the receipt is made, as JSON and CSV.
    const usage = await maker.get('/me?start=2026-01-01&end=2026-01-31').set('Accept', 'application/json').expect(200);
    const csv = await maker.get('/me.csv?start=2026-01-01&end=2026-01-31').expect(200);
    const estimate = { json: usage.body.jobs[0]?.cost, csv: csv.text.split('\n')[1]?.split(',')[14] };
    const created = await maker
      .post('/me/receipt')
      .type('form')
      .send({ before: '2026-01-31', csrf_token: await csrfTokenOf(maker) });
    expect(created.status, created.text.slice(0, 300)).toBe(303);
    const receiptId = Number(/^\/me\/receipts\/(\d+)#receipt$/.exec(created.headers.location ?? '')?.[1]);
    const app = buildTestApp(db, { env: stripeEnv('KWD') });
    return { receiptId, estimate, agent: await signInAs(app, user.username, user.password) };
  }

  it('prices a KWD receipt to 0.010 KWD, so Stripe is asked for its exact total and the Pay button works', async () => {
    const { receiptId, agent, estimate } = await kwdReceiptMadeBy(stripeEnv('KWD'));
    const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId }, include: { items: true } });
    expect(receipt.items.map((item) => item.cost.toFixed(3))).toEqual(['12.350']);
    // The usage pages estimated the job as the receipt then priced it.
    expect(estimate).toEqual({ json: '12.350', csv: '12.350' });
    expect(receipt.total.toFixed(3)).toBe('12.350');
    const page = await agent.get(`/me/receipts/${receiptId}`).expect(200);
    expect(page.text).toContain('Pay 12.350 KWD online');
    // The receipt, and the price list, say what costs are rounded to.
    expect(page.text).toContain('rounded half-up to 0.010 KWD (the step online payment takes KWD in)');
    expect((await agent.get('/rates').expect(200)).text).toContain(
      'rounded once, half up, to 0.010 KWD (the step online payment takes KWD in)',
    );

    const started = await agent
      .post(`/payments/receipt/${receiptId}/start`)
      .type('form')
      .send({ csrf_token: await csrfTokenOf(agent) });
    expect(started.status, started.text.slice(0, 300)).toBe(303);
    expect(fake.requests.at(-1)?.form.get('line_items[0][price_data][unit_amount]')).toBe('12350');
    expect(await db.prisma.payment.findFirstOrThrow({ where: { receiptId } })).toMatchObject({
      amountMinor: 12350n,
      status: 'pending',
    });
  });

  it('refuses, before asking Stripe, to start paying a KWD receipt priced to the fils before Stripe was chosen', async () => {
    const { receiptId, agent, estimate } = await kwdReceiptMadeBy({ CURRENCY: 'KWD', PAYMENT_PROVIDER: 'dummy' });
    const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
    expect(receipt.total.toFixed(3)).toBe('12.345');
    expect(estimate).toEqual({ json: '12.345', csv: '12.345' });
    const page = await agent.get(`/me/receipts/${receiptId}`).expect(200);
    expect(page.text).not.toContain('online</button>');
    expect(page.text).toContain('which cannot be paid online: stripe takes KWD only in steps of 0.010 KWD');
    // Priced to the fils, as it says.
    expect(page.text).toMatch(/rounded half-up to the currency(&#39;|')s minor unit/);
    const asked = fake.requests.length;

    const started = await agent
      .post(`/payments/receipt/${receiptId}/start`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent));
    expect(started.status).toBe(409);
    expect(started.body.error).toBe(
      `Receipt #${receiptId} totals 12.345 KWD, which cannot be paid online: stripe takes KWD only in steps of 0.010 KWD; ask the billing team how to pay it.`,
    );
    expect(fake.requests.length).toBe(asked);
    expect(await db.prisma.payment.count({ where: { receiptId } })).toBe(0);
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
      status: 'pending',
    });
  });
});
