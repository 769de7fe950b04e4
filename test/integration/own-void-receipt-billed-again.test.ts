import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpBillingApp } from '../support/billing-app.js';
import { elementById, visibleTextOf } from '../support/html.js';
import { billJobs, researcherWithReceiptOf, voidReceiptAsJson } from '../support/receipt-steps.js';
import type { Agent } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * The billing team voids a researcher's receipt (a wrong tier) and its jobs go on the researcher's
 * next receipt. The admin's page of the void receipt names that receipt; the researcher's own page
 * said only "void", above the same jobs and total the new receipt lists: read side by side, the
 * jobs looked billed twice, and nothing said that they were still to be billed before the next one.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  ({ db, app, admin } = await setUpBillingApp('voider'));
});
afterAll(() => db?.drop());

const noteOf = async (agent: Agent, receiptId: number) =>
  visibleTextOf(
    elementById(
      (await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200)).text,
      'billed-again-on',
    ) ?? '',
  );

describe("a researcher's void receipt", () => {
  it('says that its jobs are still to be billed, then which receipt bills them again', async () => {
    const { agent, receiptId: voidedId } = await researcherWithReceiptOf(app, db, 'rebilled', 3);
    await voidReceiptAsJson(admin, voidedId, 'billed on the wrong tier');
    expect(await noteOf(agent, voidedId)).toBe(
      'Its jobs are not on any other receipt yet: your next receipt bills them again.',
    );

    const againId = await billJobs(agent);
    expect(await noteOf(agent, voidedId)).toBe(`Its jobs are billed again on receipt #${againId} (pending, 1.50 THB).`);
    const page = (await agent.get(`/me/receipts/${voidedId}`).set('Accept', 'text/html').expect(200)).text;
    expect(page).toContain(`<a href="/me/receipts/${againId}">#${againId}</a>`);
    expect(page).not.toContain('/admin/receipts/');

    const json = (await agent.get(`/me/receipts/${voidedId}`).set('Accept', 'application/json').expect(200)).body;
    expect(json.receipt.billedAgainOn).toEqual([
      { receiptId: againId, status: 'pending', total: '1.50', currency: 'THB', url: `/me/receipts/${againId}` },
    ]);
    // A receipt that is not void has none, as in the admin's JSON.
    const live = (await agent.get(`/me/receipts/${againId}`).set('Accept', 'application/json').expect(200)).body;
    expect(live.receipt.billedAgainOn).toEqual([]);
    expect(await noteOf(agent, againId)).toBe('');
  });
});

describe("the admin's page of a void receipt", () => {
  it('names whose next receipt bills its jobs with a bidirectional control written as its escape', async () => {
    const { receiptId } = await researcherWithReceiptOf(app, db, 'mirrored', 1);
    await voidReceiptAsJson(admin, receiptId, 'billed on the wrong tier');
    // A receipt of a Slurm user with no account (a month-end run's) keeps the name sacct gave, controls and all.
    await db.pool.query(`UPDATE receipts SET username = $1 WHERE id = $2`, ['mal\u202eyrol', receiptId]);
    const page = (await admin.get(`/admin/receipts/${receiptId}`).set('Accept', 'text/html').expect(200)).text;
    const note = visibleTextOf(elementById(page, 'billed-again-on') ?? '');
    expect(note).toBe(
      'Its jobs are not on any other receipt yet: the next receipt of mal\\u202eyrol (or month-end run) bills them again.',
    );
    expect(note).not.toContain('\u202e');
  });
});
