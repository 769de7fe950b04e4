import { createHash } from 'node:crypto';
import { Prisma } from '@prisma/client';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { Database, Db } from '../../db/database.js';
import { queryPrepared } from '../../db/prepared-query.js';
import { readWithinTimeout } from '../../db/query-timeout.js';
import { namesContainingSql } from '../../db/username-search.js';
import { CSV_FORMULA_TRIGGERS, CSV_OTHER_SEPARATORS, CSV_SEPARATED_FORMULA_PATTERN } from '../../http/csv-format.js';
import { REVEALED_CONTROL_RANGES } from '../../shared/visible-text.js';
import type { CpuBasis } from '../pricing/pricing.js';
import {
  costOfHoursSql,
  costSql,
  cpuHoursSql,
  GPU_HOURS_SQL,
  MEM_GB_HOURS_SQL,
  rateTableSql,
} from '../pricing/pricing.sql.js';
import type { RateTableRow } from '../pricing/rates.service.js';
import type { TUsageSort } from './usage.schema.js';

/** Which jobs: ended in [from, before), optionally narrowed by owner, account, partition and tier. */
export interface JobFilter {
  from: Date;
  before: Date;
  user?: string | undefined;
  /** Or any of these owners (what the admin's User filter matched, findJobOwnersContaining's); none matches an empty list. */
  users?: string[] | undefined;
  account?: string | undefined;
  partition?: string | undefined;
  /** My usage's Job id: the job of that Slurm id, or every task of the array job of that id (jobIdConditionOf). */
  job?: string | undefined;
  /**
   * The tier each job is priced at, as the usage pages show it: its live receipt's when billed,
   * else its owner's tier now (the rates `r`). Only the queries that join both take it
   * (sumByUser, the CSV across users); whereOf does not read it.
   */
  tier?: string | undefined;
}

/**
 * The condition (with its AND) that keeps the jobs priced at the filter's tier, or nothing. It
 * tests the joined receipt and rates, so it follows whereOf in the queries that join them.
 */
function tierConditionOf(filter: JobFilter): Prisma.Sql {
  return filter.tier ? Prisma.sql`AND coalesce(rc.tier_name, r.tier) = ${filter.tier}` : Prisma.empty;
}

export interface PricingContext {
  basis: CpuBasis;
  /** Decimal places of the currency's minor unit: how costs are written. */
  minorDigits: number;
  /**
   * Decimal places an estimate is rounded to, as a receipt would price it: the minor unit, or
   * fewer where the payment provider charges the currency in a coarser step (KWD at Stripe).
   * Left out, the minor unit.
   */
  pricedDigits?: number;
  rates: RateTableRow[];
}

/** What a usage CSV needs besides the prices: the currency its `currency` column names. */
export interface CsvPricingContext extends PricingContext {
  /**
   * CURRENCY, the currency the usage pages label every cost with (billed ones included, even
   * after CURRENCY changed): the CSV says what the page says.
   */
  currency: string;
}

/**
 * Leaves out a requeued job's superseded run stored as REQUEUED (by a version before ingestion passed
 * such records over, docs/ingestion.md, Requeued jobs) unless a live receipt bills it: the job bills its
 * last run, and a receipt never bills that record (it is not finished), so /me listed it as "not yet"
 * billed at an estimate and counted it in totals and the CSV that the receipt did not bill. Bound values
 * none, so the per-user CSV function's body can hold it; the probe runs for REQUEUED rows alone.
 */
const IS_NOT_UNBILLED_REQUEUED_RUN = Prisma.sql`(j.state <> 'REQUEUED' OR EXISTS (
             SELECT 1 FROM receipt_items lri
              WHERE lri.cluster = j.cluster AND lri.job_key = j.job_key AND NOT lri.is_voided))`;

/**
 * The job of a Slurm job id, or every task of the array job of that id. The id the pages show is the
 * job key: an array task's is the array's id, `_` and its index (`777_3`), and its job_id is Slurm's
 * JobIDRaw (`781`), which sacct and e-mails also give, so either finds it. Read from those two
 * columns alone, which the listing index covers (array_job_id is not in JOB_LISTING_COLUMNS).
 */
function jobIdConditionOf(job: string): Prisma.Sql {
  return Prisma.sql`(j.job_key = ${job} OR j.job_id = ${job} OR starts_with(j.job_key, ${`${job}_`}))`;
}

function whereOf(filter: JobFilter): Prisma.Sql {
  const parts = [
    Prisma.sql`j.end_at >= ${filter.from}`,
    Prisma.sql`j.end_at < ${filter.before}`,
    IS_NOT_UNBILLED_REQUEUED_RUN,
  ];
  if (filter.user) parts.push(Prisma.sql`j."user" = ${filter.user}`);
  if (filter.users) parts.push(Prisma.sql`j."user" = ANY (${filter.users}::text[])`);
  if (filter.account) parts.push(Prisma.sql`j.account = ${filter.account}`);
  if (filter.partition) parts.push(Prisma.sql`j.partition = ${filter.partition}`);
  if (filter.job) parts.push(jobIdConditionOf(filter.job));
  return Prisma.join(parts, ' AND ');
}

/**
 * Jobs with their hours, the billing state and the cost: the receipt item's hours and cost when
 * the job is on a live receipt, else an estimate at the owner's current rates. A billed job's hours
 * are the item's, not recomputed: after a change of PRICING_CPU_BASIS they read 2 CPU-h beside a
 * cost the receipt priced from 0.5, and the window's hours disagreed with the receipt's. Every cost is
 * written to CURRENCY's minor unit, as the CSV writes it: a receipt made before CURRENCY
 * changed (0.50 THB, now shown as JPY) is 1 on its row, and the totals summed here must add
 * up those 1s, not 0.50s (three such jobs read 1 + 1 + 1 = 2 on the page and 3 in the CSV).
 */
function pricedJobsSql(
  filter: JobFilter & { source?: Prisma.Sql; extraColumns?: Prisma.Sql; owners?: Prisma.Sql },
  pricing: PricingContext,
  tail: Prisma.Sql,
): Prisma.Sql {
  return Prisma.sql`
    WITH r AS (${rateTableSql(pricing.rates)})
    SELECT ${filter.extraColumns ?? Prisma.empty} j.id, j.cluster, j.job_key AS "jobId", j.name, j.state, j."user" AS username, j.account, j.partition,
           j.start_at AS "startAt", j.end_at AS "endAt", j.elapsed_sec AS "elapsedSec",
           coalesce(ri.cpu_hours, ${cpuHoursSql(pricing.basis)}) AS "cpuHours",
           coalesce(ri.gpu_hours, ${GPU_HOURS_SQL}) AS "gpuHours",
           coalesce(ri.mem_gb_hours, ${MEM_GB_HOURS_SQL}) AS "memGbHours",
           coalesce(rc.tier_name, r.tier) AS tier,
           coalesce(round(ri.cost, ${Prisma.raw(String(Math.trunc(pricing.minorDigits)))}),
                    ${costSql(pricing.basis, pricing.minorDigits, pricing.pricedDigits)}) AS cost,
           ri.receipt_id AS "receiptId", rc.status::text AS "receiptStatus"
      FROM ${filter.source ?? Prisma.sql`slurm_jobs`} j
      LEFT JOIN r ON r.username = j."user"
      LEFT JOIN receipt_items ri ON ri.cluster = j.cluster AND ri.job_key = j.job_key AND NOT ri.is_voided
      LEFT JOIN receipts rc ON rc.id = ri.receipt_id
     WHERE ${filter.owners ?? Prisma.empty} ${whereOf(filter)} ${tierConditionOf(filter)}
     ${tail}`;
}

