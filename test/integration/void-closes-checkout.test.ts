import { Writable } from 'node:stream';
import { pino } from 'pino';
import Stripe from 'stripe';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, type Metrics } from '../../src/modules/metrics/metrics.js';
import { createCheckoutCloser } from '../../src/modules/payments/checkout-closer.js';
import { PaymentProviderError } from '../../src/modules/payments/payment-provider.js';
import { amountDueOf, buildJobs, buildTiers } from '../support/billing-factories.js';
import { DUMMY_PAYMENTS_ENV } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { buildStripeEvent, type FakeStripe, startFakeStripe } from '../support/fake-stripe.js';
import { type Agent, csrfTokenOf, signInAs, signInNewAdmin } from '../support/sign-in.js';
import { buildTestApp, metricValue } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

const SECRET_KEY = 'sk_test_fakekeyforvoids';
const WEBHOOK_SECRET = 'whsec_testsecretforvoids';

let db: TestDatabase;
let fake: FakeStripe;
let metrics: Metrics;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  fake = await startFakeStripe(SECRET_KEY);
  metrics = createMetrics();
  app = buildTestApp(db, {
    env: {
      PAYMENT_PROVIDER: 'stripe',
      STRIPE_SECRET_KEY: SECRET_KEY,
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      STRIPE_API_URL: fake.url,
      PUBLIC_BASE_URL: 'http://billing.test',
    },
    metrics,
  });
});
afterAll(async () => {
  await fake?.close();
  await db?.drop();
});

let counter = 0;
/** A researcher with one pending receipt of 10.00 THB (20 CPU core-hours), Stripe's minimum in THB. */
async function researcherWithReceipt() {
  counter += 1;
  const user = await buildUser(db.prisma, { username: `voidpayer${counter}` });
  await buildJobs(db, [
    { user: user.username, end: '2026-01-10T10:00:00Z', totalCpuSec: '72000', stepMemGbHours: '0' },
  ]);
  const agent = await signInAs(app, user.username, user.password);
  const created = await agent
    .post('/me/receipt')
    .type('form')
    .send({ before: '2026-01-31', csrf_token: await csrfTokenOf(agent) });
  expect(created.status, created.text.slice(0, 200)).toBe(303);
  const receiptId = Number(/^\/me\/receipts\/(\d+)#receipt$/.exec(created.headers.location ?? '')?.[1]);
  return { agent, receiptId };
}

/** A researcher who opened a Stripe Checkout Session for their receipt and has it open in a tab. */
async function checkoutOpen() {
  const { agent, receiptId } = await researcherWithReceipt();
  const started = await agent
    .post(`/payments/receipt/${receiptId}/start`)
    .type('form')
    .send({ csrf_token: await csrfTokenOf(agent) });
  expect(started.headers.location).toMatch(/^https:\/\/checkout\.stripe\.com\/c\/pay\/cs_test_fake\d+$/);
  const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId } });
  expect(payment.status).toBe('pending');
  // A start that went as usual asks Stripe to close nothing.
  expect(expireRequestsFor(payment.externalPaymentId as string)).toHaveLength(0);
  return { receiptId, payment, sessionId: payment.externalPaymentId as string };
}

let adminCounter = 0;
async function signInAdmin(): Promise<Agent> {
  adminCounter += 1;
  const username = `voidadmin${adminCounter}`;
  return signInNewAdmin(app, db, username);
}

async function voidAsJson(admin: Agent, receiptId: number) {
  return admin
    .post(`/admin/receipts/${receiptId}/void`)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin))
    .send({ reason: 'billed to the wrong project' });
}

const expiries = (outcome: string) =>
  metricValue(metrics, 'payments_checkout_expire_total', { provider: 'stripe', outcome });
const expireRequestsFor = (sessionId: string) =>
  fake.requests.filter((sent) => sent.path === `/v1/checkout/sessions/${sessionId}/expire`);

