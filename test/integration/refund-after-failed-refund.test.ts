import { readFileSync } from 'node:fs';
import path from 'node:path';
import type request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS_DIR } from '../../src/db/migrations.js';
import { buildTiers } from '../support/billing-factories.js';
import { createPayingResearchers, deliverDummy, setUpDummyPayments } from '../support/dummy-payments.js';
import {
  buildStripeChargeRefunded,
  buildStripeCheckoutPaid,
  buildStripeRefundUpdated,
} from '../support/fake-stripe.js';
import { useStripeApp } from '../support/stripe-webhooks.js';
import type { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Stripe's amount_refunded counts the refunds that stand: a refund that fails is taken out of it
// again (its money went back to the centre's balance, docs.stripe.com/refunds, "Handle failed
// refunds"), so a charge can then be refunded in full. The app read every later total as still
// counting the failed refund: after 3.00 THB failed, the whole 10.00 THB refunded read as 7.00 THB
// returned (the receipt stayed paid), a smaller total was ignored as an old one, and the 13.00 THB
// that would have made "in full" was refused as more than the payment received.
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
});
afterAll(() => db?.drop());

const { stripe, deliver } = useStripeApp(() => db, {
  secretKey: 'sk_test_fakekeyforrefundafterfailure',
  webhookSecret: 'whsec_refundafterfailuresecretfortests',
});

const { researcherWithReceipt, startCheckout, latestPaymentOf } = createPayingResearchers(
  () => ({ db, app: stripe.app }),
  'refundafterfail',
);

let paidCounter = 0;
/** A receipt of 10.00 THB paid through Stripe Checkout, its PaymentIntent named by the success. */
async function paidAtStripe() {
  paidCounter += 1;
  const { agent, receiptId } = await researcherWithReceipt(stripe.app);
  await startCheckout(agent, receiptId);
  const payment = await latestPaymentOf(receiptId);
  const intent = `pi_test_refund_after_failure_${paidCounter}`;
  const completed = await deliver(
    buildStripeCheckoutPaid(payment.externalPaymentId, intent, `evt_refund_after_failure_paid_${paidCounter}`),
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

function refundFailed(intent: string, refundId: string, amount: number, eventId: string) {
  return deliver(buildStripeRefundUpdated({ id: refundId, payment_intent: intent, amount, currency: 'thb' }, eventId));
}

async function receiptJson(agent: ReturnType<typeof request.agent>, receiptId: number) {
  const answer = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'application/json').expect(200);
  return answer.body.receipt as { status: string; refunds: Array<{ amount: string; isFull: boolean }> };
}

describe('a Stripe refund reported after an earlier refund failed', () => {
  it('counts the total as Stripe reports it: the whole payment refunded unpays the receipt', async () => {
    const { agent, receiptId, payment, intent } = await paidAtStripe();
    await refundAtStripe(intent, 300, 'evt_after_failure_part').expect(200);
    expect((await refundFailed(intent, 're_after_failure_part', 300, 'evt_after_failure_failed')).body.outcome).toBe(
      'review',
    );

    // Stripe took the failed 3.00 THB out of amount_refunded; the whole 10.00 THB is refunded now.
    const full = await refundAtStripe(intent, 1000, 'evt_after_failure_full');
    expect(full.status, full.text).toBe(200);
    expect(full.body).toEqual({ received: true, outcome: 'ok' });

    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
      status: 'pending',
      paidAt: null,
    });
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'resolved',
      reviewOutcome: 'refunded',
      reviewedBy: 'provider:stripe',
      holdsPaidReceipt: false,
    });
    const shown = await receiptJson(agent, receiptId);
    expect(shown.refunds).toEqual([expect.objectContaining({ amount: '10.00', isFull: true })]);
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'payment.refund', target: `receipt:${receiptId}` },
      orderBy: { id: 'desc' },
    });
    expect(audit.details).toMatchObject({ amountMinor: '1000', returnedTotalMinor: '1000', receipt: 'unpaid' });

    // Told again, by the same event: nothing changes.
    expect((await refundAtStripe(intent, 1000, 'evt_after_failure_full')).body.outcome).toBe('duplicate');
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
  });

  it('records a smaller total after the failure as what went back, not as an old report', async () => {
    const { agent, receiptId, payment, intent } = await paidAtStripe();
    await refundAtStripe(intent, 500, 'evt_after_failure_smaller_first').expect(200);
    await refundFailed(intent, 're_after_failure_smaller', 500, 'evt_after_failure_smaller_failed').expect(200);

    const smaller = await refundAtStripe(intent, 200, 'evt_after_failure_smaller_second');
    expect(smaller.body).toEqual({ received: true, outcome: 'review' });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('paid');
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(held).toMatchObject({ status: 'needs_review', holdsPaidReceipt: true });
    expect(held.reviewReason).toContain('the refund re_after_failure_smaller of 5.00 THB failed at stripe');
    expect(held.reviewReason).toContain('2.00 THB of the 10.00 THB received was refunded at stripe');
    expect((await receiptJson(agent, receiptId)).refunds).toEqual([
      expect.objectContaining({ amount: '2.00', isFull: false }),
    ]);
  });

  it('refuses a total of more than the payment received, failed refund or not, and changes nothing', async () => {
    const { receiptId, payment, intent } = await paidAtStripe();
    await refundAtStripe(intent, 300, 'evt_after_failure_over_part').expect(200);
    await refundFailed(intent, 're_after_failure_over', 300, 'evt_after_failure_over_failed').expect(200);
    const before = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });

    const over = await refundAtStripe(intent, 1300, 'evt_after_failure_over');
    expect(over.status, over.text).toBe(409);
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toEqual(before);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('paid');
  });
});