export interface UsageRow {
  id: bigint;
  cluster: string;
  jobId: string;
  name: string;
  state: string;
  username: string;
  account: string;
  partition: string;
  startAt: Date | null;
  endAt: Date;
  elapsedSec: number;
  cpuHours: Prisma.Decimal;
  gpuHours: Prisma.Decimal;
  memGbHours: Prisma.Decimal;
  tier: string | null;
  cost: Prisma.Decimal | null;
  receiptId: number | null;
  receiptStatus: string | null;
}

/**
 * The columns of slurm_jobs a listing or export reads (its own fields and the inputs of the
 * pricing formulas). The (user, end_at, id) index INCLUDEs exactly these, so the page and
 * the CSV never visit the table (migration 20261201200000); reading another column here
 * would quietly turn both back into table reads, which the plan tests catch.
 */
const JOB_LISTING_COLUMNS = Prisma.raw(
  [
    'id',
    'cluster',
    'job_id',
    'job_key',
    'name',
    'state',
    '"user"',
    'account',
    'partition',
    'start_at',
    'end_at',
    'elapsed_sec',
    'total_cpu_sec',
    'cpu_time_sec',
    'alloc_cpus',
    'alloc_gpus',
    'req_gpus',
    'alloc_mem_mb',
    'step_mem_gb_hours',
  ].join(', '),
);

type SortColumn = TUsageSort;

/**
 * What each sort a listing may have (USAGE_SORTS, usage.schema.ts) orders by; anything else is
 * refused before it reaches SQL. A sort added there and not here does not compile.
 */
const SORT_COLUMNS: Readonly<Record<SortColumn, string>> = {
  end: 'j.end_at',
  // The Slurm job id the page shows (an array task's `6_1`: its array's id), as a number (9 before
  // 10). Sorting by the row id listed the jobs in the order they were ingested, which is not the
  // order of their ids.
  job: "(substring(j.job_key from '^[0-9]+'))::numeric",
  name: 'j.name',
  state: 'j.state',
  elapsed: 'j.elapsed_sec',
  cpu: '"cpuHours"',
  gpu: '"gpuHours"',
  mem: '"memGbHours"',
  cost: 'cost',
};

/**
 * Sort columns that can be NULL and so need NULLS LAST. The others never are in a window
 * (end_at is bounded by it), and leaving NULLS LAST off them lets the newest-first page
 * read the (user, end_at, id) index backwards and stop after one page: a DESC scan yields
 * NULLS FIRST, and PostgreSQL does not know the window rules NULLs out.
 */
const NULLABLE_SORTS: ReadonlySet<SortColumn> = new Set(['cost']);

/**
 * A usage CSV's order other than the one the jobs ended in: My usage's Jobs sort, which its
 * Download CSV carries. The row id breaks ties, as on the page.
 */
export interface CsvJobOrder {
  sort: SortColumn;
  direction: 'asc' | 'desc';
}

/**
 * What each sort orders a CSV's jobs by, from its priced subquery `p` (usageCsvQuery): the page's
 * SORT_COLUMNS, read where the CSV has them. `cost` is the CSV's own cost expression, given apart.
 */
const CSV_SORT_COLUMNS: Readonly<Record<Exclude<SortColumn, 'cost'>, string>> = {
  end: 'p.end_at',
  job: "(substring(p.job_key from '^[0-9]+'))::numeric",
  name: 'p.name',
  state: 'p.state',
  elapsed: 'p.elapsed_sec',
  cpu: 'p.cpu_hours',
  gpu: 'p.gpu_hours',
  mem: 'p.mem_gb_hours',
};

/** Sort columns computed by pricing a job; the others are read from the job's own row. */
const PRICED_SORTS: ReadonlySet<SortColumn> = new Set(['cpu', 'gpu', 'mem', 'cost']);

type PgUsageRow = Omit<UsageRow, 'id' | 'cpuHours' | 'gpuHours' | 'memGbHours' | 'cost'> & {
  id: string;
  cpuHours: string;
  gpuHours: string;
  memGbHours: string;
  cost: string | null;
};

function toUsageRow(row: PgUsageRow): UsageRow {
  return {
    ...row,
    id: BigInt(row.id),
    cpuHours: new Prisma.Decimal(row.cpuHours),
    gpuHours: new Prisma.Decimal(row.gpuHours),
    memGbHours: new Prisma.Decimal(row.memGbHours),
    cost: row.cost === null ? null : new Prisma.Decimal(row.cost),
  };
}

/**
 * One page of jobs in the window, sorted by a whitelisted column (the row id breaks ties), and
 * how many jobs the window holds. A prepared statement (src/db/prepared-query.ts): /me runs
 * it on every view. The count rides along as a column (an InitPlan, computed once) rather
 * than a second statement: each round trip costs both processes a socket write and a wake-up.
 */
export async function findJobsPage(
  pool: pg.Pool,
  filter: JobFilter,
  pricing: PricingContext,
  page: { sort: SortColumn; direction: 'asc' | 'desc'; offset: number; limit: number },
  notEndedOf?: string,
): Promise<{ rows: UsageRow[]; count: number; notEnded?: number }> {
  const direction = Prisma.raw(page.direction === 'asc' ? 'ASC' : 'DESC');
  const column = Prisma.raw(SORT_COLUMNS[page.sort]);
  const nulls = Prisma.raw(NULLABLE_SORTS.has(page.sort) ? ' NULLS LAST' : '');
  const order = Prisma.sql`ORDER BY ${column} ${direction}${nulls}, j.id ${direction}`;
  // The count of `notEndedOf`'s jobs with no end rides along too (My usage says how many no window lists).
  const notEndedColumn =
    notEndedOf === undefined ? Prisma.empty : Prisma.sql`(${countJobsNotEndedSql(notEndedOf)}) AS "notEndedCount",`;
  const extraColumns = Prisma.sql`(${countJobsSql(filter)}) AS "windowCount", ${notEndedColumn}`;
  let query: Prisma.Sql;
  if (!PRICED_SORTS.has(page.sort)) {
    // Sorted by a column of the job itself: pick the page first, then price only its rows.
    // The joins add at most one row per job (one live receipt item per job, one rate per
    // user), so the page is the same as sorting the priced rows; /me's default view
    // (newest first) of a busy user otherwise joins every job of the window for 50 rows.
    const pageOfJobs = Prisma.sql`(SELECT ${JOB_LISTING_COLUMNS} FROM slurm_jobs j WHERE ${whereOf(filter)}
      ${order} LIMIT ${page.limit} OFFSET ${page.offset})`;
    query = pricedJobsSql({ ...filter, source: pageOfJobs, extraColumns }, pricing, order);
  } else {
    query = pricedJobsSql(
      { ...filter, extraColumns },
      pricing,
      Prisma.sql`${order} LIMIT ${page.limit} OFFSET ${page.offset}`,
    );
  }
  const rows = await queryPrepared<PgUsageRow & { windowCount: string; notEndedCount?: string }>(pool, query);
  const first = rows[0];
  if (first)
    return {
      rows: rows.map(({ windowCount: _count, notEndedCount: _notEnded, ...row }) => toUsageRow(row)),
      count: Number(first.windowCount),
      ...(notEndedOf === undefined ? {} : { notEnded: Number(first.notEndedCount ?? 0) }),
    };
  // No row to carry the counts: an empty window, or a page past the last one.
  const [count, notEnded] = await Promise.all([
    page.offset === 0 ? 0 : countJobs(pool, filter),
    notEndedOf === undefined ? undefined : countJobsNotEnded(pool, notEndedOf),
  ]);
  return { rows: [], count, ...(notEnded === undefined ? {} : { notEnded }) };
}