/** The void and what it wrote stand whatever Stripe answered. */
async function expectVoidedAndCanceled(receiptId: number, paymentId: number) {
  expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('void');
  const payment = await db.prisma.payment.findUniqueOrThrow({ where: { id: paymentId } });
  expect(payment.status).toBe('canceled');
  expect(await db.prisma.auditLog.count({ where: { action: 'receipt.void', target: `receipt:${receiptId}` } })).toBe(1);
  expect(await db.prisma.auditLog.count({ where: { action: 'payment.cancel', target: `receipt:${receiptId}` } })).toBe(
    1,
  );
  return payment;
}

describe('voiding a receipt whose Stripe checkout is open', () => {
  it('expires the Checkout Session at Stripe once the void has committed', async () => {
    const admin = await signInAdmin();
    const { receiptId, payment, sessionId } = await checkoutOpen();
    const expiredBefore = await expiries('expired');

    const voided = await voidAsJson(admin, receiptId);
    expect(voided.status, voided.text).toBe(200);
    expect(voided.body.receipt).toMatchObject({
      status: 'void',
      canceledPaymentIds: [payment.id],
      checkoutsLeftOpen: [],
      checkoutNotice: null,
    });
    const sent = expireRequestsFor(sessionId);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({
      method: 'POST',
      authorization: `Bearer ${SECRET_KEY}`,
      idempotencyKey: `receipt-${receiptId}-stripe-1-expire`,
    });
    expect(await expiries('expired')).toBe(expiredBefore + 1);
    const canceled = await expectVoidedAndCanceled(receiptId, payment.id);
    expect(canceled.reviewReason).toBe(`receipt #${receiptId} was voided while this checkout was open`);

    // A second void is refused before anything is asked of Stripe.
    expect((await voidAsJson(admin, receiptId)).status).toBe(409);
    expect(expireRequestsFor(sessionId)).toHaveLength(1);
  });

  it.each([
    ['answers 500', () => fake.failNext(500, 'Something went wrong on our end.'), /Something went wrong on our end/],
    ['does not answer within the timeout', () => fake.hangNext(), /timeout/i],
  ])(
    'still voids when Stripe %s, counts it and tells the admin the checkout may be open',
    async (_label, fail, cause) => {
      const admin = await signInAdmin();
      const { receiptId, payment, sessionId } = await checkoutOpen();
      const failedBefore = await expiries('failed');
      fail();

      const voided = await voidAsJson(admin, receiptId);
      expect(voided.status, voided.text).toBe(200);
      expect(voided.body.receipt).toMatchObject({ status: 'void', canceledPaymentIds: [payment.id] });
      expect(voided.body.receipt.checkoutsLeftOpen).toEqual([
        expect.objectContaining({ paymentId: payment.id, outcome: 'failed' }),
      ]);
      const notice: string = voided.body.receipt.checkoutNotice;
      expect(notice).toMatch(new RegExp(`^The checkout of payment #${payment.id} could not be expired at Stripe \\(`));
      expect(notice).toMatch(cause);
      expect(notice).toContain('money paid there will be held for review on the payments page.');
      expect(expireRequestsFor(sessionId)).toHaveLength(1);
      expect(await expiries('failed')).toBe(failedBefore + 1);

      const canceled = await expectVoidedAndCanceled(receiptId, payment.id);
      expect(canceled.reviewReason).toMatch(
        new RegExp(
          `^receipt #${receiptId} was voided while this checkout was open; its checkout could not be expired at Stripe \\(`,
        ),
      );
      // The payments page, where the money would show up, says it too.
      const payments = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
      expect(payments.text).toContain('its checkout could not be expired at Stripe');
    },
  );

  it('voids from the billing page form too when Stripe fails, back to the receipt with the confirmation', async () => {
    const admin = await signInAdmin();
    const { receiptId, payment } = await checkoutOpen();
    fake.failNext(503, 'Stripe is temporarily unavailable.');
    const voided = await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .type('form')
      .send({ reason: 'billed to the wrong project', csrf_token: await csrfTokenOf(admin) });
    expect(voided.status, voided.text.slice(0, 300)).toBe(303);
    const page = await admin
      .get(voided.headers.location as string)
      .set('Accept', 'text/html')
      .expect(200);
    expect(page.text).toContain(`Receipt #${receiptId} voided; its job can be billed again.`);
    // The flash says the checkout may still take money, as the JSON answer does.
    expect(page.text).toContain(`The checkout of payment #${payment.id} could not be expired at Stripe (`);
    await expectVoidedAndCanceled(receiptId, payment.id);
  });

  it('says a session paid just before the void will be held for review, and the webhook holds it', async () => {
    const admin = await signInAdmin();
    const { receiptId, payment, sessionId } = await checkoutOpen();
    const completeBefore = await expiries('already_complete');
    fake.completeSession(sessionId);

    const voided = await voidAsJson(admin, receiptId);
    expect(voided.status, voided.text).toBe(200);
    expect(voided.body.receipt.checkoutsLeftOpen).toEqual([
      expect.objectContaining({ paymentId: payment.id, outcome: 'already_complete' }),
    ]);
    expect(voided.body.receipt.checkoutNotice).toBe(
      `Payment #${payment.id} had already been paid at its Stripe checkout just before the void: Stripe's ` +
        'confirmation will hold it for review on the payments page, to refund or apply elsewhere.',
    );
    expect(await expiries('already_complete')).toBe(completeBefore + 1);
    await expectVoidedAndCanceled(receiptId, payment.id);

    // Stripe's checkout.session.completed for that payment arrives: held, never marks the void receipt paid.
    const payload = JSON.stringify(
      buildStripeEvent(
        'checkout.session.completed',
        { id: sessionId, amount_total: 1000, currency: 'thb', payment_status: 'paid', status: 'complete' },
        `evt_void_complete_${receiptId}`,
      ),
    );
    const header = new Stripe(SECRET_KEY).webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET });
    const delivered = await request(app)
      .post('/payments/webhook/stripe')
      .set('Content-Type', 'application/json')
      .set('Stripe-Signature', header)
      .send(payload)
      .expect(200);
    expect(delivered.body.outcome).toBe('review');
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'needs_review',
      reviewReason: `payment succeeded after it was canceled; receipt #${receiptId} was already void`,
    });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('void');
  });

  it('asks nothing of Stripe for a receipt without an online payment', async () => {
    const admin = await signInAdmin();
    const { receiptId } = await researcherWithReceipt();
    const requestsBefore = fake.requests.length;
    const voided = await voidAsJson(admin, receiptId);
    expect(voided.status, voided.text).toBe(200);
    expect(voided.body.receipt).toMatchObject({ canceledPaymentIds: [], checkoutsLeftOpen: [], checkoutNotice: null });
    expect(fake.requests.length).toBe(requestsBefore);
  });
});

