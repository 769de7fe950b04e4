import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, type Metrics } from '../../src/modules/metrics/metrics.js';
import { createPayingResearchers, deliverDummy, setUpDummyPayments } from '../support/dummy-payments.js';
import {
  buildStripeCheckoutPaid,
  buildStripeDisputeClosed,
  buildStripeDisputeCreated,
} from '../support/fake-stripe.js';
import { csrfTokenOf, signInNewAdmin } from '../support/sign-in.js';
import { paidAtStripeVoidedAndResolved, useStripeApp } from '../support/stripe-webhooks.js';
import { type buildTestApp, metricValue } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// A payer who disputes a card payment with their bank (a chargeback) takes the money back
// through the provider, which reports it as a dispute. The app ignored it: the receipt stayed paid
// and nothing on /admin/payments told finance that the money was being claimed back.
let db: TestDatabase;
let metrics: Metrics;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  metrics = createMetrics();
  ({ db, app } = await setUpDummyPayments({ metrics }));
});
afterAll(() => db?.drop());

const payers = createPayingResearchers(() => ({ db, app }), 'disputed');
const { researcherWithReceipt, startCheckout, latestPaymentOf, paidOnline, paidShortAndAccepted } = payers;

/** The dummy provider's dispute event: amount_cents is what the payer disputes of the payment. */
function disputeEvent(externalPaymentId: string | null, eventId: string, fields: Record<string, unknown> = {}) {
  return {
    event_id: eventId,
    event_type: 'payment.disputed',
    external_payment_id: externalPaymentId,
    amount_cents: 1000,
    currency: 'THB',
    dispute_id: `dp_${eventId}`,
    dispute_reason: 'fraudulent',
    ...fields,
  };
}

/** The dummy provider's closed dispute: as payment.disputed, with how it ended. */
function closedEvent(
  externalPaymentId: string | null,
  eventId: string,
  disputeId: string,
  status: 'won' | 'lost',
  fields: Record<string, unknown> = {},
) {
  return {
    ...disputeEvent(externalPaymentId, eventId),
    event_type: 'payment.dispute_closed',
    dispute_id: disputeId,
    dispute_status: status,
    ...fields,
  };
}

/** Every row a dispute may touch, to check that a repeated one touched nothing. */
async function snapshotOf(receiptId: number) {
  return {
    receipt: await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } }),
    payments: await db.prisma.payment.findMany({ where: { receiptId }, orderBy: { id: 'asc' } }),
    audits: await db.prisma.auditLog.findMany({ where: { target: `receipt:${receiptId}` }, orderBy: { id: 'asc' } }),
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
  const username = `disputereviewer${adminCounter}`;
  return signInNewAdmin(app, db, username);
}

const disputeMetric = (outcome: string, provider = 'dummy', on = metrics) =>
  metricValue(on, 'payments_webhook_events_total', { provider, event: 'payment.disputed', outcome });

// Webhooks are amount-checked: a dispute can claim back no more than the payment took, in its currency.
describe('a dispute that does not fit the payment is refused and changes nothing', () => {
  it.each([
    [
      'of more than the payment received',
      { amount_cents: 1001 },
      (paymentId: number) =>
        `Webhook rejected: the dispute of payment #${paymentId} (10.01 THB) is more than the 10.00 THB it received; nothing was changed.`,
    ],
    [
      'in another currency',
      { amount_cents: 500, currency: 'USD' },
      (paymentId: number) =>
        `Webhook rejected: the dispute of payment #${paymentId} is in USD (5.00 USD), but the payment received 10.00 THB; nothing was changed.`,
    ],
  ])('a dispute %s', async (_label, fields, messageOf) => {
    const { receiptId, payment } = await paidOnline();
    const before = await snapshotOf(receiptId);
    const errorsBefore = await disputeMetric('error');
    const answer = await deliverDummy(app, disputeEvent(payment.externalPaymentId, `evt_misfit_${payment.id}`, fields));
    expect(answer.status).toBe(409);
    expect(answer.body).toEqual({ error: messageOf(payment.id), code: 409 });
    await expectOnlyRefusalRecorded(receiptId, before);
    expect(await db.prisma.paymentEvent.count({ where: { externalEventId: `evt_misfit_${payment.id}` } })).toBe(0);
    expect(await disputeMetric('error')).toBe(errorsBefore + 1);
  });
});

// A dispute of 0.00 claims nothing back. It held the payment as a real dispute would (no online payment
// for the receipt's jobs meanwhile, amount_disputed 0.00 in paid.csv) and took the payment's one dispute
// slot, so the payer's real dispute after it was refused as a second dispute. As a refund total of
// nothing adds nothing, it is now recorded as an event and ignored.
describe('a dispute of 0.00', () => {
  it('is ignored and changes nothing, and a real dispute after it holds the payment as any does', async () => {
    const { receiptId, payment } = await paidOnline();
    const before = await snapshotOf(receiptId);
    const ignoredBefore = await disputeMetric('ignored');

    const zero = await deliverDummy(
      app,
      disputeEvent(payment.externalPaymentId, `evt_zero_${payment.id}`, { amount_cents: 0 }),
    );
    expect(zero.status, zero.text).toBe(200);
    expect(zero.body).toEqual({ received: true, outcome: 'ignored' });
    expect(await snapshotOf(receiptId)).toEqual(before);
    expect(await db.prisma.paymentEvent.count({ where: { externalEventId: `evt_zero_${payment.id}` } })).toBe(1);
    expect(await disputeMetric('ignored')).toBe(ignoredBefore + 1);
    // Its outcome, told later, is ignored too: there is no dispute of it to close.
    const closed = await deliverDummy(
      app,
      closedEvent(payment.externalPaymentId, `evt_zero_closed_${payment.id}`, `dp_evt_zero_${payment.id}`, 'lost', {
        amount_cents: 0,
      }),
    );
    expect(closed.status, closed.text).toBe(200);
    expect(closed.body.outcome).toBe('ignored');
    expect(await snapshotOf(receiptId)).toEqual(before);

    const real = await deliverDummy(app, disputeEvent(payment.externalPaymentId, `evt_real_${payment.id}`));
    expect(real.status, real.text).toBe(200);
    expect(real.body).toEqual({ received: true, outcome: 'review' });
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'needs_review',
      externalDisputeId: `dp_evt_real_${payment.id}`,
      disputedMinor: 1000n,
    });
  });
});

