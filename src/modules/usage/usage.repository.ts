import { Prisma } from '@prisma/client';
import type { Database, Db } from '../../db/database.js';
import type { CpuBasis } from '../pricing/pricing.js';
import type { RateTableRow } from '../pricing/rates.service.js';
import { costSql, cpuHoursSql, GPU_HOURS_SQL, MEM_GB_HOURS_SQL, rateTableSql } from './usage.sql.js';

/** Which jobs: ended in [from, before), optionally narrowed by owner, account and partition. */
export interface JobFilter {
  from: Date;
  before: Date;
  user?: string | undefined;
  account?: string | undefined;
  partition?: string | undefined;
}

export interface PricingContext {
  basis: CpuBasis;
  minorDigits: number;
  rates: RateTableRow[];
}

function whereOf(filter: JobFilter): Prisma.Sql {
  const parts = [Prisma.sql`j.end_at >= ${filter.from}`, Prisma.sql`j.end_at < ${filter.before}`];
  if (filter.user) parts.push(Prisma.sql`j."user" = ${filter.user}`);
  if (filter.account) parts.push(Prisma.sql`j.account = ${filter.account}`);
  if (filter.partition) parts.push(Prisma.sql`j.partition = ${filter.partition}`);
  return Prisma.join(parts, ' AND ');
}

/**
 * Jobs with their hours, the billing state and the cost: the receipt's cost when the
 * job is on a live receipt, else an estimate at the owner's current rates.
 */
