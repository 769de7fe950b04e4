import { Prisma, type ReceiptStatus } from '@prisma/client';
import type pg from 'pg';
import {
  ADVISORY_LOCK_CLASSES,
  ADVISORY_LOCK_KEYS,
  type ReleaseLock,
  tryAcquireSessionLock,
} from '../../db/advisory-locks.js';
import type { Db } from '../../db/database.js';
import { queryPrepared } from '../../db/prepared-query.js';
import { namesContainingSql, usernameContainingPattern } from '../../db/username-search.js';
import { type ListPage, type ListPlace, type ListSlice, pageOf } from '../../shared/list-place.js';
import { fromMinorUnits, lostDisputeMinorOf, returnedMinorOf } from '../payments/payment-money.js';
import { PAID_THE_RECEIPT, PAID_THE_RECEIPT_SQL } from '../payments/payments.repository.js';
import type { CpuBasis } from '../pricing/pricing.js';
import { costOfHoursSql, cpuHoursSql, GPU_HOURS_SQL, MEM_GB_HOURS_SQL } from '../pricing/pricing.sql.js';

type Client = Db | Prisma.TransactionClient;

/**
 * The job `j` is on no live (non-void) receipt: a probe of the live items by billing key
 * (the hash index; the unique btree is what stops a second live item being written).
 */
const IS_ON_NO_LIVE_RECEIPT = Prisma.sql`NOT EXISTS (
             SELECT 1 FROM receipt_items ri
              WHERE ri.cluster = j.cluster AND ri.job_key = j.job_key AND NOT ri.is_voided)`;

/**
 * FROM and WHERE of the finished jobs of a user that ended before `cutoff` and are on no
 * live (non-void) receipt. They are read through the billing queue `unbilled_jobs` (kept by
 * triggers), so the jobs billed long ago are never looked at; the job's own owner and end and
 * the NOT EXISTS probe of the live items still decide, so the queue can never make a job
 * billable: a row left with an owner or end the job no longer has (a repair racing ingestion's
 * correction of the job) only delays its billing until the next repair.
 */
function unbilledJobsOf(username: string, cutoff: Date): Prisma.Sql {
  return Prisma.sql`
      FROM unbilled_jobs u
      JOIN slurm_jobs j ON j.id = u.job_id
     WHERE u."user" = ${username}
       AND u.end_at < ${cutoff}
       AND j."user" = ${username}
       AND j.end_at < ${cutoff}
       AND j.is_terminal
       AND ${IS_ON_NO_LIVE_RECEIPT}`;
}

/** Whether the user has a finished, unbilled job that ended before `cutoff`. */
export async function hasUnbilledJobs(tx: Client, username: string, cutoff: Date): Promise<boolean> {
  const rows = await tx.$queryRaw<
    { found: boolean }[]
  >`SELECT EXISTS (SELECT 1 ${unbilledJobsOf(username, cutoff)}) AS found`;
  return rows[0]?.found === true;
}

/**
 * A job `j` that ended before `cutoff` but has not finished, on no live receipt, that a receipt leaves
 * out (countUnfinishedUnbilledJobs): one rule for Create receipt's count and the month-end run's.
 * `NOT j.is_terminal AND j.state <> 'REQUEUED'` is the WHERE of the partial index
 * slurm_jobs_unfinished_user_end_at_idx (migration 20261207000000), written the same so that the
 * planner can use it: change one, change the other, or both counts read every job ended by `cutoff`.
 */
function isUnfinishedUnbilledBefore(cutoff: Date): Prisma.Sql {
  return Prisma.sql`j.end_at < ${cutoff}
       AND NOT j.is_terminal
       AND j.state <> 'REQUEUED'
       AND ${IS_ON_NO_LIVE_RECEIPT}`;
}

/**
 * How many of the user's jobs that ended before `cutoff` a receipt leaves out because they have not
 * finished (`is_terminal` false: REQUEUE_HOLD, SPECIAL_EXIT, a state ingestion did not know) and no live
 * receipt bills: /me shows them at an estimate, so a receipt's answer says they were left out. A
 * requeued job's superseded REQUEUED run, which /me leaves out too, is not counted.
 */
export async function countUnfinishedUnbilledJobs(tx: Client, username: string, cutoff: Date): Promise<number> {
  const rows = await tx.$queryRaw<{ count: bigint }[]>`
    SELECT count(*) AS count
      FROM slurm_jobs j
     WHERE j."user" = ${username}
       AND ${isUnfinishedUnbilledBefore(cutoff)}`;
  return Number(rows[0]?.count ?? 0);
}

/**
 * countUnfinishedUnbilledJobs for every user at once, for the month-end run: one grouped query, not one
 * a user. Only users with such a job, in name order. Such jobs are not in the billing queue (it holds
 * finished jobs), so this reads slurm_jobs for the jobs ended before `cutoff`, once a run.
 */
export async function countUnfinishedUnbilledJobsByUser(
  tx: Client,
  cutoff: Date,
): Promise<{ username: string; count: number }[]> {
  const rows = await tx.$queryRaw<{ user: string; count: bigint }[]>(unfinishedUnbilledJobsByUserSql(cutoff));
  return rows.map((row) => ({ username: row.user, count: Number(row.count) }));
}

/** countUnfinishedUnbilledJobsByUser's query (a test reads its plan: that it uses the partial index). */
export function unfinishedUnbilledJobsByUserSql(cutoff: Date): Prisma.Sql {
  return Prisma.sql`
    SELECT j."user", count(*) AS count
      FROM slurm_jobs j
     WHERE ${isUnfinishedUnbilledBefore(cutoff)}
     GROUP BY j."user"
     ORDER BY j."user"`;
}

/**
 * Holds `username`'s jobs against ingestion until the transaction ends: waits for the ingestion
 * batches writing any of them to commit, and keeps new ones from writing them meanwhile. The
 * statements after it read the job rows as no ingestion can change them before this commits, so
 * the receipt bills the figures its jobs keep. Without it, a receipt made while a batch rewrote
 * one of its jobs billed the old figures while the row took the new ones: the batch decided "not
 * billed yet" from a snapshot taken before the receipt committed (docs/billing.md, "Receipts and
 * ingestion"). Exclusive, so two receipts of one user bill one after the other: the second then
 * finds the jobs the first billed gone. One lock, however many jobs the receipt bills.
 */
