import { randomBytes } from 'node:crypto';
import { Prisma } from '@prisma/client';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { escapeCsvFormula, escapeCsvText, formatCsvField, formatCsvLines } from '../../src/http/csv-format.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { type CpuBasis, minorUnitDigits, priceJob } from '../../src/modules/pricing/pricing.js';
import { createRatesService } from '../../src/modules/pricing/rates.service.js';
import { createReceiptsService } from '../../src/modules/receipts/receipts.service.js';
import {
  csvJobKeySql,
  csvTextSql,
  findJobsPage,
  type JobFilter,
  streamCsvLines,
  usageCsvSql,
} from '../../src/modules/usage/usage.repository.js';
import { createUsageService, UsagePageNotFoundError } from '../../src/modules/usage/usage.service.js';
import { BadRequestError } from '../../src/shared/errors.js';
import { awkwardJobSpecs, buildJobs, buildTiers } from '../support/billing-factories.js';
import { copyCsvOf } from '../support/csv-copy.js';
import { buildTestConfig } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Scan Direction'?: string;
  'Relation Name'?: string;
  Plans?: PlanNode[];
}

function flattenPlan(node: PlanNode | undefined): PlanNode[] {
  return node ? [node, ...(node.Plans ?? []).flatMap(flattenPlan)] : [];
}

/** Scans of `table` that read its rows (anything but an index-only scan). */
function tableScansOf(nodes: PlanNode[], table: string): PlanNode[] {
  return nodes.filter((node) => node['Relation Name'] === table && node['Node Type'] !== 'Index Only Scan');
}

/**
 * The plan of a statement with sequential and bitmap scans and sorting priced out: what
 * PostgreSQL does when an index can serve it, whatever the few test rows make cheapest.
 * VACUUM first, so the plan does not depend on how many pages are marked all-visible.
 */
async function explainWithScansPricedOut(text: string, values: unknown[]): Promise<PlanNode[]> {
  await db.pool.query('VACUUM (ANALYZE) slurm_jobs');
  const client = await db.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SET LOCAL enable_sort = off');
    await client.query('SET LOCAL enable_seqscan = off');
    await client.query('SET LOCAL enable_bitmapscan = off');
    const explained = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>({
      text: `EXPLAIN (FORMAT JSON) ${text}`,
      values,
    });
    return flattenPlan(explained.rows[0]?.['QUERY PLAN'][0].Plan);
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}

const as = (username: string) => ({ actor: username, ip: '127.0.0.1', userAgent: 'test' });

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
});
afterAll(() => db?.drop());

// 2025-09-20 12:00 in Bangkok.
const NOW = new Date('2025-09-20T05:00:00Z');

function buildServices(env: Record<string, string> = {}) {
  const config = buildTestConfig(db.url, { APP_TZ: 'Asia/Bangkok', ...env });
  const now = () => NOW;
  const rates = createRatesService({ db, config, now });
  const receipts = createReceiptsService({ db, config, rates, metrics: createMetrics(), now });
  const usage = createUsageService({ db, config, rates, receipts, now });
  return { rates, receipts, usage };
}

async function clear() {
  await db.prisma.receiptItem.deleteMany();
  await db.prisma.receipt.deleteMany();
  await db.prisma.slurmJob.deleteMany();
}

describe('the SQL formulas', () => {
  beforeAll(clear);

  it.each(['used', 'allocated'] as CpuBasis[])(
    'give the same hours and cost as the pricing core (%s basis)',
    async (basis) => {
      const jobIds = await buildJobs(db, awkwardJobSpecs('carol', new Date(Date.UTC(2025, 8, 15))));
      const rates = { cpu: '0.333333', gpu: '12.5', mem: '0.045' };
      const pricing = {
        basis,
        minorDigits: minorUnitDigits('THB'),
        rates: [
          {
            username: 'carol',
            tier: 'mu',
            cpu: new Prisma.Decimal(rates.cpu),
            gpu: new Prisma.Decimal(rates.gpu),
            mem: new Prisma.Decimal(rates.mem),
          },
        ],
      };
      const { rows } = await findJobsPage(
        db.pool,
        { from: new Date('2025-09-01'), before: new Date('2025-10-01'), user: 'carol' },
        pricing,
        { sort: 'job', direction: 'asc', offset: 0, limit: 1000 },
      );
      const stored = await db.prisma.slurmJob.findMany({ where: { jobId: { in: jobIds } }, orderBy: { id: 'asc' } });
      expect(rows).toHaveLength(stored.length);
      stored.forEach((job, index) => {
        const expected = priceJob(
          job,
          {
            cpu: new Prisma.Decimal(rates.cpu),
            gpu: new Prisma.Decimal(rates.gpu),
            mem: new Prisma.Decimal(rates.mem),
            currency: 'THB',
          },
          basis,
        );
        const row = rows[index];
        expect({
          cpu: row?.cpuHours.toFixed(6),
          gpu: row?.gpuHours.toFixed(6),
          mem: row?.memGbHours.toFixed(6),
          cost: row?.cost?.toFixed(2),
        }).toEqual({
          cpu: expected.cpuHours.toFixed(6),
          gpu: expected.gpuHours.toFixed(6),
          mem: expected.memGbHours.toFixed(6),
          cost: expected.cost.toFixed(2),
        });
      });
      await db.prisma.slurmJob.deleteMany();
    },
  );
});

