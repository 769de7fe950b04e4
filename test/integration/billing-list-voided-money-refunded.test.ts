import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPayingResearchers,
  deliverDummy,
  dummyRefundEvent,
  setUpDummyPaymentsApp,
} from '../support/dummy-payments.js';
import { voidAndBillAgain } from '../support/receipt-steps.js';
import { type Agent, csrfTokenOf } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// A receipt paid online (10.00 THB) is voided, its jobs are billed again, and the new receipt is marked
// paid with the money of the voided one (paid_with_receipt). The provider then refunds 3.00 THB of that
// payment: the new receipt stays paid (its payment is held, "collect 3.00 THB … or void it"), and paid.csv
// says 3.00 THB went back. The billing page's paid card ("received, net of refunds and lost disputes") and
// the receipt's row still counted the whole 10.00 THB, as if nothing had gone back: the new receipt was
// counted at its total, as any receipt marked paid by hand.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('paidcard'));
});
afterAll(() => db?.drop());

const { paidOnline } = createPayingResearchers(() => ({ db, app }), 'paidcardpayer');

async function billingListOf(username: string) {
  const list = await admin.get(`/admin/receipts?user=${username}`).set('Accept', 'application/json').expect(200);
  return list.body as {
    totals: { status: string; total: string }[];
    received: { byCurrency: { currency: string; total: string }[]; isDifferent: boolean };
    receipts: { id: number; status: string; receivedNetOfRefunds: { amount: string; currency: string } | null }[];
  };
}

describe('a receipt paid with the money of a voided receipt, part of which the provider refunded since', () => {
  it('the paid card and its row count what stayed', async () => {
    const { user, agent, receiptId: first, payment } = await paidOnline();
    const again = await voidAndBillAgain(admin, agent, first);
    const marked = await admin
      .post(`/admin/receipts/${again}/paid`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ method: 'internal_transfer', amount_received: '10.00', paid_with_receipt: String(first) });
    expect(marked.status, marked.text).toBe(200);

    const before = await billingListOf(user.username);
    expect(before.received).toMatchObject({ byCurrency: [{ currency: 'THB', total: '10.00' }], isDifferent: false });

    await deliverDummy(app, dummyRefundEvent(payment.externalPaymentId, `paidcard_refund_${payment.id}`, 300)).expect(
      200,
    );
    const after = await billingListOf(user.username);
    expect(after.totals.find((total) => total.status === 'paid')).toMatchObject({ total: '10.00' });
    expect(after.received).toMatchObject({ byCurrency: [{ currency: 'THB', total: '7.00' }], isDifferent: true });
    expect(after.receipts.find((receipt) => receipt.id === again)?.receivedNetOfRefunds).toEqual({
      amount: '7.00',
      currency: 'THB',
    });
  });
});
