import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, type Metrics } from '../../src/modules/metrics/metrics.js';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { DUMMY_PAYMENTS_ENV, deliverDummy } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { billJobs, voidAndBillAgain } from '../support/receipt-steps.js';
import { type Agent, csrfTokenOf, signInAs, signInNewAdmin } from '../support/sign-in.js';
import { buildTestApp, metricValue } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/*
 * A receipt voided while its checkout was open, paid there anyway, has its money held; its jobs
 * are billed again on a new receipt. A checkout of the new receipt opened before that hold passed
 * the start's check, and its success must not pay the same jobs a second time (docs/payments.md,
 * "Starting a payment").
 */

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
});
afterAll(() => db?.drop());

type App = ReturnType<typeof buildTestApp>;

function buildApp(): { app: App; metrics: Metrics } {
  const metrics = createMetrics();
  return { app: buildTestApp(db, { env: DUMMY_PAYMENTS_ENV, metrics }), metrics };
}

let counter = 0;
/** A signed-in researcher with two January jobs of 1 CPU hour each (0.50 THB apiece), not yet billed. */
async function researcherWithJobs(app: App) {
  counter += 1;
  const user = await buildUser(db.prisma, { username: `samejobs${counter}` });
  await buildJobs(db, [
    { user: user.username, end: '2026-01-10T10:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' },
    { user: user.username, end: '2026-01-11T10:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' },
  ]);
  return { user, agent: await signInAs(app, user.username, user.password) };
}

async function signInAdmin(app: App) {
  counter += 1;
  return signInNewAdmin(app, db, `samejobsadmin${counter}`);
}

/** Opens the dummy checkout of the receipt: its payment, pending. */
async function openCheckout(agent: Agent, receiptId: number) {
  const response = await agent
    .post(`/payments/receipt/${receiptId}/start`)
    .type('form')
    .send({ csrf_token: await csrfTokenOf(agent) });
  expect(response.status, response.text.slice(0, 200)).toBe(303);
  const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId }, orderBy: { id: 'desc' } });
  expect(payment.status).toBe('pending');
  return payment;
}

/** The provider's signed success for the payment, with the amount due. */
function succeed(app: App, payment: { externalPaymentId: string | null; amountMinor: bigint }, eventId: string) {
  return deliverDummy(app, {
    event_id: eventId,
    event_type: 'payment.succeeded',
    external_payment_id: payment.externalPaymentId,
    amount_cents: Number(payment.amountMinor),
    currency: 'THB',
  });
}

function reviewAuditsOf(receiptId: number) {
  return db.prisma.auditLog.findMany({
    where: { action: { in: ['payment.review', 'payment.mismatch'] }, target: `receipt:${receiptId}` },
  });
}

const payment = (id: number) => db.prisma.payment.findUniqueOrThrow({ where: { id } });
const receipt = (id: number) => db.prisma.receipt.findUniqueOrThrow({ where: { id } });

