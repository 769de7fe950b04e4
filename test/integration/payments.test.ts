import { readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import Stripe from 'stripe';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MIGRATIONS_DIR } from '../../src/db/migrations.js';
import { createMetrics, type Metrics } from '../../src/modules/metrics/metrics.js';
import { signDummyWebhook } from '../../src/modules/payments/dummy.provider.js';
import { describeMinorUnits } from '../../src/modules/payments/payment-money.js';
import { type PaymentProvider, PaymentProviderError } from '../../src/modules/payments/payment-provider.js';
import {
  ABANDONED_START_GRACE_MS,
  buildPaymentProvider,
  createPaymentsService,
} from '../../src/modules/payments/payments.service.js';
import { createStripeProvider } from '../../src/modules/payments/stripe.provider.js';
import { createLogger } from '../../src/shared/logger.js';
import { amountDueOf, buildJobs, buildTiers } from '../support/billing-factories.js';
import { DUMMY_PAYMENTS_ENV, DUMMY_WEBHOOK_SECRET, deliverDummy } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { buildStripeEvent, type FakeStripe, startFakeStripe } from '../support/fake-stripe.js';
import { elementById, refusedFormStateOf } from '../support/html.js';
import { billJobs, startCheckout } from '../support/receipt-steps.js';
import { type Agent, csrfTokenOf, signInAs, signInNewAdmin } from '../support/sign-in.js';
import { buildTestApp, buildTestConfig, metricValue } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
});
afterAll(() => db?.drop());

let userCounter = 0;
/** A signed-in researcher with one billed job: receipt #id, pending, 1 CPU hour at 0.50 THB unless told. */
async function researcherWithReceipt(app: ReturnType<typeof buildTestApp>, totalCpuSec = '3600') {
  userCounter += 1;
  const user = await buildUser(db.prisma, { username: `payer${userCounter}` });
  await buildJobs(db, [{ user: user.username, end: '2026-01-10T10:00:00Z', totalCpuSec, stepMemGbHours: '0' }]);
  const agent = await signInAs(app, user.username, user.password);
  return { user, agent, receiptId: await billJobs(agent) };
}

/** Pays the receipt at the dummy provider's checkout as its researcher does: the payment succeeds. */
async function payAtDummyCheckout(online: { agent: Agent; receiptId: number }) {
  const checkoutPath = await startCheckout(online.agent, online.receiptId);
  await online.agent
    .post(checkoutPath)
    .type('form')
    .send({ choice: 'pay', csrf_token: await csrfTokenOf(online.agent) })
    .expect(303);
}

/** A researcher who started paying a receipt online and canceled that attempt at the checkout. */
async function researcherWhoCanceledAnAttempt(app: ReturnType<typeof buildTestApp>) {
  const { agent, receiptId } = await researcherWithReceipt(app);
  const firstPath = await startCheckout(agent, receiptId);
  const first = await paymentOf(receiptId);
  const token = await csrfTokenOf(agent);
  await agent.post(firstPath).type('form').send({ choice: 'cancel', csrf_token: token }).expect(303);
  return { agent, receiptId, first, token, firstPath };
}

async function paymentOf(receiptId: number) {
  return db.prisma.payment.findFirstOrThrow({ where: { receiptId }, orderBy: { id: 'desc' } });
}

let adminCounter = 0;
async function signInAdmin(app: ReturnType<typeof buildTestApp>) {
  adminCounter += 1;
  const username = `payreviewer${adminCounter}`;
  return signInNewAdmin(app, db, username);
}

/** The admin payments page: the review banner's count and each payment's row, in page order. */
async function adminPaymentsPage(admin: Agent) {
  const page = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
  const banner = /(\d+) payments? needs? review/.exec(page.text);
  const tbody = page.text.slice(page.text.indexOf('<tbody>'), page.text.indexOf('</tbody>'));
  const rows = tbody.split('<tr>').slice(1);
  return {
    needsReview: banner ? Number(banner[1]) : 0,
    rowOf: (paymentId: number) => rows.find((row) => row.includes(`<td data-label="Payment">${paymentId}</td>`)) ?? '',
    positionOf: (paymentId: number) =>
      rows.findIndex((row) => row.includes(`<td data-label="Payment">${paymentId}</td>`)),
    firstPositionWithout: (status: string) => rows.findIndex((row) => !row.includes(`>${status}</span>`)),
  };
}

function reviewAuditsOf(receiptId: number) {
  return db.prisma.auditLog.findMany({
    where: { action: { in: ['payment.review', 'payment.mismatch'] }, target: `receipt:${receiptId}` },
  });
}

describe('paying a receipt with the dummy provider, end to end', () => {
  it('start -> hosted checkout -> pay -> signed webhook -> receipt paid', async () => {
    const metrics = createMetrics();
    const app = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV, metrics });
    const { agent, receiptId } = await researcherWithReceipt(app);
    const receiptPage = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html');
    expect(receiptPage.text).toContain(`action="/payments/receipt/${receiptId}/start"`);
    // The confirmation page a GET of the start (a link, a sign-in's next) shows: the amount and the button.
    const confirm = await agent.get(`/payments/receipt/${receiptId}/start`).set('Accept', 'text/html').expect(200);
    expect(confirm.text).toContain('<p class="lead">0.50 THB</p>');
    expect(confirm.text).toContain('Continue to payment</button>');
    expect(confirm.text).not.toContain('nothing to pay');

    const checkoutUrl = await startCheckout(agent, receiptId);
    expect(checkoutUrl).toMatch(/^\/payments\/dummy\/checkout\/dummy_\d+_[0-9a-f]{8}$/);
    const payment = await paymentOf(receiptId);
    expect(payment).toMatchObject({ status: 'pending', amountMinor: 50n, currency: 'THB', provider: 'dummy' });

    const checkoutPath = checkoutUrl;
    const page = await agent.get(checkoutPath).set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('Pay');
    const paid = await agent
      .post(checkoutPath)
      .type('form')
      .send({ choice: 'pay', csrf_token: await csrfTokenOf(agent) });
    expect(paid.status).toBe(303);
    expect(paid.headers.location).toBe(`/payments/thanks?rid=${receiptId}`);
    const thanks = await agent
      .get(paid.headers.location as string)
      .set('Accept', 'text/html')
      .expect(200);
    expect(thanks.text).toContain('Paid. Thank you.');
    expect(thanks.text).not.toContain('http-equiv="refresh"');

    const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
    expect(receipt).toMatchObject({ status: 'paid', paymentMethod: 'dummy', txRef: payment.externalPaymentId });
    expect((await paymentOf(receiptId)).status).toBe('succeeded');
    expect(
      await db.prisma.auditLog.count({ where: { action: 'receipt.paid_online', target: `receipt:${receiptId}` } }),
    ).toBe(1);
    expect(
      await metricValue(metrics, 'payments_webhook_events_total', {
        provider: 'dummy',
        event: 'payment.succeeded',
        outcome: 'ok',
      }),
    ).toBe(1);
    expect(await metricValue(metrics, 'billing_receipt_marked_paid_total', { actor_type: 'provider' })).toBe(1);
  });

  it('shows a pending status page that follows the payment by itself, and a failed payment can be retried', async () => {
    const app = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV });
    const { agent, receiptId } = await researcherWithReceipt(app);
    const checkoutPath = await startCheckout(agent, receiptId);
    const pending = await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html').expect(200);
    // Its script asks for the state and loads the page again once it changes (a reload every 2 s sent
    // the keyboard's focus to the top each time); the meta refresh is kept for browsers without script.
    expect(pending.text).toContain('<noscript><meta http-equiv="refresh" content="2"></noscript>');
    expect(pending.text).toContain('<script src="/static/js/payment-wait.js" defer></script>');
    const drawnState = /data-wait-state="([^"]*)"/.exec(pending.text)?.[1];
    expect(pending.text).toContain(`data-status-url="/payments/receipt/${receiptId}/status"`);
    const waiting = await agent
      .get(`/payments/receipt/${receiptId}/status`)
      .set('Accept', 'application/json')
      .expect(200);
    expect(waiting.headers['cache-control']).toBe('no-store');
    expect(waiting.body).toMatchObject({
      receiptId,
      receiptStatus: 'pending',
      paymentStatus: 'pending',
      isFinal: false,
    });
    expect(waiting.body.state).toBe(drawnState);
    // Another researcher's receipt is not found, as its pages are.
    const other = await researcherWithReceipt(app);
    await other.agent.get(`/payments/receipt/${receiptId}/status`).set('Accept', 'application/json').expect(404);
    await agent
      .post(checkoutPath)
      .type('form')
      .send({ choice: 'fail', csrf_token: await csrfTokenOf(agent) })
      .expect(303);
    const ended = await agent
      .get(`/payments/receipt/${receiptId}/status`)
      .set('Accept', 'application/json')
      .expect(200);
    expect(ended.body).toMatchObject({ receiptId, receiptStatus: 'pending', paymentStatus: 'failed', isFinal: true });
    expect(ended.body.state).not.toBe(drawnState);
    const failed = await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html');
    expect(failed.text).toContain('The payment failed.');
    expect(failed.text).not.toContain('payment-wait.js');
    const retry = await startCheckout(agent, receiptId);
    expect(retry).not.toBe(checkoutPath);
    expect(await db.prisma.payment.count({ where: { receiptId } })).toBe(2);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
  });

  it('tells the owner of a pending receipt how to pay it when no payment provider is configured', async () => {
    const app = buildTestApp(db, { env: { PAYMENT_PROVIDER: 'none' } });
    const { agent, receiptId } = await researcherWithReceipt(app);
    const page = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(page.text).not.toContain(`action="/payments/receipt/${receiptId}/start"`);
    expect(page.text).toContain(
      `Online payment is not offered here. Pay 0.50 THB as your billing office asks (by bank transfer, for example), quoting receipt #${receiptId}; this receipt shows it paid once they have recorded the payment.`,
    );
    // Its pay page (GET .../start, from a link or history) says the same instead of a button that ends in a 404.
    const confirm = await agent.get(`/payments/receipt/${receiptId}/start`).set('Accept', 'text/html').expect(200);
    expect(confirm.text).toContain('Online payment is not offered here. Pay 0.50 THB as your billing office asks');
    expect(confirm.text).not.toContain('Continue to payment');
    // With a provider, the Pay button says it all.
    const online = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV });
    const payer = await researcherWithReceipt(online);
    const payable = await payer.agent.get(`/me/receipts/${payer.receiptId}`).set('Accept', 'text/html').expect(200);
    expect(payable.text).toContain('Pay 0.50 THB online');
    expect(payable.text).not.toContain('Online payment is not offered here');
  });

  it('says that no payment was started on the status page of a receipt without one, and does not wait', async () => {
    const app = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV });
    const { agent, receiptId } = await researcherWithReceipt(app);
    const page = await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('No online payment has been started for this receipt; it is still to be paid.');
    expect(page.text).not.toContain('Waiting for the payment provider');
    expect(page.text).not.toContain('http-equiv="refresh"');
    expect(page.text).not.toContain('Try again');
    expect(page.text).toContain(`<a href="/me/receipts/${receiptId}">Open the receipt</a>`);
    expect(await db.prisma.payment.count({ where: { receiptId } })).toBe(0);
  });

  it('gives a double click the same checkout, even when the clicks race', async () => {
    const app = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV });
    const { agent, receiptId } = await researcherWithReceipt(app);
    const token = await csrfTokenOf(agent);
    const clicks = await Promise.all(
      Array.from({ length: 5 }, () =>
        agent.post(`/payments/receipt/${receiptId}/start`).type('form').send({ csrf_token: token }),
      ),
    );
    expect(clicks.every((click) => click.status === 303)).toBe(true);
    expect(await db.prisma.payment.count({ where: { receiptId } })).toBe(1);
    expect(await startCheckout(agent, receiptId)).toBe((await paymentOf(receiptId)).checkoutUrl);
  });

  it('answers a JSON client the checkout address instead of redirecting it into the checkout page', async () => {
    const app = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV });
    const { agent, receiptId } = await researcherWithReceipt(app);
    const startAsJson = async () =>
      agent
        .post(`/payments/receipt/${receiptId}/start`)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(agent))
        .send({});
    const first = await startAsJson();
    expect(first.status, first.text.slice(0, 200)).toBe(200);
    const payment = await paymentOf(receiptId);
    expect(payment).toMatchObject({ status: 'pending', provider: 'dummy' });
    expect(first.body).toEqual({
      ok: true,
      receiptId,
      checkoutUrl: payment.checkoutUrl,
      message: `Continue the payment of receipt #${receiptId} at ${payment.checkoutUrl}.`,
    });
    expect(first.body.checkoutUrl).toMatch(/^\/payments\/dummy\/checkout\/dummy_\d+_[0-9a-f]{8}$/);
    // Asked again, the open attempt's address: still one payment.
    const second = await startAsJson();
    expect(second.status).toBe(200);
    expect(second.body.checkoutUrl).toBe(payment.checkoutUrl);
    expect(await db.prisma.payment.count({ where: { receiptId } })).toBe(1);
  });

  it("answers another user's receipt with 404 and a paid one with 409", async () => {
    const app = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV });
    const owner = await researcherWithReceipt(app);
    const other = await researcherWithReceipt(app);
    const foreign = await other.agent
      .post(`/payments/receipt/${owner.receiptId}/start`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(other.agent))
      .send({});
    expect(foreign.status).toBe(404);
    await db.prisma.receipt.update({ where: { id: owner.receiptId }, data: { status: 'paid', paidAt: new Date() } });
    const paid = await owner.agent
      .post(`/payments/receipt/${owner.receiptId}/start`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(owner.agent))
      .send({});
    expect(paid.status).toBe(409);
    expect(await db.prisma.payment.count({ where: { receiptId: { in: [owner.receiptId, other.receiptId] } } })).toBe(0);
  });
});