describe('usage of one user', () => {
  beforeEach(clear);

  it('defaults to the last 7 local days, one row per job, billed jobs showing their receipt', async () => {
    const { usage, receipts } = buildServices();
    // Window: 2025-09-14 00:00 to 2025-09-21 00:00 Bangkok = 2025-09-13T17:00Z to 2025-09-20T17:00Z.
    const [tooEarly, firstIn, billed] = await buildJobs(db, [
      { user: 'alice', end: '2025-09-13T16:59:59Z' },
      { user: 'alice', end: '2025-09-13T17:00:00Z', totalCpuSec: '3600', allocMemMb: 0 },
      { user: 'alice', end: '2025-09-12T10:00:00Z' },
    ]);
    await receipts.createForUser({ username: 'alice' }, '2025-09-13', as('alice'));
    await buildJobs(db, [{ user: 'bob', end: '2025-09-15T00:00:00Z' }]);

    const page = await usage.getUserUsage('alice', { view: 'detail', sort: 'end', dir: 'desc', page: 1 });
    expect(page.window).toMatchObject({ start: '2025-09-14', end: '2025-09-20' });
    if (page.view !== 'detail') throw new Error('expected the detail view');
    expect(page.rows.map((row) => row.jobId)).toEqual([firstIn]);
    expect(page.rows[0]).toMatchObject({ tier: 'mu', receiptId: null });
    expect(page.rows[0]?.cost?.toFixed(2)).toBe('0.50');

    const wider = await usage.getUserUsage('alice', {
      view: 'detail',
      start: '2025-09-01',
      end: '2025-09-20',
      sort: 'end',
      dir: 'asc',
      page: 1,
    });
    if (wider.view !== 'detail') throw new Error('expected the detail view');
    // The job a second before the default window is alice's too: the window alone left it out.
    expect(wider.rows.map((row) => row.jobId)).toEqual([billed, tooEarly, firstIn]);
    const billedRow = wider.rows.find((row) => row.jobId === billed);
    expect(billedRow?.receiptId).toEqual(expect.any(Number));
    expect(billedRow?.receiptStatus).toBe('pending');
  });

  it('pages and sorts by a whitelisted column', async () => {
    const { usage } = buildServices();
    await buildJobs(
      db,
      Array.from({ length: 120 }, (_, index) => ({
        user: 'alice',
        end: new Date(Date.UTC(2025, 8, 18, 0, index)),
        elapsedSec: 60 * (index + 1),
      })),
    );
    const query = { view: 'detail' as const, sort: 'elapsed' as const, dir: 'desc' as const, page: 3 };
    const third = await usage.getUserUsage('alice', query);
    if (third.view !== 'detail') throw new Error('expected the detail view');
    expect(third.pageCount).toBe(3);
    expect(third.count).toBe(120);
    expect(third.rows.map((row) => row.elapsedSec)).toEqual(Array.from({ length: 20 }, (_, i) => 60 * (20 - i)));
  });

  it('sorts by the job id it shows, as a number, not by the order the jobs were ingested in', async () => {
    const { usage } = buildServices();
    // Ingested out of order, as a backfill or a second cluster brings them; 9 < 10 < 25 < 100.
    const ingested = ['100', '9', '25', '10', '1000', '99'];
    await buildJobs(
      db,
      ingested.map((jobId, index) => ({ user: 'alice', jobId, end: new Date(Date.UTC(2025, 8, 18, 0, index)) })),
    );
    const window = { start: '2025-09-14', end: '2025-09-20' };
    const shown = async (dir: 'asc' | 'desc') => {
      const page = await usage.getUserUsage('alice', { view: 'detail', sort: 'job', dir, page: 1, ...window });
      return page.view === 'detail' ? page.rows.map((row) => row.jobId) : [];
    };
    expect(await shown('asc')).toEqual(['9', '10', '25', '99', '100', '1000']);
    expect(await shown('desc')).toEqual(['1000', '100', '99', '25', '10', '9']);
  });

  it('pages a listing sorted by a job column with ties broken by id, billed jobs keeping their receipt', async () => {
    const { usage, receipts } = buildServices();
    // 60 jobs on 6 distinct end times (ties), the earlier half billed; pages of 50.
    await buildJobs(
      db,
      Array.from({ length: 60 }, (_, index) => ({
        user: 'alice',
        end: new Date(Date.UTC(2025, 8, 14 + (index % 6), 3)),
      })),
    );
    await receipts.createForUser({ username: 'alice' }, '2025-09-16', as('alice'));
    const stored = await db.prisma.slurmJob.findMany({ where: { user: 'alice' } });
    const endOf = (job: (typeof stored)[number]) => job.endAt?.getTime() ?? 0;
    const expected = stored
      .sort((a, b) => endOf(b) - endOf(a) || Number(b.id - a.id))
      .map((job) => ({ jobId: job.jobId, isBilled: endOf(job) < Date.parse('2025-09-16T17:00:00Z') }));
    const window = { start: '2025-09-14', end: '2025-09-20' };
    const pages = await Promise.all(
      [1, 2].map((page) => usage.getUserUsage('alice', { view: 'detail', sort: 'end', dir: 'desc', page, ...window })),
    );
    const rows = pages.flatMap((page) => (page.view === 'detail' ? page.rows : []));
    expect(rows.map((row) => ({ jobId: row.jobId, isBilled: row.receiptId !== null }))).toEqual(expected);
    expect(rows.filter((row) => row.receiptId !== null)).toHaveLength(30);
  });

  it('reads the newest-first page off the (user, end_at, id) index alone, in order, and finds receipts by hashed key', async () => {
    await buildJobs(
      db,
      Array.from({ length: 200 }, (_, index) => ({ user: 'alice', end: new Date(Date.UTC(2025, 8, 15, 0, index)) })),
    );
    const issued: pg.QueryConfig[] = [];
    const recordingPool = {
      query: (config: pg.QueryConfig) => {
        issued.push(config);
        return db.pool.query(config);
      },
    } as unknown as pg.Pool;
    const filter = { from: new Date('2025-09-14T00:00:00Z'), before: new Date('2025-09-20T00:00:00Z'), user: 'alice' };
    const pricing = { basis: 'allocated' as const, minorDigits: 2, rates: [] };
    const { rows, count } = await findJobsPage(recordingPool, filter, pricing, {
      sort: 'end',
      direction: 'desc',
      offset: 0,
      limit: 50,
    });
    expect(rows.map((row) => row.endAt.getTime())).toEqual(
      Array.from({ length: 50 }, (_, index) => Date.UTC(2025, 8, 15, 0, 199 - index)),
    );
    // The window's count comes with the page, in the same statement.
    expect(count).toBe(200);
    expect(issued).toHaveLength(1);

    // With sorting priced out, PostgreSQL sorts only if no index yields the order, as it did
    // when the page's ORDER BY said NULLS LAST (a backward scan gives NULLS FIRST).
    const [statement] = issued;
    const nodes = await explainWithScansPricedOut(statement?.text ?? '', statement?.values ?? []);
    expect(nodes.filter((node) => node['Node Type'] === 'Sort')).toEqual([]);
    expect(nodes).toContainEqual(
      expect.objectContaining({
        'Node Type': 'Index Only Scan',
        'Index Name': 'slurm_jobs_user_end_at_id_idx',
        'Scan Direction': 'Backward',
      }),
    );
    // Every column the page reads is in the index: the jobs table itself is never scanned.
    expect(tableScansOf(nodes, 'slurm_jobs')).toEqual([]);
    // Each job's live receipt item is found through the hash index on the billing key.
    expect(nodes).toContainEqual(
      expect.objectContaining({ 'Node Type': 'Index Scan', 'Index Name': 'receipt_items_live_job_key_hash' }),
    );
  });

  it("exports a user's window off the same index, in order and without reading the jobs table", async () => {
    await buildJobs(
      db,
      Array.from({ length: 20 }, (_, index) => ({ user: 'alice', end: new Date(Date.UTC(2025, 8, 15, 0, index)) })),
    );
    const filter = { from: new Date('2025-09-14T00:00:00Z'), before: new Date('2025-09-20T00:00:00Z'), user: 'alice' };
    const rates = [
      {
        username: 'alice',
        tier: 'mu',
        cpu: new Prisma.Decimal(1),
        gpu: new Prisma.Decimal(1),
        mem: new Prisma.Decimal(1),
      },
    ];
    for (const exportFilter of [filter, { ...filter, account: 'physics' }]) {
      const query = usageCsvSql(exportFilter, { basis: 'allocated', minorDigits: 2, rates, currency: 'THB' });
      const nodes = await explainWithScansPricedOut(query.text, query.values);
      expect(nodes.filter((node) => node['Node Type'] === 'Sort')).toEqual([]);
      expect(nodes).toContainEqual(
        expect.objectContaining({ 'Node Type': 'Index Only Scan', 'Index Name': 'slurm_jobs_user_end_at_id_idx' }),
      );
      expect(tableScansOf(nodes, 'slurm_jobs')).toEqual([]);
    }
  });

  it('counts the window for a page past the last one, and an empty window as 0', async () => {
    await buildJobs(
      db,
      Array.from({ length: 60 }, (_, index) => ({ user: 'alice', end: new Date(Date.UTC(2025, 8, 15, 0, index)) })),
    );
    const pricing = { basis: 'allocated' as const, minorDigits: 2, rates: [] };
    const window = { from: new Date('2025-09-14T00:00:00Z'), before: new Date('2025-09-20T00:00:00Z') };
    const page = { sort: 'end' as const, direction: 'desc' as const, limit: 50 };
    const second = await findJobsPage(db.pool, { ...window, user: 'alice' }, pricing, { ...page, offset: 50 });
    expect({ rows: second.rows.length, count: second.count }).toEqual({ rows: 10, count: 60 });
    const pastTheEnd = await findJobsPage(db.pool, { ...window, user: 'alice' }, pricing, { ...page, offset: 100 });
    expect(pastTheEnd).toEqual({ rows: [], count: 60 });
    const nobody = await findJobsPage(db.pool, { ...window, user: 'nobody' }, pricing, { ...page, offset: 0 });
    expect(nobody).toEqual({ rows: [], count: 0 });
  });

  it('totals per local day, including empty days, with an SVG chart per resource', async () => {
    const { usage } = buildServices();
    await buildJobs(db, [
      // 2025-09-18 23:30 and 2025-09-19 00:30 in Bangkok: two different local days.
      { user: 'alice', end: '2025-09-18T16:30:00Z', totalCpuSec: '7200', allocMemMb: 1024, elapsedSec: 3600 },
      { user: 'alice', end: '2025-09-18T17:30:00Z', totalCpuSec: '3600', allocMemMb: 1024, elapsedSec: 3600 },
      { user: 'alice', end: '2025-09-18T18:30:00Z', totalCpuSec: '3600', allocGpus: 1, elapsedSec: 3600 },
    ]);
    const page = await usage.getUserUsage('alice', {
      view: 'aggregate',
      start: '2025-09-17',
      end: '2025-09-19',
      sort: 'end',
      dir: 'desc',
      page: 1,
    });
    if (page.view !== 'aggregate') throw new Error('expected the aggregate view');
    // Hours are decimals, as SQL summed them, so that the totals add up exactly; newest day first, as Jobs lists jobs.
    expect(page.days.map((day) => [day.day, day.jobs, day.cpuHours.toFixed(6), day.gpuHours.toFixed(6)])).toEqual([
      ['2025-09-19', 2, '2.000000', '1.000000'],
      ['2025-09-18', 1, '2.000000', '0.000000'],
      ['2025-09-17', 0, '0.000000', '0.000000'],
    ]);
    expect(page.totals.jobs).toBe(3);
    expect(page.totals.cost).toBeInstanceOf(Prisma.Decimal);
    expect(page.totals.cost.toString()).toBe(
      page.days.reduce((total, day) => total.plus(day.cost), new Prisma.Decimal(0)).toString(),
    );
    expect(page.charts).toHaveLength(3);
    expect(page.charts.map((chart) => chart.title)).toEqual([
      'CPU core-hours per day',
      'GPU-hours per day',
      'Memory GB-hours per day',
    ]);
    expect(page.charts[0]?.svg).toMatch(/^<svg [^>]*role="img"/);
    expect(page.charts.map((chart) => chart.svg).join('')).not.toMatch(/<script|style=/);
  });

  it("lists billed jobs with their live receipt, newest receipt first, then each receipt's jobs newest first", async () => {
    const { usage, receipts } = buildServices();
    const [first, second, third, fourth] = await buildJobs(db, [
      { user: 'alice', end: '2025-09-10T00:00:00Z' },
      { user: 'alice', end: '2025-09-12T00:00:00Z' },
      { user: 'alice', end: '2025-09-15T00:00:00Z' },
      { user: 'alice', end: '2025-09-18T00:00:00Z' },
      { user: 'alice', end: '2025-09-19T00:00:00Z' },
      { user: 'bob', end: '2025-09-12T00:00:00Z' },
    ]);
    const voided = await receipts.createForUser({ username: 'alice' }, '2025-09-12', as('alice'));
    await receipts.voidReceipt(as('admin'), voided.id, { reason: 'wrong project' });
    const older = await receipts.createForUser({ username: 'alice' }, '2025-09-15', as('alice'));
    const newer = await receipts.createForUser({ username: 'alice' }, '2025-09-18', as('alice'));
    await receipts.createForUser({ username: 'bob' }, '2025-09-18', as('bob'));

    const page = await usage.getUserUsage('alice', {
      view: 'billed',
      sort: 'end',
      dir: 'desc',
      page: 1,
      start: '2025-09-01',
      end: '2025-09-20',
    });
    if (page.view !== 'billed') throw new Error('expected the billed view');
    expect(page.rows.map((row) => [row.receiptId, row.jobId, row.receiptStatus])).toEqual([
      [newer.id, fourth, 'pending'],
      [older.id, third, 'pending'],
      [older.id, second, 'pending'],
      [older.id, first, 'pending'],
    ]);
    expect(page.count).toBe(4);
  });

  it('refuses a page past the last with a 404 that says how many there are, in both paged views', async () => {
    const { usage, receipts } = buildServices();
    await buildJobs(
      db,
      Array.from({ length: 60 }, (_, index) => ({ user: 'alice', end: new Date(Date.UTC(2025, 8, 15, 0, index)) })),
    );
    await receipts.createForUser({ username: 'alice' }, '2025-09-16', as('alice'));
    const window = { start: '2025-09-14', end: '2025-09-20', sort: 'end' as const, dir: 'desc' as const };
    const last = await usage.getUserUsage('alice', { ...window, view: 'billed', page: 2 });
    if (last.view !== 'billed') throw new Error('expected the billed view');
    expect({ rows: last.rows.length, count: last.count }).toEqual({ rows: 10, count: 60 });
    const detail = usage.getUserUsage('alice', { ...window, view: 'detail', page: 3 });
    await expect(detail).rejects.toThrow(UsagePageNotFoundError);
    await expect(detail).rejects.toThrow(
      '60 jobs ended in this window (2025-09-14 to 2025-09-20), on 2 pages; there is no page 3.',
    );
    const billed = usage.getUserUsage('alice', { ...window, view: 'billed', page: 3 });
    await expect(billed).rejects.toMatchObject({
      status: 404,
      view: 'billed',
      window: { start: '2025-09-14', end: '2025-09-20' },
      message: '60 jobs of this window (2025-09-14 to 2025-09-20) are on a receipt, on 2 pages; there is no page 3.',
    });
    // Page 1 of an empty window is a page that says so, not a 404.
    const empty = await usage.getUserUsage('bob', { ...window, view: 'detail', page: 1 });
    if (empty.view !== 'detail') throw new Error('expected the detail view');
    expect({ rows: empty.rows, count: empty.count, pageCount: empty.pageCount }).toEqual({
      rows: [],
      count: 0,
      pageCount: 1,
    });
  });

  it.each([
    [{ start: '2025-09-10', end: '2025-09-01' }, /start \(2025-09-10\) is after end \(2025-09-01\)/],
    [{ start: '2023-01-01', end: '2025-09-01' }, /pick at most 366 days/],
  ])('refuses the window %o with a clear message', async (window, message) => {
    const { usage } = buildServices();
    const attempt = usage.getUserUsage('alice', { view: 'detail', sort: 'end', dir: 'desc', page: 1, ...window });
    await expect(attempt).rejects.toThrow(BadRequestError);
    await expect(attempt).rejects.toThrow(message);
  });

  // /me renders what this gives it: the page, or a refusal with the window its tabs, receipt form and CSV keep.
  it("gives My usage's whole view from one call: the page, a page past the last, or a refused window", async () => {
    const { usage } = buildServices();
    const query = { view: 'detail' as const, sort: 'end' as const, dir: 'desc' as const, page: 1 };
    const shown = await usage.myUsagePage('bob', { query: { ...query, start: '2025-09-14', end: '2025-09-20' } });
    expect(shown).toMatchObject({ kind: 'page', heldPayments: [], page: { view: 'detail', count: 0 } });

    const past = await usage.myUsagePage('bob', {
      query: { ...query, page: 2, start: '2025-09-01', end: '2025-09-10' },
    });
    expect(past).toMatchObject({
      kind: 'pageNotFound',
      receiptForm: { today: '2025-09-20', receiptBefore: '2025-09-10' },
    });

    // Too long for a page: the tabs keep it as typed, and the CSV, which has no limit, exports it.
    const long = await usage.myUsagePage('bob', { query: { ...query, start: '2023-01-01', end: '2025-09-01' } });
    expect(long).toMatchObject({
      kind: 'refused',
      shownWindow: { start: '2023-01-01', end: '2025-09-01' },
      exportWindow: { start: '2023-01-01', end: '2025-09-01' },
      receiptForm: { receiptBefore: '2025-09-01' },
    });
    // Reversed: refused by the page and the CSV alike, so the tabs and the form fall back to the default window.
    const reversed = await usage.myUsagePage('bob', { query: { ...query, start: '2025-09-10', end: '2025-09-01' } });
    // The receipt form keeps its To, a day before today: never more than was typed.
    expect(reversed).toMatchObject({
      kind: 'refused',
      shownWindow: {},
      exportWindow: undefined,
      receiptForm: { receiptBefore: '2025-09-01' },
    });
    expect(reversed.kind === 'refused' && reversed.error.message).toMatch(/start \(2025-09-10\) is after end/);
    // Refused by its parse (a bad view): the window typed is kept.
    const refused = new BadRequestError('view: must be one of detail');
    const typed = await usage.myUsagePage('bob', {
      refused,
      typedWindow: { start: '2025-09-01', end: '2025-09-05' },
      typedEnd: '2025-09-05',
    });
    expect(typed).toMatchObject({
      kind: 'refused',
      error: refused,
      shownWindow: { start: '2025-09-01', end: '2025-09-05' },
      exportWindow: { start: '2025-09-01', end: '2025-09-05' },
    });
  });
});

