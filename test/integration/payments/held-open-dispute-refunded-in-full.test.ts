import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, deliverDummy, setUpDummyPaymentsApp } from '../../support/dummy-payments.js';
import { type Agent, csrfTokenOf } from '../../support/sign-in.js';
import type { buildTestApp } from '../../support/test-app.js';
import type { TestDatabase } from '../../support/test-database.js';

// A payment held for review without paying its receipt (its receipt voided after it was paid), then
// disputed, then refunded in full at the provider: the refund was recorded and answered `ok`, but the
// held payment's reason said nothing of it, so the admin reviewing it on /admin/payments did not see
// that the money had gone back to the payer (and might refund it a second time).
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('disputerefundadmin'));
});
afterAll(() => db?.drop());

const { paidOnline } = createPayingResearchers(() => ({ db, app }), 'disputerefund');

describe('a refund in full of a held payment whose dispute is open, when it does not pay its receipt', () => {
  it('adds the refund to the reason the admin reads, keeps it held and answers review', async () => {
    const { receiptId, payment } = await paidOnline();
    await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ reason: 'billed to the wrong project' })
      .expect(200);
    await deliverDummy(app, {
      event_id: `dispute_${payment.id}`,
      event_type: 'payment.disputed',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 400,
      currency: 'THB',
      dispute_id: `dp_${payment.id}`,
      dispute_reason: 'fraudulent',
    }).expect(200);
    const heldBefore = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(heldBefore.status).toBe('needs_review');
    expect(heldBefore.reviewReason).toContain('the payer disputed 4.00 THB of the 10.00 THB received at dummy');

    const answer = await deliverDummy(app, {
      event_id: `refund_${payment.id}`,
      event_type: 'payment.refunded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 1000,
      currency: 'THB',
    });
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toEqual({ received: true, outcome: 'review' });

    const refundWords =
      'refunded in full at dummy (10.00 THB); the dispute is still open, so the bank may take the money back as ' +
      'well: answer it at dummy (the payer was refunded) and resolve this once it is settled';
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(held).toMatchObject({
      status: 'needs_review',
      reviewOutcome: null,
      refundedMinor: 1000n,
      reviewReason: `${heldBefore.reviewReason}; ${refundWords}`,
    });
    // The void left the receipt void; the refund does not claim to unpay it.
    expect(held.reviewReason).not.toContain('unpaid again');
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('void');
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { target: `receipt:${receiptId}`, action: 'payment.refund' },
    });
    expect(audit.details).toMatchObject({ receipt: 'none', isDisputeOpen: true, refundedTotalMinor: '1000' });

    // Where the admin reads it: the held card on /admin/payments, and the same page as JSON.
    const page = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    const card = page.text.slice(page.text.indexOf(`id="review-${payment.id}"`));
    expect(card).toContain('refunded in full at dummy (10.00 THB); the dispute is still open');
    expect(card).toContain('the payer disputed 4.00 THB of the 10.00 THB received at dummy');
    const json = await admin.get('/admin/payments').set('Accept', 'application/json').expect(200);
    const listed = json.body.heldForReview.find((row: { id: number }) => row.id === payment.id);
    expect(listed).toMatchObject({
      status: 'needs_review',
      reviewReason: held.reviewReason,
      refunded: expect.objectContaining({ amount: '10.00', currency: 'THB' }),
    });
  });
});