function countJobsSql(filter: JobFilter): Prisma.Sql {
  return Prisma.sql`SELECT count(*) AS count FROM slurm_jobs j WHERE ${whereOf(filter)}`;
}

/** How many jobs are in the window (a prepared statement, like findJobsPage). */
export async function countJobs(pool: pg.Pool, filter: JobFilter): Promise<number> {
  const rows = await queryPrepared<{ count: string }>(pool, countJobsSql(filter));
  return Number(rows[0]?.count ?? 0);
}

export interface TotalsRow {
  jobs: number;
  cpuHours: Prisma.Decimal;
  gpuHours: Prisma.Decimal;
  memGbHours: Prisma.Decimal;
  cost: Prisma.Decimal;
  billedCost: Prisma.Decimal;
}

const totalsSelect = Prisma.sql`count(*)::int AS jobs,
  coalesce(sum(p."cpuHours"), 0) AS "cpuHours", coalesce(sum(p."gpuHours"), 0) AS "gpuHours",
  coalesce(sum(p."memGbHours"), 0) AS "memGbHours", coalesce(sum(p.cost), 0) AS cost,
  coalesce(sum(p.cost) FILTER (WHERE p."receiptId" IS NOT NULL), 0) AS "billedCost"`;

/** A local day and the instant it starts (startOfLocalDay in APP_TZ). */
export interface LocalDayStart {
  day: string;
  from: Date;
}

/**
 * Totals per local day of the job's end: `days` are the window's days, oldest first, each with the
 * instant it starts, as the app reckons them (the window's own edges are reckoned so). A job goes to the
 * last day that started at or before its end. The days used to be PostgreSQL's (`AT TIME ZONE`), which
 * reads `CET`, `MET`, `EET` and `WET` as fixed offsets where the app's zone data has them keep summer
 * time, and whose zone data may be of another release than Node's: a job the window counted was summed
 * on a day outside it, and Per day said fewer jobs than Jobs and the CSV.
 */
export async function sumByLocalDay(
  db: Db,
  filter: JobFilter,
  pricing: PricingContext,
  days: readonly LocalDayStart[],
): Promise<(TotalsRow & { day: string })[]> {
  if (days.length === 0) return [];
  const names = days.map((day) => day.day);
  const starts = days.map((day) => day.from.toISOString());
  return db.$queryRaw(Prisma.sql`
    SELECT (${names}::text[])[width_bucket(p."endAt", ${starts}::text[]::timestamptz[])] AS day, ${totalsSelect}
      FROM (${pricedJobsSql(filter, pricing, Prisma.empty)}) p
     GROUP BY 1 ORDER BY 1`);
}

/**
 * Every job owner, one probe of the (user, end_at, id) index each (a skip scan: 500 owners
 * over 1,000,000 jobs take about 5 ms).
 */
const JOB_OWNERS_SQL = Prisma.sql`
  WITH RECURSIVE owners AS (
    (SELECT "user" FROM slurm_jobs ORDER BY "user" LIMIT 1)
    UNION ALL
    SELECT (SELECT o."user" FROM slurm_jobs o WHERE o."user" > owners."user" ORDER BY o."user" LIMIT 1)
      FROM owners WHERE owners."user" IS NOT NULL)
  SELECT "user" FROM owners WHERE "user" IS NOT NULL`;

/**
 * The job owners whose username contains `search` in any case (the admin usage User filter's), in name
 * order, whenever their jobs ended: one probe of the (user, end_at, id) index per owner, as
 * JOB_OWNERS_SQL. The page's sums then read those owners' windows through the same index.
 */
export async function findJobOwnersContaining(db: Db, search: string): Promise<string[]> {
  const rows = await db.$queryRaw<{ name: string }[]>(namesContainingSql('slurm_jobs', '"user"', search));
  return rows.map((row) => row.name);
}

/**
 * Whether a receipt not voided was billed under the tier name `name` (receipts keep the name their
 * tier had then): the jobs a Tier filter by a name no tier has now can still find. No index on
 * tier_name: read only for such a name, never for a tier there is.
 */
export async function isTierNameOnReceipts(db: Db, name: string): Promise<boolean> {
  const rows = await db.$queryRaw<{ found: boolean }[]>`
    SELECT EXISTS (SELECT 1 FROM receipts WHERE tier_name = ${name} AND voided_at IS NULL) AS found`;
  return rows[0]?.found ?? false;
}

/**
 * Windows of up to 31 local days (an hour more where the clocks go back) are read owner by
 * owner (see sumByUser); longer ones in one pass over the whole index, which PostgreSQL
 * splits among its parallel workers. Both give the same figures; this only picks the faster.
 */
const OWNER_BY_OWNER_MAX_MS = (31 * 24 + 1) * 3600 * 1000;

/*
 * The CSV across users formats every job of the window, a cost that follows the window either
 * way, and a read owner by owner is not split among parallel workers: over 1,000,000 jobs it
 * took a day's export from 175-195 to 48-85 ms, a week's from 218-237 to 132-143 and two weeks'
 * from 316-337 to 259-268, was even at three weeks and 5-15% slower at a month.
 */
const CSV_OWNER_BY_OWNER_MAX_MS = (14 * 24 + 1) * 3600 * 1000;

/**
 * The condition (with its AND) that has a window across users of up to `maxMs` read owner by
 * owner, or nothing.
 */
function ownersConditionOf(filter: JobFilter, maxMs: number): Prisma.Sql {
  const isOwnerByOwner = !filter.user && !filter.users && filter.before.getTime() - filter.from.getTime() <= maxMs;
  return isOwnerByOwner ? Prisma.sql`j."user" = ANY (ARRAY(${JOB_OWNERS_SQL})) AND` : Prisma.empty;
}

