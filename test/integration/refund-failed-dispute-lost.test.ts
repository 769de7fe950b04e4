import type express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { createPayingResearchers, DUMMY_PAYMENTS_ENV, deliverDummy } from '../support/dummy-payments.js';
import {
  buildStripeChargeRefunded,
  buildStripeCheckoutPaid,
  buildStripeDisputeClosed,
  buildStripeDisputeCreated,
  buildStripeRefundUpdated,
} from '../support/fake-stripe.js';
import { createPaidCsvStory } from '../support/paid-csv-story.js';
import { type Agent, csrfTokenOf, signInNewAdmin } from '../support/sign-in.js';
import { useStripeApp } from '../support/stripe-webhooks.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A refund that failed stays in the payment's refunded total (flagged, not reversed), and a lost
// dispute adds its amount to that total. The lost dispute was checked against what the payment
// received with the failed refund still counted as money gone: after a refund of 10.00 THB that
// failed, losing a dispute of 10.00 THB was refused as 20.00 THB "more than the 10.00 THB it
// received", and after a failed 6.00 THB refund a lost 4.00 THB dispute unpaid the receipt as if
// all 10.00 THB had gone back.
let db: TestDatabase;
let dummyApp: express.Express;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  dummyApp = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV });
});
afterAll(() => db?.drop());

const { stripe, deliver } = useStripeApp(() => db, {
  secretKey: 'sk_test_fakekeyforfaileddisputes',
  webhookSecret: 'whsec_faileddisputesecretfortests',
});

const dummyResearchers = createPayingResearchers(() => ({ db, app: dummyApp }), 'faileddisputedummy');
const stripeResearchers = createPayingResearchers(() => ({ db, app: stripe.app }), 'faileddisputestripe');
const { paidCsv } = createPaidCsvStory(() => db);

/** A receipt of 10.00 THB paid online; `ref` is what the provider's later events name it by. */
interface Paid {
  agent: Agent;
  receiptId: number;
  paymentId: number;
  ref: string;
}

/** One provider's events, each a signed webhook of its own shape. */
interface Provider {
  name: 'dummy' | 'stripe';
  app(): express.Express;
  paid(): Promise<Paid>;
  /** `totalCents`: all refunded of the payment so far, as the provider reports it. */
  refunded(ref: string, totalCents: number, eventId: string): ReturnType<typeof deliver>;
  refundFailed(ref: string, refundId: string, cents: number, eventId: string): ReturnType<typeof deliver>;
  disputed(ref: string, disputeId: string, cents: number, eventId: string): ReturnType<typeof deliver>;
  lost(ref: string, disputeId: string, cents: number, eventId: string): ReturnType<typeof deliver>;
}

const dummy: Provider = {
  name: 'dummy',
  app: () => dummyApp,
  async paid() {
    const { agent, receiptId, payment } = await dummyResearchers.paidOnline();
    return { agent, receiptId, paymentId: payment.id, ref: payment.externalPaymentId ?? '' };
  },
  refunded: (ref, totalCents, eventId) =>
    deliverDummy(dummyApp, {
      event_id: eventId,
      event_type: 'payment.refunded',
      external_payment_id: ref,
      amount_cents: totalCents,
      currency: 'THB',
    }),
  refundFailed: (ref, refundId, cents, eventId) =>
    deliverDummy(dummyApp, {
      event_id: eventId,
      event_type: 'payment.refund_failed',
      external_payment_id: ref,
      amount_cents: cents,
      currency: 'THB',
      refund_id: refundId,
    }),
  disputed: (ref, disputeId, cents, eventId) =>
    deliverDummy(dummyApp, {
      event_id: eventId,
      event_type: 'payment.disputed',
      external_payment_id: ref,
      amount_cents: cents,
      currency: 'THB',
      dispute_id: disputeId,
      dispute_reason: 'fraudulent',
    }),
  lost: (ref, disputeId, cents, eventId) =>
    deliverDummy(dummyApp, {
      event_id: eventId,
      event_type: 'payment.dispute_closed',
      external_payment_id: ref,
      amount_cents: cents,
      currency: 'THB',
      dispute_id: disputeId,
      dispute_reason: 'fraudulent',
      dispute_status: 'lost',
    }),
};

