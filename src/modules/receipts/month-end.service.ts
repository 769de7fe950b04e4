import { Prisma } from '@prisma/client';
import type { ReleaseLock } from '../../db/advisory-locks.js';
import type { Db } from '../../db/database.js';
import { retryOnStaleConnection } from '../../db/stale-connections.js';
import { createBackgroundWork } from '../../shared/background-work.js';
import { counted, formatCount, listedNames } from '../../shared/counted.js';
import { ConflictError, notFoundById, ServiceUnavailableError, UnsealedAuditAppendError } from '../../shared/errors.js';
import { sliceOf } from '../../shared/list-place.js';
import { endOfLocalDay, formatLocalDateTime } from '../../shared/local-date.js';
import { pageCountOrNotFound, pageOfRows } from '../../shared/paging.js';
import { type AuditContext, type AuditEntry, appendAudit, refuseUnsealedAppendNow } from '../audit/audit.service.js';
import { minorUnitDigits } from '../pricing/pricing.js';
import { type ListQuery, notAPlace, pagedAs, placeAsked } from './list-query.js';
import * as monthEndRunsRepository from './month-end-runs.repository.js';
import {
  BilledMeanwhileError,
  NothingToBillError,
  ReceiptTotalTooLargeError,
  unfinishedJobsSentence,
} from './receipt-creation.errors.js';
import * as receiptsRepository from './receipts.repository.js';
import type { ReceiptsServiceDeps } from './receipts.service.js';

/** Why the month-end run made no receipt for a user: the outcome wanted, reached another way. */
export type MonthEndSkipKind = 'billed_meanwhile' | 'nothing_left' | 'conflict';

/** A user the month-end run made no receipt for. */
export interface MonthEndSkip {
  username: string;
  kind: MonthEndSkipKind;
  /** The refusal's own message, for a conflict of another kind. */
  reason: string;
}

function skipOf(error: NothingToBillError | ConflictError | ReceiptTotalTooLargeError, username: string): MonthEndSkip {
  if (error instanceof BilledMeanwhileError) return { username, kind: 'billed_meanwhile', reason: error.message };
  if (error instanceof NothingToBillError) return { username, kind: 'nothing_left', reason: error.message };
  return { username, kind: 'conflict', reason: error.message };
}

/**
 * A receipt the month-end run made a user whose account was disabled when the run listed its users:
 * nobody can sign in to see or pay it (docs/security.md, "Offboarding a user").
 */
export interface MonthEndDisabledUserBilled {
  username: string;
  receiptId: number;
  total: Prisma.Decimal;
  currency: string;
  /** As the run made it: paid only when settled as no charge. */
  status: 'pending' | 'paid';
}

/** A user's jobs that a month-end run left out because they have not finished. */
export interface MonthEndUnfinishedJobs {
  username: string;
  count: number;
}

/**
 * What the admin is to do about the disabled users' receipts of a run. A receipt of 0.00 is made paid,
 * settled as no charge: there is nothing to chase or mark paid. When some are and some are not, only
 * those still to pay are named: "chase them" over all of them named receipts already settled.
 */
function chaseSentenceOf(disabled: MonthEndDisabledUserBilled[], isOne: boolean): string {
  const toPay = disabled.filter((billed) => billed.status !== 'paid');
  if (toPay.length === 0) return `${isOne ? 'It is' : 'Each is'} settled as no charge: there is nothing to chase.`;
  const chase = (isOneToPay: boolean) =>
    isOneToPay
      ? 'chase it by other means and mark it paid when finance settles it'
      : 'chase them by other means and mark each paid when finance settles it';
  if (toPay.length === disabled.length) {
    return `Nobody can sign in to see or pay ${isOne ? 'it' : 'them'}: ${chase(isOne)}.`;
  }
  const settledCount = disabled.length - toPay.length;
  const isOneToPay = toPay.length === 1;
  return (
    `Nobody can sign in to see or pay the ${isOneToPay ? 'one' : formatCount(toPay.length)} still to pay ` +
    `(${listedNames(toPay.map((billed) => billed.username))}): ${chase(isOneToPay)}; ` +
    `${settledCount === 1 ? 'the other is' : 'the others are'} settled as no charge.`
  );
}

/**
 * The month-end run's result for the admin, on its status page. One sentence a kind of
 * skip, with a count and at most NAMES_LISTED names (listedNames): a sentence for each user made a
 * 40 KB banner at 465 users. The billing page's user filter finds any one of them.
 */
