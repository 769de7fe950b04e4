import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, type Metrics } from '../../src/modules/metrics/metrics.js';
import { createPayingResearchers, deliverDummy, setUpDummyPayments } from '../support/dummy-payments.js';
import { buildStripeChargeRefunded, buildStripeCheckoutPaid } from '../support/fake-stripe.js';
import { csrfTokenOf, signInNewAdmin } from '../support/sign-in.js';
import { paidAtStripeVoidedAndResolved, useStripeApp } from '../support/stripe-webhooks.js';
import { type buildTestApp, metricValue } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let metrics: Metrics;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  metrics = createMetrics();
  ({ db, app } = await setUpDummyPayments({ metrics }));
});
afterAll(() => db?.drop());

const payers = createPayingResearchers(() => ({ db, app }), 'refunded');
const { researcherWithReceipt, startCheckout, latestPaymentOf, paidOnline, paidShortAndAccepted } = payers;

let eventCounter = 0;
/** The dummy provider's refund event: amount_cents is what it has refunded of the payment so far. */
function refundEvent(externalPaymentId: string | null, amountCents: number, currency = 'THB', eventId?: string) {
  eventCounter += 1;
  return {
    event_id: eventId ?? `dummy_refund_${eventCounter}`,
    event_type: 'payment.refunded',
    external_payment_id: externalPaymentId,
    amount_cents: amountCents,
    currency,
  };
}

/** Every row a refund may touch, to check that a refused or repeated one touched nothing. */
async function snapshotOf(receiptId: number) {
  return {
    receipt: await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } }),
    payments: await db.prisma.payment.findMany({ where: { receiptId }, orderBy: { id: 'asc' } }),
    items: await db.prisma.receiptItem.findMany({ where: { receiptId }, orderBy: { id: 'asc' } }),
    audits: await db.prisma.auditLog.findMany({ where: { target: `receipt:${receiptId}` }, orderBy: { id: 'asc' } }),
    events: await db.prisma.paymentEvent.count(),
  };
}

/**
 * A refused claim changes no money: everything as `before`, but for the one `payment.claim_refused`
 * audit entry that lists it for finance on /admin/payments (refused-claims.test.ts).
 */
async function expectOnlyRefusalRecorded(receiptId: number, before: Awaited<ReturnType<typeof snapshotOf>>) {
  const after = await snapshotOf(receiptId);
  expect({ ...after, audits: after.audits.slice(0, before.audits.length) }).toEqual(before);
  expect(after.audits.slice(before.audits.length).map((entry) => entry.action)).toEqual(['payment.claim_refused']);
}

let adminCounter = 0;
async function signInAdmin() {
  adminCounter += 1;
  const username = `refundreviewer${adminCounter}`;
  return signInNewAdmin(app, db, username);
}

const refundMetric = (outcome: string, provider = 'dummy', on = metrics) =>
  metricValue(on, 'payments_webhook_events_total', { provider, event: 'payment.refunded', outcome });

