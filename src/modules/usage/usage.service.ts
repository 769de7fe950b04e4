import { Prisma } from '@prisma/client';
import type { AppConfig } from '../../config/config.js';
import type { Database } from '../../db/database.js';
import { escapeCsvIdentifier, escapeCsvText, formatCsvLines } from '../../http/csv-format.js';
import { formatDecimalText } from '../../http/view-format.js';
import { counted } from '../../shared/counted.js';
import {
  AppError,
  BadRequestError,
  InvalidFieldsError,
  NotFoundError,
  ReversedWindowError,
  StartAfterTodayError,
  withArticle,
} from '../../shared/errors.js';
import {
  addLocalDays,
  daysBetween,
  EARLIEST_LOCAL_DATE,
  endOfLocalDay,
  startOfLocalDay,
  toLocalDate,
} from '../../shared/local-date.js';
import { pageOfRows } from '../../shared/paging.js';
import { type UserFilterMatch, userFilterMatchOf } from '../../shared/user-filter.js';
import { isTerminalState } from '../ingestion/slurm-time.parser.js';
import {
  fromMinorUnits,
  type HeldPayment,
  lostDisputeMinorOf,
  pricedDigitsOf,
  returnedMinorOf,
} from '../payments/payment-money.js';
import { minorUnitDigits, sumCosts, tierNameCaseNote } from '../pricing/pricing.js';
import type { RatesService } from '../pricing/rates.service.js';
import * as receiptsRepository from '../receipts/receipts.repository.js';
import type { ReceiptsService } from '../receipts/receipts.service.js';
import { hasDaysAfterToday, listPerDayDays } from './per-day-listing.js';
import type { UsageRow } from './usage.repository.js';
import * as usageRepository from './usage.repository.js';
import {
  type TAdminUsagePageQuery,
  type TAdminUsageQuery,
  type TOwnUsageExportQuery,
  type TUsageQuery,
  type TWindowQuery,
  WINDOW_FIELD_LABELS,
  type WindowFieldLabels,
} from './usage.schema.js';
import { type Bar, renderBarChart } from './usage-chart.js';

/**
 * A day's bar: its hours as the height, and as the table under the chart writes them (six
 * decimals, grouped) for its tooltip, which rounded them to two: 0.004167 GPU-hours read 0.00.
 */
function barOf(day: string, hours: Prisma.Decimal): Bar {
  const digits = hours.toFixed(6);
  return { day, value: hours.toNumber(), shown: formatDecimalText(digits, 6) ?? digits };
}

export interface UsageServiceDeps {
  db: Database;
  config: Pick<AppConfig, 'timeZone' | 'currency' | 'pricing' | 'payments'>;
  rates: RatesService;
  /** The user's payments held for review, which My usage tells them of so that they do not pay those jobs twice. */
  receipts: Pick<ReceiptsService, 'findHeldPaymentsOf'>;
  now?: () => Date;
}

export interface UsageWindow {
  /** Local dates, both included. */
  start: string;
  end: string;
  from: Date;
  before: Date;
}

/**
 * A window too long for a page. It is fine for the CSV, which the message points to, so the
 * answer carries the window for a download link that keeps it, and the window as typed (a From
 * alone runs to today) for the page's tabs.
 */
export class WindowTooLongForPageError extends BadRequestError {
  readonly typed: { start: string; end?: string };

  constructor(
    readonly window: { start: string; end: string },
    maxDays: number,
    options: { isUpToToday?: boolean; labels?: WindowFieldLabels } = {},
  ) {
    const days = counted(daysBetween(window.start, window.end) + 1, 'day');
    const { start: from, end: to } = options.labels ?? WINDOW_FIELD_LABELS;
    // From alone: From is what the user chose, so the message says which From a page can show.
    super(
      options.isUpToToday
        ? `${from} ${window.start} up to today (${window.end}) is ${days}; a page shows at most ${counted(maxDays, 'day')}. ` +
            `Pick ${withArticle(from)} on or after ${addLocalDays(window.end, -(maxDays - 1))}, or ${withArticle(to)} as well (the CSV export has no limit).`
        : `The window is ${days} long; pick at most ${counted(maxDays, 'day')} (the CSV export has no limit).`,
      { field: options.isUpToToday ? 'start' : 'end' },
    );
    this.typed = options.isUpToToday ? { start: window.start } : window;
  }
}

/** For a Per day window some of whose days are not listed: the last day it lists (none: it lists none) and today. */
interface PerDayListedTo {
  lastListed: string | undefined;
  today: string;
}

/**
 * A page of /me past the last one (as a receipt's items answer it: a 404 saying how many
 * there are); it carries the window and view so the answer can link to their first page.
 * `count` is the view's jobs, or for Per day (aggregate) the window's days listed: up to
 * `listing.lastListed` (today, or a later day with a job) when the days after it are not.
 */

/** My usage's Job id, given without dates, that none of the user's finished jobs has. */
export class UsageJobNotFoundError extends NotFoundError {
  constructor(readonly job: string) {
    super(
      `You have no finished job with id ${job}. Type the id Slurm gave it (4242, or 4242_7 for one task of an array job; 4242 lists all its tasks); a job still running is listed once it ends.`,
    );
  }
}