export function describeMonthEndRun(
  result: {
    before: string;
    receiptCount: number;
    noChargeCount: number;
    totals: { currency: string; total: Prisma.Decimal }[];
    skipped: MonthEndSkip[];
    disabledUsersBilled: MonthEndDisabledUserBilled[];
    /** Null (or absent): a run that did not count them, which says nothing of them. */
    unfinishedJobs?: MonthEndUnfinishedJobs[] | null;
  },
  money: (total: Prisma.Decimal, currency: string) => string,
): string {
  const sentences: string[] = [
    result.totals.length > 0
      ? `Month-end run up to ${result.before}: ${counted(result.receiptCount, 'receipt')} created, total ${result.totals
          .map((total) => `${money(total.total, total.currency)} ${total.currency}`)
          .join(', ')}.`
      : `Month-end run up to ${result.before}: nothing to bill, no receipt created.`,
  ];
  if (result.noChargeCount > 0) {
    sentences.push(
      `${formatCount(result.noChargeCount)} of them total 0 and ${result.noChargeCount === 1 ? 'is' : 'are'} settled as no charge.`,
    );
  }
  // Billed as anyone is (docs/security.md, "Offboarding a user"), but nobody will see these receipts
  // unless the admin reading the run is told whom to chase.
  const disabled = result.disabledUsersBilled;
  if (disabled.length > 0) {
    const isOne = disabled.length === 1;
    const totals = totalsByCurrency(disabled)
      .map((total) => `${money(total.total, total.currency)} ${total.currency}`)
      .join(', ');
    sentences.push(
      `${formatCount(disabled.length)} of them went to ${isOne ? 'a disabled user' : 'disabled users'} (total ${totals}): ` +
        `${listedNames(disabled.map((billed) => billed.username))}. ` +
        chaseSentenceOf(disabled, isOne),
    );
  }
  // Jobs of the window no receipt bills until they finish, as Create receipt says of its own.
  const unfinished = result.unfinishedJobs ?? [];
  const unfinishedCount = unfinished.reduce((sum, user) => sum + user.count, 0);
  if (unfinishedCount > 0) {
    sentences.push(
      `${unfinishedJobsSentence(unfinishedCount, result.before)} By user: ` +
        `${listedNames(unfinished.map((user) => `${user.username} (${formatCount(user.count)})`))}.`,
    );
  }
  const namesOf = (kind: MonthEndSkipKind, reason?: string) =>
    result.skipped
      .filter((skip) => skip.kind === kind && (reason === undefined || skip.reason === reason))
      .map((skip) => skip.username);
  const nothingLeft = namesOf('nothing_left');
  if (nothingLeft.length > 0) {
    sentences.push(
      `${counted(nothingLeft.length, 'user')} had nothing left to bill (billed by another receipt meanwhile): ` +
        `${listedNames(nothingLeft)}.`,
    );
  }
  const billedMeanwhile = namesOf('billed_meanwhile');
  if (billedMeanwhile.length > 0) {
    sentences.push(
      `${counted(billedMeanwhile.length, 'user')} had their jobs billed by another receipt made at the same moment, ` +
        `so this run wrote nothing for them: ${listedNames(billedMeanwhile)}.`,
    );
  }
  // Any other refusal: one sentence for each distinct reason, so a repeated one is said once.
  const otherReasons = [...new Set(result.skipped.filter((skip) => skip.kind === 'conflict').map((s) => s.reason))];
  for (const reason of otherReasons.slice(0, 3)) {
    const names = namesOf('conflict', reason);
    sentences.push(`${counted(names.length, 'user')} skipped (${reason.replace(/\.$/, '')}): ${listedNames(names)}.`);
  }
  if (otherReasons.length > 3) {
    const rest = result.skipped.filter(
      (skip) => skip.kind === 'conflict' && !otherReasons.slice(0, 3).includes(skip.reason),
    );
    sentences.push(
      `${counted(rest.length, 'more user')} skipped for other reasons: ${listedNames(rest.map((s) => s.username))}.`,
    );
  }
  const first = result.skipped[0];
  if (first) {
    sentences.push(
      `Find their receipts on the billing page filtered by user (/admin/receipts?user=${encodeURIComponent(first.username)}).`,
    );
  }
  return sentences.join(' ');
}

/** The billing list of the receipts month-end run `id` made. */
export function monthEndRunReceiptsUrl(id: number): string {
  return `/admin/receipts?run=${id}`;
}

/** Where a month-end run's progress and outcome are shown (HTML, or JSON with Accept: application/json). */
export function monthEndRunUrl(id: number): string {
  return `/admin/month-end/${id}`;
}

/**
 * A month-end run while another is in progress: refused at once, nothing billed. `runId` is the
 * running run's, when it has a row (a run of an older release, or a lock taken by hand, has none);
 * a JSON answer then carries it and its status URL.
 */
export class MonthEndInProgressError extends ConflictError {
  constructor(
    holder: { actor: string; startedAt: string } | undefined,
    readonly runId?: number,
    isFinished = false,
  ) {
    super(
      isFinished && holder
        ? `A month-end run started at the same moment (by ${holder.actor} at ${holder.startedAt}) has already finished; see its page.`
        : holder
          ? `A month-end run is already in progress (started by ${holder.actor} at ${holder.startedAt}); wait for it to finish.`
          : 'A month-end run is already in progress; wait for it to finish.',
      {
        ...(holder ? { startedBy: holder.actor, startedAt: holder.startedAt } : {}),
        ...(runId === undefined ? {} : { runId, statusUrl: monthEndRunUrl(runId) }),
      },
      { publicFields: runId === undefined ? {} : { runId, statusUrl: monthEndRunUrl(runId) } },
    );
  }
}

/** What a run that was interrupted says: what it billed stays, and billing only unbilled jobs, a re-run completes it. */
const RERUN_IS_SAFE =
  'What it billed stays billed; running it again for the same day is safe and bills the rest (it bills only unbilled jobs).';

/**
 * What a run stopped by a log sealed meanwhile says after the refusal: a re-run from this instance is
 * refused at its start (503) until it has the key, so the admin is told where to run it.
 */
const RERUN_WITH_KEY_IS_SAFE =
  'What it billed stays billed; running it again for the same day from an instance with the key is safe and bills the rest (it bills only unbilled jobs).';

/** A running run found without the lock's holder: its process ended (a crash, a kill, a lost database connection). */
export const ABANDONED_RUN_MESSAGE = `Interrupted: the process running it stopped before it finished. ${RERUN_IS_SAFE}`;

/** How a month-end run ended (MonthEndOutcome but running). */
export type MonthEndEnd = 'succeeded' | 'failed' | 'interrupted';

/**
 * The transaction one page of the month-end runs is read in (listRuns): its rows and its counts from one
 * snapshot, so "rows X–Y of N" counts the rows it shows. Read side by side, each on a connection of its
 * own, a receipt committed between the rows' query and the count's was counted and not shown ("Receipts
 * 1–3 of 4" with no Older link). The receipts' lists read theirs in one statement (listReceipts).
 */
const ONE_SNAPSHOT = {
  isolationLevel: Prisma.TransactionIsolationLevel.RepeatableRead,
  timeout: 60_000,
  maxWait: 10_000,
} as const;

/** Month-end runs on a page of their list: one a month is four years. */
export const MONTH_END_RUNS_PAGE_SIZE = 50;