let stripeCounter = 0;
const stripeProvider: Provider = {
  name: 'stripe',
  app: () => stripe.app,
  async paid() {
    stripeCounter += 1;
    const { agent, receiptId } = await stripeResearchers.researcherWithReceipt(stripe.app);
    await stripeResearchers.startCheckout(agent, receiptId);
    const payment = await stripeResearchers.latestPaymentOf(receiptId);
    const intent = `pi_test_failed_dispute_${stripeCounter}`;
    const completed = await deliver(
      buildStripeCheckoutPaid(payment.externalPaymentId, intent, `evt_failed_dispute_paid_${stripeCounter}`),
    );
    expect(completed.body).toEqual({ received: true, outcome: 'ok' });
    return { agent, receiptId, paymentId: payment.id, ref: intent };
  },
  refunded: (ref, totalCents, eventId) =>
    deliver(
      buildStripeChargeRefunded(
        { payment_intent: ref, amount: 1000, amount_refunded: totalCents, currency: 'thb' },
        eventId,
      ),
    ),
  refundFailed: (ref, refundId, cents, eventId) =>
    deliver(buildStripeRefundUpdated({ id: refundId, payment_intent: ref, amount: cents, currency: 'thb' }, eventId)),
  disputed: (ref, disputeId, cents, eventId) =>
    deliver(buildStripeDisputeCreated({ id: disputeId, payment_intent: ref, amount: cents, currency: 'thb' }, eventId)),
  lost: (ref, disputeId, cents, eventId) =>
    deliver(
      buildStripeDisputeClosed(
        { id: disputeId, payment_intent: ref, amount: cents, currency: 'thb', status: 'lost' },
        eventId,
      ),
    ),
};

const providers = [dummy, stripeProvider].map((provider) => [provider.name, provider] as const);

let adminCounter = 0;
async function signInAdmin(on: express.Express) {
  adminCounter += 1;
  const username = `faileddisputefinance${adminCounter}`;
  return signInNewAdmin(on, db, username);
}