describe('marking a receipt paid by hand while its Stripe checkout is open', () => {
  it('cancels the checkout and closes it at Stripe, so the same money cannot be taken twice', async () => {
    const admin = await signInAdmin();
    const { receiptId, payment, sessionId } = await checkoutOpen();
    // The admin is warned above the form, and the button says what it will do.
    const page = await admin.get(`/admin/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(page.text).toContain(
      `An online checkout is open for this receipt: payment #${payment.id} via stripe, started `,
    );
    expect(page.text).toContain('Marking this receipt paid or voiding it cancels it;');
    expect(page.text).toContain('<button type="submit">Mark paid and cancel its checkout</button>');

    const marked = await admin
      .post(`/admin/receipts/${receiptId}/paid`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ method: 'bank_transfer', amount_received: await amountDueOf(db, receiptId), tx_ref: 'KBANK-7' });
    expect(marked.status, marked.text).toBe(200);
    expect(marked.body.receipt).toMatchObject({
      status: 'paid',
      method: 'bank_transfer',
      canceledPaymentIds: [payment.id],
      checkoutsLeftOpen: [],
      checkoutNotice: null,
    });
    expect(expireRequestsFor(sessionId)).toEqual([
      expect.objectContaining({ idempotencyKey: `receipt-${receiptId}-stripe-1-expire` }),
    ]);
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'canceled',
      reviewReason: `receipt #${receiptId} was marked paid by hand while this checkout was open`,
    });
    const markPaid = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'receipt.mark_paid', target: `receipt:${receiptId}` },
    });
    expect(markPaid.details).toMatchObject({ method: 'bank_transfer', canceledPaymentIds: [payment.id] });
    expect(
      await db.prisma.auditLog.count({ where: { action: 'payment.cancel', target: `receipt:${receiptId}` } }),
    ).toBe(1);

    // Paid at the checkout anyway (a tab left open, before Stripe closed it): held for review, not applied.
    const payload = JSON.stringify(
      buildStripeEvent(
        'checkout.session.completed',
        { id: sessionId, amount_total: 1000, currency: 'thb', payment_status: 'paid', status: 'complete' },
        `evt_markpaid_complete_${receiptId}`,
      ),
    );
    const header = new Stripe(SECRET_KEY).webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET });
    const delivered = await request(app)
      .post('/payments/webhook/stripe')
      .set('Content-Type', 'application/json')
      .set('Stripe-Signature', header)
      .send(payload)
      .expect(200);
    expect(delivered.body.outcome).toBe('review');
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'needs_review',
      reviewReason: `payment succeeded after it was canceled; receipt #${receiptId} was already paid`,
    });
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
      status: 'paid',
      paymentMethod: 'bank_transfer',
      txRef: 'KBANK-7',
    });
  });

  it('says so in the flash, and a checkout Stripe could not close in the notice', async () => {
    const admin = await signInAdmin();
    const { receiptId, payment } = await checkoutOpen();
    fake.failNext(503, 'Stripe is temporarily unavailable.');
    const amount = await amountDueOf(db, receiptId);
    const marked = await admin
      .post(`/admin/receipts/${receiptId}/paid`)
      .type('form')
      .send({ method: 'cash', amount_received: amount, csrf_token: await csrfTokenOf(admin) });
    expect(marked.status, marked.text.slice(0, 300)).toBe(303);
    const page = await admin
      .get(marked.headers.location as string)
      .set('Accept', 'text/html')
      .expect(200);
    expect(page.text).toContain(
      `(cash), ${amount} THB received. Its open online checkout (payment #${payment.id}) was canceled; money paid there from now on is held for review on the payments page.`,
    );
    expect(page.text).toContain(`The checkout of payment #${payment.id} could not be expired at Stripe (`);
    expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe('canceled');
  });

  it('a paid or void receipt is still a 409 and cancels nothing', async () => {
    const admin = await signInAdmin();
    const { receiptId, payment } = await checkoutOpen();
    await voidAsJson(admin, receiptId).then((voided) => expect(voided.status).toBe(200));
    const cancels = await db.prisma.auditLog.count({ where: { action: 'payment.cancel' } });
    const again = await admin
      .post(`/admin/receipts/${receiptId}/paid`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ method: 'cash', amount_received: await amountDueOf(db, receiptId) });
    expect(again.status).toBe(409);
    expect(await db.prisma.auditLog.count({ where: { action: 'payment.cancel' } })).toBe(cancels);
    expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe('canceled');
  });
});