export class UsagePageNotFoundError extends NotFoundError {
  constructor(
    readonly window: UsageWindow,
    readonly view: 'detail' | 'aggregate' | 'billed',
    page: number,
    pageCount: number,
    count: number,
    listing?: PerDayListedTo,
  ) {
    const span = `this window (${window.start} to ${window.end})`;
    const jobs = counted(count, 'job');
    const pages = `on ${counted(pageCount, 'page')}`;
    let found: string;
    if (view === 'aggregate' && count === 0 && listing) {
      // A window wholly after today lists none of its days: "has 0 days up to today" named a today before it.
      found = `This window (${window.start} to ${window.end}) is after today (${listing.today}), so none of its days is listed yet`;
    } else if (view === 'aggregate') {
      // A day after today is listed to only for a job on it (a cluster clock ahead of the app's).
      const upTo = !listing
        ? ''
        : listing.lastListed !== undefined && listing.lastListed > listing.today
          ? ` up to ${listing.lastListed}, its last day with a job`
          : ` up to today (${listing.today})`;
      found = `This window (${window.start} to ${window.end}) has ${counted(count, 'day')}${upTo}, ${pages}`;
    } else if (view === 'billed') {
      found =
        count === 0
          ? `No job of ${span} is on a receipt yet`
          : `${jobs} of ${span} ${count === 1 ? 'is' : 'are'} on a receipt, ${pages}`;
    } else {
      found = count === 0 ? `No jobs ended in ${span}` : `${jobs} ended in ${span}, ${pages}`;
    }
    super(`${found}; there is no page ${page}.`);
  }
}

/**
 * What /me was asked for (myUsagePage): the query as parsed, or its refusal with the window as typed,
 * parsed alone (undefined when its dates are refused too).
 */
export type MyUsageAsk =
  | { query: TUsageQuery }
  | {
      refused: AppError;
      /** The window typed, parsed whole; undefined when either date is not one. */
      typedWindow: TWindowQuery | undefined;
      /** The To typed, parsed alone; undefined when it is not a date. */
      typedEnd: string | undefined;
    };

/** Everything /me shows (myUsagePage), besides what was typed: the page, or a refusal beside the form. */
export type MyUsageView = { heldPayments: HeldPayment[] } & (
  | { kind: 'page'; page: UserUsagePage }
  | {
      /** A page past the last (404): the form, the tabs and a way back to the first page of the window. */
      kind: 'pageNotFound';
      error: UsagePageNotFoundError;
      receiptForm: ReceiptFormDates;
    }
  | {
      /** A refused window, view, sort or page (400). */
      kind: 'refused';
      error: AppError;
      receiptForm: ReceiptFormDates;
      /**
       * The window the tabs keep: the one typed when a page can show it (the refusal is about something
       * else), a too-long one as typed (a From alone stays alone), none (the default) when it is refused.
       */
      shownWindow: { start?: string; end?: string };
      /** The window the CSV exports (a too-long one is what the message sends it to); none when it refuses it. */
      exportWindow: { start: string; end: string } | undefined;
    }
);

/** My usage's receipt form: today in the cluster's zone, and the day it offers to bill up to. */
export interface ReceiptFormDates {
  today: string;
  receiptBefore: string;
}

/** The /me page of a query, in one of its three views (getUserUsage). */
export type UserUsagePage = Awaited<ReturnType<ReturnType<typeof createUsageService>['getUserUsage']>>;

const DEFAULT_DAYS = 7;
/** Pages over a longer window would draw an unreadable chart and sort too many rows; CSV has no limit. */
export const MAX_PAGE_WINDOW_DAYS = 366;
const PAGE_SIZE = 50;
const CSV_BATCH = 10_000;

/** Header row and column order of the usage CSV exports (costs are in CURRENCY, which each row names). */
export const USAGE_CSV_COLUMNS = usageRepository.CSV_JOB_COLUMNS;

export const PAID_CSV_COLUMNS = [
  'receipt_id',
  'user',
  'paid_at',
  'method',
  'tx_ref',
  'total',
  'currency',
  'tier',
  'billed_through',
  'created_at',
  'amount_received',
  'received_currency',
  'payment_id',
  'paid_on',
  // Added after paid_on, so the columns before keep their places. A later refund or void fills them in.
  'amount_refunded',
  'voided_at',
  'void_reason',
  // Added after void_reason, likewise: a dispute the bank has not decided yet (docs/billing.md).
  'amount_disputed',
  'disputed_at',
  // Last, likewise: money a lost dispute took back, which is no refund (docs/billing.md).
  'amount_disputed_lost',
] as const;

const ZERO = new Prisma.Decimal(0);

/**
 * paid.csv's tx_ref: the reference recorded; for a receipt paid with a voided receipt's money and new
 * money for the rest (a top-up), `receipt #N + ` that reference, naming both payments as its
 * amount_received (the new money) and the voided receipt's line (the rest) carry them.
 */
function paidCsvTxRefOf(receipt: {
  txRef: string | null;
  paidWithReceiptId?: number | null;
  newMoneyReceived?: Prisma.Decimal | null;
}): string {
  if (receipt.paidWithReceiptId == null || receipt.newMoneyReceived == null) return receipt.txRef ?? '';
  return `receipt #${receipt.paidWithReceiptId} + ${receipt.txRef ?? ''}`;
}

/**
 * What a paid receipt brought in, for paid.csv: what its online payment received (which an
 * admin may have accepted short or over), or its total when it was marked paid by hand (the
 * admin recorded it paid in full). Empty when the provider did not say what it received. A
 * receipt voided since says what it brought in when it was paid, as its line did then. A receipt
 * marked paid with the money of a receipt voided after it was paid brought in nothing new: 0, as
 * that money is on the voided receipt's line (its tx_ref names that receipt), so the file's sum of
 * amount_received counts it once; with new money received for the rest of its total, that alone.
 */
