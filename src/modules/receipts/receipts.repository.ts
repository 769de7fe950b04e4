import { Prisma, type ReceiptStatus } from '@prisma/client';
import type { Db } from '../../db/database.js';

type Client = Db | Prisma.TransactionClient;

/**
 * What pricing and the receipt item need from a job. Wide numbers come back as text:
 * Prisma turning 10,000 rows of numeric/bigint/timestamptz into Decimal, BigInt and
 * Date objects costs ~4x the query itself, and the pricing core parses text exactly.
 */
export interface BillableJob {
  id: string;
  cluster: string;
  jobKey: string;
  jobId: string;
  /** ISO 8601 with offset. */
  endAt: string;
  elapsedSec: number;
  allocCpus: number;
  allocMemMb: string;
  allocGpus: number;
  reqGpus: number;
  cpuTimeSec: string | null;
  totalCpuSec: string | null;
  stepMemGbHours: string | null;
}

/**
 * Finished jobs of a user that ended before `cutoff` and are on no live (non-void)
 * receipt. They are read through the billing queue `unbilled_jobs` (kept by triggers), so
 * the jobs billed long ago are never looked at; the NOT EXISTS probe (the partial unique
 * index receipt_items_live_job_key) still decides, so the queue can never make a job billable.
 * One row per billing key: if ingestion ever stored two rows with one key, billing both
 * would trip that index on every attempt.
 */
export async function findUnbilledJobs(tx: Client, username: string, cutoff: Date): Promise<BillableJob[]> {
  return tx.$queryRaw<BillableJob[]>`
    SELECT DISTINCT ON (j.cluster, j.job_key)
           j.id::text AS id, j.cluster, j.job_key AS "jobKey", j.job_id AS "jobId",
           to_char(j.end_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "endAt",
           j.elapsed_sec AS "elapsedSec", j.alloc_cpus AS "allocCpus", j.alloc_mem_mb::text AS "allocMemMb",
           j.alloc_gpus AS "allocGpus", j.req_gpus AS "reqGpus", j.cpu_time_sec::text AS "cpuTimeSec",
           j.total_cpu_sec::text AS "totalCpuSec", j.step_mem_gb_hours::text AS "stepMemGbHours"
      FROM unbilled_jobs u
      JOIN slurm_jobs j ON j.id = u.job_id
     WHERE u."user" = ${username}
       AND u.end_at < ${cutoff}
       AND j.is_terminal
       AND NOT EXISTS (
             SELECT 1 FROM receipt_items ri
              WHERE ri.cluster = j.cluster AND ri.job_key = j.job_key AND NOT ri.is_voided)
     ORDER BY j.cluster, j.job_key, j.id DESC`;
}

/**
 * Puts back into the billing queue every finished, unbilled job it lacks (or holds with an
 * owner or end that is no longer the job's), and returns how many rows that took. The
 * triggers keep the queue exact but for one race (a new job row reusing a job key that is
 * being voided at the same instant); the month-end run repairs before it lists, so nothing
 * is left unbilled. It reads every finished job once: 2.2-2.5 s for 1,000,000 jobs here.
 */
export async function requeueMissedJobs(db: Client): Promise<number> {
  return db.$executeRaw`
    INSERT INTO unbilled_jobs (job_id, "user", end_at)
    SELECT j.id, j."user", j.end_at
      FROM slurm_jobs j
     WHERE j.is_terminal
       AND NOT EXISTS (
             SELECT 1 FROM receipt_items ri
              WHERE ri.cluster = j.cluster AND ri.job_key = j.job_key AND NOT ri.is_voided)
    ON CONFLICT (job_id) DO UPDATE SET "user" = EXCLUDED."user", end_at = EXCLUDED.end_at
     WHERE (unbilled_jobs."user", unbilled_jobs.end_at) IS DISTINCT FROM (EXCLUDED."user", EXCLUDED.end_at)`;
}

/** Users who have finished, unbilled jobs that ended before `cutoff` (month-end run). */
export async function findUsersWithUnbilledJobs(tx: Client, cutoff: Date): Promise<string[]> {
  const rows = await tx.$queryRaw<{ user: string }[]>`
    SELECT DISTINCT j."user"
      FROM unbilled_jobs u
      JOIN slurm_jobs j ON j.id = u.job_id
     WHERE u.end_at < ${cutoff}
       AND j.is_terminal
       AND NOT EXISTS (
             SELECT 1 FROM receipt_items ri
              WHERE ri.cluster = j.cluster AND ri.job_key = j.job_key AND NOT ri.is_voided)
     ORDER BY j."user"`;
  return rows.map((row) => row.user);
}

export interface NewReceipt {
  username: string;
  billedThrough: Date;
  windowStart: Date;
  windowEnd: Date;
  total: Prisma.Decimal;
  currency: string;
  tierName: string;
  rateId: number;
  ratesSnapshot: Prisma.InputJsonValue;
  ratesLockedAt: Date;
  scope: 'user' | 'admin';
  createdBy: string;
}

export interface NewReceiptItem {
  slurmJobId: string;
  cluster: string;
  jobKey: string;
  displayJobId: string;
  cpuHours: Prisma.Decimal;
  gpuHours: Prisma.Decimal;
  memGbHours: Prisma.Decimal;
  cost: Prisma.Decimal;
}