describe('a dispute of the payment that paid a receipt', () => {
  it('holds the payment for review with the disputed amount and reason, audited once; the receipt stays paid', async () => {
    const { receiptId, payment } = await paidOnline();
    const before = await snapshotOf(receiptId);
    const reviewBefore = await disputeMetric('review');

    const answer = await deliverDummy(app, disputeEvent(payment.externalPaymentId, 'dispute_1'));
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toEqual({ received: true, outcome: 'review' });
    expect(await disputeMetric('review')).toBe(reviewBefore + 1);

    // The receipt is left as it was: paid, by this payment, until an admin decides.
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toEqual(before.receipt);
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(held).toMatchObject({
      status: 'needs_review',
      holdsPaidReceipt: true,
      externalDisputeId: 'dp_dispute_1',
      disputedMinor: 1000n,
      disputedCurrency: 'THB',
      disputeReason: 'fraudulent',
      reviewReason: `the payer disputed 10.00 THB of the 10.00 THB received at dummy (reason: fraudulent); receipt #${receiptId} stays paid until this is resolved`,
    });
    expect(held.disputedAt).toBeInstanceOf(Date);
    const audits = await db.prisma.auditLog.findMany({
      where: { action: 'payment.dispute', target: `receipt:${receiptId}` },
    });
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ actor: 'provider:dummy', status: 'ok' });
    expect(audits[0]?.details).toMatchObject({
      paymentId: payment.id,
      eventId: 'dispute_1',
      disputeId: 'dp_dispute_1',
      amountMinor: '1000',
      currency: 'THB',
      reason: 'fraudulent',
      receipt: 'stays_paid',
    });

    // A replay is a duplicate; the same dispute told again by another event changes nothing either.
    const held1 = await snapshotOf(receiptId);
    const replay = await deliverDummy(app, disputeEvent(payment.externalPaymentId, 'dispute_1'));
    expect(replay.body).toEqual({ received: true, outcome: 'duplicate' });
    const retold = await deliverDummy(
      app,
      disputeEvent(payment.externalPaymentId, 'dispute_1_again', { dispute_id: 'dp_dispute_1' }),
    );
    expect(retold.body).toEqual({ received: true, outcome: 'ignored' });
    expect(await snapshotOf(receiptId)).toEqual(held1);

    // The admin sees it held, with what is disputed and why, and decides.
    const admin = await signInAdmin();
    const list = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(list.text).toContain('the payer disputed 10.00 THB of the 10.00 THB received at dummy (reason: fraudulent)');
    const resolve = async (outcome: string) =>
      admin
        .post(`/admin/payments/${payment.id}/resolve`)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(admin))
        .send({ outcome, note: 'Evidence sent to the bank; the dispute was won.' });
    const refused = await resolve('dismissed');
    expect(refused.status).toBe(409);
    expect(refused.body.error).toBe(
      `Payment #${payment.id} still pays receipt #${receiptId}, and the payer disputed it. Accept it to keep the receipt paid, or void the receipt on the billing page first; nothing was changed.`,
    );
    const accepted = await resolve('accepted');
    expect(accepted.status, accepted.text).toBe(200);
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'resolved',
      reviewOutcome: 'accepted',
      holdsPaidReceipt: false,
      disputedMinor: 1000n,
    });
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toEqual(before.receipt);
  });

  it('arriving before the payment succeeded is refused unstored (409), and applied when sent again after the success', async () => {
    const { agent, receiptId } = await researcherWithReceipt();
    await startCheckout(agent, receiptId);
    const pending = await latestPaymentOf(receiptId);
    const before = await snapshotOf(receiptId);
    const dispute = disputeEvent(pending.externalPaymentId, 'dispute_pending');
    const early = await deliverDummy(app, dispute);
    expect(early.status).toBe(409);
    expect(early.body.error).toBe(
      `Webhook rejected: payment #${pending.id} has not been reported paid yet, so its dispute cannot be applied before its success; nothing was changed. Send it again once the success has arrived.`,
    );
    expect(await snapshotOf(receiptId)).toEqual(before);
    expect(await db.prisma.paymentEvent.count({ where: { externalEventId: 'dispute_pending' } })).toBe(0);

    await deliverDummy(app, {
      event_id: `dispute_pending_paid_${pending.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: pending.externalPaymentId,
      amount_cents: 1000,
      currency: 'THB',
    }).expect(200);
    const retried = await deliverDummy(app, dispute);
    expect(retried.body).toEqual({ received: true, outcome: 'review' });
    expect(await latestPaymentOf(receiptId)).toMatchObject({
      status: 'needs_review',
      externalDisputeId: 'dp_dispute_pending',
      disputedMinor: 1000n,
    });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('paid');
  });
});

// The outcome of a dispute was not read: a lost one, the money taken back from the centre, left the
// receipt paid and paid.csv showing money that was gone.
describe('voiding the receipt of a payment held for its dispute', () => {
  it('holds the payment as any void of a paid receipt does, and still says what the payer disputed', async () => {
    const { receiptId, payment } = await paidOnline();
    await deliverDummy(
      app,
      disputeEvent(payment.externalPaymentId, `dispute_void_${receiptId}`, { amount_cents: 400 }),
    ).expect(200);
    const admin = await signInAdmin();
    const voided = await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ reason: 'billed to the wrong project' });
    expect(voided.status, voided.text).toBe(200);
    const disputed = `the payer disputed 4.00 THB of the 10.00 THB received at dummy (reason: fraudulent); receipt #${receiptId} stays paid until this is resolved`;
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'needs_review',
      holdsPaidReceipt: false,
      reviewReason: `receipt #${receiptId} was voided after it was paid online: refund the payment or apply it elsewhere; before the void it was held for review: ${disputed}`,
    });
    // Where finance reads it: the held payment's card on /admin/payments.
    const page = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('before the void it was held for review: the payer disputed 4.00 THB');
  });
});

describe('a dispute of a payment already held for another reason', () => {
  it('is added to why it is held, and so is its outcome, so finance does not refund money the bank may take', async () => {
    const { receiptId, payment } = await paidOnline();
    const admin = await signInAdmin();
    await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ reason: 'billed to the wrong project' })
      .expect(200);
    const voidReason = `receipt #${receiptId} was voided after it was paid online: refund the payment or apply it elsewhere`;
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'needs_review',
      reviewReason: voidReason,
    });

    const opened = await deliverDummy(app, disputeEvent(payment.externalPaymentId, `dispute_held_${receiptId}`));
    expect(opened.body).toEqual({ received: true, outcome: 'ok' });
    const disputed = `${voidReason}; the payer disputed 10.00 THB of the 10.00 THB received at dummy (reason: fraudulent)`;
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'needs_review',
      externalDisputeId: `dp_dispute_held_${receiptId}`,
      reviewReason: disputed,
    });
    const page = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('the payer disputed 10.00 THB of the 10.00 THB received at dummy');

    const won = await deliverDummy(
      app,
      closedEvent(payment.externalPaymentId, `dispute_held_won_${receiptId}`, `dp_dispute_held_${receiptId}`, 'won'),
    );
    expect(won.body).toEqual({ received: true, outcome: 'ok' });
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'needs_review',
      disputeStatus: 'won',
      reviewReason: `${disputed}; the dispute was won at dummy, the 10.00 THB stays`,
    });
  });
});

