import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpBillingApp } from '../support/billing-app.js';
import { amountDueOf } from '../support/billing-factories.js';
import { elementById, visibleTextOf } from '../support/html.js';
import { billJobs, researcherWithReceiptOf, voidReceiptAsJson } from '../support/receipt-steps.js';
import { type Agent, csrfTokenOf } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * Finance marked a receipt paid by hand (a bank transfer), then voided it (a wrong tier, a
 * duplicate) and billed its jobs again. The void said "return it to the payer or apply it
 * elsewhere", but the new receipt, where that money would be applied, said nothing of it: marked
 * paid with a second transfer, the researcher paid twice for the same jobs. Nor did the voided
 * receipt say which receipt bills its jobs now.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  ({ db, app, admin } = await setUpBillingApp('ledger'));
});
afterAll(() => db?.drop());

async function markPaidByHand(receiptId: number, txRef: string) {
  const marked = await admin
    .post(`/admin/receipts/${receiptId}/paid`)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin))
    .send({ method: 'bank_transfer', amount_received: await amountDueOf(db, receiptId), tx_ref: txRef });
  expect(marked.status, marked.text).toBe(200);
}

describe('a receipt that bills again the jobs of a receipt voided after it was paid by hand', () => {
  it('says so on both receipts, on the page and in the JSON', async () => {
    const { agent, receiptId: voidedId } = await researcherWithReceiptOf(app, db, 'twicepaid', 3);
    await markPaidByHand(voidedId, 'BT-0042');
    await voidReceiptAsJson(admin, voidedId, 'billed on the wrong tier');
    const againId = await billJobs(agent);

    const page = (await admin.get(`/admin/receipts/${againId}`).set('Accept', 'text/html').expect(200)).text;
    const notice = visibleTextOf(elementById(page, 'same-jobs-voided-paid-by-hand') ?? '');
    expect(notice).toContain(
      `Receipt #${voidedId}, which billed some of these jobs, was voided after it was paid by hand: 1.50 THB by bank transfer, ref BT-0042, on`,
    );
    expect(notice).toContain('marking this receipt paid with other money bills the researcher twice for the same jobs');
    // The notice comes before the mark-paid form, where the admin is about to record money.
    expect(page.indexOf('id="same-jobs-voided-paid-by-hand"')).toBeLessThan(
      page.indexOf(`action="/admin/receipts/${againId}/paid"`),
    );

    const json = (await admin.get(`/admin/receipts/${againId}`).set('Accept', 'application/json').expect(200)).body;
    expect(json.receipt.sameJobsVoidedPaidByHand).toEqual([
      expect.objectContaining({
        receiptId: voidedId,
        paidByHand: expect.objectContaining({
          method: 'bank_transfer',
          txRef: 'BT-0042',
          amount: '1.50',
          currency: 'THB',
        }),
      }),
    ]);

    const voidedPage = (await admin.get(`/admin/receipts/${voidedId}`).set('Accept', 'text/html').expect(200)).text;
    expect(visibleTextOf(elementById(voidedPage, 'billed-again-on') ?? '')).toContain(
      `Its jobs are billed again on receipt #${againId} (pending, 1.50 THB).`,
    );
    const voidedJson = (await admin.get(`/admin/receipts/${voidedId}`).set('Accept', 'application/json').expect(200))
      .body;
    expect(voidedJson.receipt.billedAgainOn).toEqual([
      { receiptId: againId, status: 'pending', total: '1.50', currency: 'THB', url: `/admin/receipts/${againId}` },
    ]);
  });

  it("tells the researcher on the new receipt's page, before Pay online, that the money may already pay for it", async () => {
    // The researcher who paid by bank transfer saw a new bill for the same jobs and a Pay button:
    // only the admin's page said the transfer may pay for it, so the researcher paid a second time.
    const { agent, receiptId: voidedId } = await researcherWithReceiptOf(app, db, 'paysagain', 3);
    await markPaidByHand(voidedId, 'BT-0043');
    await voidReceiptAsJson(admin, voidedId, 'billed on the wrong tier');
    const againId = await billJobs(agent);

    const page = (await agent.get(`/me/receipts/${againId}`).set('Accept', 'text/html').expect(200)).text;
    const notice = visibleTextOf(elementById(page, 'same-jobs-voided-paid-by-hand') ?? '');
    expect(notice).toMatch(
      new RegExp(
        `^Receipt #${voidedId}, which billed some of these jobs, was voided after it was paid by hand: 1\\.50 THB by bank transfer, ref BT-0043, on \\d{4}-\\d{2}-\\d{2}\\. Unless that money was returned to you, it may pay for this receipt: ask your billing office before you pay for these jobs again\\.$`,
      ),
    );
    expect(page).toContain(`<a href="/me/receipts/${voidedId}">#${voidedId}</a>`);
    expect(page.indexOf('id="same-jobs-voided-paid-by-hand"')).toBeLessThan(
      page.indexOf(`action="/payments/receipt/${againId}/start"`),
    );
    const json = (await agent.get(`/me/receipts/${againId}`).set('Accept', 'application/json').expect(200)).body;
    expect(json.receipt.sameJobsVoidedPaidByHand).toEqual([
      expect.objectContaining({
        receiptId: voidedId,
        paidByHand: expect.objectContaining({
          method: 'bank_transfer',
          txRef: 'BT-0043',
          amount: '1.50',
          currency: 'THB',
        }),
      }),
    ]);
  });

  it('says nothing of a receipt voided while pending, or of one whose jobs are not billed again', async () => {
    const { agent, receiptId: voidedId } = await researcherWithReceiptOf(app, db, 'neverpaid', 2);
    await voidReceiptAsJson(admin, voidedId);
    const againId = await billJobs(agent);

    const page = (await admin.get(`/admin/receipts/${againId}`).set('Accept', 'text/html').expect(200)).text;
    expect(elementById(page, 'same-jobs-voided-paid-by-hand')).toBeUndefined();
    const own = (await agent.get(`/me/receipts/${againId}`).set('Accept', 'text/html').expect(200)).text;
    expect(elementById(own, 'same-jobs-voided-paid-by-hand')).toBeUndefined();
    const ownJson = (await agent.get(`/me/receipts/${againId}`).set('Accept', 'application/json').expect(200)).body;
    expect(ownJson.receipt.sameJobsVoidedPaidByHand).toEqual([]);
    const json = (await admin.get(`/admin/receipts/${againId}`).set('Accept', 'application/json').expect(200)).body;
    expect(json.receipt.sameJobsVoidedPaidByHand).toEqual([]);
    expect(json.receipt.billedAgainOn).toEqual([]);

    const { receiptId: lone } = await researcherWithReceiptOf(app, db, 'notagain', 2);
    await markPaidByHand(lone, 'BT-7');
    await voidReceiptAsJson(admin, lone);
    const lonePage = (await admin.get(`/admin/receipts/${lone}`).set('Accept', 'text/html').expect(200)).text;
    expect(visibleTextOf(elementById(lonePage, 'billed-again-on') ?? '')).toContain(
      'Its jobs are not on any other receipt yet',
    );
  });
});
