import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPayingResearchers,
  deliverDummy,
  dummyRefundEvent,
  setUpDummyPaymentsApp,
} from '../support/dummy-payments.js';
import { visibleTextOf } from '../support/html.js';
import { voidAndBillAgain } from '../support/receipt-steps.js';
import { type Agent, csrfTokenOf } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// A receipt paid online (10.00 THB) is voided, its jobs are billed again, and the new receipt is marked
// paid with the money of the voided one. The provider then refunds 3.00 THB of that payment. The billing
// list's row of the new receipt says "received, net of refunds and lost disputes: 7.00 THB", but the
// receipt's own page (the admin's, its printable and the researcher's) and its JSON still read as paid in
// full with the 10.00 THB of the voided receipt: a finance officer following the row to the receipt found
// no trace of the 3.00 THB gone, and the printable sent to a grant office said the same.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('goneagain'));
});
afterAll(() => db?.drop());

const { paidOnline } = createPayingResearchers(() => ({ db, app }), 'goneagainpayer');

/** The visible text of the receipt's facts (its header and dl), as a page shows them. */
function factsOf(html: string): string {
  return visibleTextOf(/<dl class="facts">.*?<\/dl>/s.exec(html)?.[0] ?? '');
}

/** The facts' Received line, its term and its description, as read. */
function receivedLineOf(html: string): string {
  return visibleTextOf(/<dt>Received<\/dt><dd[^>]*>.*?<\/dd>/s.exec(html)?.[0] ?? '');
}

describe('a receipt paid with the money of a voided receipt, part of which went back since', () => {
  it('says on its pages and in its JSON what it received net, as its row in the billing list does', async () => {
    const { agent, receiptId: first, payment } = await paidOnline();
    const again = await voidAndBillAgain(admin, agent, first);
    const marked = await admin
      .post(`/admin/receipts/${again}/paid`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ method: 'internal_transfer', amount_received: '10.00', paid_with_receipt: String(first) });
    expect(marked.status, marked.text).toBe(200);

    // Nothing gone back yet: nothing more is said.
    const whole = (await admin.get(`/admin/receipts/${again}`).set('Accept', 'text/html').expect(200)).text;
    expect(factsOf(whole)).not.toContain('Received');
    const wholeJson = await admin.get(`/admin/receipts/${again}`).set('Accept', 'application/json').expect(200);
    expect(wholeJson.body.receipt.receivedNetOfRefunds).toBeNull();

    await deliverDummy(app, dummyRefundEvent(payment.externalPaymentId, `goneagain_${payment.id}`, 300)).expect(200);

    const said =
      'Received 7.00 THB, net of refunds and lost disputes, not the 10.00 THB total: 3.00 THB of the money of ' +
      `receipt #${first} that paid it went back to the payer since`;
    // Said once: "Received Received 7.00 THB" repeated the term.
    const page = (await admin.get(`/admin/receipts/${again}`).set('Accept', 'text/html').expect(200)).text;
    expect(receivedLineOf(page)).toBe(said);
    const printable = (await admin.get(`/admin/receipts/${again}/print`).set('Accept', 'text/html').expect(200)).text;
    expect(receivedLineOf(printable)).toBe(said);
    const own = (await agent.get(`/me/receipts/${again}`).set('Accept', 'text/html').expect(200)).text;
    expect(receivedLineOf(own)).toBe(said);

    const json = await admin.get(`/admin/receipts/${again}`).set('Accept', 'application/json').expect(200);
    expect(json.body.receipt.receivedNetOfRefunds).toEqual({ amount: '7.00', currency: 'THB' });
    // The billing list's row says the same.
    const list = await admin.get(`/admin/receipts?status=paid`).set('Accept', 'application/json').expect(200);
    expect(list.body.receipts.find((receipt: { id: number }) => receipt.id === again)?.receivedNetOfRefunds).toEqual(
      json.body.receipt.receivedNetOfRefunds,
    );
  });
});