// A failure told before any report of its refund is read as counted by the next report (Stripe made
// the report while the refund stood). A total smaller than the refund cannot have counted it: the
// report was made after the refund failed, and its amount is other refunds that went back. Every
// failure told first was marked counted by whatever total came next, so 3.00 THB reported after a
// 4.00 THB refund had failed read as nothing refunded (3.00 less 4.00), the receipt's page said so,
// and the 3.00 THB the payer got back was missing from every count.
describe('a Stripe refund total that cannot hold a refund told failed before it', () => {
  it('counts what it reports as gone: 3.00 THB after a failed 4.00 THB is 3.00 THB refunded', async () => {
    const { agent, receiptId, payment, intent } = await paidAtStripe();
    await refundFailed(intent, 're_cannot_hold_4', 400, 'evt_cannot_hold_failed').expect(200);

    const reported = await refundAtStripe(intent, 300, 'evt_cannot_hold_report');
    expect(reported.body).toEqual({ received: true, outcome: 'review' });
    expect((await receiptJson(agent, receiptId)).refunds).toEqual([
      expect.objectContaining({ amount: '3.00', isFull: false, failedAmount: '4.00' }),
    ]);
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    // Refunds ever reported: the 3.00 THB standing and the 4.00 THB that failed before this total.
    expect(held).toMatchObject({ status: 'needs_review', holdsPaidReceipt: true, refundedMinor: 700n });
    expect(held.reviewReason).toContain('3.00 THB of the 10.00 THB received was refunded at stripe');
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'payment.refund', target: `receipt:${receiptId}` },
      orderBy: { id: 'desc' },
    });
    expect(audit.details).toMatchObject({ returnedTotalMinor: '300', refundedTotalMinor: '700' });

    // The rest refunded later: Stripe's total is then the whole 10.00 THB, and the receipt is unpaid.
    expect((await refundAtStripe(intent, 1000, 'evt_cannot_hold_full')).body).toEqual({
      received: true,
      outcome: 'ok',
    });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
    expect((await receiptJson(agent, receiptId)).refunds).toEqual([
      expect.objectContaining({ amount: '10.00', isFull: true }),
    ]);
  });

  // Told before its own report, a failure is not in the total recorded so far: a refund that stands
  // (3.00 THB) and the failure of another (4.00 THB) whose report has not arrived yet read as nothing
  // refunded (3.00 less 4.00) until that report came, on every page and in paid.csv.
  it('leaves a failure told first out of what went back of the total recorded before it', async () => {
    const { agent, receiptId, intent } = await paidAtStripe();
    await refundAtStripe(intent, 300, 'evt_told_first_standing').expect(200);
    await refundFailed(intent, 're_told_first_4', 400, 'evt_told_first_failed').expect(200);
    expect((await receiptJson(agent, receiptId)).refunds).toEqual([
      expect.objectContaining({ amount: '3.00', failedAmount: '4.00' }),
    ]);

    // Its report, made before it failed, arrives: 7.00 THB in all, of which the 4.00 THB failed.
    await refundAtStripe(intent, 700, 'evt_told_first_report').expect(200);
    expect((await receiptJson(agent, receiptId)).refunds).toEqual([
      expect.objectContaining({ amount: '3.00', failedAmount: '4.00' }),
    ]);
  });

  it('of two failures told first, counts only those its total can hold', async () => {
    const { agent, receiptId, intent } = await paidAtStripe();
    await refundFailed(intent, 're_holds_one_3', 300, 'evt_holds_one_failed_3').expect(200);
    await refundFailed(intent, 're_holds_one_4', 400, 'evt_holds_one_failed_4').expect(200);

    // 5.00 THB holds the 3.00 THB refund (which failed since), not both: 2.00 THB went back.
    await refundAtStripe(intent, 500, 'evt_holds_one_report').expect(200);
    expect((await receiptJson(agent, receiptId)).refunds).toEqual([expect.objectContaining({ amount: '2.00' })]);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('paid');
  });
});

