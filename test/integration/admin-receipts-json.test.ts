import type express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectPageForBrowsersAndNoJsonForResearchers } from '../support/admin-json.js';
import { createPayingResearchers, setUpDummyPaymentsApp } from '../support/dummy-payments.js';
import { cellsLabelled } from '../support/html.js';
import { type Agent, csrfTokenOf } from '../support/sign-in.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * /admin/receipts for a script (a finance reconciliation): the billing page answered a JSON
 * client with its HTML, while a bad filter already got {error, code}. Now the list, its paging
 * and the totals come as JSON, each receipt written as /me/receipts writes it.
 */

let db: TestDatabase;
let app: express.Express;
let admin: Agent;
const researchers = createPayingResearchers(() => ({ db, app }), 'payer');
let pending: Awaited<ReturnType<typeof researchers.researcherWithReceipt>>;
let short: Awaited<ReturnType<typeof researchers.paidShortAndAccepted>>;
let byHand: Awaited<ReturnType<typeof researchers.researcherWithReceipt>>;

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('ledger'));
  pending = await researchers.researcherWithReceipt();
  short = await researchers.paidShortAndAccepted(admin, 100);
  byHand = await researchers.researcherWithReceipt();
  await admin
    .post(`/admin/receipts/${byHand.receiptId}/paid`)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin))
    .send({ method: 'bank_transfer', amount_received: '10.00', tx_ref: 'KBANK-77' })
    .expect(200);
});
afterAll(() => db?.drop());

type ListedJson = {
  id: number;
  username: string;
  status: string;
  total: string;
  paymentMethod: string | null;
  receivedNetOfRefunds: { amount: string; currency: string } | null;
  url: string;
};

function getJson(path: string) {
  return admin.get(path).set('Accept', 'application/json');
}