describe('usage across users', () => {
  beforeEach(clear);

  it('totals every column of the per-user rows, what was billed included', async () => {
    const { usage, receipts } = buildServices();
    await buildJobs(db, [
      { user: 'alice', end: '2025-09-15T03:00:00Z', elapsedSec: 7200, allocCpus: 3 },
      { user: 'alice', end: '2025-09-18T03:00:00Z', elapsedSec: 3600 },
      { user: 'bob', end: '2025-09-15T05:00:00Z', elapsedSec: 5400, allocGpus: 1 },
      { user: 'carol', end: '2025-09-17T05:00:00Z', elapsedSec: 600 },
    ]);
    await receipts.createForUser({ username: 'alice' }, '2025-09-16', as('alice'));
    await receipts.createForUser({ username: 'bob' }, '2025-09-16', as('bob'));

    const result = await usage.getAdminUsage({
      start: '2025-09-14',
      end: '2025-09-20',
      user: undefined,
      account: undefined,
      partition: undefined,
      tier: undefined,
    });
    const sum = (pick: (row: (typeof result.users)[number]) => Prisma.Decimal) =>
      result.users.reduce((total, row) => total.plus(pick(row)), new Prisma.Decimal(0));
    expect(result.users.map((row) => row.username)).toEqual(['alice', 'bob', 'carol']);
    // Money totals are decimals, equal to the digit to the sum of the rows.
    expect(result.totals.billedCost).toBeInstanceOf(Prisma.Decimal);
    expect(result.totals.billedCost.gt(0)).toBe(true);
    expect(result.totals.billedCost.toString()).toBe(sum((row) => row.billedCost).toString());
    expect(result.totals.billedCost.lt(result.totals.cost)).toBe(true);
    expect(result.totals.cost.toString()).toBe(sum((row) => row.cost).toString());
  });
});

