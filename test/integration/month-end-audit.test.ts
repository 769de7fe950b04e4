import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ADVISORY_LOCK_CLASSES } from '../../src/db/advisory-locks.js';
import { openDatabase } from '../../src/db/database.js';
import { verifyAuditChain } from '../../src/modules/audit/audit.service.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { createRatesService } from '../../src/modules/pricing/rates.service.js';
import { interruptAbandonedMonthEndRuns } from '../../src/modules/receipts/abandoned-month-end-runs.js';
import { createReceiptsService } from '../../src/modules/receipts/receipts.service.js';
import { createBackgroundWork } from '../../src/shared/background-work.js';
import { createLogger } from '../../src/shared/logger.js';
import { buildJobs, buildReceiptRow, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { waitForMonthEndRun } from '../support/month-end.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp, buildTestConfig } from '../support/test-app.js';
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
  await db.prisma.monthEndRun.deleteMany();
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

/** A running run's row left by a process that died, after billing 3 of its 10 users: nothing holds the month-end lock. */
async function buildAbandonedRun() {
  const row = await db.prisma.monthEndRun.create({
    data: {
      billedThrough: new Date('2025-08-31T00:00:00Z'),
      startedBy: 'carol',
      startedAt: new Date('2025-09-20T04:30:00Z'),
      usersTotal: 10,
      usersDone: 3,
      receiptCount: 2,
      noChargeCount: 1,
      totals: [{ currency: 'THB', total: '3.6' }],
      skipped: [{ username: 'dave', kind: 'billed_meanwhile', reason: 'dave was billed meanwhile.' }],
    },
  });
  // Its receipts: the third committed just before the process died, before the row's progress said so.
  for (const username of ['erin', 'finn', 'gail']) await buildReceiptRow(db, username, { monthEndRunId: row.id });
  return row.id;
}

const ABANDONED_RUN_ERROR =
  'Interrupted: the process running it stopped before it finished. What it billed stays billed; running it ' +
  'again for the same day is safe and bills the rest (it bills only unbilled jobs).';

/** The entry a run left running by a dead process gets once it is marked interrupted: its starter's, with what it billed. */
function expectDeadRunEntry(entries: Awaited<ReturnType<typeof runEntries>>, id: number) {
  const mine = entries.filter((entry) => entry.target === `month_end_run:${id}`);
  expect(mine).toHaveLength(1);
  expect(mine[0]).toMatchObject({ actor: 'carol', action: 'receipt.month_end_run', status: 'partial', ip: null });
  expect(mine[0]?.details).toEqual({
    monthEndRunId: id,
    before: '2025-08-31',
    outcome: 'interrupted',
    usersTotal: 10,
    usersDone: 3,
    receiptCount: 2,
    noChargeCount: 1,
    totals: [{ currency: 'THB', total: '3.60' }],
    skipped: 1,
    disabledUsersBilled: 0,
    error: ABANDONED_RUN_ERROR,
    linkedReceiptCount: 3,
  });
}

describe('a month-end run that is interrupted is audited too, in the transaction that marks it', () => {
  it('a run left running by a dead process, marked interrupted at start-up, gets its entry once', async () => {
    const id = await buildAbandonedRun();
    const logger = createLogger('silent');
    const startup = () => new Date('2025-09-21T01:00:00Z');
    expect(await interruptAbandonedMonthEndRuns({ db, logger, now: startup })).toEqual([id]);
    expectDeadRunEntry(await runEntries(), id);
    expect((await runEntries()).at(-1)?.ts).toEqual(startup());
    // Another instance starting finds nothing left to mark, and writes nothing.
    expect(await interruptAbandonedMonthEndRuns({ db, logger, now: startup })).toEqual([]);
    expectDeadRunEntry(await runEntries(), id);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true });
  });

  it('a run left running by a dead process, marked interrupted when its page is opened, gets its entry once', async () => {
    const id = await buildAbandonedRun();
    expect((await admin.get(`/admin/month-end/${id}`).set('Accept', 'application/json')).body.outcome).toBe(
      'interrupted',
    );
    expect((await admin.get('/admin/month-end').set('Accept', 'application/json')).status).toBe(200);
    expect((await admin.get(`/admin/month-end/${id}`).set('Accept', 'application/json')).status).toBe(200);
    expectDeadRunEntry(await runEntries(), id);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true });
  });

  it('a run left running by a dead process, marked interrupted by the next run, gets its entry before the next run', async () => {
    const id = await buildAbandonedRun();
    const next = await runMonthEnd('2025-08-31');
    expect(next.outcome).toBe('succeeded');
    const entries = await runEntries();
    expectDeadRunEntry(entries, id);
    expect(entries.slice(-2).map((entry) => entry.target)).toEqual([`month_end_run:${id}`, `month_end_run:${next.id}`]);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true });
  });

  it('a run abandoned at shutdown gets its entry with the users it billed, not the receipts rolled back', async () => {
    await buildJobs(db, [
      { user: 'alice', end: '2025-08-20T03:00:00Z' },
      { user: 'bob', end: '2025-08-20T03:00:00Z' },
      { user: 'cora', end: '2025-08-20T03:00:00Z' },
    ]);
    const url = new URL(db.url);
    url.searchParams.set('application_name', 'month_end_abandoned_audit');
    const database = openDatabase(url.toString(), {
      poolMax: 4,
      queryTimeoutMs: 30_000,
      logger: createLogger('silent'),
    });
    // alice's job lock held (as a receipt being made for her by hand does): the run's receipt for her waits.
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query(`SELECT pg_advisory_lock($1, hashtext('alice'))`, [ADVISORY_LOCK_CLASSES.userJobs]);
      const config = buildTestConfig(db.url, { APP_TZ: 'Asia/Bangkok' });
      const backgroundWork = createBackgroundWork();
      const rates = createRatesService({ db: database, config, now });
      const receipts = createReceiptsService({
        db: database,
        config,
        rates,
        metrics: createMetrics(),
        now,
        backgroundWork,
      });
      const actor = { actor: 'boss', ip: '127.0.0.1', userAgent: 'test' };
      const { runId, finished } = await receipts.startMonthEnd(actor, '2025-08-31');
      // bob and cora billed, alice in flight.
      await expect
        .poll(async () => (await db.prisma.monthEndRun.findUniqueOrThrow({ where: { id: runId } })).usersDone, {
          timeout: 20_000,
        })
        .toBe(2);
      expect(await backgroundWork.stop(100)).toEqual([`month-end run #${runId}`]);
      const entries = (await runEntries()).filter((entry) => entry.target === `month_end_run:${runId}`);
      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatchObject({ actor: 'boss', ip: '127.0.0.1', status: 'partial' });
      expect(entries[0]?.details).toMatchObject({
        monthEndRunId: runId,
        before: '2025-08-31',
        outcome: 'interrupted',
        usersTotal: 3,
        usersDone: 2,
        receiptCount: 2,
        error: expect.stringMatching(/^Interrupted: the app was stopped during the run, after 2 of 3 users; /),
      });
      expect((entries[0]?.details as { totals?: unknown[] } | undefined)?.totals).toHaveLength(1);
      // As the shutdown does next: the run's connections closed, its receipt for alice rolls back.
      database.closeConnectionsInUse();
      expect((await finished).result).toMatchObject({ runId, outcome: 'interrupted' });
      expect(await db.prisma.receipt.count({ where: { monthEndRunId: runId } })).toBe(2);
      expect((await runEntries()).filter((entry) => entry.target === `month_end_run:${runId}`)).toHaveLength(1);
      expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true });
    } finally {
      await holder.end().catch(() => undefined);
      await database.close({ graceMs: 1_000 });
    }
  });
});
