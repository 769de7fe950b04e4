import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPayingResearchers,
  deliverDummy,
  dummyRefundEvent,
  setUpDummyPaymentsApp,
} from '../../support/dummy-payments.js';
import { type Agent, csrfTokenOf } from '../../support/sign-in.js';
import type { buildTestApp } from '../../support/test-app.js';
import type { TestDatabase } from '../../support/test-database.js';

// A payment held for review without paying its receipt (its receipt voided after it was paid), then
// refunded in part at the provider: the refund was recorded (the Refunded column showed it) and
// answered `ok`, but the held payment's reason was left as it was, so the admin reviewing it on
// /admin/payments, told to refund the payment or apply it elsewhere, did not read that part of the
// money had gone back already, nor how much was still held.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('heldpartadmin'));
});
afterAll(() => db?.drop());

const { paidOnline } = createPayingResearchers(() => ({ db, app }), 'heldpart');

describe('a refund in part of a payment held without paying its receipt', () => {
  it('adds the refund and what is still held to the reason the admin reads, and answers ok', async () => {
    const { receiptId, payment } = await paidOnline();
    await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ reason: 'billed to the wrong project' })
      .expect(200);
    const heldBefore = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(heldBefore.status).toBe('needs_review');
    expect(heldBefore.reviewReason).toContain(`receipt #${receiptId} was voided after it was paid online`);

    // Still held: the payment was held before and is held as it was (the documented `ok`).
    const first = await deliverDummy(app, dummyRefundEvent(payment.externalPaymentId, `part_${payment.id}`, 300));
    expect(first.status, first.text).toBe(200);
    expect(first.body).toEqual({ received: true, outcome: 'ok' });

    const firstWords = '3.00 THB of the 10.00 THB received has been refunded at dummy so far; 7.00 THB is still held';
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(held).toMatchObject({
      status: 'needs_review',
      reviewOutcome: null,
      refundedMinor: 300n,
      reviewReason: `${heldBefore.reviewReason}; ${firstWords}`,
    });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('void');

    // The provider's next total (5.00 THB in all) takes the place of the first: the reason says what stands now.
    const second = await deliverDummy(app, dummyRefundEvent(payment.externalPaymentId, `more_${payment.id}`, 500));
    expect(second.body).toEqual({ received: true, outcome: 'ok' });
    const secondWords = '5.00 THB of the 10.00 THB received has been refunded at dummy so far; 5.00 THB is still held';
    const heldAgain = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(heldAgain).toMatchObject({
      status: 'needs_review',
      refundedMinor: 500n,
      reviewReason: `${heldBefore.reviewReason}; ${secondWords}`,
    });

    // Where the admin reads it: the held card's "Why:" on /admin/payments, and the page's JSON.
    const page = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    const card = page.text.slice(page.text.indexOf(`id="review-${payment.id}"`));
    expect(card).toContain(`receipt #${receiptId} was voided after it was paid online`);
    expect(card).toContain(secondWords);
    const json = await admin.get('/admin/payments').set('Accept', 'application/json').expect(200);
    const listed = json.body.heldForReview.find((row: { id: number }) => row.id === payment.id);
    expect(listed).toMatchObject({
      status: 'needs_review',
      reviewReason: heldAgain.reviewReason,
      refunded: expect.objectContaining({ amount: '5.00', currency: 'THB' }),
    });
  });

  it('after three refunds in part, says the total refunded so far once; the audit log keeps each refund', async () => {
    const { receiptId, payment } = await paidOnline();
    await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ reason: 'billed to the wrong project' })
      .expect(200);
    const heldBefore = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    // Each event is the provider's total so far: 1.00, then 2.50, then 4.00 THB in all.
    for (const [key, total] of [
      ['one', 100],
      ['two', 250],
      ['three', 400],
    ] as const) {
      const answer = await deliverDummy(
        app,
        dummyRefundEvent(payment.externalPaymentId, `${key}_${payment.id}`, total),
      );
      expect(answer.body, answer.text).toEqual({ received: true, outcome: 'ok' });
    }
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    // It read "…; 1.00 THB … so far; 9.00 THB is still held; 2.50 THB … so far; 7.50 THB is still held; 4.00 THB …".
    expect(held).toMatchObject({
      status: 'needs_review',
      refundedMinor: 400n,
      reviewReason:
        `${heldBefore.reviewReason}; 4.00 THB of the 10.00 THB received has been refunded at dummy so far; ` +
        '6.00 THB is still held',
    });
    expect(held.reviewReason?.match(/so far/g)).toHaveLength(1);
    // Its held card's "Why:" on /admin/payments says it once too.
    const page = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    const cards = page.text.matchAll(/<section class="card review" id="review-(\d+)">[\s\S]*?<\/section>/g);
    const card = [...cards].find((match) => match[1] === String(payment.id))?.[0] ?? '';
    expect(card).toContain('4.00 THB of the 10.00 THB received has been refunded at dummy so far');
    expect(card.match(/is still held/g)).toHaveLength(1);
    // The audit log has each refund on its own: what it added, and the total after it.
    const entries = await db.prisma.auditLog.findMany({
      where: { action: 'payment.refund', target: `receipt:${receiptId}` },
      orderBy: { id: 'asc' },
    });
    expect(entries.map((entry) => entry.details)).toEqual([
      expect.objectContaining({ paymentId: payment.id, amountMinor: '100', refundedTotalMinor: '100' }),
      expect.objectContaining({ paymentId: payment.id, amountMinor: '150', refundedTotalMinor: '250' }),
      expect.objectContaining({ paymentId: payment.id, amountMinor: '150', refundedTotalMinor: '400' }),
    ]);
  });

  it('takes the earlier total from the reason also when something was added after it (a dispute)', async () => {
    const { receiptId, payment } = await paidOnline();
    await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ reason: 'billed to the wrong project' })
      .expect(200);
    const voided = (await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).reviewReason;
    await deliverDummy(app, dummyRefundEvent(payment.externalPaymentId, `after1_${payment.id}`, 300)).expect(200);
    const refunded = (await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).reviewReason ?? '';
    expect(refunded).toBe(
      `${voided}; 3.00 THB of the 10.00 THB received has been refunded at dummy so far; 7.00 THB is still held`,
    );
    // The dispute's words go after the refund's.
    const disputed = await deliverDummy(app, {
      event_id: `after_dispute_${payment.id}`,
      event_type: 'payment.disputed',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 200,
      currency: 'THB',
      dispute_reason: 'fraudulent',
    });
    expect(disputed.status, disputed.text).toBe(200);
    const withDispute = (await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).reviewReason ?? '';
    expect(withDispute.startsWith(`${refunded}; `)).toBe(true);
    const disputeWords = withDispute.slice(refunded.length + 2);
    // The next total takes the first's place: it read "…; 3.00 THB … so far; 7.00 THB is still held; <dispute>;
    // 5.00 THB … so far; 5.00 THB is still held", two totals, the first no longer true.
    await deliverDummy(app, dummyRefundEvent(payment.externalPaymentId, `after2_${payment.id}`, 500)).expect(200);
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(held).toMatchObject({
      status: 'needs_review',
      refundedMinor: 500n,
      reviewReason:
        `${voided}; ${disputeWords}; 5.00 THB of the 10.00 THB received has been refunded at dummy so far; ` +
        '5.00 THB is still held',
    });
    expect(held.reviewReason?.match(/so far/g)).toHaveLength(1);
  });

  it('says how much went back when the provider total counts a refund that failed already', async () => {
    const { receiptId, payment } = await paidOnline();
    await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ reason: 'billed to the wrong project' })
      .expect(200);
    // The failure arrives before the report that counts it (providers do not promise order).
    const failed = await deliverDummy(app, {
      ...dummyRefundEvent(payment.externalPaymentId, `failed_${payment.id}`, 300),
      event_type: 'payment.refund_failed',
      refund_id: `re_${payment.id}`,
      failure_reason: 'expired_or_canceled_card',
    });
    expect(failed.status, failed.text).toBe(200);
    const heldBefore = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });

    const answer = await deliverDummy(app, dummyRefundEvent(payment.externalPaymentId, `total_${payment.id}`, 500));
    expect(answer.body).toEqual({ received: true, outcome: 'ok' });
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(held).toMatchObject({
      status: 'needs_review',
      reviewReason:
        `${heldBefore.reviewReason}; dummy reported 5.00 THB of the 10.00 THB received refunded so far, of which ` +
        '3.00 THB had failed already, so 2.00 THB went back; 8.00 THB is still held',
    });
    const json = await admin.get('/admin/payments').set('Accept', 'application/json').expect(200);
    const listed = json.body.heldForReview.find((row: { id: number }) => row.id === payment.id);
    expect(listed).toMatchObject({ reviewReason: held.reviewReason });
  });
});