describe('a void that lands while the payment is starting (saved, its checkout not yet attached)', () => {
  /**
   * Starts the researcher's payment with the admin's void run while Stripe is creating the session:
   * after the start saved its payment, before it attached the session. `alsoDuring` runs right after
   * the void, still before Stripe answers.
   */
  async function startWithVoidInFlight(accept: 'html' | 'json', alsoDuring: () => void = () => undefined) {
    const admin = await signInAdmin();
    const { agent, receiptId } = await researcherWithReceipt();
    let voided: request.Response | undefined;
    fake.whileNextInFlight(async () => {
      voided = await voidAsJson(admin, receiptId);
      alsoDuring();
    });
    const token = await csrfTokenOf(agent);
    const start = agent.post(`/payments/receipt/${receiptId}/start`);
    const started =
      accept === 'json'
        ? await start.set('Accept', 'application/json').set('X-CSRFToken', token).send({})
        : await start.set('Accept', 'text/html').type('form').send({ csrf_token: token });
    const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId } });
    expect(voided?.status, voided?.text).toBe(200);
    // The void found the payment saved and without a session: nothing it could close itself.
    expect(voided?.body.receipt).toMatchObject({ canceledPaymentIds: [payment.id], checkoutsLeftOpen: [] });
    const sessionId = payment.externalPaymentId as string;
    expect(sessionId).toMatch(/^cs_test_fake\d+$/);
    return { admin, receiptId, started, payment, sessionId };
  }

  /** What the audit log says of the receipt: the start, the admin's cancel and void, nothing after. */
  async function expectAuditOfStartThenVoid(receiptId: number, paymentId: number) {
    const audits = await db.prisma.auditLog.findMany({
      where: { target: `receipt:${receiptId}` },
      orderBy: { id: 'asc' },
    });
    expect(audits.map((audit) => [audit.action, audit.status])).toEqual([
      ['receipt.create', 'ok'],
      ['payment.start', 'ok'],
      ['payment.cancel', 'ok'],
      ['receipt.void', 'ok'],
    ]);
    expect(audits[2]?.details).toMatchObject({ paymentId, externalPaymentId: null });
    expect(audits[3]?.details).toMatchObject({ canceledPaymentIds: [paymentId] });
  }

  it('expires the session the start opened, and tells the researcher the receipt is void instead of sending them there', async () => {
    const expiredBefore = await expiries('expired');
    const { receiptId, started, payment, sessionId } = await startWithVoidInFlight('html');

    expect(started.status, started.text.slice(0, 300)).toBe(409);
    expect(started.headers.location).toBeUndefined();
    expect(started.text).not.toContain(`checkout.stripe.com/c/pay/${sessionId}`);
    expect(started.text).toContain(
      `Payment not started. Receipt #${receiptId} was voided while its payment was starting; there is nothing to pay.`,
    );
    const sent = expireRequestsFor(sessionId);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({
      method: 'POST',
      authorization: `Bearer ${SECRET_KEY}`,
      idempotencyKey: `receipt-${receiptId}-stripe-1-expire`,
    });
    expect(await expiries('expired')).toBe(expiredBefore + 1);
    // The session stays on the canceled payment, so a success there would still find it and be held.
    const canceled = await expectVoidedAndCanceled(receiptId, payment.id);
    expect(canceled).toMatchObject({
      externalPaymentId: sessionId,
      checkoutUrl: `https://checkout.stripe.com/c/pay/${sessionId}`,
      reviewReason: `receipt #${receiptId} was voided while this checkout was open`,
    });
    await expectAuditOfStartThenVoid(receiptId, payment.id);
  });

  it('answers the researcher as clearly when Stripe cannot expire it, and records that it may be open', async () => {
    const failedBefore = await expiries('failed');
    const { admin, receiptId, started, payment, sessionId } = await startWithVoidInFlight('json', () =>
      fake.failNext(503, 'Stripe is temporarily unavailable.'),
    );

    expect(started.status, started.text).toBe(409);
    expect(started.body).toEqual({
      error: `Receipt #${receiptId} was voided while its payment was starting; there is nothing to pay.`,
      code: 409,
    });
    expect(expireRequestsFor(sessionId)).toHaveLength(1);
    expect(expireRequestsFor(sessionId)[0]?.idempotencyKey).toBe(`receipt-${receiptId}-stripe-1-expire`);
    expect(await expiries('failed')).toBe(failedBefore + 1);
    const canceled = await expectVoidedAndCanceled(receiptId, payment.id);
    expect(canceled.externalPaymentId).toBe(sessionId);
    expect(canceled.reviewReason).toBe(
      `receipt #${receiptId} was voided while this checkout was open; its checkout could not be expired at Stripe ` +
        '(Stripe could not expire the checkout: Stripe is temporarily unavailable.)',
    );
    const payments = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(payments.text).toContain('its checkout could not be expired at Stripe');
    await expectAuditOfStartThenVoid(receiptId, payment.id);
  });
});