/** What finance and the researcher see of the money: the rows, paid.csv's line and the receipt's JSON. */
async function moneyOf(provider: Provider, paid: Paid) {
  const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id: paid.receiptId } });
  const payment = await db.prisma.payment.findUniqueOrThrow({ where: { id: paid.paymentId } });
  const admin = await signInAdmin(provider.app());
  const csv = await paidCsv(admin, 'start=2000-01-01&end=2100-12-31');
  const line = csv.rows.find((row) => row.receipt_id === String(paid.receiptId));
  const json = await paid.agent.get(`/me/receipts/${paid.receiptId}`).set('Accept', 'application/json').expect(200);
  // /admin/payments: the Refunded column of the payment's row, up to when it was refunded.
  const list = (await admin.get('/admin/payments').set('Accept', 'text/html').expect(200)).text;
  const row = list.slice(list.indexOf(`<td data-label="Payment">${paid.paymentId}</td>`));
  const adminRefunded = /<td data-label="Refunded" class="num"><span>([^(<]*) \(/.exec(
    row.slice(0, row.indexOf('</tr>')),
  )?.[1];
  return {
    receipt: receipt.status,
    payment: {
      status: payment.status,
      reviewOutcome: payment.reviewOutcome,
      holdsPaidReceipt: payment.holdsPaidReceipt,
      refundedMinor: payment.refundedMinor,
      disputeStatus: payment.disputeStatus,
    },
    failedRefundMinor: (
      await db.prisma.paymentFailedRefund.aggregate({
        where: { paymentId: paid.paymentId },
        _sum: { amountMinor: true },
      })
    )._sum.amountMinor,
    csvRefunded: line?.amount_refunded,
    csvLost: line?.amount_disputed_lost,
    adminRefunded,
    refunds: (json.body.receipt.refunds as Array<Record<string, unknown>>).map(({ amount, isFull, failedAmount }) => ({
      amount,
      isFull,
      failedAmount,
    })),
  };
}

async function lostAuditOf(receiptId: number) {
  const audits = await db.prisma.auditLog.findMany({
    where: { action: 'payment.dispute_closed', target: `receipt:${receiptId}` },
  });
  expect(audits).toHaveLength(1);
  return audits[0]?.details;
}

describe('a dispute lost after a refund in full that failed', () => {
  it.each(providers)('%s: the bank took the 10.00 THB the failed refund left, no more', async (_name, provider) => {
    const paid = await provider.paid();
    const id = `${provider.name}_full_${paid.paymentId}`;
    expect((await provider.refunded(paid.ref, 1000, `${id}_refunded`)).body.outcome).toBe('ok');
    expect((await provider.refundFailed(paid.ref, `re_${id}`, 1000, `${id}_failed`)).body.outcome).toBe('review');
    expect((await provider.disputed(paid.ref, `dp_${id}`, 1000, `${id}_disputed`)).status).toBe(200);

    const lost = await provider.lost(paid.ref, `dp_${id}`, 1000, `${id}_lost`);
    expect(lost.status, lost.text).toBe(200);
    expect(lost.body.outcome).toBe('ok');
    expect(await db.prisma.paymentRefusedClaim.count({ where: { paymentId: paid.paymentId } })).toBe(0);

    // The receipt the refund unpaid stays pending; the money gone is the lost 10.00 THB.
    expect(await moneyOf(provider, paid)).toEqual({
      receipt: 'pending',
      payment: {
        status: 'needs_review',
        reviewOutcome: null,
        holdsPaidReceipt: false,
        refundedMinor: 2000n,
        disputeStatus: 'lost',
      },
      failedRefundMinor: 1000n,
      csvRefunded: '0.00',
      csvLost: '10.00',
      adminRefunded: '10.00 THB',
      // No failed amount: the bank took what the failed refund had left with the centre.
      refunds: [{ amount: '10.00', isFull: true, failedAmount: null }],
    });
    // Held for the failed refund, the admin is no longer told to mark the receipt paid from money the bank took.
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: paid.paymentId } });
    expect(held.reviewReason).toContain(
      `the dispute was lost at ${provider.name}: 10.00 THB of the 10.00 THB received was taken back`,
    );
    expect(await lostAuditOf(paid.receiptId)).toMatchObject({
      amountMinor: '1000',
      refundedTotalMinor: '2000',
      returnedTotalMinor: '1000',
      receipt: 'none',
    });

    // Nothing of it is left to pay the receipt: accepting it is refused, resolving it as refunded is not.
    const admin = await signInAdmin(provider.app());
    const resolve = async (outcome: string, note: string) =>
      admin
        .post(`/admin/payments/${paid.paymentId}/resolve`)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(admin))
        .send({ outcome, note });
    const accepted = await resolve('accepted', 'The refund failed; the money stays for this receipt.');
    expect(accepted.status).toBe(409);
    expect(accepted.body.error).toBe(
      `Nothing of payment #${paid.paymentId} is left to pay receipt #${paid.receiptId}: the 10.00 THB it received ` +
        'went back (refunded, or taken back by a lost dispute). Resolve it as refunded, or as dismissed with what ' +
        'was done; nothing was changed.',
    );
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: paid.receiptId } })).status).toBe('pending');
    expect((await resolve('refunded', 'The bank took it back in the dispute.')).status).toBe(200);
  });
});

