import type request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADVISORY_LOCK_KEYS } from '../../src/db/advisory-locks.js';
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

describe('an admin accepting a held payment while a late success of the same receipt is being held', () => {
  it('names that payment too: it cannot be accepted for the receipt the accept paid', async () => {
    const { agent, receiptId } = await researcherWithReceiptOf(app, db, 'twotabs', 20);
    // A first checkout canceled, then a second paid 0.10 THB short: held for review.
    await startCheckout(agent, receiptId);
    const canceled = await db.prisma.payment.findFirstOrThrow({ where: { receiptId } });
    const money = { amount_cents: 1000, currency: 'THB' };
    await deliverDummy(app, {
      ...money,
      event_id: `evt_cancel_${canceled.id}`,
      event_type: 'payment.canceled',
      external_payment_id: canceled.externalPaymentId,
    }).expect(200);
    await startCheckout(agent, receiptId);
    const short = await db.prisma.payment.findFirstOrThrow({ where: { receiptId }, orderBy: { id: 'desc' } });
    await deliverDummy(app, {
      event_id: `evt_short_${short.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: short.externalPaymentId,
      amount_cents: 990,
      currency: 'THB',
    }).expect(200);
    expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: short.id } })).status).toBe('needs_review');
    const admin = await signInNewAdmin(app, db, 'accepter');
    const token = await csrfTokenOf(admin);

    // The audit chain's lock held: the late success of the canceled checkout stops at its
    // payment.review entry, the receipt's row locked, not yet committed.
    const holder = await db.pool.connect();
    let delivered: Promise<request.Response> | undefined;
    let accepted: Promise<request.Response> | undefined;
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEYS.auditAppend]);
      delivered = deliverDummy(app, {
        ...money,
        event_id: `evt_late_${canceled.id}`,
        event_type: 'payment.succeeded',
        external_payment_id: canceled.externalPaymentId,
      }).then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
      accepted = admin
        .post(`/admin/payments/${short.id}/resolve`)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', token)
        .send({ outcome: 'accepted', note: 'short by 0.10 THB, written off', accept_mismatch: true })
        .then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool, 5_000, 2)).toBe(2);
    } finally {
      await holder.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCK_KEYS.auditAppend]);
      holder.release();
    }
    const [late, accept] = await Promise.all([delivered, accepted]);
    expect(late?.status, late?.text).toBe(200);
    expect(accept?.status, accept?.text).toBe(200);

    // The late success committed first (held, the receipt pending then); the accept paid the receipt
    // after it, so it names it as it names every other held payment of the receipt.
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: canceled.id } })).toMatchObject({
      status: 'needs_review',
      reviewReason:
        `payment succeeded after it was canceled; receipt #${receiptId} was marked paid from payment #${short.id}, ` +
        'accepted by accepter, while this payment was held, so it cannot be accepted for it: refund it, or apply it ' +
        'elsewhere and resolve it as dismissed',
    });
    const markPaid = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'receipt.mark_paid', target: `receipt:${receiptId}` },
    });
    expect(markPaid.details).toMatchObject({ paymentId: short.id, heldPayments: [{ paymentId: canceled.id }] });
  });
});
