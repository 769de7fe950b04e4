import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../src/modules/audit/audit.service.js';
import { amountDueOf, buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { createPaidCsvStory } from '../support/paid-csv-story.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A receipt marked paid with a voided receipt's money was audited under the new receipt only, so the
// audit filter target=receipt:<voided id> (the voided receipt page's "This receipt's history") did not
// show where its money went. The same transaction now files an entry under the voided receipt too.
let db: TestDatabase;
const clock = new Date('2025-09-05T03:00:00Z');
let app: ReturnType<typeof buildTestApp>;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'kim', password: 'kim-password' });
  await buildUser(db.prisma, { username: 'finance', role: 'admin', password: 'finance-password' });
  app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now: () => clock });
});
afterAll(() => db?.drop());

const signIn = (username: string) => signInAs(app, username, `${username}-password`);
const { billEverything } = createPaidCsvStory(() => db);

async function post(admin: Agent, path: string, fields: Record<string, unknown>) {
  return admin
    .post(path)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin))
    .send(fields);
}

describe('the audit filter of a voided receipt whose money paid another receipt', () => {
  it('lists where its money went, on the page, in its JSON and in the CSV', async () => {
    await buildJobs(db, [{ user: 'kim', end: '2025-09-01T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const kim = await signIn('kim');
    const admin = await signIn('finance');
    const first = await billEverything(kim);
    const due = await amountDueOf(db, first);
    expect(
      (
        await post(admin, `/admin/receipts/${first}/paid`, {
          method: 'bank_transfer',
          tx_ref: 'BT-61',
          amount_received: due,
        })
      ).status,
    ).toBe(200);
    expect((await post(admin, `/admin/receipts/${first}/void`, { reason: 'billed at the wrong tier' })).status).toBe(
      200,
    );
    const again = await billEverything(kim);
    const filtered = async () =>
      (
        await admin
          .get('/admin/audit')
          .query({ target: `receipt:${first}` })
          .set('Accept', 'application/json')
      ).body.entries as { action: string; actor: string; details: Record<string, unknown> }[];
    const before = await filtered();
    const entries = await db.prisma.auditLog.count();

    const marked = await post(admin, `/admin/receipts/${again}/paid`, {
      method: 'internal_transfer',
      amount_received: await amountDueOf(db, again),
      paid_with_receipt: first,
    });
    expect(marked.status, marked.text).toBe(200);

    // The mark paid's own entry, under the receipt it paid, and one under the voided receipt.
    expect(await db.prisma.auditLog.count()).toBe(entries + 2);
    const after = await filtered();
    expect(after).toHaveLength(before.length + 1);
    expect(after[0]).toMatchObject({
      actor: 'finance',
      action: 'receipt.money_applied',
      details: { paidReceiptId: again, money: await amountDueOf(db, again), currency: 'THB' },
    });
    const html = await admin
      .get('/admin/audit')
      .query({ target: `receipt:${first}` })
      .set('Accept', 'text/html');
    expect(html.text).toContain('receipt.money_applied');
    const csv = await admin.get('/admin/audit.csv').query({ target: `receipt:${first}` });
    expect(csv.text).toContain('receipt.money_applied');
    expect(csv.text).toContain(`""paidReceiptId"":${again}`);
    // The new receipt's own history is as it was: its mark paid, naming the voided receipt.
    const own = await admin
      .get('/admin/audit')
      .query({ target: `receipt:${again}` })
      .set('Accept', 'application/json');
    expect(own.body.entries.map((entry: { action: string }) => entry.action)).toEqual([
      'receipt.mark_paid',
      'receipt.create',
    ]);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true });
  });

  it('a mark paid refused (the voided receipt named is not voided) writes neither entry', async () => {
    await buildJobs(db, [{ user: 'kim', end: '2025-09-02T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const kim = await signIn('kim');
    const admin = await signIn('finance');
    const first = await billEverything(kim);
    await buildJobs(db, [{ user: 'kim', end: '2025-09-03T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const second = await billEverything(kim);
    const entries = await db.prisma.auditLog.count();
    const refused = await post(admin, `/admin/receipts/${second}/paid`, {
      method: 'internal_transfer',
      amount_received: await amountDueOf(db, second),
      paid_with_receipt: first,
    });
    expect(refused.status).toBeGreaterThanOrEqual(400);
    expect(await db.prisma.auditLog.count()).toBe(entries);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: second } })).status).toBe('pending');
  });
});