describe('CSV rows', () => {
  beforeEach(clear);

  async function readCsv(username: string): Promise<string> {
    const { usage } = buildServices();
    const { chunks } = await usage.streamUserCsv(username, { start: '2025-09-14', end: '2025-09-20' });
    const parts: Buffer[] = [];
    for await (const chunk of chunks) parts.push(chunk);
    // Chunks may split a multi-byte character: decode the whole body at once.
    return Buffer.concat(parts).toString('utf8');
  }

  it('streams every job of the window once, in end order, across socket chunks', async () => {
    // 60 jobs share each end time; 12,001 rows take many socket chunks, cut anywhere in a line.
    const specs = Array.from({ length: 12_001 }, (_, index) => ({
      user: 'alice',
      end: new Date(Date.UTC(2025, 8, 15, 0, Math.floor(index / 60))),
    }));
    const jobIds = await buildJobs(db, specs);
    await buildJobs(db, [{ user: 'bob', end: '2025-09-15T00:00:00Z' }]);
    const text = await readCsv('alice');
    expect(text.endsWith('\n')).toBe(true);
    const seen: string[] = [];
    let previousEnd = '';
    for (const line of text.trimEnd().split('\n')) {
      // job_id is the first column, end the ninth (no field of these jobs is quoted).
      const fields = line.split(',');
      seen.push(fields[0] as string);
      expect((fields[8] as string) >= previousEnd).toBe(true);
      previousEnd = fields[8] as string;
    }
    expect(seen).toHaveLength(jobIds.length);
    expect(new Set(seen)).toEqual(new Set(jobIds));
  });

  it('quotes text as csv-stringify does, leaves NULL empty, one line per job', async () => {
    // PostgreSQL's CSV writer would quote '' (to tell it from NULL); csv-stringify does not.
    // Backslashes, tabs and `\.` are escaped by COPY's text format but must not be here.
    const names = ['plain', 'a,b', 'say "hi"', 'two\nlines', 'cr\rhere', '', 'back\\slash', 'tab\there', '\\.'];
    names.push(' padded ', 'ünïcødé ✓', 'NULL', '"', ',');
    const jobIds = await buildJobs(
      db,
      names.map((name, index) => ({
        user: 'alice',
        name,
        account: name,
        partition: name,
        end: new Date(Date.UTC(2025, 8, 15, index)),
      })),
    );
    const text = await readCsv('alice');
    const expectedStarts = names.map((name, index) => {
      const field = formatCsvField(name);
      return `${jobIds[index]},test,${field},alice,${field},${field},`;
    });
    let rest = text;
    for (const start of expectedStarts) {
      expect(rest.startsWith(start)).toBe(true);
      // Unbilled: receipt_id and receipt_status are empty, then the currency and the tier's basis end the line.
      const end = rest.indexOf(',,,THB,current\n');
      expect(end).toBeGreaterThan(0);
      rest = rest.slice(end + 15);
    }
    expect(rest).toBe('');
  });

  it('escapes a text that would start a spreadsheet formula exactly as the Node exports do', async () => {
    const texts: (string | null)[] = ['=HYPERLINK("http://x")', '+1', '-rf', '@SUM(1)', '\t=1', '\r=1', '=a,b'];
    texts.push(
      '=',
      '-',
      "'=x",
      'plain',
      'train-2',
      ' =1',
      '',
      'ünïcødé ✓',
      '😀=1',
      'NULL',
      '"',
      ',',
      'back\\slash',
      null,
      // After a `;` or a tab, where a spreadsheet splitting on them starts a cell.
      'x;=1+1;y',
      'x\t=1+1\ty',
      'a;+1;-2;@x',
      '=a;=b',
      ';=1',
      ';;-1',
      '\t\t=1',
      'a;\t=1',
      'a;\r=1',
      'x;=a,b',
      'x;=HYPERLINK("y")',
      "a;'=1",
      'a;b',
      'a; =1',
      'a;',
      'a\tb',
      'ünï;=cødé',
      '😀;@1',
    );
    const written = await copyCsvOf(db.pool, csvTextSql, texts);
    expect(written).toBe(
      formatCsvLines(
        texts.map((text) => [escapeCsvFormula(text)]),
        ['text'],
      ),
    );
    expect(written.split('\n').slice(0, 4)).toEqual(['"\'=HYPERLINK(""http://x"")"', "'+1", "'-rf", "'@SUM(1)"]);
    expect(written).toContain("\nx;'=1+1;y\nx\t'=1+1\ty\n");
    expect(written).not.toMatch(/[;\t][=+\-@]/);
  });

  it("writes a job key as a receipt's items.csv does: a pending array's [] escaped like a name", async () => {
    // A hand-made sacct file's pending array keeps whatever its [] holds; any other key is digits, _ and +.
    const keys: (string | null)[] = ['7001', '7001_4', '7001+0', '7001_[1-3]', '7001_[1;=1+1]', '7001_[1\t@x;-2]'];
    keys.push('7001_[\u202e1]', '7001_[;=1\u2066]', '7001_[a,b]', '7001_["x"]', '7001_[]', '', null);
    const written = await copyCsvOf(db.pool, csvJobKeySql, keys, 'key');
    expect(written).toBe(
      formatCsvLines(
        keys.map((key) => [key === null ? null : escapeCsvText(key)]),
        ['key'],
      ),
    );
    expect(written).toContain("\n7001_[1;'=1+1]\n7001_[1\t'@x;'-2]\n7001_[\\u202e1]\n");
  });

  it("neutralises formulas in the text columns of one user's export and of the export across users alike", async () => {
    const { receipts } = buildServices();
    const evil = ['=HYPERLINK("http://x")', '-rf', '@SUM(1)'];
    const jobIds = await buildJobs(db, [
      ...evil.map((name, index) => ({
        user: 'alice',
        name,
        account: '+acct',
        partition: '\tpart',
        end: new Date(Date.UTC(2025, 8, 15, index)),
      })),
      // A negative elapsed time (Slurm has written them) stays a number.
      { user: 'alice', name: 'fine', end: '2025-09-17T00:00:00Z', elapsedSec: -60 },
      { user: 'bob', name: '=bob', end: '2025-09-15T01:30:00Z' },
    ]);
    await receipts.createForUser({ username: 'alice' }, '2025-09-15', as('alice'));
    const oneConnection = new pg.Pool({ connectionString: db.url, max: 1 });
    try {
      const viaFunction = await exportText({ pool: oneConnection }, { ...septemberWindow, user: 'alice' });
      const { rows: functions } = await oneConnection.query(
        'SELECT 1 FROM pg_proc WHERE pronamespace = pg_my_temp_schema()',
      );
      expect(functions).toHaveLength(1);
      const acrossUsers = await exportText(db, septemberWindow, {
        ...aliceOnly,
        rates: [...aliceOnly.rates, bobsRate],
      });
      const lines = viaFunction.trimEnd().split('\n');
      expect(lines).toEqual(
        acrossUsers
          .trimEnd()
          .split('\n')
          .filter((line) => line.includes(',alice,')),
      );
      expect(lines).toHaveLength(4);
      expect(lines[0]).toMatch(
        new RegExp(`^${jobIds[0]},test,"'=HYPERLINK\\(""http://x""\\)",alice,'\\+acct,'\\tpart,`),
      );
      expect(lines[1]).toMatch(new RegExp(`^${jobIds[1]},test,'-rf,alice,'\\+acct,'\\tpart,`));
      expect(lines[2]).toMatch(new RegExp(`^${jobIds[2]},test,'@SUM\\(1\\),alice,`));
      expect(lines[3]).toMatch(new RegExp(`^${jobIds[3]},test,fine,alice,physics,compute,COMPLETED,[^,]+,[^,]+,-60,`));
      expect(acrossUsers).toContain(`${jobIds[4]},test,'=bob,bob,`);
    } finally {
      await oneConnection.end();
    }
  });

  it('writes a billed job with its receipt item cost, receipt id and status', async () => {
    const { receipts } = buildServices();
    const [billedId, openId] = await buildJobs(db, [
      { user: 'alice', end: '2025-09-15T03:00:00Z', allocCpus: 3 },
      { user: 'alice', end: '2025-09-18T03:00:00Z', allocCpus: 3 },
    ]);
    const receipt = await receipts.createForUser({ username: 'alice' }, '2025-09-16', as('alice'));
    const item = await db.prisma.receiptItem.findFirstOrThrow({ where: { receiptId: receipt.id } });
    const lines = (await readCsv('alice')).trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]?.startsWith(`${billedId},`)).toBe(true);
    // The item's cost, not re-estimated, to the currency's minor unit like an estimate's
    // (the item is stored as numeric(20,4), which kept four decimals in the CSV).
    expect(item.cost.toFixed(4)).toMatch(/00$/);
    expect(lines[0]?.endsWith(`,mu,${item.cost.toFixed(2)},${receipt.id},pending,THB,billed`)).toBe(true);
    expect(lines[1]?.startsWith(`${openId},`)).toBe(true);
    expect(lines[1]).toMatch(/,\d+\.\d{2},,,THB,current$/);
  });

  it('writes the tier and the estimated cost as the listing has them, quoting an odd tier name', async () => {
    await buildJobs(db, [{ user: 'alice', end: '2025-09-15T00:00:00Z', jobId: '9001', allocCpus: 2 }]);
    const pricing = {
      basis: 'allocated' as const,
      minorDigits: 2,
      currency: 'THB',
      rates: [
        {
          username: 'alice',
          tier: 'gold, "plus" \\ \'x\'',
          cpu: new Prisma.Decimal('0.125'),
          gpu: new Prisma.Decimal(0),
          mem: new Prisma.Decimal(0),
        },
      ],
    };
    const filter = { from: new Date('2025-09-14T00:00:00Z'), before: new Date('2025-09-16T00:00:00Z'), user: 'alice' };
    const parts: Buffer[] = [];
    for await (const chunk of streamCsvLines(db, filter, pricing)) parts.push(chunk);
    const {
      rows: [listed],
    } = await findJobsPage(db.pool, filter, pricing, {
      sort: 'end',
      direction: 'asc',
      offset: 0,
      limit: 1,
    });
    expect(listed?.cost?.toFixed(2)).toBe('0.25');
    expect(Buffer.concat(parts).toString('utf8')).toMatch(
      /^9001,test,.*,2\.000000,0\.000000,[\d.]+,"gold, ""plus"" \\ 'x'",0\.25,,,THB,current\n$/,
    );
  });

  it("writes a user's lines the same in their own export (rates as constants) and in one across users (a rate table)", async () => {
    await buildJobs(db, [
      { user: 'alice', end: '2025-09-15T00:00:00Z', allocCpus: 3, allocGpus: 1 },
      { user: 'bob', end: '2025-09-15T01:00:00Z', allocCpus: 5 },
      { user: 'alice', end: '2025-09-15T02:00:00Z', allocCpus: 7 },
    ]);
    const rate = (username: string, tier: string, cpu: string) => ({
      username,
      tier,
      cpu: new Prisma.Decimal(cpu),
      gpu: new Prisma.Decimal('1.5'),
      mem: new Prisma.Decimal('0.01'),
    });
    const window = { from: new Date('2025-09-14T00:00:00Z'), before: new Date('2025-09-16T00:00:00Z') };
    const read = async (filter: typeof window & { user?: string }, rates: ReturnType<typeof rate>[]) => {
      const parts: Buffer[] = [];
      for await (const chunk of streamCsvLines(db, filter, {
        basis: 'allocated',
        minorDigits: 2,
        currency: 'THB',
        rates,
      })) {
        parts.push(chunk);
      }
      return Buffer.concat(parts).toString('utf8').trimEnd().split('\n');
    };
    const everyone = await read(window, [rate('alice', "o'neil", '0.125'), rate('bob', 'mu', '0.5')]);
    const alices = await read({ ...window, user: 'alice' }, [rate('alice', "o'neil", '0.125')]);
    expect(everyone).toHaveLength(3);
    expect(alices).toEqual(everyone.filter((line) => line.includes(',alice,')));
    expect(alices[0]).toMatch(/,o'neil,[\d.]+,,,THB,current$/);
  });

  const aliceOnly = {
    basis: 'allocated' as const,
    minorDigits: 2,
    currency: 'THB',
    rates: [
      {
        username: 'alice',
        tier: "o'neil",
        cpu: new Prisma.Decimal('0.125'),
        gpu: new Prisma.Decimal('1.5'),
        mem: new Prisma.Decimal('0.01'),
      },
    ],
  };
  const bobsRate = {
    username: 'bob',
    tier: 'mu',
    cpu: new Prisma.Decimal('0.5'),
    gpu: new Prisma.Decimal('1.5'),
    mem: new Prisma.Decimal('0.01'),
  };
  const septemberWindow = { from: new Date('2025-09-14T00:00:00Z'), before: new Date('2025-09-20T00:00:00Z') };

  async function exportText(database: Pick<Database, 'pool'>, filter: JobFilter, pricing = aliceOnly) {
    const parts: Buffer[] = [];
    // A pool of the test's own gets the app's query timeout, which bounds the export's silences.
    const withTimeout = { queryTimeoutMs: db.queryTimeoutMs, ...database } as Database;
    for await (const chunk of streamCsvLines(withTimeout, filter, pricing)) parts.push(chunk);
    return Buffer.concat(parts).toString('utf8');
  }

  it("plans one user's export once per connection, through a function of the session, writing the same lines", async () => {
    const { receipts } = buildServices();
    await buildJobs(db, [
      { user: 'alice', end: '2025-09-15T00:00:00Z', allocCpus: 3, allocGpus: 1, name: 'a,"b"' },
      { user: 'alice', end: '2025-09-15T02:00:00Z', allocCpus: 7, name: '' },
      { user: 'alice', end: '2025-09-18T02:00:00Z', allocCpus: 2 },
      { user: 'bob', end: '2025-09-15T01:00:00Z', allocCpus: 5 },
    ]);
    await receipts.createForUser({ username: 'alice' }, '2025-09-16', as('alice'));
    const oneConnection = new pg.Pool({ connectionString: db.url, max: 1 });
    try {
      const filter = { ...septemberWindow, user: 'alice' };
      const functionsOfSession = async () =>
        (
          await oneConnection.query<{ name: string; version: string }>(
            `SELECT proname AS name, xmin::text AS version FROM pg_proc WHERE pronamespace = pg_my_temp_schema()`,
          )
        ).rows;
      const first = await exportText({ pool: oneConnection }, filter);
      const created = await functionsOfSession();
      expect(created).toEqual([
        { name: expect.stringMatching(/^hb_user_csv_[0-9a-f]{16}$/), version: expect.any(String) },
      ]);
      // The same connection again: the function is called, not created again (a CREATE OR
      // REPLACE would give its row a new version, and make PL/pgSQL plan it afresh).
      const second = await exportText({ pool: oneConnection }, filter);
      expect(await functionsOfSession()).toEqual(created);
      // An account filter is not the function's plain window: that export is a plain COPY.
      const physics = await exportText({ pool: oneConnection }, { ...filter, account: 'physics' });
      // The plain COPY of the same rows, as an export across users writes them.
      const plain = (
        await exportText(db, septemberWindow, {
          ...aliceOnly,
          rates: [...aliceOnly.rates, bobsRate],
        })
      )
        .split('\n')
        .filter((line) => line.includes(',alice,'));
      expect(first.trimEnd().split('\n')).toEqual(plain);
      expect(first.split('\n')).toHaveLength(4);
      expect(first).toMatch(/^\d+,test,"a,""b""",alice,/);
      // Billed at the receipt's tier and item cost; the unbilled job at the user's rates.
      expect(first.split('\n')[0]).toMatch(/,mu,[\d.]+,\d+,pending,THB,billed$/);
      expect(first.split('\n')[2]).toMatch(/,o'neil,[\d.]+,,,THB,current$/);
      expect(second).toBe(first);
      expect(physics).toBe(first);
    } finally {
      await oneConnection.end();
    }
  });

  it("names the currency in every line, alike through the session's function and the plain COPY", async () => {
    const { receipts } = buildServices();
    await buildJobs(db, [
      { user: 'alice', end: '2025-09-15T00:00:00Z', allocCpus: 3 },
      { user: 'alice', end: '2025-09-18T02:00:00Z', allocCpus: 2 },
      { user: 'bob', end: '2025-09-15T01:00:00Z', allocCpus: 5 },
    ]);
    await receipts.createForUser({ username: 'alice' }, '2025-09-16', as('alice'));
    const oneConnection = new pg.Pool({ connectionString: db.url, max: 1 });
    try {
      const filter = { ...septemberWindow, user: 'alice' };
      // EUR and THB share the function (both have 2 minor digits): the currency is its argument.
      for (const currency of ['EUR', 'THB']) {
        const viaFunction = await exportText({ pool: oneConnection }, filter, { ...aliceOnly, currency });
        const plain = await exportText(db, filter, { ...aliceOnly, currency, rates: [...aliceOnly.rates, bobsRate] });
        expect(viaFunction).toBe(plain);
        const lines = viaFunction.trimEnd().split('\n');
        expect(lines).toHaveLength(2);
        expect(lines[0]).toMatch(new RegExp(`,mu,[\\d.]+,\\d+,pending,${currency},billed$`));
        expect(lines[1]).toMatch(new RegExp(`,o'neil,[\\d.]+,,,${currency},current$`));
      }
      const { rows } = await oneConnection.query('SELECT 1 FROM pg_proc WHERE pronamespace = pg_my_temp_schema()');
      expect(rows).toHaveLength(1);
    } finally {
      await oneConnection.end();
    }
  });

  it('exports as a plain COPY once the session loses its function, as behind a pooler in transaction mode', async () => {
    await buildJobs(db, [
      { user: 'alice', end: '2025-09-15T00:00:00Z', allocCpus: 3 },
      { user: 'alice', end: '2025-09-16T00:00:00Z', allocGpus: 2 },
    ]);
    const filter = { ...septemberWindow, user: 'alice' };
    const oneConnection = new pg.Pool({ connectionString: db.url, max: 1 });
    try {
      const expected = await exportText({ pool: oneConnection }, filter);
      expect(expected.split('\n')).toHaveLength(3);
      const functionsOfSession = async () =>
        (
          await oneConnection.query<{ name: string }>(
            `SELECT proname AS name FROM pg_proc WHERE pronamespace = pg_my_temp_schema()`,
          )
        ).rows.map((row) => row.name);
      const [name] = await functionsOfSession();
      // A pooler in transaction mode can give the next statement a session without it.
      await oneConnection.query(`DROP FUNCTION pg_temp.${name}`);
      expect(await exportText({ pool: oneConnection }, filter)).toBe(expected);
      // From then on the pool exports as a plain COPY and creates no function.
      expect(await exportText({ pool: oneConnection }, filter)).toBe(expected);
      expect(await functionsOfSession()).toEqual([]);
    } finally {
      await oneConnection.end();
    }
  });

  it('fails an export on any other error of its function, and keeps using the function', async () => {
    await buildJobs(db, [{ user: 'alice', end: '2025-09-15T00:00:00Z' }]);
    const oneConnection = new pg.Pool({ connectionString: db.url, max: 1 });
    try {
      const filter = { ...septemberWindow, user: 'alice' };
      const first = await exportText({ pool: oneConnection }, filter);
      // The function's query waits for a lock held elsewhere, and gives up: lock_not_available.
      const holder = await db.pool.connect();
      try {
        await holder.query('BEGIN');
        await holder.query('LOCK TABLE receipts IN ACCESS EXCLUSIVE MODE');
        await oneConnection.query(`SET lock_timeout = '50ms'`);
        await expect(exportText({ pool: oneConnection }, filter)).rejects.toThrow(/lock timeout/);
      } finally {
        await holder.query('ROLLBACK');
        holder.release();
        await oneConnection.query('RESET lock_timeout');
      }
      expect(await exportText({ pool: oneConnection }, filter)).toBe(first);
      const { rows } = await oneConnection.query(`SELECT 1 FROM pg_proc WHERE pronamespace = pg_my_temp_schema()`);
      expect(rows).toHaveLength(1);
    } finally {
      await oneConnection.end();
    }
  });

  it('exports as a plain COPY where the database refuses temporary functions to the role', async () => {
    await buildJobs(db, [
      { user: 'alice', end: '2025-09-15T00:00:00Z', allocCpus: 3, name: 'x, y' },
      { user: 'alice', end: '2025-09-16T00:00:00Z', allocGpus: 2 },
    ]);
    const filter = { ...septemberWindow, user: 'alice' };
    const expected = await exportText(db, filter);
    const role = `hb_no_temp_${randomBytes(4).toString('hex')}`;
    const url = new URL(db.url);
    url.username = role;
    url.password = 'no-temp-test';
    await db.pool.query(`CREATE ROLE ${role} LOGIN PASSWORD 'no-temp-test'`);
    await db.pool.query(`GRANT SELECT ON slurm_jobs, receipt_items, receipts TO ${role}`);
    await db.pool.query(`REVOKE TEMPORARY ON DATABASE ${db.name} FROM PUBLIC`);
    const restricted = new pg.Pool({ connectionString: url.toString(), max: 1 });
    try {
      await expect(
        restricted.query('CREATE FUNCTION pg_temp.probe() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$'),
      ).rejects.toThrow(/permission denied/);
      expect(await exportText({ pool: restricted }, filter)).toBe(expected);
      // Asked once per pool: the next export goes straight to the plain COPY.
      expect(await exportText({ pool: restricted }, filter)).toBe(expected);
    } finally {
      await restricted.end();
      await db.pool.query(`GRANT TEMPORARY ON DATABASE ${db.name} TO PUBLIC`);
      await db.pool.query(`DROP OWNED BY ${role}`);
      await db.pool.query(`DROP ROLE ${role}`);
    }
  });

  it('a consumer that stops after the first chunk gets the connection closed, and the pool keeps working', async () => {
    await buildJobs(
      db,
      Array.from({ length: 20_000 }, (_, index) => ({
        user: 'alice',
        end: new Date(Date.UTC(2025, 8, 15, 0, 0, index % 3600)),
      })),
    );
    const { usage } = buildServices();
    const { chunks } = await usage.streamUserCsv('alice', { start: '2025-09-14', end: '2025-09-20' });
    for await (const chunk of chunks) {
      expect(chunk.length).toBeGreaterThan(0);
      break;
    }
    expect(db.pool.totalCount).toBe(db.pool.idleCount);
    // The abandoned COPY's backend goes away instead of lingering mid-query.
    let copies = -1;
    for (let attempt = 0; attempt < 100 && copies !== 0; attempt++) {
      const { rows } = await db.pool.query<{ count: number }>(
        `SELECT count(*)::int AS count FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query LIKE 'COPY (%'`,
      );
      copies = rows[0]?.count ?? -1;
      if (copies !== 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(copies).toBe(0);
    expect((await readCsv('alice')).split('\n')).toHaveLength(20_001);
  });
});
