import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, deliverDummy, setUpDummyPaymentsApp } from '../support/dummy-payments.js';
import { sessionsWaitingForLocks } from '../support/lock-waits.js';
import { type Agent, csrfTokenOf } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// Two payments of one receipt held for review: an admin accepting one marks the receipt paid from it,
// and the other could then no longer be accepted for it. Its reason still read "another payment of
// receipt #N is held for review", as if it waited only for that one, and the mark_paid entry did not
// name it. Marking the receipt paid by hand already said both; accepting a payment said neither.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;
beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('acceptnotes'));
});
afterAll(() => db?.drop());

const { researcherWithReceipt, startCheckout, latestPaymentOf } = createPayingResearchers(
  () => ({ db, app }),
  'acceptnotes',
);

/**
 * A pending receipt of 10.00 THB with two payments held, both of 10.00 THB: the first, canceled,
 * succeeded late; the second, opened before that, was paid and held behind it.
 */
async function twoHeldPayments() {
  const { agent, receiptId } = await researcherWithReceipt();
  const firstPath = await startCheckout(agent, receiptId);
  const first = await latestPaymentOf(receiptId);
  await agent
    .post(firstPath)
    .type('form')
    .send({ choice: 'cancel', csrf_token: await csrfTokenOf(agent) })
    .expect(303);
  const secondPath = await startCheckout(agent, receiptId);
  const second = await latestPaymentOf(receiptId);
  await deliverDummy(app, {
    event_id: `late_${first.id}`,
    event_type: 'payment.succeeded',
    external_payment_id: first.externalPaymentId,
    amount_cents: 1000,
    currency: 'THB',
  }).expect(200);
  await agent
    .post(secondPath)
    .type('form')
    .send({ choice: 'pay', csrf_token: await csrfTokenOf(agent) })
    .expect(303);
  expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: first.id } })).toMatchObject({
    status: 'needs_review',
    reviewReason: 'payment succeeded after it was canceled',
  });
  expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: second.id } })).toMatchObject({
    status: 'needs_review',
    reviewReason: `another payment of receipt #${receiptId} is held for review`,
  });
  return { receiptId, first, second };
}

function accept(paymentId: number) {
  return csrfTokenOf(admin).then((token) =>
    admin
      .post(`/admin/payments/${paymentId}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ outcome: 'accepted', note: 'Checked at the provider: this money pays it.' }),
  );
}

describe("accepting one of a receipt's held payments", () => {
  it("says in the other held payment's reason and in the mark_paid entry that the receipt is paid from it", async () => {
    const { receiptId, first, second } = await twoHeldPayments();
    const accepted = await accept(first.id);
    expect(accepted.status, accepted.text).toBe(200);
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
      status: 'paid',
      txRef: first.externalPaymentId,
    });
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: second.id } })).toMatchObject({
      status: 'needs_review',
      reviewReason:
        `another payment of receipt #${receiptId} is held for review; receipt #${receiptId} was marked paid from ` +
        `payment #${first.id}, accepted by acceptnotes, while this payment was held, so it cannot be accepted for ` +
        'it: refund it, or apply it elsewhere and resolve it as dismissed',
    });
    const entry = await db.prisma.auditLog.findFirstOrThrow({
      where: { target: `receipt:${receiptId}`, action: 'receipt.mark_paid' },
    });
    expect(entry.details).toMatchObject({
      paymentId: first.id,
      heldPayments: [{ paymentId: second.id, receivedMinor: '1000', receivedCurrency: 'THB' }],
    });

    // Accepting the other is refused: the receipt is paid.
    const again = await accept(second.id);
    expect(again.status).toBe(409);
  });

  it('a receipt with no other held payment names none', async () => {
    const short = await twoHeldPayments();
    // Resolve the first as refunded: the second is then the only one held.
    const refunded = await admin
      .post(`/admin/payments/${short.first.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'refunded', note: 'Refunded the late payment in the dashboard.' });
    expect(refunded.status, refunded.text).toBe(200);
    expect((await accept(short.second.id)).status).toBe(200);
    const entry = await db.prisma.auditLog.findFirstOrThrow({
      where: { target: `receipt:${short.receiptId}`, action: 'receipt.mark_paid' },
    });
    expect(entry.details).not.toHaveProperty('heldPayments');
  });
});

// Marking paid (and voiding) locks the receipt's held payments in id order before anything else. An
// accept that locked its own payment first, then the receipt's other held ones, could hold a later
// one while a mark paid held an earlier one and waited for it: each waited for the other until
// PostgreSQL broke the deadlock with an error.
describe('accepting a held payment while a mark paid locks the held payments', () => {
  it('waits for the earlier held payment before it takes its own, the order marking paid takes them', async () => {
    const { receiptId, first, second } = await twoHeldPayments();
    const markPaid = await db.pool.connect();
    try {
      // As marking paid does: the held payments in id order, the first of them here.
      await markPaid.query('BEGIN');
      await markPaid.query('SELECT id FROM payments WHERE id = $1 FOR UPDATE', [first.id]);
      const accepting = accept(second.id).then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool)).toBeGreaterThan(0);
      // Then the next held one, as marking paid would: the accept must not be holding it.
      await markPaid.query("SET LOCAL lock_timeout = '2s'");
      await markPaid.query('SELECT id FROM payments WHERE id = $1 FOR UPDATE', [second.id]);
      await markPaid.query('COMMIT');
      const accepted = await accepting;
      expect(accepted.status, accepted.text).toBe(200);
      expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
        status: 'paid',
        txRef: second.externalPaymentId,
      });
      expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: first.id } })).reviewReason).toContain(
        `receipt #${receiptId} was marked paid from payment #${second.id}, accepted by acceptnotes`,
      );
    } finally {
      await markPaid.query('ROLLBACK').catch(() => undefined);
      markPaid.release();
    }
  });
});