describe('a missing receipt or payment, and a bad id', () => {
  it('are worded the same on the receipt pages, the payment pages and the admin actions', async () => {
    const app = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV });
    const owner = await researcherWithReceipt(app);
    const other = await researcherWithReceipt(app);
    const admin = await signInAdmin(app);
    const asJson = async (agent: Agent, method: 'get' | 'post', path: string) =>
      method === 'get'
        ? agent.get(path).set('Accept', 'application/json')
        : agent
            .post(path)
            .set('Accept', 'application/json')
            .set('X-CSRFToken', await csrfTokenOf(agent))
            .send({});

    const missing = 2_147_483_000;
    // Another user's receipt is "not found" too, never "forbidden".
    for (const [agent, method, path, id] of [
      [owner.agent, 'get', `/me/receipts/${missing}`, missing],
      [owner.agent, 'get', `/payments/receipt/${missing}/start`, missing],
      [owner.agent, 'post', `/payments/receipt/${missing}/start`, missing],
      [other.agent, 'get', `/me/receipts/${owner.receiptId}`, owner.receiptId],
      [other.agent, 'post', `/payments/receipt/${owner.receiptId}/start`, owner.receiptId],
      [other.agent, 'get', `/payments/thanks?rid=${owner.receiptId}`, owner.receiptId],
      [admin, 'get', `/admin/receipts/${missing}`, missing],
    ] as const) {
      const answer = await asJson(agent, method, path);
      expect(answer.body, `${method} ${path}`).toEqual({ error: `Receipt #${id} was not found.`, code: 404 });
    }
    const paid = await admin
      .post(`/admin/receipts/${missing}/paid`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ method: 'cash', amount_received: '0.50' });
    expect(paid.body).toEqual({ error: `Receipt #${missing} was not found.`, code: 404 });
    const resolved = await admin
      .post(`/admin/payments/${missing}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'refunded', note: 'Refunded in the provider dashboard.' });
    expect(resolved.body).toEqual({ error: `Payment #${missing} was not found.`, code: 404 });

    for (const [agent, method, path, name] of [
      [owner.agent, 'get', '/me/receipts/1e0', 'receipt id'],
      [owner.agent, 'get', '/payments/receipt/1e0/start', 'receipt id'],
      [owner.agent, 'post', '/payments/receipt/1e0/start', 'receipt id'],
      [admin, 'post', '/admin/receipts/1e0/void', 'receipt id'],
      [admin, 'post', '/admin/payments/1e0/resolve', 'payment id'],
    ] as const) {
      const answer = await asJson(agent, method, path);
      expect(answer.body, `${method} ${path}`).toEqual({ error: `${name}: must be a whole number`, code: 400 });
    }
  });
});

describe('the webhook endpoint', () => {
  let metrics: Metrics;
  let app: ReturnType<typeof buildTestApp>;
  beforeAll(() => {
    metrics = createMetrics();
    app = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV, metrics });
  });

  async function pendingPayment() {
    const { agent, receiptId } = await researcherWithReceipt(app);
    await startCheckout(agent, receiptId);
    return paymentOf(receiptId);
  }
  const succeeded = (
    payment: { externalPaymentId: string | null; amountMinor: bigint },
    id: string,
    overrides = {},
  ) => ({
    event_id: id,
    event_type: 'payment.succeeded',
    external_payment_id: payment.externalPaymentId,
    amount_cents: Number(payment.amountMinor),
    currency: 'THB',
    ...overrides,
  });

  /** A researcher's receipt whose online payment was started, then canceled at the provider. */
  async function canceledCheckout(tag: string) {
    const { agent, receiptId } = await researcherWithReceipt(app);
    await startCheckout(agent, receiptId);
    const payment = await paymentOf(receiptId);
    const cancel = { ...succeeded(payment, `evt-${tag}-c-${payment.id}`), event_type: 'payment.canceled' };
    await deliverDummy(app, cancel).expect(200);
    return { agent, receiptId, payment };
  }

  it('refuses an amount too large to hold as too large, with 400, and stores nothing', async () => {
    const payment = await pendingPayment();
    const before = await db.prisma.paymentEvent.count();
    const body = JSON.stringify(succeeded(payment, 'evt-huge')).replace(
      /"amount_cents":\d+/,
      '"amount_cents":100000000000000000000',
    );
    const answer = await request(app)
      .post('/payments/webhook/dummy')
      .set('Content-Type', 'application/json')
      .set('X-Dummy-Signature', signDummyWebhook(body, DUMMY_WEBHOOK_SECRET))
      .send(body);
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({
      error: "Webhook rejected: body's amount_cents is too large: at most 9007199254740991 minor units.",
      code: 400,
    });
    expect(await db.prisma.paymentEvent.count()).toBe(before);
    expect((await paymentOf(payment.receiptId)).status).toBe('pending');
  });

  it('rejects a bad, missing or wrong-secret signature with 400 and stores nothing', async () => {
    const payment = await pendingPayment();
    const before = await db.prisma.paymentEvent.count();
    const body = JSON.stringify(succeeded(payment, 'evt-bad-1'));
    const tampered = await request(app)
      .post('/payments/webhook/dummy')
      .set('Content-Type', 'application/json')
      .set('X-Dummy-Signature', signDummyWebhook(body, DUMMY_WEBHOOK_SECRET))
      .send(body.replace('"amount_cents":50', '"amount_cents":1'));
    expect(tampered.status).toBe(400);
    expect(tampered.body).toEqual({ error: 'Webhook rejected: signature does not match.', code: 400 });
    await request(app).post('/payments/webhook/dummy').set('Content-Type', 'application/json').send(body).expect(400);
    await deliverDummy(app, succeeded(payment, 'evt-bad-2'), 'some-other-secret').expect(400);
    expect(await db.prisma.paymentEvent.count()).toBe(before);
    expect((await paymentOf(payment.receiptId)).status).toBe('pending');
    expect(
      await metricValue(metrics, 'payments_webhook_events_total', {
        provider: 'dummy',
        event: 'other',
        outcome: 'bad_signature',
      }),
    ).toBe(3);
  });

  it('changes state exactly once for the same event delivered twice and ten times at once', async () => {
    const payment = await pendingPayment();
    const event = succeeded(payment, `evt-dup-${payment.id}`);
    const responses = await Promise.all(Array.from({ length: 10 }, () => deliverDummy(app, event)));
    expect(responses.map((response) => response.status)).toEqual(Array(10).fill(200));
    const outcomes = responses.map((response) => response.body.outcome).sort();
    expect(outcomes).toEqual([
      'duplicate',
      'duplicate',
      'duplicate',
      'duplicate',
      'duplicate',
      'duplicate',
      'duplicate',
      'duplicate',
      'duplicate',
      'ok',
    ]);
    expect((await deliverDummy(app, event).expect(200)).body.outcome).toBe('duplicate');
    expect(await db.prisma.paymentEvent.count({ where: { externalEventId: event.event_id } })).toBe(1);
    expect(
      await db.prisma.auditLog.count({
        where: { action: 'receipt.paid_online', target: `receipt:${payment.receiptId}` },
      }),
    ).toBe(1);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: payment.receiptId } })).status).toBe('paid');
  });

  it.each([
    ['amount', { amount_cents: 49 }],
    ['currency', { currency: 'USD' }],
  ])('holds a %s mismatch for review and leaves the receipt pending', async (_label, overrides) => {
    const payment = await pendingPayment();
    const response = await deliverDummy(app, succeeded(payment, `evt-mismatch-${payment.id}`, overrides)).expect(200);
    expect(response.body.outcome).toBe('mismatch');
    const stored = await paymentOf(payment.receiptId);
    expect(stored.status).toBe('needs_review');
    expect(stored.reviewReason).toMatch(/^paid (0\.49 THB|0\.50 USD) but 0\.50 THB was due$/);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: payment.receiptId } })).status).toBe('pending');
  });

  it('does not let a late failure undo a success, nor a late success revive a canceled payment', async () => {
    const paid = await pendingPayment();
    await deliverDummy(app, succeeded(paid, `evt-order-a-${paid.id}`)).expect(200);
    const late = await deliverDummy(app, {
      ...succeeded(paid, `evt-order-b-${paid.id}`),
      event_type: 'payment.failed',
    }).expect(200);
    expect(late.body.outcome).toBe('ignored');
    expect((await paymentOf(paid.receiptId)).status).toBe('succeeded');

    const canceled = await pendingPayment();
    await deliverDummy(app, {
      ...succeeded(canceled, `evt-order-c-${canceled.id}`),
      event_type: 'payment.canceled',
    }).expect(200);
    expect((await paymentOf(canceled.receiptId)).status).toBe('canceled');
    const revived = await deliverDummy(app, succeeded(canceled, `evt-order-d-${canceled.id}`)).expect(200);
    expect(revived.body.outcome).toBe('review');
    expect((await paymentOf(canceled.receiptId)).status).toBe('needs_review');
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: canceled.receiptId } })).status).toBe('pending');
  });

  it('holds a late success for a canceled payment for review: reason, one audit entry, first on the admin page', async () => {
    const admin = await signInAdmin(app);
    const { agent, receiptId } = await researcherWithReceipt(app);
    await startCheckout(agent, receiptId);
    const payment = await paymentOf(receiptId);
    const cancel = { ...succeeded(payment, `evt-late-cancel-${payment.id}`), event_type: 'payment.canceled' };
    expect((await deliverDummy(app, cancel).expect(200)).body.outcome).toBe('ok');
    expect((await paymentOf(receiptId)).status).toBe('canceled');
    const before = await adminPaymentsPage(admin);

    const late = succeeded(payment, `evt-late-success-${payment.id}`);
    const response = await deliverDummy(app, late).expect(200);
    expect(response.body.outcome).toBe('review');

    const stored = await paymentOf(receiptId);
    expect(stored).toMatchObject({ status: 'needs_review', reviewReason: 'payment succeeded after it was canceled' });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
    const audits = await reviewAuditsOf(receiptId);
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ action: 'payment.review', actor: 'provider:dummy', status: 'failed' });
    expect(audits[0]?.details).toMatchObject({
      paymentId: payment.id,
      eventId: late.event_id,
      reason: 'payment succeeded after it was canceled',
    });
    const event = await db.prisma.paymentEvent.findFirstOrThrow({ where: { externalEventId: late.event_id } });
    expect(event).toMatchObject({ outcome: 'review', paymentId: payment.id });

    const after = await adminPaymentsPage(admin);
    expect(after.needsReview).toBe(before.needsReview + 1);
    expect(after.rowOf(payment.id)).toContain('payment succeeded after it was canceled');
    expect(after.positionOf(payment.id)).toBeLessThan(after.firstPositionWithout('needs review'));

    const thanks = await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(thanks.text).toContain('needs a check by the billing team');
  });

  it('holds a late success for a failed payment; the old checkout page cannot send one', async () => {
    const { agent, receiptId } = await researcherWithReceipt(app);
    const checkoutPath = await startCheckout(agent, receiptId);
    const token = await csrfTokenOf(agent);
    await agent.post(checkoutPath).type('form').send({ choice: 'fail', csrf_token: token }).expect(303);
    const failed = await paymentOf(receiptId);
    expect(failed.status).toBe('failed');

    // The checkout took its one choice (dummy-checkout.test.ts); the provider can still report money.
    await agent.post(checkoutPath).type('form').send({ choice: 'pay', csrf_token: token }).expect(409);
    expect(await paymentOf(receiptId)).toEqual(failed);
    const paidLate = await deliverDummy(app, succeeded(failed, `evt-late-failed-${failed.id}`)).expect(200);
    expect(paidLate.body.outcome).toBe('review');
    const stored = await paymentOf(receiptId);
    expect(stored).toMatchObject({ status: 'needs_review', reviewReason: 'payment succeeded after it failed' });
    expect(await reviewAuditsOf(receiptId)).toHaveLength(1);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
    const lastEvent = await db.prisma.paymentEvent.findFirstOrThrow({
      where: { paymentId: stored.id },
      orderBy: { id: 'desc' },
    });
    expect(lastEvent).toMatchObject({ type: 'payment.succeeded', outcome: 'review' });
  });

  it('holds a late success once, for a replay, ten copies at once, and other event ids racing', async () => {
    const { receiptId, payment } = await canceledCheckout('race');
    const late = succeeded(payment, `evt-race-s-${payment.id}`);
    const copies = await Promise.all(Array.from({ length: 10 }, () => deliverDummy(app, late)));
    expect(copies.map((copy) => copy.status)).toEqual(Array(10).fill(200));
    expect(copies.map((copy) => copy.body.outcome).sort()).toEqual([...Array(9).fill('duplicate'), 'review']);
    expect((await deliverDummy(app, late).expect(200)).body.outcome).toBe('duplicate');

    const others = await Promise.all(
      Array.from({ length: 5 }, (_, index) =>
        deliverDummy(app, succeeded(payment, `evt-race-o-${payment.id}-${index}`)),
      ),
    );
    expect(others.map((other) => other.body.outcome)).toEqual(Array(5).fill('review'));
    expect(await reviewAuditsOf(receiptId)).toHaveLength(1);
    expect((await paymentOf(receiptId)).reviewReason).toBe('payment succeeded after it was canceled');
    expect(await db.prisma.paymentEvent.count({ where: { externalEventId: late.event_id } })).toBe(1);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
  });

  it('says in the reason when a late success has the wrong amount or its receipt was paid by a later attempt', async () => {
    const { agent, receiptId, first, token } = await researcherWhoCanceledAnAttempt(app);
    const secondPath = await startCheckout(agent, receiptId);
    await agent.post(secondPath).type('form').send({ choice: 'pay', csrf_token: token }).expect(303);
    const second = await paymentOf(receiptId);
    const paid = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
    expect(paid).toMatchObject({ status: 'paid', txRef: second.externalPaymentId });

    const late = await deliverDummy(app, succeeded(first, `evt-late-paid-${first.id}`, { amount_cents: 1 })).expect(
      200,
    );
    expect(late.body.outcome).toBe('review');
    const stored = await db.prisma.payment.findUniqueOrThrow({ where: { id: first.id } });
    expect(stored.reviewReason).toBe(
      `payment succeeded after it was canceled; paid 0.01 THB but 0.50 THB was due; receipt #${receiptId} was already paid`,
    );
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toEqual(paid);
    expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: second.id } })).status).toBe('succeeded');
  });

  it('leaves a canceled payment as it was when the late success is badly signed', async () => {
    const { receiptId, payment } = await canceledCheckout('bad');
    const forged = await deliverDummy(app, succeeded(payment, `evt-bad-s-${payment.id}`), 'not-the-secret').expect(400);
    expect(forged.body.error).toBe('Webhook rejected: signature does not match.');
    expect(await paymentOf(receiptId)).toMatchObject({ status: 'canceled', reviewReason: null });
    expect(await reviewAuditsOf(receiptId)).toHaveLength(0);
    expect(await db.prisma.paymentEvent.count({ where: { externalEventId: `evt-bad-s-${payment.id}` } })).toBe(0);
  });

  it('lets the admin settle a held late success on the billing page: mark the receipt paid by hand', async () => {
    const admin = await signInAdmin(app);
    const { agent, receiptId, payment } = await canceledCheckout('settle');
    await deliverDummy(app, succeeded(payment, `evt-settle-s-${payment.id}`)).expect(200);
    expect((await paymentOf(receiptId)).status).toBe('needs_review');

    const marked = await admin
      .post(`/admin/receipts/${receiptId}/paid`)
      .type('form')
      .send({
        method: 'card',
        amount_received: await amountDueOf(db, receiptId),
        tx_ref: payment.externalPaymentId,
        csrf_token: await csrfTokenOf(admin),
      });
    expect(marked.status).toBe(303);
    const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
    expect(receipt).toMatchObject({ status: 'paid', paymentMethod: 'card', txRef: payment.externalPaymentId });
    // The late success stays held until the admin resolves it on the payments page: the status page
    // says the receipt is paid and that a payment of it is being checked, as the receipt page does.
    const thanks = await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(thanks.text).toContain('Paid, but a payment of this receipt is being checked by the billing team');
  });

  it("writes the mismatch reason in the currency's decimals, on the admin page and in the audit entry", async () => {
    const admin = await signInAdmin(app);
    // 14,753.8 CPU hours at 0.50 THB: a 7,376.90 THB receipt.
    const { agent, receiptId } = await researcherWithReceipt(app, '53113680');
    await startCheckout(agent, receiptId);
    const payment = await paymentOf(receiptId);
    expect(payment.amountMinor).toBe(737_690n);
    const response = await deliverDummy(
      app,
      succeeded(payment, `evt-decimals-${payment.id}`, { amount_cents: 100 }),
    ).expect(200);
    expect(response.body.outcome).toBe('mismatch');
    const reason = 'paid 1.00 THB but 7,376.90 THB was due';
    expect((await paymentOf(receiptId)).reviewReason).toBe(reason);
    const audits = await reviewAuditsOf(receiptId);
    expect(audits.map((audit) => audit.details)).toEqual([expect.objectContaining({ reason })]);
    expect((await adminPaymentsPage(admin)).rowOf(payment.id)).toContain(reason);
  });

  it('holds money for a receipt already paid by hand for review', async () => {
    const payment = await pendingPayment();
    await db.prisma.receipt.update({
      where: { id: payment.receiptId },
      data: { status: 'paid', paidAt: new Date(), paymentMethod: 'cash' },
    });
    const response = await deliverDummy(app, succeeded(payment, `evt-byhand-${payment.id}`)).expect(200);
    expect(response.body.outcome).toBe('review');
    const stored = await paymentOf(payment.receiptId);
    expect(stored.status).toBe('needs_review');
    expect(stored.reviewReason).toContain('was already paid');
    const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id: payment.receiptId } });
    expect(receipt.paymentMethod).toBe('cash');
  });

  it('records an unknown payment and an unknown event type with 200, changing nothing', async () => {
    const unknown = await deliverDummy(app, {
      event_id: 'evt-unknown-payment',
      event_type: 'payment.succeeded',
      external_payment_id: 'dummy_0_nope',
      amount_cents: 1,
      currency: 'THB',
    }).expect(200);
    expect(unknown.body.outcome).toBe('unknown_payment');
    const payment = await pendingPayment();
    const other = await deliverDummy(app, {
      ...succeeded(payment, 'evt-refund-1'),
      // A type this app does not read (payment.refunded, which it reads now, is refused for a
      // payment still pending: payment-refunds.test.ts).
      event_type: 'payment.something_new',
    }).expect(200);
    expect(other.body.outcome).toBe('ignored');
    expect((await paymentOf(payment.receiptId)).status).toBe('pending');
    const stored = await db.prisma.paymentEvent.findMany({
      where: { externalEventId: { in: ['evt-unknown-payment', 'evt-refund-1'] } },
      orderBy: { id: 'asc' },
    });
    expect(stored.map((event) => event.outcome)).toEqual(['unknown_payment', 'ignored']);
  });

  it('refuses non-JSON with 415, oversized bodies with 413, and an unconfigured provider with 404', async () => {
    await request(app).post('/payments/webhook/dummy').set('Content-Type', 'text/plain').send('hello').expect(415);
    const huge = JSON.stringify({ event_id: 'x', padding: 'x'.repeat(70_000) });
    const tooLarge = await request(app)
      .post('/payments/webhook/dummy')
      .set('Content-Type', 'application/json')
      .set('X-Dummy-Signature', signDummyWebhook(huge, DUMMY_WEBHOOK_SECRET))
      .send(huge)
      .expect(413);
    // It said "The request body is too large.", leaving the provider's engineer to guess the limit.
    expect(tooLarge.body).toEqual({
      error:
        'Webhook rejected: the body is larger than 64 KiB (65,536 bytes), which no payment event is; it was not read.',
      code: 413,
    });
    await request(app).post('/payments/webhook/stripe').set('Content-Type', 'application/json').send('{}').expect(404);
    const generic = await request(app).post('/payments/webhook').set('Content-Type', 'application/json').send('{}');
    expect(generic.status).toBe(400);
  });

  it('shows payments needing review first on the admin page', async () => {
    const admin = await signInNewAdmin(app, db, 'payadmin');
    const page = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(page.text).toMatch(/\d+ payments? needs? review/);
    const firstRow = page.text.indexOf('<tbody>');
    expect(page.text.indexOf('needs review', firstRow)).toBeLessThan(page.text.indexOf('succeeded', firstRow));
  });
});