export async function holdUserJobsForBilling(tx: Prisma.TransactionClient, username: string): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(${ADVISORY_LOCK_CLASSES.userJobs}::int, hashtext(${username}))`;
}

/** The receipt row; its total, window start and items come from the jobs it bills. */
export interface NewReceipt {
  username: string;
  /** Local day, YYYY-MM-DD. */
  billedThrough: string;
  windowEnd: Date;
  currency: string;
  tierName: string;
  rateId: number;
  ratesSnapshot: Prisma.InputJsonValue;
  ratesLockedAt: Date;
  /**
   * Set by the caller, not by the column's default (the transaction's start on the database's
   * clock): a receipt settled as it is made needs its paid_at to be this very instant.
   */
  createdAt: Date;
  scope: 'user' | 'admin';
  createdBy: string;
  /** The month-end run making it; null for a researcher's own receipt. */
  monthEndRunId: number | null;
}

/** The rates a receipt bills at, and how its costs are rounded. */
export interface ReceiptPricing {
  basis: CpuBasis;
  cpu: Prisma.Decimal;
  gpu: Prisma.Decimal;
  mem: Prisma.Decimal;
  /** Decimal places each item's cost is rounded to (pricedDigitsOf: the minor unit, or the provider's coarser step). */
  minorDigits: number;
}

/**
 * A receipt's total is numeric(20, 4): it must stay below 10^16. Ingestion bounds each job's hours
 * (MAX_JOB_RESOURCE_HOURS) so that one item fits its own numeric(20, 4), but a few such items add up
 * past the total's, and the insert failed with "numeric field overflow": a 500 for the user, and a
 * month-end run stopped at them, every run again.
 */
export const RECEIPT_TOTAL_BOUND = '10000000000000000';

/**
 * Bills every finished, unbilled job of `receipt.username` that ended before `cutoff` in one
 * statement: the jobs are picked, priced by the SQL formulas of pricing.sql.ts (the pricing
 * core's, kept equal by tests), and the receipt and its items inserted, without a row
 * leaving PostgreSQL. Reading 10,000 jobs into Node, pricing them there and sending them back
 * took about a third of such a receipt's time (docs/performance-history.md). One item per billing
 * key: if ingestion ever stored two rows with one key, billing both would trip the live-item
 * unique index on every attempt; a job already on a live receipt raises that unique violation.
 * Returns undefined, having written nothing, when there is nothing to bill, and `tooLargeTotal`,
 * having written nothing, when the jobs' costs add up to RECEIPT_TOTAL_BOUND or more.
 */
export async function insertReceiptForUnbilledJobs(
  tx: Prisma.TransactionClient,
  receipt: NewReceipt,
  cutoff: Date,
  pricing: ReceiptPricing,
): Promise<{ id: number; total: Prisma.Decimal; itemCount: number } | { tooLargeTotal: Prisma.Decimal } | undefined> {
  const cost = costOfHoursSql(
    Prisma.sql`p.cpu_hours`,
    Prisma.sql`p.gpu_hours`,
    Prisma.sql`p.mem_gb_hours`,
    Prisma.sql`rate`,
    pricing.minorDigits,
  );
  const rows = await tx.$queryRaw<
    { id: number | null; total: string | null; itemCount: number; pricedTotal: string | null }[]
  >`
    WITH priced AS MATERIALIZED (
      SELECT p.*, ${cost} AS cost
        FROM (SELECT DISTINCT ON (j.cluster, j.job_key)
                     j.id, j.cluster, j.job_key, j.job_id, j.end_at, ${cpuHoursSql(pricing.basis)} AS cpu_hours,
                     ${GPU_HOURS_SQL} AS gpu_hours, ${MEM_GB_HOURS_SQL} AS mem_gb_hours
                ${unbilledJobsOf(receipt.username, cutoff)}
               ORDER BY j.cluster, j.job_key, j.id DESC) p
       CROSS JOIN (SELECT ${pricing.cpu.toFixed()}::numeric AS cpu, ${pricing.gpu.toFixed()}::numeric AS gpu,
                          ${pricing.mem.toFixed()}::numeric AS mem) rate
    ),
    receipt AS (
      INSERT INTO receipts (username, billed_through, window_start, window_end, status, total, currency, tier_name,
                            rate_id, rates_snapshot, rates_locked_at, scope, created_by, created_at, month_end_run_id)
      SELECT ${receipt.username}, ${receipt.billedThrough}::date, min(end_at), ${receipt.windowEnd}, 'pending',
             sum(cost), ${receipt.currency}, ${receipt.tierName}, ${receipt.rateId}::int,
             ${JSON.stringify(receipt.ratesSnapshot)}::jsonb, ${receipt.ratesLockedAt}, ${receipt.scope},
             ${receipt.createdBy}, ${receipt.createdAt}, ${receipt.monthEndRunId}::int
        FROM priced
      HAVING count(*) > 0 AND sum(cost) < ${RECEIPT_TOTAL_BOUND}::numeric
      RETURNING id, total
    ),
    items AS (
      INSERT INTO receipt_items
             (receipt_id, slurm_job_id, cluster, job_key, display_job_id, cpu_hours, gpu_hours, mem_gb_hours, cost,
              job_end_at)
      SELECT receipt.id, p.id, p.cluster, p.job_key, p.job_key, p.cpu_hours, p.gpu_hours, p.mem_gb_hours, p.cost,
             p.end_at
        FROM priced p CROSS JOIN receipt
    )
    SELECT (SELECT id FROM receipt) AS id, (SELECT total::text FROM receipt) AS total,
           (SELECT count(*) FROM priced)::int AS "itemCount", (SELECT sum(cost)::text FROM priced) AS "pricedTotal"`;
  const row = rows[0];
  if (!row || row.itemCount === 0) return undefined;
  if (row.id === null || row.total === null) return { tooLargeTotal: new Prisma.Decimal(row.pricedTotal ?? 0) };
  return { id: row.id, total: new Prisma.Decimal(row.total), itemCount: row.itemCount };
}

/**
 * Makes the billing queue exact: takes out every row that is not a finished job on no live
 * receipt (billed jobs an older release's repair put back, or that ingestion queued while a
 * receipt was billing the same key), and puts back every finished, unbilled job it lacks or
 * holds with an owner or end that is no longer the job's; returns how many rows each took.
 * The triggers keep the queue exact but for races between writers, so the month-end run
 * repairs before it lists. One statement reads every finished job once for both (a DELETE of
 * its own read them all again, 5.0-8.3 s in all against 3.6-6.1 s for 1,000,000 jobs); the
 * delete and the insert touch different rows, so they cannot meet in the one statement.
 *
 * Race-free against receipts and voids through the lock taken first, which is why it needs a
 * transaction of its own (committed before any receipt of the run). Under READ COMMITTED a
 * statement reads the snapshot taken when it starts. Without the lock, a receipt committing
 * while the repair ran was not yet on a live receipt in the repair's snapshot: the insert
 * waited for the queue rows that receipt's trigger was deleting, then, the rows gone, wrote
 * them back, and nothing took them out again. SHARE ROW EXCLUSIVE conflicts with the ROW
 * EXCLUSIVE lock every write of receipt_items takes and holds to its transaction's end, so it
 * is granted only once every transaction that wrote items has ended, and no item is written
 * until the repair commits. The repair's statement starts after that, so its snapshot holds
 * every item there is until the repair ends; a receipt that waited writes its items, and its
 * trigger deletes its jobs' rows, with snapshots taken after the repair committed. Receipts
 * take only ROW EXCLUSIVE, which does not conflict with itself, so receipts of different
 * users still run side by side; they wait for a repair while it runs. The mode does conflict
 * with itself: two month-end runs repair one after the other (two inserts over the same keys
 * in different orders could deadlock).
 */
export async function repairBillingQueue(
  tx: Prisma.TransactionClient,
): Promise<{ removedCount: number; requeuedCount: number }> {
  await tx.$executeRaw`LOCK TABLE receipt_items IN SHARE ROW EXCLUSIVE MODE`;
  const rows = await tx.$queryRaw<{ removedCount: number; requeuedCount: number }[]>`
    WITH wanted AS MATERIALIZED (
      SELECT j.id, j."user", j.end_at
        FROM slurm_jobs j
       WHERE j.is_terminal
         AND ${IS_ON_NO_LIVE_RECEIPT}
    ),
    removed AS (
      DELETE FROM unbilled_jobs u
       WHERE NOT EXISTS (SELECT 1 FROM wanted w WHERE w.id = u.job_id)
      RETURNING 1
    ),
    requeued AS (
      INSERT INTO unbilled_jobs (job_id, "user", end_at)
      SELECT w.id, w."user", w.end_at FROM wanted w
      ON CONFLICT (job_id) DO UPDATE SET "user" = EXCLUDED."user", end_at = EXCLUDED.end_at
       WHERE (unbilled_jobs."user", unbilled_jobs.end_at) IS DISTINCT FROM (EXCLUDED."user", EXCLUDED.end_at)
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM removed)::int AS "removedCount", (SELECT count(*) FROM requeued)::int AS "requeuedCount"`;
  return rows[0] ?? { removedCount: 0, requeuedCount: 0 };
}

const MONTH_END_LOCK_KEY = ADVISORY_LOCK_KEYS.monthEnd;
// The lock-holding session's application_name says who started the run and when, so that a
// refused second run can name them from any replica: an advisory lock carries only a pid.
// PostgreSQL cuts the name at 63 bytes; the epoch milliseconds keep it short for the username.
const MONTH_END_HOLDER_PREFIX = 'month-end ';
const MONTH_END_HOLDER_PATTERN = /^month-end (\d{1,15}) (.+)$/s;

/** Who holds the month-end lock: the admin who started the run and when. */
export interface MonthEndHolder {
  actor: string;
  startedAt: Date;
}

/**
 * Takes the cluster-wide month-end lock on a dedicated connection, labelled with `holder`, or
 * returns undefined when another session holds it. The returned function releases it.
 */
export function tryAcquireMonthEndLock(pool: pg.Pool, holder: MonthEndHolder): Promise<ReleaseLock | undefined> {
  return tryAcquireSessionLock(
    pool,
    MONTH_END_LOCK_KEY,
    `${MONTH_END_HOLDER_PREFIX}${holder.startedAt.getTime()} ${holder.actor}`,
  );
}

/**
 * Tries the month-end start lock (a transaction lock, held until `tx` ends): false while another
 * start holds it, without waiting. A start that waited for it inside its transaction kept a pool
 * connection meanwhile, and with a few such starts the one holding the lock found no connection
 * free for its run's (DB_POOL_MAX=2: every start failed on the pool).
 */
export async function tryLockMonthEndStart(tx: Prisma.TransactionClient): Promise<boolean> {
  const rows = await tx.$queryRaw<{ locked: boolean }[]>`
    SELECT pg_try_advisory_xact_lock(${ADVISORY_LOCK_KEYS.monthEndStart}) AS locked`;
  return rows[0]?.locked === true;
}

/**
 * The session holding the month-end lock, read from its application_name; undefined when none
 * does any more (the run ended meanwhile) or its label cannot be read.
 */
export async function findMonthEndLockHolder(pool: pg.Pool): Promise<MonthEndHolder | undefined> {
  const session = await findMonthEndLockSession(pool);
  const match = MONTH_END_HOLDER_PATTERN.exec(session?.applicationName ?? '');
  if (!match) return undefined;
  return { actor: match[2] as string, startedAt: new Date(Number(match[1])) };
}

/**
 * Whether any session holds the month-end lock, labelled or not: a run whose row says running
 * while none does was ended by its process dying, since PostgreSQL releases a session's locks.
 */
export async function isMonthEndLockHeld(pool: pg.Pool): Promise<boolean> {
  return (await findMonthEndLockSession(pool)) !== undefined;
}

/**
 * isMonthEndLockHeld on `tx`'s own connection: a start holding the start lock asks this before it
 * takes a second connection to try the month-end lock, so a start refused needs only the one.
 */
export async function isMonthEndLockHeldIn(tx: Prisma.TransactionClient): Promise<boolean> {
  const rows = await tx.$queryRawUnsafe<unknown[]>(MONTH_END_LOCK_SESSION_SQL, MONTH_END_LOCK_KEY);
  return rows.length > 0;
}

// A bigint key is stored as classid (high 32 bits) and objid (low 32 bits), objsubid 1.
const MONTH_END_LOCK_SESSION_SQL = `SELECT a.application_name
       FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        -- Advisory locks are per database: another database's month-end is not this one's.
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND l.classid::bigint = ($1::bigint >> 32) AND l.objid::bigint = ($1::bigint & 4294967295)
      LIMIT 1`;

async function findMonthEndLockSession(pool: pg.Pool): Promise<{ applicationName: string } | undefined> {
  const { rows } = await pool.query<{ application_name: string | null }>(MONTH_END_LOCK_SESSION_SQL, [
    MONTH_END_LOCK_KEY,
  ]);
  const row = rows[0];
  return row ? { applicationName: row.application_name ?? '' } : undefined;
}

/** Users who have finished, unbilled jobs that ended before `cutoff`, in name order, and whether each account is disabled (month-end run). */
export async function findUsersWithUnbilledJobs(
  tx: Client,
  cutoff: Date,
): Promise<{ username: string; isDisabled: boolean }[]> {
  // A job's user need not have an account here (ingestion stores whatever user Slurm reports), hence the LEFT JOIN.
  const rows = await tx.$queryRaw<{ user: string; isDisabled: boolean }[]>`
    SELECT billable."user", coalesce(a.is_disabled, false) AS "isDisabled"
      FROM (SELECT DISTINCT j."user"
              FROM unbilled_jobs u
              JOIN slurm_jobs j ON j.id = u.job_id
             WHERE u.end_at < ${cutoff}
               AND j.is_terminal
               AND ${IS_ON_NO_LIVE_RECEIPT}) billable
      LEFT JOIN users a ON a.username = billable."user"
     ORDER BY billable."user"`;
  return rows.map((row) => ({ username: row.user, isDisabled: row.isDisabled }));
}

const RECEIPT_SELECT = {
  id: true,
  username: true,
  billedThrough: true,
  windowStart: true,
  windowEnd: true,
  status: true,
  total: true,
  currency: true,
  tierName: true,
  rateId: true,
  ratesSnapshot: true,
  ratesLockedAt: true,
  scope: true,
  monthEndRunId: true,
  createdBy: true,
  paidAt: true,
  paymentMethod: true,
  txRef: true,
  voidReason: true,
  voidedAt: true,
  voidedBy: true,
  // The admin's page sends it back with its Void and Mark paid forms (based_on_status_changes).
  statusChanges: true,
  createdAt: true,
  // The voided receipt whose money paid it, when an admin marked it paid so: its page and JSON name it,
  // with the new money received beside it for the rest of the total (a top-up).
  paidWithReceiptId: true,
  newMoneyReceived: true,
} as const satisfies Prisma.ReceiptSelect;

export type ReceiptRow = Prisma.ReceiptGetPayload<{ select: typeof RECEIPT_SELECT }> & {
  _count: { items: number };
};

/** One receipt header, if it exists (and belongs to `username` when given). */
export async function findReceipt(db: Client, id: number, username?: string): Promise<ReceiptRow | undefined> {
  // One receipt: PostgreSQL counts its items through the index that leads with receipt_id, in the same query.
  const receipt = await db.receipt.findFirst({
    where: { id, ...(username !== undefined ? { username } : {}) },
    select: { ...RECEIPT_SELECT, _count: { select: { items: true } } },
  });
  return receipt ?? undefined;
}

/**
 * The CPU, GPU and memory hours a receipt bills in all, summed over every item in one query through
 * the index that leads with receipt_id: its total row and JSON give them beside the total, which a
 * paged receipt's page could not (a grant office added up the CSV for them).
 */
export async function sumItemHours(
  db: Client,
  receiptId: number,
): Promise<{ cpuHours: Prisma.Decimal; gpuHours: Prisma.Decimal; memGbHours: Prisma.Decimal }> {
  const sums = await db.receiptItem.aggregate({
    where: { receiptId },
    _sum: { cpuHours: true, gpuHours: true, memGbHours: true },
  });
  const zero = new Prisma.Decimal(0);
  return {
    cpuHours: sums._sum.cpuHours ?? zero,
    gpuHours: sums._sum.gpuHours ?? zero,
    memGbHours: sums._sum.memGbHours ?? zero,
  };
}

const ITEM_WITH_JOB_COLUMNS = Prisma.sql`ri.id, ri.cluster, ri.display_job_id AS "displayJobId",
  ri.cpu_hours AS "cpuHours", ri.gpu_hours AS "gpuHours", ri.mem_gb_hours AS "memGbHours", ri.cost,
  ri.job_end_at AS "billedEndAt", j.name AS "jobName", j.end_at AS "jobEndAt"`;

/**
 * One page of a receipt's items, in the order their jobs ended (ties by item id, which follows
 * the job's key), each with its job's name and end time (as findItemsBatch). Listed in billing
 * order, the end times looked shuffled. OFFSET is fine here: a page is 500 items of one
 * receipt, read in that order through its (receipt_id, job_end_at, id) index.
 */
export async function listItems(
  db: Client,
  receiptId: number,
  page: { offset: number; limit: number },
): Promise<ItemWithJob[]> {
  // The page is picked before the join: joined first, every skipped item's job was looked up too.
  return db.$queryRaw<ItemWithJob[]>`
    SELECT ${ITEM_WITH_JOB_COLUMNS}
      FROM (SELECT * FROM receipt_items
             WHERE receipt_id = ${receiptId}
             ORDER BY job_end_at, id
             LIMIT ${page.limit} OFFSET ${page.offset}) ri
      LEFT JOIN slurm_jobs j ON j.id = ri.slurm_job_id
     ORDER BY ri.job_end_at, ri.id`;
}

/** A receipt item with the name and end time of the job it billed (null if that row is gone). */
export interface ItemWithJob {
  id: bigint;
  cluster: string;
  displayJobId: string;
  cpuHours: Prisma.Decimal;
  gpuHours: Prisma.Decimal;
  memGbHours: Prisma.Decimal;
  cost: Prisma.Decimal;
  /** The job's end time when it was billed: the items' order (with id), and findItemsBatch's cursor. */
  billedEndAt: Date;
  jobName: string | null;
  jobEndAt: Date | null;
}

/** Where a batch of a receipt's items starts: after this item, in (billedEndAt, id) order. */
export type ItemCursor = Pick<ItemWithJob, 'billedEndAt' | 'id'>;

/**
 * The next `limit` items of a receipt after item `after` (keyset, in listItems' order, for the
 * items CSV and the printable receipt), each with its job's name and end time: the receipt keeps
 * only the job's id, and a finance officer matching the list to a researcher's work needs both.
 */
export async function findItemsBatch(
  db: Client,
  receiptId: number,
  after: ItemCursor | undefined,
  limit: number,
): Promise<ItemWithJob[]> {
  const afterItem =
    after === undefined ? Prisma.empty : Prisma.sql`AND (ri.job_end_at, ri.id) > (${after.billedEndAt}, ${after.id})`;
  return db.$queryRaw<ItemWithJob[]>`
    SELECT ${ITEM_WITH_JOB_COLUMNS}
      FROM receipt_items ri
      LEFT JOIN slurm_jobs j ON j.id = ri.slurm_job_id
     WHERE ri.receipt_id = ${receiptId} ${afterItem}
     ORDER BY ri.job_end_at, ri.id
     LIMIT ${limit}`;
}

export interface ReceiptFilter {
  status?: ReceiptStatus | undefined;
  username?: string | undefined;
  /** Receipts of any of these usernames (a whole name typed, in any case); none matches an empty list. */
  usernames?: string[] | undefined;
  /**
   * Receipts whose username contains this text in any case (part of a name typed): one pattern in each
   * query. The names it matched were spelled out as `username IN (...)`, 1,100 parameters in each of the
   * billing page's queries for part of 1,100 names, each query planned anew (0.46-1.5 s a page).
   */
  usernameContaining?: string | undefined;
  createdFrom?: Date | undefined;
  createdBefore?: Date | undefined;
  monthEndRunId?: number | undefined;
}

/**
 * The billing list's filter as SQL over receipts `r` (TRUE when it has no part). Every read of the
 * list's receipts goes through it: the page (listReceipts), the count a HEAD checks, the totals under
 * the list and /admin/receipts.csv, so the cards and the CSV sum and list the rows the page shows. Only
 * which parts are given shapes the text, so a list's statements are a bounded set.
 */
function whereSqlOf(filter: ReceiptFilter): Prisma.Sql {
  const parts: Prisma.Sql[] = [];
  if (filter.status) parts.push(Prisma.sql`r.status = ${filter.status}::"ReceiptStatus"`);
  if (filter.monthEndRunId !== undefined) parts.push(Prisma.sql`r.month_end_run_id = ${filter.monthEndRunId}`);
  if (filter.username) parts.push(Prisma.sql`r.username = ${filter.username}`);
  if (filter.usernames) parts.push(Prisma.sql`r.username = ANY (${filter.usernames}::text[])`);
  if (filter.usernameContaining !== undefined) {
    parts.push(Prisma.sql`r.username ILIKE ${usernameContainingPattern(filter.usernameContaining)}`);
  }
  if (filter.createdFrom) parts.push(Prisma.sql`r.created_at >= ${filter.createdFrom}`);
  if (filter.createdBefore) parts.push(Prisma.sql`r.created_at < ${filter.createdBefore}`);
  return parts.length === 0 ? Prisma.sql`TRUE` : Prisma.join(parts, ' AND ');
}

/**
 * Receipts `r` after (`<`) or before (`>`) the place (`at`, `id`) in the list's order (created_at, id),
 * or at it too (`<=`, `>=`). The bound on created_at alone beside the pair is what an index on
 * created_at (all receipts, a user's, a status's, a run's) starts its scan at, so a page deep in the
 * list reads its own rows, not every row before them as OFFSET did; the pair decides only among
 * receipts of the same millisecond.
 */
function placeSqlOf(at: Prisma.Sql, id: Prisma.Sql, op: '<' | '<=' | '>' | '>='): Prisma.Sql {
  const outer = Prisma.raw(op.startsWith('<') ? '<' : '>');
  return Prisma.sql`r.created_at ${Prisma.raw(op.startsWith('<') ? '<=' : '>=')} ${at}
    AND (r.created_at ${outer} ${at} OR (r.created_at = ${at} AND r.id ${Prisma.raw(op)} ${id}))`;
}

/**
 * The usernames of receipts that contain `search` in any case (the billing page's User filter), in name
 * order. Read as a loose index scan of receipts (username, created_at): one probe of the index per
 * username that has a receipt, not a read of every receipt. The page names them; its queries read the
 * receipts of part of a name by the same pattern (ReceiptFilter.usernameContaining), not by these names.
 */
export async function findReceiptUsernamesContaining(db: Client, search: string): Promise<string[]> {
  const rows = await db.$queryRaw<{ name: string }[]>(namesContainingSql('receipts', 'username', search));
  return rows.map((row) => row.name);
}

/**
 * Up to `limit` receipts the billing list's filter matches, newest first (created_at, then id, as the list),
 * after `after` (the last of the batch before): a batch of /admin/receipts.csv, read from the list's indexes
 * by place, as its Older pages are, never by OFFSET.
 */
export async function findReceiptBatch(
  db: Client,
  filter: ReceiptFilter,
  after: (ListPlace & { at: Date }) | undefined,
  limit: number,
) {
  const afterPlace = after
    ? Prisma.sql`AND ${placeSqlOf(Prisma.sql`${after.at}::timestamptz`, Prisma.sql`${after.id}::int`, '<')}`
    : Prisma.empty;
  const rows = await db.$queryRaw<
    Array<{
      id: number;
      username: string;
      status: ReceiptStatus;
      total: string;
      currency: string;
      tierName: string;
      billedThrough: Date;
      createdAt: Date;
      paidAt: Date | null;
      paymentMethod: string | null;
      monthEndRunId: number | null;
    }>
  >`
    SELECT r.id, r.username, r.status::text AS status, r.total::text AS total, r.currency, r.tier_name AS "tierName",
           (r.billed_through::timestamp AT TIME ZONE 'UTC') AS "billedThrough", r.created_at AS "createdAt",
           r.paid_at AS "paidAt", r.payment_method AS "paymentMethod", r.month_end_run_id AS "monthEndRunId"
      FROM receipts r
     WHERE ${whereSqlOf(filter)} ${afterPlace}
     ORDER BY r.created_at DESC, r.id DESC
     LIMIT ${limit}::int`;
  return rows.map((row) => ({ ...row, total: new Prisma.Decimal(row.total) }));
}

/** How many receipts match, without reading one. */
export async function countReceipts(db: Client, filter: ReceiptFilter): Promise<number> {
  const rows = await db.$queryRaw<{ count: number }[]>`
    SELECT count(*)::int AS count FROM receipts r WHERE ${whereSqlOf(filter)}`;
  return rows[0]?.count ?? 0;
}

/** A receipt's place in the lists (the page links' older= and newer=). */
export function placeOfReceipt(receipt: { createdAt: Date; id: number }): ListPlace & { at: Date } {
  return { at: receipt.createdAt, id: receipt.id };
}

/**
 * Whether a receipt (of `username`, when given) is at `place`: a place a page link carries names a
 * receipt the list showed, which stays there (receipts are voided, never deleted) whatever its
 * status now, so one that names none was edited by hand.
 */
export async function isReceiptPlace(db: Client, place: ListPlace, username?: string): Promise<boolean> {
  if (place.at === undefined) return false;
  const found = await db.receipt.findFirst({
    where: { id: place.id, createdAt: place.at, ...(username === undefined ? {} : { username }) },
    select: { id: true },
  });
  return found !== null;
}

/** RECEIPT_SELECT's columns of receipts `r`, named as Prisma names them. */
const RECEIPT_COLUMNS = Prisma.raw(`r.id, r.username,
  (r.billed_through::timestamp AT TIME ZONE 'UTC') AS "billedThrough",
  r.window_start AS "windowStart", r.window_end AS "windowEnd", r.status::text AS status,
  r.total::text AS total, r.currency, r.tier_name AS "tierName", r.rate_id AS "rateId",
  r.rates_snapshot AS "ratesSnapshot", r.rates_locked_at AS "ratesLockedAt", r.scope,
  r.month_end_run_id AS "monthEndRunId", r.created_by AS "createdBy", r.paid_at AS "paidAt",
  r.payment_method AS "paymentMethod", r.tx_ref AS "txRef", r.void_reason AS "voidReason",
  r.voided_at AS "voidedAt", r.voided_by AS "voidedBy", r.status_changes AS "statusChanges",
  r.created_at AS "createdAt", r.paid_with_receipt_id AS "paidWithReceiptId",
  r.new_money_received::text AS "newMoneyReceived"`);

type ReceiptPageText = Omit<ReceiptRow, '_count' | 'total' | 'newMoneyReceived'> & {
  total: string;
  newMoneyReceived: string | null;
  itemCount: number;
};

/**
 * One page of the receipts matching, newest first (created_at, then id), `limit` of them: from an
 * offset (`?page=`), or after or before a place in the list (keyset: receipts made or voided out of
 * the filter meanwhile move no row of it), with the number matching and the places of its links.
 * One prepared statement (src/db/prepared-query.ts) reads the rows, their item counts and the
 * counts, so "rows X–Y of N" counts the rows it shows (one statement, one snapshot) without a
 * transaction: read through Prisma, in a REPEATABLE READ one, My receipts made seven statements,
 * and Prisma compiling each call was a quarter of the worker's time (docs/performance-history.md).
 * The counts ride on every row, and on one row of nulls when the page is empty. `isPlace` says whether
 * the place an Older or Newer link gave names a receipt (of `filter.username`, when given), as
 * isReceiptPlace does: true for a page by offset. Items are counted
 * for the page's rows alone, through the index that leads with receipt_id: Prisma's `_count` on a
 * list joined a count of every item in the table, grouped (220 ms for 25 receipts over 1,000,000).
 */
export async function listReceipts(
  pool: pg.Pool,
  filter: ReceiptFilter,
  slice: ListSlice,
  limit: number,
): Promise<ListPage<ReceiptRow> & { isPlace: boolean }> {
  const where = whereSqlOf(filter);
  const newestFirst = Prisma.sql`ORDER BY r.created_at DESC, r.id DESC`;
  let ctes = Prisma.empty;
  let pageWhere = where;
  let offset = 0;
  let newerCount: Prisma.Sql;
  let isPlace = Prisma.sql`TRUE`;
  const place = 'older' in slice ? slice.older : 'newer' in slice ? slice.newer : undefined;
  if (place) {
    // Any receipt's place will do whatever its status now (isReceiptPlace), so only the user narrows it.
    const ofUser = filter.username ? Prisma.sql`AND r.username = ${filter.username}` : Prisma.empty;
    isPlace =
      place.at === undefined
        ? Prisma.sql`FALSE`
        : Prisma.sql`EXISTS (SELECT 1 FROM receipts r
                              WHERE r.id = ${place.id}::int AND r.created_at = ${place.at}::timestamptz ${ofUser})`;
  }
  if ('older' in slice) {
    const at = Prisma.sql`${slice.older.at ?? new Date(0)}::timestamptz`;
    const id = Prisma.sql`${slice.older.id}::int`;
    pageWhere = Prisma.sql`${where} AND ${placeSqlOf(at, id, '<')}`;
    newerCount = Prisma.sql`(SELECT count(*) FROM receipts r WHERE ${where} AND ${placeSqlOf(at, id, '>=')})`;
  } else if ('newer' in slice) {
    // The `limit` receipts just newer than the place, oldest first; when there are more than that, the
    // page ends at the newest of them (`top`) and reads down from it, else it is the first page. The
    // first page, full, rather than a short page at the top.
    const at = Prisma.sql`${slice.newer.at ?? new Date(0)}::timestamptz`;
    const id = Prisma.sql`${slice.newer.id}::int`;
    ctes = Prisma.sql`WITH newer AS MATERIALIZED (
        SELECT r.created_at, r.id FROM receipts r WHERE ${where} AND ${placeSqlOf(at, id, '>')}
         ORDER BY r.created_at ASC, r.id ASC LIMIT ${limit + 1}::int),
      top AS MATERIALIZED (
        SELECT n.created_at, n.id FROM newer n WHERE (SELECT count(*) FROM newer) > ${limit}::int
         ORDER BY n.created_at ASC, n.id ASC OFFSET ${limit - 1}::int LIMIT 1)`;
    const topAt = Prisma.sql`(SELECT t.created_at FROM top t)`;
    const topId = Prisma.sql`(SELECT t.id FROM top t)`;
    pageWhere = Prisma.sql`${where} AND r.created_at <= coalesce(${topAt}, 'infinity')
      AND (NOT EXISTS (SELECT 1 FROM top) OR r.created_at < ${topAt} OR (r.created_at = ${topAt} AND r.id <= ${topId}))`;
    newerCount = Prisma.sql`(SELECT count(*) FROM receipts r WHERE ${where} AND ${placeSqlOf(topAt, topId, '>')})`;
  } else {
    offset = slice.offset;
    newerCount = Prisma.sql`${offset}::int`;
  }
  const rows = await queryPrepared<
    { count: string; newerCount: string; isPlace: boolean } & (
      | { [Column in keyof ReceiptPageText]: null }
      | ReceiptPageText
    )
  >(
    pool,
    Prisma.sql`${ctes}
    SELECT c.count::text AS count, coalesce(c."newerCount", 0)::text AS "newerCount", c."isPlace", p.*,
           (SELECT count(*)::int FROM receipt_items i WHERE i.receipt_id = p.id) AS "itemCount"
      FROM (SELECT (SELECT count(*) FROM receipts r WHERE ${where}) AS count, ${newerCount} AS "newerCount",
                   ${isPlace} AS "isPlace") c
      LEFT JOIN (SELECT ${RECEIPT_COLUMNS} FROM receipts r WHERE ${pageWhere}
                  ${newestFirst} LIMIT ${limit + 1}::int OFFSET ${offset}::int) p ON TRUE
     ORDER BY p."createdAt" DESC, p.id DESC`,
  );
  const first = rows[0];
  const receipts: ReceiptRow[] = [];
  for (const { count: _count, newerCount: _newerCount, isPlace: _isPlace, itemCount, ...row } of rows) {
    if (row.id === null) continue;
    const receipt = row as Omit<ReceiptPageText, 'itemCount'>;
    receipts.push({
      ...receipt,
      status: receipt.status as ReceiptStatus,
      total: new Prisma.Decimal(receipt.total),
      newMoneyReceived: receipt.newMoneyReceived === null ? null : new Prisma.Decimal(receipt.newMoneyReceived),
      _count: { items: itemCount ?? 0 },
    });
  }
  const page = pageOf(
    {
      rows: receipts.slice(0, limit),
      count: Number(first?.count ?? 0),
      newerCount: Number(first?.newerCount ?? 0),
      hasOlder: receipts.length > limit,
    },
    limit,
    placeOfReceipt,
  );
  return { ...page, isPlace: first?.isPlace ?? false };
}

/**
 * Of a payment's failed refunds, those told before any report of them: its refunded total does not
 * count them yet, so nothing of them is taken out of it (returnedMinorOf).
 */
function uncountedOf(payment: { failedRefunds: { amountMinor: bigint; isInReportedTotal: boolean }[] }): bigint {
  return payment.failedRefunds.reduce((sum, failed) => (failed.isInReportedTotal ? sum : sum + failed.amountMinor), 0n);
}

/**
 * What the online payment that paid each of these paid receipts received, less what went back of
 * it (refunds less those that failed, and a lost dispute; returnedMinorOf), by receipt id (minor
 * units; a refund is in the received currency). Receipts paid by hand, and payments whose provider
 * did not say what it received, are not in it: the billing page's paid card sums the same.
 */
export async function findReceivedOfPaid(db: Client, receiptIds: number[]) {
  if (receiptIds.length === 0) return new Map<number, { receivedMinor: bigint; currency: string }>();
  const payments = await db.payment.findMany({
    where: { ...PAID_THE_RECEIPT, receiptId: { in: receiptIds }, receipt: { status: 'paid' } },
    select: {
      receiptId: true,
      receivedMinor: true,
      receivedCurrency: true,
      refundedMinor: true,
      disputeStatus: true,
      disputedMinor: true,
      // A refund that failed at the provider took nothing back: the paid card counts it as stayed.
      failedRefunds: { select: { amountMinor: true, isInReportedTotal: true } },
    },
  });
  const received = new Map<number, { receivedMinor: bigint; currency: string }>();
  for (const payment of payments) {
    if (payment.receivedMinor === null || payment.receivedCurrency === null) continue;
    const failedMinor = payment.failedRefunds.reduce((sum, failed) => sum + failed.amountMinor, 0n);
    const returned =
      returnedMinorOf(payment.refundedMinor, failedMinor, lostDisputeMinorOf(payment), uncountedOf(payment)) ?? 0n;
    received.set(payment.receiptId, {
      receivedMinor: payment.receivedMinor - returned,
      currency: payment.receivedCurrency,
    });
  }
  return received;
}

/**
 * The paid receipts under a filter (the status part of it ignored) marked paid with the money of a
 * voided receipt (paid_with_receipt_id), with any new money received with it: what they brought in is
 * that money as it stands now, which a refund or lost dispute of it since leaves short of their total.
 */
export async function findPaidWithVoidedMoney(db: Client, filter: ReceiptFilter) {
  const rows = await db.$queryRaw<
    { id: number; total: string; currency: string; paidWithReceiptId: number | null; newMoneyReceived: string | null }[]
  >`
    SELECT r.id, r.total::text AS total, r.currency, r.paid_with_receipt_id AS "paidWithReceiptId",
           r.new_money_received::text AS "newMoneyReceived"
      FROM receipts r
     WHERE ${whereSqlOf({ ...filter, status: 'paid' })} AND r.paid_with_receipt_id IS NOT NULL`;
  return rows.map((row) => ({
    ...row,
    total: new Prisma.Decimal(row.total),
    newMoneyReceived: row.newMoneyReceived === null ? null : new Prisma.Decimal(row.newMoneyReceived),
  }));
}

/**
 * Sum and count of receipts by status under a filter (the status part of it ignored), in the billing
 * page's card order: status as the enum declares it (pending, paid, void), then currency. Without the
 * ORDER BY, the JSON's totals came back in whatever order the hash aggregate gave, call to call.
 */
export async function sumByStatus(db: Client, filter: ReceiptFilter) {
  const rows = await db.$queryRaw<{ status: ReceiptStatus; currency: string; total: string; count: number }[]>`
    SELECT r.status::text AS status, r.currency, sum(r.total)::text AS total, count(*)::int AS count
      FROM receipts r
     WHERE ${whereSqlOf({ ...filter, status: undefined })}
     GROUP BY r.status, r.currency
     ORDER BY r.status, r.currency`;
  return rows.map((row) => ({ ...row, total: new Prisma.Decimal(row.total) }));
}

/**
 * A user's pending receipts, counted and summed by currency (in currency order): what disabling
 * them leaves waiting, which they can no longer sign in to see or pay.
 */
export async function sumPendingOf(db: Client, username: string) {
  const groups = await db.receipt.groupBy({
    by: ['currency'],
    where: { username, status: 'pending' },
    orderBy: { currency: 'asc' },
    _sum: { total: true },
    _count: { _all: true },
  });
  return groups.map((group) => ({
    currency: group.currency,
    total: group._sum.total ?? new Prisma.Decimal(0),
    count: group._count._all,
  }));
}

/**
 * What the paid receipts under a filter (the status part of it ignored) brought in: the totals,
 * by currency, of those marked paid by hand (the admin recorded the receipt as paid in full),
 * and the sums, by received currency, of what the online payments that paid the others
 * received, less what the provider refunded of it and did not fail (minor units; a null currency counts those
 * whose provider did not say).
 */
export async function sumReceivedOfPaid(db: Client, filter: ReceiptFilter) {
  const paid = whereSqlOf({ ...filter, status: 'paid' });
  const [byHand, online, failedRefundRows] = await Promise.all([
    db.$queryRaw<{ currency: string; total: string }[]>`
      SELECT r.currency, sum(r.total)::text AS total
        FROM receipts r
       WHERE ${paid} AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.receipt_id = r.id AND ${PAID_THE_RECEIPT_SQL})
       GROUP BY r.currency`,
    // A refund is in the currency the payment received (the webhook refuses any other).
    db.$queryRaw<{ currency: string | null; receivedMinor: string; refundedMinor: string; count: number }[]>`
      SELECT p.received_currency AS currency, coalesce(sum(p.received_minor), 0)::text AS "receivedMinor",
             coalesce(sum(p.refunded_minor), 0)::text AS "refundedMinor", count(*)::int AS count
        FROM payments p
        JOIN receipts r ON r.id = p.receipt_id
       WHERE ${paid} AND ${PAID_THE_RECEIPT_SQL}
       GROUP BY p.received_currency`,
    // The few of those payments a refund of which failed at the provider: that money stayed. A row each
    // failed refund, gathered by payment below.
    db.$queryRaw<
      {
        id: number;
        receivedCurrency: string | null;
        refundedMinor: bigint | null;
        disputeStatus: string | null;
        disputedMinor: bigint | null;
        amountMinor: bigint;
        isInReportedTotal: boolean;
      }[]
    >`
      SELECT p.id, p.received_currency AS "receivedCurrency", p.refunded_minor AS "refundedMinor",
             p.dispute_status AS "disputeStatus", p.disputed_minor AS "disputedMinor",
             f.amount_minor AS "amountMinor", f.is_in_reported_total AS "isInReportedTotal"
        FROM payments p
        JOIN receipts r ON r.id = p.receipt_id
        JOIN payment_failed_refunds f ON f.payment_id = p.id
       WHERE ${paid} AND ${PAID_THE_RECEIPT_SQL}`,
  ]);
  const failedRefunds = new Map<
    number,
    Omit<(typeof failedRefundRows)[number], 'amountMinor' | 'isInReportedTotal'> & {
      failedRefunds: { amountMinor: bigint; isInReportedTotal: boolean }[];
    }
  >();
  for (const { amountMinor, isInReportedTotal, ...payment } of failedRefundRows) {
    const gathered = failedRefunds.get(payment.id) ?? { ...payment, failedRefunds: [] };
    gathered.failedRefunds.push({ amountMinor, isInReportedTotal });
    failedRefunds.set(payment.id, gathered);
  }
  // What each failed refund keeps from counting as gone: the refunded total less what was returned.
  const stayedAfterFailure = new Map<string | null, bigint>();
  for (const payment of failedRefunds.values()) {
    const failedMinor = payment.failedRefunds.reduce((sum, failed) => sum + failed.amountMinor, 0n);
    const returned = returnedMinorOf(
      payment.refundedMinor,
      failedMinor,
      lostDisputeMinorOf(payment),
      uncountedOf(payment),
    );
    const kept = (payment.refundedMinor ?? 0n) - (returned ?? 0n);
    stayedAfterFailure.set(payment.receivedCurrency, (stayedAfterFailure.get(payment.receivedCurrency) ?? 0n) + kept);
  }
  return {
    byHand: byHand.map((group) => ({ currency: group.currency, total: new Prisma.Decimal(group.total) })),
    online: online.map((group) => ({
      currency: group.currency,
      // What stayed: a partial refund of a payment its receipt stays paid from went back to the payer.
      receivedMinor:
        BigInt(group.receivedMinor) - BigInt(group.refundedMinor) + (stayedAfterFailure.get(group.currency) ?? 0n),
      count: group.count,
    })),
  };
}

/** Moves a receipt from one of `from` to `data.status`; false when it was not in one of them. */
export async function transitionReceipt(
  tx: Prisma.TransactionClient,
  id: number,
  from: ReceiptStatus[],
  data: Prisma.ReceiptUncheckedUpdateManyInput,
): Promise<boolean> {
  // Counted, so a form can tell a receipt whose status changed and came back (paid, refunded in
  // full, paid again) from one that never changed: the void and mark paid forms' based_on_status_changes.
  const result = await tx.receipt.updateMany({
    where: { id, status: { in: from } },
    data: { ...data, statusChanges: { increment: 1 } },
  });
  return result.count === 1;
}

/** Frees a voided receipt's jobs: the partial unique index no longer covers its items. */
export async function voidItems(tx: Prisma.TransactionClient, receiptId: number): Promise<number> {
  const result = await tx.receiptItem.updateMany({ where: { receiptId }, data: { isVoided: true } });
  return result.count;
}

/** Where a paid.csv export got to: the last line's paid_at, receipt and payment (0 for a receipt's own line). */
export interface PaidLineCursor {
  paidAt: Date;
  receiptId: number;
  paymentId: number;
}

/**
 * The lines of paid.csv with paid_at in [from, before), oldest first, in batches: one per
 * receipt paid, voided since or not (it keeps paid_at), and one per online payment that paid a
 * receipt and was refunded in full since (the receipt then lost its paid_at, and may have been
 * paid again: that is the receipt's own line, in its own period). So the export of a period
 * already reconciled loses no line when one of its receipts is voided or refunded later. Each
 * comes with the online payment that paid it, if any: for a receipt, the one its method and
 * reference name (as the receipt page finds it), which stays so once a void has held it for review.
 * Ordered by (paid_at, receipt, payment), a receipt's own line before a refunded payment's.
 */
export async function findPaidBatch(
  db: Client,
  window: { from: Date; before: Date },
  after: PaidLineCursor | undefined,
  limit: number,
) {
  const [receipts, refunded] = await Promise.all([
    findPaidReceipts(db, window, after, limit),
    findRefundedPayments(db, window, after, limit),
  ]);
  // Both are in line order: the first `limit` lines of the two are the batch.
  return [...receipts, ...refunded]
    .sort(
      (a, b) =>
        a.paidAt.getTime() - b.paidAt.getTime() ||
        a.id - b.id ||
        (a.refundedPaymentId ?? 0) - (b.refundedPaymentId ?? 0),
    )
    .slice(0, limit);
}

/** paid.csv's receipt lines (see findPaidBatch). */
async function findPaidReceipts(
  db: Client,
  window: { from: Date; before: Date },
  after: PaidLineCursor | undefined,
  limit: number,
) {
  const receipts = await db.receipt.findMany({
    where: {
      status: { in: ['paid', 'void'] },
      paidAt: { gte: window.from, lt: window.before },
      // A receipt's line sorts before the refunded payments' lines of the same moment and receipt.
      ...(after
        ? { OR: [{ paidAt: { gt: after.paidAt } }, { paidAt: after.paidAt, id: { gt: after.receiptId } }] }
        : {}),
    },
    orderBy: [{ paidAt: 'asc' }, { id: 'asc' }],
    take: limit,
    select: {
      id: true,
      username: true,
      paidAt: true,
      paymentMethod: true,
      txRef: true,
      total: true,
      currency: true,
      tierName: true,
      billedThrough: true,
      createdAt: true,
      voidedAt: true,
      voidReason: true,
      // Paid with a voided receipt's money: its line carries none (that receipt's line has it), only the
      // new money received beside it for the rest of the total.
      paidWithReceiptId: true,
      newMoneyReceived: true,
      // Every payment that reached the provider, to pick the one the receipt records (a receipt has a few at most).
      payments: {
        where: { externalPaymentId: { not: null } },
        select: {
          id: true,
          provider: true,
          externalPaymentId: true,
          receivedMinor: true,
          receivedCurrency: true,
          refundedMinor: true,
          refundedCurrency: true,
          // A lost dispute is in the refunded total; no failed refund undoes it.
          disputeStatus: true,
          disputedMinor: true,
          disputedCurrency: true,
          disputedAt: true,
          // Refunds that failed at the provider went nowhere: paid.csv counts only what was returned.
          failedRefunds: { select: { amountMinor: true, isInReportedTotal: true } },
          // Resolved as refunded by the billing team: all it received went back (billingTeamRefundOf).
          status: true,
          reviewOutcome: true,
          reviewedBy: true,
        },
      },
    },
  });
  return receipts.flatMap(({ payments, paidAt, ...receipt }) => {
    if (!paidAt) return [];
    const paidWith = payments.find(
      (payment) => payment.provider === receipt.paymentMethod && payment.externalPaymentId === receipt.txRef,
    );
    return [
      {
        ...receipt,
        paidAt,
        refundedPaymentId: null,
        paidWith: paidWith
          ? {
              id: paidWith.id,
              receivedMinor: paidWith.receivedMinor,
              receivedCurrency: paidWith.receivedCurrency,
              refundedMinor: paidWith.refundedMinor,
              refundedCurrency: paidWith.refundedCurrency,
              failedRefundMinor: paidWith.failedRefunds.reduce((sum, failed) => sum + failed.amountMinor, 0n),
              uncountedFailedRefundMinor: uncountedOf(paidWith),
              disputeStatus: paidWith.disputeStatus,
              disputedMinor: paidWith.disputedMinor,
              disputedCurrency: paidWith.disputedCurrency,
              disputedAt: paidWith.disputedAt,
              isRefundedByBillingTeam:
                paidWith.status === 'resolved' &&
                paidWith.reviewOutcome === 'refunded' &&
                !(paidWith.reviewedBy ?? '').startsWith('provider:'),
            }
          : null,
      },
    ];
  });
}

/**
 * paid.csv's lines of the payments that paid a receipt and were refunded in full since (see
 * findPaidBatch): those whose receipt, paid or void, no longer names them as what paid it. The
 * line is the receipt's as that payment left it: its paid_at, the provider and its payment id;
 * the receipt's later void, if any, is not about this money (it had gone back to the payer).
 */
async function findRefundedPayments(
  db: Client,
  window: { from: Date; before: Date },
  after: PaidLineCursor | undefined,
  limit: number,
) {
  const rows = await db.$queryRaw<
    {
      paymentId: number;
      provider: string;
      externalPaymentId: string | null;
      paidAt: Date;
      receivedMinor: bigint | null;
      receivedCurrency: string | null;
      refundedMinor: bigint | null;
      refundedCurrency: string | null;
      failedRefundMinor: bigint | null;
      uncountedFailedRefundMinor: bigint | null;
      disputeStatus: string | null;
      disputedMinor: bigint | null;
      disputedCurrency: string | null;
      disputedAt: Date | null;
      id: number;
      username: string;
      total: Prisma.Decimal;
      currency: string;
      tierName: string;
      billedThrough: Date;
      createdAt: Date;
    }[]
  >`
    SELECT p.id AS "paymentId", p.provider, p.external_payment_id AS "externalPaymentId", p.paid_at AS "paidAt",
           p.received_minor AS "receivedMinor", p.received_currency AS "receivedCurrency",
           p.refunded_minor AS "refundedMinor", p.refunded_currency AS "refundedCurrency",
           (SELECT SUM(f.amount_minor) FROM payment_failed_refunds f WHERE f.payment_id = p.id)::bigint
             AS "failedRefundMinor",
           (SELECT SUM(f.amount_minor) FROM payment_failed_refunds f
             WHERE f.payment_id = p.id AND NOT f.is_in_reported_total)::bigint AS "uncountedFailedRefundMinor",
           p.dispute_status::text AS "disputeStatus", p.disputed_minor AS "disputedMinor",
           p.disputed_currency AS "disputedCurrency", p.disputed_at AS "disputedAt",
           r.id, r.username, r.total, r.currency, r.tier_name AS "tierName",
           r.billed_through AS "billedThrough", r.created_at AS "createdAt"
      FROM payments p
      JOIN receipts r ON r.id = p.receipt_id
     WHERE p.paid_at >= ${window.from} AND p.paid_at < ${window.before}
       AND NOT (r.status IN ('paid', 'void')
                AND r.payment_method IS NOT DISTINCT FROM p.provider
                AND r.tx_ref IS NOT DISTINCT FROM p.external_payment_id)
       ${after ? Prisma.sql`AND (p.paid_at, p.receipt_id, p.id) > (${after.paidAt}, ${after.receiptId}, ${after.paymentId})` : Prisma.empty}
     ORDER BY p.paid_at, p.receipt_id, p.id
     LIMIT ${limit}`;
  return rows.map((row) => ({
    id: row.id,
    username: row.username,
    paidAt: row.paidAt,
    paymentMethod: row.provider,
    txRef: row.externalPaymentId,
    total: row.total,
    currency: row.currency,
    tierName: row.tierName,
    billedThrough: row.billedThrough,
    createdAt: row.createdAt,
    voidedAt: null,
    voidReason: null,
    refundedPaymentId: row.paymentId,
    paidWith: {
      id: row.paymentId,
      receivedMinor: row.receivedMinor,
      receivedCurrency: row.receivedCurrency,
      refundedMinor: row.refundedMinor,
      refundedCurrency: row.refundedCurrency,
      failedRefundMinor: row.failedRefundMinor,
      uncountedFailedRefundMinor: row.uncountedFailedRefundMinor,
      disputeStatus: row.disputeStatus,
      disputedMinor: row.disputedMinor,
      disputedCurrency: row.disputedCurrency,
      disputedAt: row.disputedAt,
    },
  }));
}

/** How many receipts record that month-end run `runId` made them. */
export function countReceiptsOfMonthEndRun(db: Client, runId: number): Promise<number> {
  return db.receipt.count({ where: { monthEndRunId: runId } });
}

/**
 * How many receipts name month-end run `runId`, and their cut-off (each bills up to the end of the
 * run's day in the APP_TZ it ran under; null when it made none): the run keeps only the day.
 */
export async function findReceiptsOfMonthEndRunSummary(db: Client, runId: number) {
  const found = await db.receipt.aggregate({
    where: { monthEndRunId: runId },
    _count: { _all: true },
    _min: { windowEnd: true },
  });
  return { count: found._count._all, windowEnd: found._min.windowEnd };
}

/**
 * The id and creation time of `username`'s newest receipt, not void, that bills jobs up to `before` (a local day) or later
 * and bills at least one job that ended before `cutoff` (the end of that day); null if none. A receipt
 * that bills only later jobs does not hold the ones asked for.
 */
export async function findNewestReceiptBillingThrough(db: Client, username: string, before: string, cutoff: Date) {
  const receipt = await db.receipt.findFirst({
    where: {
      username,
      status: { not: 'void' },
      billedThrough: { gte: new Date(`${before}T00:00:00Z`) },
      items: { some: { jobEndAt: { lt: cutoff } } },
    },
    orderBy: { id: 'desc' },
    select: { id: true, createdAt: true },
  });
  return receipt ?? null;
}

/** A void receipt that had been paid, as a receipt billing some of its jobs again names it. */
export interface VoidedPaidReceiptRow {
  id: number;
  paidAt: Date;
  paymentMethod: string;
  txRef: string | null;
  total: Prisma.Decimal;
  currency: string;
  voidedAt: Date;
  paidWithReceiptId: number | null;
  newMoneyReceived: Prisma.Decimal | null;
}

/**
 * For each of `receiptIds`, the void receipts other than it, paid with one of `methods` before they
 * were voided, that billed some of the jobs it bills (live): money for those jobs may already have
 * been paid there. One whose money paid a receipt since (paid_with_receipt_id) is left out: that money
 * is spent, or passed on to that receipt, which names it if it was voided in turn. `forReceiptId` is the receipt of `receiptIds` each row is about; in its order,
 * then oldest first. One query for a receipt or a page of them (My receipts), driven by the paid void
 * receipts (their items by receipt, then the live-item index); the ids only filter the live items met,
 * so 25 ids cost about what one does (400 paid void receipts of 20 items: 7 ms for one id, 14 ms for 25).
 */
export async function findVoidedPaidReceiptsOfSameJobs(
  db: Client,
  receiptIds: readonly number[],
  methods: readonly string[],
): Promise<Array<VoidedPaidReceiptRow & { forReceiptId: number }>> {
  if (receiptIds.length === 0) return [];
  const rows = await db.$queryRaw<
    Array<
      Omit<VoidedPaidReceiptRow, 'total' | 'newMoneyReceived'> & {
        total: string;
        newMoneyReceived: string | null;
        forReceiptId: number;
      }
    >
  >`
    SELECT DISTINCT here.receipt_id AS "forReceiptId",
           v.id, v.paid_at AS "paidAt", v.payment_method AS "paymentMethod", v.tx_ref AS "txRef",
           v.total::text AS total, v.currency, v.voided_at AS "voidedAt",
           v.paid_with_receipt_id AS "paidWithReceiptId", v.new_money_received::text AS "newMoneyReceived"
      FROM receipts v
      JOIN receipt_items voided ON voided.receipt_id = v.id
      JOIN receipt_items here ON here.cluster = voided.cluster AND here.job_key = voided.job_key AND NOT here.is_voided
     WHERE v.status = 'void'
       AND v.paid_at IS NOT NULL
       AND v.payment_method = ANY(${methods as string[]}::text[])
       -- Its money paid a receipt already (marked paid with it): spent, or passed on to that receipt.
       AND NOT EXISTS (SELECT 1 FROM receipts spent WHERE spent.paid_with_receipt_id = v.id)
       AND here.receipt_id = ANY(${receiptIds as number[]}::int[])
       AND here.receipt_id <> v.id
     ORDER BY "forReceiptId", v.id`;
  return rows.map((row) => ({
    ...row,
    total: new Prisma.Decimal(row.total),
    newMoneyReceived: row.newMoneyReceived === null ? null : new Prisma.Decimal(row.newMoneyReceived),
  }));
}

/** The live receipts that bill some of the jobs of (void) receipt `receiptId` again, oldest first. */
export async function findReceiptsBillingJobsAgain(
  db: Client,
  receiptId: number,
): Promise<Array<{ id: number; status: ReceiptStatus; total: Prisma.Decimal; currency: string }>> {
  const rows = await db.$queryRaw<Array<{ id: number; status: ReceiptStatus; total: string; currency: string }>>`
    SELECT r.id, r.status::text AS status, r.total::text AS total, r.currency
      FROM receipts r
     WHERE r.id IN (SELECT here.receipt_id
                      FROM receipt_items voided
                      JOIN receipt_items here ON here.cluster = voided.cluster AND here.job_key = voided.job_key
                     WHERE voided.receipt_id = ${receiptId} AND here.receipt_id <> ${receiptId} AND NOT here.is_voided)
     ORDER BY r.id`;
  return rows.map((row) => ({ ...row, total: new Prisma.Decimal(row.total) }));
}

/**
 * Locks a receipt whose money a mark paid is about to spend (FOR NO KEY UPDATE, as a payment's
 * receipt is locked), so two receipts marked paid with the same voided receipt's money at once take
 * turns and the second finds the first. The unique index on paid_with_receipt_id backs it.
 */
export async function lockReceiptWhoseMoneyPays(tx: Prisma.TransactionClient, receiptId: number): Promise<void> {
  await tx.$queryRaw`SELECT id FROM receipts WHERE id = ${receiptId} FOR NO KEY UPDATE`;
}

/**
 * Whether (void) receipt `voidedId` billed some of the jobs receipt `receiptId` bills (live): the
 * receipts a pending receipt's notices name as money that may already pay for its jobs
 * (findVoidedPaidReceiptsOfSameJobs, findHeldPaymentForSameJobs) are those.
 */
export async function billsJobsOf(tx: Prisma.TransactionClient, receiptId: number, voidedId: number): Promise<boolean> {
  const rows = await tx.$queryRaw<Array<{ found: number }>>`
    SELECT 1 AS found
      FROM receipt_items voided
      JOIN receipt_items here ON here.cluster = voided.cluster AND here.job_key = voided.job_key
     WHERE voided.receipt_id = ${voidedId} AND here.receipt_id = ${receiptId} AND NOT here.is_voided
     LIMIT 1`;
  return rows.length > 0;
}

/**
 * The receipts the money of (void) receipt `receiptId` paid since, in the order it passed on: the one
 * marked paid with it, then, if that one was voided in turn, the one marked paid with its money, and
 * so on. Empty when its money paid no receipt. The last one is where the money is now (spent, unless
 * it is void too).
 */
export async function findReceiptsPaidWithMoneyOf(
  tx: Prisma.TransactionClient,
  receiptId: number,
): Promise<Array<{ id: number; status: ReceiptStatus }>> {
  return tx.$queryRaw<Array<{ id: number; status: ReceiptStatus }>>`
    WITH RECURSIVE chain AS (
      SELECT r.id, r.status, 1 AS depth FROM receipts r WHERE r.paid_with_receipt_id = ${receiptId}
      UNION ALL
      SELECT r.id, r.status, chain.depth + 1
        FROM receipts r JOIN chain ON r.paid_with_receipt_id = chain.id
       WHERE chain.status = 'void' AND chain.depth < 100
    )
    SELECT id, status::text AS status FROM chain ORDER BY depth`;
}

/**
 * The payments held for review on receipt `receiptId` that took money (a success paid short of its total,
 * or arriving after the receipt's void had canceled its checkout), oldest first, with what they received
 * and the provider's id of each. Read only when a mark paid names the money of such a receipt, voided
 * before it was paid: its refusal says where that money is, rather than that it took none.
 */
export async function findHeldMoneyOfReceipt(tx: Prisma.TransactionClient, receiptId: number) {
  return tx.payment.findMany({
    where: { receiptId, status: 'needs_review', receivedMinor: { not: null } },
    select: {
      id: true,
      externalPaymentId: true,
      amountMinor: true,
      currency: true,
      receivedMinor: true,
      receivedCurrency: true,
    },
    orderBy: { id: 'asc' },
  });
}

/**
 * Of a payment held for review on another receipt, whether that receipt was voided before it was ever paid
 * (the payment succeeded after its checkout was canceled by the void, or was paid short and the receipt
 * voided meanwhile), with the payment's provider id. Such a receipt's money cannot pay another (a mark paid
 * refuses it: it has no line in paid.csv to count it on), so its page must not offer it.
 */
export async function findHeldPaymentOfUnpaidVoid(
  db: Client,
  paymentId: number,
): Promise<{ externalPaymentId: string | null } | null> {
  const rows = await db.$queryRaw<{ externalPaymentId: string | null }[]>`
    SELECT p.external_payment_id AS "externalPaymentId"
      FROM payments p
      JOIN receipts r ON r.id = p.receipt_id
     WHERE p.id = ${paymentId} AND r.status = 'void' AND r.paid_at IS NULL`;
  return rows[0] ?? null;
}

/**
 * The receipt marked paid with the money of (void) receipt `receiptId` (paid_with_receipt_id, unique),
 * with its status; null when its money paid none. The voided receipt's page names it, rather than
 * saying to return that money to the payer.
 */
export async function findReceiptPaidWithMoneyOf(
  db: Client,
  receiptId: number,
): Promise<{ id: number; status: ReceiptStatus; username: string } | null> {
  return db.receipt.findUnique({
    where: { paidWithReceiptId: receiptId },
    select: { id: true, status: true, username: true },
  });
}

/**
 * A receipt whose money may pay another, as a mark paid "with that money" judges it: its user and
 * status, whether it was paid (a void keeps paid_at), the receipt its money already paid, and the
 * online payment its method and reference name (as paid.csv finds it), if it was paid online.
 */
export async function findMoneySource(tx: Prisma.TransactionClient, receiptId: number) {
  const select = {
    id: true,
    username: true,
    status: true,
    paidAt: true,
    paymentMethod: true,
    txRef: true,
    total: true,
    currency: true,
    paidWithReceiptId: true,
    newMoneyReceived: true,
    paidReceipt: { select: { id: true } },
    payments: {
      where: { externalPaymentId: { not: null } },
      select: {
        id: true,
        provider: true,
        externalPaymentId: true,
        reviewOutcome: true,
        receivedMinor: true,
        receivedCurrency: true,
        refundedMinor: true,
        disputeStatus: true,
        disputedMinor: true,
        failedRefunds: { select: { amountMinor: true, isInReportedTotal: true } },
      },
    },
  } as const satisfies Prisma.ReceiptSelect;
  const source = await tx.receipt.findUnique({ where: { id: receiptId }, select });
  if (!source) return null;
  // A receipt paid with the money of a receipt voided before it holds that receipt's money: the
  // money came in where the chain of such receipts starts (a receipt voided, its jobs billed again and
  // paid with its money, that one voided in turn, ...). Each was void before the next was paid, so
  // the chain has no loop; it is short.
  // New money received with it along the way (a receipt of the chain topped up for the rest of its
  // total) is money of the chain too, in that receipt's currency, which its mark paid made the same.
  let origin = source;
  let newMoney = new Prisma.Decimal(0);
  // The receipts of the chain whose paid.csv lines carry its money (each topped up, then the first).
  const cameInOn: number[] = [];
  for (let step = 0; origin.paidWithReceiptId !== null && step < 100; step += 1) {
    newMoney = newMoney.plus(origin.newMoneyReceived ?? 0);
    if (origin.newMoneyReceived?.greaterThan(0)) cameInOn.push(origin.id);
    const before = await tx.receipt.findUnique({ where: { id: origin.paidWithReceiptId }, select });
    if (!before) break;
    origin = before;
  }
  if (origin.paidWithReceiptId === null) cameInOn.push(origin.id);
  const {
    payments,
    paidReceipt,
    paidWithReceiptId: _paidWith,
    newMoneyReceived: _newMoney,
    total: _total,
    currency: _currency,
    ...receipt
  } = source;
  const paidWith = origin.payments.find(
    (payment) => payment.provider === origin.paymentMethod && payment.externalPaymentId === origin.txRef,
  );
  return {
    ...receipt,
    alreadyPaidReceiptId: paidReceipt?.id ?? null,
    // The online payment the money came in by (the chain's first receipt's), if it came in online.
    paymentId: paidWith?.id ?? null,
    // The new money received by hand along the chain (receipts of it topped up), part of `money`.
    newMoneyAlong: newMoney,
    // The receipts whose lines of paid.csv count that money, oldest first: where it came in (the chain's
    // first receipt, and each receipt of it topped up). For a receipt paid by money that came in on it alone,
    // that receipt.
    cameInOn: cameInOn.reverse(),
    // What is left of that money: what the payment received less what went back of it (refunds that
    // did not fail, a lost dispute: as the billing page counts it), null when the provider did not say
    // what it received; or, paid by hand, the first receipt's total (a mark paid accepts only the total).
    // Plus the new money received along the chain.
    money:
      paidWith === undefined
        ? { amount: origin.total.plus(newMoney), currency: origin.currency }
        : paidWith.receivedMinor === null || paidWith.receivedCurrency === null
          ? null
          : {
              amount: newMoney.plus(
                fromMinorUnits(
                  paidWith.receivedMinor -
                    (returnedMinorOf(
                      paidWith.refundedMinor,
                      paidWith.failedRefunds.reduce((sum, failed) => sum + failed.amountMinor, 0n),
                      lostDisputeMinorOf(paidWith),
                      uncountedOf(paidWith),
                    ) ?? 0n),
                  paidWith.receivedCurrency,
                ),
              ),
              currency: paidWith.receivedCurrency,
            },
    // Its money went back: an admin resolved the payment as refunded, or the provider refunded all it received.
    isPaymentRefunded:
      paidWith !== undefined &&
      (paidWith.reviewOutcome === 'refunded' ||
        (paidWith.refundedMinor !== null &&
          paidWith.receivedMinor !== null &&
          paidWith.refundedMinor >= paidWith.receivedMinor)),
  };
}
