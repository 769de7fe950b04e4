import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliverDummy, setUpDummyPayments } from '../support/dummy-payments.js';
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

// Both orders happen over the rounds (the mark first: the late success is held; the success
// first: the mark is a 409); either way the receipt is paid once, by one of them.
describe('an admin marking a receipt paid while its online payment succeeds', () => {
  it('ends with the money counted once, whichever lands first, over many rounds', async () => {
    const admin = await signInNewAdmin(app, db, 'markadmin');
    const adminToken = await csrfTokenOf(admin);
    for (let round = 0; round < 8; round++) {
      const { agent, receiptId } = await researcherWithReceiptOf(app, db, `payer${round}`, 20);
      await startCheckout(agent, receiptId);
      const started = await db.prisma.payment.findFirstOrThrow({ where: { receiptId } });
      const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
      const cents = Number(receipt.total.mul(100).toFixed(0));
      const [marked, delivered] = await Promise.all([
        admin
          .post(`/admin/receipts/${receiptId}/paid`)
          .set('Accept', 'application/json')
          .set('X-CSRFToken', adminToken)
          .send({ method: 'bank_transfer', amount_received: receipt.total.toFixed(2), tx_ref: `ref-${round}` }),
        deliverDummy(app, {
          event_id: `evt_${started.id}`,
          event_type: 'payment.succeeded',
          external_payment_id: started.externalPaymentId,
          amount_cents: cents,
          currency: 'THB',
        }),
      ]);
      expect(delivered.status).toBe(200);
      const after = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
      const payment = await db.prisma.payment.findUniqueOrThrow({ where: { id: started.id } });
      expect(after.status).toBe('paid');
      if (marked.status === 200 || marked.status === 303) {
        // Paid by hand: the online money is held for review, never counted as paying the receipt.
        expect(after.paymentMethod).toBe('bank_transfer');
        expect(payment.status).toBe('needs_review');
      } else {
        expect(marked.status).toBe(409);
        expect(after.paymentMethod).toBe('dummy');
        expect(payment.status).toBe('succeeded');
      }
    }
  });
});