function receivedColumns(receipt: {
  total: Prisma.Decimal;
  currency: string;
  paidWithReceiptId?: number | null;
  newMoneyReceived?: Prisma.Decimal | null;
  paidWith: {
    id: number;
    receivedMinor: bigint | null;
    receivedCurrency: string | null;
    refundedMinor: bigint | null;
    refundedCurrency: string | null;
    failedRefundMinor: bigint | null;
    uncountedFailedRefundMinor?: bigint | null;
    disputeStatus: string | null;
    disputedMinor: bigint | null;
    disputedCurrency: string | null;
    disputedAt: Date | null;
    isRefundedByBillingTeam?: boolean;
  } | null;
}) {
  const payment = receipt.paidWith;
  if (!payment) {
    const received = receipt.paidWithReceiptId == null ? receipt.total : (receipt.newMoneyReceived ?? ZERO);
    return {
      amount_received: received.toFixed(minorUnitDigits(receipt.currency)),
      received_currency: receipt.currency,
      payment_id: '',
      amount_refunded: '',
      ...openDisputeColumns(null),
      amount_disputed_lost: '',
    };
  }
  const { receivedMinor, receivedCurrency } = payment;
  const returned = returnedColumns(payment);
  const isReceivedKnown = receivedMinor !== null && receivedCurrency !== null;
  return {
    amount_received: isReceivedKnown
      ? fromMinorUnits(receivedMinor, receivedCurrency).toFixed(minorUnitDigits(receivedCurrency))
      : '',
    received_currency: isReceivedKnown ? receivedCurrency : '',
    payment_id: payment.id,
    amount_refunded: returned.amount_refunded,
    ...openDisputeColumns(payment),
    amount_disputed_lost: returned.amount_disputed_lost,
  };
}

/**
 * What went back to the payer of a paid line's payment, in the received currency: part of it, or all
 * of it for a payment refunded in full since (its receipt was unpaid; its line stays in the period it
 * paid in). `amount_refunded` is what the provider refunded, less refunds that failed since (that money
 * stayed with the centre), empty when no refund was reported; `amount_disputed_lost` what the payer's
 * bank took back by a dispute the centre lost, which is no refund, empty when none was lost. Both
 * together are what went back, as the pages count it.
 */
function returnedColumns(payment: {
  receivedMinor?: bigint | null;
  receivedCurrency: string | null;
  isRefundedByBillingTeam?: boolean;
  refundedMinor: bigint | null;
  refundedCurrency: string | null;
  failedRefundMinor: bigint | null;
  uncountedFailedRefundMinor?: bigint | null;
  disputeStatus: string | null;
  disputedMinor: bigint | null;
}) {
  const currency = payment.refundedCurrency ?? payment.receivedCurrency;
  const lostMinor = lostDisputeMinorOf(payment);
  const returnedMinor = returnedMinorOf(
    payment.refundedMinor,
    payment.failedRefundMinor,
    lostMinor,
    payment.uncountedFailedRefundMinor,
  );
  // Resolved as refunded by the billing team (its receipt voided, the money returned at the provider or
  // outside it): all it received went back, as the receipt's page and JSON say, whether or not the
  // provider has reported it yet (a refund made outside the provider it never will). Of that, what a
  // lost dispute took is no refund.
  const { receivedMinor, receivedCurrency } = payment;
  if (payment.isRefundedByBillingTeam && receivedMinor != null && receivedCurrency !== null) {
    const text = (minor: bigint) => fromMinorUnits(minor, receivedCurrency).toFixed(minorUnitDigits(receivedCurrency));
    return {
      amount_refunded: receivedMinor - lostMinor > 0n ? text(receivedMinor - lostMinor) : '',
      amount_disputed_lost: lostMinor > 0n ? text(lostMinor) : '',
    };
  }
  if (returnedMinor === null || currency === null) return { amount_refunded: '', amount_disputed_lost: '' };
  const text = (minor: bigint) => fromMinorUnits(minor, currency).toFixed(minorUnitDigits(currency));
  // The provider's refunded total counts the lost dispute too: without it, had any refund been reported?
  const hasRefund =
    lostMinor === 0n || (payment.refundedMinor ?? 0n) - lostMinor > 0n || (payment.failedRefundMinor ?? 0n) > 0n;
  return {
    amount_refunded: hasRefund ? text(returnedMinor - lostMinor) : '',
    amount_disputed_lost: lostMinor > 0n ? text(lostMinor) : '',
  };
}

/**
 * A dispute of the payment the bank has not decided yet: the money still counts as received (the
 * billing page counts it so too), but the bank may take this much of it back. Empty once decided:
 * a lost one is in amount_disputed_lost, a won one took nothing.
 */
function openDisputeColumns(
  payment: {
    disputeStatus: string | null;
    disputedMinor: bigint | null;
    disputedCurrency: string | null;
    disputedAt: Date | null;
  } | null,
) {
  if (!payment || payment.disputeStatus !== null || payment.disputedMinor === null || !payment.disputedCurrency) {
    return { amount_disputed: '', disputed_at: '' };
  }
  const currency = payment.disputedCurrency;
  return {
    amount_disputed: fromMinorUnits(payment.disputedMinor, currency).toFixed(minorUnitDigits(currency)),
    disputed_at: payment.disputedAt?.toISOString() ?? '',
  };
}

/** Jobs and hours of several rows added up, the hours as decimals (floats drift off the CSV's sums). */
interface HoursSum {
  jobs: number;
  cpuHours: Prisma.Decimal;
  gpuHours: Prisma.Decimal;
  memGbHours: Prisma.Decimal;
}
function sumHours(rows: HoursSum[]): HoursSum {
  return rows.reduce<HoursSum>(
    (sum, row) => ({
      jobs: sum.jobs + row.jobs,
      cpuHours: sum.cpuHours.plus(row.cpuHours),
      gpuHours: sum.gpuHours.plus(row.gpuHours),
      memGbHours: sum.memGbHours.plus(row.memGbHours),
    }),
    { jobs: 0, cpuHours: ZERO, gpuHours: ZERO, memGbHours: ZERO },
  );
}