describe('GET /admin/receipts for a JSON client', () => {
  it('answers the list, its paging and the totals of the page as JSON, money as decimal text', async () => {
    const answer = await getJson('/admin/receipts').expect(200);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    const body = answer.body;
    expect(body).toMatchObject({ filters: {}, page: 1, pageCount: 1, count: 3 });
    // Newest first, as the page lists them.
    expect(body.receipts.map((receipt: ListedJson) => receipt.id)).toEqual([
      byHand.receiptId,
      short.receiptId,
      pending.receiptId,
    ]);
    const [hand, paidShort, open] = body.receipts as ListedJson[];
    expect(hand).toMatchObject({
      username: byHand.user.username,
      status: 'paid',
      total: '10.00',
      currency: 'THB',
      paymentMethod: 'bank_transfer',
      paidAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
      voidedAt: null,
      jobCount: 1,
      receivedNetOfRefunds: null,
      url: `/admin/receipts/${byHand.receiptId}`,
    });
    // Paid short: what it brought in beside its total, as the page's row says.
    expect(paidShort?.receivedNetOfRefunds).toEqual({ amount: '1.00', currency: 'THB' });
    expect(open).toMatchObject({ status: 'pending', paidAt: null, paymentMethod: null });

    expect(body.totals).toEqual(
      expect.arrayContaining([
        { status: 'pending', currency: 'THB', total: '10.00', count: 1 },
        { status: 'paid', currency: 'THB', total: '20.00', count: 2 },
      ]),
    );
    expect(body.totals).toHaveLength(2);
    // Net of refunds: 10.00 by hand and 1.00 accepted short, not the 20.00 billed.
    expect(body.received).toEqual({
      byCurrency: [{ currency: 'THB', total: '11.00' }],
      unknownCount: 0,
      isDifferent: true,
    });

    // The same figures as the page's rows.
    const page = await admin.get('/admin/receipts').set('Accept', 'text/html').expect(200);
    expect(cellsLabelled(page.text, 'Total')).toEqual(
      body.receipts.map((receipt: ListedJson) => `${receipt.total} THB`),
    );
  });

  it('writes each receipt as /me/receipts writes it', async () => {
    const listed = (await getJson(`/admin/receipts?user=${short.user.username}`).expect(200)).body.receipts[0];
    const own = (await short.agent.get('/me/receipts').set('Accept', 'application/json').expect(200)).body.receipts[0];
    // The researcher's notes (a held payment, money paid by hand on a voided receipt of the same jobs)
    // are on the admin's receipt page and its JSON, not on the admin's list.
    const { heldPayment, sameJobsVoidedPaidByHand, url, refunds, ...facts } = own;
    expect(listed).toMatchObject(facts);
  });

  it('applies the filters and names them', async () => {
    const body = (await getJson(`/admin/receipts?status=paid&user=${byHand.user.username}`).expect(200)).body;
    expect(body.filters).toEqual({ status: 'paid', user: byHand.user.username });
    expect(body.receipts.map((receipt: ListedJson) => receipt.id)).toEqual([byHand.receiptId]);
    expect(body.count).toBe(1);
    // The totals are of every status under the other filters, as the page's cards are.
    expect(body.totals).toEqual([{ status: 'paid', currency: 'THB', total: '10.00', count: 1 }]);
  });

  it('refuses a bad filter, an unknown run or a page past the last with {error, code}, changing nothing', async () => {
    const before = await db.prisma.receipt.findMany({ orderBy: { id: 'asc' } });
    const reversed = await getJson('/admin/receipts?start=2026-02-01&end=2026-01-01').expect(400);
    expect(reversed.headers['content-type']).toMatch(/^application\/json/);
    expect(reversed.body).toEqual({ error: expect.any(String), code: 400 });
    expect((await getJson('/admin/receipts?status=owed').expect(400)).body).toEqual({
      error: expect.stringMatching(/^status: /),
      code: 400,
    });
    expect((await getJson('/admin/receipts?run=999').expect(404)).body).toEqual({
      error: expect.any(String),
      code: 404,
    });
    expect((await getJson('/admin/receipts?page=2').expect(404)).body).toEqual({
      error: expect.any(String),
      code: 404,
    });
    expect(await db.prisma.receipt.findMany({ orderBy: { id: 'asc' } })).toEqual(before);
  });

  it("refuses the audit log's from and to by name, on the page too, instead of listing every receipt", async () => {
    // The audit log, another admin page, reads its window as from/to; ignored here as unknown fields,
    // /admin/receipts?from=2026-11-01&to=2026-11-30 answered 200 with every receipt and all-time totals.
    const NOT_READ_HERE =
      'is not read here: the billing page reads its creation window from start and end; from and to are read by the audit log only';
    const refused = await getJson('/admin/receipts?from=2026-11-01&to=2026-11-30').expect(400);
    expect(refused.body).toEqual({ error: `from: ${NOT_READ_HERE}; to: ${NOT_READ_HERE}`, code: 400 });
    const page = await admin.get('/admin/receipts?status=paid&to=2026-11-30').set('Accept', 'text/html').expect(400);
    expect(page.text).toContain(`to: ${NOT_READ_HERE}`);
    // The filters typed that are read stay in the form.
    expect(page.text).toMatch(/<option value="paid" selected>/);
    await admin.head('/admin/receipts?from=2026-11-01').expect(400);
    // start and end still filter.
    expect((await getJson('/admin/receipts?start=2000-01-01&end=2000-01-31').expect(200)).body.count).toBe(0);
  });

  it('refuses a Created from alone after today, as paid.csv refuses a Paid from after today, instead of "No receipts match."', async () => {
    // From alone reads up to today; after today it listed nothing, which read as "nothing was billed".
    const paidCsv = await getJson('/admin/paid.csv?start=2999-12-31').expect(400);
    const today = /is after today \((\d{4}-\d{2}-\d{2})\)/.exec(paidCsv.body.error)?.[1] ?? '';
    expect(paidCsv.body.error).toBe(
      `Paid from (2999-12-31) is after today (${today}), so nothing has happened since then yet. Pick a Paid from on or before today.`,
    );
    const said = paidCsv.body.error.replaceAll('Paid from', 'Created from');
    const refused = await getJson('/admin/receipts?start=2999-12-31').expect(400);
    expect(refused.body).toEqual({ error: said, code: 400 });
    const page = await admin.get('/admin/receipts?status=paid&start=2999-12-31').set('Accept', 'text/html').expect(400);
    expect(page.text).toContain(said);
    expect(page.text).not.toContain('No receipts match.');
    // The filters typed stay in the form.
    expect(page.text).toMatch(/<option value="paid" selected>/);
    for (const accept of ['text/html', 'application/json']) {
      await admin.head('/admin/receipts?start=2999-12-31').set('Accept', accept).expect(400);
    }
    // Today, or a window with both ends (as paid.csv takes one), is still listed.
    expect((await getJson(`/admin/receipts?start=${today}`).expect(200)).body.count).toBeGreaterThanOrEqual(0);
    expect((await getJson('/admin/receipts?start=2999-12-01&end=2999-12-31').expect(200)).body.count).toBe(0);
  });

  it('still gives a browser the page, and a researcher asking for JSON no one else’s receipts', async () => {
    await expectPageForBrowsersAndNoJsonForResearchers(admin, pending.agent, '/admin/receipts');
  });
});