// A partial refund of a payment held for its dispute replaced the hold's reason with the refund's,
// so /admin/payments no longer said the payer had disputed it, and the admin, asked only to accept
// what was left, could not see that the bank might take that too.
describe('a partial refund of a payment whose dispute is open', () => {
  const refund = (externalPaymentId: string | null, eventId: string, amountCents: number) => ({
    event_id: eventId,
    event_type: 'payment.refunded',
    external_payment_id: externalPaymentId,
    amount_cents: amountCents,
    currency: 'THB',
  });

  it('while held for the dispute, adds the refund to the reason and keeps the dispute', async () => {
    const { receiptId, payment } = await paidOnline();
    await deliverDummy(
      app,
      disputeEvent(payment.externalPaymentId, `part_refund_held_${receiptId}`, { amount_cents: 400 }),
    ).expect(200);
    const answer = await deliverDummy(app, refund(payment.externalPaymentId, `part_refund_held_r_${receiptId}`, 300));
    expect(answer.body).toEqual({ received: true, outcome: 'review' });
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'needs_review',
      holdsPaidReceipt: true,
      refundedMinor: 300n,
      reviewReason:
        `the payer disputed 4.00 THB of the 10.00 THB received at dummy (reason: fraudulent); receipt #${receiptId} ` +
        `stays paid until this is resolved; 3.00 THB of the 10.00 THB received was refunded at dummy; receipt #${receiptId} ` +
        'stays paid until this is resolved',
    });
  });

  it('after the admin accepted it with the dispute open, names the acceptance and the dispute', async () => {
    const { receiptId, payment } = await paidOnline();
    await deliverDummy(
      app,
      disputeEvent(payment.externalPaymentId, `part_refund_accepted_${receiptId}`, { amount_cents: 400 }),
    ).expect(200);
    const admin = await signInAdmin();
    const accepted = await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'accepted', note: 'Evidence sent to the bank.' });
    expect(accepted.status, accepted.text).toBe(200);
    const { reviewedBy } = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });

    const answer = await deliverDummy(
      app,
      refund(payment.externalPaymentId, `part_refund_accepted_r_${receiptId}`, 300),
    );
    expect(answer.body).toEqual({ received: true, outcome: 'review' });
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(held).toMatchObject({ status: 'needs_review', holdsPaidReceipt: true, reviewOutcome: null });
    expect(held.reviewReason).toContain(
      `3.00 THB of the 10.00 THB received was refunded at dummy; receipt #${receiptId} stays paid until this is resolved; ` +
        `it had been resolved as accepted by ${reviewedBy} on `,
    );
    expect(held.reviewReason).toContain(
      '("Evidence sent to the bank."), after it was held for review: the payer disputed 4.00 THB of the 10.00 THB',
    );
  });
});

// A refund in full of a payment held for its open dispute resolved it as refunded by the provider with
// the refund's words only: the dispute vanished from /admin/payments (its reason and its held list),
// though the bank could still take the money back from the centre. A dispute told after the refund
// holds it; told before, it now does too.
describe('a refund in full of a payment whose dispute is open', () => {
  const refund = (externalPaymentId: string | null, eventId: string, amountCents: number) => ({
    event_id: eventId,
    event_type: 'payment.refunded',
    external_payment_id: externalPaymentId,
    amount_cents: amountCents,
    currency: 'THB',
  });

  it('unpays the receipt but keeps the payment held, the dispute in its reason, audited once', async () => {
    const { receiptId, payment } = await paidOnline();
    await deliverDummy(
      app,
      disputeEvent(payment.externalPaymentId, `full_refund_held_${receiptId}`, { amount_cents: 400 }),
    ).expect(200);
    const auditsBefore = await db.prisma.auditLog.count({ where: { target: `receipt:${receiptId}` } });
    const answer = await deliverDummy(app, refund(payment.externalPaymentId, `full_refund_held_r_${receiptId}`, 1000));
    expect(answer.body).toEqual({ received: true, outcome: 'review' });
    const disputed =
      `the payer disputed 4.00 THB of the 10.00 THB received at dummy (reason: fraudulent); receipt #${receiptId} ` +
      'stays paid until this is resolved';
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'needs_review',
      holdsPaidReceipt: false,
      reviewOutcome: null,
      refundedMinor: 1000n,
      reviewReason:
        `${disputed}; refunded in full at dummy (10.00 THB); receipt #${receiptId} is unpaid again; the dispute is ` +
        'still open, so the bank may take the money back as well: answer it at dummy (the payer was refunded) and ' +
        'resolve this once it is settled',
    });
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
      status: 'pending',
      paidAt: null,
    });
    const audits = await db.prisma.auditLog.findMany({
      where: { target: `receipt:${receiptId}` },
      orderBy: { id: 'asc' },
      skip: auditsBefore,
    });
    expect(audits.map((entry) => entry.action)).toEqual(['payment.refund']);
    expect(audits[0]?.details).toMatchObject({ receipt: 'unpaid', isDisputeOpen: true, refundedTotalMinor: '1000' });

    // Where finance reads it: the held payment's card on /admin/payments.
    const admin = await signInAdmin();
    const page = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    const card = page.text.slice(page.text.indexOf(`id="review-${payment.id}"`));
    expect(card).toContain('Why: the payer disputed 4.00 THB of the 10.00 THB received at dummy');
    // Nothing of it is left to mark the receipt paid from; refunded is what the admin closes it with.
    const accepted = await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'accepted', note: 'Trying to keep it for the receipt.' });
    expect(accepted.status).toBe(409);
    const resolved = await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'refunded', note: 'Told the bank the payer was refunded.' });
    expect(resolved.status, resolved.text).toBe(200);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
  });

  it('after the dispute was won, resolves it as refunded and keeps the dispute in the reason', async () => {
    const { receiptId, payment } = await paidOnline();
    const opened = disputeEvent(payment.externalPaymentId, `full_refund_won_${receiptId}`, { amount_cents: 400 });
    await deliverDummy(app, opened).expect(200);
    await deliverDummy(
      app,
      closedEvent(payment.externalPaymentId, `full_refund_won_c_${receiptId}`, opened.dispute_id, 'won', {
        amount_cents: 400,
      }),
    ).expect(200);
    const answer = await deliverDummy(app, refund(payment.externalPaymentId, `full_refund_won_r_${receiptId}`, 1000));
    expect(answer.body).toEqual({ received: true, outcome: 'ok' });
    const resolved = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(resolved).toMatchObject({ status: 'resolved', reviewOutcome: 'refunded', reviewedBy: 'provider:dummy' });
    expect(resolved.reviewReason).toBe(
      `the payer disputed 4.00 THB of the 10.00 THB received at dummy (reason: fraudulent); receipt #${receiptId} ` +
        `stays paid until this is resolved; the dispute was won at dummy, the 4.00 THB stays: accept this payment to ` +
        `keep receipt #${receiptId} paid; refunded in full at dummy (10.00 THB); receipt #${receiptId} is unpaid again`,
    );
  });
});