/**
 * Totals per job owner and tier (admin usage across users). Each job is still priced on its own: a
 * cost is rounded per job, so pricing a user's summed hours once would be off by up to several
 * units of the currency a year.
 *
 * The window is not the first column of the (user, end_at, id) index the jobs are read from:
 * without an owner PostgreSQL reads all of it and skips the jobs outside the window, 1,000,000
 * entries for a week's 20,000 jobs. A window of up to a month names the owners (found in the
 * same statement, so none is missed), and PostgreSQL reads each one's window alone: the week's
 * page went from 320-360 to 85-140 ms over 1,000,000 jobs, the month's from 510-600 to 260-580
 * (docs/performance.md, "Admin usage over a year"). That read is not split among parallel
 * workers, so a longer window, most of the index anyway, is read whole.
 */
export async function sumByUser(
  db: Db,
  filter: JobFilter,
  pricing: PricingContext,
): Promise<(TotalsRow & { username: string; tier: string | null; isBilled: boolean })[]> {
  // One row per owner and tier the jobs were priced under (a billed job's receipt's, an unbilled
  // one's current tier), which the service adds up per owner: plain sums, which PostgreSQL still
  // aggregates in parallel (a DISTINCT aggregate of the tiers would not be).
  return db.$queryRaw(Prisma.sql`
    SELECT p.username, p.tier, p."receiptId" IS NOT NULL AS "isBilled", ${totalsSelect}
      FROM (${pricedJobsSql({ ...filter, owners: ownersConditionOf(filter, OWNER_BY_OWNER_MAX_MS) }, pricing, Prisma.empty)}) p
     GROUP BY p.username, p.tier, 3 ORDER BY p.username`);
}

export interface BilledRow {
  receiptId: number;
  receiptStatus: string;
  receiptCreatedAt: Date;
  cluster: string;
  jobId: string;
  name: string;
  endAt: Date;
  cost: Prisma.Decimal;
}

/**
 * Jobs in the window that are on a live receipt, grouped by receipt (newest receipt first), each
 * receipt's jobs newest first as Jobs lists them (by end, ties by row id, the later first), with how
 * many there are and what they cost in all.
 * Each job of the window looks up its live item and receipt (LATERAL ... LIMIT 1; the
 * live-item unique index allows one anyway). As a plain join, PostgreSQL chose to walk every
 * receipt item in receipt order to find the page's first rows: 0.75-5 s for a year of a busy
 * user over 1,000,000 items, growing with every receipt; this way it is 0.3-0.5 s.
 */
export async function findBilledPage(
  db: Db,
  filter: JobFilter,
  page: { offset: number; limit: number },
  minorDigits: number,
): Promise<{ rows: BilledRow[]; count: number; cost: Prisma.Decimal }> {
  const from = billedJobsFromSql(filter);
  const [rows, counted] = await Promise.all([
    db.$queryRaw<BilledRow[]>(Prisma.sql`
      SELECT b.receipt_id AS "receiptId", b.status::text AS "receiptStatus", b.created_at AS "receiptCreatedAt",
             j.cluster, j.job_key AS "jobId", j.name, j.end_at AS "endAt", b.cost
      ${from}
      ORDER BY b.receipt_id DESC, j.end_at DESC, j.id DESC LIMIT ${page.limit} OFFSET ${page.offset}`),
    // The window's total, of every page, adds up the costs as the rows show them (to CURRENCY's
    // minor unit), as Per day's total does (see pricedJobsSql).
    db.$queryRaw<{ count: bigint; cost: Prisma.Decimal }[]>(Prisma.sql`
      SELECT count(*) AS count,
             coalesce(sum(round(b.cost, ${Prisma.raw(String(Math.trunc(minorDigits)))})), 0) AS cost
      ${from}`),
  ]);
  return {
    rows,
    count: Number(counted[0]?.count ?? 0),
    cost: new Prisma.Decimal(counted[0]?.cost ?? 0),
  };
}

function billedJobsFromSql(filter: JobFilter): Prisma.Sql {
  return Prisma.sql`FROM slurm_jobs j
      JOIN LATERAL (
             SELECT ri.cost, rc.id AS receipt_id, rc.status, rc.created_at
               FROM receipt_items ri
               JOIN receipts rc ON rc.id = ri.receipt_id
              WHERE ri.cluster = j.cluster AND ri.job_key = j.job_key AND NOT ri.is_voided
              LIMIT 1) b ON true
     WHERE ${whereOf(filter)}`;
}

/**
 * Of the jobs `ids`, those that have not finished (`is_terminal` false, though they have an end time:
 * REQUEUE_HOLD, SPECIAL_EXIT, a state ingestion did not know): no receipt bills them until they do.
 * Asked apart from the page's query, for its unbilled rows alone, so the page keeps reading the
 * (user, end_at, id) index only, whose INCLUDE does not hold is_terminal.
 */
export async function findUnfinishedJobIds(db: Db, ids: bigint[]): Promise<Set<bigint>> {
  if (ids.length === 0) return new Set();
  const rows = await db.$queryRaw<{ id: bigint }[]>(
    Prisma.sql`SELECT j.id FROM slurm_jobs j WHERE j.id = ANY (${ids}::bigint[]) AND NOT j.is_terminal`,
  );
  return new Set(rows.map((row) => BigInt(row.id)));
}

/**
 * How many of the user's jobs have no end yet (running, or pending in the queue): no window lists
 * them. Read from the unfinished jobs' partial index (its predicate repeated so the planner uses it).
 */
function countJobsNotEndedSql(user: string): Prisma.Sql {
  return Prisma.sql`SELECT count(*) AS count FROM slurm_jobs j
    WHERE j."user" = ${user} AND j.end_at IS NULL AND NOT j.is_terminal AND j.state <> 'REQUEUED'`;
}

/** countJobsNotEndedSql alone (a prepared statement), for a page with no row to carry it (findJobsPage). */
export async function countJobsNotEnded(pool: pg.Pool, user: string): Promise<number> {
  const rows = await queryPrepared<{ count: string }>(pool, countJobsNotEndedSql(user));
  return Number(rows[0]?.count ?? 0);
}

/** How many jobs of the window are on a live receipt (findBilledPage's count), without a row of them. */
export async function countBilledJobs(db: Db, filter: JobFilter): Promise<number> {
  const rows = await db.$queryRaw<{ count: bigint }[]>(
    Prisma.sql`SELECT count(*) AS count ${billedJobsFromSql(filter)}`,
  );
  return Number(rows[0]?.count ?? 0);
}

/** When the window's last job ended, or null for a window without one. */
export async function findLastJobEnd(db: Db, filter: JobFilter): Promise<Date | null> {
  const rows = await db.$queryRaw<{ last: Date | null }[]>(
    Prisma.sql`SELECT max(j.end_at) AS last FROM slurm_jobs j WHERE ${whereOf(filter)}`,
  );
  return rows[0]?.last ?? null;
}