function pricedJobsSql(
  filter: JobFilter & { source?: Prisma.Sql },
  pricing: PricingContext,
  tail: Prisma.Sql,
): Prisma.Sql {
  return Prisma.sql`
    WITH r AS (${rateTableSql(pricing.rates)})
    SELECT j.id, j.cluster, j.job_id AS "jobId", j.name, j.state, j."user" AS username, j.account, j.partition,
           j.start_at AS "startAt", j.end_at AS "endAt", j.elapsed_sec AS "elapsedSec",
           ${cpuHoursSql(pricing.basis)} AS "cpuHours", ${GPU_HOURS_SQL} AS "gpuHours",
           ${MEM_GB_HOURS_SQL} AS "memGbHours",
           coalesce(rc.tier_name, r.tier) AS tier,
           coalesce(ri.cost, ${costSql(pricing.basis, pricing.minorDigits)}) AS cost,
           ri.receipt_id AS "receiptId", rc.status::text AS "receiptStatus"
      FROM ${filter.source ?? Prisma.sql`slurm_jobs`} j
      LEFT JOIN r ON r.username = j."user"
      LEFT JOIN receipt_items ri ON ri.cluster = j.cluster AND ri.job_key = j.job_key AND NOT ri.is_voided
      LEFT JOIN receipts rc ON rc.id = ri.receipt_id
     WHERE ${whereOf(filter)}
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

/** Columns a listing may be sorted by; anything else is refused before it reaches SQL. */
export const SORT_COLUMNS = {
  end: 'j.end_at',
  job: 'j.id',
  name: 'j.name',
  state: 'j.state',
  elapsed: 'j.elapsed_sec',
  cpu: '"cpuHours"',
  gpu: '"gpuHours"',
  mem: '"memGbHours"',
  cost: 'cost',
} as const;
export type SortColumn = keyof typeof SORT_COLUMNS;

/** One page of jobs in the window, sorted by a whitelisted column (job id breaks ties). */
export async function findJobsPage(
  db: Db,
  filter: JobFilter,
  pricing: PricingContext,
  page: { sort: SortColumn; direction: 'asc' | 'desc'; offset: number; limit: number },
): Promise<UsageRow[]> {
  const direction = Prisma.raw(page.direction === 'asc' ? 'ASC' : 'DESC');
  const column = Prisma.raw(SORT_COLUMNS[page.sort]);
  const order = Prisma.sql`ORDER BY ${column} ${direction} NULLS LAST, j.id ${direction}`;
  if (SORT_COLUMNS[page.sort].startsWith('j.')) {
    // Sorted by a column of the job itself: pick the page first, then price only its rows.
    // The joins add at most one row per job (one live receipt item per job, one rate per
    // user), so the page is the same as sorting the priced rows; /me's default view
    // (newest first) of a busy user otherwise joins every job of the window for 50 rows.
    const pageOfJobs = Prisma.sql`(SELECT * FROM slurm_jobs j WHERE ${whereOf(filter)}
      ${order} LIMIT ${page.limit} OFFSET ${page.offset})`;
    return db.$queryRaw<UsageRow[]>(pricedJobsSql({ ...filter, source: pageOfJobs }, pricing, order));
  }
  return db.$queryRaw<UsageRow[]>(
    pricedJobsSql(
      filter,
      pricing,
      Prisma.sql`ORDER BY ${column} ${direction} NULLS LAST, j.id ${direction} LIMIT ${page.limit} OFFSET ${page.offset}`,
    ),
  );
}

/** How many jobs are in the window. */
export async function countJobs(db: Db, filter: JobFilter): Promise<number> {
  const rows = await db.$queryRaw<
    { count: bigint }[]
  >`SELECT count(*) AS count FROM slurm_jobs j WHERE ${whereOf(filter)}`;
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

/** Totals per local day of the job's end, in the given zone. */
export async function sumByLocalDay(
  db: Db,
  filter: JobFilter,
  pricing: PricingContext,
  timeZone: string,
): Promise<(TotalsRow & { day: string })[]> {
  return db.$queryRaw(Prisma.sql`
    SELECT to_char(p."endAt" AT TIME ZONE ${timeZone}, 'YYYY-MM-DD') AS day, ${totalsSelect}
      FROM (${pricedJobsSql(filter, pricing, Prisma.empty)}) p
     GROUP BY 1 ORDER BY 1`);
}

/** Totals per job owner (admin usage across users). */
export async function sumByUser(
  db: Db,
  filter: JobFilter,
  pricing: PricingContext,
): Promise<(TotalsRow & { username: string; tier: string | null })[]> {
  return db.$queryRaw(Prisma.sql`
    SELECT p.username, max(p.tier) AS tier, ${totalsSelect}
      FROM (${pricedJobsSql(filter, pricing, Prisma.empty)}) p
     GROUP BY p.username ORDER BY p.username`);
}

export interface BilledRow {
  receiptId: number;
  receiptStatus: string;
  receiptCreatedAt: Date;
  jobId: string;
  name: string;
  endAt: Date;
  cost: Prisma.Decimal;
}

/** Jobs in the window that are on a live receipt, grouped by receipt (newest receipt first). */
export async function findBilledPage(
  db: Db,
  filter: JobFilter,
  page: { offset: number; limit: number },
): Promise<{ rows: BilledRow[]; count: number }> {
  const from = Prisma.sql`FROM slurm_jobs j
      JOIN receipt_items ri ON ri.cluster = j.cluster AND ri.job_key = j.job_key AND NOT ri.is_voided
      JOIN receipts rc ON rc.id = ri.receipt_id
     WHERE ${whereOf(filter)}`;
  const [rows, counted] = await Promise.all([
    db.$queryRaw<BilledRow[]>(Prisma.sql`
      SELECT rc.id AS "receiptId", rc.status::text AS "receiptStatus", rc.created_at AS "receiptCreatedAt",
             j.job_id AS "jobId", j.name, j.end_at AS "endAt", ri.cost
      ${from}
      ORDER BY rc.id DESC, j.end_at, j.id LIMIT ${page.limit} OFFSET ${page.offset}`),
    db.$queryRaw<{ count: bigint }[]>(Prisma.sql`SELECT count(*) AS count ${from}`),
  ]);
  return { rows, count: Number(counted[0]?.count ?? 0) };
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
] as const;

/**
 * A text value as one CSV field, the way csv-stringify writes it: quoted (quotes
 * doubled) only when it holds a comma, a quote or a line break; NULL is empty. Four
 * strpos() calls cost half what one regular expression match does per field.
 */
function csvFieldSql(value: Prisma.Sql): Prisma.Sql {
  return Prisma.sql`CASE WHEN strpos(${value}, ',') + strpos(${value}, '"') + strpos(${value}, chr(10)) + strpos(${value}, chr(13)) > 0
    THEN '"' || replace(${value}, '"', '""') || '"' ELSE coalesce(${value}, '') END`;
}

/** A value that never needs quotes (numbers, fixed-format timestamps): NULL is empty. */
function plainFieldSql(value: Prisma.Sql): Prisma.Sql {
  return Prisma.sql`coalesce((${value})::text, '')`;
}

/**
 * Every job in the window in (end_at, id) order as CSV text (CSV_JOB_COLUMNS, no header),
 * `batchSize` lines per chunk. PostgreSQL formats each row into one CSV line, so the
 * driver parses one field per row instead of seventeen and Node only joins lines: at
 * 100,000 rows that parsing and per-field formatting cost more than the query itself.
 * The rows are read through a server-side cursor on one pooled connection, so memory
 * stays flat however many there are. A cursor runs the plan once (an index scan on
 * (user, end_at)); keyset batches made PostgreSQL re-plan and re-sort the rest of the
 * window for every batch. The next batch is already being fetched while the caller
 * writes the current one. Stopping early (a client that hangs up) closes the cursor
 * and returns the connection.
 */
export async function* streamCsvLines(
  database: Database,
  filter: JobFilter,
  pricing: PricingContext,
  batchSize: number,
): AsyncGenerator<string> {
  const fields = [
    csvFieldSql(Prisma.sql`j.job_id`),
    csvFieldSql(Prisma.sql`j.cluster`),
    csvFieldSql(Prisma.sql`j.name`),
    csvFieldSql(Prisma.sql`j."user"`),
    csvFieldSql(Prisma.sql`j.account`),
    csvFieldSql(Prisma.sql`j.partition`),
    csvFieldSql(Prisma.sql`j.state`),
    plainFieldSql(Prisma.sql`to_char(j.start_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`),
    plainFieldSql(Prisma.sql`to_char(j.end_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`),
    plainFieldSql(Prisma.sql`j.elapsed_sec`),
    plainFieldSql(cpuHoursSql(pricing.basis)),
    plainFieldSql(GPU_HOURS_SQL),
    plainFieldSql(MEM_GB_HOURS_SQL),
    csvFieldSql(Prisma.sql`coalesce(rc.tier_name, r.tier)`),
    plainFieldSql(Prisma.sql`coalesce(ri.cost, ${costSql(pricing.basis, pricing.minorDigits)})`),
    plainFieldSql(Prisma.sql`ri.receipt_id`),
    csvFieldSql(Prisma.sql`rc.status::text`),
  ];
  const query = Prisma.sql`
    DECLARE usage_csv NO SCROLL CURSOR FOR
    WITH r AS (${rateTableSql(pricing.rates)})
    SELECT ${Prisma.join(fields, " || ',' || ")}
      FROM slurm_jobs j
      LEFT JOIN r ON r.username = j."user"
      LEFT JOIN receipt_items ri ON ri.cluster = j.cluster AND ri.job_key = j.job_key AND NOT ri.is_voided
      LEFT JOIN receipts rc ON rc.id = ri.receipt_id
     WHERE ${whereOf(filter)}
     ORDER BY j.end_at, j.id`;
  const client = await database.pool.connect();
  let isClean = false;
  try {
    await client.query('BEGIN READ ONLY');
    await client.query(query.text, query.values);
    const fetchBatch = (): Promise<{ rows: [string][] }> =>
      client.query<[string]>({ text: `FETCH ${Math.trunc(batchSize)} FROM usage_csv`, rowMode: 'array' });
    let pending: Promise<{ rows: [string][] }> | undefined = fetchBatch();
    while (pending) {
      const { rows }: { rows: [string][] } = await pending;
      pending = rows.length === batchSize ? fetchBatch() : undefined;
      // A consumer that stops early must not leave an unawaited rejection behind.
      pending?.catch(() => undefined);
      if (rows.length === 0) continue;
      const lines = new Array<string>(rows.length);
      for (let index = 0; index < rows.length; index++) lines[index] = (rows[index] as [string])[0];
      yield `${lines.join('\n')}\n`;
    }
    await client.query('COMMIT');
    isClean = true;
  } finally {
    if (!isClean) await client.query('ROLLBACK').catch(() => undefined);
    client.release();
  }
}