// A dispute of a payment an admin had accepted (paid short, the rest to be charged later) held it
// again with the dispute's reason only: the acceptance, its note and the shortfall it settled were
// cleared from the row, and /admin/payments no longer said them.
describe('a dispute of a payment an admin accepted', () => {
  it('holds it again, its reason ending with the acceptance and what it was taken on; so does a loss in part', async () => {
    const admin = await signInAdmin();
    const { receiptId, payment } = await paidShortAndAccepted(admin, 800);
    const { reviewedBy } = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    const decision = `it had been resolved as accepted by ${reviewedBy} on `;
    const takenOn =
      '("the payer is charged the rest next month"), after it was held for review: paid 8.00 THB but 10.00 THB was due';

    const opened = await deliverDummy(
      app,
      disputeEvent(payment.externalPaymentId, `accepted_short_${receiptId}`, { amount_cents: 300 }),
    );
    expect(opened.body).toEqual({ received: true, outcome: 'review' });
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(held).toMatchObject({ status: 'needs_review', holdsPaidReceipt: true, reviewOutcome: null });
    expect(held.reviewReason).toContain(
      `the payer disputed 3.00 THB of the 8.00 THB received at dummy (reason: fraudulent); receipt #${receiptId} ` +
        `stays paid until this is resolved; ${decision}`,
    );
    expect(held.reviewReason).toContain(takenOn);

    // Accepted again, then lost in part: held again, the same way.
    const accepted = await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'accepted', note: 'Evidence sent to the bank.' });
    expect(accepted.status, accepted.text).toBe(200);
    const lost = await deliverDummy(
      app,
      closedEvent(
        payment.externalPaymentId,
        `accepted_short_lost_${receiptId}`,
        `dp_accepted_short_${receiptId}`,
        'lost',
        {
          amount_cents: 300,
        },
      ),
    );
    expect(lost.body).toEqual({ received: true, outcome: 'review' });
    const heldAgain = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(heldAgain.reviewReason).toContain(
      'the dispute was lost at dummy: 3.00 THB of the 8.00 THB received was taken back; ' +
        `receipt #${receiptId} stays paid until this is resolved; ${decision}`,
    );
    expect(heldAgain.reviewReason).toContain(
      '("Evidence sent to the bank."), after it was held for review: the payer disputed',
    );
  });
});

describe('a dispute lost in full after an admin accepted the payment', () => {
  it('unpays the receipt and keeps the acceptance it undoes in the reason and the audit entry', async () => {
    const admin = await signInAdmin();
    const { receiptId, payment } = await paidShortAndAccepted(admin, 800);
    const disputeId = `dp_lost_full_accepted_${receiptId}`;
    await deliverDummy(
      app,
      disputeEvent(payment.externalPaymentId, `lost_full_accepted_${receiptId}`, {
        amount_cents: 800,
        dispute_id: disputeId,
      }),
    ).expect(200);
    const accepted = await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'accepted', note: 'Evidence sent to the bank.' });
    expect(accepted.status, accepted.text).toBe(200);
    const { reviewedBy } = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });

    const lost = await deliverDummy(
      app,
      closedEvent(payment.externalPaymentId, `lost_full_accepted_closed_${receiptId}`, disputeId, 'lost', {
        amount_cents: 800,
      }),
    );
    expect(lost.body).toEqual({ received: true, outcome: 'ok' });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
    const resolved = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(resolved.reviewReason).toContain(
      `receipt #${receiptId} is unpaid again; it had been resolved as accepted by ${reviewedBy} on `,
    );
    expect(resolved.reviewReason).toContain('("Evidence sent to the bank."), after it was held for review: ');
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'payment.dispute_closed', target: `receipt:${receiptId}` },
    });
    expect(audit.details).toMatchObject({ receipt: 'unpaid', previousOutcome: 'accepted' });
  });
});