/**
 * When the user's jobs of a Slurm job id (or an array job's tasks) ended, first and last, whatever
 * the window; null when none of them has: My usage's Job id opens the window on them.
 */
export async function findJobEndRange(db: Db, user: string, job: string): Promise<{ first: Date; last: Date } | null> {
  const rows = await db.$queryRaw<{ first: Date | null; last: Date | null }[]>(
    Prisma.sql`SELECT min(j.end_at) AS first, max(j.end_at) AS last FROM slurm_jobs j
      WHERE j."user" = ${user} AND ${jobIdConditionOf(job)} AND j.end_at IS NOT NULL
        AND ${IS_NOT_UNBILLED_REQUEUED_RUN}`,
  );
  const row = rows[0];
  return row?.first && row.last ? { first: row.first, last: row.last } : null;
}

/** Columns of a usage CSV row, in the order streamCsvLines writes them. */
export const CSV_JOB_COLUMNS = [
  'job_id',
  'cluster',
  'name',
  'user',
  'account',
  'partition',
  'state',
  'start',
  'end',
  'elapsed_sec',
  'cpu_hours',
  'gpu_hours',
  'mem_gb_hours',
  'tier',
  'cost',
  'receipt_id',
  'receipt_status',
  // Last rather than beside cost: consumers that read the file by position before the column
  // existed still find receipt_id and receipt_status where they were.
  'currency',
  // What `tier` is: `billed`, the tier the job's receipt billed it under; `current`, the owner's
  // tier now, which an unbilled job's estimate is priced at. Last, as currency, for the same reason.
  'tier_basis',
] as const;

const FORMULA_TRIGGER_CODES = CSV_FORMULA_TRIGGERS.map((trigger) => trigger.charCodeAt(0));
/** Every trigger is below 'A' (65): a text starting with a letter skips the list. */
const FORMULA_TRIGGER_BELOW = Prisma.raw(String(Math.max(...FORMULA_TRIGGER_CODES) + 1));
const FORMULA_TRIGGER_LIST = Prisma.raw(FORMULA_TRIGGER_CODES.join(', '));

/**
 * `text` as an E'' literal, which reads the same whatever standard_conforming_strings says, with
 * anything beyond ASCII written as \uXXXX: the statement itself shows no control in a log.
 */
function escapeStringLiteral(text: string): Prisma.Sql {
  return Prisma.raw(
    `E'${text.replace(/[\\']|[^\x20-\x7e]/g, (character) =>
      character === '\\' || character === "'"
        ? `\\${character}`
        : `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`,
    )}'`,
  );
}

/**
 * REVEALED_CONTROL_RANGES as PostgreSQL can hold them (text has no NUL), cut where a code's escape
 * changes in more than its last hex digit: 0001-000f, 0010-001f, 007f, 0080-008f, ... Keyed by the
 * escape's first three digits, which a range's controls share.
 */
const SQL_CONTROL_GROUPS: ReadonlyMap<string, readonly [number, number][]> = (() => {
  const groups = new Map<string, [number, number][]>();
  for (const [from, to] of REVEALED_CONTROL_RANGES) {
    for (let first = Math.max(from, 1); first <= to; first = (first | 0xf) + 1) {
      const last = Math.min(to, first | 0xf);
      const prefix = first.toString(16).padStart(4, '0').slice(0, -1);
      groups.set(prefix, [...(groups.get(prefix) ?? []), [first, last]]);
    }
  }
  return groups;
})();

/** A bracket expression of `ranges` (code points), as PostgreSQL's regular expressions read it. */
function controlClassOf(ranges: readonly (readonly [number, number])[]): string {
  return `[${ranges.map(([first, last]) => `${String.fromCodePoint(first)}-${String.fromCodePoint(last)}`).join('')}]`;
}

/** A regular expression matching any control revealControls reveals. */
const REVEALED_CONTROL_CLASS = escapeStringLiteral(controlClassOf([...SQL_CONTROL_GROUPS.values()].flat()));

/**
 * `value` with each control of REVEALED_CONTROL_RANGES written as revealControls writes it
 * (\u001b, \u202e): each group's controls (which share all but the last hex digit) get the rest of
 * their escape put in front by one regexp_replace, then one translate turns every control into its
 * last digit. One call per group and one more however many controls there are, so the planner's
 * estimate of each text column grows as little as it can: more of it tipped a large plain COPY to
 * a parallel scan (docs/performance.md).
 */
function revealControlsSql(value: Prisma.Sql): Prisma.Sql {
  let revealed = value;
  let controls = '';
  let lastDigits = '';
  for (const [prefix, ranges] of SQL_CONTROL_GROUPS) {
    // In a replacement \\ is one backslash and \& the text matched.
    revealed = Prisma.sql`regexp_replace(${revealed}, ${escapeStringLiteral(controlClassOf(ranges))}, ${escapeStringLiteral(
      `\\\\u${prefix}\\&`,
    )}, 'g')`;
    for (const [first, last] of ranges) {
      for (let code = first; code <= last; code++) {
        controls += String.fromCodePoint(code);
        lastDigits += code.toString(16).slice(-1);
      }
    }
  }
  return Prisma.sql`translate(${revealed}, ${escapeStringLiteral(controls)}, ${escapeStringLiteral(lastDigits)})`;
}

/**
 * A text column from outside the application for PostgreSQL's CSV writer, written as
 * formatCsvField(escapeCsvFormula(text)) writes it in Node: a text that would start a
 * spreadsheet formula gets a leading `'`, and empty text is NULL (see csvCodeSql). The test is
 * ascii() (the first code point, 0 for '') against integers, which most text (starting with a
 * letter) leaves after one comparison; comparing left(text, 1) as text took about twice as long
 * (docs/performance.md). For a word whose spelling the application fixes: a tier name, which only
 * an admin gives (a new or renamed tier is lowercase letters, digits, - and _; ZNewTierName), and
 * so holds no `;`, tab or bidirectional control from outside. Text from outside goes through
 * csvTextSql, a Slurm state too (a hand-made sacct file's state is any first word, such as
 * `X;=1+1`). `value` is read several times, so it must be a column, not a bound value.
 */
function csvWordSql(value: Prisma.Sql): Prisma.Sql {
  return Prisma.sql`CASE WHEN ascii(${value}) < ${FORMULA_TRIGGER_BELOW} AND ascii(${value}) IN (${FORMULA_TRIGGER_LIST})
    THEN '''' || ${value} ELSE nullif(${value}, '') END`;
}

/**
 * `value` with a `'` after each `;` or tab followed by a formula's first character, as
 * escapeCsvFormula puts it there in Node (CSV_SEPARATED_FORMULA_PATTERN, one pattern for both).
 */
function escapeSeparatedFormulasSql(value: Prisma.Sql): Prisma.Sql {
  // In a replacement \\1 is the separator matched.
  return Prisma.sql`regexp_replace(${value}, ${escapeStringLiteral(CSV_SEPARATED_FORMULA_PATTERN)}, ${escapeStringLiteral("\\1'")}, 'g')`;
}

