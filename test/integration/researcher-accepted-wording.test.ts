import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, deliverDummy, setUpDummyPaymentsApp } from '../support/dummy-payments.js';
import { elementById, visibleTextOf as textOf } from '../support/html.js';
import { type Agent, csrfTokenOf } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// Once an admin accepted a held payment, the researcher's receipt page kept saying of a partial refund
// "this receipt stays paid while the billing team checks it" (e555f51 fixed the admin's page only), the
// printable receipt said nothing of the refund at all, and of a short payment accepted every view said
// only "Received 1.00 THB, not the 10.00 THB due", as if 9.00 THB were still owed.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;
beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('acceptwording'));
});
afterAll(() => db?.drop());

const { paidOnline, paidShortAndAccepted } = createPayingResearchers(() => ({ db, app }), 'acceptedword');

/** The text of the element `id` on the researcher's receipt page and on its printable receipt. */
async function shownAs(agent: Agent, receiptId: number, id: string) {
  const page = (await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200)).text;
  const print = (await agent.get(`/me/receipts/${receiptId}/print`).set('Accept', 'text/html').expect(200)).text;
  return { page: textOf(elementById(page, id) ?? ''), print: textOf(elementById(print, id) ?? '') };
}

const receiptJson = async (agent: Agent, receiptId: number) =>
  (await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'application/json').expect(200)).body.receipt;

describe("the researcher's receipt once an admin accepted a held payment", () => {
  it('a partial refund: "being checked" while held, "accepted" once accepted, on the page and on paper', async () => {
    const { agent, receiptId, payment } = await paidOnline();
    await deliverDummy(app, {
      event_id: `accepted_part_${payment.id}`,
      event_type: 'payment.refunded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 300,
      currency: 'THB',
    }).expect(200);
    const refunded = new RegExp(
      `^3\\.00 THB of payment #${payment.id} \\(10\\.00 THB via dummy\\) was refunded on [\\d-]+ [\\d:]+; `,
    );
    const held = await shownAs(agent, receiptId, `refund-${payment.id}`);
    for (const text of [held.page, held.print]) {
      expect(text).toMatch(refunded);
      expect(text).toMatch(/; this receipt stays paid while the billing team checks it\.$/);
    }

    await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'accepted', note: 'Partial refund agreed with the lab as a discount.' })
      .expect(200);
    const accepted = await shownAs(agent, receiptId, `refund-${payment.id}`);
    for (const text of [accepted.page, accepted.print]) {
      expect(text).toMatch(refunded);
      expect(text).toMatch(/; what is left of it was accepted as paying this receipt, which stays paid\.$/);
      expect(text).not.toContain('checks it');
    }
    const json = await receiptJson(agent, receiptId);
    expect(json).toMatchObject({ status: 'paid', heldPayment: null });
    expect(json.received).toEqual({ amount: '10.00', currency: 'THB', paymentId: payment.id, isAccepted: true });
    expect(json.refunds).toMatchObject([{ paymentId: payment.id, amount: '3.00', isFull: false }]);
  });

  it('a short payment: says it was accepted as paying the receipt, on the page, on paper and in JSON', async () => {
    const { agent, receiptId, payment } = await paidShortAndAccepted(admin, 100);
    const said =
      `1.00 THB, not the 10.00 THB due (online payment #${payment.id}); ` +
      'the billing team accepted it as paying this receipt';
    const page = textOf((await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200)).text);
    const print = textOf(
      (await agent.get(`/me/receipts/${receiptId}/print`).set('Accept', 'text/html').expect(200)).text,
    );
    expect(page).toContain(`Received ${said}`);
    expect(print).toContain(`Received ${said}`);
    expect(page).not.toContain('being checked');
    expect((await receiptJson(agent, receiptId)).received).toEqual({
      amount: '1.00',
      currency: 'THB',
      paymentId: payment.id,
      isAccepted: true,
    });
  });

  it('a payment that paid in full without a review is not said to be accepted', async () => {
    const { agent, receiptId, payment } = await paidOnline();
    const page = textOf((await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200)).text);
    expect(page).not.toContain('accepted it as paying');
    expect((await receiptJson(agent, receiptId)).received).toEqual({
      amount: '10.00',
      currency: 'THB',
      paymentId: payment.id,
      isAccepted: false,
    });
  });
});