/**
 * Rows on a page of each of a month-end run's tables, its disabled users billed and its users skipped: a
 * run after 428 users were disabled listed 312 in one table (82 KB). Its JSON lists every one (docs/billing.md).
 */
export const MONTH_END_TABLE_PAGE_SIZE = 50;

/** A month-end run's row, as much of it as paging its tables reads. */
type MonthEndTableRow = { id: number; outcome: string; disabledUsersBilled: unknown; skipped: unknown };

/**
 * What each of a month-end run's paged tables lists, from its row, and how its 404 counts it: the disabled
 * users billed are listed once the run has ended (none while it runs), the users skipped as it goes.
 */
const MONTH_END_TABLES = {
  disabledBilled: {
    rowsOf: (row: MonthEndTableRow) => (row.outcome === 'running' ? [] : (row.disabledUsersBilled as unknown[])),
    said: (id: number, count: number) => `Month-end run #${id} billed ${counted(count, 'disabled user')}`,
  },
  skipped: {
    rowsOf: (row: MonthEndTableRow) => row.skipped as unknown[],
    said: (id: number, count: number) => `Month-end run #${id} skipped ${counted(count, 'user')}`,
  },
} as const;

/** The pages asked of a month-end run's tables (`?page=` and `?skipped_page=`). */
export type MonthEndTablePages = Record<keyof typeof MONTH_END_TABLES, number>;

/**
 * Page `page` of `rows`, table `table` of run `row` (`page` of `pageCount`); a page past the last is a 404
 * saying how many there are.
 */
function monthEndTablePageOf<T>(row: MonthEndTableRow, table: keyof typeof MONTH_END_TABLES, rows: T[], page: number) {
  return pageOfRows(
    rows,
    MONTH_END_TABLE_PAGE_SIZE,
    page,
    (pages) => `${MONTH_END_TABLES[table].said(row.id, rows.length)} on ${counted(pages, 'page')}`,
  );
}

/** Users billed at the same time by the month-end run. */
const MONTH_END_CONCURRENCY = 2;

/**
 * A month-end start finding another start between its lock and its commit (milliseconds, as a
 * rule) tries again every 50 ms for up to 10 s, then is refused naming the run whose row has
 * committed meanwhile, if any (startMonthEnd).
 */
const MONTH_END_START_RETRY_MS = 50;
const MONTH_END_START_ATTEMPTS = 200;

/** A receipt the month-end run made. */
interface MonthEndReceipt {
  id: number;
  username: string;
  total: Prisma.Decimal;
  currency: string;
  status: 'pending' | 'paid';
  /** The user's account was disabled when the run listed its users. */
  isUserDisabled: boolean;
}

/** What the month-end run did for one user. */
type MonthEndUserOutcome = { created: MonthEndReceipt } | { skipped: MonthEndSkip };

/** A month-end run's work so far: `outcomes` by the user's place in name order. */
interface MonthEndState {
  outcomes: MonthEndUserOutcome[];
  usersTotal: number;
  usersDone: number;
  /** The jobs it leaves out because they have not finished, by user: null until it has listed its users. */
  unfinishedJobs: MonthEndUnfinishedJobs[] | null;
  /**
   * The shutdown stopped waiting for the run and recorded it interrupted: the run writes nothing
   * more, as its connections are being closed under it.
   */
  isAbandoned: boolean;
}

/** What a month-end run made, in name order: runMonthEnd's answer. */
export interface MonthEndResult {
  runId: number;
  outcome: MonthEndEnd;
  before: string;
  receiptCount: number;
  /** Receipts of 0.00, settled as they were made (NO_CHARGE_METHOD); counted in receiptCount too. */
  noChargeCount: number;
  totals: { currency: string; total: Prisma.Decimal }[];
  receipts: MonthEndReceipt[];
  skipped: MonthEndSkip[];
  disabledUsersBilled: MonthEndDisabledUserBilled[];
  /** The jobs it left out because they have not finished, by user; null when it stopped before listing its users. */
  unfinishedJobs: MonthEndUnfinishedJobs[] | null;
}

/** The sum of `receipts` in each currency, in the order the currencies first appear. */
function totalsByCurrency(receipts: { total: Prisma.Decimal; currency: string }[]) {
  const totals = new Map<string, Prisma.Decimal>();
  for (const receipt of receipts) {
    totals.set(receipt.currency, (totals.get(receipt.currency) ?? new Prisma.Decimal(0)).plus(receipt.total));
  }
  return [...totals].map(([currency, total]) => ({ currency, total }));
}

/** The receipts, totals and skipped users of the outcomes so far, in name order. */
function summarizeMonthEnd(before: string, outcomes: MonthEndUserOutcome[]) {
  const created = outcomes.flatMap((outcome) => ('created' in outcome ? [outcome.created] : []));
  const skipped = outcomes.flatMap((outcome) => ('skipped' in outcome ? [outcome.skipped] : []));
  return {
    before,
    receiptCount: created.length,
    noChargeCount: created.filter((receipt) => receipt.status === 'paid').length,
    totals: totalsByCurrency(created),
    receipts: created,
    skipped,
    disabledUsersBilled: created
      .filter((receipt) => receipt.isUserDisabled)
      .map((receipt) => ({
        username: receipt.username,
        receiptId: receipt.id,
        total: receipt.total,
        currency: receipt.currency,
        status: receipt.status,
      })),
  };
}

/** Longest error text a run's row keeps: a page line, not a stack. */
const RUN_ERROR_MAX_LENGTH = 500;

/**
 * Why a run stopped, for its page (admins only): the error's message on one line, without the
 * "Invalid `prisma.$queryRaw()` invocation:" Prisma puts before PostgreSQL's own words.
 */
function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const text = message
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !/^Invalid `.*` invocation:?$/.test(line))
    .join(' ')
    .replace(/\.$/, '');
  return text.length > RUN_ERROR_MAX_LENGTH ? `${text.slice(0, RUN_ERROR_MAX_LENGTH)}…` : text || 'unknown error';
}