describe('a refund in full of the payment that paid a receipt', () => {
  it('unpays the receipt (its jobs stay on it), records the refund on the payment and audits it, in one change', async () => {
    const { agent, receiptId, payment } = await paidOnline();
    const before = await snapshotOf(receiptId);
    const okBefore = await refundMetric('ok');

    const answer = await deliverDummy(app, refundEvent(payment.externalPaymentId, 1000, 'THB', 'refund_full_1'));
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toEqual({ received: true, outcome: 'ok' });

    const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
    expect(receipt).toMatchObject({ status: 'pending', paidAt: null, paymentMethod: null, txRef: null });
    // Its jobs stay billed on it: nothing is billed twice, and the researcher pays this receipt again.
    expect(await db.prisma.receiptItem.findMany({ where: { receiptId }, orderBy: { id: 'asc' } })).toEqual(
      before.items,
    );
    const refunded = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(refunded).toMatchObject({
      status: 'resolved',
      reviewOutcome: 'refunded',
      reviewedBy: 'provider:dummy',
      refundedMinor: 1000n,
      refundedCurrency: 'THB',
      holdsPaidReceipt: false,
      reviewReason: `refunded in full at dummy (10.00 THB); receipt #${receiptId} is unpaid again`,
    });
    expect(refunded.refundedAt).toBeInstanceOf(Date);
    const audits = await db.prisma.auditLog.findMany({
      where: { action: 'payment.refund', target: `receipt:${receiptId}` },
    });
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ actor: 'provider:dummy', status: 'ok' });
    expect(audits[0]?.details).toMatchObject({
      paymentId: payment.id,
      eventId: 'refund_full_1',
      amountMinor: '1000',
      currency: 'THB',
      refundedTotalMinor: '1000',
      receipt: 'unpaid',
    });
    expect(await refundMetric('ok')).toBe(okBefore + 1);

    // The researcher is told why the receipt asks to be paid again, and can pay it.
    const page = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(page.text).toContain(`Payment #${payment.id} of 10.00 THB via dummy was refunded in full on`);
    expect(page.text).toContain('so this receipt is unpaid again and its jobs are still on it.');
    expect(page.text).toContain('Pay 10.00 THB online');
    const json = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'application/json').expect(200);
    expect(json.body.receipt).toMatchObject({
      status: 'pending',
      paidAt: null,
      received: null,
      refunds: [{ paymentId: payment.id, amount: '10.00', currency: 'THB', isFull: true }],
    });
    const thanks = await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(thanks.text).toContain('Your earlier payment was refunded to you, so this receipt is still to be paid.');
    const again = await startCheckout(agent, receiptId);
    expect(again).toMatch(/^\/payments\/dummy\/checkout\//);
    // A new attempt, with its own key: the refunded payment ended.
    expect((await latestPaymentOf(receiptId)).idempotencyKey).toBe(`receipt-${receiptId}-dummy-2`);

    // The admin's payments page shows what went back.
    const admin = await signInAdmin();
    const list = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(list.text).toContain('<td data-label="Refunded" class="num"><span>10.00 THB (');
    const billing = await admin.get(`/admin/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(billing.text).toContain(`Payment #${payment.id} of 10.00 THB via dummy was refunded in full on`);
  });

  it('a replay of the refund event changes nothing and answers as a duplicate', async () => {
    const { receiptId, payment } = await paidOnline();
    const event = refundEvent(payment.externalPaymentId, 1000, 'THB', 'refund_replayed');
    await deliverDummy(app, event).expect(200);
    const after = await snapshotOf(receiptId);
    const replays = await Promise.all([deliverDummy(app, event), deliverDummy(app, event)]);
    for (const replay of replays) expect(replay.body).toEqual({ received: true, outcome: 'duplicate' });
    expect(await snapshotOf(receiptId)).toEqual(after);
  });
});

