import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amountDueOf } from '../support/billing-factories.js';
import { createPayingResearchers, deliverDummy, setUpDummyPaymentsApp } from '../support/dummy-payments.js';
import { sessionsWaitingForLocks } from '../support/lock-waits.js';
import { type Agent, csrfTokenOf } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// A pending receipt whose online payment is held for review (paid short, say) can be voided: its
// jobs go back to be billed, and the held money can no longer be accepted for it. The void said
// nothing of that money, in its answer or its audit entry, and the payment's reason still read
// "paid 1.00 THB but 10.00 THB was due", as if the receipt could yet be paid from it.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('voider'));
});
afterAll(() => db?.drop());

const { researcherWithReceipt, startCheckout, latestPaymentOf, paidOnline } = createPayingResearchers(
  () => ({ db, app }),
  'heldvoid',
);

/** A pending receipt of 10.00 THB whose payment received 1.00 THB and is held for review. */
async function receiptWithShortPaymentHeld() {
  const researcher = await researcherWithReceipt();
  await startCheckout(researcher.agent, researcher.receiptId);
  const payment = await latestPaymentOf(researcher.receiptId);
  await deliverDummy(app, {
    event_id: `short_${payment.id}`,
    event_type: 'payment.succeeded',
    external_payment_id: payment.externalPaymentId,
    amount_cents: 100,
    currency: 'THB',
  }).expect(200);
  expect(await latestPaymentOf(researcher.receiptId)).toMatchObject({ status: 'needs_review' });
  return { receiptId: researcher.receiptId, paymentId: payment.id };
}

describe('voiding a pending receipt whose payment is held for review', () => {
  it('names the held payment in its answer, its one audit entry and the payment reason', async () => {
    const { receiptId, paymentId } = await receiptWithShortPaymentHeld();
    const auditsBefore = await db.prisma.auditLog.count({ where: { target: `receipt:${receiptId}` } });
    const voided = await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ reason: 'billed to the wrong project', based_on_status: 'pending' });
    expect(voided.status, voided.text).toBe(200);
    expect(voided.body.receipt).toMatchObject({
      status: 'void',
      heldPaymentId: null,
      alreadyHeldPaymentIds: [paymentId],
    });

    const payment = await db.prisma.payment.findUniqueOrThrow({ where: { id: paymentId } });
    expect(payment).toMatchObject({
      status: 'needs_review',
      reviewReason:
        `paid 1.00 THB but 10.00 THB was due; receipt #${receiptId} was voided while this payment was held, so it ` +
        'cannot be accepted for it: refund the payment or apply it elsewhere',
    });

    const audits = await db.prisma.auditLog.findMany({
      where: { target: `receipt:${receiptId}` },
      orderBy: { id: 'asc' },
      skip: auditsBefore,
    });
    expect(audits.map((entry) => entry.action)).toEqual(['receipt.void']);
    expect(audits[0]?.details).toMatchObject({
      previousStatus: 'pending',
      alreadyHeld: [{ paymentId, receivedMinor: '100', receivedCurrency: 'THB' }],
    });
  });

  it("says so in the billing page's confirmation of the void", async () => {
    const { receiptId, paymentId } = await receiptWithShortPaymentHeld();
    const page = await admin.get(`/admin/receipts/${receiptId}`).expect(200);
    const voided = await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .type('form')
      .send({ reason: 'duplicate receipt', based_on_status: 'pending', csrf_token: await csrfTokenOf(admin) });
    expect(voided.status, voided.text.slice(0, 300)).toBe(303);
    expect(page.text).toContain('An online payment for this receipt is held for review');
    const after = await admin.get(`/admin/receipts/${receiptId}`).expect(200);
    expect(after.text).toContain(
      `Receipt #${receiptId} voided; its job can be billed again. Payment #${paymentId} (1.00 THB received) was held ` +
        'for review and can no longer be accepted for this receipt: refund it or apply it elsewhere, then resolve it on ' +
        'the payments page.',
    );
  });

  it('a receipt with no held payment says nothing of one', async () => {
    const { receiptId } = await researcherWithReceipt();
    const voided = await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ reason: 'not needed' });
    expect(voided.status, voided.text).toBe(200);
    expect(voided.body.receipt.alreadyHeldPaymentIds).toEqual([]);
    const entry = await db.prisma.auditLog.findFirstOrThrow({
      where: { target: `receipt:${receiptId}`, action: 'receipt.void' },
    });
    expect(entry.details).not.toHaveProperty('alreadyHeld');
  });
});

