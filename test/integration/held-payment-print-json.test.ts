import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, deliverDummy, setUpDummyPaymentsApp } from '../support/dummy-payments.js';
import { elementById, visibleTextOf as textOf } from '../support/html.js';
import { voidAndBillAgain } from '../support/receipt-steps.js';
import type { Agent } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// A payment held for review was said on the receipt's page (and under its status on My receipts),
// but the printable receipt and the receipts' JSON answers said nothing of it: a printout, or a
// script, read a held receipt as settled, or as one to pay again.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;
beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('heldprintadmin'));
});
afterAll(() => db?.drop());

const { researcherWithReceipt, startCheckout, latestPaymentOf, paidOnline } = createPayingResearchers(
  () => ({ db, app }),
  'heldprint',
);

/** What each of the researcher's four views of the receipt says of a held payment. */
async function viewsOf(agent: Agent, receiptId: number) {
  const page = (await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200)).text;
  const print = (await agent.get(`/me/receipts/${receiptId}/print`).set('Accept', 'text/html').expect(200)).text;
  const json = (await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'application/json').expect(200)).body;
  const list = (await agent.get('/me/receipts').set('Accept', 'application/json').expect(200)).body;
  return {
    pageText: textOf(page),
    printLine: textOf(elementById(print, 'payment-held') ?? ''),
    json: json.receipt.heldPayment,
    listed: list.receipts.find((receipt: { id: number }) => receipt.id === receiptId)?.heldPayment,
  };
}

describe('a held payment on the printable receipt and in the JSON answers', () => {
  it('a short payment held on a pending receipt: the same sentence on the page, on paper and in JSON', async () => {
    const { agent, receiptId } = await researcherWithReceipt();
    await startCheckout(agent, receiptId);
    const payment = await latestPaymentOf(receiptId);
    await deliverDummy(app, {
      event_id: `held_short_${payment.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 100,
      currency: 'THB',
    }).expect(200);

    const said =
      'A payment of 1.00 THB for this receipt is being checked by the billing team; they will be in touch. ' +
      'Please do not pay again for these jobs meanwhile: this receipt cannot be paid online until they have decided.';
    const views = await viewsOf(agent, receiptId);
    expect(views.pageText).toContain(said);
    expect(views.printLine).toBe(said);
    const held = {
      paymentId: payment.id,
      receiptId,
      status: 'needs_review',
      state: 'being_checked',
      amount: '1.00',
      currency: 'THB',
      refunded: null,
      moneyPaidReceipt: null,
      message: said,
    };
    expect(views.json).toEqual(held);
    expect(views.listed).toEqual(held);
  });

  it('a disputed payment of a paid receipt: held, the receipt still paid', async () => {
    const { agent, receiptId, payment } = await paidOnline();
    await deliverDummy(app, {
      event_id: `held_dispute_${payment.id}`,
      event_type: 'payment.disputed',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 1000,
      currency: 'THB',
      dispute_reason: 'fraudulent',
    }).expect(200);

    const said =
      'A payment of 10.00 THB for this receipt is being checked by the billing team; they will be in touch. ' +
      'Please do not pay again for these jobs meanwhile.';
    const views = await viewsOf(agent, receiptId);
    expect(views.pageText).toContain(said);
    expect(views.printLine).toBe(said);
    expect(views.json).toEqual({
      paymentId: payment.id,
      receiptId,
      status: 'needs_review',
      state: 'being_checked',
      amount: '10.00',
      currency: 'THB',
      refunded: null,
      moneyPaidReceipt: null,
      message: said,
    });
    expect(views.listed).toEqual(views.json);
  });

  it('a receipt billing again the jobs of a voided receipt whose payment is held names that payment', async () => {
    const { agent, receiptId: voided, payment } = await paidOnline();
    const receiptId = await voidAndBillAgain(admin, agent, voided);

    const said =
      `A payment of 10.00 THB for receipt #${voided}, which billed some of these jobs, is being checked by the ` +
      'billing team, so this receipt cannot be paid online until they have decided what that money pays for; ' +
      'they will be in touch.';
    const views = await viewsOf(agent, receiptId);
    expect(views.pageText).toContain(said);
    expect(views.printLine).toBe(said);
    expect(views.json).toEqual({
      paymentId: payment.id,
      receiptId: voided,
      status: 'needs_review',
      state: 'held_for_same_jobs',
      amount: '10.00',
      currency: 'THB',
      refunded: null,
      moneyPaidReceipt: null,
      message: said,
    });
    expect(views.listed).toEqual(views.json);

    // The voided receipt's own payment is the one held, and it says so on paper too.
    const own = await viewsOf(agent, voided);
    expect(own.printLine).toBe(
      'A payment of 10.00 THB for this receipt is being checked by the billing team; they will be in touch. ' +
        'Please do not pay again for these jobs meanwhile.',
    );
    expect(own.json).toMatchObject({ paymentId: payment.id, receiptId: voided });
  });

  it('a receipt with no held payment has none, on paper or in JSON', async () => {
    const { agent, receiptId } = await paidOnline();
    const views = await viewsOf(agent, receiptId);
    expect(views.printLine).toBe('');
    expect(views.json).toBeNull();
    expect(views.listed).toBeNull();
    expect(views.pageText).not.toContain('being checked');
  });
});