describe('a dispute lost in part after a partial refund that failed', () => {
  it.each(providers)('%s: 4.00 THB of 10.00 THB is gone, so the receipt stays paid', async (_name, provider) => {
    const paid = await provider.paid();
    const id = `${provider.name}_part_${paid.paymentId}`;
    expect((await provider.refunded(paid.ref, 600, `${id}_refunded`)).body.outcome).toBe('review');
    expect((await provider.refundFailed(paid.ref, `re_${id}`, 600, `${id}_failed`)).body.outcome).toBe('review');
    expect((await provider.disputed(paid.ref, `dp_${id}`, 400, `${id}_disputed`)).body.outcome).toBe('review');

    const lost = await provider.lost(paid.ref, `dp_${id}`, 400, `${id}_lost`);
    expect(lost.status, lost.text).toBe(200);
    expect(lost.body.outcome).toBe('review');
    expect(await moneyOf(provider, paid)).toEqual({
      receipt: 'paid',
      payment: {
        status: 'needs_review',
        reviewOutcome: null,
        holdsPaidReceipt: true,
        refundedMinor: 1000n,
        disputeStatus: 'lost',
      },
      failedRefundMinor: 600n,
      csvRefunded: '0.00',
      csvLost: '4.00',
      adminRefunded: '4.00 THB',
      refunds: [{ amount: '4.00', isFull: false, failedAmount: '6.00' }],
    });
    expect(await lostAuditOf(paid.receiptId)).toMatchObject({
      amountMinor: '400',
      refundedTotalMinor: '1000',
      returnedTotalMinor: '400',
      receipt: 'stays_paid',
    });

    // Dismissing it is refused in the words of what went back: the failed 6.00 THB is no refund.
    const admin = await signInAdmin(provider.app());
    const dismissed = await admin
      .post(`/admin/payments/${paid.paymentId}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'dismissed', note: 'The bank kept 4.00 THB.' });
    expect(dismissed.status).toBe(409);
    expect(dismissed.body.error).toBe(
      `Payment #${paid.paymentId} still pays receipt #${paid.receiptId}, of which 4.00 THB was taken back by a lost ` +
        'dispute. Accept it to keep the receipt paid from the rest, or void the receipt on the billing page first; nothing was changed.',
    );
  });
});

describe('a refund reported and failed after a dispute lost in part', () => {
  it.each(providers)('%s: the lost 4.00 THB stays counted as gone', async (_name, provider) => {
    const paid = await provider.paid();
    const id = `${provider.name}_reverse_${paid.paymentId}`;
    expect((await provider.disputed(paid.ref, `dp_${id}`, 400, `${id}_disputed`)).body.outcome).toBe('review');
    expect((await provider.lost(paid.ref, `dp_${id}`, 400, `${id}_lost`)).body.outcome).toBe('review');

    const refunded = await provider.refunded(paid.ref, 300, `${id}_refunded`);
    expect(refunded.status, refunded.text).toBe(200);
    expect(refunded.body.outcome).toBe('review');
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: paid.paymentId } });
    expect(held.refundedMinor).toBe(700n);
    // The hold keeps what the admin decides on: the lost dispute, and the refund on top of it.
    expect(held.reviewReason).toContain(
      `the dispute was lost at ${provider.name}: 4.00 THB of the 10.00 THB received was taken back; ` +
        `3.00 THB of the 10.00 THB received was refunded at ${provider.name}, on top of the 4.00 THB taken back by the lost dispute`,
    );
    const refundAudit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'payment.refund', target: `receipt:${paid.receiptId}` },
    });
    expect(refundAudit.details).toMatchObject({ amountMinor: '300', refundedTotalMinor: '700', receipt: 'stays_paid' });

    expect((await provider.refundFailed(paid.ref, `re_${id}`, 300, `${id}_failed`)).body.outcome).toBe('review');
    expect(await moneyOf(provider, paid)).toEqual({
      receipt: 'paid',
      payment: {
        status: 'needs_review',
        reviewOutcome: null,
        holdsPaidReceipt: true,
        refundedMinor: 700n,
        disputeStatus: 'lost',
      },
      failedRefundMinor: 300n,
      csvRefunded: '0.00',
      csvLost: '4.00',
      adminRefunded: '4.00 THB',
      refunds: [{ amount: '4.00', isFull: false, failedAmount: '3.00' }],
    });
  });
});