/** Whether `value` holds a `;` or a tab (CSV_OTHER_SEPARATORS), by strpos: far cheaper than a regular expression. */
function holdsOtherSeparatorSql(value: Prisma.Sql): Prisma.Sql {
  return Prisma.join(
    CSV_OTHER_SEPARATORS.map((separator) => Prisma.sql`strpos(${value}, ${escapeStringLiteral(separator)}) > 0`),
    ' OR ',
  );
}

/**
 * A name people type (a job's, a user's, an account's, a partition's, a cluster's) as csvWordSql
 * writes a word, with each control of REVEALED_CONTROL_RANGES written as its escape (\u001b,
 * \u202e), and with a `'` after each `;` or tab followed by a formula's first character (a
 * spreadsheet splitting on `;` or tabs starts a cell there): as formatCsvField(escapeCsvText(text))
 * writes it in Node. Controls are looked for with a regular expression, only where `mayHoldControl`
 * (by default, always): a terminal control is ASCII, so the length test that once let all-ASCII
 * text skip it no longer can, and on every cell the expression cost about ten times that test; the
 * usage CSVs look once per row instead (rowHoldsControlSql). Separators are looked for by strpos,
 * and their regular expression runs only on a text holding one: an ordinary name pays two strpos.
 * Escaping a control never changes whether the text starts a formula or has a separator before one
 * (neither a control revealed, tab and CR are not, nor the backslash and hex digits replacing it is
 * a trigger or a separator), nor does a `'` put after a separator or before the text (it is
 * neither), so the three are independent and their order does not matter.
 */
export function csvTextSql(value: Prisma.Sql, mayHoldControl: Prisma.Sql = Prisma.sql`TRUE`): Prisma.Sql {
  const startsFormula = Prisma.sql`ascii(${value}) < ${FORMULA_TRIGGER_BELOW} AND ascii(${value}) IN (${FORMULA_TRIGGER_LIST})`;
  // The escaping written once: the planner counts every branch of a CASE in each row's estimate.
  return Prisma.sql`CASE WHEN ${startsFormula} OR ${holdsOtherSeparatorSql(value)} OR (${mayHoldControl} AND ${value} ~ ${REVEALED_CONTROL_CLASS})
    THEN CASE WHEN ${startsFormula} THEN '''' ELSE '' END || ${escapeSeparatedFormulasSql(revealControlsSql(value))}
    ELSE nullif(${value}, '') END`;
}

/**
 * Whether any of `columns` holds a control of REVEALED_CONTROL_RANGES: one regular expression over
 * the row's text columns together. Six ordinary names a row, 1,000,000 rows, on the 2-core
 * machine (medians of 5): 1.09 s with the old length test per name, 1.44 s with this, 1.82 s with
 * one expression per name.
 */
function rowHoldsControlSql(columns: readonly Prisma.Sql[]): Prisma.Sql {
  return Prisma.sql`concat(${Prisma.join(columns, ', ')}) ~ ${REVEALED_CONTROL_CLASS}`;
}

/**
 * A Slurm job key for PostgreSQL's CSV writer, as formatCsvField(escapeCsvText(key)) writes it in
 * Node (a receipt's items.csv). Ingestion takes one only starting with a digit (parseJobId), so it
 * never starts a formula, and holds only digits, `_` and `+`, except a pending array's `[...]`,
 * which keeps whatever the record says (`7005_[1;=1+1]` from a hand-made sacct file): a key with a
 * `[` is written as csvTextSql writes a name; any other pays one strpos and is csvCodeSql's.
 */
export function csvJobKeySql(value: Prisma.Sql, mayHoldControl?: Prisma.Sql): Prisma.Sql {
  return Prisma.sql`CASE WHEN strpos(${value}, '[') > 0 THEN ${csvTextSql(value, mayHoldControl)} ELSE ${csvCodeSql(value)} END`;
}

/**
 * A text column whose values the application constrains (a receipt status, a job key without a
 * `[`) for PostgreSQL's CSV writer. It quotes exactly where csv-stringify does (a comma, a quote,
 * CR or LF; quotes doubled) but writes a non-NULL empty string as `""` to tell it from NULL;
 * csv-stringify writes both as nothing, so empty becomes NULL. No formula check: it cannot start
 * one, and each check on every line costs (escaping the job key and the status in full tipped
 * PostgreSQL's plan for a large one-user export to a slower parallel scan and sort;
 * docs/performance.md).
 */
function csvCodeSql(value: Prisma.Sql): Prisma.Sql {
  return Prisma.sql`nullif(${value}, '')`;
}

/**
 * A Prisma.Sql statement with its values written in as literals, for COPY, which takes
 * no bind parameters. Each literal is the text the driver would have bound, quoted by
 * escapeLiteral, so PostgreSQL resolves its type from the context exactly as before.
 */
function inlineSql(sql: Prisma.Sql, escapeLiteral: (text: string) => string): string {
  const literalOf = (value: unknown): string => {
    if (value === null || value === undefined) return 'NULL';
    if (value instanceof Date) return escapeLiteral(value.toISOString());
    if (typeof value === 'string') return escapeLiteral(value);
    if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'bigint') {
      return escapeLiteral(String(value));
    }
    if (Array.isArray(value)) {
      // The array literal node-pg sends for a bound array: elements quoted, " and \ escaped.
      const elements = value.map((element: unknown) => {
        if (element === null || element === undefined) return 'NULL';
        if (typeof element !== 'string' && typeof element !== 'number') {
          throw new TypeError(`cannot inline an array element of type ${typeof element}`);
        }
        return `"${String(element).replace(/[\\"]/g, '\\$&')}"`;
      });
      return escapeLiteral(`{${elements.join(',')}}`);
    }
    throw new TypeError(`cannot inline a value of type ${typeof value}`);
  };
  let text = sql.strings[0] ?? '';
  for (let index = 0; index < sql.values.length; index++) {
    text += literalOf(sql.values[index]) + (sql.strings[index + 1] ?? '');
  }
  return text;
}

/**
 * The rates `r` of a CSV's jobs. A COPY cannot be prepared, so it is planned on every
 * export; one user's export joins one row of constants, which PostgreSQL folds into the
 * query, instead of a table of rates built from arrays: 1.83 -> 1.61 ms for a 347-row
 * export, most of it planning (docs/performance-history.md). Exports across users join the table.
 */
function ratesOf(filter: JobFilter, pricing: PricingContext): { cte: Prisma.Sql; join: Prisma.Sql } {
  const [only] = pricing.rates;
  if (only && pricing.rates.length === 1 && filter.user === only.username) {
    return {
      cte: Prisma.empty,
      join: Prisma.sql`CROSS JOIN (SELECT ${only.tier}::text AS tier, ${only.cpu.toFixed()}::numeric AS cpu,
        ${only.gpu.toFixed()}::numeric AS gpu, ${only.mem.toFixed()}::numeric AS mem) r`,
    };
  }
  return {
    cte: Prisma.sql`WITH r AS (${rateTableSql(pricing.rates)})`,
    join: Prisma.sql`LEFT JOIN r ON r.username = j."user"`,
  };
}

