import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliverDummy, setUpDummyPayments } from '../support/dummy-payments.js';
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
/** A researcher's receipt of 0.50 THB, with its online checkout started. */
async function receiptBeingPaid(): Promise<{ agent: Agent; receiptId: number; paymentId: number; external: string }> {
  counter += 1;
  const { agent, receiptId } = await researcherWithReceiptOf(app, db, `jsonpayer${counter}`, 1);
  await startCheckout(agent, receiptId);
  const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId } });
  return { agent, receiptId, paymentId: payment.id, external: payment.externalPaymentId as string };
}

const receiptJson = async (agent: Agent, receiptId: number) =>
  (await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'application/json').expect(200)).body.receipt;

describe('a receipt as JSON says what its online payment received, as its page does', () => {
  it('a short payment accepted by an admin: the JSON names the amount received, not only the total', async () => {
    const { agent, receiptId, paymentId, external } = await receiptBeingPaid();
    await deliverDummy(app, {
      event_id: `evt_short_${paymentId}`,
      event_type: 'payment.succeeded',
      external_payment_id: external,
      amount_cents: 40,
      currency: 'THB',
    }).expect(200);
    const admin = await signInNewAdmin(app, db, 'jsonadmin');
    await admin
      .post(`/admin/payments/${paymentId}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'accepted', accept_mismatch: 'yes', note: 'short by 0.10 THB, written off' })
      .expect(200);

    const page = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('not the 0.50 THB due');
    expect(await receiptJson(agent, receiptId)).toMatchObject({
      status: 'paid',
      total: '0.50',
      currency: 'THB',
      received: { amount: '0.40', currency: 'THB', paymentId },
    });
  });

  it('paid in full online: received is the total; not paid yet: received is null', async () => {
    const { agent, receiptId, paymentId, external } = await receiptBeingPaid();
    expect(await receiptJson(agent, receiptId)).toMatchObject({ status: 'pending', received: null });
    await deliverDummy(app, {
      event_id: `evt_full_${paymentId}`,
      event_type: 'payment.succeeded',
      external_payment_id: external,
      amount_cents: 50,
      currency: 'THB',
    }).expect(200);
    expect(await receiptJson(agent, receiptId)).toMatchObject({
      status: 'paid',
      received: { amount: '0.50', currency: 'THB', paymentId },
    });
  });
});