describe('resolving a payment held for review', () => {
  let metrics: Metrics;
  let app: ReturnType<typeof buildTestApp>;
  beforeAll(() => {
    metrics = createMetrics();
    app = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV, metrics });
  });

  /**
   * A researcher's receipt whose payment the provider confirmed after it was canceled (or,
   * with `amount_cents`, with the wrong amount): held for review by the real webhook.
   */
  async function heldPayment(options: { amountCents?: number } = {}) {
    const { agent, receiptId, user } = await researcherWithReceipt(app);
    await startCheckout(agent, receiptId);
    const started = await paymentOf(receiptId);
    const event = {
      event_type: 'payment.succeeded',
      external_payment_id: started.externalPaymentId,
      amount_cents: options.amountCents ?? Number(started.amountMinor),
      currency: 'THB',
    };
    if (options.amountCents === undefined) {
      await deliverDummy(app, { ...event, event_id: `evt-held-c-${started.id}`, event_type: 'payment.canceled' });
    }
    const held = await deliverDummy(app, { ...event, event_id: `evt-held-s-${started.id}` }).expect(200);
    expect(['review', 'mismatch']).toContain(held.body.outcome);
    const payment = await paymentOf(receiptId);
    expect(payment.status).toBe('needs_review');
    return { agent, user, receiptId, payment };
  }

  async function resolve(admin: Agent, paymentId: number | string, body: Record<string, unknown>) {
    return admin
      .post(`/admin/payments/${paymentId}/resolve`)
      .set('Accept', 'text/html')
      .type('form')
      .send({ ...body, csrf_token: await csrfTokenOf(admin) });
  }

  function resolveAuditsOf(receiptId: number) {
    return db.prisma.auditLog.findMany({ where: { action: 'payment.resolve', target: `receipt:${receiptId}` } });
  }

  /** Everything a resolve may touch, to check that a refused one touched nothing. */
  async function snapshotOf(receiptId: number) {
    return {
      receipt: await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } }),
      payments: await db.prisma.payment.findMany({ where: { receiptId }, orderBy: { id: 'asc' } }),
      audits: await db.prisma.auditLog.count({ where: { target: `receipt:${receiptId}` } }),
    };
  }

  it('accepts the money for the receipt: receipt paid from the payment, resolution recorded, audited, banner down', async () => {
    const admin = await signInAdmin(app);
    const { agent, receiptId, payment } = await heldPayment();
    const before = await adminPaymentsPage(admin);
    const page = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain(`action="/admin/payments/${payment.id}/resolve"`);

    const resolved = await resolve(admin, payment.id, {
      outcome: 'accepted',
      note: 'Checked in the provider dashboard: the money is ours, accepted for the receipt.',
    });
    expect(resolved.status, resolved.text.slice(0, 300)).toBe(303);
    expect(resolved.headers.location).toBe('/admin/payments');

    const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
    expect(receipt).toMatchObject({ status: 'paid', paymentMethod: 'dummy', txRef: payment.externalPaymentId });
    expect(receipt.paidAt).toBeInstanceOf(Date);
    const stored = await paymentOf(receiptId);
    expect(stored).toMatchObject({
      status: 'resolved',
      reviewOutcome: 'accepted',
      reviewNote: 'Checked in the provider dashboard: the money is ours, accepted for the receipt.',
      reviewReason: 'payment succeeded after it was canceled',
    });
    expect(stored.reviewedBy).toMatch(/^payreviewer\d+$/);
    expect(stored.reviewedAt).toBeInstanceOf(Date);

    const audits = await resolveAuditsOf(receiptId);
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ actor: stored.reviewedBy, status: 'ok' });
    expect(audits[0]?.details).toMatchObject({
      paymentId: payment.id,
      outcome: 'accepted',
      reviewReason: 'payment succeeded after it was canceled',
    });
    const markedPaid = await db.prisma.auditLog.findMany({
      where: { action: 'receipt.mark_paid', target: `receipt:${receiptId}` },
    });
    expect(markedPaid).toHaveLength(1);
    expect(markedPaid[0]?.details).toMatchObject({
      method: 'dummy',
      txRef: payment.externalPaymentId,
      paymentId: payment.id,
    });
    expect(await metricValue(metrics, 'billing_receipt_marked_paid_total', { actor_type: 'admin' })).toBe(1);

    const after = await adminPaymentsPage(admin);
    expect(after.needsReview).toBe(before.needsReview - 1);
    expect(after.rowOf(payment.id)).toContain('>resolved</span>');
    expect(after.rowOf(payment.id)).toContain('accepted by payreviewer');
    const thanks = await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(thanks.text).toContain('Paid. Thank you.');
  });

  it('answers a resolution form posted with Accept: application/json in JSON', async () => {
    const admin = await signInAdmin(app);
    const { receiptId, payment } = await heldPayment();
    const resolved = await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .type('form')
      .send({ outcome: 'refunded', note: 'Refunded in the provider dashboard.', csrf_token: await csrfTokenOf(admin) });
    expect(resolved.status).toBe(200);
    expect(resolved.headers['content-type']).toMatch(/^application\/json/);
    expect(resolved.body).toEqual({
      ok: true,
      payment: { id: payment.id, receiptId, status: 'resolved', outcome: 'refunded' },
      // The flash's sentence, as every change's JSON answer has it.
      message: `Payment #${payment.id} resolved as refunded.`,
    });
  });

  it('dismisses a refunded payment: receipt left as it was, and the researcher can pay again', async () => {
    const admin = await signInAdmin(app);
    const { agent, receiptId, payment } = await heldPayment();
    const receiptBefore = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
    const before = await adminPaymentsPage(admin);

    const resolved = await resolve(admin, payment.id, {
      outcome: 'refunded',
      note: 'Refunded in the provider dashboard, refund re_123.',
    });
    expect(resolved.status, resolved.text.slice(0, 300)).toBe(303);
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toEqual(receiptBefore);
    expect(await paymentOf(receiptId)).toMatchObject({
      status: 'resolved',
      reviewOutcome: 'refunded',
      reviewNote: 'Refunded in the provider dashboard, refund re_123.',
    });
    expect(await resolveAuditsOf(receiptId)).toHaveLength(1);
    expect(
      await db.prisma.auditLog.count({ where: { action: 'receipt.mark_paid', target: `receipt:${receiptId}` } }),
    ).toBe(0);
    expect((await adminPaymentsPage(admin)).needsReview).toBe(before.needsReview - 1);

    const thanks = await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(thanks.text).toContain('refunded it. You can pay again.');
    expect(thanks.text).toContain('Try again');
    const receiptPage = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(receiptPage.text).toContain(`action="/payments/receipt/${receiptId}/start"`);
    const retry = await startCheckout(agent, receiptId);
    expect(retry).not.toBe(payment.checkoutUrl);
    const payments = await db.prisma.payment.findMany({ where: { receiptId }, orderBy: { id: 'asc' } });
    expect(payments.map((row) => row.status)).toEqual(['resolved', 'pending']);
    expect(payments[1]?.idempotencyKey).toBe(`receipt-${receiptId}-dummy-2`);
  });

  it('dismisses a payment for a receipt already paid by hand, leaving the receipt as the admin set it', async () => {
    const admin = await signInAdmin(app);
    const { agent, receiptId } = await researcherWithReceipt(app);
    await startCheckout(agent, receiptId);
    const payment = await paymentOf(receiptId);
    await admin
      .post(`/admin/receipts/${receiptId}/paid`)
      .type('form')
      .send({
        method: 'bank_transfer',
        amount_received: await amountDueOf(db, receiptId),
        tx_ref: 'BT-77',
        csrf_token: await csrfTokenOf(admin),
      })
      .expect(303);
    const held = await deliverDummy(app, {
      event_id: `evt-dismiss-${payment.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 50,
      currency: 'THB',
    }).expect(200);
    expect(held.body.outcome).toBe('review');
    const receiptBefore = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });

    const accepted = await resolve(admin, payment.id, { outcome: 'accepted', note: 'take it for the receipt' });
    expect(accepted.status).toBe(409);
    expect(accepted.text).toContain(`Receipt #${receiptId} is paid`);
    expect((await paymentOf(receiptId)).status).toBe('needs_review');

    const dismissed = await resolve(admin, payment.id, {
      outcome: 'dismissed',
      note: 'Paid twice; the bank transfer was returned to the researcher.',
    });
    expect(dismissed.status).toBe(303);
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toEqual(receiptBefore);
    expect(await paymentOf(receiptId)).toMatchObject({ status: 'resolved', reviewOutcome: 'dismissed' });
  });

  it('refuses a second resolve of the same payment with 409, sequential or racing, and audits once', async () => {
    const admin = await signInAdmin(app);
    const otherAdmin = await signInAdmin(app);
    const first = await heldPayment();
    expect(
      (await resolve(admin, first.payment.id, { outcome: 'refunded', note: 'Refunded in the Stripe dashboard.' }))
        .status,
    ).toBe(303);
    const resolvedOnce = await snapshotOf(first.receiptId);
    const again = await resolve(otherAdmin, first.payment.id, {
      outcome: 'accepted',
      note: 'accepted, receipt marked paid',
    });
    expect(again.status).toBe(409);
    expect(again.text).toContain(
      `<div class="alert error" role="alert" id="review-error" tabindex="-1" autofocus>Payment #${first.payment.id} was already resolved (refunded)`,
    );
    // When, as the pages write it (APP_TZ), not a raw ISO instant.
    expect(again.text).toMatch(/ on \d{4}-\d{2}-\d{2} \d{2}:\d{2}; nothing was changed\./);
    expect(await snapshotOf(first.receiptId)).toEqual(resolvedOnce);

    const second = await heldPayment();
    const [tokenA, tokenB] = [await csrfTokenOf(admin), await csrfTokenOf(otherAdmin)];
    const racing = await Promise.all(
      [
        [admin, tokenA],
        [otherAdmin, tokenB],
      ].map(([agent, token]) =>
        (agent as Agent)
          .post(`/admin/payments/${second.payment.id}/resolve`)
          .type('form')
          .send({ outcome: 'accepted', note: 'accepted, receipt marked paid', csrf_token: token as string }),
      ),
    );
    expect(racing.map((response) => response.status).sort()).toEqual([303, 409]);
    expect(await resolveAuditsOf(second.receiptId)).toHaveLength(1);
    expect(
      await db.prisma.auditLog.count({ where: { action: 'receipt.mark_paid', target: `receipt:${second.receiptId}` } }),
    ).toBe(1);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: second.receiptId } })).status).toBe('paid');
  });

  it('tells an admin resolving an already resolved payment so (409) before judging the form, and changes nothing', async () => {
    // The note was checked first: a second admin's short note, or no outcome, was answered 400 about
    // the form, and a corrected form then 409. The payment's state is the real reason, so it comes first.
    const admin = await signInAdmin(app);
    const { receiptId, payment } = await heldPayment();
    await resolve(admin, payment.id, { outcome: 'dismissed', note: 'Settled by bank transfer outside the app.' }).then(
      (response) => expect(response.status).toBe(303),
    );
    const resolvedOnce = await snapshotOf(receiptId);
    for (const body of [{ outcome: 'refunded', note: 'ok' }, { note: 'x'.repeat(1001) }, {}]) {
      const page = await resolve(admin, payment.id, body);
      expect(page.status, JSON.stringify(body)).toBe(409);
      expect(page.text).toContain(
        `<div class="alert error" role="alert" id="review-error" tabindex="-1" autofocus>Payment #${payment.id} was already resolved (dismissed)`,
      );
      expect(page.text).not.toContain('Note: must');
    }
    const json = await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRF-Token', await csrfTokenOf(admin))
      .send({ outcome: 'refunded', note: 'ok' });
    expect(json.status).toBe(409);
    expect(json.body.error).toMatch(new RegExp(`^Payment #${payment.id} was already resolved \\(dismissed\\) by `));
    expect(await snapshotOf(receiptId)).toEqual(resolvedOnce);

    // A payment held for review is still told about its note first, and left held.
    const held = await heldPayment();
    const before = await snapshotOf(held.receiptId);
    const short = await resolve(admin, held.payment.id, { outcome: 'refunded', note: 'ok' });
    expect(short.status).toBe(400);
    expect(short.text).toContain('Note: must say what was done');
    expect(await snapshotOf(held.receiptId)).toEqual(before);
  });

  /** The ids of `field`'s controls in payment `id`'s form: the note, or each outcome's radio button. */
  const controlsOf = (id: number, field: 'note' | 'outcome') =>
    field === 'note'
      ? [`note-${id}`]
      : ['accepted', 'refunded', 'dismissed'].map((outcome) => `outcome-${id}-${outcome}`);

  /** The page marks `ids` invalid, each described by the card's alert saying `message`, and focuses `focused`. */
  function expectTiedToReason(page: string, ids: string[], message: string, focused = ids[0]) {
    const state = refusedFormStateOf(page);
    expect(state.invalid).toEqual(ids);
    const reasonId = state.describedBy[ids[0] as string] ?? '';
    for (const id of ids) expect(state.describedBy[id]).toBe(reasonId);
    expect(elementById(page, reasonId)).toMatch(
      new RegExp(`^<div class="alert error" role="alert"[^>]*>[^<]*${message}`),
    );
    expect(state.autofocus).toEqual([focused]);
  }

  it.each([
    ['no note', 400, { outcome: 'refunded' }, 'Note: is required', 'note'],
    ['a blank note', 400, { outcome: 'refunded', note: '          ' }, 'Note: must say what was done', 'note'],
    ['a short note', 400, { outcome: 'refunded', note: 'ok' }, 'Note: must say what was done', 'note'],
    ['an overlong note', 400, { outcome: 'refunded', note: 'x'.repeat(1001) }, 'Note: must be at most 1000', 'note'],
    ['no outcome', 400, { note: 'refunded in the Stripe dashboard' }, 'Outcome: must be one of', 'outcome'],
    [
      'an unknown outcome',
      400,
      { outcome: 'ignored', note: 'refunded in the Stripe dashboard' },
      'Outcome: must be one of',
      'outcome',
    ],
  ] as Array<[string, number, Record<string, unknown>, string, 'note' | 'outcome']>)(
    'answers %s with %i and changes nothing, the field tied to the reason and focused',
    async (_label, status, body, message, field) => {
      const admin = await signInAdmin(app);
      const { receiptId, payment } = await heldPayment();
      const before = await snapshotOf(receiptId);
      const response = await resolve(admin, payment.id, body);
      expect(response.status).toBe(status);
      expect(response.text).toContain(message);
      expectTiedToReason(response.text, controlsOf(payment.id, field), message);
      expect(await snapshotOf(receiptId)).toEqual(before);
    },
  );

  it('answers an unknown payment with 404, a bad id with 400, and a payment not held with 409', async () => {
    const admin = await signInAdmin(app);
    const note = { outcome: 'refunded', note: 'refunded in the Stripe dashboard' };
    const unknown = await resolve(admin, 2_147_483_000, note);
    expect(unknown.status).toBe(404);
    expect(unknown.text).toContain('Payment #2147483000 was not found.');
    expect((await resolve(admin, 'abc', note)).status).toBe(400);

    const { agent, receiptId } = await researcherWithReceipt(app);
    await startCheckout(agent, receiptId);
    const pending = await paymentOf(receiptId);
    const before = await snapshotOf(receiptId);
    const notHeld = await resolve(admin, pending.id, note);
    expect(notHeld.status).toBe(409);
    expect(notHeld.text).toContain(`Payment #${pending.id} is pending, not held for review`);
    expect(await snapshotOf(receiptId)).toEqual(before);
  });

  it('refuses to accept money for a voided receipt (409) and leaves everything as it was', async () => {
    const admin = await signInAdmin(app);
    const { receiptId, payment } = await heldPayment();
    await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .type('form')
      .send({ reason: 'billed to the wrong project', csrf_token: await csrfTokenOf(admin) })
      .expect(303);
    const before = await snapshotOf(receiptId);
    const response = await resolve(admin, payment.id, { outcome: 'accepted', note: 'accepted for the receipt' });
    expect(response.status).toBe(409);
    expect(response.text).toContain(`Receipt #${receiptId} is void, so payment #${payment.id} cannot be accepted`);
    expect(response.text).toContain('>accepted for the receipt</textarea>');
    // The outcome is what to change: its buttons are tied to the reason, the first that can be chosen focused.
    const outcomes = controlsOf(payment.id, 'outcome');
    expectTiedToReason(response.text, outcomes, `Receipt #${receiptId} is void`, outcomes[1]);
    expect(await snapshotOf(receiptId)).toEqual(before);
    const page = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(page.text).toMatch(/value="accepted" required disabled/);
  });

  it('accepts a payment whose amount did not match only when the admin says so explicitly', async () => {
    const admin = await signInAdmin(app);
    const { receiptId, payment } = await heldPayment({ amountCents: 49 });
    expect(payment).toMatchObject({ hasAmountMismatch: true, reviewReason: 'paid 0.49 THB but 0.50 THB was due' });
    const before = await snapshotOf(receiptId);
    const page = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('name="accept_mismatch" value="yes"');

    const silent = await resolve(admin, payment.id, { outcome: 'accepted', note: 'accepted for the receipt' });
    expect(silent.status).toBe(400);
    expect(silent.text).toContain('did not match the amount due (paid 0.49 THB but 0.50 THB was due)');
    expect(await snapshotOf(receiptId)).toEqual(before);
    // The page again, the reason in that payment's card and the form as it was filled in.
    const cardStart = silent.text.indexOf(`id="review-${payment.id}"`);
    const card = silent.text.slice(cardStart, silent.text.indexOf('</section>', cardStart));
    expect(card).toMatch(/<div class="alert error" role="alert"[^>]*>[^<]*did not match the amount due/);
    expectTiedToReason(silent.text, [`accept-mismatch-${payment.id}`], 'did not match the amount due');
    expect(card).toContain('value="accepted" required checked>');
    expect(card).toContain('name="accept_mismatch" value="yes">');
    expect(card).toMatch(/placeholder="e.g. refunded in the Stripe dashboard">accepted for the receipt<\/textarea>/);
    const garbled = await resolve(admin, payment.id, {
      outcome: 'accepted',
      note: 'accepted for the receipt',
      accept_mismatch: 'maybe',
    });
    expect(garbled.status).toBe(400);
    expect(await snapshotOf(receiptId)).toEqual(before);

    const accepted = await resolve(admin, payment.id, {
      outcome: 'accepted',
      note: 'Accepted 0.49 of 0.50 THB; the 0.01 THB difference was written off.',
      accept_mismatch: 'yes',
    });
    expect(accepted.status).toBe(303);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('paid');
    const audits = await resolveAuditsOf(receiptId);
    expect(audits.map((audit) => audit.details)).toEqual([
      expect.objectContaining({ outcome: 'accepted', hasAmountMismatch: true }),
    ]);
  });

  it('lets only admins resolve (403 for a researcher) and requires the CSRF token (403)', async () => {
    const admin = await signInAdmin(app);
    const { agent, receiptId, payment } = await heldPayment();
    const before = await snapshotOf(receiptId);
    const body = { outcome: 'dismissed', note: 'handled outside the app' };
    const researcher = await agent
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .type('form')
      .send({ ...body, csrf_token: await csrfTokenOf(agent) });
    expect(researcher.status).toBe(403);
    const noToken = await admin.post(`/admin/payments/${payment.id}/resolve`).type('form').send(body);
    expect(noToken.status).toBe(403);
    expect(noToken.text).toContain('security token');
    expect(researcher.body.error).toBe('Only admins can do this, so nothing was changed.');
    expect((await paymentOf(receiptId)).status).toBe('needs_review');
    const after = await snapshotOf(receiptId);
    expect({ ...after, audits: undefined }).toEqual({ ...before, audits: undefined });
    expect(await resolveAuditsOf(receiptId)).toHaveLength(0);
  });

  it('answers JSON clients with the resolution', async () => {
    const admin = await signInAdmin(app);
    const { receiptId, payment } = await heldPayment();
    const response = await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'dismissed', note: 'handled outside the app, see ticket 42' })
      .expect(200);
    expect(response.body).toEqual({
      ok: true,
      payment: { id: payment.id, receiptId, status: 'resolved', outcome: 'dismissed' },
      message: `Payment #${payment.id} resolved as dismissed.`,
    });
  });
});