describe('a void that lands while Stripe fails to open the checkout', () => {
  it("keeps the payment canceled with the void's reason, and tells the researcher the receipt is void", async () => {
    const admin = await signInAdmin();
    const { agent, receiptId } = await researcherWithReceipt();
    const requestsBefore = fake.requests.length;
    let voided: request.Response | undefined;
    fake.failNext(503, 'Stripe is temporarily unavailable.');
    fake.whileNextInFlight(async () => {
      voided = await voidAsJson(admin, receiptId);
    });
    const started = await agent
      .post(`/payments/receipt/${receiptId}/start`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({});

    expect(voided?.status, voided?.text).toBe(200);
    expect(started.status, started.text).toBe(409);
    expect(started.body).toEqual({
      error: `Receipt #${receiptId} was voided while its payment was starting; there is nothing to pay.`,
      code: 409,
    });
    const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId } });
    const canceled = await expectVoidedAndCanceled(receiptId, payment.id);
    // Stripe opened nothing: no session to keep or to expire.
    expect(canceled).toMatchObject({
      externalPaymentId: null,
      checkoutUrl: null,
      reviewReason: `receipt #${receiptId} was voided while this checkout was open`,
    });
    expect(fake.requests.slice(requestsBefore).map((sent) => sent.path)).toEqual(['/v1/checkout/sessions']);
  });
});