describe('a partial refund of the payment that paid a receipt', () => {
  it('keeps the receipt paid and holds the payment, with the refunded amount, for an admin to resolve', async () => {
    const { agent, receiptId, payment } = await paidOnline();
    const answer = await deliverDummy(app, refundEvent(payment.externalPaymentId, 300, 'THB', 'refund_part_1'));
    expect(answer.body).toEqual({ received: true, outcome: 'review' });

    const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
    expect(receipt).toMatchObject({ status: 'paid', paymentMethod: 'dummy', txRef: payment.externalPaymentId });
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(held).toMatchObject({
      status: 'needs_review',
      holdsPaidReceipt: true,
      refundedMinor: 300n,
      refundedCurrency: 'THB',
      reviewReason: `3.00 THB of the 10.00 THB received was refunded at dummy; receipt #${receiptId} stays paid until this is resolved`,
    });
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'payment.refund', target: `receipt:${receiptId}` },
    });
    expect(audit.details).toMatchObject({ amountMinor: '300', currency: 'THB', receipt: 'stays_paid' });

    // A second refund adds to the first: the provider says what it has refunded so far.
    await deliverDummy(app, refundEvent(payment.externalPaymentId, 500, 'THB', 'refund_part_2')).expect(200);
    const twice = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(twice).toMatchObject({ status: 'needs_review', refundedMinor: 500n });
    const second = await db.prisma.auditLog.findMany({
      where: { action: 'payment.refund', target: `receipt:${receiptId}` },
      orderBy: { id: 'asc' },
    });
    expect(second.map((entry) => (entry.details as { amountMinor: string }).amountMinor)).toEqual(['300', '200']);
    // An earlier refund's event arriving late adds nothing.
    const late = await deliverDummy(app, refundEvent(payment.externalPaymentId, 300, 'THB', 'refund_part_late'));
    expect(late.body).toEqual({ received: true, outcome: 'ignored' });
    expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).refundedMinor).toBe(500n);

    // The receipt still counts as paid from this payment: the researcher's page and JSON say what went back.
    const page = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(page.text).toContain(`5.00 THB of payment #${payment.id} (10.00 THB via dummy) was refunded on`);
    const json = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'application/json').expect(200);
    expect(json.body.receipt).toMatchObject({
      status: 'paid',
      received: { amount: '10.00', currency: 'THB', paymentId: payment.id },
      refunds: [{ paymentId: payment.id, amount: '5.00', currency: 'THB', isFull: false }],
    });

    // Held on /admin/payments with what went back; only "accepted" keeps the paid receipt paid.
    const admin = await signInAdmin();
    const list = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(list.text).toContain(`<section class="card review" id="review-${payment.id}">`);
    expect(list.text).toContain('<strong class="received-different">5.00 THB refunded</strong>');
    expect(list.text).toContain(`Accepted: receipt #${receiptId} stays paid from what is left of this payment`);
    const paidCsv = await admin.get('/admin/paid.csv?start=2000-01-01&end=2100-12-31').expect(200);
    // Still paid, with what went back beside what arrived.
    const line = paidCsv.text.split('\n').find((row) => row.startsWith(`${receiptId},`));
    expect(line).toMatch(new RegExp(`,10\\.00,THB,${payment.id},\\d{4}-\\d{2}-\\d{2},5\\.00,,,,,$`));
    expect(paidCsv.text.split('\n')[0]).toMatch(
      /,paid_on,amount_refunded,voided_at,void_reason,amount_disputed,disputed_at,amount_disputed_lost$/,
    );
    // The billing page's paid card counts what stayed.
    const billingPage = await admin.get('/admin/receipts').set('Accept', 'text/html').expect(200);
    expect(billingPage.text).toMatch(/received, net of refunds and lost disputes: [\d,]+\.\d{2} THB/);
    const resolve = async (outcome: string) =>
      admin
        .post(`/admin/payments/${payment.id}/resolve`)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(admin))
        .send({ outcome, note: 'Partial refund agreed with the lab as a discount.' });
    const refused = await resolve('dismissed');
    expect(refused.status).toBe(409);
    expect(refused.body.error).toBe(
      `Payment #${payment.id} still pays receipt #${receiptId}, of which part was refunded. Accept it to keep the receipt paid from the rest, or void the receipt on the billing page first; nothing was changed.`,
    );
    const markedBefore = await metricValue(metrics, 'billing_receipt_marked_paid_total', { actor_type: 'admin' });
    const accepted = await resolve('accepted');
    expect(accepted.status, accepted.text).toBe(200);
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'resolved',
      reviewOutcome: 'accepted',
      holdsPaidReceipt: false,
    });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('paid');
    // It was paid already: not counted as marked paid again.
    expect(await metricValue(metrics, 'billing_receipt_marked_paid_total', { actor_type: 'admin' })).toBe(markedBefore);

    // The rest refunded later: nothing is left, and the receipt is unpaid again.
    await deliverDummy(app, refundEvent(payment.externalPaymentId, 1000, 'THB', 'refund_part_rest')).expect(200);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'resolved',
      reviewOutcome: 'refunded',
      refundedMinor: 1000n,
    });
  });
});

describe('voiding a receipt whose partly refunded payment is held', () => {
  it('holds the payment as any void of a paid receipt does, and the admin then resolves what is left', async () => {
    const { receiptId, payment } = await paidOnline();
    await deliverDummy(app, refundEvent(payment.externalPaymentId, 400)).expect(200);
    const admin = await signInAdmin();
    const voided = await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ reason: 'billed twice by mistake' });
    expect(voided.status, voided.text).toBe(200);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('void');
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'needs_review',
      holdsPaidReceipt: false,
      refundedMinor: 400n,
    });
    const resolved = await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'refunded', note: 'Refunded the remaining 6.00 THB in the dashboard.' });
    expect(resolved.status, resolved.text).toBe(200);
  });
});