describe('what a payment received, when it is not the amount due', () => {
  let app: ReturnType<typeof buildTestApp>;
  beforeAll(() => {
    app = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV });
  });

  /** paid.csv (the default window, which holds today) as one object per line, by column name. */
  async function paidCsvRows(admin: Agent) {
    const csv = await admin.get('/admin/paid.csv').expect(200);
    const [header, ...lines] = csv.text.trimEnd().split('\n');
    const columns = (header ?? '').split(',');
    return lines.map((line) => Object.fromEntries(line.split(',').map((value, index) => [columns[index], value])));
  }

  it('records, shows and exports the 1.00 THB received for a 34.77 THB receipt accepted short', async () => {
    const admin = await signInAdmin(app);
    // 69.54 CPU hours at 0.50 THB: a 34.77 THB receipt.
    const { agent, receiptId, user } = await researcherWithReceipt(app, '250344');
    await startCheckout(agent, receiptId);
    const started = await paymentOf(receiptId);
    expect(started.amountMinor).toBe(3477n);
    const held = await deliverDummy(app, {
      event_id: `evt-short-${started.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: started.externalPaymentId,
      amount_cents: 100,
      currency: 'THB',
    }).expect(200);
    expect(held.body.outcome).toBe('mismatch');
    expect(await paymentOf(receiptId)).toMatchObject({
      status: 'needs_review',
      reviewReason: 'paid 1.00 THB but 34.77 THB was due',
      receivedMinor: 100n,
      receivedCurrency: 'THB',
    });
    const mismatchAudit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'payment.mismatch', target: `receipt:${receiptId}` },
    });
    expect(mismatchAudit.details).toMatchObject({ receivedMinor: '100', receivedCurrency: 'THB' });

    // The held card says both amounts, not only the one due.
    const heldPage = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    const card = heldPage.text.slice(heldPage.text.indexOf(`id="review-${started.id}"`));
    expect(card.slice(0, card.indexOf('</h3>'))).toMatch(
      /Payment #\d+: 34\.77 THB due, <strong class="received-different">1\.00 THB received<\/strong>/,
    );

    const accepted = await admin
      .post(`/admin/payments/${started.id}/resolve`)
      .type('form')
      .send({
        outcome: 'accepted',
        note: 'Accepted 1.00 of 34.77 THB; the rest was invoiced separately.',
        accept_mismatch: 'yes',
        csrf_token: await csrfTokenOf(admin),
      });
    expect(accepted.status, accepted.text.slice(0, 300)).toBe(303);
    const markPaid = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'receipt.mark_paid', target: `receipt:${receiptId}` },
    });
    expect(markPaid.details).toMatchObject({ paymentId: started.id, receivedMinor: '100', receivedCurrency: 'THB' });

    // The payments list: the amount due and, apart, the amount received.
    const row = (await adminPaymentsPage(admin)).rowOf(started.id);
    expect(row).toContain('<td data-label="Due" class="num">34.77 THB</td>');
    expect(row).toContain('<strong class="received-different">1.00 THB</strong> (not the amount due)');

    // The receipt page, for the admin and for the owner.
    for (const [who, path] of [
      [admin, `/admin/receipts/${receiptId}`],
      [agent, `/me/receipts/${receiptId}`],
    ] as const) {
      const page = await who.get(path).set('Accept', 'text/html').expect(200);
      expect(page.text, path).toContain(
        '<dt>Received</dt><dd class="received-different">1.00 THB, not the 34.77 THB due',
      );
      expect(page.text, path).toContain(`(online payment #${started.id})`);
    }

    // paid.csv keeps its columns and adds what arrived, enough to match the bank's line.
    const exported = (await paidCsvRows(admin)).find((line) => line.receipt_id === String(receiptId));
    expect(exported).toMatchObject({
      receipt_id: String(receiptId),
      user: user.username,
      method: 'dummy',
      tx_ref: started.externalPaymentId,
      total: '34.77',
      currency: 'THB',
      amount_received: '1.00',
      received_currency: 'THB',
      payment_id: String(started.id),
    });

    // The billing totals: 34.77 THB of paid receipts, of which 1.00 THB was received.
    const billing = await admin.get(`/admin/receipts?user=${user.username}`).set('Accept', 'text/html').expect(200);
    const paidCard = billing.text.slice(billing.text.indexOf('<span class="badge paid">paid</span>'));
    expect(paidCard.slice(0, paidCard.indexOf('</div>'))).toMatch(
      /<strong>34\.77 THB<\/strong>[\s\S]*<span class="received-different">received, net of refunds and lost disputes: 1\.00 THB<\/span>/,
    );
  });

  it('exports empty received columns for a payment whose provider did not say what it received', async () => {
    const admin = await signInAdmin(app);
    const online = await researcherWithReceipt(app);
    await payAtDummyCheckout(online);
    const payment = await paymentOf(online.receiptId);
    // As a payment recorded before received amounts were kept reads (the backfill leaves these unknown).
    await db.pool.query('UPDATE payments SET received_minor = NULL, received_currency = NULL WHERE id = $1', [
      payment.id,
    ]);
    const exported = (await paidCsvRows(admin)).find((line) => line.receipt_id === String(online.receiptId));
    expect(exported).toMatchObject({ amount_received: '', received_currency: '', payment_id: String(payment.id) });
  });

  it('records what an exact payment received and shows no difference; a receipt paid by hand exports its total', async () => {
    const admin = await signInAdmin(app);
    const online = await researcherWithReceipt(app);
    await payAtDummyCheckout(online);
    const payment = await paymentOf(online.receiptId);
    expect(payment).toMatchObject({ status: 'succeeded', receivedMinor: 50n, receivedCurrency: 'THB' });
    const page = await online.agent.get(`/me/receipts/${online.receiptId}`).set('Accept', 'text/html').expect(200);
    expect(page.text).not.toContain('<dt>Received</dt>');
    expect((await adminPaymentsPage(admin)).rowOf(payment.id)).toContain(
      '<td data-label="Due" class="num">0.50 THB</td>\n      <td data-label="Received, before refunds" class="num">0.50 THB</td>',
    );

    const byHand = await researcherWithReceipt(app);
    await admin
      .post(`/admin/receipts/${byHand.receiptId}/paid`)
      .type('form')
      .send({
        method: 'bank_transfer',
        amount_received: await amountDueOf(db, byHand.receiptId),
        tx_ref: 'KBANK-77',
        csrf_token: await csrfTokenOf(admin),
      })
      .expect(303);
    const rows = await paidCsvRows(admin);
    expect(rows.find((line) => line.receipt_id === String(online.receiptId))).toMatchObject({
      total: '0.50',
      amount_received: '0.50',
      received_currency: 'THB',
      payment_id: String(payment.id),
    });
    expect(rows.find((line) => line.receipt_id === String(byHand.receiptId))).toMatchObject({
      method: 'bank_transfer',
      tx_ref: 'KBANK-77',
      total: '0.50',
      amount_received: '0.50',
      received_currency: 'THB',
      payment_id: '',
    });
    const billing = await admin
      .get(`/admin/receipts?user=${online.user.username}`)
      .set('Accept', 'text/html')
      .expect(200);
    expect(billing.text).not.toContain('class="received-different"');
  });

  it('fills in what payments made before the column received, as the migration does', async () => {
    const migration = readFileSync(
      path.join(MIGRATIONS_DIR, '20261203000000_payment_received_amount', 'migration.sql'),
      'utf8',
    );
    const backfill = migration.slice(migration.indexOf('-- Existing rows.'));
    const { receiptId } = await researcherWithReceipt(app);
    const old = async (status: string, amountMinor: number, reviewReason: string | null, hasAmountMismatch = false) =>
      (
        await db.pool.query<{ id: number }>(
          `INSERT INTO payments (receipt_id, provider, status, amount_minor, currency, external_payment_id,
                                 idempotency_key, review_reason, has_amount_mismatch, updated_at)
           VALUES ($1, 'dummy', $2::"PaymentStatus", $3, 'THB', gen_random_uuid()::text, gen_random_uuid()::text,
                   $4, $5, now())
           RETURNING id`,
          [receiptId, status, amountMinor, reviewReason, hasAmountMismatch],
        )
      ).rows[0]?.id as number;
    const succeeded = await old('succeeded', 3477, null);
    const lateExact = await old('needs_review', 3477, 'payment succeeded after it was canceled');
    const short = await old('needs_review', 3477, 'paid 1.00 THB but 34.77 THB was due', true);
    const lateOver = await old(
      'needs_review',
      737_690,
      'payment succeeded after it failed; paid 1,000,000.50 THB but 7,376.90 THB was due; receipt #9 was already paid',
      true,
    );
    const unknownAmount = await old('needs_review', 3477, 'paid an unknown amount of THB but 34.77 THB was due', true);
    const canceled = await old('canceled', 3477, null);
    const ids = [succeeded, lateExact, short, lateOver, unknownAmount, canceled];
    await db.pool.query('UPDATE payments SET received_minor = NULL, received_currency = NULL WHERE id = ANY($1)', [
      ids,
    ]);

    await db.pool.query(backfill);
    const rows = await db.prisma.payment.findMany({
      where: { id: { in: ids } },
      orderBy: { id: 'asc' },
      select: { receivedMinor: true, receivedCurrency: true },
    });
    expect(rows).toEqual([
      { receivedMinor: 3477n, receivedCurrency: 'THB' },
      { receivedMinor: 3477n, receivedCurrency: 'THB' },
      { receivedMinor: 100n, receivedCurrency: 'THB' },
      { receivedMinor: 100_000_050n, receivedCurrency: 'THB' },
      { receivedMinor: null, receivedCurrency: null },
      { receivedMinor: null, receivedCurrency: null },
    ]);
  });
});