// Stripe says when it made each event (`created`): a charge.refunded made before a refund failed
// still counts that refund, though it may be delivered after the failure (Stripe does not promise
// order, and retries a delivery the app missed for days). It was read as made after the failure,
// counting the failed refund as returned: 3.00 THB refunded, then 7.00 THB more (10.00 in all),
// then the 3.00 THB failing, with the 10.00 THB report delivered last, unpaid the receipt and
// resolved the payment as refunded in full, though 3.00 THB of it is still with the centre.
describe('a Stripe refund total made before a failure but delivered after it', () => {
  const at = (event: ReturnType<typeof buildStripeChargeRefunded>, created: number) => ({ ...event, created });
  const t0 = Math.floor(Date.now() / 1000) - 3600;

  it('still counts the failed refund, as Stripe did when it made the report', async () => {
    const { agent, receiptId, payment, intent } = await paidAtStripe();
    const report = (total: number, eventId: string, created: number) =>
      deliver(
        at(
          buildStripeChargeRefunded(
            { payment_intent: intent, amount: 1000, amount_refunded: total, currency: 'thb' },
            eventId,
          ),
          created,
        ),
      );
    await report(300, 'evt_late_report_first', t0).expect(200);
    const failed = {
      ...buildStripeRefundUpdated(
        { id: 're_late_report_3', payment_intent: intent, amount: 300, currency: 'thb' },
        'evt_late_report_failed',
      ),
      created: t0 + 120,
    };
    expect((await deliver(failed)).body.outcome).toBe('review');

    // Made at t0 + 60, before the failure: its 10.00 THB counts the 3.00 THB that failed since.
    const late = await report(1000, 'evt_late_report_full', t0 + 60);
    expect(late.status, late.text).toBe(200);
    expect(late.body).toEqual({ received: true, outcome: 'review' });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('paid');
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'needs_review',
      holdsPaidReceipt: true,
      refundedMinor: 1000n,
    });
    expect((await receiptJson(agent, receiptId)).refunds).toEqual([
      expect.objectContaining({ amount: '7.00', isFull: false }),
    ]);

    // A report made after the failure leaves it out, as before: the whole 10.00 THB refunded since.
    expect((await report(1000, 'evt_late_report_after', t0 + 180)).body).toEqual({ received: true, outcome: 'ok' });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
    expect((await receiptJson(agent, receiptId)).refunds).toEqual([
      expect.objectContaining({ amount: '10.00', isFull: true }),
    ]);
  });
});

describe('failed refunds recorded before the app knew which totals count them', () => {
  it('are counted by the recorded total when a refund report of their payment was recorded, by their migration', async () => {
    const reported = await paidAtStripe();
    await refundAtStripe(reported.intent, 400, 'evt_after_failure_migrated_report').expect(200);
    await refundFailed(reported.intent, 're_after_failure_migrated', 400, 'evt_after_failure_migrated_failed').expect(
      200,
    );
    const unreported = await paidAtStripe();
    await refundFailed(unreported.intent, 're_after_failure_first', 400, 'evt_after_failure_first_failed').expect(200);
    const countedOf = async (paymentId: number) =>
      (await db.prisma.paymentFailedRefund.findFirstOrThrow({ where: { paymentId } })).isInReportedTotal;
    expect([await countedOf(reported.payment.id), await countedOf(unreported.payment.id)]).toEqual([true, false]);

    const migration = readFileSync(
      path.join(MIGRATIONS_DIR, '20261205100000_failed_refund_in_reported_total', 'migration.sql'),
      'utf8',
    );
    await db.pool.query('UPDATE payment_failed_refunds SET is_in_reported_total = false');
    await db.pool.query(migration.slice(migration.indexOf('UPDATE')));
    expect([await countedOf(reported.payment.id), await countedOf(unreported.payment.id)]).toEqual([true, false]);
  });
});

describe("the dummy provider's refund reported after an earlier refund failed", () => {
  let dummy: { db: TestDatabase; app: ReturnType<typeof buildTestApp> };
  beforeAll(async () => {
    dummy = await setUpDummyPayments();
  });
  afterAll(() => dummy?.db.drop());
  const payers = createPayingResearchers(() => dummy, 'dummyafterfail');

  it('counts its amount_cents as the refunds that stand, as Stripe does: the whole payment unpays the receipt', async () => {
    const { agent, receiptId, payment } = await payers.paidOnline();
    const send = (event: Record<string, unknown>) =>
      deliverDummy(dummy.app, { external_payment_id: payment.externalPaymentId, currency: 'THB', ...event });
    await send({ event_id: 'dummy_after_fail_part', event_type: 'payment.refunded', amount_cents: 300 }).expect(200);
    await send({
      event_id: 'dummy_after_fail_failed',
      event_type: 'payment.refund_failed',
      amount_cents: 300,
      refund_id: 'dummy_refund_after_fail',
    }).expect(200);

    const full = await send({ event_id: 'dummy_after_fail_full', event_type: 'payment.refunded', amount_cents: 1000 });
    expect(full.body).toEqual({ received: true, outcome: 'ok' });
    expect((await dummy.db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
    expect(await dummy.db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'resolved',
      reviewOutcome: 'refunded',
      reviewedBy: 'provider:dummy',
    });
    expect((await receiptJson(agent, receiptId)).refunds).toEqual([
      expect.objectContaining({ amount: '10.00', isFull: true }),
    ]);
  });
});