describe('a refund reported after a dispute lost in full', () => {
  it.each(providers)(
    '%s: is refused as more than the payment received, and the loss stays',
    async (_name, provider) => {
      const paid = await provider.paid();
      const id = `${provider.name}_after_lost_${paid.paymentId}`;
      expect((await provider.disputed(paid.ref, `dp_${id}`, 1000, `${id}_disputed`)).body.outcome).toBe('review');
      expect((await provider.lost(paid.ref, `dp_${id}`, 1000, `${id}_lost`)).body.outcome).toBe('ok');
      const before = await moneyOf(provider, paid);

      const refunded = await provider.refunded(paid.ref, 1000, `${id}_refunded`);
      expect(refunded.status).toBe(409);
      expect(refunded.body.error).toBe(
        `Webhook rejected: the refund of payment #${paid.paymentId} (20.00 THB in all, with its lost dispute) is more ` +
          'than the 10.00 THB it received; nothing was changed.',
      );
      expect(await db.prisma.paymentRefusedClaim.count({ where: { paymentId: paid.paymentId } })).toBe(1);
      expect(await moneyOf(provider, paid)).toEqual(before);
      expect(before).toMatchObject({
        receipt: 'pending',
        csvRefunded: '',
        csvLost: '10.00',
        payment: { refundedMinor: 1000n },
      });
    },
  );
});

describe('a refund that failed after a dispute lost in full', () => {
  // The bank took back all the payment received, so a refund of it attempted afterwards (and
  // refused by the provider) returned nothing and left nothing with the centre: the payment was held
  // again with a reason saying the money "is still with the centre" and to accept it, which is refused.
  it.each(providers)(
    '%s: is recorded and audited, and the payment and receipt stay as the dispute left them',
    async (_name, provider) => {
      const paid = await provider.paid();
      const id = `${provider.name}_failed_after_lost_${paid.paymentId}`;
      expect((await provider.disputed(paid.ref, `dp_${id}`, 1000, `${id}_disputed`)).body.outcome).toBe('review');
      expect((await provider.lost(paid.ref, `dp_${id}`, 1000, `${id}_lost`)).body.outcome).toBe('ok');
      const before = await moneyOf(provider, paid);
      const paymentBefore = await db.prisma.payment.findUniqueOrThrow({ where: { id: paid.paymentId } });

      const failed = await provider.refundFailed(paid.ref, `re_${id}`, 1000, `${id}_failed`);
      expect(failed.status, failed.text).toBe(200);
      expect(failed.body.outcome).toBe('ok');
      // paid.csv: a refund was reported, and it failed: nothing went back by refund, the bank's 10.00 THB apart.
      expect(before).toMatchObject({ csvRefunded: '', csvLost: '10.00' });
      expect(await moneyOf(provider, paid)).toEqual({ ...before, failedRefundMinor: 1000n, csvRefunded: '0.00' });
      // The researcher's receipt page: money the bank took back, not a failure that kept it.
      const page = (await paid.agent.get(`/me/receipts/${paid.receiptId}`).set('Accept', 'text/html').expect(200)).text;
      expect(page).toContain(
        `Payment #${paid.paymentId} of 10.00 THB via ${provider.name} was taken back in full by the bank on`,
      );
      expect(page).not.toContain('still with the centre');
      const paymentAfter = await db.prisma.payment.findUniqueOrThrow({ where: { id: paid.paymentId } });
      expect({ ...paymentAfter, updatedAt: null }).toEqual({ ...paymentBefore, updatedAt: null });
      const audits = await db.prisma.auditLog.findMany({
        where: { action: 'payment.refund_failed', target: `receipt:${paid.receiptId}` },
      });
      expect(audits.map((audit) => audit.details)).toEqual([
        expect.objectContaining({
          refundId: `re_${id}`,
          amountMinor: '1000',
          receipt: 'none',
          isAllTakenByDispute: true,
        }),
      ]);

      // Told again: nothing more.
      expect((await provider.refundFailed(paid.ref, `re_${id}`, 1000, `${id}_failed_again`)).body.outcome).toBe(
        'ignored',
      );
      expect(
        await db.prisma.auditLog.count({
          where: { action: 'payment.refund_failed', target: `receipt:${paid.receiptId}` },
        }),
      ).toBe(1);
    },
  );
});

