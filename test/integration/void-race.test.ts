import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliverDummy, setUpDummyPayments } from '../support/dummy-payments.js';
import { sessionsWaitingForLocks } from '../support/lock-waits.js';
import { researcherWithReceiptOf, startCheckout } from '../support/receipt-steps.js';
import { type Agent, csrfTokenOf, signInNewAdmin } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  ({ db, app } = await setUpDummyPayments());
});
afterAll(() => db?.drop());

let counter = 0;
/** A receipt of 0.50 THB whose online payment arrived 0.01 THB short and is held for review. */
async function receiptWithHeldPayment() {
  counter += 1;
  const { agent, receiptId } = await researcherWithReceiptOf(app, db, `racer${counter}`, 1);
  await startCheckout(agent, receiptId);
  const started = await db.prisma.payment.findFirstOrThrow({ where: { receiptId } });
  await deliverDummy(app, {
    event_id: `evt_short_${started.id}`,
    event_type: 'payment.succeeded',
    external_payment_id: started.externalPaymentId,
    amount_cents: 49,
    currency: 'THB',
  }).expect(200);
  expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: started.id } })).status).toBe('needs_review');
  return { receiptId, paymentId: started.id };
}

async function signInAdmin(): Promise<Agent> {
  counter += 1;
  const username = `raceadmin${counter}`;
  return signInNewAdmin(app, db, username);
}

describe('a void that lands while the receipt is being paid', () => {
  it('holds the payment an admin accepted meanwhile, instead of leaving that money on a void receipt', async () => {
    const admin = await signInAdmin();
    const { receiptId, paymentId } = await receiptWithHeldPayment();
    const token = await csrfTokenOf(admin);

    // Another admin accepts the held payment: the receipt is paid from it, not committed yet.
    const accepting = await db.pool.connect();
    try {
      await accepting.query('BEGIN');
      await accepting.query('SELECT id FROM payments WHERE id = $1 FOR UPDATE', [paymentId]);
      await accepting.query(
        `UPDATE receipts SET status = 'paid', paid_at = now(), payment_method = 'dummy' WHERE id = $1`,
        [receiptId],
      );
      await accepting.query(
        `UPDATE payments SET status = 'resolved', review_outcome = 'accepted', review_note = 'short by 0.01, written off',
                reviewed_by = 'other-admin', reviewed_at = now() WHERE id = $1`,
        [paymentId],
      );
      const voiding = admin
        .post(`/admin/receipts/${receiptId}/void`)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', token)
        .send({ reason: 'billed to the wrong project' })
        .then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool)).toBeGreaterThan(0);
      await accepting.query('COMMIT');
      const voided = await voiding;
      expect(voided.status, voided.text).toBe(200);
      expect(voided.body.receipt).toMatchObject({ previousStatus: 'paid', heldPaymentId: paymentId });
    } finally {
      accepting.release();
    }

    // The receipt's jobs can be billed again, so the money it kept must wait for a refund decision.
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: paymentId } })).toMatchObject({
      status: 'needs_review',
      reviewOutcome: null,
    });
    const voidAudit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'receipt.void', target: `receipt:${receiptId}` },
    });
    expect(voidAudit.details).toMatchObject({ previousStatus: 'paid', heldPaymentId: paymentId });
  });
});