/** A run's progress as its row stores it. */
function progressOf(
  summary: ReturnType<typeof summarizeMonthEnd>,
  usersDone: number,
): monthEndRunsRepository.MonthEndProgress {
  return {
    usersDone,
    receiptCount: summary.receiptCount,
    noChargeCount: summary.noChargeCount,
    totals: summary.totals.map((total) => ({ currency: total.currency, total: total.total.toFixed() })),
    skipped: summary.skipped,
    disabledUsersBilled: summary.disabledUsersBilled.map((billed) => ({ ...billed, total: billed.total.toFixed() })),
  };
}

/**
 * The `receipt.month_end_run` audit entry of a run that has ended: who started it, its day, how it
 * ended and what it did. Its receipts have their own `receipt.create` entries (with `monthEndRunId`).
 * Written with the row that records its end, whichever way it ended: by itself, abandoned at shutdown
 * (abandonMonthEnd), or marked interrupted after its process died (interruptDeadMonthEndRun).
 */
function monthEndRunAuditEntry(
  actor: AuditContext,
  runId: number,
  run: {
    before: string;
    outcome: MonthEndEnd;
    usersTotal: number;
    progress: monthEndRunsRepository.MonthEndProgress;
    error: string | null;
  },
  extraDetails: Record<string, unknown> = {},
): AuditEntry {
  const { progress } = run;
  return {
    ...actor,
    action: 'receipt.month_end_run',
    target: `month_end_run:${runId}`,
    // Interrupted, it billed some users and left the rest: `partial`, as an ingestion run that left records out.
    status: run.outcome === 'succeeded' ? 'ok' : run.outcome === 'failed' ? 'failed' : 'partial',
    details: {
      monthEndRunId: runId,
      before: run.before,
      outcome: run.outcome,
      usersTotal: run.usersTotal,
      usersDone: progress.usersDone,
      receiptCount: progress.receiptCount,
      noChargeCount: progress.noChargeCount,
      // To the minor unit, as the receipts' own entries write their totals.
      totals: progress.totals.map((total) => ({
        currency: total.currency,
        total: new Prisma.Decimal(total.total).toFixed(minorUnitDigits(total.currency)),
      })),
      skipped: progress.skipped.length,
      disabledUsersBilled: progress.disabledUsersBilled.length,
      ...(run.error === null ? {} : { error: run.error }),
      ...extraDetails,
    },
  };
}

/**
 * The audit entry of run `row`, left running by a process that died and just marked interrupted:
 * under the actor who started it (no address: nobody asked for it), with the progress its row had
 * recorded, and `linkedReceiptCount`, the receipts that name the run: the row's progress is written
 * after each user's receipt commits, so a process that died between the two left it one behind.
 */
function deadMonthEndRunAuditEntry(row: monthEndRunsRepository.MonthEndRunRow, linkedReceiptCount: number) {
  return monthEndRunAuditEntry(
    { actor: row.startedBy, ip: null, userAgent: null },
    row.id,
    {
      before: row.billedThrough.toISOString().slice(0, 10),
      outcome: 'interrupted',
      usersTotal: row.usersTotal ?? 0,
      progress: {
        usersDone: row.usersDone,
        receiptCount: row.receiptCount,
        noChargeCount: row.noChargeCount,
        totals: row.totals as monthEndRunsRepository.MonthEndProgress['totals'],
        skipped: row.skipped as monthEndRunsRepository.MonthEndProgress['skipped'],
        disabledUsersBilled: row.disabledUsersBilled as monthEndRunsRepository.MonthEndProgress['disabledUsersBilled'],
      },
      error: row.error,
    },
    { linkedReceiptCount },
  );
}

/** Appends the audit entries of the dead runs `marked` (interruptRunningRuns, interruptRun) in the transaction that marked them. */
async function auditDeadMonthEndRuns(
  tx: Prisma.TransactionClient,
  marked: monthEndRunsRepository.MonthEndRunRow[],
  finishedAt: Date,
): Promise<void> {
  for (const row of marked) {
    const linkedReceiptCount = await receiptsRepository.countReceiptsOfMonthEndRun(tx, row.id);
    await appendAudit(tx, deadMonthEndRunAuditEntry(row, linkedReceiptCount), finishedAt);
  }
}

/**
 * Marks run `id` interrupted if it is still running, its process having died (the caller has seen the
 * month-end lock free), with its `receipt.month_end_run` audit entry in the same transaction; whether
 * it was marked. A run another process marked first, or one that ended, is left as it is, with no entry.
 */
export function interruptDeadMonthEndRun(db: Db, id: number, finishedAt: Date): Promise<boolean> {
  return db.$transaction(async (tx) => {
    const marked = await monthEndRunsRepository.interruptRun(tx, id, finishedAt, ABANDONED_RUN_MESSAGE);
    if (marked) await auditDeadMonthEndRuns(tx, [marked], finishedAt);
    return marked !== null;
  });
}

/** A month-end run's row as its page and its JSON show it. */
function monthEndRunViewOf(row: monthEndRunsRepository.MonthEndRunRow) {
  const totals = row.totals as { currency: string; total: string }[];
  return {
    id: row.id,
    url: monthEndRunUrl(row.id),
    /** The billing list filtered to the receipts this run made. */
    receiptsUrl: monthEndRunReceiptsUrl(row.id),
    outcome: row.outcome,
    isRunning: row.outcome === 'running',
    before: row.billedThrough.toISOString().slice(0, 10),
    startedBy: row.startedBy,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
    usersTotal: row.usersTotal,
    usersDone: row.usersDone,
    receiptCount: row.receiptCount,
    noChargeCount: row.noChargeCount,
    totals: totals.map((total) => ({ currency: total.currency, total: new Prisma.Decimal(total.total) })),
    skipped: row.skipped as unknown as MonthEndSkip[],
    /** Empty for a run made before runs recorded them (migration 20261206050000). */
    disabledUsersBilled: (
      row.disabledUsersBilled as unknown as (Omit<MonthEndDisabledUserBilled, 'total'> & { total: string })[]
    ).map((billed) => ({ ...billed, total: new Prisma.Decimal(billed.total) })),
    /** Null for a run made before runs counted them (migration 20261206130000), or stopped before listing its users. */
    unfinishedJobs: row.unfinishedJobs as unknown as MonthEndUnfinishedJobs[] | null,
    error: row.error,
  };
}

