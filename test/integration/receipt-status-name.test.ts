import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { billJobs, voidReceiptAsJson } from '../support/receipt-steps.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A receipt's status badge said "paid" or "void" by its colour and that one word: beside a
 * receipt's heading, or after its number in My usage's Billed column, a screen reader read "paid"
 * with nothing to say what it was (found by the accessibility review, WCAG 1.3.1). The badge now
 * reads "Status: paid" to a screen reader, the "Status: " hidden from the eye (span.visually-hidden),
 * so the badge looks as it did.
 */
let db: TestDatabase;
let alice: Agent;
let admin: Agent;
let receiptId: number;
const now = () => new Date('2025-09-20T05:00:00Z');

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  await buildJobs(db, [{ user: 'alice', jobId: '101', end: '2025-09-18T03:00:00Z' }]);
  const app = buildTestApp(db, { now });
  alice = await signInAs(app, 'alice', 'alice-password');
  admin = await signInAs(app, 'boss', 'boss-password');
  receiptId = await billJobs(alice, '2025-09-18');
});
afterAll(() => db?.drop());

const html = async (agent: Agent, path: string) => (await agent.get(path).set('Accept', 'text/html').expect(200)).text;

/** The badge of a status, with the words only a screen reader reads. */
const badgeOf = (status: string, extraClass = '') =>
  `<span class="badge ${status}${extraClass}"><span class="visually-hidden">Status: </span>${status}</span>`;

describe("a receipt's status badge", () => {
  it("reads as the receipt's status on its page and its printable list, the researcher's and the admin's", async () => {
    for (const path of [
      `/me/receipts/${receiptId}`,
      `/me/receipts/${receiptId}/print`,
      `/admin/receipts/${receiptId}`,
      `/admin/receipts/${receiptId}/print`,
    ]) {
      expect(await html(path.startsWith('/me') ? alice : admin, path), path).toContain(badgeOf('pending', ' big'));
    }
    await voidReceiptAsJson(admin, receiptId);
    expect(await html(alice, `/me/receipts/${receiptId}`)).toContain(badgeOf('void', ' big'));
  });

  it("reads as the receipt's status after its number in My usage's Billed column", async () => {
    // The job of the receipt voided above, billed again.
    const again = await billJobs(alice, '2025-09-18');
    const page = await html(alice, '/me?start=2025-09-14&end=2025-09-20');
    expect(page).toContain(
      `<a href="/me/receipts/${again}" aria-label="Receipt #${again}">#${again}</a> ${badgeOf('pending')}`,
    );
  });
});