describe('a dispute lost in full after a refund whose failure arrived before its report', () => {
  it.each(providers)('%s: the lost 10.00 THB unpays the receipt as a refund in full does', async (_name, provider) => {
    const paid = await provider.paid();
    const id = `${provider.name}_early_${paid.paymentId}`;
    expect((await provider.refundFailed(paid.ref, `re_${id}`, 1000, `${id}_failed`)).body.outcome).toBe('review');
    expect((await provider.refunded(paid.ref, 1000, `${id}_refunded`)).body.outcome).toBe('review');
    expect((await provider.disputed(paid.ref, `dp_${id}`, 1000, `${id}_disputed`)).body.outcome).toBe('review');

    const lost = await provider.lost(paid.ref, `dp_${id}`, 1000, `${id}_lost`);
    expect(lost.status, lost.text).toBe(200);
    expect(lost.body.outcome).toBe('ok');
    expect(await moneyOf(provider, paid)).toEqual({
      receipt: 'pending',
      payment: {
        status: 'resolved',
        reviewOutcome: 'refunded',
        holdsPaidReceipt: false,
        refundedMinor: 2000n,
        disputeStatus: 'lost',
      },
      failedRefundMinor: 1000n,
      csvRefunded: '0.00',
      csvLost: '10.00',
      adminRefunded: '10.00 THB',
      // No failed amount: the bank took what the failed refund had left with the centre.
      refunds: [{ amount: '10.00', isFull: true, failedAmount: null }],
    });
    expect(await lostAuditOf(paid.receiptId)).toMatchObject({
      amountMinor: '1000',
      refundedTotalMinor: '2000',
      returnedTotalMinor: '1000',
      receipt: 'unpaid',
    });
  });
});

describe('a dispute lost in full after a refund failed whose report has not arrived', () => {
  it.each(providers)('%s: counts the 10.00 THB the bank took, before and after the report', async (_name, provider) => {
    const paid = await provider.paid();
    const id = `${provider.name}_unreported_${paid.paymentId}`;
    expect((await provider.refundFailed(paid.ref, `re_${id}`, 1000, `${id}_failed`)).body.outcome).toBe('review');
    expect((await provider.disputed(paid.ref, `dp_${id}`, 1000, `${id}_disputed`)).body.outcome).toBe('review');
    expect((await provider.lost(paid.ref, `dp_${id}`, 1000, `${id}_lost`)).body.outcome).toBe('ok');
    const gone = {
      receipt: 'pending',
      failedRefundMinor: 1000n,
      csvRefunded: '0.00',
      csvLost: '10.00',
      adminRefunded: '10.00 THB',
      // No failed amount: the bank took what the failed refund had left with the centre.
      refunds: [{ amount: '10.00', isFull: true, failedAmount: null }],
    };
    expect(await moneyOf(provider, paid)).toMatchObject({ ...gone, payment: { refundedMinor: 1000n } });

    // The report of the refund that failed comes last: still the 10.00 THB the bank took.
    expect((await provider.refunded(paid.ref, 1000, `${id}_refunded`)).body.outcome).toBe('ok');
    expect(await moneyOf(provider, paid)).toMatchObject({
      ...gone,
      payment: { status: 'resolved', reviewOutcome: 'refunded', refundedMinor: 2000n },
    });
  });
});
