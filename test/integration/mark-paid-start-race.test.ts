import type request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADVISORY_LOCK_KEYS } from '../../src/db/advisory-locks.js';
import { amountDueOf } from '../support/billing-factories.js';
import { setUpDummyPayments } from '../support/dummy-payments.js';
import { sessionsWaitingForLocks } from '../support/lock-waits.js';
import { researcherWithReceiptOf } from '../support/receipt-steps.js';
import { csrfTokenOf, signInNewAdmin } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  ({ db, app } = await setUpDummyPayments());
});
afterAll(() => db?.drop());

describe('a receipt marked paid by hand while a payment start holds the receipt', () => {
  it('cancels the checkout that start commits, instead of leaving it open to take the money again', async () => {
    const { agent, receiptId } = await researcherWithReceiptOf(app, db, 'doublepayer', 20);
    const admin = await signInNewAdmin(app, db, 'handcashier');
    const [researcherToken, adminToken, amount] = await Promise.all([
      csrfTokenOf(agent),
      csrfTokenOf(admin),
      amountDueOf(db, receiptId),
    ]);

    // The audit chain's lock held: the start stops at its payment.start entry, its payment inserted
    // and the receipt's row locked (FOR NO KEY UPDATE), not yet committed.
    const holder = await db.pool.connect();
    let started: Promise<request.Response> | undefined;
    let marked: Promise<request.Response> | undefined;
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEYS.auditAppend]);
      started = agent
        .post(`/payments/receipt/${receiptId}/start`)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', researcherToken)
        .send({})
        .then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
      // The billing team records a bank transfer of the same receipt meanwhile: it must wait for the
      // start, and then find the payment it made.
      marked = admin
        .post(`/admin/receipts/${receiptId}/paid`)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', adminToken)
        .send({ method: 'bank_transfer', amount_received: amount, tx_ref: 'BT-RACE' })
        .then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool, 5_000, 2)).toBe(2);
    } finally {
      await holder.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCK_KEYS.auditAppend]);
      holder.release();
    }
    const [start, mark] = await Promise.all([started, marked]);
    expect(mark?.status, mark?.text).toBe(200);

    const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId } });
    expect(mark?.body.receipt.canceledPaymentIds).toEqual([payment.id]);
    // Canceled with the mark paid's reason: a success paid there is held for review, not taken twice.
    expect(payment).toMatchObject({
      status: 'canceled',
      reviewReason: `receipt #${receiptId} was marked paid by hand while this checkout was open`,
    });
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
      status: 'paid',
      txRef: 'BT-RACE',
    });
    // The researcher is told it was paid, or sent to a checkout that now says it was canceled.
    if (start?.status === 409) {
      expect(start.body.error).toBe(
        `Receipt #${receiptId} was marked paid while its payment was starting; there is nothing to pay.`,
      );
    } else {
      expect(start?.status, start?.text).toBe(200);
    }
    const cancels = await db.prisma.auditLog.count({
      where: { action: 'payment.cancel', target: `receipt:${receiptId}` },
    });
    expect(cancels).toBe(1);
  });
});