/** Usage pages and exports: per-job listings, daily and per-user totals, CSV streams. */
export function createUsageService(deps: UsageServiceDeps) {
  const { config, rates } = deps;
  const db = deps.db.prisma;
  const now = deps.now ?? (() => new Date());
  const minorDigits = minorUnitDigits(config.currency);
  // Estimates are rounded as a receipt would price them (KWD with Stripe: to 0.010).
  const pricedDigits = pricedDigitsOf(config.currency, config.payments);

  /**
   * The dates of My usage's receipt form under a window ending `windowEnd` (undefined: the default
   * window, or a To that is not a date): today in the cluster's zone, its latest day, and the day it
   * offers to bill up to. A window that ended before today offers its last day, also when the window
   * is refused: today billed more than the researcher had been reading.
   */
  function receiptFormDatesFor(windowEnd: string | undefined): ReceiptFormDates {
    const today = toLocalDate(now(), config.timeZone);
    return { today, receiptBefore: windowEnd !== undefined && windowEnd < today ? windowEnd : today };
  }

  /**
   * The window asked for: both dates as given, From alone up to today, To alone the 7 days up to
   * it, neither the last 7 local days; a clear 400 when it makes no sense.
   */
  function resolveWindow(
    query: TWindowQuery,
    options: { maxDays?: number; labels?: WindowFieldLabels } = {},
  ): UsageWindow {
    const labels = options.labels ?? WINDOW_FIELD_LABELS;
    const today = toLocalDate(now(), config.timeZone);
    // From alone means "since From": it used to show the 7 days from it, silently leaving out the rest.
    const isUpToToday = query.start !== undefined && query.end === undefined;
    if (isUpToToday && query.start !== undefined && query.start > today) {
      throw new StartAfterTodayError(query.start, today, labels.start);
    }
    const end = query.end ?? today;
    // To alone is the 7 days up to it, but none before the first date a query takes: To 1900-01-01 was
    // 1899-12-26 to 1900-01-01, a From that its page's form, tabs and CSV link then sent and were refused.
    const weekBefore = addLocalDays(end, -(DEFAULT_DAYS - 1));
    const start = query.start ?? (weekBefore < EARLIEST_LOCAL_DATE ? EARLIEST_LOCAL_DATE : weekBefore);
    if (start > end) {
      throw new ReversedWindowError(start, end, { labels });
    }
    if (options.maxDays !== undefined && daysBetween(start, end) + 1 > options.maxDays) {
      throw new WindowTooLongForPageError({ start, end }, options.maxDays, { isUpToToday, labels });
    }
    return {
      start,
      end,
      from: startOfLocalDay(start, config.timeZone),
      before: endOfLocalDay(end, config.timeZone),
    };
  }

  async function pricingFor(usernames?: string[]): Promise<usageRepository.PricingContext> {
    return { basis: config.pricing.cpuBasis, minorDigits, pricedDigits, rates: await rates.getRateTable(usernames) };
  }

  /** Each day of the window and the instant it starts in APP_TZ, oldest first: Per day's days. */
  function dayStartsOf(window: UsageWindow): usageRepository.LocalDayStart[] {
    const days = [];
    for (let day = window.start; day <= window.end; day = addLocalDays(day, 1)) {
      days.push({ day, from: startOfLocalDay(day, config.timeZone) });
    }
    return days;
  }

  function fillDays(window: UsageWindow, rows: Awaited<ReturnType<typeof usageRepository.sumByLocalDay>>) {
    const byDay = new Map(rows.map((row) => [row.day, row]));
    const days = [];
    for (let day = window.start; day <= window.end; day = addLocalDays(day, 1)) {
      const row = byDay.get(day);
      days.push({
        day,
        jobs: row?.jobs ?? 0,
        // Decimals, as SQL summed them: the totals below add them up exactly. Added as floats, a
        // window of thousands of large jobs read 7450489958.019717 GB-hours where its CSV's rows add
        // up to 7450489958.019716.
        cpuHours: new Prisma.Decimal(row?.cpuHours ?? ZERO),
        gpuHours: new Prisma.Decimal(row?.gpuHours ?? ZERO),
        memGbHours: new Prisma.Decimal(row?.memGbHours ?? ZERO),
        cost: row?.cost ?? ZERO,
      });
    }
    return days;
  }

  /**
   * The window /me shows: the one asked for, or, for a Job id given without dates, the days that
   * job (an array job's tasks) ended: a researcher with a job id from a log does not know the day.
   */
  async function myUsageWindowOf(
    username: string,
    query: TWindowQuery & { job?: string | undefined },
    options: { maxDays?: number } = { maxDays: MAX_PAGE_WINDOW_DAYS },
  ): Promise<UsageWindow> {
    if (query.job === undefined || query.start !== undefined || query.end !== undefined) {
      return resolveWindow(query, options);
    }
    const ended = await usageRepository.findJobEndRange(db, username, query.job);
    if (!ended) throw new UsageJobNotFoundError(query.job);
    return resolveWindow(
      { start: toLocalDate(ended.first, config.timeZone), end: toLocalDate(ended.last, config.timeZone) },
      options,
    );
  }

  /**
   * The window of a user's own CSV (/me.csv): as its page finds it, a Job id without dates the days
   * that job ended (404 when none of the user's jobs has it), but of any length.
   */
  async function resolveOwnExportWindow(username: string, query: TOwnUsageExportQuery): Promise<UsageWindow> {
    return myUsageWindowOf(username, query, {});
  }

  /** The /me page in one of its three views. */
  async function getUserUsage(username: string, query: TUsageQuery) {
    const window = await myUsageWindowOf(username, query);
    const filter = { from: window.from, before: window.before, user: username };
    const tier = await rates.getUserTier(username);
    const pricing: usageRepository.PricingContext = {
      basis: config.pricing.cpuBasis,
      minorDigits,
      pricedDigits,
      rates: [{ username, tier: tier.tier, cpu: tier.rates.cpu, gpu: tier.rates.gpu, mem: tier.rates.mem }],
    };
    // The receipt form under the page: the day it offers to bill up to, for this window.
    const base = {
      window,
      tier,
      currency: config.currency,
      view: query.view,
      receiptForm: receiptFormDatesFor(window.end),
    };

    if (query.view === 'aggregate') {
      // Every day of the window for its totals and charts; the table lists a page of them, as
      // Jobs does its jobs: a year was 366 rows on a desktop and 366 cards on a phone.
      const days = fillDays(window, await usageRepository.sumByLocalDay(db, filter, pricing, dayStartsOf(window)));
      // The table (and its JSON) lists the days newest first, as Jobs lists its jobs by Ended:
      // oldest first, page 1 of a year's window was its oldest 50 days, a year ago. The charts
      // below stay a time axis, oldest on the left, and the CSV stays in the order the jobs ended.
      // Days after today and after the last day with a job are charted but not listed
      // (listPerDayDays, which HEAD asks too); the page says which.
      const today = toLocalDate(now(), config.timeZone);
      const { lastListed, notListed } = listPerDayDays(window, today, days.findLast((day) => day.jobs > 0)?.day);
      const listed = lastListed === undefined ? [] : days.filter((day) => day.day <= lastListed).toReversed();
      const toCome = notListed ?? null;
      const pageCount = assertPageExists(
        window,
        'aggregate',
        query.page,
        listed.length,
        notListed ? { lastListed, today } : undefined,
      );
      const totals = { ...sumHours(days), cost: sumCosts(days.map((day) => day.cost)) };
      const charts = [
        {
          title: 'CPU core-hours per day',
          unit: 'core-h',
          bars: days.map((day) => barOf(day.day, day.cpuHours)),
        },
        {
          title: 'GPU-hours per day',
          unit: 'GPU-h',
          color: '#067647',
          bars: days.map((day) => barOf(day.day, day.gpuHours)),
        },
        {
          title: 'Memory GB-hours per day',
          unit: 'GB-h',
          color: '#b54708',
          bars: days.map((day) => barOf(day.day, day.memGbHours)),
        },
      ].map((chart) => ({ title: chart.title, svg: renderBarChart(chart) }));
      const shownDays = listed.slice((query.page - 1) * PAGE_SIZE, query.page * PAGE_SIZE);
      return {
        ...base,
        view: 'aggregate' as const,
        days: shownDays,
        page: query.page,
        pageCount,
        count: listed.length,
        windowDays: days.length,
        toCome,
        totals,
        charts,
      };
    }

    if (query.view === 'billed') {
      const { rows, count, cost } = await usageRepository.findBilledPage(
        db,
        filter,
        { offset: (query.page - 1) * PAGE_SIZE, limit: PAGE_SIZE },
        minorDigits,
      );
      const pageCount = assertPageExists(window, 'billed', query.page, count);
      const totals = { jobs: count, cost };
      // The number of the page's first job, for the line that says which jobs a page shows.
      const first = (query.page - 1) * PAGE_SIZE + 1;
      return { ...base, view: 'billed' as const, rows, page: query.page, pageCount, count, totals, first };
    }

    // Jobs with no end are in no window: the page says how many, or a researcher looks for them in vain.
    // Counted by the page's own statement, so /me sends no query more for it.
    const {
      rows,
      count,
      notEnded = 0,
    } = await usageRepository.findJobsPage(
      deps.db.pool,
      { ...filter, job: query.job },
      pricing,
      { sort: query.sort, direction: query.dir, offset: (query.page - 1) * PAGE_SIZE, limit: PAGE_SIZE },
      username,
    );
    const pageCount = assertPageExists(window, 'detail', query.page, count);
    // A job with an end time that has not finished is shown at an estimate, but no receipt bills it
    // until it finishes: its row says so, where "not yet" promised a bill the receipt never made.
    // Only a row whose state is not a final one can be such a job (ingestion stores is_terminal from
    // the state, isTerminalState): asked about those alone, the usual page, all of it finished, sends
    // no query more than before.
    const unfinished = await usageRepository.findUnfinishedJobIds(
      db,
      rows.filter((row) => row.receiptId === null && !isTerminalState(row.state)).map((row) => row.id),
    );
    return {
      ...base,
      view: 'detail' as const,
      // Only such a row is copied to say so (isFinished false; the rest read as finished): copying every
      // row of every page cost `browse` about 5% of its throughput (npm run bench, 2026-12-06 night).
      rows:
        unfinished.size === 0
          ? (rows as (UsageRow & { isFinished?: false })[])
          : rows.map((row): UsageRow & { isFinished?: false } =>
              unfinished.has(BigInt(row.id)) ? { ...row, isFinished: false } : row,
            ),
      page: query.page,
      pageCount,
      count,
      sort: query.sort,
      dir: query.dir,
      job: query.job,
      notEnded,
    };
  }

  /**
   * Everything /me shows for what was asked: the page with the user's held payments, or, for a page
   * past the last or a refused window, view, sort or page, what the page shows beside the refusal.
   */
  async function myUsagePage(username: string, asked: MyUsageAsk): Promise<MyUsageView> {
    const heldPayments = await deps.receipts.findHeldPaymentsOf(username);
    let refusal: AppError;
    let typedWindow: TWindowQuery | undefined;
    let typedEnd: string | undefined;
    if ('query' in asked) {
      try {
        return { kind: 'page', page: await getUserUsage(username, asked.query), heldPayments };
      } catch (error) {
        if (error instanceof UsagePageNotFoundError) {
          return { kind: 'pageNotFound', error, receiptForm: receiptFormDatesFor(error.window.end), heldPayments };
        }
        // Bad dates, and a Job id none of the user's jobs has, come back as the page with the message
        // and the form, not as an error page.
        const isShownOnPage =
          error instanceof AppError && (error.status === 400 || error instanceof UsageJobNotFoundError);
        if (!isShownOnPage) throw error;
        refusal = error;
        typedWindow = { start: asked.query.start, end: asked.query.end };
        typedEnd = asked.query.end;
      }
    } else {
      refusal = asked.refused;
      typedWindow = asked.typedWindow;
      typedEnd = asked.typedEnd;
    }
    const shownWindow = shownWindowOf(typedWindow);
    return {
      kind: 'refused',
      error: refusal,
      // The To typed, even of a window refused (reversed, or a From that is not a date): today
      // billed more than the researcher had typed (reading November, Create receipt billed December).
      receiptForm: receiptFormDatesFor(typedEnd),
      shownWindow,
      exportWindow: exportWindowOf(typedWindow),
      heldPayments,
    };
  }

  /** The window typed, when a page can show it; a too-long one as typed; none when the window is refused. */
  function shownWindowOf(typed: TWindowQuery | undefined): { start?: string; end?: string } {
    if (typed === undefined) return {};
    try {
      resolveWindow(typed, { maxDays: MAX_PAGE_WINDOW_DAYS });
      return { start: typed.start, end: typed.end };
    } catch (error) {
      if (error instanceof WindowTooLongForPageError) return { ...error.typed };
      if (error instanceof AppError && error.status === 400) return {};
      throw error;
    }
  }

  /** The window a CSV export of the window typed reads (of any length), or none when the export refuses it. */
  function exportWindowOf(typed: TWindowQuery | undefined): { start: string; end: string } | undefined {
    if (typed === undefined) return undefined;
    try {
      const { start, end } = resolveWindow(typed);
      return { start, end };
    } catch (error) {
      if (error instanceof AppError && error.status === 400) return undefined;
      throw error;
    }
  }

  /**
   * What the /me page of `query` refuses, for a HEAD (a link checker, `curl -I`), which answers the
   * status and headers of its GET: the window and view (400) as getUserUsage checks them, and a page
   * past the last (404) by counting what it lists, without reading, pricing or summing a job. Page 1
   * is always there (an empty window says so), and is checked without a query.
   */
  async function checkUserUsagePage(username: string, query: TUsageQuery): Promise<void> {
    const window = await myUsageWindowOf(username, query);
    if (query.page === 1) return;
    const filter = { from: window.from, before: window.before, user: username };
    if (query.view === 'billed') {
      assertPageExists(window, 'billed', query.page, await usageRepository.countBilledJobs(db, filter));
      return;
    }
    if (query.view === 'detail') {
      const jobs = await usageRepository.countJobs(deps.db.pool, { ...filter, job: query.job });
      assertPageExists(window, 'detail', query.page, jobs);
      return;
    }
    // Per day's days listed, by the rule getUserUsage lists them by; a window up to today needs no job for it.
    const today = toLocalDate(now(), config.timeZone);
    const lastEnd = hasDaysAfterToday(window, today) ? await usageRepository.findLastJobEnd(db, filter) : null;
    const { lastListed, count, notListed } = listPerDayDays(
      window,
      today,
      lastEnd ? toLocalDate(lastEnd, config.timeZone) : undefined,
    );
    assertPageExists(window, 'aggregate', query.page, count, notListed ? { lastListed, today } : undefined);
  }

  /**
   * What getAdminUsage refuses, checked without reading a job: for a HEAD of /admin/usage, which
   * answers the status and headers of its GET and used to sum up to a year of jobs for nothing.
   */
  async function checkAdminUsageQuery(query: TAdminUsageQuery): Promise<void> {
    resolveWindow(query, { maxDays: MAX_PAGE_WINDOW_DAYS });
    await formerTierOf(query.tier);
  }

  /**
   * Checks a Tier filter: undefined for none or a tier there is (from the cached rates, no query).
   * A receipt keeps the tier name it was billed under, so a name no tier has now still finds jobs
   * when it is a former name of a tier there is (the audit log's renames) or receipts carry it (a
   * tier deleted since): it is taken, with what it is now for the page to say (`now`: the tier's
   * name now, null for none). Any other name is refused (400, listing the tiers, as the tier forms
   * do): it would match no job, and read as "nobody used that tier".
   */
  async function formerTierOf(tier: string | undefined): Promise<FormerTier | undefined> {
    if (!tier) return undefined;
    const names = [...(await rates.getSnapshot()).tiers.keys()];
    if (names.includes(tier)) return undefined;
    const [fate, isOnReceipts] = await Promise.all([
      rates.whatBecameOfTierName(tier),
      usageRepository.isTierNameOnReceipts(db, tier),
    ]);
    const shown = `Shown: the jobs billed under the name ${tier}`;
    if (fate.renamed) {
      const { name, actor, at } = fate.renamed;
      return {
        name: tier,
        now: name,
        note: `${tier} is the former name of tier ${name}: renamed by ${actor} at ${at}. ${shown}, before it was renamed; those priced at ${name} since are under its own name.`,
      };
    }
    if (isOnReceipts) {
      const deleted = fate.deleted ? `: it was deleted by ${fate.deleted.actor} at ${fate.deleted.at}` : '';
      return { name: tier, now: null, note: `No tier is called ${tier} now${deleted}. ${shown}.` };
    }
    const known = names.length > 0 ? `Known tiers: ${names.join(', ')}.` : 'No tier exists yet.';
    // `Private` for private: said to be lower case, not read as private (tierNameCaseNote says why).
    throw new InvalidFieldsError(
      { tier: `unknown tier "${tier}"${tierNameCaseNote(tier, names)}. ${known}` },
      { tier: 'Tier' },
    );
  }

  /**
   * The jobs /admin/usage and its CSV read under `query` in `window`, and what its User filter matched
   * among the job owners, by the billing page's rule (userFilterMatchOf): part of a name in any case is
   * every owner containing it, a whole name that owner alone (a link to one user's usage). One owner is
   * the filter's `user`, as /me's is, so that the one-user plans of the CSV apply; several are `users`.
   */
  async function adminJobFilterOf(
    query: TAdminUsageQuery,
    window: UsageWindow,
  ): Promise<{
    filter: usageRepository.JobFilter;
    match: UserFilterMatch | undefined;
    formerTier: FormerTier | undefined;
  }> {
    const formerTier = await formerTierOf(query.tier);
    const base = {
      from: window.from,
      before: window.before,
      account: query.account,
      partition: query.partition,
      tier: query.tier,
    };
    if (!query.user) return { filter: base, match: undefined, formerTier };
    const match = userFilterMatchOf(query.user, await usageRepository.findJobOwnersContaining(db, query.user));
    const [only, ...others] = match.usernames;
    const owners = only !== undefined && others.length === 0 ? { user: only } : { users: match.usernames };
    return { filter: { ...base, ...owners }, match, formerTier };
  }

  /** Usage across users (admin): per-user totals under the filters. */
  async function getAdminUsage(query: TAdminUsageQuery) {
    const window = resolveWindow(query, { maxDays: MAX_PAGE_WINDOW_DAYS });
    const { filter, match, formerTier } = await adminJobFilterOf(query, window);
    const pricing = await pricingFor(match?.usernames);
    const tierOf = new Map(pricing.rates.map((row) => [row.username, row.tier]));
    const users = sharesToUsers(await usageRepository.sumByUser(db, filter, pricing), tierOf);
    const totals = {
      ...sumHours(users),
      // Money and hours are added as decimals, as the CSV's rows add up.
      cost: sumCosts(users.map((row) => row.cost ?? ZERO)),
      billedCost: sumCosts(users.map((row) => row.billedCost ?? ZERO)),
    };
    return {
      window,
      users,
      totals,
      filters: pickFilters(query),
      currency: config.currency,
      // The owners the User filter matched (null without one), which the page names when there are
      // several, and the others containing a whole name matched, offered as links (bobby's beside bob's).
      matchedUsers: match?.usernames ?? null,
      alsoContaining: match?.alsoContaining ?? [],
      // A Tier filter by a name no tier has now: what it is now (null for a tier there is, or none).
      formerTier: formerTier ?? null,
    };
  }

  /**
   * A page of /admin/usage: getAdminUsage's figures with `PAGE_SIZE` of its users, in name order, and
   * the Total of them all. Every user of the window was one page: 2,290 rows and 1.1 MB for a week of
   * a 3,000-user centre. The sums are read whole either way (the Total needs them); a page past the
   * last is a 404 saying how many users there are.
   */
  async function getAdminUsagePage(query: TAdminUsagePageQuery) {
    const result = await getAdminUsage(query);
    const count = result.users.length;
    const { rows, page, pageCount } = pageOfRows(
      result.users,
      PAGE_SIZE,
      query.page,
      (pages) => `The window and filters match ${counted(count, 'user')} on ${counted(pages, 'page')}`,
    );
    return { ...result, users: rows, count, page, pageCount };
  }

  /**
   * What getAdminUsagePage refuses, for a HEAD: the query as checkAdminUsageQuery checks it, and a
   * later page's users counted (from the sums, as its GET reads them) for a page past the last.
   */
  async function checkAdminUsagePage(query: TAdminUsagePageQuery): Promise<void> {
    await checkAdminUsageQuery(query);
    if (query.page > 1) await getAdminUsagePage(query);
  }

  /**
   * Every job of one user in the window (of a Job id, when given) as CSV text (no header), in chunks:
   * in the order they ended, or as the Jobs page sorts when a sort or direction is given (its
   * defaults for the other: Ended, newest first).
   */
  async function streamUserCsv(username: string, query: TOwnUsageExportQuery) {
    const window = resolveWindow(query);
    const pricing = { ...(await pricingFor([username])), currency: config.currency };
    const filter = { from: window.from, before: window.before, user: username, job: query.job };
    const order =
      query.sort === undefined && query.dir === undefined
        ? undefined
        : { sort: query.sort ?? 'end', direction: query.dir ?? 'desc' };
    return {
      window,
      chunks: usageRepository.streamCsvLines(deps.db, filter, pricing, order),
    };
  }

  /** Every job of every user (under the filters) in the window as CSV text (no header), in chunks. */
  async function streamAdminCsv(query: TAdminUsageQuery) {
    const window = resolveWindow(query);
    const { filter, match } = await adminJobFilterOf(query, window);
    const pricing = { ...(await pricingFor(match?.usernames)), currency: config.currency };
    return {
      window,
      chunks: usageRepository.streamCsvLines(deps.db, filter, pricing),
    };
  }

  /**
   * Receipts paid in the window, voided since or not, and the payments of the window refunded in
   * full since, as CSV text (no header), in chunks.
   */
  async function streamPaidCsv(query: TWindowQuery) {
    const window = resolveWindow(query);
    async function* chunks() {
      let after: receiptsRepository.PaidLineCursor | undefined;
      for (;;) {
        const batch = await receiptsRepository.findPaidBatch(db, window, after, CSV_BATCH);
        const records = batch.map((receipt) => ({
          receipt_id: receipt.id,
          user: escapeCsvText(receipt.username),
          paid_at: receipt.paidAt.toISOString(),
          method: receipt.paymentMethod ?? '',
          tx_ref: escapeCsvIdentifier(paidCsvTxRefOf(receipt)),
          total: receipt.total.toFixed(minorUnitDigits(receipt.currency)),
          currency: receipt.currency,
          tier: escapeCsvText(receipt.tierName),
          billed_through: receipt.billedThrough.toISOString().slice(0, 10),
          created_at: receipt.createdAt.toISOString(),
          ...receivedColumns(receipt),
          // The local day of paid_at: the day the window selects by, and a hand-marked receipt's "Paid on".
          paid_on: toLocalDate(receipt.paidAt, config.timeZone),
          voided_at: receipt.voidedAt?.toISOString() ?? '',
          void_reason: escapeCsvText(receipt.voidReason ?? ''),
        }));
        yield formatCsvLines(records, PAID_CSV_COLUMNS);
        const last = batch.at(-1);
        if (!last || batch.length < CSV_BATCH) return;
        after = { paidAt: last.paidAt, receiptId: last.id, paymentId: last.refundedPaymentId ?? 0 };
      }
    }
    return { window, chunks: chunks() };
  }

  return {
    resolveWindow,
    receiptFormDatesFor,
    getUserUsage,
    myUsagePage,
    checkUserUsagePage,
    checkAdminUsageQuery,
    checkAdminUsagePage,
    getAdminUsage,
    getAdminUsagePage,
    streamUserCsv,
    resolveOwnExportWindow,
    streamAdminCsv,
    streamPaidCsv,
  };
}