describe('voiding a receipt that was paid online', () => {
  let app: ReturnType<typeof buildTestApp>;
  beforeAll(() => {
    app = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV });
  });

  /** A researcher who paid their receipt online at the dummy checkout: receipt paid, payment succeeded. */
  async function paidOnline() {
    const researcher = await researcherWithReceipt(app);
    const checkoutPath = await startCheckout(researcher.agent, researcher.receiptId);
    await researcher.agent
      .post(checkoutPath)
      .type('form')
      .send({ choice: 'pay', csrf_token: await csrfTokenOf(researcher.agent) })
      .expect(303);
    const payment = await paymentOf(researcher.receiptId);
    expect(payment.status).toBe('succeeded');
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: researcher.receiptId } })).status).toBe('paid');
    return { ...researcher, payment };
  }

  async function voidReceipt(admin: Agent, receiptId: number, reason = 'billed to the wrong project') {
    return admin
      .post(`/admin/receipts/${receiptId}/void`)
      .type('form')
      .send({ reason, csrf_token: await csrfTokenOf(admin) });
  }

  async function resolve(admin: Agent, paymentId: number, body: Record<string, unknown>) {
    return admin
      .post(`/admin/payments/${paymentId}/resolve`)
      .set('Accept', 'text/html')
      .type('form')
      .send({ ...body, csrf_token: await csrfTokenOf(admin) });
  }

  it('warns the admin before voiding, then holds the payment for a refund decision in the same change', async () => {
    const admin = await signInAdmin(app);
    const { agent, user, receiptId, payment } = await paidOnline();
    const page = await admin.get(`/admin/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(page.text).toContain(`Paid online: payment #${payment.id} via dummy (${payment.externalPaymentId})`);
    expect(page.text).toContain(`holds payment #${payment.id} for review`);
    expect(page.text).toContain(`Void receipt and hold payment #${payment.id}`);
    const before = await adminPaymentsPage(admin);

    const voided = await voidReceipt(admin, receiptId);
    expect(voided.status, voided.text.slice(0, 300)).toBe(303);
    const confirmed = await admin
      .get(voided.headers.location as string)
      .set('Accept', 'text/html')
      .expect(200);
    expect(confirmed.text).toContain(
      `Receipt #${receiptId} voided; its job can be billed again. Payment #${payment.id} is held for review: ` +
        'refund it or apply it elsewhere, then resolve it on the payments page.',
    );

    const reason = `receipt #${receiptId} was voided after it was paid online: refund the payment or apply it elsewhere`;
    expect(await paymentOf(receiptId)).toMatchObject({
      id: payment.id,
      status: 'needs_review',
      reviewReason: reason,
      reviewOutcome: null,
    });
    const audits = await reviewAuditsOf(receiptId);
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ action: 'payment.review', actor: expect.stringMatching(/^payreviewer\d+$/) });
    expect(audits[0]?.details).toMatchObject({ paymentId: payment.id, reason, previousStatus: 'succeeded' });
    const voidAudit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'receipt.void', target: `receipt:${receiptId}` },
    });
    expect(voidAudit.details).toMatchObject({ previousStatus: 'paid', releasedJobs: 1, heldPaymentId: payment.id });

    const after = await adminPaymentsPage(admin);
    expect(after.needsReview).toBe(before.needsReview + 1);
    expect(after.rowOf(payment.id)).toContain(reason);
    const receiptPage = await admin.get(`/admin/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(receiptPage.text).toContain('is held for review');
    expect(receiptPage.text).not.toContain('Paid online: payment');

    // The jobs are billable again: the researcher's next receipt bills them, and can be paid once
    // the held money has been refunded (until then it may already pay for them).
    const nextId = await billJobs(agent);
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: nextId } })).toMatchObject({
      username: user.username,
      status: 'pending',
    });
    const refused = await agent
      .post(`/payments/receipt/${nextId}/start`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({});
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatch(new RegExp(`^A payment of 0\\.50 THB for receipt #${receiptId}, which billed`));

    // The money cannot be kept for the void receipt: only refunded or dismissed close the review.
    const reviewPage = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    const card = reviewPage.text.slice(reviewPage.text.indexOf(`id="review-${payment.id}"`));
    expect(card.slice(0, card.indexOf('</section>'))).toMatch(/value="accepted" required disabled/);
    const accepted = await resolve(admin, payment.id, { outcome: 'accepted', note: 'keep it for the receipt' });
    expect(accepted.status).toBe(409);
    expect(accepted.text).toContain(`Receipt #${receiptId} is void, so payment #${payment.id} cannot be accepted`);
    const refunded = await resolve(admin, payment.id, {
      outcome: 'refunded',
      note: 'Refunded in the provider dashboard.',
    });
    expect(refunded.status).toBe(303);
    expect(await paymentOf(receiptId)).toMatchObject({ status: 'resolved', reviewOutcome: 'refunded' });
    expect((await adminPaymentsPage(admin)).needsReview).toBe(before.needsReview);
    expect(await startCheckout(agent, nextId)).toMatch(/^\/payments\/dummy\/checkout\//);
  });

  it('holds again a held payment that an admin had accepted for the receipt, saying so', async () => {
    const admin = await signInAdmin(app);
    const { receiptId } = await researcherWithReceipt(app).then(async (researcher) => {
      await startCheckout(researcher.agent, researcher.receiptId);
      const started = await paymentOf(researcher.receiptId);
      const event = {
        external_payment_id: started.externalPaymentId,
        amount_cents: Number(started.amountMinor),
        currency: 'THB',
      };
      await deliverDummy(app, { ...event, event_id: `evt-void-c-${started.id}`, event_type: 'payment.canceled' });
      await deliverDummy(app, { ...event, event_id: `evt-void-s-${started.id}`, event_type: 'payment.succeeded' });
      return researcher;
    });
    const held = await paymentOf(receiptId);
    expect(held.status).toBe('needs_review');
    expect(
      (await resolve(admin, held.id, { outcome: 'accepted', note: 'Checked with the provider, accepted.' })).status,
    ).toBe(303);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('paid');
    const page = await admin.get(`/admin/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(page.text).toContain(`Void receipt and hold payment #${held.id}`);

    expect((await voidReceipt(admin, receiptId, 'duplicate of another receipt')).status).toBe(303);
    const stored = await paymentOf(receiptId);
    expect(stored).toMatchObject({ status: 'needs_review', reviewOutcome: null, reviewNote: null, reviewedBy: null });
    expect(stored.reviewReason).toMatch(
      new RegExp(
        `^receipt #${receiptId} was voided after it was paid online: .*; it had been accepted for it by payreviewer\\d+$`,
      ),
    );
  });

  it('leaves a receipt paid by hand as before: voided, jobs released, no payment held', async () => {
    const admin = await signInAdmin(app);
    const { agent, receiptId } = await researcherWithReceipt(app);
    // An online attempt that was canceled, then the receipt paid by bank transfer.
    const checkoutPath = await startCheckout(agent, receiptId);
    await agent
      .post(checkoutPath)
      .type('form')
      .send({ choice: 'cancel', csrf_token: await csrfTokenOf(agent) })
      .expect(303);
    await admin
      .post(`/admin/receipts/${receiptId}/paid`)
      .type('form')
      .send({
        method: 'bank_transfer',
        amount_received: await amountDueOf(db, receiptId),
        tx_ref: 'BT-1',
        csrf_token: await csrfTokenOf(admin),
      })
      .expect(303);
    const page = await admin.get(`/admin/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(page.text).not.toContain('Paid online');
    expect(page.text).toContain('>Void receipt</button>');
    // The browser asks before sending it (public/js/confirm.js): a void cannot be undone, and the
    // money paid by hand is not the app's to return.
    expect(page.text).toMatch(
      new RegExp(
        `<form method="post" action="/admin/receipts/${receiptId}/void" class="form-row" aria-labelledby="void-heading" data-confirm="Void paid receipt #${receiptId} of 0\\.50 THB\\? Its \\d+ jobs? can then be billed again; the 0\\.50 THB paid by hand is for you to return or apply elsewhere\\. This cannot be undone\\." data-submit-once>`,
      ),
    );
    expect(page.text).toContain('<script src="/static/js/confirm.js" defer></script>');
    const before = await adminPaymentsPage(admin);

    expect((await voidReceipt(admin, receiptId)).status).toBe(303);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('void');
    expect((await paymentOf(receiptId)).status).toBe('canceled');
    expect(await reviewAuditsOf(receiptId)).toHaveLength(0);
    const voidAudit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'receipt.void', target: `receipt:${receiptId}` },
    });
    expect(voidAudit.details).not.toHaveProperty('heldPaymentId');
    expect((await adminPaymentsPage(admin)).needsReview).toBe(before.needsReview);
  });

  it('keeps a late success for the voided receipt held once, changing nothing', async () => {
    const admin = await signInAdmin(app);
    const { receiptId, payment } = await paidOnline();
    expect((await voidReceipt(admin, receiptId)).status).toBe(303);
    const held = await paymentOf(receiptId);
    const again = await deliverDummy(app, {
      event_id: `evt-void-late-${payment.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 50,
      currency: 'THB',
    }).expect(200);
    expect(again.body.outcome).toBe('review');
    expect(await paymentOf(receiptId)).toEqual(held);
    expect(await reviewAuditsOf(receiptId)).toHaveLength(1);
  });
});