describe('closing a canceled checkout', () => {
  it('logs a warning naming the payment when the provider cannot be told', async () => {
    const lines: string[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk, _encoding, done) {
          lines.push(String(chunk));
          done();
        },
      }),
    );
    const closerMetrics = createMetrics();
    const close = createCheckoutCloser({
      db,
      provider: {
        name: 'stripe',
        startCheckout: () => Promise.reject(new Error('unused')),
        parseWebhook: () => Promise.reject(new Error('unused')),
        expireCheckout: () =>
          Promise.reject(new PaymentProviderError('Stripe could not expire the checkout: ECONNRESET')),
      },
      metrics: closerMetrics,
      logger,
    });
    const open = await close(41, [
      { id: 9041, provider: 'stripe', externalPaymentId: 'cs_test_unreachable', idempotencyKey: 'receipt-41-stripe-1' },
      // Not yet attached to a session: nothing to close.
      { id: 9042, provider: 'stripe', externalPaymentId: null, idempotencyKey: 'receipt-41-stripe-2' },
    ]);
    expect(open).toEqual([expect.objectContaining({ paymentId: 9041, outcome: 'failed' })]);
    const warning = lines.map((line) => JSON.parse(line)).find((entry) => entry.level === 40);
    expect(warning).toMatchObject({
      paymentId: 9041,
      receiptId: 41,
      provider: 'stripe',
      outcome: 'failed',
      msg: 'voided receipt: checkout not closed at the payment provider',
    });
    expect(await metricValue(closerMetrics, 'payments_checkout_expire_total', { outcome: 'failed' })).toBe(1);
  });

  it('takes the dummy checkout as closed by the cancel itself, with no notice', async () => {
    const dummyApp = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV });
    const admin = await signInAs(dummyApp, 'voidadmin1', 'voidadmin1-password');
    counter += 1;
    const user = await buildUser(db.prisma, { username: `voidpayer${counter}` });
    await buildJobs(db, [
      { user: user.username, end: '2026-01-10T10:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' },
    ]);
    const agent = await signInAs(dummyApp, user.username, user.password);
    const created = await agent
      .post('/me/receipt')
      .type('form')
      .send({ before: '2026-01-31', csrf_token: await csrfTokenOf(agent) });
    const receiptId = Number(/^\/me\/receipts\/(\d+)#receipt$/.exec(created.headers.location ?? '')?.[1]);
    await agent
      .post(`/payments/receipt/${receiptId}/start`)
      .type('form')
      .send({ csrf_token: await csrfTokenOf(agent) })
      .expect(303);
    const voided = await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ reason: 'billed to the wrong project' });
    expect(voided.status, voided.text).toBe(200);
    expect(voided.body.receipt).toMatchObject({ checkoutsLeftOpen: [], checkoutNotice: null });
  });
});