// A refund reported after finance had closed the payment's review as handled otherwise (the money
// applied to another receipt marked paid by hand, or settled outside the app) was recorded and
// answered `ok`: the payment stayed resolved, nothing asked for attention, and the receipt it was
// applied to stayed paid from money the payer had got back.
describe('a refund of a payment whose review an admin resolved', () => {
  async function resolvedAfterVoid(outcome: 'refunded' | 'dismissed', note: string) {
    const paid = await paidOnline();
    const admin = await signInAdmin();
    await admin
      .post(`/admin/receipts/${paid.receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ reason: 'billed to the wrong project' })
      .expect(200);
    const resolved = await admin
      .post(`/admin/payments/${paid.payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome, note });
    expect(resolved.status, resolved.text).toBe(200);
    return { ...paid, admin };
  }

  it('as dismissed: holds the payment for review again, naming the refund and the decision it follows', async () => {
    const { receiptId, payment, admin } = await resolvedAfterVoid('dismissed', 'Applied to receipt #1 by hand.');
    const { reviewedBy } = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    const reviewBefore = await refundMetric('review');

    const answer = await deliverDummy(app, refundEvent(payment.externalPaymentId, 1000));
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toEqual({ received: true, outcome: 'review' });
    expect(await refundMetric('review')).toBe(reviewBefore + 1);
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(held).toMatchObject({
      status: 'needs_review',
      holdsPaidReceipt: false,
      reviewOutcome: null,
      reviewedBy: null,
      refundedMinor: 1000n,
    });
    expect(held.reviewReason).toContain(
      `10.00 THB of the 10.00 THB received was refunded at dummy, after this payment was resolved as dismissed by ${reviewedBy} on `,
    );
    expect(held.reviewReason).toContain(
      '("Applied to receipt #1 by hand."): the payer got back money that was settled',
    );
    expect(held.reviewReason).toContain(
      `before it was resolved it was held for review: receipt #${receiptId} was voided after it was paid online`,
    );
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'payment.refund', target: `receipt:${receiptId}` },
    });
    expect(audit.details).toMatchObject({ paymentId: payment.id, previousOutcome: 'dismissed', receipt: 'none' });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('void');
    const page = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain(`id="review-${payment.id}"`);
  });

  it('as refunded: the refund is what the admin said was done, so it stays resolved', async () => {
    const { payment } = await resolvedAfterVoid('refunded', 'Refunded in the dummy dashboard.');
    const answer = await deliverDummy(app, refundEvent(payment.externalPaymentId, 1000));
    expect(answer.body).toEqual({ received: true, outcome: 'ok' });
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'resolved',
      reviewOutcome: 'refunded',
      refundedMinor: 1000n,
    });
  });
});

// A refund in full of a payment an admin had accepted (paid short) unpaid its receipt and resolved it
// as refunded by the provider, writing over the acceptance: its note and the shortfall it settled
// were gone from /admin/payments, and the audit entry did not say a decision was undone.
describe('a refund in full of a payment an admin accepted', () => {
  it('unpays the receipt and keeps the acceptance it undoes in the reason and the audit entry', async () => {
    const admin = await signInAdmin();
    const { receiptId, payment } = await paidShortAndAccepted(admin, 800);
    const { reviewedBy } = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    const answer = await deliverDummy(app, refundEvent(payment.externalPaymentId, 800));
    expect(answer.body).toEqual({ received: true, outcome: 'ok' });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
    const refunded = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(refunded).toMatchObject({ status: 'resolved', reviewOutcome: 'refunded', reviewedBy: 'provider:dummy' });
    expect(refunded.reviewReason).toContain(
      `refunded in full at dummy (8.00 THB); receipt #${receiptId} is unpaid again; it had been resolved as accepted by ${reviewedBy} on `,
    );
    expect(refunded.reviewReason).toContain(
      '("the payer is charged the rest next month"), after it was held for review: paid 8.00 THB but 10.00 THB was due',
    );
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'payment.refund', target: `receipt:${receiptId}` },
    });
    expect(audit.details).toMatchObject({ receipt: 'unpaid', previousOutcome: 'accepted' });
  });
});

describe('a refund that does not fit the payment is refused and changes nothing', () => {
  it.each([
    [
      'more than the payment received',
      (externalPaymentId: string | null) => refundEvent(externalPaymentId, 1001),
      (paymentId: number) =>
        `Webhook rejected: the refund of payment #${paymentId} (10.01 THB in all) is more than the 10.00 THB it received; nothing was changed.`,
    ],
    [
      'in another currency',
      (externalPaymentId: string | null) => refundEvent(externalPaymentId, 500, 'USD'),
      (paymentId: number) =>
        `Webhook rejected: the refund of payment #${paymentId} is in USD (5.00 USD), but the payment received 10.00 THB; nothing was changed.`,
    ],
  ])('a refund %s', async (_label, eventOf, messageOf) => {
    const { receiptId, payment } = await paidOnline();
    const before = await snapshotOf(receiptId);
    const errorsBefore = await refundMetric('error');
    const answer = await deliverDummy(app, eventOf(payment.externalPaymentId));
    expect(answer.status).toBe(409);
    expect(answer.body).toEqual({ error: messageOf(payment.id), code: 409 });
    await expectOnlyRefusalRecorded(receiptId, before);
    expect(await refundMetric('error')).toBe(errorsBefore + 1);
  });
});

