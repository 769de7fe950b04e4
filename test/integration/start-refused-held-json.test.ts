import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, deliverDummy, setUpDummyPayments } from '../support/dummy-payments.js';
import { csrfTokenOf } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// A script starting the payment of a receipt whose own payment is held for review was refused with
// the generic sentence alone: it could not tell which payment, or how much, as the receipt's JSON
// (`heldPayment`) tells it.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  ({ db, app } = await setUpDummyPayments());
});
afterAll(() => db?.drop());

const { researcherWithReceipt, startCheckout, latestPaymentOf } = createPayingResearchers(
  () => ({ db, app }),
  'startheld',
);

describe('a refused start of a receipt whose payment is held', () => {
  it('answers JSON with the held payment, as the receipt JSON names it, and starts nothing', async () => {
    const { agent, receiptId } = await researcherWithReceipt();
    await startCheckout(agent, receiptId);
    const payment = await latestPaymentOf(receiptId);
    await deliverDummy(app, {
      event_id: `short_${payment.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 100,
      currency: 'THB',
    }).expect(200);
    const paymentsBefore = await db.prisma.payment.count({ where: { receiptId } });

    const refused = await agent
      .post(`/payments/receipt/${receiptId}/start`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({});
    expect(refused.status, refused.text).toBe(409);
    const receipt = (await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'application/json').expect(200)).body
      .receipt;
    expect(refused.body).toEqual({
      error:
        'A payment for this receipt is being checked by the billing team, so it cannot be paid again now; they will be in touch.',
      code: 409,
      heldPayment: {
        paymentId: payment.id,
        receiptId,
        status: 'needs_review',
        state: 'being_checked',
        amount: '1.00',
        currency: 'THB',
        refunded: null,
        moneyPaidReceipt: null,
        message: receipt.heldPayment.message,
      },
    });
    expect(receipt.heldPayment.paymentId).toBe(payment.id);
    expect(await db.prisma.payment.count({ where: { receiptId } })).toBe(paymentsBefore);
  });
});