/**
 * Inserts a receipt and its items; a job already on a live receipt raises a unique
 * violation. Items go in as one INSERT over unnest()ed arrays: Prisma's createMany
 * through the driver adapter costs about 0.3 ms a row here (3 s for a 10,000-job
 * receipt), the array insert about 50 ms, and it stays one statement whatever the
 * count (no 65,535-parameter limit).
 */
export async function insertReceiptWithItems(
  tx: Prisma.TransactionClient,
  receipt: NewReceipt,
  items: NewReceiptItem[],
): Promise<{ id: number }> {
  const created = await tx.receipt.create({ data: { ...receipt, status: 'pending' }, select: { id: true } });
  await tx.$executeRaw`
    INSERT INTO receipt_items
           (receipt_id, slurm_job_id, cluster, job_key, display_job_id, cpu_hours, gpu_hours, mem_gb_hours, cost)
    SELECT ${created.id}, t.* FROM unnest(
           ${items.map((item) => item.slurmJobId)}::bigint[],
           ${items.map((item) => item.cluster)}::text[],
           ${items.map((item) => item.jobKey)}::text[],
           ${items.map((item) => item.displayJobId)}::text[],
           ${items.map((item) => item.cpuHours.toFixed())}::numeric[],
           ${items.map((item) => item.gpuHours.toFixed())}::numeric[],
           ${items.map((item) => item.memGbHours.toFixed())}::numeric[],
           ${items.map((item) => item.cost.toFixed())}::numeric[]) AS t`;
  return created;
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
  createdBy: true,
  paidAt: true,
  paymentMethod: true,
  txRef: true,
  voidReason: true,
  voidedAt: true,
  voidedBy: true,
  createdAt: true,
  _count: { select: { items: true } },
} as const satisfies Prisma.ReceiptSelect;

export type ReceiptRow = Prisma.ReceiptGetPayload<{ select: typeof RECEIPT_SELECT }>;

/** One receipt header, if it exists (and belongs to `username` when given). */
export async function findReceipt(db: Client, id: number, username?: string): Promise<ReceiptRow | undefined> {
  const receipt = await db.receipt.findFirst({
    where: { id, ...(username !== undefined ? { username } : {}) },
    select: RECEIPT_SELECT,
  });
  return receipt ?? undefined;
}

/** Items of a receipt in job order. */
export async function listItems(db: Client, receiptId: number) {
  return db.receiptItem.findMany({
    where: { receiptId },
    orderBy: { id: 'asc' },
    select: {
      id: true,
      cluster: true,
      jobKey: true,
      displayJobId: true,
      cpuHours: true,
      gpuHours: true,
      memGbHours: true,
      cost: true,
      isVoided: true,
    },
  });
}

export interface ReceiptFilter {
  status?: ReceiptStatus | undefined;
  username?: string | undefined;
  createdFrom?: Date | undefined;
  createdBefore?: Date | undefined;
}

function whereOf(filter: ReceiptFilter): Prisma.ReceiptWhereInput {
  return {
    ...(filter.status ? { status: filter.status } : {}),
    ...(filter.username ? { username: filter.username } : {}),
    ...(filter.createdFrom || filter.createdBefore
      ? {
          createdAt: {
            ...(filter.createdFrom ? { gte: filter.createdFrom } : {}),
            ...(filter.createdBefore ? { lt: filter.createdBefore } : {}),
          },
        }
      : {}),
  };
}

/** Receipts newest first, one page of them, with the number matching. */
export async function listReceipts(db: Client, filter: ReceiptFilter, page: { offset: number; limit: number }) {
  const where = whereOf(filter);
  const [rows, count] = await Promise.all([
    db.receipt.findMany({
      where,
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      skip: page.offset,
      take: page.limit,
      select: RECEIPT_SELECT,
    }),
    db.receipt.count({ where }),
  ]);
  return { rows, count };
}

/** Sum and count of receipts by status under a filter (the status part of it ignored). */
export async function sumByStatus(db: Client, filter: ReceiptFilter) {
  const groups = await db.receipt.groupBy({
    by: ['status', 'currency'],
    where: whereOf({ ...filter, status: undefined }),
    _sum: { total: true },
    _count: { _all: true },
  });
  return groups.map((group) => ({
    status: group.status,
    currency: group.currency,
    total: group._sum.total ?? new Prisma.Decimal(0),
    count: group._count._all,
  }));
}

/** Moves a receipt from one of `from` to `data.status`; false when it was not in one of them. */
export async function transitionReceipt(
  tx: Prisma.TransactionClient,
  id: number,
  from: ReceiptStatus[],
  data: Prisma.ReceiptUpdateManyMutationInput,
): Promise<boolean> {
  const result = await tx.receipt.updateMany({ where: { id, status: { in: from } }, data });
  return result.count === 1;
}

/** Frees a voided receipt's jobs: the partial unique index no longer covers its items. */
export async function voidItems(tx: Prisma.TransactionClient, receiptId: number): Promise<number> {
  const result = await tx.receiptItem.updateMany({ where: { receiptId }, data: { isVoided: true } });
  return result.count;
}

/** Paid receipts with paid_at in [from, before), oldest first, in batches for CSV export. */
export async function findPaidBatch(
  db: Client,
  window: { from: Date; before: Date },
  after: { paidAt: Date; id: number } | undefined,
  limit: number,
) {
  return db.receipt.findMany({
    where: {
      status: 'paid',
      paidAt: { gte: window.from, lt: window.before },
      ...(after ? { OR: [{ paidAt: { gt: after.paidAt } }, { paidAt: after.paidAt, id: { gt: after.id } }] } : {}),
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
    },
  });
}