describe("a success for a receipt whose jobs another receipt's held payment billed", () => {
  it('holds it for review naming the other payment, once, and the researcher is told on every page', async () => {
    const { app, metrics } = buildApp();
    const admin = await signInAdmin(app);
    const { agent } = await researcherWithJobs(app);
    const receiptA = await billJobs(agent);
    const paymentA = await openCheckout(agent, receiptA);
    // The same two jobs billed again, and B's checkout opened while nothing was held yet.
    const receiptB = await voidAndBillAgain(admin, agent, receiptA);
    const paymentB = await openCheckout(agent, receiptB);
    // The researcher pays in A's tab left open: the provider's success is held (A is void).
    expect((await succeed(app, paymentA, `evt-a-${paymentA.id}`).expect(200)).body.outcome).toBe('review');
    const heldA = await payment(paymentA.id);
    expect(heldA.status).toBe('needs_review');

    const eventB = `evt-b-${paymentB.id}`;
    const answer = await succeed(app, paymentB, eventB).expect(200);
    expect(answer.body.outcome).toBe('review');

    const reason =
      `receipt #${receiptA}, which billed 2 of the same jobs, has payment #${paymentA.id} held for review; ` +
      'an admin decides which pays them';
    expect(await payment(paymentB.id)).toMatchObject({
      status: 'needs_review',
      reviewReason: reason,
      hasAmountMismatch: false,
      receivedMinor: 100n,
      receivedCurrency: 'THB',
    });
    expect(await receipt(receiptB)).toMatchObject({
      status: 'pending',
      paidAt: null,
      paymentMethod: null,
      txRef: null,
    });
    expect(await payment(paymentA.id)).toEqual(heldA);
    const auditsB = await reviewAuditsOf(receiptB);
    expect(auditsB).toHaveLength(1);
    expect(auditsB[0]).toMatchObject({
      action: 'payment.review',
      actor: 'provider:dummy',
      status: 'failed',
      details: { paymentId: paymentB.id, eventId: eventB, reason, receivedMinor: '100', receivedCurrency: 'THB' },
    });
    expect(await reviewAuditsOf(receiptA)).toHaveLength(1);
    expect(
      await db.prisma.auditLog.count({ where: { action: 'receipt.paid_online', target: `receipt:${receiptB}` } }),
    ).toBe(0);
    const succeededReview = { provider: 'dummy', event: 'payment.succeeded', outcome: 'review' };
    expect(await metricValue(metrics, 'payments_webhook_events_total', succeededReview)).toBe(2);
    expect(await metricValue(metrics, 'billing_receipt_marked_paid_total', { actor_type: 'provider' })).toBe(0);

    // A replay is a duplicate; another success for the held payment changes nothing either.
    expect((await succeed(app, paymentB, eventB).expect(200)).body.outcome).toBe('duplicate');
    expect((await succeed(app, paymentB, `${eventB}-again`).expect(200)).body.outcome).toBe('review');
    const heldB = await payment(paymentB.id);
    expect(heldB).toMatchObject({ status: 'needs_review', reviewReason: reason });
    expect(await receipt(receiptB)).toMatchObject({ status: 'pending', txRef: null });
    expect(await reviewAuditsOf(receiptB)).toHaveLength(1);
    expect(await payment(paymentA.id)).toEqual(heldA);
    expect(await metricValue(metrics, 'payments_webhook_events_total', succeededReview)).toBe(3);
    expect(
      await metricValue(metrics, 'payments_webhook_events_total', { ...succeededReview, outcome: 'duplicate' }),
    ).toBe(1);

    // The researcher is told of B's held money, and B offers no Pay button.
    const pageB = await agent.get(`/me/receipts/${receiptB}`).set('Accept', 'text/html').expect(200);
    expect(pageB.text).toContain(
      'A payment of 1.00 THB for this receipt is being checked by the billing team; they will be in touch. ' +
        'Please do not pay again for these jobs meanwhile: this receipt cannot be paid online until they have decided.',
    );
    expect(pageB.text).not.toContain(`action="/payments/receipt/${receiptB}/start"`);
    const thanks = await agent.get(`/payments/thanks?rid=${receiptB}`).set('Accept', 'text/html').expect(200);
    expect(thanks.text).toContain('Your payment arrived but needs a check by the billing team');
    expect(thanks.text).not.toContain(`action="/payments/receipt/${receiptB}/start"`);
    const me = await agent.get('/me').set('Accept', 'text/html').expect(200);
    for (const held of [receiptA, receiptB]) {
      expect(me.text).toContain(
        `A payment of 1.00 THB for <a href="/me/receipts/${held}">receipt #${held}</a> is being checked by the ` +
          `billing team; they will be in touch. Please do not pay again for the jobs of receipt #${held} meanwhile.`,
      );
    }
    const start = await agent
      .post(`/payments/receipt/${receiptB}/start`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({});
    expect(start.status).toBe(409);
    expect(await db.prisma.payment.count({ where: { receiptId: receiptB } })).toBe(1);
  });

  it('pays the receipt as before when the held payment is for a receipt with none of its jobs', async () => {
    const { app, metrics } = buildApp();
    const admin = await signInAdmin(app);
    const { user, agent } = await researcherWithJobs(app);
    const receiptA = await billJobs(agent);
    const paymentA = await openCheckout(agent, receiptA);
    // A's jobs are billed again on a receipt left unpaid; B bills only a February job.
    await voidAndBillAgain(admin, agent, receiptA);
    await buildJobs(db, [
      { user: user.username, end: '2026-02-10T10:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' },
    ]);
    const receiptB = await billJobs(agent, '2026-02-28');
    const paymentB = await openCheckout(agent, receiptB);
    expect((await succeed(app, paymentA, `evt-a-${paymentA.id}`).expect(200)).body.outcome).toBe('review');

    expect((await succeed(app, paymentB, `evt-b-${paymentB.id}`).expect(200)).body.outcome).toBe('ok');
    expect(await receipt(receiptB)).toMatchObject({
      status: 'paid',
      paymentMethod: 'dummy',
      txRef: paymentB.externalPaymentId,
    });
    expect(await payment(paymentB.id)).toMatchObject({ status: 'succeeded', reviewReason: null });
    expect(await reviewAuditsOf(receiptB)).toHaveLength(0);
    expect((await payment(paymentA.id)).status).toBe('needs_review');
    expect(
      await metricValue(metrics, 'payments_webhook_events_total', {
        provider: 'dummy',
        event: 'payment.succeeded',
        outcome: 'ok',
      }),
    ).toBe(1);
  });
});
