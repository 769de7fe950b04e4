import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpBillingApp } from '../support/billing-app.js';
import { buildJobs } from '../support/billing-factories.js';
import { countQueriesDuring } from '../support/count-queries.js';
import { buildUser } from '../support/factories.js';
import { elementById, visibleTextOf } from '../support/html.js';
import {
  billJobs,
  markPaidByHandAsJson,
  researcherWithReceiptOf,
  voidReceiptAsJson,
} from '../support/receipt-steps.js';
import { type Agent, signInAs } from '../support/sign-in.js';
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

/** The admin marks the receipt paid by a bank transfer of its amount due, ref `txRef`. */
const markPaidByHand = (receiptId: number, txRef: string) => markPaidByHandAsJson(admin, db, receiptId, txRef);

/** The row of receipt `id` on a page of My receipts ('' when it is not listed). */
function rowOf(page: string, id: number): string {
  return (
    page.split('<tr>').find((row) => row.includes(`<a href="/me/receipts/${id}" aria-label="Receipt #${id}">`)) ?? ''
  );
}

/** The text of the row's marker of money paid by hand on a voided receipt, linking to the receipt's notice; undefined when it has none. */
function voidedPaidByHandMarkerOf(row: string, id: number): string | undefined {
  const link = new RegExp(`<a href="/me/receipts/${id}#same-jobs-voided-paid-by-hand">([\\s\\S]*?)</a>`).exec(row);
  return link ? visibleTextOf(link[1] ?? '') : undefined;
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

  it('marks the new receipt on My receipts and prints the notice on its printable receipt, in the words of its page', async () => {
    // Only the receipt's own page said it: a researcher who read My receipts, or printed the receipt
    // for their finance office, saw a pending bill of jobs they had already paid for by bank transfer.
    const { agent, receiptId: voidedId } = await researcherWithReceiptOf(app, db, 'printsagain', 3);
    await markPaidByHand(voidedId, 'BT-0044');
    await voidReceiptAsJson(admin, voidedId, 'billed on the wrong tier');
    const againId = await billJobs(agent);
    const page = (await agent.get(`/me/receipts/${againId}`).set('Accept', 'text/html').expect(200)).text;
    const notice = visibleTextOf(elementById(page, 'same-jobs-voided-paid-by-hand') ?? '');
    expect(notice).toContain('ask your billing office before you pay for these jobs again.');

    const list = (await agent.get('/me/receipts').set('Accept', 'text/html').expect(200)).text;
    expect(voidedPaidByHandMarkerOf(rowOf(list, againId), againId)).toBe(
      `money paid by hand on receipt #${voidedId}, voided since, may pay for this receipt: ask your billing office before you pay for these jobs again`,
    );
    expect(rowOf(list, voidedId)).not.toBe('');
    expect(rowOf(list, voidedId)).not.toContain('same-jobs-voided-paid-by-hand');
    expect(rowOf(list, voidedId)).not.toContain('paid by hand');
    const listJson = (await agent.get('/me/receipts').set('Accept', 'application/json').expect(200)).body;
    const listed = (id: number) => listJson.receipts.find((receipt: { id: number }) => receipt.id === id);
    expect(listed(againId).sameJobsVoidedPaidByHand).toEqual([
      expect.objectContaining({
        receiptId: voidedId,
        paidByHand: expect.objectContaining({ method: 'bank_transfer', txRef: 'BT-0044', amount: '1.50' }),
      }),
    ]);
    expect(listed(voidedId).sameJobsVoidedPaidByHand).toEqual([]);

    // On paper: inside the printed receipt, not the on-screen banner, in the words of the receipt's page.
    const printable = (await agent.get(`/me/receipts/${againId}/print`).set('Accept', 'text/html').expect(200)).text;
    const printed = elementById(printable, 'same-jobs-voided-paid-by-hand') ?? '';
    expect(visibleTextOf(printed)).toBe(notice);
    expect(printed).toContain(`<a href="/me/receipts/${voidedId}">#${voidedId}</a>`);
    expect(elementById(printable, 'receipt')).toContain('id="same-jobs-voided-paid-by-hand"');

    // The admin's printable receipt says what the admin's page says.
    const adminPage = (await admin.get(`/admin/receipts/${againId}`).set('Accept', 'text/html').expect(200)).text;
    const adminPrintable = (await admin.get(`/admin/receipts/${againId}/print`).set('Accept', 'text/html').expect(200))
      .text;
    const adminPrinted = elementById(adminPrintable, 'same-jobs-voided-paid-by-hand') ?? '';
    expect(visibleTextOf(adminPrinted)).toBe(
      visibleTextOf(elementById(adminPage, 'same-jobs-voided-paid-by-hand') ?? ''),
    );
    expect(adminPrinted).toContain(`<a href="/admin/receipts/${voidedId}">#${voidedId}</a>`);
  });

  it('marks each such receipt on a page of My receipts with one query for all of them', async () => {
    // Three receipts, each billing again the job of its own receipt voided after a bank transfer,
    // and a pending receipt of a job never billed before: only the three are marked, each naming its own.
    const user = await buildUser(db.prisma, { username: 'manyagain' });
    await buildJobs(db, [
      { user: 'manyagain', end: '2026-01-05T10:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' },
      { user: 'manyagain', end: '2026-01-10T10:00:00Z', totalCpuSec: '7200', stepMemGbHours: '0' },
      { user: 'manyagain', end: '2026-01-15T10:00:00Z', totalCpuSec: '10800', stepMemGbHours: '0' },
      { user: 'manyagain', end: '2026-01-20T10:00:00Z', totalCpuSec: '14400', stepMemGbHours: '0' },
    ]);
    const agent = await signInAs(app, user.username, user.password);
    const pairs: { voidedId: number; againId: number }[] = [];
    for (const [index, before] of ['2026-01-06', '2026-01-11', '2026-01-16'].entries()) {
      const voidedId = await billJobs(agent, before);
      await markPaidByHand(voidedId, `BT-M${index}`);
      await voidReceiptAsJson(admin, voidedId);
      pairs.push({ voidedId, againId: await billJobs(agent, before) });
    }
    const plainId = await billJobs(agent, '2026-01-21');

    const listOf = async (who: Agent) => (await who.get('/me/receipts').set('Accept', 'text/html').expect(200)).text;
    let list = '';
    const queries = await countQueriesDuring(db.pool, async () => {
      list = await listOf(agent);
    });
    for (const { voidedId, againId } of pairs) {
      expect(voidedPaidByHandMarkerOf(rowOf(list, againId), againId)).toContain(
        `money paid by hand on receipt #${voidedId}, voided since,`,
      );
      expect(rowOf(list, voidedId)).not.toContain('same-jobs-voided-paid-by-hand');
    }
    expect(rowOf(list, plainId)).not.toBe('');
    expect(rowOf(list, plainId)).not.toContain('same-jobs-voided-paid-by-hand');

    // As many queries as for a researcher with one such receipt: not one more for each row.
    const { agent: single, receiptId: singleVoided } = await researcherWithReceiptOf(app, db, 'oneagain', 3);
    await markPaidByHand(singleVoided, 'BT-ONE');
    await voidReceiptAsJson(admin, singleVoided);
    const singleAgain = await billJobs(single);
    let singleList = '';
    const singleQueries = await countQueriesDuring(db.pool, async () => {
      singleList = await listOf(single);
    });
    expect(voidedPaidByHandMarkerOf(rowOf(singleList, singleAgain), singleAgain)).toBeDefined();
    expect(queries).toBe(singleQueries);
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
    // Nor do My receipts and the printable receipt.
    const list = (await agent.get('/me/receipts').set('Accept', 'text/html').expect(200)).text;
    expect(rowOf(list, againId)).not.toBe('');
    expect(list).not.toContain('same-jobs-voided-paid-by-hand');
    expect(list).not.toContain('paid by hand');
    const listJson = (await agent.get('/me/receipts').set('Accept', 'application/json').expect(200)).body;
    expect(
      listJson.receipts.map((receipt: { sameJobsVoidedPaidByHand: unknown }) => receipt.sameJobsVoidedPaidByHand),
    ).toEqual([[], []]);
    const printable = (await agent.get(`/me/receipts/${againId}/print`).set('Accept', 'text/html').expect(200)).text;
    expect(elementById(printable, 'same-jobs-voided-paid-by-hand')).toBeUndefined();
    const adminPrintable = (await admin.get(`/admin/receipts/${againId}/print`).set('Accept', 'text/html').expect(200))
      .text;
    expect(elementById(adminPrintable, 'same-jobs-voided-paid-by-hand')).toBeUndefined();
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