describe('the outcome of a dispute', () => {
  const closedMetric = (outcome: string) =>
    metricValue(metrics, 'payments_webhook_events_total', {
      provider: 'dummy',
      event: 'payment.dispute_closed',
      outcome,
    });

  /** A receipt paid online whose payment the payer disputed (amount_cents of its 10.00 THB). */
  async function disputedPayment(name: string, amountCents = 1000) {
    const paid = await paidOnline();
    const opened = await deliverDummy(
      app,
      disputeEvent(paid.payment.externalPaymentId, `${name}_opened`, { amount_cents: amountCents }),
    );
    expect(opened.body).toEqual({ received: true, outcome: 'review' });
    return { ...paid, disputeId: `dp_${name}_opened` };
  }

  async function paidCsvLineOf(receiptId: number) {
    const admin = await signInAdmin();
    const paidCsv = await admin.get('/admin/paid.csv?start=2000-01-01&end=2100-12-31').expect(200);
    return paidCsv.text.split('\n').find((row) => row.startsWith(`${receiptId},`));
  }

  it('lost in full: the receipt is unpaid again as after a refund in full, and the loss counts as refunded', async () => {
    const { agent, receiptId, payment, disputeId } = await disputedPayment('lost_full');
    const paidAt = (await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).paidAt;
    const okBefore = await closedMetric('ok');

    const answer = await deliverDummy(
      app,
      closedEvent(payment.externalPaymentId, 'lost_full_closed', disputeId, 'lost'),
    );
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toEqual({ received: true, outcome: 'ok' });
    expect(await closedMetric('ok')).toBe(okBefore + 1);

    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
      status: 'pending',
      paidAt: null,
      paymentMethod: null,
      txRef: null,
    });
    const lost = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(lost).toMatchObject({
      status: 'resolved',
      reviewOutcome: 'refunded',
      reviewedBy: 'provider:dummy',
      holdsPaidReceipt: false,
      refundedMinor: 1000n,
      refundedCurrency: 'THB',
      disputeStatus: 'lost',
      paidAt,
      reviewReason: `the dispute was lost at dummy: 10.00 THB of the 10.00 THB received was taken back; receipt #${receiptId} is unpaid again`,
    });
    expect(lost.disputeClosedAt).toBeInstanceOf(Date);
    const audits = await db.prisma.auditLog.findMany({
      where: { action: 'payment.dispute_closed', target: `receipt:${receiptId}` },
    });
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ actor: 'provider:dummy', status: 'ok' });
    expect(audits[0]?.details).toMatchObject({
      paymentId: payment.id,
      eventId: 'lost_full_closed',
      disputeId,
      disputeStatus: 'lost',
      amountMinor: '1000',
      currency: 'THB',
      refundedTotalMinor: '1000',
      receipt: 'unpaid',
    });

    // Counted as gone wherever refunds are: the receipt's JSON and page, and paid.csv's line, kept in
    // the period it was paid in, in its own column (amount_disputed_lost, last), no refund.
    const json = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'application/json').expect(200);
    expect(json.body.receipt).toMatchObject({
      status: 'pending',
      received: null,
      refunds: [{ paymentId: payment.id, amount: '10.00', currency: 'THB', isFull: true }],
    });
    const page = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('Pay 10.00 THB online');
    expect(await paidCsvLineOf(receiptId)).toMatch(new RegExp(`,${payment.id},\\d{4}-\\d{2}-\\d{2},,,,,,10\\.00$`));

    // A replay is a duplicate; the same outcome told by another event changes nothing either.
    const after = await snapshotOf(receiptId);
    const replay = await deliverDummy(
      app,
      closedEvent(payment.externalPaymentId, 'lost_full_closed', disputeId, 'lost'),
    );
    expect(replay.body).toEqual({ received: true, outcome: 'duplicate' });
    const retold = await deliverDummy(
      app,
      closedEvent(payment.externalPaymentId, 'lost_full_again', disputeId, 'lost'),
    );
    expect(retold.body).toEqual({ received: true, outcome: 'ignored' });
    expect(await snapshotOf(receiptId)).toEqual(after);
  });

  it('lost in part: the receipt stays paid, the loss counts as refunded and the held payment says it was lost', async () => {
    const { agent, receiptId, payment, disputeId } = await disputedPayment('lost_part', 400);
    const receiptBefore = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });

    const answer = await deliverDummy(
      app,
      closedEvent(payment.externalPaymentId, 'lost_part_closed', disputeId, 'lost', { amount_cents: 400 }),
    );
    expect(answer.body).toEqual({ received: true, outcome: 'review' });
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toEqual(receiptBefore);
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'needs_review',
      holdsPaidReceipt: true,
      refundedMinor: 400n,
      refundedCurrency: 'THB',
      disputeStatus: 'lost',
      reviewReason:
        `the payer disputed 4.00 THB of the 10.00 THB received at dummy (reason: fraudulent); receipt #${receiptId} ` +
        'stays paid until this is resolved; the dispute was lost at dummy: 4.00 THB of the 10.00 THB received was taken back',
    });
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'payment.dispute_closed', target: `receipt:${receiptId}` },
    });
    expect(audit.details).toMatchObject({ disputeStatus: 'lost', refundedTotalMinor: '400', receipt: 'stays_paid' });
    const json = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'application/json').expect(200);
    expect(json.body.receipt).toMatchObject({
      status: 'paid',
      refunds: [{ paymentId: payment.id, amount: '4.00', currency: 'THB', isFull: false }],
    });
    expect(await paidCsvLineOf(receiptId)).toMatch(
      new RegExp(`,10\\.00,THB,${payment.id},\\d{4}-\\d{2}-\\d{2},,,,,,4\\.00$`),
    );

    // Dismissing it is refused, in the words of what happened: a dispute lost in part, not a refund.
    const admin = await signInAdmin();
    const before = await snapshotOf(receiptId);
    const dismissed = await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'dismissed', note: 'The bank kept 4.00 THB; settled with the lab.' });
    expect(dismissed.status).toBe(409);
    expect(dismissed.body.error).toBe(
      `Payment #${payment.id} still pays receipt #${receiptId}, of which 4.00 THB was taken back by a lost dispute. Accept it to keep the receipt paid from the rest, or void the receipt on the billing page first; nothing was changed.`,
    );
    expect(await snapshotOf(receiptId)).toEqual(before);
  });

  it('lost in part after a partial refund: a refused dismissal names both', async () => {
    const { receiptId, payment, disputeId } = await disputedPayment('lost_after_refund', 400);
    await deliverDummy(app, {
      event_id: 'lost_after_refund_refund',
      event_type: 'payment.refunded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 300,
      currency: 'THB',
    }).expect(200);
    const closed = await deliverDummy(
      app,
      closedEvent(payment.externalPaymentId, 'lost_after_refund_closed', disputeId, 'lost', { amount_cents: 400 }),
    );
    expect(closed.body).toEqual({ received: true, outcome: 'review' });
    const admin = await signInAdmin();
    const dismissed = await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'refunded', note: 'Refunded the rest in the dashboard.' });
    expect(dismissed.status).toBe(409);
    expect(dismissed.body.error).toBe(
      `Payment #${payment.id} still pays receipt #${receiptId}, of which 3.00 THB was refunded and 4.00 THB taken back by a lost dispute. Accept it to keep the receipt paid from the rest, or void the receipt on the billing page first; nothing was changed.`,
    );
  });

  it('won: recorded, nothing refunded, and the held payment says so for the admin to accept', async () => {
    const { receiptId, payment, disputeId } = await disputedPayment('won');
    const receiptBefore = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });

    const answer = await deliverDummy(app, closedEvent(payment.externalPaymentId, 'won_closed', disputeId, 'won'));
    expect(answer.body).toEqual({ received: true, outcome: 'review' });
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toEqual(receiptBefore);
    const won = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(won).toMatchObject({
      status: 'needs_review',
      holdsPaidReceipt: true,
      refundedMinor: null,
      disputeStatus: 'won',
      reviewReason:
        `the payer disputed 10.00 THB of the 10.00 THB received at dummy (reason: fraudulent); receipt #${receiptId} ` +
        `stays paid until this is resolved; the dispute was won at dummy, the 10.00 THB stays: accept this payment to keep receipt #${receiptId} paid`,
    });
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'payment.dispute_closed', target: `receipt:${receiptId}` },
    });
    expect(audit.details).toMatchObject({ disputeStatus: 'won', receipt: 'stays_paid' });
    expect(audit.details).not.toHaveProperty('refundedTotalMinor');

    const admin = await signInAdmin();
    const accepted = await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'accepted', note: 'The dispute was won; the money stays.' });
    expect(accepted.status, accepted.text).toBe(200);
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toEqual(receiptBefore);
  });

  it.each([
    [
      'of another amount than was disputed',
      'misfit_amount',
      { amount_cents: 900 },
      (paymentId: number, disputeId: string) =>
        `Webhook rejected: the closed dispute ${disputeId} of payment #${paymentId} is for 9.00 THB, but it was opened for 10.00 THB; nothing was changed.`,
    ],
    [
      'in another currency',
      'misfit_currency',
      { currency: 'USD' },
      (paymentId: number, disputeId: string) =>
        `Webhook rejected: the closed dispute ${disputeId} of payment #${paymentId} is for 10.00 USD, but it was opened for 10.00 THB; nothing was changed.`,
    ],
  ])('a closed dispute %s is refused with 409 and changes nothing', async (_label, name, fields, messageOf) => {
    const { receiptId, payment, disputeId } = await disputedPayment(name);
    const before = await snapshotOf(receiptId);
    const errorsBefore = await closedMetric('error');
    const eventId = `misfit_closed_${payment.id}`;
    const answer = await deliverDummy(app, closedEvent(payment.externalPaymentId, eventId, disputeId, 'lost', fields));
    expect(answer.status).toBe(409);
    expect(answer.body).toEqual({ error: messageOf(payment.id, disputeId), code: 409 });
    await expectOnlyRefusalRecorded(receiptId, before);
    expect(await db.prisma.paymentEvent.count({ where: { externalEventId: eventId } })).toBe(0);
    expect(await closedMetric('error')).toBe(errorsBefore + 1);
  });

  it('for a dispute or a payment this app does not know is answered 200 and changes nothing', async () => {
    const { receiptId, payment } = await disputedPayment('unknown');
    const before = await snapshotOf(receiptId);
    const otherDispute = await deliverDummy(
      app,
      closedEvent(payment.externalPaymentId, 'unknown_dispute_closed', 'dp_not_ours', 'lost'),
    );
    expect(otherDispute.body).toEqual({ received: true, outcome: 'ignored' });
    const otherPayment = await deliverDummy(
      app,
      closedEvent('dummy_not_ours', 'unknown_payment_closed', 'dp_not_ours', 'lost'),
    );
    expect(otherPayment.body).toEqual({ received: true, outcome: 'unknown_payment' });
    expect(await snapshotOf(receiptId)).toEqual(before);
  });

  // Providers do not promise the order of their events: the outcome may come before the dispute.
  // Ignored, a lost chargeback was missed for good (the dispute's own event then found it closed).
  it('arriving before its dispute, records the dispute and its outcome together', async () => {
    const paid = await paidOnline();
    const lost = await deliverDummy(
      app,
      closedEvent(paid.payment.externalPaymentId, 'early_closed', 'dp_early', 'lost', { amount_cents: 1000 }),
    );
    expect(lost.body).toEqual({ received: true, outcome: 'ok' });
    const payment = await db.prisma.payment.findUniqueOrThrow({ where: { id: paid.payment.id } });
    expect(payment).toMatchObject({
      externalDisputeId: 'dp_early',
      disputedMinor: 1000n,
      disputeStatus: 'lost',
      refundedMinor: 1000n,
    });
    const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id: paid.receiptId } });
    expect(receipt.status).toBe('pending');
    const actions = (
      await db.prisma.auditLog.findMany({ where: { target: `receipt:${paid.receiptId}` }, orderBy: { id: 'asc' } })
    ).map((entry) => entry.action);
    expect(actions.slice(-2)).toEqual(['payment.dispute', 'payment.dispute_closed']);
    // The dispute's own event, arriving late, adds nothing.
    const after = await snapshotOf(paid.receiptId);
    const opened = await deliverDummy(
      app,
      disputeEvent(paid.payment.externalPaymentId, 'early_opened', { dispute_id: 'dp_early' }),
    );
    expect(opened.body).toEqual({ received: true, outcome: 'ignored' });
    expect(await snapshotOf(paid.receiptId)).toEqual(after);
  });
});

