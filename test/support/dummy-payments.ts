import type express from 'express';
import request from 'supertest';
import { expect } from 'vitest';
import { signDummyWebhook } from '../../src/modules/payments/dummy.provider.js';
import { setUpBillingApp } from './billing-app.js';
import { buildTiers } from './billing-factories.js';
import { researcherWithReceiptOf, startCheckout } from './receipt-steps.js';
import { type Agent, csrfTokenOf } from './sign-in.js';
import { buildTestApp, type TestAppOptions } from './test-app.js';
import { createTestDatabase, type TestDatabase } from './test-database.js';

export const DUMMY_WEBHOOK_SECRET = 'test-dummy-webhook-secret';

/** The environment of an app that takes payments through the dummy provider. */
export const DUMMY_PAYMENTS_ENV = {
  PAYMENT_PROVIDER: 'dummy',
  PAYMENT_WEBHOOK_SECRET: DUMMY_WEBHOOK_SECRET,
  PUBLIC_BASE_URL: 'http://billing.test',
};

/** What buildTestApp takes for a dummy-payments app besides its environment (a clock, metrics). */
type DummyAppOptions = Omit<TestAppOptions, 'env'>;

/**
 * A new database with buildTiers' rates and the app on the dummy provider (with `env` besides, e.g. an
 * APP_TZ): the set-up of a payments test file, for its beforeAll (the file drops `db` in its afterAll).
 */
export async function setUpDummyPayments(options: DummyAppOptions & { env?: Record<string, string> } = {}) {
  const db = await createTestDatabase();
  await buildTiers(db);
  const app = buildTestApp(db, { ...options, env: { ...DUMMY_PAYMENTS_ENV, ...options.env } });
  return { db, app };
}

/** setUpDummyPayments with admin `adminName` (password `<adminName>-password`) signed in. */
export function setUpDummyPaymentsApp(adminName: string, options: DummyAppOptions = {}) {
  return setUpBillingApp(adminName, { ...options, env: DUMMY_PAYMENTS_ENV });
}

/** POSTs `event` to the dummy provider's webhook, signed as the provider signs it. */
export function deliverDummy(app: express.Express, event: Record<string, unknown>, secret = DUMMY_WEBHOOK_SECRET) {
  const body = JSON.stringify(event);
  return request(app)
    .post('/payments/webhook/dummy')
    .set('Content-Type', 'application/json')
    .set('X-Dummy-Signature', signDummyWebhook(body, secret))
    .send(body);
}

/**
 * Researchers who owe and pay, for the webhook tests of one app: each gets a pending receipt of
 * 10.00 THB (20 CPU hours at buildTiers' 0.50 THB) named `<prefix>N`. `context` is read when a
 * helper runs, so it may return what a beforeAll sets up.
 */
export function createPayingResearchers(context: () => { db: TestDatabase; app: express.Express }, prefix: string) {
  let userCounter = 0;

  /** A signed-in researcher with a pending receipt of 10.00 THB, on `on` (the context's app by default). */
  function researcherWithReceipt(on?: express.Express) {
    const { db, app } = context();
    userCounter += 1;
    return researcherWithReceiptOf(on ?? app, db, `${prefix}${userCounter}`, 20);
  }

  function latestPaymentOf(receiptId: number) {
    return context().db.prisma.payment.findFirstOrThrow({ where: { receiptId }, orderBy: { id: 'desc' } });
  }

  /** A payment started at the dummy provider's checkout and not yet answered, on `on` (the context's app by default). */
  async function pendingPayment(on?: express.Express) {
    const { agent, receiptId } = await researcherWithReceipt(on);
    await startCheckout(agent, receiptId);
    return latestPaymentOf(receiptId);
  }

  /** A receipt of 10.00 THB paid at the dummy provider's checkout (its signed success webhook). */
  async function paidOnline() {
    const researcher = await researcherWithReceipt();
    const checkout = await startCheckout(researcher.agent, researcher.receiptId);
    await researcher.agent
      .post(checkout)
      .type('form')
      .send({ choice: 'pay', csrf_token: await csrfTokenOf(researcher.agent) })
      .expect(303);
    const payment = await latestPaymentOf(researcher.receiptId);
    expect(payment.status).toBe('succeeded');
    return { ...researcher, payment };
  }

  /**
   * A receipt of 10.00 THB paid short (`amountCents`) at the dummy provider, and the held payment
   * accepted by `admin` as it is: the receipt is paid with less than its total.
   */
  async function paidShortAndAccepted(admin: Agent, amountCents: number) {
    const researcher = await researcherWithReceipt();
    await startCheckout(researcher.agent, researcher.receiptId);
    const payment = await latestPaymentOf(researcher.receiptId);
    await deliverDummy(context().app, {
      event_id: `short_${payment.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: amountCents,
      currency: 'THB',
    }).expect(200);
    await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'accepted', note: 'the payer is charged the rest next month', accept_mismatch: 'yes' })
      .expect(200);
    return { ...researcher, payment };
  }

  /**
   * A pending receipt of 10.00 THB whose canceled checkout's payment succeeded late, all 10.00 THB
   * received: the payment is held for an admin's review and the receipt stays pending.
   */
  async function heldLateSuccess() {
    const { agent, receiptId } = await researcherWithReceipt();
    const path = await startCheckout(agent, receiptId);
    const payment = await latestPaymentOf(receiptId);
    await agent
      .post(path)
      .type('form')
      .send({ choice: 'cancel', csrf_token: await csrfTokenOf(agent) })
      .expect(303);
    await deliverDummy(context().app, {
      event_id: `late_${payment.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 1000,
      currency: 'THB',
    }).expect(200);
    return { receiptId, payment };
  }

  return {
    researcherWithReceipt,
    startCheckout,
    latestPaymentOf,
    pendingPayment,
    paidOnline,
    paidShortAndAccepted,
    heldLateSuccess,
  };
}

/** The dummy provider's refund event: `amountCents` refunded in all so far, as providers report it. */
export function dummyRefundEvent(
  externalPaymentId: string | null,
  eventId: string,
  amountCents: number,
  currency = 'THB',
) {
  return {
    event_id: eventId,
    event_type: 'payment.refunded',
    external_payment_id: externalPaymentId,
    amount_cents: amountCents,
    currency,
  };
}