/**
 * The query behind streamCsvLines: CSV_JOB_COLUMNS per job of the window, in (end_at, id) order
 * or in `order`.
 */
export function usageCsvSql(filter: JobFilter, pricing: CsvPricingContext, order?: CsvJobOrder): Prisma.Sql {
  return usageCsvQuery(
    Prisma.sql`${ownersConditionOf(filter, CSV_OWNER_BY_OWNER_MAX_MS)} ${whereOf(filter)} ${tierConditionOf(filter)}`,
    ratesOf(filter, pricing),
    Prisma.sql`${pricing.currency}`,
    pricing,
    order,
  );
}

/**
 * The CSV query over the jobs `where` selects, joined to the rates `rates` gives, with
 * `currency` (a text) in every row. Every column is text: COPY writes a number's text exactly
 * as its own output function does, and the cached function (userCsvFunctionOf) declares one
 * type for every column.
 */
function usageCsvQuery(
  where: Prisma.Sql,
  rates: { cte: Prisma.Sql; join: Prisma.Sql },
  currency: Prisma.Sql,
  pricing: Pick<PricingContext, 'minorDigits' | 'pricedDigits' | 'basis'>,
  order?: CsvJobOrder,
): Prisma.Sql {
  // A billed job's cost is its receipt item's, stored with 4 decimals (numeric(20,4)) but
  // already rounded to the minor unit: written to it, like an estimate and the receipt.
  const cost = Prisma.sql`coalesce(round(p.billed_cost, ${Prisma.raw(String(Math.trunc(pricing.minorDigits)))}), ${costOfHoursSql(
    Prisma.sql`p.cpu_hours`,
    Prisma.sql`p.gpu_hours`,
    Prisma.sql`p.mem_gb_hours`,
    Prisma.sql`p`,
    pricing.minorDigits,
    pricing.pricedDigits,
  )})`;
  // The hours are computed once per job in a subquery (OFFSET 0 keeps PostgreSQL from
  // folding it into the outer query and computing them again inside the cost): 15-25%
  // less query time than repeating the formulas (docs/performance-history.md).
  const fields = [
    csvJobKeySql(Prisma.sql`p.job_key`, Prisma.sql`p.holds_control`),
    csvTextSql(Prisma.sql`p.cluster`, Prisma.sql`p.holds_control`),
    csvTextSql(Prisma.sql`p.name`, Prisma.sql`p.holds_control`),
    csvTextSql(Prisma.sql`p."user"`, Prisma.sql`p.holds_control`),
    csvTextSql(Prisma.sql`p.account`, Prisma.sql`p.holds_control`),
    csvTextSql(Prisma.sql`p.partition`, Prisma.sql`p.holds_control`),
    csvTextSql(Prisma.sql`p.state`, Prisma.sql`p.holds_control`),
    Prisma.sql`to_char(p.start_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`,
    Prisma.sql`to_char(p.end_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`,
    Prisma.sql`p.elapsed_sec`,
    Prisma.sql`p.cpu_hours`,
    Prisma.sql`p.gpu_hours`,
    Prisma.sql`p.mem_gb_hours`,
    csvWordSql(Prisma.sql`p.tier`),
    cost,
    Prisma.sql`p.receipt_id`,
    csvCodeSql(Prisma.sql`p.receipt_status`),
    // An ISO 4217 code (config checks CURRENCY): no quoting or formula escape can apply.
    currency,
    Prisma.sql`CASE WHEN p.receipt_id IS NULL THEN 'current' ELSE 'billed' END`,
  ];
  return Prisma.sql`
    ${rates.cte}
    SELECT ${Prisma.join(
      fields.map((field) => Prisma.sql`(${field})::text`),
      ', ',
    )}
      FROM (
        SELECT j.id, j.job_key, j.cluster, j.name, j."user", j.account, j.partition, j.state, j.start_at,
               j.end_at, j.elapsed_sec, coalesce(ri.cpu_hours, ${cpuHoursSql(pricing.basis)}) AS cpu_hours,
               coalesce(ri.gpu_hours, ${GPU_HOURS_SQL}) AS gpu_hours,
               coalesce(ri.mem_gb_hours, ${MEM_GB_HOURS_SQL}) AS mem_gb_hours, coalesce(rc.tier_name, r.tier) AS tier,
               r.cpu, r.gpu, r.mem,
               ri.cost AS billed_cost, ri.receipt_id, rc.status::text AS receipt_status,
               ${rowHoldsControlSql(
                 ['job_key', 'cluster', 'name', '"user"', 'account', 'partition', 'state'].map((column) =>
                   Prisma.raw(`j.${column}`),
                 ),
               )} AS holds_control
          FROM slurm_jobs j
          ${rates.join}
          LEFT JOIN receipt_items ri ON ri.cluster = j.cluster AND ri.job_key = j.job_key AND NOT ri.is_voided
          LEFT JOIN receipts rc ON rc.id = ri.receipt_id
         WHERE ${where}
         ORDER BY j.end_at, j.id
        OFFSET 0) p
     ${csvOrderOf(order, cost)}`;
}

/**
 * A usage CSV's ORDER BY: the order the jobs ended in, or `order` as the Jobs page sorts (a cost
 * that is none, NULLS LAST).
 */
function csvOrderOf(order: CsvJobOrder | undefined, cost: Prisma.Sql): Prisma.Sql {
  if (order === undefined) return Prisma.sql`ORDER BY p.end_at, p.id`;
  const direction = Prisma.raw(order.direction === 'asc' ? 'ASC' : 'DESC');
  if (order.sort === 'cost') return Prisma.sql`ORDER BY ${cost} ${direction} NULLS LAST, p.id ${direction}`;
  return Prisma.sql`ORDER BY ${Prisma.raw(CSV_SORT_COLUMNS[order.sort])} ${direction}, p.id ${direction}`;
}

/** A session's PL/pgSQL function returning one user's CSV rows (see userCsvCopyOf). */
interface UserCsvFunction {
  /** Schema-qualified: a function in pg_temp is only found by that name. */
  name: string;
  definition: string;
}

const userCsvFunctions = new Map<string, UserCsvFunction>();

/**
 * One user's CSV query as a function of the session (pg_temp), created on each pooled
 * connection the first time it exports. A COPY cannot be prepared, so its query is parsed
 * and planned on every export, which was 40-45% of PostgreSQL's work for a two-week export:
 * 1.17-1.25 -> 0.69 ms of backend CPU for 125 rows, 0.76-0.79 -> 0.38-0.44 ms for 57
 * (docs/performance-history.md). A PL/pgSQL function keeps the plan of its query for the session,
 * so the COPY only plans a call. The plan is the generic one, made once: it reads the
 * window off the (user, end_at, id) index and probes each job's live item, a cost that
 * follows the window whoever the user is. RETURN QUERY gathers the rows before COPY sends
 * them (spilling to disk past work_mem), which one user's window keeps small; exports
 * across users stay a plain COPY that streams.
 */