/**
 * The number of pages of a listing of `count` jobs (or days, for Per day); a page past the last
 * is a 404. An empty window still has its page 1 (which says there is nothing in it).
 */
function assertPageExists(
  window: UsageWindow,
  view: UsagePageNotFoundError['view'],
  page: number,
  count: number,
  listing?: PerDayListedTo,
): number {
  const pageCount = Math.max(1, Math.ceil(count / PAGE_SIZE));
  if (page > pageCount) throw new UsagePageNotFoundError(window, view, page, pageCount, count, listing);
  return pageCount;
}

/** A tier a user's jobs of the window were priced under, and how many of them. */
export interface TierShare {
  tier: string | null;
  /** A receipt's tier (its jobs billed under it), or else the user's current tier (unbilled jobs). */
  billed: boolean;
  jobs: number;
}

/**
 * Per-user totals from the sums per user and tier (ordered by user), each user's `tiers` listing
 * what their jobs were priced under: the current tier of the unbilled ones first, then each
 * receipt's tier by name. `tier` stays the one in force for the user now, as My usage names it.
 * A single tier for the row, the current or the greatest name, said a user's billed jobs were
 * under the tier they were moved to since, or the reverse.
 */
function sharesToUsers(
  rows: Awaited<ReturnType<typeof usageRepository.sumByUser>>,
  currentTierOf: Map<string, string>,
) {
  const users: (usageRepository.TotalsRow & { username: string; tier: string | null; tiers: TierShare[] })[] = [];
  for (const row of rows) {
    let user = users.at(-1);
    if (user?.username !== row.username) {
      user = {
        username: row.username,
        tier: currentTierOf.get(row.username) ?? null,
        tiers: [],
        jobs: 0,
        cpuHours: ZERO,
        gpuHours: ZERO,
        memGbHours: ZERO,
        cost: ZERO,
        billedCost: ZERO,
      };
      users.push(user);
    }
    if (!row.isBilled) user.tier ??= row.tier;
    user.tiers.push({ tier: row.tier, billed: row.isBilled, jobs: row.jobs });
    user.jobs += row.jobs;
    user.cpuHours = user.cpuHours.plus(row.cpuHours);
    user.gpuHours = user.gpuHours.plus(row.gpuHours);
    user.memGbHours = user.memGbHours.plus(row.memGbHours);
    user.cost = user.cost.plus(row.cost ?? ZERO);
    user.billedCost = user.billedCost.plus(row.billedCost ?? ZERO);
  }
  const byName = (a: string | null, b: string | null) => ((a ?? '') < (b ?? '') ? -1 : (a ?? '') > (b ?? '') ? 1 : 0);
  for (const user of users) user.tiers.sort((a, b) => Number(a.billed) - Number(b.billed) || byName(a.tier, b.tier));
  return users;
}

/** A Tier filter's name that no tier has now but receipts were billed under, and what it is now. */
export interface FormerTier {
  name: string;
  /** The tier's name now when it was renamed; null when no tier is (deleted since). */
  now: string | null;
  note: string;
}

function pickFilters(query: TAdminUsageQuery) {
  return { user: query.user, account: query.account, partition: query.partition, tier: query.tier };
}

export type UsageService = ReturnType<typeof createUsageService>;
