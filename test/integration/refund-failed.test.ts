import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { createPayingResearchers } from '../support/dummy-payments.js';
import {
  buildStripeChargeRefunded,
  buildStripeCheckoutPaid,
  buildStripeRefundUpdated,
} from '../support/fake-stripe.js';
import { type Agent, csrfTokenOf, signInNewAdmin } from '../support/sign-in.js';
import { useStripeApp } from '../support/stripe-webhooks.js';
import { metricValue } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A refund made at Stripe can fail later (the card was closed, the bank refused it): Stripe sends
// charge.refund.updated with the Refund's status "failed" (or "canceled"), and the money stays with
// the centre. The app did not read it, so the refund stayed recorded as money returned, and a
// receipt a full refund had unpaid asked the researcher to pay again for jobs already paid for.
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
});
afterAll(() => db?.drop());

const { stripe, deliver } = useStripeApp(() => db, {
  secretKey: 'sk_test_fakekeyforfailedrefunds',
  webhookSecret: 'whsec_failedrefundsecretfortests',
});

const { researcherWithReceipt, startCheckout, latestPaymentOf } = createPayingResearchers(
  () => ({ db, app: stripe.app }),
  'refundfailed',
);

let paidCounter = 0;
/** A receipt of 10.00 THB paid through Stripe Checkout, its PaymentIntent named by the success. */
async function paidAtStripe() {
  paidCounter += 1;
  const { agent, receiptId } = await researcherWithReceipt(stripe.app);
  await startCheckout(agent, receiptId);
  const payment = await latestPaymentOf(receiptId);
  const intent = `pi_test_refund_failed_${paidCounter}`;
  const completed = await deliver(
    buildStripeCheckoutPaid(payment.externalPaymentId, intent, `evt_refund_failed_paid_${paidCounter}`),
  );
  expect(completed.body).toEqual({ received: true, outcome: 'ok' });
  return { agent, receiptId, payment, intent };
}

function refundAtStripe(intent: string, amountRefunded: number, eventId: string) {
  return deliver(
    buildStripeChargeRefunded(
      { payment_intent: intent, amount: 1000, amount_refunded: amountRefunded, currency: 'thb' },
      eventId,
    ),
  );
}

function refundFailed(intent: string, refundId: string, amount: number, eventId: string, fields = {}) {
  return deliver(
    buildStripeRefundUpdated({ id: refundId, payment_intent: intent, amount, currency: 'thb', ...fields }, eventId),
  );
}

async function snapshotOf(receiptId: number) {
  return {
    receipt: await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } }),
    payments: await db.prisma.payment.findMany({ where: { receiptId }, orderBy: { id: 'asc' } }),
    items: await db.prisma.receiptItem.findMany({ where: { receiptId }, orderBy: { id: 'asc' } }),
    audits: await db.prisma.auditLog.findMany({ where: { target: `receipt:${receiptId}` }, orderBy: { id: 'asc' } }),
  };
}

let adminCounter = 0;
async function signInAdmin() {
  adminCounter += 1;
  const username = `failedrefundreviewer${adminCounter}`;
  return signInNewAdmin(stripe.app, db, username);
}

async function resolve(admin: Agent, paymentId: number, outcome: string, note: string) {
  return admin
    .post(`/admin/payments/${paymentId}/resolve`)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin))
    .send({ outcome, note });
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const failedMetric = (outcome: string) =>
  metricValue(stripe.metrics, 'payments_webhook_events_total', {
    provider: 'stripe',
    event: 'payment.refund_failed',
    outcome,
  });