// A dispute told after finance had closed the payment's review (refunded it, or settled it otherwise)
// was recorded in columns no page shows: /admin/payments no longer listed the payment, so finance
// never learnt that the bank was taking back money it had already returned or applied.
describe('a dispute of a payment whose review an admin already resolved', () => {
  /** A receipt paid online, voided, and its held payment resolved by an admin as `outcome`. */
  async function resolvedAfterVoid(outcome: 'refunded' | 'dismissed') {
    const paid = await paidOnline();
    const admin = await signInAdmin();
    await admin
      .post(`/admin/receipts/${paid.receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ reason: 'billed to the wrong project' })
      .expect(200);
    await resolveAs(admin, paid.payment.id, outcome, 'Refunded in the dummy dashboard.');
    const voidReason = `receipt #${paid.receiptId} was voided after it was paid online: refund the payment or apply it elsewhere`;
    return { ...paid, admin, voidReason };
  }

  async function resolveAs(
    admin: Awaited<ReturnType<typeof signInAdmin>>,
    paymentId: number,
    outcome: string,
    note: string,
  ) {
    const answer = await admin
      .post(`/admin/payments/${paymentId}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome, note });
    expect(answer.status, answer.text).toBe(200);
  }

  const resolvedPayment = async (paymentId: number) => {
    const resolved = await db.prisma.payment.findUniqueOrThrow({ where: { id: paymentId } });
    expect(resolved.status).toBe('resolved');
    return resolved;
  };

  it('opened: holds the payment for review again, naming the dispute, its amount and the decision it follows', async () => {
    const { receiptId, payment, admin, voidReason } = await resolvedAfterVoid('refunded');
    const resolved = await resolvedPayment(payment.id);
    const receiptBefore = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
    const reviewBefore = await disputeMetric('review');

    const answer = await deliverDummy(app, disputeEvent(payment.externalPaymentId, `after_resolve_${receiptId}`));
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toEqual({ received: true, outcome: 'review' });
    expect(await disputeMetric('review')).toBe(reviewBefore + 1);

    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(held).toMatchObject({
      status: 'needs_review',
      holdsPaidReceipt: false,
      reviewOutcome: null,
      reviewNote: null,
      reviewedBy: null,
      reviewedAt: null,
      externalDisputeId: `dp_after_resolve_${receiptId}`,
      disputedMinor: 1000n,
    });
    expect(held.reviewReason).toMatch(
      new RegExp(
        `^the payer disputed 10\\.00 THB of the 10\\.00 THB received at dummy \\(reason: fraudulent\\), after this payment ` +
          `was resolved as refunded by ${resolved.reviewedBy} on \\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2} \\("Refunded in the dummy dashboard\\."\\): ` +
          'the bank may take back money already returned or settled; check it with dummy and resolve it again; ' +
          `before it was resolved it was held for review: ${voidReason.replace(/[.()#]/g, '\\$&')}$`,
      ),
    );
    // The receipt is left as the void left it.
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toEqual(receiptBefore);
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'payment.dispute', target: `receipt:${receiptId}` },
    });
    expect(audit.details).toMatchObject({
      paymentId: payment.id,
      disputeId: `dp_after_resolve_${receiptId}`,
      amountMinor: '1000',
      previousOutcome: 'refunded',
      receipt: 'none',
    });

    // Where finance looks: held again on /admin/payments, with its resolve form.
    const page = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('or the payer disputed it (a chargeback, even one told after the payment was resolved');
    const cardStart = page.text.indexOf(`id="review-${payment.id}"`);
    expect(cardStart).toBeGreaterThan(-1);
    const heldSection = page.text.slice(cardStart, page.text.indexOf('</section>', cardStart));
    expect(heldSection).toContain(
      'Why: the payer disputed 10.00 THB of the 10.00 THB received at dummy (reason: fraudulent), after this payment',
    );
    expect(heldSection).toContain(`/admin/payments/${payment.id}/resolve`);

    // Resolved again, the dispute's loss is one more event after a decision: held again, saying so.
    await resolveAs(admin, payment.id, 'dismissed', 'Answered the dispute with the refund as evidence.');
    const lost = await deliverDummy(
      app,
      closedEvent(
        payment.externalPaymentId,
        `after_resolve_lost_${receiptId}`,
        `dp_after_resolve_${receiptId}`,
        'lost',
      ),
    );
    expect(lost.body).toEqual({ received: true, outcome: 'review' });
    const heldAgain = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(heldAgain).toMatchObject({
      status: 'needs_review',
      reviewOutcome: null,
      disputeStatus: 'lost',
      refundedMinor: 1000n,
    });
    expect(heldAgain.reviewReason).toContain(
      'the dispute was lost at dummy: 10.00 THB of the 10.00 THB received was taken back, after this payment was resolved as dismissed by ',
    );
    expect(heldAgain.reviewReason).toContain(
      'before it was resolved it was held for review: the payer disputed 10.00 THB',
    );
    const closedAudit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'payment.dispute_closed', target: `receipt:${receiptId}` },
    });
    expect(closedAudit.details).toMatchObject({ disputeStatus: 'lost', previousOutcome: 'dismissed', receipt: 'none' });
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toEqual(receiptBefore);
  });

  it('won after the review was resolved: held again, so finance sees the bank took nothing back', async () => {
    const paid = await paidOnline();
    const { receiptId, payment } = paid;
    const admin = await signInAdmin();
    await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ reason: 'billed to the wrong project' })
      .expect(200);
    // Opened while held (added to the void's reason), then resolved with the dispute still open.
    const disputeId = `dp_won_after_resolve_${receiptId}`;
    await deliverDummy(
      app,
      disputeEvent(payment.externalPaymentId, `won_after_resolve_${receiptId}`, { dispute_id: disputeId }),
    ).expect(200);
    await resolveAs(admin, payment.id, 'dismissed', 'Counted as lost to the chargeback in the ledger.');

    const won = await deliverDummy(
      app,
      closedEvent(payment.externalPaymentId, `won_after_resolve_closed_${receiptId}`, disputeId, 'won'),
    );
    expect(won.body).toEqual({ received: true, outcome: 'review' });
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(held).toMatchObject({
      status: 'needs_review',
      reviewOutcome: null,
      disputeStatus: 'won',
      refundedMinor: null,
    });
    expect(held.reviewReason).toContain(
      'the dispute was won at dummy, the 10.00 THB stays, after this payment was resolved as dismissed by ',
    );
    expect(held.reviewReason).toContain('("Counted as lost to the chargeback in the ledger.")');
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'payment.dispute_closed', target: `receipt:${receiptId}` },
    });
    expect(audit.details).toMatchObject({ disputeStatus: 'won', previousOutcome: 'dismissed', receipt: 'none' });
  });

  // A refund that failed after the decision held the payment again with a reason of its own, which
  // replaced the one the admin had decided on: an open dispute vanished from /admin/payments, and
  // finance, told to refund the payment again, could not see that the bank may take the money too.
  it('a refund that fails after the admin resolved it keeps the decision, and the open dispute, in the reason', async () => {
    const { receiptId, payment, admin } = await resolvedAfterVoid('refunded');
    const { reviewedBy } = await resolvedPayment(payment.id);
    // Held again for the dispute, then resolved again with the dispute still open.
    await deliverDummy(
      app,
      disputeEvent(payment.externalPaymentId, `failed_after_resolve_${receiptId}`, { amount_cents: 400 }),
    ).expect(200);
    await resolveAs(admin, payment.id, 'refunded', 'Refunded again; the dispute is answered.');

    const failed = await deliverDummy(app, {
      event_id: `failed_after_resolve_refund_${receiptId}`,
      event_type: 'payment.refund_failed',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 1000,
      currency: 'THB',
      refund_id: `re_failed_after_resolve_${receiptId}`,
      failure_reason: 'expired_or_canceled_card',
    });
    expect(failed.body).toEqual({ received: true, outcome: 'review' });
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(held).toMatchObject({ status: 'needs_review', reviewOutcome: null });
    expect(held.reviewReason).toContain(
      `the refund re_failed_after_resolve_${receiptId} of 10.00 THB failed at dummy (expired_or_canceled_card)`,
    );
    expect(held.reviewReason).toContain(`; it had been resolved as refunded by ${reviewedBy} on `);
    expect(held.reviewReason).toContain('("Refunded again; the dispute is answered."), after it was held for review: ');
    expect(held.reviewReason).toContain(
      'the payer disputed 4.00 THB of the 10.00 THB received at dummy (reason: fraudulent)',
    );
    const page = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    const cardStart = page.text.indexOf(`id="review-${payment.id}"`);
    expect(page.text.slice(cardStart, page.text.indexOf('</section>', cardStart))).toContain(
      'the payer disputed 4.00 THB of the 10.00 THB received at dummy',
    );
  });

  it('accepted for its receipt, a won dispute is what the admin accepted it on: recorded, not held again', async () => {
    const { receiptId, payment } = await paidOnline();
    const disputeId = `dp_accepted_won_${receiptId}`;
    await deliverDummy(
      app,
      disputeEvent(payment.externalPaymentId, `accepted_won_${receiptId}`, { dispute_id: disputeId }),
    ).expect(200);
    const admin = await signInAdmin();
    await resolveAs(admin, payment.id, 'accepted', 'Evidence sent to the bank; we expect to win.');
    const won = await deliverDummy(
      app,
      closedEvent(payment.externalPaymentId, `accepted_won_closed_${receiptId}`, disputeId, 'won'),
    );
    expect(won.body).toEqual({ received: true, outcome: 'ok' });
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'resolved',
      reviewOutcome: 'accepted',
      disputeStatus: 'won',
    });
  });
});