describe('refunds in part of a disputed payment that still pays its receipt', () => {
  it('keep the dispute in the reason and say the latest refund once', async () => {
    const { receiptId, payment } = await paidOnline();
    const disputed = await deliverDummy(app, {
      event_id: `dispute_${payment.id}`,
      event_type: 'payment.disputed',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 400,
      currency: 'THB',
      dispute_reason: 'fraudulent',
    });
    expect(disputed.status, disputed.text).toBe(200);
    const heldForDispute = (await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).reviewReason;
    for (const [key, total] of [
      ['d1', 100],
      ['d2', 250],
      ['d3', 300],
    ] as const) {
      const answer = await deliverDummy(
        app,
        dummyRefundEvent(payment.externalPaymentId, `${key}_${payment.id}`, total),
      );
      expect(answer.status, answer.text).toBe(200);
    }
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    // It read "<dispute>; 1.00 THB … was refunded at dummy; receipt #N stays paid …; 2.50 THB … ; 3.00 THB …".
    expect(held).toMatchObject({
      status: 'needs_review',
      refundedMinor: 300n,
      reviewReason:
        `${heldForDispute}; 3.00 THB of the 10.00 THB received was refunded at dummy; receipt #${receiptId} stays ` +
        'paid until this is resolved',
    });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('paid');
  });
});