function userCsvFunctionOf(pricing: Pick<PricingContext, 'minorDigits' | 'pricedDigits' | 'basis'>): UserCsvFunction {
  const key = `${pricing.basis}:${pricing.minorDigits}:${pricing.pricedDigits ?? pricing.minorDigits}`;
  let found = userCsvFunctions.get(key);
  if (!found) {
    const query = usageCsvQuery(
      Prisma.sql`j."user" = p_user AND j.end_at >= p_from AND j.end_at < p_before AND ${IS_NOT_UNBILLED_REQUEUED_RUN}`,
      {
        cte: Prisma.empty,
        join: Prisma.sql`CROSS JOIN (SELECT p_tier AS tier, p_cpu AS cpu, p_gpu AS gpu, p_mem AS mem) r`,
      },
      Prisma.sql`p_currency`,
      pricing,
    );
    if (query.values.length > 0) throw new Error('the CSV function body must not bind values');
    const name = `pg_temp.hb_user_csv_${createHash('sha1').update(query.text).digest('hex').slice(0, 16)}`;
    const columns = CSV_JOB_COLUMNS.map((column) => `out_${column} text`).join(', ');
    found = {
      name,
      definition: `CREATE OR REPLACE FUNCTION ${name}(p_user text, p_from timestamptz, p_before timestamptz,
                                   p_tier text, p_cpu numeric, p_gpu numeric, p_mem numeric,
                                   p_currency text)
        RETURNS TABLE (${columns}) LANGUAGE plpgsql STABLE
        SET plan_cache_mode = force_generic_plan
        AS $function$ BEGIN RETURN QUERY ${query.text}; END $function$`,
    };
    userCsvFunctions.set(key, found);
  }
  return found;
}

/** Connections that have a CSV function (by name): created once per connection. */
const functionsOfConnection = new WeakMap<pg.PoolClient, Set<string>>();
/**
 * Pools that cannot keep a function in the session: the database refused to create one (a
 * role without the TEMPORARY privilege), or one vanished (a pooler in transaction mode).
 * Their exports run as a plain COPY, planned each time.
 */
const poolsRefusingTempFunctions = new WeakSet<pg.Pool>();

/**
 * The COPY statement of one user's export through the session's function, creating it
 * first on a connection that lacks it; undefined where the export is not one user's plain
 * window in the order its jobs ended (a Job id or a sort is a plain COPY, planned each time), or
 * the database refuses temporary functions.
 */
async function userCsvCopyOf(
  pool: pg.Pool,
  client: pg.PoolClient,
  filter: JobFilter,
  pricing: CsvPricingContext,
  order: CsvJobOrder | undefined,
): Promise<string | undefined> {
  const [rates] = pricing.rates;
  const isOneUsersWindow =
    rates &&
    pricing.rates.length === 1 &&
    filter.user === rates.username &&
    !filter.account &&
    !filter.partition &&
    !filter.tier &&
    !filter.job &&
    order === undefined;
  if (!isOneUsersWindow || poolsRefusingTempFunctions.has(pool)) return undefined;
  const csvFunction = userCsvFunctionOf(pricing);
  const created = functionsOfConnection.get(client) ?? new Set<string>();
  if (!created.has(csvFunction.name)) {
    try {
      await client.query(csvFunction.definition);
    } catch (error) {
      if ((error as { code?: string }).code !== INSUFFICIENT_PRIVILEGE) throw error;
      poolsRefusingTempFunctions.add(pool);
      return undefined;
    }
    created.add(csvFunction.name);
    functionsOfConnection.set(client, created);
  }
  const literal = (value: string) => client.escapeLiteral(value);
  const args = [
    literal(rates.username),
    literal(filter.from.toISOString()),
    literal(filter.before.toISOString()),
    literal(rates.tier),
    literal(rates.cpu.toFixed()),
    literal(rates.gpu.toFixed()),
    literal(rates.mem.toFixed()),
    literal(pricing.currency),
  ];
  return `COPY (SELECT * FROM ${csvFunction.name}(${args.join(', ')})) TO STDOUT WITH (FORMAT csv)`;
}

const INSUFFICIENT_PRIVILEGE = '42501';
const UNDEFINED_FUNCTION = '42883';

/**
 * Every job in the window in (end_at, id) order, or in `order`, as CSV bytes (CSV_JOB_COLUMNS, no
 * header), in chunks as they come off the socket (not aligned on lines). `COPY ... TO
 * STDOUT (FORMAT csv)` has PostgreSQL write the CSV and node-pg pass the bytes through
 * untouched: no per-row protocol message parsed into a JS string, no joining. That beat
 * a cursor returning one preformatted line per row (86-94k rows/s) on 100,000 rows;
 * see docs/performance-history.md. PostgreSQL's CSV quoting is csv-stringify's (see csvCodeSql).
 * Backpressure reaches PostgreSQL: the socket is read only as fast as the caller
 * consumes, so memory stays flat. Stopping early (a client that hangs up) cannot end a
 * COPY politely, so the connection is closed and the pool opens a fresh one later; the same
 * happens when the database sends nothing for its query timeout while the export waits.
 */
export async function* streamCsvLines(
  database: Database,
  filter: JobFilter,
  pricing: CsvPricingContext,
  order?: CsvJobOrder,
): AsyncGenerator<Buffer> {
  const client = await database.pool.connect();
  let isDone = false;
  try {
    // A COPY gets no per-query timer (it lasts as long as the client reads); a silence of the
    // database while the export waits for its next chunk ends it instead.
    const readCopy = (copy: string) => readWithinTimeout<Buffer>(client.query(copyTo(copy)), database.queryTimeoutMs);
    const plainCopy = () =>
      `COPY (${inlineSql(usageCsvSql(filter, pricing, order), (text) => client.escapeLiteral(text))}) TO STDOUT WITH (FORMAT csv)`;
    const viaFunction = await userCsvCopyOf(database.pool, client, filter, pricing, order);
    if (viaFunction) {
      let hasYielded = false;
      try {
        for await (const chunk of readCopy(viaFunction)) {
          hasYielded = true;
          yield chunk;
        }
        isDone = true;
      } catch (error) {
        // The connection's function is gone: a pooler in transaction mode (PgBouncer) handed
        // this connection's statements to another server session, or something reset it.
        // Session functions cannot be relied on behind this pool: export as a plain COPY.
        if (hasYielded || (error as { code?: string }).code !== UNDEFINED_FUNCTION) throw error;
        poolsRefusingTempFunctions.add(database.pool);
        functionsOfConnection.delete(client);
      }
      if (isDone) return;
    }
    yield* readCopy(plainCopy());
    isDone = true;
  } finally {
    // A COPY abandoned midway leaves the connection mid-protocol: discard it, never reuse it.
    client.release(isDone ? undefined : true);
  }
}