// A refund or dispute of the payment that paid a receipt locks that payment, then the receipt. The
// void locked the receipt first and the payment only when it held it: a void and such a webhook at
// the same moment each waited for the other, until PostgreSQL broke the deadlock with an error.
describe('voiding a receipt paid online while a webhook about its payment is being applied', () => {
  it('waits for the payment before it takes the receipt, the order the webhook takes them', async () => {
    const { receiptId, payment } = await paidOnline();
    const webhook = await db.pool.connect();
    try {
      // As a refund's transaction does: the payment first.
      await webhook.query('BEGIN');
      await webhook.query('SELECT id FROM payments WHERE id = $1 FOR UPDATE', [payment.id]);
      const voiding = admin
        .post(`/admin/receipts/${receiptId}/void`)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(admin))
        .send({ reason: 'billed to the wrong project', based_on_status: 'paid' })
        .then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool)).toBeGreaterThan(0);
      // Then the receipt, as the webhook would: the void must not be holding it.
      await webhook.query("SET LOCAL lock_timeout = '2s'");
      await webhook.query('SELECT id FROM receipts WHERE id = $1 FOR NO KEY UPDATE', [receiptId]);
      await webhook.query('COMMIT');
      const voided = await voiding;
      expect(voided.status, voided.text).toBe(200);
      expect(voided.body.receipt).toMatchObject({ status: 'void', heldPaymentId: payment.id });
    } finally {
      await webhook.query('ROLLBACK').catch(() => undefined);
      webhook.release();
    }
  });
});

// Marking such a receipt paid by hand left the held money unmentioned too: the mark_paid entry did not
// record it and the payment's reason still read as if it could be accepted for the receipt.
describe('marking a pending receipt paid by hand while its payment is held for review', () => {
  it('names the held payment in its answer, its one audit entry and the payment reason', async () => {
    const { receiptId, paymentId } = await receiptWithShortPaymentHeld();
    const auditsBefore = await db.prisma.auditLog.count({ where: { target: `receipt:${receiptId}` } });
    const marked = await admin
      .post(`/admin/receipts/${receiptId}/paid`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ method: 'bank_transfer', amount_received: await amountDueOf(db, receiptId), tx_ref: 'KBANK-77' });
    expect(marked.status, marked.text).toBe(200);
    expect(marked.body.receipt).toMatchObject({ status: 'paid', heldPaymentIds: [paymentId] });
    expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: paymentId } })).reviewReason).toBe(
      `paid 1.00 THB but 10.00 THB was due; receipt #${receiptId} was marked paid by hand while this payment was ` +
        'held, so it cannot be accepted for it: resolve it as dismissed if its money is what paid the receipt, ' +
        'otherwise refund it',
    );
    const audits = await db.prisma.auditLog.findMany({
      where: { target: `receipt:${receiptId}` },
      orderBy: { id: 'asc' },
      skip: auditsBefore,
    });
    expect(audits.map((entry) => entry.action)).toEqual(['receipt.mark_paid']);
    expect(audits[0]?.details).toMatchObject({
      method: 'bank_transfer',
      total: '10.00',
      heldPayments: [{ paymentId, receivedMinor: '100', receivedCurrency: 'THB' }],
    });
  });

  it("says so in the billing page's confirmation", async () => {
    const { receiptId, paymentId } = await receiptWithShortPaymentHeld();
    await admin
      .post(`/admin/receipts/${receiptId}/paid`)
      .type('form')
      .send({ method: 'cash', amount_received: await amountDueOf(db, receiptId), csrf_token: await csrfTokenOf(admin) })
      .expect(303);
    const after = await admin.get(`/admin/receipts/${receiptId}`).expect(200);
    expect(after.text).toContain(
      `Payment #${paymentId} (1.00 THB received) of this receipt is held for review and can no longer be accepted ` +
        'for it: resolve it as dismissed on the payments page if its money is what paid this receipt, otherwise refund it.',
    );
  });

  it('a receipt with no held payment says nothing of one', async () => {
    const { receiptId } = await researcherWithReceipt();
    const marked = await admin
      .post(`/admin/receipts/${receiptId}/paid`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ method: 'cash', amount_received: await amountDueOf(db, receiptId) });
    expect(marked.status, marked.text).toBe(200);
    expect(marked.body.receipt.heldPaymentIds).toEqual([]);
    const entry = await db.prisma.auditLog.findFirstOrThrow({
      where: { target: `receipt:${receiptId}`, action: 'receipt.mark_paid' },
    });
    expect(entry.details).not.toHaveProperty('heldPayments');
  });
});