describe('voiding a receipt while its online checkout is open', () => {
  let app: ReturnType<typeof buildTestApp>;
  beforeAll(() => {
    app = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV });
  });

  /** A researcher whose receipt has an open dummy checkout (payment pending). */
  async function checkoutOpen() {
    const researcher = await researcherWithReceipt(app);
    const checkoutPath = await startCheckout(researcher.agent, researcher.receiptId);
    const payment = await paymentOf(researcher.receiptId);
    expect(payment.status).toBe('pending');
    return { ...researcher, checkoutPath, payment };
  }

  async function voidAsJson(admin: Agent, receiptId: number, reason = 'wrong project code') {
    return admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ reason });
  }

  async function startAsJson(agent: Agent, receiptId: number) {
    return agent
      .post(`/payments/receipt/${receiptId}/start`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({});
  }

  it('warns the admin, cancels the checkout in the void, and holds a success paid there afterwards', async () => {
    const admin = await signInAdmin(app);
    const { agent, receiptId, payment, checkoutPath } = await checkoutOpen();
    const page = await admin.get(`/admin/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(page.text).toContain(`An online checkout is open for this receipt: payment #${payment.id} via dummy`);
    expect(page.text).toContain('Marking this receipt paid or voiding it cancels it');
    expect(page.text).toContain('>Void receipt and cancel its checkout</button>');

    const voided = await voidAsJson(admin, receiptId);
    expect(voided.status, voided.text).toBe(200);
    expect(voided.body.receipt).toMatchObject({
      status: 'void',
      previousStatus: 'pending',
      heldPaymentId: null,
      canceledPaymentIds: [payment.id],
    });
    const reason = `receipt #${receiptId} was voided while this checkout was open`;
    expect(await paymentOf(receiptId)).toMatchObject({ id: payment.id, status: 'canceled', reviewReason: reason });
    const canceledAudit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'payment.cancel', target: `receipt:${receiptId}` },
    });
    expect(canceledAudit.actor).toMatch(/^payreviewer\d+$/);
    expect(canceledAudit.details).toMatchObject({
      paymentId: payment.id,
      provider: 'dummy',
      externalPaymentId: payment.externalPaymentId,
      reason,
    });
    const voidAudit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'receipt.void', target: `receipt:${receiptId}` },
    });
    expect(voidAudit.details).toMatchObject({ previousStatus: 'pending', canceledPaymentIds: [payment.id] });
    expect(voidAudit.details).not.toHaveProperty('heldPaymentId');

    // The checkout left open in the researcher's tab takes no choice any more.
    const paidThere = await agent
      .post(checkoutPath)
      .type('form')
      .send({ choice: 'pay', csrf_token: await csrfTokenOf(agent) });
    expect(paidThere.status).toBe(409);
    expect(paidThere.text).toContain('This payment was canceled');
    // A provider that took the money anyway: held, as any late success of a canceled payment.
    const late = await deliverDummy(app, {
      event_id: `evt-void-open-${payment.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: Number(payment.amountMinor),
      currency: 'THB',
    }).expect(200);
    expect(late.body.outcome).toBe('review');
    expect(await paymentOf(receiptId)).toMatchObject({
      status: 'needs_review',
      reviewReason: `payment succeeded after it was canceled; receipt #${receiptId} was already void`,
      receivedMinor: payment.amountMinor,
    });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('void');
  });

  it('says in the flash that the open checkout was canceled', async () => {
    const admin = await signInAdmin(app);
    const { receiptId, payment } = await checkoutOpen();
    const voided = await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .type('form')
      .send({ reason: 'wrong project code', csrf_token: await csrfTokenOf(admin) });
    expect(voided.status).toBe(303);
    const confirmed = await admin
      .get(voided.headers.location as string)
      .set('Accept', 'text/html')
      .expect(200);
    expect(confirmed.text).toContain(
      `Receipt #${receiptId} voided; its job can be billed again. Its open online checkout (payment #${payment.id}) ` +
        'was canceled; money paid there from now on is held for review on the payments page.',
    );
    expect(confirmed.text).not.toContain('An online checkout is open');
  });

  it('tells the researcher of the held payment on every page, and refuses paying the same jobs again meanwhile', async () => {
    const admin = await signInAdmin(app);
    const { user, agent, receiptId, payment } = await checkoutOpen();
    expect((await voidAsJson(admin, receiptId)).status).toBe(200);
    // The provider took the money at the checkout that was still open.
    await deliverDummy(app, {
      event_id: `evt-void-notice-${payment.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: Number(payment.amountMinor),
      currency: 'THB',
    }).expect(200);

    const voidPage = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(voidPage.text).toContain(
      'A payment of 0.50 THB for this receipt is being checked by the billing team; they will be in touch. ' +
        'Please do not pay again for these jobs meanwhile.',
    );

    // The same job billed again: no Pay button, a start is 409 and creates nothing.
    const sameJobsId = await billJobs(agent);
    const refusal =
      `A payment of 0.50 THB for receipt #${receiptId}, which billed some of these jobs, is being checked by the ` +
      'billing team, so this receipt cannot be paid online until they have decided what that money pays for; ' +
      'they will be in touch.';
    const sameJobsPage = await agent.get(`/me/receipts/${sameJobsId}`).set('Accept', 'text/html').expect(200);
    expect(sameJobsPage.text).toContain(refusal);
    expect(sameJobsPage.text).not.toContain(`action="/payments/receipt/${sameJobsId}/start"`);
    const confirm = await agent.get(`/payments/receipt/${sameJobsId}/start`).set('Accept', 'text/html').expect(200);
    expect(confirm.text).toContain(refusal);
    expect(confirm.text).not.toContain(`action="/payments/receipt/${sameJobsId}/start"`);
    const json = await startAsJson(agent, sameJobsId);
    expect(json.status).toBe(409);
    // Naming the held payment, as the receipt's JSON does, so a script can tell which.
    expect(json.body).toMatchObject({
      error: refusal,
      code: 409,
      heldPayment: { paymentId: payment.id, receiptId, amount: '0.50', currency: 'THB', message: refusal },
    });
    const form = await agent
      .post(`/payments/receipt/${sameJobsId}/start`)
      .set('Accept', 'text/html')
      .type('form')
      .send({ csrf_token: await csrfTokenOf(agent) });
    expect(form.status).toBe(409);
    expect(form.text).toContain(`Payment not started. ${refusal}`);
    expect(await db.prisma.payment.count({ where: { receiptId: sameJobsId } })).toBe(0);

    // Another receipt, of other jobs: it can be paid, and its Pay area names the held payment.
    await buildJobs(db, [
      { user: user.username, end: '2026-02-10T10:00:00Z', totalCpuSec: '7200', stepMemGbHours: '0' },
    ]);
    const otherId = await billJobs(agent, '2026-02-28');
    const notice =
      `A payment of 0.50 THB for <a href="/me/receipts/${receiptId}">receipt #${receiptId}</a> is being checked by ` +
      `the billing team; they will be in touch. Please do not pay again for the jobs of receipt #${receiptId} meanwhile.`;
    const otherPage = await agent.get(`/me/receipts/${otherId}`).set('Accept', 'text/html').expect(200);
    expect(otherPage.text).toContain(notice);
    expect(otherPage.text).toContain(`action="/payments/receipt/${otherId}/start"`);
    const usage = await agent.get('/me').set('Accept', 'text/html').expect(200);
    expect(usage.text).toContain(notice);

    // Once the billing team has refunded it, the notices go and the jobs can be paid.
    const resolved = await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'text/html')
      .type('form')
      .send({ outcome: 'refunded', note: 'Refunded in the provider dashboard.', csrf_token: await csrfTokenOf(admin) });
    expect(resolved.status).toBe(303);
    expect((await agent.get('/me').set('Accept', 'text/html').expect(200)).text).not.toContain('being checked');
    expect((await startAsJson(agent, sameJobsId)).status).toBe(200);
  });

  it('voids nothing and cancels nothing when the void fails midway', async () => {
    const admin = await signInAdmin(app);
    const { receiptId, payment } = await checkoutOpen();
    // The void's own audit entry, written after the cancel, fails.
    await db.pool.query(`
      CREATE FUNCTION fail_void_audit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'audit refused for the test'; END $$`);
    await db.pool.query(`
      CREATE TRIGGER fail_void_audit BEFORE INSERT ON audit_log FOR EACH ROW
      WHEN (NEW.action = 'receipt.void' AND NEW.target = 'receipt:${receiptId}') EXECUTE FUNCTION fail_void_audit()`);
    try {
      expect((await voidAsJson(admin, receiptId)).status).toBe(500);
    } finally {
      await db.pool.query('DROP TRIGGER fail_void_audit ON audit_log');
      await db.pool.query('DROP FUNCTION fail_void_audit()');
    }
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
      status: 'pending',
      voidReason: null,
    });
    expect(await db.prisma.receiptItem.count({ where: { receiptId, isVoided: true } })).toBe(0);
    expect(await paymentOf(receiptId)).toMatchObject({ id: payment.id, status: 'pending', reviewReason: null });
    expect(
      await db.prisma.auditLog.count({ where: { action: 'payment.cancel', target: `receipt:${receiptId}` } }),
    ).toBe(0);
  });

  it('waits for a success being applied, then voids the paid receipt and holds its payment', async () => {
    const admin = await signInAdmin(app);
    const { receiptId, payment } = await checkoutOpen();
    // A webhook's transaction, caught holding the payment's row as it does before it pays the receipt.
    const webhook = new pg.Client({ connectionString: db.url });
    await webhook.connect();
    try {
      await webhook.query('BEGIN');
      await webhook.query('SELECT id FROM payments WHERE id = $1 FOR UPDATE', [payment.id]);
      const voiding = Promise.resolve(voidAsJson(admin, receiptId));
      let waiting = 0;
      for (let attempt = 0; attempt < 250 && waiting === 0; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        const { rows } = await db.pool.query<{ waiting: number }>(
          `SELECT count(*)::int AS waiting FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        );
        waiting = rows[0]?.waiting ?? 0;
      }
      expect(waiting, 'the void never waited for the payment lock').toBe(1);
      await webhook.query('SELECT id FROM receipts WHERE id = $1 FOR NO KEY UPDATE', [receiptId]);
      await webhook.query(
        `UPDATE receipts SET status = 'paid', paid_at = now(), payment_method = 'dummy', tx_ref = $2 WHERE id = $1`,
        [receiptId, payment.externalPaymentId],
      );
      await webhook.query(`UPDATE payments SET status = 'succeeded' WHERE id = $1`, [payment.id]);
      await webhook.query('COMMIT');
      const voided = await voiding;
      expect(voided.status, voided.text).toBe(200);
      expect(voided.body.receipt).toMatchObject({
        previousStatus: 'paid',
        heldPaymentId: payment.id,
        canceledPaymentIds: [],
      });
    } finally {
      await webhook.end();
    }
    expect(await paymentOf(receiptId)).toMatchObject({ status: 'needs_review' });
  });

  it('refuses a start that was under way when the receipt was voided, leaving no payment open', async () => {
    const { agent, receiptId } = await researcherWithReceipt(app);
    // A void's transaction, caught between voiding the receipt and committing.
    const voiding = new pg.Client({ connectionString: db.url });
    await voiding.connect();
    try {
      await voiding.query('BEGIN');
      await voiding.query(
        `UPDATE receipts SET status = 'void', void_reason = 'mid-start', voided_at = now() WHERE id = $1`,
        [receiptId],
      );
      // The start read the receipt as pending; it must wait for the lock and look again.
      const starting = Promise.resolve(startAsJson(agent, receiptId));
      let waiting = 0;
      for (let attempt = 0; attempt < 250 && waiting === 0; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        const { rows } = await db.pool.query<{ waiting: number }>(
          `SELECT count(*)::int AS waiting FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        );
        waiting = rows[0]?.waiting ?? 0;
      }
      expect(waiting, 'the start never waited for the receipt lock').toBe(1);
      await voiding.query('COMMIT');
      const response = await starting;
      expect(response.status, response.text).toBe(409);
      expect(response.body.error).toBe(`Receipt #${receiptId} is void; there is nothing to pay.`);
    } finally {
      await voiding.end();
    }
    expect(await db.prisma.payment.count({ where: { receiptId } })).toBe(0);
  });

  it('voids a receipt without an open checkout as before: an ended attempt is left as it was', async () => {
    const admin = await signInAdmin(app);
    const { receiptId, first } = await researcherWhoCanceledAnAttempt(app);
    const ended = await db.prisma.payment.findUniqueOrThrow({ where: { id: first.id } });
    const page = await admin.get(`/admin/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(page.text).not.toContain('An online checkout is open');
    expect(page.text).toContain('>Void receipt</button>');
    const voided = await voidAsJson(admin, receiptId);
    expect(voided.status).toBe(200);
    expect(voided.body.receipt).toMatchObject({ status: 'void', heldPaymentId: null, canceledPaymentIds: [] });
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: first.id } })).toEqual(ended);
    expect(
      await db.prisma.auditLog.count({ where: { action: 'payment.cancel', target: `receipt:${receiptId}` } }),
    ).toBe(0);
    const voidAudit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'receipt.void', target: `receipt:${receiptId}` },
    });
    expect(voidAudit.details).not.toHaveProperty('canceledPaymentIds');

    const { receiptId: plainId } = await researcherWithReceipt(app);
    const plain = await admin
      .post(`/admin/receipts/${plainId}/void`)
      .type('form')
      .send({ reason: 'duplicate receipt', csrf_token: await csrfTokenOf(admin) });
    const confirmed = await admin
      .get(plain.headers.location as string)
      .set('Accept', 'text/html')
      .expect(200);
    expect(confirmed.text).toContain(`Receipt #${plainId} voided; its job can be billed again.</div>`);
  });
});

