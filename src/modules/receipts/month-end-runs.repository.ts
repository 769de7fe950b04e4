import type { MonthEndOutcome, Prisma } from '@prisma/client';
import type { Db } from '../../db/database.js';
import { type ListPage, type ListPlace, type ListSlice, pageOf } from '../../shared/list-place.js';

type Client = Db | Prisma.TransactionClient;

/** What a run has done so far: written after every user, and once more as it ends. */
export interface MonthEndProgress {
  usersDone: number;
  receiptCount: number;
  noChargeCount: number;
  /** Each total as the decimal's text. */
  totals: { currency: string; total: string }[];
  skipped: { username: string; kind: string; reason: string }[];
  /** The receipts it made users whose account was disabled, each total as the decimal's text. */
  disabledUsersBilled: { username: string; receiptId: number; total: string; currency: string; status: string }[];
}

const RUN_SELECT = {
  id: true,
  billedThrough: true,
  startedBy: true,
  startedAt: true,
  finishedAt: true,
  outcome: true,
  usersTotal: true,
  usersDone: true,
  receiptCount: true,
  noChargeCount: true,
  totals: true,
  skipped: true,
  disabledUsersBilled: true,
  unfinishedJobs: true,
  error: true,
} as const;

export type MonthEndRunRow = Prisma.MonthEndRunGetPayload<{ select: typeof RUN_SELECT }>;

/**
 * Marks every run still `running` as `interrupted` with `error`: only called by a run that holds
 * the month-end lock, so none of them can still be running. The runs it marked, as marked.
 */
export function interruptRunningRuns(tx: Client, finishedAt: Date, error: string): Promise<MonthEndRunRow[]> {
  return tx.monthEndRun.updateManyAndReturn({
    where: { outcome: 'running' },
    data: { outcome: 'interrupted', finishedAt, error },
    select: RUN_SELECT,
  });
}

/**
 * Marks run `id` as `interrupted` if it is still `running`: the run as marked, or null when it was
 * not running (another process marked it first, or it ended).
 */
export async function interruptRun(
  tx: Client,
  id: number,
  finishedAt: Date,
  error: string,
): Promise<MonthEndRunRow | null> {
  const [marked] = await tx.monthEndRun.updateManyAndReturn({
    where: { id, outcome: 'running' },
    data: { outcome: 'interrupted', finishedAt, error },
    select: RUN_SELECT,
  });
  return marked ?? null;
}

/**
 * Marks run `id` as `interrupted` with its progress if it is still `running` (a run that ended
 * meanwhile has written its own end); whether it was.
 */
export async function interruptRunWithProgress(
  tx: Client,
  id: number,
  end: MonthEndProgress & { finishedAt: Date; error: string },
): Promise<boolean> {
  const result = await tx.monthEndRun.updateMany({
    where: { id, outcome: 'running' },
    data: { ...end, outcome: 'interrupted' },
  });
  return result.count === 1;
}

/** A new running run; its id. */
export async function insertRun(
  tx: Client,
  run: { billedThrough: Date; startedBy: string; startedAt: Date },
): Promise<number> {
  const created = await tx.monthEndRun.create({ data: run, select: { id: true } });
  return created.id;
}

/**
 * How many users the run found to bill, once it has listed them, and the jobs it leaves out because
 * they have not finished, by user (each `{username, count}`).
 */
export async function recordUsersTotal(
  tx: Client,
  id: number,
  usersTotal: number,
  unfinishedJobs: { username: string; count: number }[],
): Promise<void> {
  await tx.monthEndRun.update({ where: { id }, data: { usersTotal, unfinishedJobs } });
}

/**
 * The run's progress. Two users are billed at a time, so two writes can arrive out of order:
 * one that would move users_done backwards is dropped.
 */
export async function recordProgress(tx: Client, id: number, progress: MonthEndProgress): Promise<void> {
  await tx.monthEndRun.updateMany({ where: { id, usersDone: { lt: progress.usersDone } }, data: progress });
}

