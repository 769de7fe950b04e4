import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliverDummy, setUpDummyPayments } from '../support/dummy-payments.js';
import { visibleTextOf as textOf } from '../support/html.js';
import { researcherWithReceiptOf, startCheckout } from '../support/receipt-steps.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  ({ db, app } = await setUpDummyPayments());
});
afterAll(() => db?.drop());

describe('the payment status page of a payment held because it was not the amount due', () => {
  it('says what arrived next to the total, as the receipt page does', async () => {
    const { agent, receiptId } = await researcherWithReceiptOf(app, db, 'shortpayer', 1);
    await startCheckout(agent, receiptId);
    const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId } });
    await deliverDummy(app, {
      event_id: `evt_short_${payment.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 40,
      currency: 'THB',
    }).expect(200);

    const receiptPage = textOf((await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html')).text);
    expect(receiptPage).toContain('A payment of 0.40 THB for this receipt is being checked');
    const status = textOf((await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html')).text);
    expect(status).toContain('Total: 0.50 THB');
    expect(status).toContain('Received: 0.40 THB, not the total');
  });
});