describe('another event sent under an event id already received', () => {
  it('is refused 409 with what the id was first received as, not answered duplicate, and changes nothing', async () => {
    const { receiptId, payment } = await paidOnline();
    const first = await deliverDummy(
      app,
      refundEvent(payment.externalPaymentId, 300, 'THB', `refund_reused_${receiptId}`),
    );
    expect(first.body).toEqual({ received: true, outcome: 'review' });
    const before = await snapshotOf(receiptId);
    const errorsBefore = await refundMetric('error');

    // A second refund typed by hand from the first one's body, its event id left as it was.
    const reused = await deliverDummy(
      app,
      refundEvent(payment.externalPaymentId, 700, 'THB', `refund_reused_${receiptId}`),
    );
    expect(reused.status).toBe(409);
    expect(reused.body).toEqual({
      error:
        `Webhook rejected: event refund_reused_${receiptId} was already received as payment.refunded of 3.00 THB for ` +
        `${payment.externalPaymentId}, and this delivery says payment.refunded of 7.00 THB for ${payment.externalPaymentId}; ` +
        'an event id names one event, so this one was not applied. Send it with an event id of its own; nothing was changed.',
      code: 409,
    });
    expect(await snapshotOf(receiptId)).toEqual(before);
    expect(await refundMetric('error')).toBe(errorsBefore + 1);

    // The same event again, even with its fields in another order, is still a redelivery.
    const event = refundEvent(payment.externalPaymentId, 300, 'THB', `refund_reused_${receiptId}`);
    const reordered = Object.fromEntries(Object.entries(event).reverse());
    expect((await deliverDummy(app, event)).body).toEqual({ received: true, outcome: 'duplicate' });
    expect((await deliverDummy(app, reordered)).body).toEqual({ received: true, outcome: 'duplicate' });
    expect(await snapshotOf(receiptId)).toEqual(before);
  });
});