/**
 * The run's end: its outcome and final progress. Unconditional: a run whose lock connection was
 * lost may have been marked interrupted by a reader while it went on, and its own end is the truth.
 */
export async function finishRun(
  tx: Client,
  id: number,
  end: MonthEndProgress & { outcome: Exclude<MonthEndOutcome, 'running'>; finishedAt: Date; error: string | null },
): Promise<void> {
  await tx.monthEndRun.update({ where: { id }, data: end });
}

/** Run `id`, or null. */
export function findRun(tx: Client, id: number): Promise<MonthEndRunRow | null> {
  return tx.monthEndRun.findUnique({ where: { id }, select: RUN_SELECT });
}

/**
 * One page of the runs, newest first (by id), `limit` of them: from an offset (`?page=`), or after or
 * before a run (keyset: a run started meanwhile moves no row of it), with how many there are and the
 * places of its links.
 */
export async function listRuns(db: Client, slice: ListSlice, limit: number): Promise<ListPage<MonthEndRunRow>> {
  const placeOf = (run: { id: number }): ListPlace => ({ id: run.id });
  if ('newer' in slice) {
    const newer = await db.monthEndRun.findMany({
      where: { id: { gt: slice.newer.id } },
      orderBy: { id: 'asc' },
      take: limit + 1,
      select: RUN_SELECT,
    });
    const rows = newer.slice(0, limit).reverse();
    const top = rows[0];
    // No more than a page newer: the first page, full, rather than a short page at the top.
    if (newer.length > limit && top) {
      const [count, newerCount] = await Promise.all([
        db.monthEndRun.count(),
        db.monthEndRun.count({ where: { id: { gt: top.id } } }),
      ]);
      return pageOf({ rows, count, newerCount, hasOlder: count > newerCount + rows.length }, limit, placeOf);
    }
  }
  const older = 'older' in slice ? slice.older.id : undefined;
  const [rows, count, newerCount] = await Promise.all([
    db.monthEndRun.findMany({
      where: older === undefined ? {} : { id: { lt: older } },
      orderBy: { id: 'desc' },
      skip: 'offset' in slice ? slice.offset : 0,
      take: limit + 1,
      select: RUN_SELECT,
    }),
    db.monthEndRun.count(),
    older === undefined
      ? Promise.resolve('offset' in slice ? slice.offset : 0)
      : db.monthEndRun.count({ where: { id: { gte: older } } }),
  ]);
  return pageOf({ rows: rows.slice(0, limit), count, newerCount, hasOlder: rows.length > limit }, limit, placeOf);
}

/** How many month-end runs there are. */
export function countRuns(db: Client): Promise<number> {
  return db.monthEndRun.count();
}

/** The run that is running, if any. */
export function findRunningRun(tx: Client): Promise<MonthEndRunRow | null> {
  return tx.monthEndRun.findFirst({ where: { outcome: 'running' }, select: RUN_SELECT });
}

/** The ids of the runs that are running, oldest first. */
export async function findRunningRunIds(tx: Client): Promise<number[]> {
  const rows = await tx.monthEndRun.findMany({
    where: { outcome: 'running' },
    orderBy: { id: 'asc' },
    select: { id: true },
  });
  return rows.map((row) => row.id);
}

/** The newest run's id, 0 before the first. */
export async function findNewestRunId(tx: Client): Promise<number> {
  const newest = await tx.monthEndRun.findFirst({ orderBy: { id: 'desc' }, select: { id: true } });
  return newest?.id ?? 0;
}

/** The newest run whose row is newer than run `id`, running or ended, if any. */
export function findRunNewerThan(tx: Client, id: number): Promise<MonthEndRunRow | null> {
  return tx.monthEndRun.findFirst({ where: { id: { gt: id } }, orderBy: { id: 'desc' }, select: RUN_SELECT });
}

/** The newest run that has ended, if any. */
export function findLastFinishedRun(tx: Client): Promise<MonthEndRunRow | null> {
  return tx.monthEndRun.findFirst({
    where: { outcome: { not: 'running' } },
    orderBy: { id: 'desc' },
    select: RUN_SELECT,
  });
}
