import type request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADVISORY_LOCK_KEYS } from '../../src/db/advisory-locks.js';
import { amountDueOf } from '../support/billing-factories.js';
import { deliverDummy, setUpDummyPayments } from '../support/dummy-payments.js';
import { sessionsWaitingForLocks } from '../support/lock-waits.js';
import { researcherWithReceiptOf, startCheckout } from '../support/receipt-steps.js';
import { csrfTokenOf, signInNewAdmin } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  ({ db, app } = await setUpDummyPayments());
});
afterAll(() => db?.drop());

describe('a late success of a canceled payment while the receipt is being marked paid by hand', () => {
  it('is held with a reason that says the receipt was already paid, as when it comes after', async () => {
    const { agent, receiptId } = await researcherWithReceiptOf(app, db, 'latepayer', 20);
    await startCheckout(agent, receiptId);
    const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId } });
    const event = {
      external_payment_id: payment.externalPaymentId,
      amount_cents: 1000,
      currency: 'THB',
    };
    await deliverDummy(app, { ...event, event_id: `evt_cancel_${payment.id}`, event_type: 'payment.canceled' }).expect(
      200,
    );
    const admin = await signInNewAdmin(app, db, 'latecashier');
    const [token, amount] = [await csrfTokenOf(admin), await amountDueOf(db, receiptId)];

    // The audit chain's lock held: the mark paid stops at its receipt.mark_paid entry, the receipt
    // updated to paid and its row locked, not yet committed.
    const holder = await db.pool.connect();
    let marked: Promise<request.Response> | undefined;
    let delivered: Promise<request.Response> | undefined;
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEYS.auditAppend]);
      marked = admin
        .post(`/admin/receipts/${receiptId}/paid`)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', token)
        .send({ method: 'bank_transfer', amount_received: amount, tx_ref: 'BT-LATE' })
        .then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
      // The provider reports the money the canceled checkout took anyway: it waits for the mark paid.
      delivered = deliverDummy(app, {
        ...event,
        event_id: `evt_late_${payment.id}`,
        event_type: 'payment.succeeded',
      }).then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool, 5_000, 2)).toBe(2);
    } finally {
      await holder.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCK_KEYS.auditAppend]);
      holder.release();
    }
    const [mark, late] = await Promise.all([marked, delivered]);
    expect(mark?.status, mark?.text).toBe(200);
    expect(late?.status, late?.text).toBe(200);
    expect(late?.body.outcome).toBe('review');

    // Held after the mark paid committed: its reason tells the admin the receipt is paid already.
    const reason = `payment succeeded after it was canceled; receipt #${receiptId} was already paid`;
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'needs_review',
      reviewReason: reason,
    });
    const review = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'payment.review', target: `receipt:${receiptId}` },
    });
    expect(review.details).toMatchObject({ paymentId: payment.id, reason });
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
      status: 'paid',
      paymentMethod: 'bank_transfer',
    });
  });
});