describe('paying a receipt again while one of its payments is held for review', () => {
  let app: ReturnType<typeof buildTestApp>;
  beforeAll(() => {
    app = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV });
  });

  it('offers no Pay button and answers a start with 409, creating no payment', async () => {
    const { agent, receiptId } = await researcherWithReceipt(app);
    const checkoutPath = await startCheckout(agent, receiptId);
    const token = await csrfTokenOf(agent);
    await agent.post(checkoutPath).type('form').send({ choice: 'cancel', csrf_token: token }).expect(303);
    const canceled = await paymentOf(receiptId);
    // The provider takes the money anyway, after the cancel.
    await deliverDummy(app, {
      event_id: `evt-late-cancel-${canceled.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: canceled.externalPaymentId,
      amount_cents: Number(canceled.amountMinor),
      currency: canceled.currency,
    }).expect(200);
    expect((await paymentOf(receiptId)).status).toBe('needs_review');

    const thanks = await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(thanks.text).toContain('needs a check by the billing team');
    expect(thanks.text).not.toContain('Try again');
    expect(thanks.text).not.toContain(`action="/payments/receipt/${receiptId}/start"`);
    const receiptPage = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(receiptPage.text).not.toContain(`action="/payments/receipt/${receiptId}/start"`);
    expect(receiptPage.text).toContain('being checked by the billing team');
    const confirm = await agent.get(`/payments/receipt/${receiptId}/start`).set('Accept', 'text/html').expect(200);
    expect(confirm.text).not.toContain(`action="/payments/receipt/${receiptId}/start"`);

    const before = await db.prisma.payment.count({ where: { receiptId } });
    const form = await agent
      .post(`/payments/receipt/${receiptId}/start`)
      .set('Accept', 'text/html')
      .type('form')
      .send({ csrf_token: token });
    expect(form.status).toBe(409);
    expect(form.text).toContain(`<h1>Receipt #${receiptId}</h1>`);
    expect(form.text).toContain('Payment not started. A payment for this receipt is being checked by the billing team');
    const json = await agent
      .post(`/payments/receipt/${receiptId}/start`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({});
    expect(json.status).toBe(409);
    expect(json.body.error).toMatch(/^A payment for this receipt is being checked by the billing team/);
    expect(await db.prisma.payment.count({ where: { receiptId } })).toBe(before);
    expect(await db.prisma.auditLog.count({ where: { action: 'payment.start', target: `receipt:${receiptId}` } })).toBe(
      1,
    );
  });

  it('holds the start also when the held payment is an older attempt than an open one', async () => {
    const { agent, receiptId, first, token, firstPath } = await researcherWhoCanceledAnAttempt(app);
    const secondPath = await startCheckout(agent, receiptId);
    expect(secondPath).not.toBe(firstPath);
    await deliverDummy(app, {
      event_id: `evt-older-${first.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: first.externalPaymentId,
      amount_cents: 50,
      currency: 'THB',
    }).expect(200);
    expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: first.id } })).status).toBe('needs_review');
    const again = await agent
      .post(`/payments/receipt/${receiptId}/start`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({});
    expect(again.status).toBe(409);
    expect(await db.prisma.payment.count({ where: { receiptId } })).toBe(2);
  });

  it('holds a success from a checkout opened before another payment of the receipt was held', async () => {
    const { agent, receiptId, first, token } = await researcherWhoCanceledAnAttempt(app);
    const secondPath = await startCheckout(agent, receiptId);
    const second = await paymentOf(receiptId);
    await deliverDummy(app, {
      event_id: `evt-open-${first.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: first.externalPaymentId,
      amount_cents: 50,
      currency: 'THB',
    }).expect(200);
    // The second checkout was already open at the provider, and the researcher pays there too.
    await agent.post(secondPath).type('form').send({ choice: 'pay', csrf_token: token }).expect(303);
    const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
    expect(receipt).toMatchObject({ status: 'pending', txRef: null });
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: second.id } })).toMatchObject({
      status: 'needs_review',
      reviewReason: `another payment of receipt #${receiptId} is held for review`,
    });
    expect(await reviewAuditsOf(receiptId)).toHaveLength(2);
  });

  it('checks again under the receipt lock, so a hold that lands while a start is under way stops it', async () => {
    const { agent, receiptId, first, token } = await researcherWhoCanceledAnAttempt(app);
    // A webhook's transaction, caught between locking the receipt and committing its hold.
    const webhook = new pg.Client({ connectionString: db.url });
    await webhook.connect();
    try {
      await webhook.query('BEGIN');
      await webhook.query('SELECT id FROM receipts WHERE id = $1 FOR NO KEY UPDATE', [receiptId]);
      await webhook.query(
        `UPDATE payments SET status = 'needs_review', review_reason = 'held mid-start' WHERE id = $1`,
        [first.id],
      );
      // The start's first check cannot see the uncommitted hold; it must wait for the lock.
      const starting = Promise.resolve(
        agent
          .post(`/payments/receipt/${receiptId}/start`)
          .set('Accept', 'application/json')
          .set('X-CSRFToken', token)
          .send({}),
      );
      let waiting = 0;
      for (let attempt = 0; attempt < 250 && waiting === 0; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        const { rows } = await db.pool.query<{ waiting: number }>(
          `SELECT count(*)::int AS waiting FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        );
        waiting = rows[0]?.waiting ?? 0;
      }
      expect(waiting, 'the start never waited for the receipt lock').toBe(1);
      await webhook.query('COMMIT');
      const response = await starting;
      expect(response.status, response.text).toBe(409);
      expect(response.body.error).toMatch(/^A payment for this receipt is being checked by the billing team/);
    } finally {
      await webhook.end();
    }
    expect(await db.prisma.payment.count({ where: { receiptId } })).toBe(1);
  });
});

describe('the amount due and what to do about it, before the items', () => {
  let app: ReturnType<typeof buildTestApp>;
  beforeAll(() => {
    app = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV });
  });

  /** Where `text` first appears in the page, which must have it. */
  function positionIn(page: string, text: string) {
    const position = page.indexOf(text);
    expect(position, `the page has no ${text}`).toBeGreaterThan(-1);
    return position;
  }

  it('shows the total and the Pay button above the items table, to the owner and to an admin', async () => {
    const { user, agent, receiptId } = await researcherWithReceipt(app);
    await buildJobs(
      db,
      ['2026-02-03T10:00:00Z', '2026-02-04T10:00:00Z'].map((end) => ({
        user: user.username,
        end,
        totalCpuSec: '3600',
        stepMemGbHours: '0',
      })),
    );
    const created = await agent
      .post('/me/receipt')
      .type('form')
      .send({ before: '2026-02-28', csrf_token: await csrfTokenOf(agent) });
    const twoJobsId = Number(/^\/me\/receipts\/(\d+)#receipt$/.exec(created.headers.location ?? '')?.[1]);
    expect(twoJobsId).toBeGreaterThan(receiptId);

    const own = (await agent.get(`/me/receipts/${twoJobsId}`).set('Accept', 'text/html').expect(200)).text;
    const ownTable = positionIn(own, '<table');
    expect(positionIn(own, '<dd class="receipt-total"><strong>1.00 THB</strong> for 2 jobs</dd>')).toBeLessThan(
      ownTable,
    );
    expect(positionIn(own, `action="/payments/receipt/${twoJobsId}/start"`)).toBeLessThan(ownTable);
    expect(positionIn(own, 'Pay 1.00 THB online')).toBeLessThan(ownTable);
    // The table still ends with its total.
    expect(
      positionIn(own, '<tfoot><tr><th colspan="7" scope="row">Total (2 jobs)</th><td class="num">1.00 THB</td>'),
    ).toBeGreaterThan(ownTable);

    const admin = await signInAdmin(app);
    const page = (await admin.get(`/admin/receipts/${twoJobsId}`).set('Accept', 'text/html').expect(200)).text;
    const table = positionIn(page, '<table');
    expect(positionIn(page, '<dd class="receipt-total"><strong>1.00 THB</strong> for 2 jobs</dd>')).toBeLessThan(table);
    expect(positionIn(page, '>Mark paid</button>')).toBeLessThan(table);
    expect(positionIn(page, '>Void receipt</button>')).toBeLessThan(table);
  });
});

describe('a receipt of 0.00: nothing to pay online', () => {
  let app: ReturnType<typeof buildTestApp>;
  beforeAll(() => {
    app = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV });
  });

  /** POST start as a form and as JSON: both refused with `message`, and no payment row or audit entry made. */
  async function expectStartRefused(agent: Agent, receiptId: number, message: string) {
    const token = await csrfTokenOf(agent);
    const form = await agent
      .post(`/payments/receipt/${receiptId}/start`)
      .set('Accept', 'text/html')
      .type('form')
      .send({ csrf_token: token });
    expect(form.status).toBe(409);
    // The receipt's own page, where the Pay button was, with the reason: not a bare error page.
    expect(form.text).toContain(`<h1>Receipt #${receiptId}</h1>`);
    expect(form.text).toContain('<a href="/me/receipts">Back to my receipts</a>');
    expect(form.text).toContain(`<div class="alert error no-print" role="alert">Payment not started. ${message}</div>`);
    const json = await agent
      .post(`/payments/receipt/${receiptId}/start`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({});
    expect(json.status).toBe(409);
    expect(json.body).toEqual({ error: message, code: 409 });
    expect(await db.prisma.payment.count({ where: { receiptId } })).toBe(0);
    expect(await db.prisma.auditLog.count({ where: { action: 'payment.start', target: `receipt:${receiptId}` } })).toBe(
      0,
    );
  }

  it('is made as the record of its jobs and settled at once: paid, "no charge", no Pay button, start refused', async () => {
    const { agent, receiptId } = await researcherWithReceipt(app, '0');
    const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
    expect(receipt).toMatchObject({ status: 'paid', paymentMethod: 'no_charge', txRef: null });
    expect(receipt.total.toFixed()).toBe('0');
    expect(receipt.paidAt).not.toBeNull();
    expect(await db.prisma.receiptItem.count({ where: { receiptId } })).toBe(1);
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'receipt.create', target: `receipt:${receiptId}` },
    });
    // Money in the audit log is written to the currency's minor unit, as on the receipt.
    expect(audit.details).toMatchObject({ total: '0.00', currency: 'THB', items: 1, settled: 'no_charge' });

    const page = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('>paid</span>');
    expect(page.text).toContain('· no charge');
    expect(page.text).not.toContain(`action="/payments/receipt/${receiptId}/start"`);
    expect(page.text).not.toContain('online</button>');
    await expectStartRefused(agent, receiptId, `Receipt #${receiptId} is paid; there is nothing to pay.`);
  });

  it('a pending one made before that rule has no Pay button, refuses a start, and an admin can close it by hand', async () => {
    const { agent, receiptId } = await researcherWithReceipt(app, '0');
    // As such a receipt was left by the code before: pending, with nothing to pay.
    await db.prisma.receipt.update({
      where: { id: receiptId },
      data: { status: 'pending', paidAt: null, paymentMethod: null },
    });

    const page = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('This receipt totals 0.00 THB: there is nothing to pay.');
    expect(page.text).not.toContain(`action="/payments/receipt/${receiptId}/start"`);
    const confirm = await agent.get(`/payments/receipt/${receiptId}/start`).set('Accept', 'text/html').expect(200);
    expect(confirm.text).toContain('This receipt totals 0.00 THB; there is nothing to pay.');
    expect(confirm.text).not.toContain(`action="/payments/receipt/${receiptId}/start"`);
    const thanks = await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(thanks.text).not.toContain(`action="/payments/receipt/${receiptId}/start"`);
    await expectStartRefused(agent, receiptId, `Receipt #${receiptId} totals 0.00 THB; there is nothing to pay.`);

    const admin = await signInAdmin(app);
    const adminPage = await admin.get(`/admin/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(adminPage.text).toContain(
      'Mark it paid with the method "other" and an amount received of 0.00 to close it.',
    );
    const marked = await admin
      .post(`/admin/receipts/${receiptId}/paid`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ method: 'other', amount_received: '0.00', tx_ref: 'no charge' });
    expect(marked.status, marked.text).toBe(200);
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
      status: 'paid',
      paymentMethod: 'other',
    });
  });

  it('a receipt with something to pay is still pending with its Pay button', async () => {
    const { agent, receiptId } = await researcherWithReceipt(app, '36');
    const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
    expect(receipt.status).toBe('pending');
    expect(receipt.total.toFixed()).toBe('0.01');
    const page = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('Pay 0.01 THB online');
  });
});

describe('a payment start that never got its checkout (the process died in between)', () => {
  /** A clock the app reads; tests move it past the grace period. */
  const clock = { offsetMs: 0 };
  const now = () => new Date(Date.now() + clock.offsetMs);
  let app: ReturnType<typeof buildTestApp>;
  beforeAll(() => {
    app = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV, now });
  });

  /**
   * What a start leaves when the process dies after saving the payment and before attaching the
   * provider's checkout: a pending payment with no provider id and no checkout URL.
   */
  async function halfStarted(receiptId: number, provider: string, startedAt: Date) {
    const [row] = await db.prisma.$queryRaw<Array<{ id: number }>>`
      INSERT INTO payments (receipt_id, provider, status, amount_minor, currency, idempotency_key, created_at, updated_at)
      VALUES (${receiptId}, ${provider}, 'pending', 50, 'THB', ${`receipt-${receiptId}-${provider}-1`}, ${startedAt}, ${startedAt})
      RETURNING id`;
    return row?.id as number;
  }

  function abandonAuditsOf(receiptId: number) {
    return db.prisma.auditLog.findMany({ where: { action: 'payment.abandon', target: `receipt:${receiptId}` } });
  }

  it('waits during the grace period, then stops waiting, abandons the start and opens a new checkout', async () => {
    clock.offsetMs = 0;
    const { agent, receiptId } = await researcherWithReceipt(app);
    const stuckId = await halfStarted(receiptId, 'dummy', now());
    const token = await csrfTokenOf(agent);
    const start = () => agent.post(`/payments/receipt/${receiptId}/start`).type('form').send({ csrf_token: token });

    // Within the grace period the start may still be under way in another request.
    clock.offsetMs = ABANDONED_START_GRACE_MS - 5_000;
    const early = await start();
    expect(early.status).toBe(303);
    expect(early.headers.location).toBe(`/payments/thanks?rid=${receiptId}`);
    const waiting = await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(waiting.text).toContain('<noscript><meta http-equiv="refresh" content="2"></noscript>');
    expect(await db.prisma.payment.count({ where: { receiptId } })).toBe(1);

    // After it, the status page stops refreshing and offers a new attempt.
    clock.offsetMs = ABANDONED_START_GRACE_MS + 1_000;
    // The page's script sees it too, and loads the page again.
    const state = await agent
      .get(`/payments/receipt/${receiptId}/status`)
      .set('Accept', 'application/json')
      .expect(200);
    expect(state.body).toMatchObject({ paymentStatus: 'pending', isFinal: true });
    const stopped = await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(stopped.text).not.toContain('http-equiv="refresh"');
    expect(stopped.text).toContain('The payment could not be started');
    expect(stopped.text).toContain('Try again');
    expect((await paymentOf(receiptId)).status).toBe('pending');

    const retried = await start();
    expect(retried.status).toBe(303);
    expect(retried.headers.location).toMatch(/^\/payments\/dummy\/checkout\/dummy_\d+_[0-9a-f]{8}$/);
    const payments = await db.prisma.payment.findMany({ where: { receiptId }, orderBy: { id: 'asc' } });
    expect(payments).toHaveLength(2);
    expect(payments[0]).toMatchObject({
      id: stuckId,
      status: 'failed',
      reviewReason: 'start interrupted: no checkout within 60 s, abandoned for a new attempt',
      externalPaymentId: null,
    });
    expect(payments[1]).toMatchObject({
      status: 'pending',
      idempotencyKey: `receipt-${receiptId}-dummy-2`,
      checkoutUrl: retried.headers.location,
    });
    const audits = await abandonAuditsOf(receiptId);
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ status: 'failed', actor: expect.stringMatching(/^payer\d+$/) });
    expect(audits[0]?.details).toMatchObject({ paymentId: stuckId, idempotencyKey: `receipt-${receiptId}-dummy-1` });

    await agent
      .post(retried.headers.location as string)
      .type('form')
      .send({ choice: 'pay', csrf_token: token })
      .expect(303);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('paid');
  });

  it('abandons it once when clicks race, and they all get the same new attempt', async () => {
    clock.offsetMs = 0;
    const { agent, receiptId } = await researcherWithReceipt(app);
    // Started two minutes ago, well past the grace period.
    const stuckId = await halfStarted(receiptId, 'dummy', new Date(now().getTime() - 120_000));
    const token = await csrfTokenOf(agent);
    const clicks = await Promise.all(
      Array.from({ length: 5 }, () =>
        agent.post(`/payments/receipt/${receiptId}/start`).type('form').send({ csrf_token: token }),
      ),
    );
    expect(clicks.map((click) => click.status)).toEqual(Array(5).fill(303));
    const payments = await db.prisma.payment.findMany({ where: { receiptId }, orderBy: { id: 'asc' } });
    expect(payments.map((payment) => [payment.id === stuckId, payment.status, payment.idempotencyKey])).toEqual([
      [true, 'failed', `receipt-${receiptId}-dummy-1`],
      [false, 'pending', `receipt-${receiptId}-dummy-2`],
    ]);
    expect(await abandonAuditsOf(receiptId)).toHaveLength(1);
  });

  /**
   * A start whose provider call hangs until a later click, past the grace period, has abandoned it
   * and opened the next attempt; then its checkout arrives. `expireCheckout` stands for the
   * provider's answer to closing a checkout.
   */
  async function lateCheckoutOfAbandonedStart(expireCheckout: NonNullable<PaymentProvider['expireCheckout']>) {
    clock.offsetMs = 0;
    const config = buildTestConfig(db.url, DUMMY_PAYMENTS_ENV);
    const dummy = buildPaymentProvider(config.payments);
    if (!dummy) throw new Error('no dummy provider');
    // The first start's provider call hangs past the grace period; later ones answer at once.
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let calls = 0;
    const expiring: Array<{ externalPaymentId: string; idempotencyKey: string }> = [];
    const slow: PaymentProvider = {
      ...dummy,
      async startCheckout(request) {
        calls += 1;
        if (calls === 1) await released;
        return dummy.startCheckout(request);
      },
      expireCheckout(externalPaymentId, idempotencyKey) {
        expiring.push({ externalPaymentId, idempotencyKey });
        return expireCheckout(externalPaymentId, idempotencyKey);
      },
    };
    const serviceMetrics = createMetrics();
    const service = createPaymentsService({
      db,
      config: config.payments,
      metrics: serviceMetrics,
      logger: createLogger('silent'),
      now,
      timeZone: config.timeZone,
      provider: slow,
    });
    const { user, receiptId } = await researcherWithReceipt(app);
    const actor = { actor: user.username, ip: null, userAgent: null };
    const first = service.startPayment(user.username, receiptId, actor);
    await vi.waitFor(() => expect(calls).toBe(1));
    clock.offsetMs = ABANDONED_START_GRACE_MS + 1_000;
    const second = await service.startPayment(user.username, receiptId, actor);
    expect(second.redirectUrl).toMatch(/^\/payments\/dummy\/checkout\//);
    expect(expiring).toEqual([]);
    release();
    expect(await first).toEqual({ redirectUrl: `/payments/thanks?rid=${receiptId}` });
    const payments = await db.prisma.payment.findMany({ where: { receiptId }, orderBy: { id: 'asc' } });
    expect(payments.map((payment) => payment.status)).toEqual(['failed', 'pending']);
    // A success for the late checkout finds its payment and is held, never lost as unknown.
    expect(payments[0]?.externalPaymentId).toMatch(/^dummy_\d+_[0-9a-f]{8}$/);
    expect(payments[1]?.checkoutUrl).toBe(second.redirectUrl);
    // Only the late checkout is closed, under its own attempt's key; the newer one stays open.
    expect(expiring).toEqual([
      { externalPaymentId: payments[0]?.externalPaymentId, idempotencyKey: `receipt-${receiptId}-dummy-1-expire` },
    ]);
    const expiries = (outcome: string) =>
      metricValue(serviceMetrics, 'payments_checkout_expire_total', { provider: 'dummy', outcome });
    return { receiptId, payments, expiries };
  }

  it('records a checkout that arrives after its start was abandoned, closes it, and sends the payer to the new attempt', async () => {
    const { payments, expiries } = await lateCheckoutOfAbandonedStart(async () => 'expired');
    expect(await expiries('expired')).toBe(1);
    expect(payments[0]?.reviewReason).toBe('start interrupted: no checkout within 60 s, abandoned for a new attempt');
  });

  it('adds to the abandoned payment why its late checkout may still be open when the provider cannot close it', async () => {
    const { payments, expiries } = await lateCheckoutOfAbandonedStart(() =>
      Promise.reject(new PaymentProviderError('the provider is unreachable')),
    );
    expect(await expiries('failed')).toBe(1);
    expect(payments[0]?.reviewReason).toBe(
      'start interrupted: no checkout within 60 s, abandoned for a new attempt; ' +
        'its checkout could not be expired at dummy (the provider is unreachable)',
    );
    // The newer attempt is untouched.
    expect(payments[1]).toMatchObject({ status: 'pending', reviewReason: null });
  });

  it('does not reuse the abandoned key with Stripe, which may have opened a session for it', async () => {
    const secretKey = 'sk_test_fakekeyforabandon';
    const fake = await startFakeStripe(secretKey);
    try {
      clock.offsetMs = 0;
      const stripeApp = buildTestApp(db, {
        env: {
          PAYMENT_PROVIDER: 'stripe',
          STRIPE_SECRET_KEY: secretKey,
          STRIPE_WEBHOOK_SECRET: 'whsec_abandon',
          STRIPE_API_URL: fake.url,
        },
        now,
      });
      // 10.00 THB: Stripe's minimum in THB.
      const { agent, receiptId } = await researcherWithReceipt(stripeApp, '72000');
      // The dead process got as far as Stripe: a session exists for attempt 1's key.
      const orphan = await createStripeProvider({
        secretKey,
        webhookSecret: 'whsec_abandon',
        toleranceSec: 300,
        apiUrl: fake.url,
      }).startCheckout({
        paymentId: 0,
        receiptId,
        amountMinor: 1000n,
        currency: 'THB',
        idempotencyKey: `receipt-${receiptId}-stripe-1`,
        description: `HPC usage, receipt #${receiptId}`,
        successUrl: 'http://billing.test/payments/thanks',
        cancelUrl: 'http://billing.test/me/receipts',
      });
      await halfStarted(receiptId, 'stripe', now());
      clock.offsetMs = ABANDONED_START_GRACE_MS;
      const checkoutUrl = await startCheckout(agent, receiptId);
      expect(fake.requests.at(-1)?.idempotencyKey).toBe(`receipt-${receiptId}-stripe-2`);
      expect(checkoutUrl).toMatch(/^https:\/\/checkout\.stripe\.com\/c\/pay\/cs_test_fake\d+$/);
      expect(checkoutUrl).not.toBe(orphan.checkoutUrl);
      const latest = await paymentOf(receiptId);
      expect(latest).toMatchObject({ status: 'pending', idempotencyKey: `receipt-${receiptId}-stripe-2` });
      expect(latest.externalPaymentId).not.toBe(orphan.externalPaymentId);
    } finally {
      await fake.close();
    }
  });
});