describe("Stripe's charge.dispute.created (SDK against a local fake of the API)", () => {
  const { stripe, deliver: deliverStripe } = useStripeApp(() => db, {
    secretKey: 'sk_test_fakekeyfordisputes',
    webhookSecret: 'whsec_disputesecretfortests',
  });

  it('finds the payment by the PaymentIntent its success named and holds it; a body about another object is refused', async () => {
    const { agent, receiptId } = await researcherWithReceipt(stripe.app);
    await startCheckout(agent, receiptId);
    const payment = await latestPaymentOf(receiptId);
    const completed = await deliverStripe(
      buildStripeCheckoutPaid(payment.externalPaymentId, 'pi_test_disputes_1', 'evt_disputes_paid'),
    );
    expect(completed.body).toEqual({ received: true, outcome: 'ok' });

    const notADispute = await deliverStripe(
      buildStripeDisputeCreated({ object: 'charge', payment_intent: 'pi_test_disputes_1' }, 'evt_disputes_charge'),
    );
    expect(notADispute.status).toBe(400);
    expect(notADispute.body.error).toContain('charge.dispute.created event is about a "charge", not a Dispute');

    const disputed = await deliverStripe(
      buildStripeDisputeCreated(
        { id: 'dp_test_disputes_1', payment_intent: 'pi_test_disputes_1', amount: 1000, currency: 'thb' },
        'evt_disputes_created',
      ),
    );
    expect(disputed.status, disputed.text).toBe(200);
    expect(disputed.body).toEqual({ received: true, outcome: 'review' });
    expect(await latestPaymentOf(receiptId)).toMatchObject({
      status: 'needs_review',
      holdsPaidReceipt: true,
      externalDisputeId: 'dp_test_disputes_1',
      disputedMinor: 1000n,
      disputedCurrency: 'THB',
      disputeReason: 'fraudulent',
    });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('paid');
    expect(await disputeMetric('review', 'stripe', stripe.metrics)).toBe(1);
  });

  it('charge.dispute.closed, lost in full, unpays the receipt as a refund in full does', async () => {
    const { agent, receiptId } = await researcherWithReceipt(stripe.app);
    await startCheckout(agent, receiptId);
    const payment = await latestPaymentOf(receiptId);
    await deliverStripe(
      buildStripeCheckoutPaid(payment.externalPaymentId, 'pi_test_disputes_2', 'evt_disputes_paid_2'),
    ).expect(200);
    const dispute = { id: 'dp_test_disputes_2', payment_intent: 'pi_test_disputes_2', amount: 1000, currency: 'thb' };
    await deliverStripe(buildStripeDisputeCreated(dispute, 'evt_disputes_created_2')).expect(200);

    const closed = await deliverStripe(buildStripeDisputeClosed(dispute, 'evt_disputes_closed_2'));
    expect(closed.status, closed.text).toBe(200);
    expect(closed.body).toEqual({ received: true, outcome: 'ok' });
    expect(await latestPaymentOf(receiptId)).toMatchObject({
      status: 'resolved',
      reviewOutcome: 'refunded',
      refundedMinor: 1000n,
      disputeStatus: 'lost',
    });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
    expect(
      await metricValue(stripe.metrics, 'payments_webhook_events_total', {
        provider: 'stripe',
        event: 'payment.dispute_closed',
        outcome: 'ok',
      }),
    ).toBe(1);
  });
  // Stripe names a dispute's payment by the PaymentIntent, which the app learns from the success: a
  // dispute told first was `unknown_payment` (200, never sent again), and the bank's claim was lost.
  it('arriving before the success is matched through its Checkout Session and refused unstored (409), also for a checkout a void canceled', async () => {
    const { agent, receiptId } = await researcherWithReceipt(stripe.app);
    await startCheckout(agent, receiptId);
    const payment = await latestPaymentOf(receiptId);
    const session = String(payment.externalPaymentId);
    stripe.fake.completeSession(session, 'pi_test_disputes_early');
    const dispute = buildStripeDisputeCreated(
      { id: 'dp_test_disputes_early', payment_intent: 'pi_test_disputes_early', amount: 1000, currency: 'thb' },
      'evt_disputes_early',
    );
    const refusal = `Webhook rejected: payment #${payment.id} has not been reported paid yet, so its dispute cannot be applied before its success; nothing was changed. Send it again once the success has arrived.`;
    const before = await snapshotOf(receiptId);
    const early = await deliverStripe(dispute);
    expect(early.status, early.text).toBe(409);
    expect(early.body.error).toBe(refusal);
    expect(await snapshotOf(receiptId)).toEqual(before);

    // The receipt is voided: its checkout is canceled here, though the payer had paid at Stripe
    // just before (the void is told so). A canceled payment's claims change nothing, but Stripe has
    // just said that this checkout took the money, so the success is due: still refused.
    adminCounter += 1;
    const username = `disputereviewer${adminCounter}`;
    const admin = await signInNewAdmin(stripe.app, db, username);
    await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ reason: 'billed to the wrong project' })
      .expect(200);
    expect((await latestPaymentOf(receiptId)).status).toBe('canceled');
    const afterVoid = await deliverStripe(dispute);
    expect(afterVoid.status, afterVoid.text).toBe(409);
    expect(afterVoid.body.error).toBe(refusal);
    expect(await db.prisma.paymentEvent.count({ where: { externalEventId: 'evt_disputes_early' } })).toBe(0);

    const completed = await deliverStripe(
      buildStripeCheckoutPaid(session, 'pi_test_disputes_early', 'evt_disputes_early_paid'),
    );
    expect(completed.body).toEqual({ received: true, outcome: 'review' });
    const retried = await deliverStripe(dispute);
    expect(retried.status, retried.text).toBe(200);
    const held = await latestPaymentOf(receiptId);
    expect(held).toMatchObject({
      status: 'needs_review',
      externalDisputeId: 'dp_test_disputes_early',
      disputedMinor: 1000n,
    });
    expect(held.reviewReason).toContain('payment succeeded after it was canceled');
    expect(held.reviewReason).toContain('the payer disputed 10.00 THB of the 10.00 THB received at stripe');
  });

  it('charge.dispute.created and .closed after an admin resolved the payment hold it for review again', async () => {
    adminCounter += 1;
    const username = `disputereviewer${adminCounter}`;
    const { receiptId, resolve } = await paidAtStripeVoidedAndResolved(
      { db, app: stripe.app, deliver: deliverStripe, payers },
      {
        paymentIntent: 'pi_test_disputes_resolved',
        paidEventId: 'evt_disputes_paid_resolved',
        adminUsername: username,
        resolvedAs: { outcome: 'refunded', note: 'Refunded in the Stripe dashboard.' },
      },
    );

    const dispute = {
      id: 'dp_test_disputes_resolved',
      payment_intent: 'pi_test_disputes_resolved',
      amount: 1000,
      currency: 'thb',
    };
    const created = await deliverStripe(buildStripeDisputeCreated(dispute, 'evt_disputes_created_resolved'));
    expect(created.status, created.text).toBe(200);
    expect(created.body).toEqual({ received: true, outcome: 'review' });
    const held = await latestPaymentOf(receiptId);
    expect(held).toMatchObject({ status: 'needs_review', reviewOutcome: null, externalDisputeId: dispute.id });
    expect(held.reviewReason).toContain(
      `the payer disputed 10.00 THB of the 10.00 THB received at stripe (reason: fraudulent), after this payment was resolved as refunded by ${username}`,
    );

    await resolve('dismissed', 'Sent Stripe the refund as evidence.');
    const closed = await deliverStripe(buildStripeDisputeClosed(dispute, 'evt_disputes_closed_resolved'));
    expect(closed.status, closed.text).toBe(200);
    expect(closed.body).toEqual({ received: true, outcome: 'review' });
    const lost = await latestPaymentOf(receiptId);
    expect(lost).toMatchObject({ status: 'needs_review', reviewOutcome: null, disputeStatus: 'lost' });
    expect(lost.reviewReason).toContain(
      `the dispute was lost at stripe: 10.00 THB of the 10.00 THB received was taken back, after this payment was resolved as dismissed by ${username}`,
    );
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('void');
  });
});