describe('a refund of money this app never took', () => {
  it('for an unknown payment is recorded and answered 200, and changes no receipt', async () => {
    const { receiptId } = await paidOnline();
    const before = await snapshotOf(receiptId);
    const answer = await deliverDummy(app, refundEvent('dummy_not_ours', 1000, 'THB', 'refund_unknown'));
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ received: true, outcome: 'unknown_payment' });
    const recorded = await db.prisma.paymentEvent.findFirstOrThrow({ where: { externalEventId: 'refund_unknown' } });
    expect(recorded).toMatchObject({ type: 'payment.refunded', outcome: 'unknown_payment', paymentId: null });
    expect(await snapshotOf(receiptId)).toEqual({ ...before, events: before.events + 1 });
    expect(await refundMetric('unknown_payment')).toBeGreaterThanOrEqual(1);
  });

  // Providers do not promise order: a refund told before the payment's success was answered
  // `ignored` (200, never sent again), and the success then paid the receipt with money gone back.
  it('arriving before the payment succeeded is refused unstored (409), and applied when sent again after the success', async () => {
    const { agent, receiptId } = await researcherWithReceipt();
    await startCheckout(agent, receiptId);
    const payment = await latestPaymentOf(receiptId);
    const before = await snapshotOf(receiptId);
    const refund = refundEvent(payment.externalPaymentId, 1000, 'THB', 'refund_pending');
    const early = await deliverDummy(app, refund);
    expect(early.status).toBe(409);
    expect(early.body.error).toBe(
      `Webhook rejected: payment #${payment.id} has not been reported paid yet, so its refund cannot be applied before its success; nothing was changed. Send it again once the success has arrived.`,
    );
    expect(await snapshotOf(receiptId)).toEqual(before);
    expect(await db.prisma.paymentRefusedClaim.count({ where: { paymentId: payment.id } })).toBe(0);

    await deliverDummy(app, {
      event_id: `refund_pending_paid_${payment.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 1000,
      currency: 'THB',
    }).expect(200);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('paid');
    const retried = await deliverDummy(app, refund);
    expect(retried.body).toEqual({ received: true, outcome: 'ok' });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
    expect(await latestPaymentOf(receiptId)).toMatchObject({ status: 'resolved', refundedMinor: 1000n });
  });
});

describe("Stripe's charge.refunded (SDK against a local fake of the API)", () => {
  const { stripe, deliver: deliverStripe } = useStripeApp(() => db, {
    secretKey: 'sk_test_fakekeyforrefunds',
    webhookSecret: 'whsec_refundsecretfortests',
  });

  it('finds the payment by the PaymentIntent its success named, and unpays the receipt refunded in full', async () => {
    const { agent, receiptId } = await researcherWithReceipt(stripe.app);
    await startCheckout(agent, receiptId);
    const payment = await latestPaymentOf(receiptId);
    const completed = await deliverStripe(
      buildStripeCheckoutPaid(payment.externalPaymentId, 'pi_test_refunds_1', 'evt_refunds_paid'),
    );
    expect(completed.body).toEqual({ received: true, outcome: 'ok' });
    expect(await latestPaymentOf(receiptId)).toMatchObject({
      status: 'succeeded',
      externalIntentId: 'pi_test_refunds_1',
    });

    // Too much is refused: 409, nothing changed.
    const before = await snapshotOf(receiptId);
    const tooMuch = await deliverStripe(
      buildStripeChargeRefunded(
        { payment_intent: 'pi_test_refunds_1', amount: 1000, amount_refunded: 1200, currency: 'thb' },
        'evt_refunds_too_much',
      ),
    );
    expect(tooMuch.status).toBe(409);
    await expectOnlyRefusalRecorded(receiptId, before);

    const refunded = await deliverStripe(
      buildStripeChargeRefunded(
        { payment_intent: 'pi_test_refunds_1', amount: 1000, amount_refunded: 1000, currency: 'thb' },
        'evt_refunds_full',
      ),
    );
    expect(refunded.status, refunded.text).toBe(200);
    expect(refunded.body).toEqual({ received: true, outcome: 'ok' });
    // Stripe's redelivery of the event may differ in the envelope (pending_webhooks): still a duplicate.
    const redelivered = await deliverStripe({
      ...buildStripeChargeRefunded(
        { payment_intent: 'pi_test_refunds_1', amount: 1000, amount_refunded: 1000, currency: 'thb' },
        'evt_refunds_full',
      ),
      pending_webhooks: 0,
    });
    expect(redelivered.body).toEqual({ received: true, outcome: 'duplicate' });
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
      status: 'pending',
      txRef: null,
    });
    expect(await latestPaymentOf(receiptId)).toMatchObject({
      status: 'resolved',
      reviewOutcome: 'refunded',
      refundedMinor: 1000n,
      refundedCurrency: 'THB',
    });
    expect(await refundMetric('ok', 'stripe', stripe.metrics)).toBe(1);

    // A charge this app never took (another PaymentIntent) is recorded, answered 200 and changes nothing.
    const unknown = await deliverStripe(
      buildStripeChargeRefunded({ payment_intent: 'pi_test_not_ours', amount_refunded: 500 }, 'evt_refunds_unknown'),
    );
    expect(unknown.body).toEqual({ received: true, outcome: 'unknown_payment' });
  });
  // Stripe names a refund's payment by the PaymentIntent, which the app learns from the success: a
  // refund told first was `unknown_payment` (200, so Stripe never sent it again), and the success
  // arriving next paid the receipt with money that had gone back to the payer.
  it('arriving before the success is matched through its Checkout Session, refused unstored (409), and applied when sent again', async () => {
    const { agent, receiptId } = await researcherWithReceipt(stripe.app);
    await startCheckout(agent, receiptId);
    const payment = await latestPaymentOf(receiptId);
    stripe.fake.completeSession(String(payment.externalPaymentId), 'pi_test_refunds_early');
    const before = await snapshotOf(receiptId);
    const refund = buildStripeChargeRefunded(
      { payment_intent: 'pi_test_refunds_early', amount: 1000, amount_refunded: 1000, currency: 'thb' },
      'evt_refunds_early',
    );
    const early = await deliverStripe(refund);
    expect(early.status, early.text).toBe(409);
    expect(early.body.error).toBe(
      `Webhook rejected: payment #${payment.id} has not been reported paid yet, so its refund cannot be applied before its success; nothing was changed. Send it again once the success has arrived.`,
    );
    expect(stripe.fake.requests.at(-1)).toMatchObject({
      method: 'GET',
      path: expect.stringMatching(/^\/v1\/checkout\/sessions\?/),
    });
    expect(stripe.fake.requests.at(-1)?.form.get('payment_intent')).toBe('pi_test_refunds_early');
    expect(await snapshotOf(receiptId)).toEqual(before);
    expect(await db.prisma.paymentRefusedClaim.count({ where: { paymentId: payment.id } })).toBe(0);

    const completed = await deliverStripe(
      buildStripeCheckoutPaid(payment.externalPaymentId, 'pi_test_refunds_early', 'evt_refunds_early_paid'),
    );
    expect(completed.body).toEqual({ received: true, outcome: 'ok' });
    const asked = stripe.fake.requests.length;
    const retried = await deliverStripe(refund);
    expect(retried.body).toEqual({ received: true, outcome: 'ok' });
    // Found by the PaymentIntent the success recorded: Stripe is not asked again.
    expect(stripe.fake.requests.length).toBe(asked);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
    expect(await latestPaymentOf(receiptId)).toMatchObject({ status: 'resolved', refundedMinor: 1000n });
  });

  it('for money no checkout of this app took is recorded unknown_payment (200); when Stripe cannot say, 502 and nothing stored', async () => {
    // A Checkout Session of another integration on the same Stripe account.
    stripe.fake.completeSession('cs_test_another_integration', 'pi_test_refunds_other_integration');
    const other = await deliverStripe(
      buildStripeChargeRefunded(
        { payment_intent: 'pi_test_refunds_other_integration', amount_refunded: 500 },
        'evt_refunds_other_integration',
      ),
    );
    expect(other.body).toEqual({ received: true, outcome: 'unknown_payment' });
    expect(
      await db.prisma.paymentEvent.findFirstOrThrow({ where: { externalEventId: 'evt_refunds_other_integration' } }),
    ).toMatchObject({ outcome: 'unknown_payment', paymentId: null });

    const events = await db.prisma.paymentEvent.count();
    stripe.fake.failNext(500, 'An unknown error occurred.');
    const refund = buildStripeChargeRefunded(
      { payment_intent: 'pi_test_refunds_stripe_down', amount_refunded: 500 },
      'evt_refunds_stripe_down',
    );
    const down = await deliverStripe(refund);
    expect(down.status).toBe(502);
    expect(down.body.error).toMatch(
      /^Webhook rejected: Stripe could not say which Checkout Session took pi_test_refunds_stripe_down: .+; no payment here has recorded pi_test_refunds_stripe_down yet, so this refund could not be matched to a payment; nothing was changed\. Send it again\.$/,
    );
    expect(await db.prisma.paymentEvent.count()).toBe(events);
    const again = await deliverStripe(refund);
    expect(again.body).toEqual({ received: true, outcome: 'unknown_payment' });
  });

  it('charge.refunded for a payment an admin resolved as dismissed holds it for review again', async () => {
    adminCounter += 1;
    const username = `refundreviewer${adminCounter}`;
    const { receiptId } = await paidAtStripeVoidedAndResolved(
      { db, app: stripe.app, deliver: deliverStripe, payers },
      {
        paymentIntent: 'pi_test_refunds_dismissed',
        paidEventId: 'evt_refunds_paid_dismissed',
        adminUsername: username,
        resolvedAs: { outcome: 'dismissed', note: 'Applied to the right project by hand.' },
      },
    );

    const refunded = await deliverStripe(
      buildStripeChargeRefunded(
        { payment_intent: 'pi_test_refunds_dismissed', amount: 1000, amount_refunded: 400, currency: 'thb' },
        'evt_refunds_dismissed',
      ),
    );
    expect(refunded.status, refunded.text).toBe(200);
    expect(refunded.body).toEqual({ received: true, outcome: 'review' });
    const held = await latestPaymentOf(receiptId);
    expect(held).toMatchObject({ status: 'needs_review', reviewOutcome: null, refundedMinor: 400n });
    expect(held.reviewReason).toContain(
      `4.00 THB of the 10.00 THB received was refunded at stripe, after this payment was resolved as dismissed by ${username}`,
    );
  });
});