describe('a partial refund that failed', () => {
  it('keeps the payment held with a clear message, audited once; the receipt stays paid and the refund recorded as reported', async () => {
    const { receiptId, payment, intent } = await paidAtStripe();
    await refundAtStripe(intent, 300, 'evt_part_refund_1').expect(200);
    const receiptBefore = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
    const reviewBefore = await failedMetric('review');

    const answer = await refundFailed(intent, 're_part_failed_1', 300, 'evt_part_refund_1_failed');
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toEqual({ received: true, outcome: 'review' });
    expect(await failedMetric('review')).toBe(reviewBefore + 1);

    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toEqual(receiptBefore);
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'needs_review',
      holdsPaidReceipt: true,
      refundedMinor: 300n,
      reviewReason:
        `3.00 THB of the 10.00 THB received was refunded at stripe; receipt #${receiptId} stays paid until this is resolved; ` +
        'the refund re_part_failed_1 of 3.00 THB failed at stripe (expired_or_canceled_card): the money was not returned ' +
        'to the payer and is still with the centre',
    });
    const audits = await db.prisma.auditLog.findMany({
      where: { action: 'payment.refund_failed', target: `receipt:${receiptId}` },
    });
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ actor: 'provider:stripe', status: 'ok' });
    expect(audits[0]?.details).toMatchObject({
      paymentId: payment.id,
      eventId: 'evt_part_refund_1_failed',
      refundId: 're_part_failed_1',
      refundStatus: 'failed',
      failureReason: 'expired_or_canceled_card',
      amountMinor: '300',
      currency: 'THB',
      receipt: 'stays_paid',
    });

    // A replay is a duplicate; the same refund told again by another event changes nothing.
    const after = await snapshotOf(receiptId);
    const replay = await refundFailed(intent, 're_part_failed_1', 300, 'evt_part_refund_1_failed');
    expect(replay.body).toEqual({ received: true, outcome: 'duplicate' });
    const retold = await refundFailed(intent, 're_part_failed_1', 300, 'evt_part_refund_1_failed_again');
    expect(retold.body).toEqual({ received: true, outcome: 'ignored' });
    expect(await snapshotOf(receiptId)).toEqual(after);

    // On /admin/payments the held card says why.
    const admin = await signInAdmin();
    const page = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('the refund re_part_failed_1 of 3.00 THB failed at stripe (expired_or_canceled_card)');
  });

  it('after the admin accepted the partly refunded payment, holds it again for review', async () => {
    const { receiptId, payment, intent } = await paidAtStripe();
    await refundAtStripe(intent, 400, 'evt_accepted_refund').expect(200);
    const admin = await signInAdmin();
    const accepted = await resolve(admin, payment.id, 'accepted', 'Partial refund agreed as a discount.');
    expect(accepted.status, accepted.text).toBe(200);
    const { reviewedBy } = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });

    const answer = await refundFailed(intent, 're_accepted_failed', 400, 'evt_accepted_refund_failed', {
      status: 'canceled',
      failure_reason: null,
    });
    expect(answer.body).toEqual({ received: true, outcome: 'review' });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('paid');
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(held).toMatchObject({
      status: 'needs_review',
      holdsPaidReceipt: true,
      reviewOutcome: null,
      reviewNote: null,
    });
    // The acceptance it clears, and what it was taken on, stay in the reason.
    expect(held.reviewReason).toMatch(
      new RegExp(
        `^${escapeRegExp(
          'the refund re_accepted_failed of 4.00 THB was canceled at stripe: the money was not returned to the payer ' +
            `and is still with the centre; receipt #${receiptId} stays paid until this is resolved; it had been ` +
            `resolved as accepted by ${reviewedBy} on `,
        )}\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}${escapeRegExp(
          ' ("Partial refund agreed as a discount."), after it was held for review: 4.00 THB of the 10.00 THB ' +
            `received was refunded at stripe; receipt #${receiptId} stays paid until this is resolved`,
        )}$`,
      ),
    );
  });
});

describe('a refund in full that failed, after it unpaid the receipt', () => {
  it('holds the payment, so the receipt cannot be paid online a second time; the admin accepts it to mark the receipt paid', async () => {
    const { agent, receiptId, payment, intent } = await paidAtStripe();
    await refundAtStripe(intent, 1000, 'evt_full_refund').expect(200);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');

    const answer = await refundFailed(intent, 're_full_failed', 1000, 'evt_full_refund_failed');
    expect(answer.body).toEqual({ received: true, outcome: 'review' });
    const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
    expect(receipt.status).toBe('pending');
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'needs_review',
      holdsPaidReceipt: false,
      reviewOutcome: null,
      reviewedBy: null,
      refundedMinor: 1000n,
      reviewReason:
        'the refund re_full_failed of 10.00 THB failed at stripe (expired_or_canceled_card): the money was not returned ' +
        `to the payer and is still with the centre; receipt #${receiptId} was unpaid by that refund and is pending: ` +
        'accept this payment to mark it paid from this money, or refund it again at stripe and resolve as refunded',
    });

    // The researcher cannot pay the same jobs a second time while the money is held.
    const again = await agent
      .post(`/payments/receipt/${receiptId}/start`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent));
    expect(again.status).toBe(409);
    expect(again.body.error).toContain('A payment for this receipt is being checked by the billing team');
    expect(await db.prisma.payment.count({ where: { receiptId } })).toBe(1);

    const admin = await signInAdmin();
    const accepted = await resolve(
      admin,
      payment.id,
      'accepted',
      'The refund failed; the money stays for this receipt.',
    );
    expect(accepted.status, accepted.text).toBe(200);
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
      status: 'paid',
      paymentMethod: 'stripe',
    });
  });

  it('after the receipt was paid again, holds the payment and says the payer may have paid twice', async () => {
    const { agent, receiptId, payment, intent } = await paidAtStripe();
    await refundAtStripe(intent, 1000, 'evt_full_refund_repaid').expect(200);
    await startCheckout(agent, receiptId);
    const second = await latestPaymentOf(receiptId);
    await deliver(
      buildStripeCheckoutPaid(second.externalPaymentId, `${intent}_second`, 'evt_full_refund_repaid_second'),
    ).expect(200);
    const paidAgain = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
    expect(paidAgain.status).toBe('paid');

    const answer = await refundFailed(intent, 're_repaid_failed', 1000, 'evt_full_refund_repaid_failed');
    expect(answer.body).toEqual({ received: true, outcome: 'review' });
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toEqual(paidAgain);
    expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: second.id } })).status).toBe('succeeded');
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'needs_review',
      holdsPaidReceipt: false,
      reviewReason:
        'the refund re_repaid_failed of 10.00 THB failed at stripe (expired_or_canceled_card): the money was not ' +
        `returned to the payer and is still with the centre; receipt #${receiptId} was paid again since, so the payer ` +
        'may have paid twice: refund this payment again at stripe and resolve as refunded, or resolve as dismissed with what was done',
    });
  });
});