describe('paying with Stripe Checkout (SDK against a local fake of the API)', () => {
  const secretKey = 'sk_test_fakekeyfortests';
  const webhookSecret = 'whsec_testsecretfortests';
  let fake: FakeStripe;
  beforeAll(async () => {
    fake = await startFakeStripe(secretKey);
  });
  afterAll(() => fake?.close());

  it('redirects to Stripe, then a signed checkout.session.completed marks the receipt paid', async () => {
    const app = buildTestApp(db, {
      env: {
        PAYMENT_PROVIDER: 'stripe',
        STRIPE_SECRET_KEY: secretKey,
        STRIPE_WEBHOOK_SECRET: webhookSecret,
        STRIPE_API_URL: fake.url,
      },
    });
    // 10.00 THB: Stripe's minimum in THB.
    const { agent, receiptId } = await researcherWithReceipt(app, '72000');
    const checkoutUrl = await startCheckout(agent, receiptId);
    expect(checkoutUrl).toMatch(/^https:\/\/checkout\.stripe\.com\/c\/pay\/cs_test_fake\d+$/);
    const page = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html');
    // The Pay form redirects to Stripe: the CSP must let a form go there.
    expect(page.headers['content-security-policy']).toContain("form-action 'self' https://checkout.stripe.com");
    expect(fake.requests.at(-1)?.idempotencyKey).toBe(`receipt-${receiptId}-stripe-1`);
    const payment = await paymentOf(receiptId);

    const signer = new Stripe(secretKey);
    const payload = JSON.stringify(
      buildStripeEvent(
        'checkout.session.completed',
        { id: payment.externalPaymentId, amount_total: 1000, currency: 'thb', payment_status: 'paid' },
        `evt_stripe_${receiptId}`,
      ),
    );
    const stale = signer.webhooks.generateTestHeaderString({
      payload,
      secret: webhookSecret,
      timestamp: Math.floor(Date.now() / 1000) - 3600,
    });
    const refused = await request(app)
      .post('/payments/webhook/stripe')
      .set('Content-Type', 'application/json')
      .set('Stripe-Signature', stale)
      .send(payload)
      .expect(400);
    expect(refused.body).toEqual({
      error: 'Webhook rejected: the Stripe-Signature timestamp is more than 300 s from now.',
      code: 400,
    });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');

    const header = signer.webhooks.generateTestHeaderString({ payload, secret: webhookSecret });
    const delivered = await request(app)
      .post('/payments/webhook')
      .set('Content-Type', 'application/json')
      .set('Stripe-Signature', header)
      .send(payload)
      .expect(200);
    expect(delivered.body).toEqual({ received: true, outcome: 'ok' });
    const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
    expect(receipt).toMatchObject({ status: 'paid', paymentMethod: 'stripe', txRef: payment.externalPaymentId });
  });
});

describe('amounts in review reasons', () => {
  it.each([
    [737_690n, 'THB', '7,376.90 THB'],
    [100n, 'THB', '1.00 THB'],
    [5n, 'THB', '0.05 THB'],
    [1_234_567n, 'JPY', '1,234,567 JPY'],
    [1_234n, 'KWD', '1.234 KWD'],
    [0n, 'USD', '0.00 USD'],
    [null, 'THB', 'an unknown amount of THB'],
    [100n, null, '100 minor units of an unknown currency'],
    [100n, 'th', '100 minor units of "th"'],
  ])('writes %s minor units of %s as %s', (amountMinor, currency, text) => {
    expect(describeMinorUnits(amountMinor, currency)).toBe(text);
  });
});
