import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../src/modules/audit/audit.service.js';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { waitForMonthEndRun } from '../support/month-end.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
// 2025-09-20 12:00 in Bangkok, moving with the real clock.
const STARTED = Date.now();
const now = () => new Date(Date.parse('2025-09-20T05:00:00Z') + (Date.now() - STARTED));
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  const app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now });
  admin = await signInAs(app, 'boss', 'boss-password');
});
afterAll(() => db?.drop());

beforeEach(async () => {
  await db.prisma.receiptItem.deleteMany();
  await db.prisma.receipt.deleteMany();
  await db.prisma.slurmJob.deleteMany();
});

async function runMonthEnd(before: string) {
  const started = await admin
    .post('/admin/month-end')
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin, '/admin/receipts'))
    .send({ before });
  expect(started.status, started.text.slice(0, 300)).toBe(202);
  return waitForMonthEndRun(admin, started.body.statusUrl ?? started.body.url);
}

const runEntries = () =>
  db.prisma.auditLog.findMany({ where: { action: 'receipt.month_end_run' }, orderBy: { id: 'asc' } });

describe('a month-end run is audited as its own action', () => {
  it('a run that bills nobody leaves one entry: who started it, its day, outcome and counts', async () => {
    const before = await runEntries();
    const run = await runMonthEnd('2025-08-31');
    expect(run).toMatchObject({ outcome: 'succeeded', usersTotal: 0, receiptCount: 0 });
    const after = await runEntries();
    expect(after).toHaveLength(before.length + 1);
    const entry = after.at(-1);
    expect(entry).toMatchObject({ actor: 'boss', target: `month_end_run:${run.id}`, status: 'ok' });
    expect(entry?.details).toMatchObject({
      monthEndRunId: run.id,
      before: '2025-08-31',
      outcome: 'succeeded',
      usersTotal: 0,
      usersDone: 0,
      receiptCount: 0,
      noChargeCount: 0,
      skipped: 0,
    });
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true });

    // On the page (JSON) and in the CSV, under its target.
    const target = `month_end_run:${run.id}`;
    const page = await admin.get('/admin/audit').query({ target }).set('Accept', 'application/json');
    expect(page.status).toBe(200);
    expect(page.body.entries).toHaveLength(1);
    expect(page.body.entries[0]).toMatchObject({ actor: 'boss', action: 'receipt.month_end_run', status: 'ok' });
    const html = await admin.get('/admin/audit').query({ target }).set('Accept', 'text/html');
    expect(html.text).toContain('receipt.month_end_run');
    const csv = await admin.get('/admin/audit.csv').query({ target });
    expect(csv.status).toBe(200);
    const lines = csv.text.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain('receipt.month_end_run');
    expect(lines[1]).toContain('boss');
  });

  it("a run that bills users leaves one entry beside its receipts' entries, with their count and totals", async () => {
    await buildJobs(db, [
      { user: 'me1', end: '2025-08-20T03:00:00Z' },
      { user: 'me2', end: '2025-08-21T03:00:00Z' },
    ]);
    const before = await runEntries();
    const run = await runMonthEnd('2025-08-31');
    expect(run).toMatchObject({ outcome: 'succeeded', usersTotal: 2, receiptCount: 2 });
    const after = await runEntries();
    expect(after).toHaveLength(before.length + 1);
    expect(after.at(-1)?.details).toMatchObject({
      monthEndRunId: run.id,
      outcome: 'succeeded',
      usersTotal: 2,
      usersDone: 2,
      receiptCount: 2,
      skipped: 0,
    });
    expect((after.at(-1)?.details as { totals?: unknown[] } | undefined)?.totals).toHaveLength(1);
    // Its receipts keep their own entries.
    const receiptEntries = await db.prisma.auditLog.findMany({
      where: { action: 'receipt.create', id: { gt: before.at(-1)?.id ?? 0n } },
    });
    expect(receiptEntries).toHaveLength(2);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true });
  });
});