describe('charge.refund.updated that is not a failed refund, or does not fit', () => {
  it('a refund still pending or succeeded is ignored and changes nothing', async () => {
    const { receiptId, intent } = await paidAtStripe();
    await refundAtStripe(intent, 300, 'evt_ok_refund').expect(200);
    const before = await snapshotOf(receiptId);
    for (const status of ['succeeded', 'pending', 'requires_action']) {
      const answer = await refundFailed(intent, 're_ok', 300, `evt_ok_refund_${status}`, {
        status,
        failure_reason: null,
      });
      expect(answer.status, answer.text).toBe(200);
      expect(answer.body).toEqual({ received: true, outcome: 'ignored' });
    }
    expect(await snapshotOf(receiptId)).toEqual(before);
  });

  it('a body about another object, or without an amount or status, is refused with 400 and stores nothing', async () => {
    const { receiptId, intent } = await paidAtStripe();
    const before = await snapshotOf(receiptId);
    const events = await db.prisma.paymentEvent.count();
    const notARefund = await refundFailed(intent, 're_bad', 300, 'evt_bad_object', { object: 'charge' });
    expect(notARefund.status).toBe(400);
    expect(notARefund.body.error).toBe(
      'Webhook rejected: body\'s charge.refund.updated event is about a "charge", not a Refund.',
    );
    const noAmount = await refundFailed(intent, 're_bad', 300, 'evt_bad_amount', { amount: '3.00' });
    expect(noAmount.status).toBe(400);
    expect(noAmount.body.error).toBe(
      "Webhook rejected: body's Refund amount must be a whole number of minor units, 0 or more.",
    );
    const noStatus = await refundFailed(intent, 're_bad', 300, 'evt_bad_status', { status: null });
    expect(noStatus.status).toBe(400);
    expect(noStatus.body.error).toBe("Webhook rejected: body's Refund status must be text.");
    expect(await snapshotOf(receiptId)).toEqual(before);
    expect(await db.prisma.paymentEvent.count()).toBe(events);
  });

  it('a failed refund of more than the payment received is refused (409), changes no money and is listed for finance', async () => {
    const { receiptId, payment, intent } = await paidAtStripe();
    const before = await snapshotOf(receiptId);
    const answer = await refundFailed(intent, 're_too_much', 1200, 'evt_too_much_failed');
    expect(answer.status).toBe(409);
    expect(answer.body.error).toBe(
      `Webhook rejected: the failed refund of payment #${payment.id} (12.00 THB) is more than the 10.00 THB it received; nothing was changed.`,
    );
    const after = await snapshotOf(receiptId);
    expect({ ...after, audits: after.audits.slice(0, before.audits.length) }).toEqual(before);
    expect(
      await db.prisma.paymentRefusedClaim.findMany({ where: { externalEventId: 'evt_too_much_failed' } }),
    ).toMatchObject([{ eventType: 'payment.refund_failed', claimedMinor: 1200n, claimedCurrency: 'THB' }]);
  });

  it('for a payment this app does not know is answered 200 and changes nothing', async () => {
    const before = await db.prisma.payment.findMany({ orderBy: { id: 'asc' } });
    const unknown = await refundFailed('pi_not_ours', 're_not_ours', 300, 'evt_failed_not_ours');
    expect(unknown.body).toEqual({ received: true, outcome: 'unknown_payment' });
    expect(await db.prisma.payment.findMany({ orderBy: { id: 'asc' } })).toEqual(before);
    expect(await db.prisma.paymentFailedRefund.count({ where: { externalRefundId: 're_not_ours' } })).toBe(0);
  });
});
