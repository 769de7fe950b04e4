import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStripeProvider } from '../../src/modules/payments/stripe.provider.js';
import { buildTiers } from '../support/billing-factories.js';
import { type FakeStripe, startFakeStripe } from '../support/fake-stripe.js';
import { researcherWithReceiptOf } from '../support/receipt-steps.js';
import { csrfTokenOf } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

const SECRET_KEY = 'sk_test_fakekeyforminimums';

let db: TestDatabase;
let fake: FakeStripe;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  db = await createTestDatabase();
  // mu: 0.50 THB a CPU core-hour. Stripe takes at least 10.00 THB in one payment.
  await buildTiers(db);
  fake = await startFakeStripe(SECRET_KEY);
  app = buildTestApp(db, {
    env: {
      PAYMENT_PROVIDER: 'stripe',
      STRIPE_SECRET_KEY: SECRET_KEY,
      STRIPE_WEBHOOK_SECRET: 'whsec_testsecretforminimums',
      STRIPE_API_URL: fake.url,
      PUBLIC_BASE_URL: 'http://billing.test',
    },
  });
});
afterAll(async () => {
  await fake?.close();
  await db?.drop();
});

let counter = 0;
/** A researcher with one pending receipt of `cpuHours` × 0.50 THB. */
async function researcherWithReceipt(cpuHours: number) {
  counter += 1;
  const { agent, receiptId } = await researcherWithReceiptOf(app, db, `minpayer${counter}`, cpuHours);
  return { agent, receiptId };
}

/** Everything a refused Pay must leave as it was. */
async function paymentState(receiptId: number) {
  return {
    receipt: await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } }),
    payments: await db.prisma.payment.count({ where: { receiptId } }),
    audit: await db.prisma.auditLog.count({
      where: { target: `receipt:${receiptId}`, action: { startsWith: 'payment.' } },
    }),
    stripeRequests: fake.requests.length,
  };
}

describe('a receipt below the provider minimum charge', () => {
  it('is refused at Pay before Stripe is asked, with a clear message, writing no payment', async () => {
    const { agent, receiptId } = await researcherWithReceipt(1);
    const before = await paymentState(receiptId);
    expect(before.receipt.total.toFixed(2)).toBe('0.50');
    const message = `Receipt #${receiptId} totals 0.50 THB, less than the smallest amount that can be paid online (10.00 THB); ask the billing team how to pay it.`;

    const page = await agent
      .post(`/payments/receipt/${receiptId}/start`)
      .set('Accept', 'text/html')
      .type('form')
      .send({ csrf_token: await csrfTokenOf(agent) });
    expect(page.status).toBe(409);
    expect(page.text).toContain(`Payment not started. ${message}`);

    const json = await agent
      .post(`/payments/receipt/${receiptId}/start`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({});
    expect(json.status).toBe(409);
    expect(json.body).toEqual({ error: message, code: 409 });

    const after = await paymentState(receiptId);
    expect(after).toEqual(before);
    expect(after.receipt.status).toBe('pending');
    expect(after.payments).toBe(0);
  });

  it('just below it (9.50 THB) is refused too; at the minimum (10.00 THB) Stripe opens the checkout', async () => {
    const below = await researcherWithReceipt(19);
    const refused = await below.agent
      .post(`/payments/receipt/${below.receiptId}/start`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(below.agent))
      .send({});
    expect(refused.status).toBe(409);
    expect(refused.body.error).toContain('totals 9.50 THB, less than the smallest amount that can be paid online');
    expect(await db.prisma.payment.count({ where: { receiptId: below.receiptId } })).toBe(0);

    const at = await researcherWithReceipt(20);
    const started = await at.agent
      .post(`/payments/receipt/${at.receiptId}/start`)
      .type('form')
      .send({ csrf_token: await csrfTokenOf(at.agent) });
    expect(started.status).toBe(303);
    expect(started.headers.location).toMatch(/^https:\/\/checkout\.stripe\.com\/c\/pay\/cs_test_fake\d+$/);
    expect(fake.requests.at(-1)?.form.get('line_items[0][price_data][unit_amount]')).toBe('1000');
    expect(await db.prisma.payment.findFirstOrThrow({ where: { receiptId: at.receiptId } })).toMatchObject({
      status: 'pending',
      amountMinor: 1000n,
    });
  });

  it('shows no Pay button on the receipt below it, and says how to pay instead; at the minimum it does', async () => {
    const below = await researcherWithReceipt(19);
    const page = await below.agent.get(`/me/receipts/${below.receiptId}`);
    expect(page.status).toBe(200);
    expect(page.text).not.toContain(`action="/payments/receipt/${below.receiptId}/start"`);
    expect(page.text).toContain(
      `This receipt totals 9.50 THB, less than the smallest amount that can be paid online (10.00 THB). Pay it as your billing office asks (by bank transfer, for example), quoting receipt #${below.receiptId};`,
    );

    const at = await researcherWithReceipt(20);
    const payable = await at.agent.get(`/me/receipts/${at.receiptId}`);
    expect(payable.text).toContain(`action="/payments/receipt/${at.receiptId}/start"`);
    expect(payable.text).toContain('Pay 10.00 THB online');
    expect(payable.text).not.toContain('less than the smallest amount that can be paid online');
  });

  it('offers no Continue on the pay page of a receipt below it (a bookmark or an old link), and says how to pay', async () => {
    const below = await researcherWithReceipt(19);
    const page = await below.agent.get(`/payments/receipt/${below.receiptId}/start`).set('Accept', 'text/html');
    expect(page.status).toBe(200);
    expect(page.text).not.toContain('Continue to payment');
    expect(page.text).toContain(
      `This receipt totals 9.50 THB, less than the smallest amount that can be paid online (10.00 THB). Pay it as your billing office asks (by bank transfer, for example), quoting receipt #${below.receiptId}.`,
    );
    const at = await researcherWithReceipt(20);
    const payable = await at.agent.get(`/payments/receipt/${at.receiptId}/start`).set('Accept', 'text/html');
    expect(payable.text).toContain('Continue to payment');
  });

  it.each([
    ['USD', '0.50'],
    ['usd', '0.50'],
    ['THB', '10.00'],
    ['JPY', '50'],
    ['GBP', '0.30'],
    ['XYZ', undefined],
  ])("Stripe's minimum in %s is %s", (currency, minimum) => {
    const stripe = createStripeProvider({ secretKey: SECRET_KEY, webhookSecret: 'x', toleranceSec: 300 });
    expect(stripe.minimumCharge?.(currency)).toBe(minimum);
  });
});