/** A month-end run as its page shows it. */
export type MonthEndRunView = ReturnType<typeof monthEndRunViewOf>;

/** What the month-end run needs of the receipts service (createReceiptsService). */
export interface MonthEndServiceParts {
  /** Bills a user's unbilled jobs up to `before` in one transaction, as Create receipt does; the run's receipts name it. */
  createReceipt: (
    username: string,
    before: string,
    scope: 'admin',
    actor: AuditContext,
    monthEndRunId: number,
  ) => Promise<Omit<MonthEndReceipt, 'isUserDisabled'>>;
  /** Refuses (400) a day after today, as Create receipt does. */
  assertNotFuture: (before: string) => void;
  /** The receipts service's clock (deps.now or the real one): a run's times and its receipts' read the same. */
  now: () => Date;
}

/** Month-end runs: started, billed in the background, and shown; part of the receipts service. */
export function createMonthEndService(
  deps: ReceiptsServiceDeps,
  { createReceipt, assertNotFuture, now }: MonthEndServiceParts,
) {
  const { config } = deps;
  const db = deps.db.prisma;
  const backgroundWork = deps.backgroundWork ?? createBackgroundWork();

  /**
   * Month-end: a receipt for every user with unbilled usage up to `before`, started here and
   * billed in the background (startMonthEnd's `finished` says when it has ended): at 465 users and
   * 801,000 jobs it took 76 s, longer than a reverse proxy waits for an answer. Refused at once,
   * with nothing started, for a day in the future (400), while another run holds the lock (409),
   * while the process stops (503) or where its entries could not be written (UnsealedAuditAppendError, 503). The run's progress and outcome are its month_end_runs row. A
   * start beside another waits only for the other's row to commit, so that its 409 names that run.
   */
  async function startMonthEnd(actor: AuditContext, before: string) {
    assertNotFuture(before);
    // Draining, the process stops once the delay is over: a run started now was interrupted then,
    // having billed next to nothing, after its start had been answered as started.
    if (backgroundWork.isStopping() || deps.isDraining?.()) {
      throw new ServiceUnavailableError('The app is stopping; start the month-end run again in a moment.');
    }
    // Each receipt appends its entry in its transaction, and the run's end one: on a process without
    // AUDIT_CHAIN_KEY whose log is sealed, every receipt rolled back with its refused entry and the
    // run's end went unrecorded. Refused (503) before anything is written, as Run now is; a log sealed
    // after this check still refuses each entry at its append.
    await refuseUnsealedAppendNow(db);
    const startedAt = now();
    const held: { release?: ReleaseLock } = {};
    let inserted: number | 'busy' | undefined = 'busy';
    const found: { meanwhile?: monthEndRunsRepository.MonthEndRunRow } = {};
    // Rows commit under the start lock, so a run newer than this is one a start at the same moment
    // (a double click, a second admin) made while this one waited its turn.
    const newestAtArrival = await monthEndRunsRepository.findNewestRunId(db);
    try {
      // Starts one after the other, each until its row has committed: a start refused at the same
      // moment as another began found no row yet, and could not say which run was going. A start
      // finding the start lock taken tries again shortly, holding no connection in between (it
      // once waited inside its transaction, and a few such starts took every pool connection
      // while the start holding the lock needed a second one).
      for (let attempt = 1; inserted === 'busy' && attempt <= MONTH_END_START_ATTEMPTS; attempt++) {
        if (attempt > 1) await new Promise((resolve) => setTimeout(resolve, MONTH_END_START_RETRY_MS));
        inserted = await db.$transaction(async (tx) => {
          if (!(await receiptsRepository.tryLockMonthEndStart(tx))) return 'busy' as const;
          // One run at a time, refused at once: a second run beside the first billed nothing new but
          // doubled the load for its minute, and reported every user the first had billed meanwhile.
          // Asked on this connection first, so a refused start never needs a second one.
          if (await receiptsRepository.isMonthEndLockHeldIn(tx)) return undefined;
          // Such a run may have ended before this start's turn came (a run of a few users takes
          // milliseconds): it is named, not run again, as it is while it runs. A second run would
          // bill nothing and read as a second month-end.
          found.meanwhile = (await monthEndRunsRepository.findRunNewerThan(tx, newestAtArrival)) ?? undefined;
          if (found.meanwhile) return undefined;
          held.release = await receiptsRepository.tryAcquireMonthEndLock(deps.db.pool, {
            actor: actor.actor,
            startedAt,
          });
          if (!held.release) return undefined;
          // The lock is ours, so no other run is running: a row that says so was left by a process that died.
          const dead = await monthEndRunsRepository.interruptRunningRuns(tx, startedAt, ABANDONED_RUN_MESSAGE);
          await auditDeadMonthEndRuns(tx, dead, startedAt);
          return monthEndRunsRepository.insertRun(tx, {
            billedThrough: new Date(`${before}T00:00:00Z`),
            startedBy: actor.actor,
            startedAt,
          });
        });
      }
    } catch (error) {
      await held.release?.();
      throw error;
    }
    const { release } = held;
    // Still 'busy' after every attempt (another start stuck before its commit): refused all the same,
    // naming a run whose row has committed since it arrived, as a start that had its turn names it. It
    // was refused without the run's id when that run had already ended (a run of a few users takes
    // milliseconds), where its row was there to link to.
    // Asked again after any refusal, not only after the tries ran out: a start refused because a
    // run held the month-end lock found that run ended by the time it asked who held it (a run of a
    // few users takes milliseconds), and was refused with neither its starter nor a link.
    const meanwhile =
      typeof inserted === 'number'
        ? undefined
        : (found.meanwhile ?? (await monthEndRunsRepository.findRunNewerThan(db, newestAtArrival)) ?? undefined);
    if (meanwhile && meanwhile.outcome !== 'running') {
      throw new MonthEndInProgressError(
        { actor: meanwhile.startedBy, startedAt: formatLocalDateTime(meanwhile.startedAt, config.timeZone) },
        meanwhile.id,
        true,
      );
    }
    // A run going on is named by monthEndInProgress (its row, once committed; a start still stuck
    // before its commit has none to name yet, and is refused naming who started it, when known).
    if (!release || typeof inserted !== 'number') throw await monthEndInProgress(meanwhile);
    const runId = inserted;
    const state: MonthEndState = {
      outcomes: [],
      usersTotal: 0,
      usersDone: 0,
      unfinishedJobs: null,
      isAbandoned: false,
    };
    const finished = backgroundWork.track(
      (shouldStop) => billMonthEnd(actor, before, runId, shouldStop, state).finally(() => release()),
      { name: `month-end run #${runId}`, abandon: () => abandonMonthEnd(actor, before, runId, state) },
    );
    return { runId, finished };
  }

  /**
   * The shutdown's timeout ran out with run `runId` still billing users: its row is marked
   * interrupted with what has committed so far, before the process closes the connections of the
   * users in flight (PostgreSQL rolls their transactions back, receipt and audit entry together).
   * A user counts only once their transaction has committed, so the row claims no user it did not bill.
   * Its `receipt.month_end_run` audit entry says the same, written in the same transaction.
   */
  async function abandonMonthEnd(
    actor: AuditContext,
    before: string,
    runId: number,
    state: MonthEndState,
  ): Promise<void> {
    state.isAbandoned = true;
    const done =
      state.usersTotal > 0
        ? `after ${state.usersDone} of ${state.usersTotal} users`
        : 'before it had listed the users to bill';
    const finishedAt = now();
    const progress = progressOf(summarizeMonthEnd(before, state.outcomes), state.usersDone);
    const error =
      `Interrupted: the app was stopped during the run, ${done}; the users still in flight when its ` +
      `shutdown timeout ran out were left unbilled. ${RERUN_IS_SAFE}`;
    try {
      // After PostgreSQL dropped every connection (a restart), the pool may hand this write idle ones it
      // has not yet seen die: it failed on one, and the run read running, then interrupted as if its
      // process had died, with no word of its progress. Tried again past them (retryOnStaleConnection).
      await retryOnStaleConnection(deps.db.pool, () =>
        db.$transaction(async (tx) => {
          // A run that ended meanwhile wrote its own end and entry.
          if (!(await monthEndRunsRepository.interruptRunWithProgress(tx, runId, { ...progress, finishedAt, error }))) {
            return;
          }
          await appendAudit(
            tx,
            monthEndRunAuditEntry(actor, runId, {
              before,
              outcome: 'interrupted',
              usersTotal: state.usersTotal,
              progress,
              error,
            }),
            finishedAt,
          );
        }),
      );
    } catch (error) {
      // Its row stays running until someone looks at it once the lock is released: it then reads interrupted.
      deps.logger?.error({ err: error, runId }, 'month-end run was abandoned but could not be recorded interrupted');
    }
  }

  /**
   * The refusal of a second run: who started the running one and when, and its id for a link to its
   * page. `seenRunning`, the run this start saw running, stands in for one that has ended since.
   */
  async function monthEndInProgress(
    seenRunning?: monthEndRunsRepository.MonthEndRunRow,
  ): Promise<MonthEndInProgressError> {
    const [holder, runningNow] = await Promise.all([
      receiptsRepository.findMonthEndLockHolder(deps.db.pool),
      monthEndRunsRepository.findRunningRun(db),
    ]);
    const running = runningNow ?? seenRunning;
    const startedBy = holder ?? (running ? { actor: running.startedBy, startedAt: running.startedAt } : undefined);
    return new MonthEndInProgressError(
      startedBy && { actor: startedBy.actor, startedAt: formatLocalDateTime(startedBy.startedAt, config.timeZone) },
      running?.id,
    );
  }

  /**
   * A whole month-end run, waited for (the benchmark, tests): its result in name order; a run
   * that failed rejects with its error once the receipts in flight are done.
   */
  async function runMonthEnd(actor: AuditContext, before: string): Promise<MonthEndResult> {
    const { finished } = await startMonthEnd(actor, before);
    const { result, error } = await finished;
    if (result.outcome === 'failed') throw error;
    return result;
  }

  /**
   * Bills run `runId` and records how it ended; never rejects. Each user is their own transaction,
   * so one user's conflict does not undo the others, and a second run finds nothing left and
   * creates nothing. Two users are billed at a time: PostgreSQL does most of a receipt's work, and
   * one at a time left a core idle. An unexpected error stops the run once the receipts in flight
   * are done; `shouldStop` (the process stopping) stops it once the users in flight are done. Once
   * abandoned (abandonMonthEnd) it is interrupted, and its row is no longer its to write.
   */
  async function billMonthEnd(
    actor: AuditContext,
    before: string,
    runId: number,
    shouldStop: () => boolean,
    state: MonthEndState,
  ): Promise<{ result: MonthEndResult; error?: unknown }> {
    let outcome: MonthEndEnd;
    let error: unknown;
    let errorText: string | null = null;
    try {
      const isComplete = await billMonthEndUsers(actor, before, runId, shouldStop, state);
      outcome = isComplete ? 'succeeded' : 'interrupted';
      if (!isComplete) {
        errorText = `Interrupted: the app was stopped during the run, after ${state.usersDone} of ${state.usersTotal} users. ${RERUN_IS_SAFE}`;
      }
    } catch (caught) {
      outcome = 'failed';
      if (caught instanceof UnsealedAuditAppendError) {
        // Another instance sealed the log during the run: every receipt after it is refused with its entry,
        // and so would the run's own entry be. Its "Nothing was changed" is untrue of the receipts before.
        const refused = caught.withOutcome(
          `Stopped after ${state.usersDone} of ${state.usersTotal} users, each receipt after that refused with its audit entry, and this run's own entry was not written`,
        );
        error = refused;
        errorText = `${refused.message} ${RERUN_WITH_KEY_IS_SAFE}`;
      } else {
        error = caught;
        errorText = `Stopped by an unexpected error after ${state.usersDone} of ${state.usersTotal} users: ${reasonOf(caught)}. ${RERUN_IS_SAFE}`;
      }
      // Abandoned, its users in flight fail as the shutdown closes their connections: that is expected.
      if (!state.isAbandoned) deps.logger?.error({ err: caught, runId }, 'month-end run failed');
    }
    if (state.isAbandoned) {
      // Its row was written as it was abandoned, from the users committed by then.
      return {
        result: {
          runId,
          outcome: 'interrupted',
          ...summarizeMonthEnd(before, state.outcomes),
          unfinishedJobs: state.unfinishedJobs,
        },
      };
    }
    const result = {
      runId,
      outcome,
      ...summarizeMonthEnd(before, state.outcomes),
      unfinishedJobs: state.unfinishedJobs,
    };
    try {
      // After PostgreSQL dropped every connection (a restart), the pool may hand this write idle ones it
      // has not yet seen die: it failed on one, and the run read running, then interrupted as if its
      // process had died. Tried again past them (retryOnStaleConnection).
      // The run's own audit entry is written with its end, in one transaction: a run that billed
      // nobody made no receipt, and so left no entry at all (docs/security.md, Audit log).
      const finishedAt = now();
      const progress = progressOf(result, state.usersDone);
      const writeEnd = (text: string | null, isAudited: boolean) =>
        retryOnStaleConnection(deps.db.pool, () =>
          db.$transaction(async (tx) => {
            await monthEndRunsRepository.finishRun(tx, runId, { ...progress, outcome, finishedAt, error: text });
            if (!isAudited) return;
            await appendAudit(
              tx,
              monthEndRunAuditEntry(actor, runId, {
                before,
                outcome,
                usersTotal: state.usersTotal,
                progress,
                error: text,
              }),
              finishedAt,
            );
          }),
        );
      // A log sealed by another instance refuses this instance's entries (it has no AUDIT_CHAIN_KEY): with
      // the entry, the end rolled back and the row read running until someone marked it interrupted. The
      // end is recorded without it then, saying so: the row is what the admin reads.
      if (error instanceof UnsealedAuditAppendError) {
        await writeEnd(errorText, false);
      } else {
        try {
          await writeEnd(errorText, true);
        } catch (refused) {
          if (!(refused instanceof UnsealedAuditAppendError)) throw refused;
          const unwritten = refused.withOutcome("This run's own audit entry was not written").message;
          errorText = errorText === null ? unwritten : `${errorText} ${unwritten}`;
          await writeEnd(errorText, false);
        }
      }
    } catch (writeError) {
      // The row stays running until someone looks at it with the lock released: it then reads interrupted.
      deps.logger?.error({ err: writeError, runId }, 'month-end run ended but its outcome could not be recorded');
    }
    return { result, error };
  }

  /** Bills the users of run `runId`, recording its progress after each; whether every user was billed. */
  async function billMonthEndUsers(
    actor: AuditContext,
    before: string,
    runId: number,
    shouldStop: () => boolean,
    state: MonthEndState,
  ): Promise<boolean> {
    const cutoff = endOfLocalDay(before, config.timeZone);
    if (shouldStop()) return false;
    // Committed before the first receipt of the run: it holds receipt_items against every write.
    // Its lock waits for the receipts in flight (up to their own 60 s), then reads every job.
    await db.$transaction((tx) => receiptsRepository.repairBillingQueue(tx), { timeout: 120_000, maxWait: 10_000 });
    // Whether each account is disabled is read here, once: a disable during the run is not told apart.
    const users = await receiptsRepository.findUsersWithUnbilledJobs(db, cutoff);
    state.usersTotal = users.length;
    // The jobs of the window no receipt of this run bills because they have not finished (shown on /me at
    // an estimate), as Create receipt counts them, for every user in one grouped query.
    const unfinishedJobs = await receiptsRepository.countUnfinishedUnbilledJobsByUser(db, cutoff);
    state.unfinishedJobs = unfinishedJobs;
    if (!state.isAbandoned) {
      await monthEndRunsRepository.recordUsersTotal(db, runId, users.length, unfinishedJobs);
    }
    let failure: { error: unknown } | undefined;
    let nextIndex = 0;
    const billOneAfterAnother = async () => {
      while (failure === undefined && !shouldStop() && nextIndex < users.length) {
        const index = nextIndex++;
        const { username, isDisabled } = users[index] as (typeof users)[number];
        try {
          const created = await createReceipt(username, before, 'admin', actor, runId);
          state.outcomes[index] = { created: { ...created, isUserDisabled: isDisabled } };
        } catch (error) {
          // Someone billed this user between the listing and now: that is the outcome we wanted.
          if (
            error instanceof NothingToBillError ||
            error instanceof ConflictError ||
            error instanceof ReceiptTotalTooLargeError
          ) {
            state.outcomes[index] = { skipped: skipOf(error, username) };
          } else {
            failure ??= { error };
            continue;
          }
        }
        state.usersDone += 1;
        if (state.isAbandoned) continue;
        const progress = progressOf(summarizeMonthEnd(before, state.outcomes), state.usersDone);
        try {
          await monthEndRunsRepository.recordProgress(db, runId, progress);
        } catch (error) {
          // Only the page lags: the next user's write, or the run's end, carries the whole progress again.
          deps.logger?.warn({ err: error, runId }, 'month-end run progress could not be recorded');
        }
      }
    };
    await Promise.all(Array.from({ length: MONTH_END_CONCURRENCY }, billOneAfterAnother));
    if (failure) throw failure.error;
    return nextIndex === users.length;
  }

  /**
   * A month-end run as its page shows it. A run the row says is running while no session holds the
   * month-end lock was ended by its process dying (PostgreSQL releases a session's locks): it is
   * marked interrupted here, by whichever worker looks first.
   */
  async function settleMonthEndRun(row: monthEndRunsRepository.MonthEndRunRow) {
    if (row.outcome !== 'running' || (await receiptsRepository.isMonthEndLockHeld(deps.db.pool))) return row;
    await interruptDeadMonthEndRun(db, row.id, now());
    return (await monthEndRunsRepository.findRun(db, row.id)) ?? row;
  }

  /** The run the rows say is running, settled as settleMonthEndRun does; null when none is. */
  async function settleRunningMonthEndRun() {
    const running = await monthEndRunsRepository.findRunningRun(db);
    return running && (await settleMonthEndRun(running));
  }

  /**
   * Month-end run `id` with its progress, or its outcome once it has ended, and the pages `pages` of its
   * tables; a 404 when there is none, or no such page.
   */
  async function getMonthEndRun(id: number, pages: MonthEndTablePages = { disabledBilled: 1, skipped: 1 }) {
    const row = await monthEndRunsRepository.findRun(db, id);
    if (!row) throw notFoundById('Month-end run', id);
    const [settled, linked] = await Promise.all([
      settleMonthEndRun(row),
      receiptsRepository.findReceiptsOfMonthEndRunSummary(db, id),
    ]);
    const view = monthEndRunViewOf(settled);
    return {
      ...view,
      linkedReceiptCount: linked.count,
      /** Its receipts' cut-off, the end of `before` in the APP_TZ it ran under (null without receipts). */
      windowEnd: linked.windowEnd,
      /** The page of its table of disabled users billed; empty while it runs. */
      disabledBilledPage: monthEndTablePageOf(
        settled,
        'disabledBilled',
        view.isRunning ? [] : view.disabledUsersBilled,
        pages.disabledBilled,
      ),
      /** The page of its table of users skipped. */
      skippedPage: monthEndTablePageOf(settled, 'skipped', view.skipped, pages.skipped),
    };
  }

  /**
   * One page of the month-end runs, newest first (MONTH_END_RUNS_PAGE_SIZE a page): page `query.page`,
   * or the runs after or before the run its Older or Newer link names; a run whose process died is
   * settled first, as its own page would, so the list shows it interrupted.
   */
  async function listMonthEndRuns(query: ListQuery) {
    await assertMonthEndRunPlace(query);
    await settleRunningMonthEndRun();
    const listed = await db.$transaction(
      (tx) => monthEndRunsRepository.listRuns(tx, sliceOf(query, MONTH_END_RUNS_PAGE_SIZE), MONTH_END_RUNS_PAGE_SIZE),
      ONE_SNAPSHOT,
    );
    const pageCount = monthEndRunsPageCountOf(listed.count, query.page);
    const { rows, ...paging } = listed;
    return { runs: rows.map(monthEndRunViewOf), ...pagedAs(query, pageCount), ...paging };
  }

  /** A 400 for an Older or Newer link's run that is not there: the link was edited (runs are never deleted). */
  async function assertMonthEndRunPlace(query: ListQuery): Promise<void> {
    const [field, place] = placeAsked(query);
    if (place && !(await monthEndRunsRepository.findRun(db, place.id))) throw notAPlace(field);
  }

  /** How many pages `count` month-end runs fill; a page past the last is a 404 saying how many runs there are. */
  function monthEndRunsPageCountOf(count: number, page: number): number {
    return pageCountOrNotFound(
      count,
      MONTH_END_RUNS_PAGE_SIZE,
      page,
      (pages) => `There ${count === 1 ? 'is' : 'are'} ${counted(count, 'month-end run')} on ${counted(pages, 'page')}`,
    );
  }

  /**
   * What /admin/month-end?page= refuses (a page past the last, 404), for a HEAD: the runs counted,
   * none read or settled. Page 1 is always there (with no run, it says so) and needs no query.
   */
  async function checkMonthEndRunsPage(query: ListQuery): Promise<void> {
    await assertMonthEndRunPlace(query);
    if (query.page === 1) return;
    monthEndRunsPageCountOf(await monthEndRunsRepository.countRuns(db), query.page);
  }

  /**
   * Nothing when month-end run `id` is there with the pages `pages` of its tables, else its 404: for a
   * HEAD of its page, which reads no more (the run is not settled).
   */
  async function assertMonthEndRunFound(
    id: number,
    pages: MonthEndTablePages = { disabledBilled: 1, skipped: 1 },
  ): Promise<void> {
    const row = await monthEndRunsRepository.findRun(db, id);
    if (!row) throw notFoundById('Month-end run', id);
    for (const table of ['disabledBilled', 'skipped'] as const) {
      monthEndTablePageOf(row, table, MONTH_END_TABLES[table].rowsOf(row), pages[table]);
    }
  }

  /** The run under way, if any, and the newest run that has ended (the billing page). */
  async function findMonthEndRuns() {
    const settled = await settleRunningMonthEndRun();
    const lastFinished = await monthEndRunsRepository.findLastFinishedRun(db);
    return {
      running: settled?.outcome === 'running' ? monthEndRunViewOf(settled) : null,
      lastFinished: lastFinished && monthEndRunViewOf(lastFinished),
    };
  }

  return {
    startMonthEnd,
    runMonthEnd,
    getMonthEndRun,
    assertMonthEndRunFound,
    listMonthEndRuns,
    checkMonthEndRunsPage,
    findMonthEndRuns,
  };
}
