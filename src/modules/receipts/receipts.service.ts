import { Prisma } from '@prisma/client';
import type { AppConfig } from '../../config/config.js';
import type { Database } from '../../db/database.js';
import { escapeCsvText, formatCsvLines, formatCsvUtcTime } from '../../http/csv-format.js';
import type { BackgroundWork } from '../../shared/background-work.js';
import { counted } from '../../shared/counted.js';
import {
  AppError,
  ConflictError,
  InvalidFieldsError,
  isUniqueViolation,
  NotFoundError,
  notFoundById,
  ReversedWindowError,
  StartAfterTodayError,
} from '../../shared/errors.js';
import { sliceOf } from '../../shared/list-place.js';
import { endOfLocalDay, formatLocalDateTime, startOfLocalDay, toLocalDate } from '../../shared/local-date.js';
import type { Logger } from '../../shared/logger.js';
import { pageCountOrNotFound } from '../../shared/paging.js';
import { isWholeName, type UserFilterMatch, userFilterMatchOf } from '../../shared/user-filter.js';
import { type AuditContext, appendAudit } from '../audit/audit.service.js';
import * as ingestionRepository from '../ingestion/ingestion.repository.js';
import type { Metrics } from '../metrics/metrics.js';
import type { CanceledCheckout, CloseCanceledCheckouts } from '../payments/checkout-closer.js';
import {
  billingTeamRefundOf,
  describeMoney,
  fromMinorUnits,
  type HeldPayment,
  type HeldPaymentNote,
  hasAmountDue,
  heldPaymentNoteOf,
  heldPaymentOf,
  type MoneyPaidReceipt,
  type PaymentMoney,
  paymentMoneyOf,
  pricedDigitsOf,
  pricedStepOf,
} from '../payments/payment-money.js';
import * as paymentsRepository from '../payments/payments.repository.js';
import { minorUnitDigits } from '../pricing/pricing.js';
import * as ratesRepository from '../pricing/rates.repository.js';
import type { RatesService } from '../pricing/rates.service.js';
import * as usersRepository from '../users/users.repository.js';
import { type ListQuery, notAPlace, pagedAs, placeAsked } from './list-query.js';
import { createMonthEndService } from './month-end.service.js';
import * as monthEndRunsRepository from './month-end-runs.repository.js';
import {
  BilledMeanwhileError,
  NothingToBillError,
  RatesChangedSinceShownError,
  ReceiptTotalTooLargeError,
} from './receipt-creation.errors.js';
import * as receiptsRepository from './receipts.repository.js';
import {
  PAYMENT_METHODS,
  RECEIPT_FIELD_LABELS,
  type TMarkPaid,
  type TReceiptFilter,
  type TVoidReceipt,
} from './receipts.schema.js';

/** The billing list filtered by a month-end run that does not exist (404, worded as every miss by id). */
export class UnknownRunFilterError extends NotFoundError {
  constructor(runId: number) {
    super(notFoundById('Month-end run', runId).message);
  }
}

type MarkPaidInput = Pick<TMarkPaid, 'method' | 'amount_received'> & {
  tx_ref?: string | undefined;
  paid_on?: string | undefined;
  paid_with_receipt?: number | undefined;
  new_money?: Prisma.Decimal | undefined;
  based_on_status_changes?: number | undefined;
};

/**
 * The money of a receipt voided after it was paid, judged for paying `receipt` (whose jobs it billed
 * before they were billed again): a receipt of the same user, void, paid before the void, that billed
 * some of this receipt's jobs (as the page's notices name it), whose money paid no other receipt yet.
 * Its row is locked first, so two marks spending it at once take turns. A refusal names the field
 * (400), or the receipt the money already paid (409); nothing is changed. `newMoney`: the new money
 * received now for the rest of the total, when that money is short of it (a top-up).
 */
async function moneyOfVoidedReceiptIn(
  tx: Prisma.TransactionClient,
  receipt: { id: number; username: string; total: Prisma.Decimal; currency: string },
  sourceId: number,
  newMoney?: Prisma.Decimal,
) {
  const refuse = (why: string) => new InvalidFieldsError({ paid_with_receipt: why }, RECEIPT_FIELD_LABELS);
  if (sourceId === receipt.id) throw refuse(`receipt #${sourceId} is this receipt`);
  await receiptsRepository.lockReceiptWhoseMoneyPays(tx, sourceId);
  const source = await receiptsRepository.findMoneySource(tx, sourceId);
  if (!source) throw refuse(`there is no receipt #${sourceId}`);
  if (source.username !== receipt.username) {
    throw refuse(
      `receipt #${sourceId} bills ${source.username}, not ${receipt.username}; its money cannot pay ${receipt.username}'s receipt`,
    );
  }
  if (source.status !== 'void') {
    throw refuse(
      `receipt #${sourceId} is ${source.status}, not void; only the money of a receipt voided after it was paid can pay another`,
    );
  }
  if (source.paidAt === null) throw refuse(await unpaidVoidRefusalOf(tx, sourceId));
  // A 0.00 receipt is settled as it is made, no money taken: named as money, it read "paid with the
  // money of receipt #N (voided), 0.00", and paid.csv's reference sent finance after a payment that
  // never happened. The page never offers it; a mark paid naming it is refused as well.
  if (source.paymentMethod === NO_CHARGE_METHOD) {
    throw refuse(`receipt #${sourceId} was settled at no charge (its total was 0): it took no money to pay another`);
  }
  // The money of the jobs billed again here, as the page's notices name it: a voided receipt of other
  // jobs was paid for those, and its money spent here would leave them unpaid.
  if (!(await receiptsRepository.billsJobsOf(tx, receipt.id, sourceId))) {
    const why = `receipt #${sourceId} billed none of this receipt's jobs; only the money of a voided receipt that billed some of them`;
    // A script has no notice above: it is told where the receipt's JSON names them.
    throw new InvalidFieldsError(
      {
        paid_with_receipt: `${why} can pay it (sameJobsVoidedPaidByHand of GET /admin/receipts/${receipt.id} names them)`,
      },
      RECEIPT_FIELD_LABELS,
      {},
      { paid_with_receipt: `${why} (its notice above names it) can pay it` },
    );
  }
  if (source.alreadyPaidReceiptId !== null) {
    throw new ConflictError(
      `The money of receipt #${sourceId} already paid receipt #${source.alreadyPaidReceiptId}; it cannot pay receipt #${receipt.id} too. Nothing was changed.`,
    );
  }
  if (source.isPaymentRefunded) {
    throw new ConflictError(
      `The money of receipt #${sourceId} went back to the payer: payment #${source.paymentId} was refunded, so it cannot pay receipt #${receipt.id}. Nothing was changed.`,
    );
  }
  // A receipt is paid in full or not at all, with this money as with new money: the jobs billed again
  // (at another tier, most often) cost another total, and the voided receipt's money marked the new
  // one paid in full while the difference was never collected (or the payer's excess never returned).
  // Short of it, new money received now may make up the rest (one mark paid, both parts recorded, so
  // paid.csv counts each once); over it, or in another currency, it stays refused.
  const money = source.money;
  if (money === null && newMoney !== undefined) {
    throw new InvalidFieldsError(
      {
        new_money: `the provider did not report what the payment of receipt #${sourceId} received, so the rest of the total cannot be known; leave it empty`,
      },
      RECEIPT_FIELD_LABELS,
    );
  }
  if (money !== null) {
    if (
      money.currency !== receipt.currency ||
      money.amount.greaterThan(receipt.total) ||
      (newMoney === undefined && !money.amount.equals(receipt.total))
    ) {
      throw new VoidedMoneyNotTotalError(sourceId, money, receipt);
    }
    if (newMoney !== undefined && !money.amount.plus(newMoney).equals(receipt.total)) {
      throw new TopUpNotTotalError(sourceId, money.amount, newMoney, receipt);
    }
  }
  return {
    receiptId: source.id,
    paymentId: source.paymentId,
    // The part of the total that money pays: the whole of it, or all but the new money.
    money: receipt.total.minus(newMoney ?? 0),
    cameInOn: source.cameInOn,
  };
}

/**
 * Why the money of receipt `sourceId`, voided before it was paid, cannot be named as Paid with the money of:
 * it has no paid.csv line to count that money on. A payment held on it may still have taken money (paid
 * short of its total, or succeeding after the void canceled its checkout): the refusal said "it took no
 * money" of it too. It now says where that money is and how it can pay, as the receipt page's notice does.
 */
async function unpaidVoidRefusalOf(tx: Prisma.TransactionClient, sourceId: number): Promise<string> {
  const held = await receiptsRepository.findHeldMoneyOfReceipt(tx, sourceId);
  if (held.length === 0) return `receipt #${sourceId} was voided before it was paid; it took no money`;
  const took = held.map((payment) => {
    const currency = payment.receivedCurrency ?? payment.currency;
    const received = fromMinorUnits(payment.receivedMinor ?? 0n, currency);
    const due = fromMinorUnits(payment.amountMinor, payment.currency);
    const isShort = currency === payment.currency && received.lessThan(due);
    return `payment #${payment.id} took ${describeMoney(received, currency)} for it${isShort ? ` (of its ${describeMoney(due, payment.currency)} total)` : ''}`;
  });
  const references = held.map((payment) => payment.externalPaymentId ?? `payment #${payment.id}`);
  const ids = held.map((payment) => `#${payment.id}`);
  const isOne = held.length === 1;
  return (
    `receipt #${sourceId} was voided before it was paid, so it has no line in paid.csv to count money on; ` +
    `${took.join(', and ')} and ${isOne ? 'is' : 'are'} held for review on the payments page. ` +
    `If that money pays for this receipt, mark it paid as new money, its reference ${isOne ? "that payment's" : "those payments'"} ` +
    `(${references.join(', ')}), and resolve payment ${ids.join(' and ')} as dismissed`
  );
}

/**
 * For the advice of an amount received short of the total (AmountNotTotalError): the money of the
 * voided receipt the mark paid named, when it could pay part of this receipt with new money for the
 * rest (the user's, void after it was paid, in the receipt's currency, short of its total); null
 * otherwise, the mark paid's own checks then saying why. Read only; nothing is locked or changed.
 */
async function voidedMoneyShortOf(
  tx: Prisma.TransactionClient,
  receipt: { id: number; username: string; total: Prisma.Decimal; currency: string },
  sourceId: number,
) {
  if (sourceId === receipt.id) return null;
  const source = await receiptsRepository.findMoneySource(tx, sourceId);
  const money = source?.money;
  if (!source || !money || source.username !== receipt.username || source.status !== 'void') return null;
  if (source.paidAt === null || money.currency !== receipt.currency) return null;
  return money.amount.greaterThan(0) && money.amount.lessThan(receipt.total) ? money.amount : null;
}

/**
 * A receipt's status_changes only grows, so no page ever showed more than it has now: a count above it
 * was made up or edited by hand. Refused as the bad field it is (400), where the stale-form check
 * answered 409 that the receipt had been paid and pending again since, which never happened.
 */
function refuseStatusChangesNeverMade(id: number, sent: number | undefined, statusChanges: number) {
  if (sent === undefined || sent <= statusChanges) return;
  throw new InvalidFieldsError(
    {
      based_on_status_changes:
        `is ${sent}, but the status of receipt #${id} has changed ${statusChanges} time${statusChanges === 1 ? '' : 's'}; ` +
        `send the statusChanges its page gives (${statusChanges})`,
    },
    RECEIPT_FIELD_LABELS,
  );
}

/**
 * Why the new money typed beside a voided receipt's money (`new_money`) cannot be taken as it is,
 * before that money is judged; null when it can. New money alone is the amount received, so the field
 * goes only with `paid_with_receipt`.
 */
function newMoneyRefusalOf(newMoney: Prisma.Decimal, isWithVoidedMoney: boolean, currency: string, id: number) {
  const digits = minorUnitDigits(currency);
  if (!isWithVoidedMoney) {
    return 'only with the money of a voided receipt (Paid with the money of), for the rest of the total; new money alone is the amount received: leave it empty';
  }
  if (newMoney.isZero())
    return 'must be more than 0: leave it empty when the money of the voided receipt is the whole total';
  if (newMoney.decimalPlaces() <= digits) return null;
  return digits === 0
    ? `must be a whole number of ${currency}, the currency of receipt #${id}`
    : `must have at most ${digits} decimal places in ${currency}, the currency of receipt #${id}`;
}

/**
 * The money of a voided receipt and the new money received now do not add up to the receipt's total:
 * refused (422) with the figures, and nothing changes.
 */
export class TopUpNotTotalError extends AppError {
  constructor(
    sourceId: number,
    money: Prisma.Decimal,
    newMoney: Prisma.Decimal,
    receipt: { id: number; total: Prisma.Decimal; currency: string },
  ) {
    const { total, currency } = receipt;
    const sum = money.plus(newMoney);
    const difference = describeMoney(sum.minus(total).abs(), currency);
    const remaining = total.minus(money);
    const whatToDo = remaining.isZero()
      ? `the money of receipt #${sourceId} alone is the total: leave New money received now empty.`
      : `the new money must be the remaining ${describeMoney(remaining, currency)}.`;
    super(
      422,
      `The money of receipt #${sourceId}, ${describeMoney(money, currency)}, and the new money received, ` +
        `${describeMoney(newMoney, currency)}, add up to ${describeMoney(sum, currency)}, ${difference} ` +
        `${sum.lessThan(total) ? 'short of' : 'more than'} the total of receipt #${receipt.id}, ${describeMoney(total, currency)}; ` +
        `nothing was changed. A receipt is paid in full or not at all: ${whatToDo}`,
      { field: 'new_money' },
      {
        publicFields: {
          field: 'new_money',
          money: money.toFixed(minorUnitDigits(currency)),
          moneyCurrency: currency,
          newMoney: newMoney.toFixed(minorUnitDigits(currency)),
          total: total.toFixed(minorUnitDigits(currency)),
          currency,
        },
      },
    );
  }
}

/**
 * The money of a voided receipt offered to pay another is not that receipt's total: the new receipt
 * would read as settled in full with money missing (or an excess owed to the payer). Refused (422)
 * with both amounts and what to do; nothing changes.
 */
export class VoidedMoneyNotTotalError extends AppError {
  constructor(
    sourceId: number,
    money: { amount: Prisma.Decimal; currency: string },
    receipt: { id: number; total: Prisma.Decimal; currency: string },
  ) {
    const { total, currency } = receipt;
    const totalText = describeMoney(total, currency);
    const head = `The money of receipt #${sourceId}, ${describeMoney(money.amount, money.currency)}`;
    let comparison: string;
    let whatToDo: string;
    if (money.currency !== currency) {
      comparison = `is in ${money.currency}, not in ${currency} as the total of receipt #${receipt.id}, ${totalText}`;
      whatToDo = `Mark receipt #${receipt.id} paid as new money once ${totalText} has arrived.`;
    } else {
      const difference = describeMoney(money.amount.minus(total).abs(), currency);
      const isShort = money.amount.lessThan(total);
      comparison = `is ${difference} ${isShort ? 'short of' : 'more than'} the total of receipt #${receipt.id}, ${totalText}`;
      whatToDo = isShort
        ? `Once the remaining ${difference} has arrived, mark receipt #${receipt.id} paid with the money of receipt #${sourceId} and ${difference} as new money received now, with the reference of that payment.`
        : `Return the excess ${difference} to the payer (or apply it elsewhere), then mark receipt #${receipt.id} paid as new money with ${totalText}, its reference naming the payment of receipt #${sourceId}.`;
    }
    super(
      422,
      `${head}, ${comparison}, so it cannot pay it in full; nothing was changed. A receipt is paid in full or not at all. ${whatToDo}`,
      { field: 'paid_with_receipt' },
      {
        publicFields: {
          field: 'paid_with_receipt',
          money: money.amount.toFixed(minorUnitDigits(money.currency)),
          moneyCurrency: money.currency,
          total: total.toFixed(minorUnitDigits(currency)),
          currency,
        },
      },
    );
  }
}

/**
 * Of a receipt's payments held for review, those all of whose money has gone back to the payer
 * already (refunded in full at the provider, or taken back by a lost dispute, less refunds that
 * failed), with what they received. Such a payment can stay held (a dispute still open): when the
 * receipt is then paid by hand, paid from another payment accepted, or voided, there is nothing of it
 * to refund or apply elsewhere.
 */
export async function heldMoneyAllGone(
  tx: Prisma.TransactionClient,
  receiptId: number,
  held: readonly { id: number }[],
): Promise<Map<number, { amount: Prisma.Decimal; currency: string }>> {
  const gone = new Map<number, { amount: Prisma.Decimal; currency: string }>();
  if (held.length === 0) return gone;
  const heldIds = new Set(held.map((payment) => payment.id));
  for (const payment of await paymentsRepository.findRefundedPayments(tx, receiptId)) {
    if (!heldIds.has(payment.id)) continue;
    const { received, refunded } = paymentMoneyOf(payment);
    if (received && refunded && refunded.currency === received.currency && refunded.amount.gte(received.amount)) {
      gone.set(payment.id, received);
    }
  }
  return gone;
}

/**
 * A held payment's reason, after its receipt was paid by hand, paid from another payment accepted, or
 * voided, when all its money went back.
 */
export function allGoneAdvice(received: { amount: Prisma.Decimal; currency: string }): string {
  return (
    `all of the ${describeMoney(received.amount, received.currency)} it received has gone back to the payer ` +
    'already, so none of it paid the receipt and none of it is left to refund or apply elsewhere: do not refund ' +
    'it again; resolve it as refunded once the provider has nothing more open on it'
  );
}

/**
 * An admin recorded an amount received that is not the receipt's total. Marked paid, the receipt
 * read as settled in full while money was missing (or the payer was owed an excess) and nobody
 * noticed; refused, the admin is told both amounts, the difference and what to do, and nothing changes.
 */
export class AmountNotTotalError extends AppError {
  /**
   * `voided`: the voided receipt whose money the mark paid named (`paid_with_receipt`), with that money
   * when it is short of the total in its currency. Short then, the admin had typed that money (or the new
   * money alone) as the amount received: "collect the rest and mark it paid with the whole total" sent
   * them after the total as new money, when the rest goes in New money received now beside that money.
   */
  constructor(
    id: number,
    received: Prisma.Decimal,
    total: Prisma.Decimal,
    currency: string,
    voided?: { sourceId: number; shortMoney: Prisma.Decimal | null },
  ) {
    const difference = describeMoney(received.minus(total).abs(), currency);
    const isShort = received.lessThan(total);
    const totalText = describeMoney(total, currency);
    let whatToDo = isShort
      ? `Collect the remaining ${difference}, then mark it paid with the whole ${totalText} once it has all arrived.`
      : `Return the excess ${difference} to the payer (or apply it elsewhere), then mark it paid with ${totalText}.`;
    if (isShort && voided?.shortMoney) {
      const { sourceId, shortMoney } = voided;
      const rest = describeMoney(total.minus(shortMoney), currency);
      whatToDo =
        `Amount received is the whole total even when the money of receipt #${sourceId}, ` +
        `${describeMoney(shortMoney, currency)}, pays part of it: once the remaining ${rest} has arrived, mark it ` +
        `paid with ${totalText} as Amount received, receipt #${sourceId} as Paid with the money of, and ${rest} as ` +
        'New money received now (new_money), with the reference of that payment.';
    } else if (isShort && voided) {
      whatToDo =
        `Amount received is the whole total, ${totalText}, even when the money of receipt #${voided.sourceId} ` +
        'pays part or all of it: type the total there, and any part of it that arrives now besides that money as ' +
        'New money received now (new_money), with the reference of that payment.';
    }
    super(
      422,
      `The amount received, ${describeMoney(received, currency)}, is ${difference} ${isShort ? 'short of' : 'more than'} ` +
        `the total of receipt #${id}, ${describeMoney(total, currency)}; nothing was changed. ${whatToDo} ` +
        'If the total itself is wrong (a wrong tier or rate), void the receipt so that its jobs are billed again.',
      { field: 'amount_received' },
      {
        publicFields: {
          field: 'amount_received',
          amountReceived: received.toFixed(minorUnitDigits(currency)),
          total: total.toFixed(minorUnitDigits(currency)),
          currency,
        },
      },
    );
  }
}

export interface ReceiptsServiceDeps {
  db: Database;
  config: Pick<AppConfig, 'timeZone' | 'pricing' | 'payments'>;
  rates: RatesService;
  metrics: Pick<Metrics, 'receiptCreated' | 'receiptMarkedPaid' | 'receiptVoided'>;
  /** Closes at the payment provider the checkouts a void canceled; none closed when absent. */
  closeCanceledCheckouts?: CloseCanceledCheckouts;
  now?: () => Date;
  /** Where month-end runs go on after the request that started them; the server stops it on SIGTERM. */
  backgroundWork?: BackgroundWork;
  /** True while the process drains before a shutdown (SHUTDOWN_DRAIN_DELAY_MS): no month-end run starts then. */
  isDraining?: () => boolean;
  /** Logs a month-end run that failed; its row says why too. */
  logger?: Logger;
}

const PAGE_SIZE = 25;

/**
 * Items shown on one page of a receipt. Most receipts fit on one page and print whole; a
 * month-end receipt of a busy user (10,000 jobs and more) rendered every row, 0.45 s and
 * megabytes of HTML, so it is paged and its full list is the items CSV.
 */
export const RECEIPT_ITEMS_PAGE_SIZE = 500;

const ITEMS_CSV_BATCH = 5_000;
/**
 * Items read and rendered at a time on the printable receipt, which lists every item: the
 * page is written batch by batch, so a receipt of any size takes the memory of one batch.
 */
const ITEMS_PRINT_BATCH = 1_000;

/** The columns of /admin/receipts.csv: a receipt a line, as the billing list shows it. */
export const ADMIN_RECEIPTS_CSV_COLUMNS = [
  'receipt_id',
  'user',
  'status',
  'total',
  'currency',
  'tier',
  'billed_through',
  'created_at',
  'paid_at',
  'payment_method',
  'month_end_run_id',
] as const;

/** Receipts read a batch of /admin/receipts.csv. */
const ADMIN_RECEIPTS_CSV_BATCH = 5_000;

/** Header row and column order of a receipt's items CSV. */
export const RECEIPT_ITEMS_CSV_COLUMNS = [
  'receipt_id',
  'job_id',
  'cluster',
  'cpu_hours',
  'gpu_hours',
  'mem_gb_hours',
  'cost',
  'currency',
  // After currency rather than beside job_id: a script reading the first eight columns by
  // position still finds each where it was.
  'name',
  'end',
] as const;
/**
 * The payment method of a receipt whose total is 0: it is settled as it is made, since nothing
 * is owed (docs/billing.md, "A receipt of 0.00"). Not one of PAYMENT_METHODS: an admin marking a
 * receipt paid names how money came in.
 */
export const NO_CHARGE_METHOD = 'no_charge';
async function requireReceiptIn(tx: Prisma.TransactionClient, id: number) {
  const receipt = await receiptsRepository.findReceipt(tx, id);
  if (!receipt) throw notFoundById('Receipt', id);
  return receipt;
}

/**
 * The mark-paid rule, inside the caller's transaction: pending -> paid with method and
 * reference, and a `receipt.mark_paid` audit entry; any other status is a 409 that the
 * caller's rollback turns into "nothing changed". Shared by the billing page and by an
 * admin accepting a held online payment, so both leave the same receipt fields and audit.
 */
export async function markReceiptPaidIn(
  tx: Prisma.TransactionClient,
  actor: AuditContext,
  id: number,
  paid: {
    method: string;
    txRef: string | null;
    paidAt: Date;
    /** The local day (APP_TZ) of paidAt, for the audit entry. */
    paidOn: string;
    /** When it is recorded (the caller's clock): the audit entry's time. */
    recordedAt: Date;
    details?: Record<string, unknown>;
    /** The voided receipt whose money pays it (a mark paid "with that money"); none for new money. */
    paidWithReceiptId?: number;
    /** With it, the new money received for the rest of the total (a top-up); none when it paid all. */
    newMoneyReceived?: Prisma.Decimal;
  },
) {
  const isMoved = await receiptsRepository.transitionReceipt(tx, id, ['pending'], {
    status: 'paid',
    paidAt: paid.paidAt,
    paymentMethod: paid.method,
    txRef: paid.txRef,
    ...(paid.paidWithReceiptId === undefined ? {} : { paidWithReceiptId: paid.paidWithReceiptId }),
    ...(paid.newMoneyReceived === undefined ? {} : { newMoneyReceived: paid.newMoneyReceived }),
  });
  if (!isMoved) {
    const receipt = await requireReceiptIn(tx, id);
    throw new ConflictError(`Receipt #${id} is ${receipt.status}; only a pending receipt can be marked paid.`, {
      receiptStatus: receipt.status,
    });
  }
  // The money recorded as paid, as receipt.create wrote it: the log alone must say how much, since
  // a hand-marked receipt has no payment row to say it.
  const { total, currency } = await requireReceiptIn(tx, id);
  await appendAudit(
    tx,
    {
      ...actor,
      action: 'receipt.mark_paid',
      target: `receipt:${id}`,
      status: 'ok',
      details: {
        method: paid.method,
        txRef: paid.txRef,
        paidOn: paid.paidOn,
        total: total.toFixed(minorUnitDigits(currency)),
        currency,
        ...paid.details,
      },
    },
    paid.recordedAt,
  );
  return { id, status: 'paid' as const, method: paid.method, paidAt: paid.paidAt, paidOn: paid.paidOn };
}

/**
 * A pending receipt being voided or paid may have an online checkout open: the researcher could
 * still pay there for a receipt that is settled, or for jobs about to be billed again. Its payment
 * is canceled in the caller's transaction, so a success arriving later is held for review as a late
 * success of a canceled payment (docs/payments.md, Webhooks) and never lost; each cancel is audited.
 * The provider's page is closed once the caller has committed: no row lock waits on a network call.
 */
export async function cancelOpenPaymentsIn(
  tx: Prisma.TransactionClient,
  actor: AuditContext,
  id: number,
  reason: string,
  /** When it is done (the caller's clock): the audit entries' time. */
  at: Date,
): Promise<CanceledCheckout[]> {
  const canceled = await paymentsRepository.cancelOpenPayments(tx, id, reason);
  for (const payment of canceled) {
    await appendAudit(
      tx,
      {
        ...actor,
        action: 'payment.cancel',
        target: `receipt:${id}`,
        status: 'ok',
        details: {
          paymentId: payment.id,
          provider: payment.provider,
          externalPaymentId: payment.externalPaymentId,
          reason,
        },
      },
      at,
    );
  }
  return canceled;
}

/**
 * What the paid receipts brought in, by currency: a receipt marked paid by hand counts its
 * total, one paid online what its payment received (an accepted short or over payment is not
 * its total). `isDifferent` when that is not the paid total; `unknownCount` receipts whose
 * provider did not say what it received are left out of the sums.
 */
function receivedTotals(
  totals: Awaited<ReturnType<typeof receiptsRepository.sumByStatus>>,
  received: Awaited<ReturnType<typeof receiptsRepository.sumReceivedOfPaid>>,
  /** Receipts paid with a voided receipt's money, counted at their total above, and what stays of it now. */
  paidWithVoidedMoney: readonly { total: Prisma.Decimal; stays: { amount: Prisma.Decimal; currency: string } }[] = [],
) {
  const sums = new Map<string, Prisma.Decimal>();
  const add = (currency: string, amount: Prisma.Decimal) =>
    sums.set(currency, (sums.get(currency) ?? new Prisma.Decimal(0)).plus(amount));
  for (const group of received.byHand) add(group.currency, group.total);
  // Part of that money went back to the payer since (a refund or lost dispute of the voided receipt's
  // payment): it was counted whole, as if marked paid with new money.
  for (const paid of paidWithVoidedMoney) add(paid.stays.currency, paid.stays.amount.minus(paid.total));
  let unknownCount = 0;
  for (const group of received.online) {
    if (group.currency === null) unknownCount += group.count;
    else add(group.currency, fromMinorUnits(group.receivedMinor, group.currency));
  }
  const paid = totals.filter((total) => total.status === 'paid');
  const isDifferent =
    unknownCount > 0 ||
    sums.size !== paid.length ||
    paid.some((total) => !(sums.get(total.currency)?.equals(total.total) ?? false));
  const byCurrency = [...sums].sort(([a], [b]) => a.localeCompare(b)).map(([currency, total]) => ({ currency, total }));
  return { byCurrency, unknownCount, isDifferent };
}

/**
 * The money an admin recorded as paying a receipt by hand (one of PAYMENT_METHODS): the app holds
 * none of it, so voiding the receipt cannot hold it as it holds an online payment; the admin is
 * told what it was, to return it or apply it elsewhere.
 */
export interface PaidByHand {
  method: string;
  txRef: string | null;
  /** The local day (APP_TZ) of paid_at, as the receipt page's "Paid on". */
  paidOn: string;
  amount: Prisma.Decimal;
  currency: string;
  /**
   * Marked paid with the money of a voided receipt: that receipt and the part of `amount` its money paid;
   * `newMoney` is the rest, received by `txRef` (null when that money paid it all). Absent otherwise.
   */
  paidWithReceipt?: { receiptId: number; money: Prisma.Decimal };
  newMoney?: Prisma.Decimal | null;
  /**
   * That voided receipt's money came in online (where its chain starts): the payment, which the
   * provider holds, not the billing team, so "the app holds none of this money" is not said of it.
   * Absent when it came in by hand; set only where a void is about to be or has been done (the
   * admin's receipt page and JSON, the void's answer and audit entry).
   */
  onlinePayment?: OnlineMoneyPayment;
}

/**
 * The online payment a voided receipt's money came in by, as the void of a receipt paid with that money
 * names it: `held` while it waits for an admin's review (needs_review), `refunded` once all of it went
 * back to the payer, `settled` otherwise (resolved as accepted or dismissed: the provider has the money).
 */
export interface OnlineMoneyPayment {
  paymentId: number;
  /** The receipt the payment was for (the first of the chain of voided receipts). */
  receiptId: number;
  status: 'held' | 'settled' | 'refunded';
  reviewOutcome: string | null;
  reviewedBy: string | null;
  /** What of it went back to the payer so far (refunds less those that failed), null when nothing did. */
  refunded: { amount: Prisma.Decimal; currency: string } | null;
  /**
   * New money paid by hand along the chain of voided receipts (one of them topped up): part of the
   * voided receipt's money that did not come in by this payment. Null when none.
   */
  handMoneyAlong: Prisma.Decimal | null;
}

/**
 * What a paid receipt brought in when that is not its total, as the billing list's row and the receipt's
 * pages say it ("received, net of refunds and lost disputes"): what its online payment received less what
 * went back of it, or, for one marked paid with a voided receipt's money, what stays of that money now with
 * the new money received beside it. Null when it is the total (or unknown).
 */
function receivedDifferentOf(
  receipt: { id: number; status: string; total: Prisma.Decimal; currency: string },
  receivedOf: ReadonlyMap<number, { receivedMinor: bigint; currency: string }>,
  stays: ReadonlyMap<number, { amount: Prisma.Decimal; currency: string }>,
): { amount: Prisma.Decimal; currency: string } | null {
  const paidWith = receivedOf.get(receipt.id);
  if (paidWith !== undefined) {
    const amount = fromMinorUnits(paidWith.receivedMinor, paidWith.currency);
    if (paidWith.currency !== receipt.currency || !amount.equals(receipt.total)) {
      return { amount, currency: paidWith.currency };
    }
  }
  return (receipt.status === 'paid' ? stays.get(receipt.id) : undefined) ?? null;
}

/**
 * PaidByHand as the JSON answers and the audit entries record it, amounts to the currency's minor unit:
 * a receipt topped up with new money beside a voided receipt's money names both parts.
 */
export function paidByHandRecord(paid: PaidByHand) {
  const digits = minorUnitDigits(paid.currency);
  return {
    method: paid.method,
    txRef: paid.txRef,
    paidOn: paid.paidOn,
    amount: paid.amount.toFixed(digits),
    currency: paid.currency,
    ...(paid.paidWithReceipt === undefined
      ? {}
      : {
          paidWithReceipt: {
            receiptId: paid.paidWithReceipt.receiptId,
            money: paid.paidWithReceipt.money.toFixed(digits),
          },
          newMoney: paid.newMoney ? paid.newMoney.toFixed(digits) : null,
        }),
    ...(paid.onlinePayment === undefined
      ? {}
      : {
          onlinePayment: {
            paymentId: paid.onlinePayment.paymentId,
            receiptId: paid.onlinePayment.receiptId,
            status: paid.onlinePayment.status,
            reviewOutcome: paid.onlinePayment.reviewOutcome,
          },
        }),
  };
}

/** An online payment of a receipt that an admin dismissed, with what it received (null: not reported). */
export interface DismissedPayment {
  id: number;
  received: { amount: Prisma.Decimal; currency: string } | null;
  reviewedBy: string | null;
  reviewNote: string | null;
}

function dismissedPaymentOf(payment: paymentsRepository.PaymentRow): DismissedPayment {
  return {
    id: payment.id,
    received: paymentMoneyOf(payment).received,
    reviewedBy: payment.reviewedBy,
    reviewNote: payment.reviewNote,
  };
}

const HAND_METHODS: readonly string[] = PAYMENT_METHODS;

/**
 * A void's transaction: it turns every item of the receipt off, so it gets the time a receipt's creation
 * has. Prisma's default of 5 s is for small writes: voiding a receipt of 59,640 items took 9.3 s, and it
 * was refused (a 503, rolled back) at every try.
 */
const VOID_TRANSACTION = { timeout: 60_000, maxWait: 10_000 };

/** Receipts: creation (user and month-end), payment marking and voiding; each change is one transaction. */
export function createReceiptsService(deps: ReceiptsServiceDeps) {
  const { config, rates, metrics } = deps;
  const db = deps.db.prisma;
  const now = deps.now ?? (() => new Date());

  /** What an admin recorded paying the receipt by hand, paid or voided since; null for one paid online, no charge or never paid. */
  function paidByHandOf(receipt: {
    paidAt: Date | null;
    paymentMethod: string | null;
    txRef: string | null;
    total: Prisma.Decimal;
    currency: string;
    paidWithReceiptId: number | null;
    newMoneyReceived: Prisma.Decimal | null;
  }): PaidByHand | null {
    if (!receipt.paidAt || !receipt.paymentMethod || !HAND_METHODS.includes(receipt.paymentMethod)) return null;
    // Paid with a voided receipt's money (and new money for the rest): only the new money came in by this
    // method and reference, so both parts are named; the whole total read as new money received by it.
    const newMoney = receipt.newMoneyReceived;
    return {
      method: receipt.paymentMethod,
      txRef: receipt.txRef,
      paidOn: toLocalDate(receipt.paidAt, config.timeZone),
      amount: receipt.total,
      currency: receipt.currency,
      ...(receipt.paidWithReceiptId === null
        ? {}
        : {
            paidWithReceipt: {
              receiptId: receipt.paidWithReceiptId,
              money: newMoney === null ? receipt.total : receipt.total.minus(newMoney),
            },
            newMoney,
          }),
    };
  }

  /**
   * `paid` with the online payment the voided receipt's money that paid it came in by (onlinePayment),
   * when it came in online: where that money is now, for an admin voiding the receipt. As it was otherwise.
   */
  async function withOnlineMoney(
    client: Prisma.TransactionClient,
    paid: PaidByHand | null,
    receipt: { paidWithReceiptId: number | null },
  ): Promise<PaidByHand | null> {
    if (paid === null || receipt.paidWithReceiptId === null) return paid;
    const source = await receiptsRepository.findMoneySource(client, receipt.paidWithReceiptId);
    if (!source || source.paymentId === null) return paid;
    const found = await paymentsRepository.findById(client, source.paymentId);
    if (!found) return paid;
    // With its refunds that failed, so that a refund that failed never reads as money gone back.
    const payment =
      found.refundedMinor === null
        ? found
        : ((await paymentsRepository.findRefundedPaymentsOfReceipts(client, [found.receiptId])).find(
            (row) => row.id === found.id,
          ) ?? found);
    const status = source.isPaymentRefunded ? 'refunded' : payment.status === 'needs_review' ? 'held' : 'settled';
    return {
      ...paid,
      onlinePayment: {
        paymentId: payment.id,
        receiptId: payment.receiptId,
        status,
        reviewOutcome: payment.reviewOutcome,
        reviewedBy: payment.reviewedBy,
        refunded: paymentMoneyOf(payment).refunded,
        handMoneyAlong: source.newMoneyAlong.isZero() ? null : source.newMoneyAlong,
      },
    };
  }

  function assertNotFuture(before: string) {
    const today = toLocalDate(now(), config.timeZone);
    if (before > today) {
      throw new InvalidFieldsError(
        { before: `${before} is in the future; the latest day you can bill is ${today}.` },
        RECEIPT_FIELD_LABELS,
      );
    }
  }

  /**
   * Bills every finished, unbilled job of `username` that ended on or before the end
   * of local day `before`, in one transaction. A racing request that billed some of
   * the same jobs first makes this one fail whole on the unique job-key index.
   */
  async function createReceipt(
    username: string,
    before: string,
    scope: 'user' | 'admin',
    actor: AuditContext,
    monthEndRunId: number | null = null,
    basedOnRateId?: number,
  ) {
    const cutoff = endOfLocalDay(before, config.timeZone);
    try {
      const receipt = await db.$transaction(
        async (tx) => {
          // A cheap probe first: "nothing to bill" is the common answer and needs no rates.
          if (!(await receiptsRepository.hasUnbilledJobs(tx, username, cutoff))) throw new NothingToBillError(before);
          // Before any read of the jobs it bills: an ingestion batch rewriting one of them commits
          // first and is billed as it wrote it, a later one finds the jobs billed and keeps them.
          await receiptsRepository.holdUserJobsForBilling(tx, username);
          // The rates are held until this commits, and the instant taken once they are: a rate change
          // in flight commits first and is read below, a later one is dated after this receipt. The
          // instant used to be taken before the transaction, and a rate change committing meanwhile
          // showed in the history in force before the receipt's "rates locked" time, at rates it did
          // not bill.
          await ratesRepository.holdPricingForBilling(tx);
          const lockedAt = now();
          const tier = await rates.getUserTierForBilling(tx, username, lockedAt);
          // Against the rates this receipt locks, in its transaction: a change racing the request is
          // either read here (and refused) or waits for this receipt to commit. No query more.
          if (basedOnRateId !== undefined && basedOnRateId !== tier.rates.id) {
            throw new RatesChangedSinceShownError(tier.ratesOf(basedOnRateId), basedOnRateId, tier);
          }
          // Kept with the rates, so the receipt says what its costs were rounded to ever after.
          const roundedTo = pricedStepOf(tier.rates.currency, config.payments);
          const created = await receiptsRepository.insertReceiptForUnbilledJobs(
            tx,
            {
              username,
              billedThrough: before,
              windowEnd: cutoff,
              currency: tier.rates.currency,
              tierName: tier.tier,
              rateId: tier.rates.id,
              ratesSnapshot: {
                tier: tier.tier,
                tierSource: tier.source,
                rateId: tier.rates.id,
                effectiveFrom: tier.rates.effectiveFrom.toISOString(),
                cpu: tier.rates.cpu.toFixed(),
                gpu: tier.rates.gpu.toFixed(),
                mem: tier.rates.mem.toFixed(),
                currency: tier.rates.currency,
                cpuBasis: config.pricing.cpuBasis,
                ...(roundedTo === undefined ? {} : { roundedTo }),
              },
              ratesLockedAt: lockedAt,
              // One instant for the receipt's creation, its rates and (for 0.00) its payment: taken
              // from the database's default, created_at fell a few ms after paid_at, a day later
              // near midnight, and paid.csv listed a receipt paid before it existed.
              createdAt: lockedAt,
              scope,
              createdBy: actor.actor,
              monthEndRunId,
            },
            cutoff,
            {
              basis: config.pricing.cpuBasis,
              cpu: tier.rates.cpu,
              gpu: tier.rates.gpu,
              mem: tier.rates.mem,
              // To the step the payment provider charges in, where coarser than the minor unit.
              minorDigits: pricedDigitsOf(tier.rates.currency, config.payments),
            },
          );
          // The probe and the insert read the same snapshot only under REPEATABLE READ; a
          // concurrent receipt may have billed the jobs in between.
          if (!created) throw new NothingToBillError(before);
          if ('tooLargeTotal' in created) {
            throw new ReceiptTotalTooLargeError(username, before, created.tooLargeTotal, tier.rates.currency);
          }
          const { total, itemCount } = created;
          // Every job cost 0 (cancelled before it ran, or a tier priced at 0): the receipt is still
          // made, as the record that these jobs were billed and at which rates, or they would wait
          // in the billing queue, and the month-end would skip their user, for ever. But nothing is
          // owed, so it is settled now, as billing systems close a zero invoice: a pending 0.00
          // receipt would offer a payment no provider takes and sit in finance's open list.
          const isNoCharge = total.isZero();
          if (isNoCharge) {
            await receiptsRepository.transitionReceipt(tx, created.id, ['pending'], {
              status: 'paid',
              paidAt: lockedAt,
              paymentMethod: NO_CHARGE_METHOD,
              txRef: null,
            });
          }
          await appendAudit(
            tx,
            {
              ...actor,
              action: 'receipt.create',
              target: `receipt:${created.id}`,
              status: 'ok',
              details: {
                username,
                before,
                scope,
                items: itemCount,
                // To the minor unit, as the receipt shows it: "8574.20", not "8574.2".
                total: total.toFixed(minorUnitDigits(tier.rates.currency)),
                currency: tier.rates.currency,
                tier: tier.tier,
                ...(isNoCharge ? { settled: NO_CHARGE_METHOD } : {}),
                ...(monthEndRunId === null ? {} : { monthEndRunId }),
              },
            },
            // The receipt's own instant (created_at, and paid_at for 0.00), not a later wall clock.
            lockedAt,
          );
          return {
            id: created.id,
            username,
            total,
            currency: tier.rates.currency,
            itemCount,
            status: isNoCharge ? ('paid' as const) : ('pending' as const),
          };
        },
        // A month of a busy user's jobs is thousands of rows; the default 5 s is for small writes.
        { timeout: 60_000, maxWait: 10_000 },
      );
      metrics.receiptCreated.inc({ scope });
      return receipt;
    } catch (error) {
      if (isUniqueViolation(error)) throw new BilledMeanwhileError(username, before);
      throw error;
    }
  }

  /** A receipt for the signed-in user's own unbilled jobs up to the end of local day `before`. */
  async function createForUser(
    user: { username: string },
    before: string,
    actor: AuditContext,
    basedOnRateId?: number,
  ) {
    assertNotFuture(before);
    const cutoff = endOfLocalDay(before, config.timeZone);
    // Jobs /me shows at an estimate that no receipt bills until they finish: the answer says how many.
    const unfinishedOf = () => receiptsRepository.countUnfinishedUnbilledJobs(db, user.username, cutoff);
    try {
      const receipt = await createReceipt(user.username, before, 'user', actor, null, basedOnRateId);
      return { ...receipt, unfinishedJobCount: await unfinishedOf() };
    } catch (error) {
      // This worker's cached rates may be behind the change (made through another worker): the page
      // the refusal comes back to estimates at the rates in force, so creating again bills what it shows.
      if (error instanceof RatesChangedSinceShownError) rates.invalidate();
      if (!(error instanceof NothingToBillError)) throw error;
      const billedOn = await receiptsRepository.findNewestReceiptBillingThrough(db, user.username, before, cutoff);
      const madeOnThatDay =
        billedOn && billedOn.createdAt < cutoff
          ? {
              at: formatLocalDateTime(billedOn.createdAt, config.timeZone),
              timeZone: config.timeZone,
              isToday: before === toLocalDate(now(), config.timeZone),
            }
          : undefined;
      throw new NothingToBillError(before, billedOn?.id ?? null, madeOnThatDay, await unfinishedOf());
    }
  }

  const monthEnd = createMonthEndService(deps, { createReceipt, assertNotFuture, now });

  async function requireReceipt(tx: Prisma.TransactionClient, id: number) {
    const receipt = await receiptsRepository.findReceipt(tx, id);
    if (!receipt) throw notFoundById('Receipt', id);
    return receipt;
  }

  /**
   * pending -> paid, with method, the amount received, reference and the local day it was paid
   * (today unless said); anything else is a 409. Audited. A day in the future, or before the
   * receipt was created, or an amount with more decimals than the receipt's currency has, is a
   * 400; an amount that is not the receipt's total is a 422 (AmountNotTotalError): a receipt is
   * paid in full or not at all, so money short of it never reads as settled. Each changes nothing.
   * paid.csv selects and the pages date receipts by paid_at, so
   * an earlier day is stored as its start, or the receipt's creation when that is later (a
   * receipt is not paid before it exists); today is the moment it was recorded.
   */
  async function markPaid(actor: AuditContext, id: number, input: MarkPaidInput) {
    const recordedAt = now();
    const today = toLocalDate(recordedAt, config.timeZone);
    const paidOn = input.paid_on ?? today;
    let canceled: CanceledCheckout[] = [];
    const result = await db.$transaction(async (tx) => {
      // As a void does: its held payments first (named below), then the open ones, so that a success
      // a webhook is applying to one of them commits first (the receipt is then paid online, and this
      // is a 409) or waits for this.
      await paymentsRepository.lockHeldPayments(tx, id);
      await paymentsRepository.lockOpenPayments(tx, id);
      // The voided receipt's payment held for review, whose reason this changes below: before the
      // receipts, in the order a refund of it takes them (the payment, then that receipt).
      if (input.paid_with_receipt !== undefined) await paymentsRepository.lockHeldPayments(tx, input.paid_with_receipt);
      // Then the receipt, as a void does, before reading its status or its open payments: a payment
      // start holds it from its check of the status to its commit, and the open payment it inserts
      // was not there to find above. Without this, the mark paid waited for that start only at its
      // own update, then committed with the start's checkout left open to take the money again.
      await paymentsRepository.lockReceiptForPayments(tx, id);
      const receipt = await requireReceipt(tx, id);
      const createdOn = toLocalDate(receipt.createdAt, config.timeZone);
      // A paid or void receipt is answered by the mark-paid rule (409), whatever the day or the
      // amount typed: the fields of a payment that cannot be recorded are not the answer.
      const isPending = receipt.status === 'pending';
      refuseStatusChangesNeverMade(id, input.based_on_status_changes, receipt.statusChanges);
      // Pending then and now, but paid and pending again since (paid online, refunded in full by the
      // provider): the page the form came from said nothing of that payment, nor that its money went
      // back to the payer, which the page says now. Before the fields: sent again from the page as it
      // is now, they are judged then. A receipt no longer pending gets the mark-paid rule's 409 below.
      if (
        isPending &&
        input.based_on_status_changes !== undefined &&
        receipt.statusChanges !== input.based_on_status_changes
      ) {
        throw new ConflictError(
          `Receipt #${id} was pending when this page was opened, and has been paid and pending again since; nothing was changed.`,
        );
      }
      if (isPending && paidOn > today) {
        throw new InvalidFieldsError(
          { paid_on: `${paidOn} is in the future; the latest day a payment can be recorded on is today, ${today}.` },
          RECEIPT_FIELD_LABELS,
        );
      }
      // Today needs no check (the receipt exists now), so a database clock a little ahead of the
      // app's cannot refuse it.
      if (isPending && paidOn !== today && paidOn < createdOn) {
        throw new InvalidFieldsError(
          {
            paid_on: `${paidOn} is before receipt #${id} was created (${createdOn}); it cannot have been paid earlier.`,
          },
          RECEIPT_FIELD_LABELS,
        );
      }
      // Judged in the receipt's own currency (a receipt made before CURRENCY changed keeps its own).
      const digits = minorUnitDigits(receipt.currency);
      if (isPending && input.amount_received.decimalPlaces() > digits) {
        throw new InvalidFieldsError(
          {
            amount_received:
              digits === 0
                ? `must be a whole number of ${receipt.currency}, the currency of receipt #${id}`
                : `must have at most ${digits} decimal places in ${receipt.currency}, the currency of receipt #${id}`,
          },
          RECEIPT_FIELD_LABELS,
        );
      }
      if (isPending && !input.amount_received.equals(receipt.total)) {
        const voided =
          input.paid_with_receipt === undefined
            ? undefined
            : {
                sourceId: input.paid_with_receipt,
                shortMoney: await voidedMoneyShortOf(tx, receipt, input.paid_with_receipt),
              };
        throw new AmountNotTotalError(id, input.amount_received, receipt.total, receipt.currency, voided);
      }
      const newMoney = isPending ? input.new_money : undefined;
      if (newMoney !== undefined) {
        const why = newMoneyRefusalOf(newMoney, input.paid_with_receipt !== undefined, receipt.currency, id);
        if (why !== null) throw new InvalidFieldsError({ new_money: why }, RECEIPT_FIELD_LABELS);
        // Required here, where new money alone may go without: this line of paid.csv carries part of
        // the total, and names the voided receipt beside this reference, by which the bank statement
        // line of that part is found.
        if (input.tx_ref === undefined) {
          throw new InvalidFieldsError(
            {
              tx_ref: `is required with new money received now: the reference of the payment of ${describeMoney(newMoney, receipt.currency)}, as the bank statement (or the receipt for cash) shows it`,
            },
            RECEIPT_FIELD_LABELS,
          );
        }
      }
      // Paid with the money of a receipt voided after it was paid, alone: that receipt is the reference,
      // so paid.csv's line of this one names it and carries no new money (its money is on that line).
      if (isPending && input.paid_with_receipt !== undefined && input.tx_ref !== undefined && newMoney === undefined) {
        throw new InvalidFieldsError(
          {
            tx_ref: `leave it empty when the receipt is paid with the money of receipt #${input.paid_with_receipt}: that receipt is the reference recorded`,
          },
          RECEIPT_FIELD_LABELS,
        );
      }
      const paidWith =
        isPending && input.paid_with_receipt !== undefined
          ? await moneyOfVoidedReceiptIn(tx, receipt, input.paid_with_receipt, newMoney)
          : null;
      // With new money, its own reference (paid.csv's line names the voided receipt beside it).
      const txRef = paidWith && newMoney === undefined ? `receipt #${paidWith.receiptId}` : (input.tx_ref ?? null);
      const amountReceived = input.amount_received.toFixed(digits);
      const startOfDay = startOfLocalDay(paidOn, config.timeZone);
      const paidAt =
        paidOn === today ? recordedAt : new Date(Math.max(startOfDay.getTime(), receipt.createdAt.getTime()));
      // Paid by hand, the receipt's open checkout could take the same money a second time: it is
      // canceled here, so a success there is held for review, and closed at the provider after the commit.
      canceled = await cancelOpenPaymentsIn(
        tx,
        actor,
        id,
        `receipt #${id} was marked paid by hand while this checkout was open`,
        recordedAt,
      );
      const canceledPaymentIds = canceled.map((payment) => payment.id);
      // Online money of this receipt held for review (paid short, a success after a cancel, a refund
      // that failed) can no longer be accepted for it once it is paid by hand: the hand record may be
      // that money (dismiss it) or other money (refund it). The mark paid used to say nothing of it.
      const held = await paymentsRepository.findHeldPaymentsOfReceipt(tx, id);
      const paid = await markReceiptPaidIn(tx, actor, id, {
        method: input.method,
        txRef,
        paidAt,
        paidOn,
        recordedAt,
        ...(paidWith ? { paidWithReceiptId: paidWith.receiptId } : {}),
        ...(paidWith && newMoney !== undefined ? { newMoneyReceived: newMoney } : {}),
        details: {
          // What the admin typed as received, beside the total markReceiptPaidIn records: equal, or
          // it would have been refused above.
          amountReceived,
          // Whose money it was (and the online payment that took it), and how much of the total it paid;
          // any new money received with it for the rest (the only money that came in now).
          ...(paidWith
            ? {
                paidWithReceipt: {
                  receiptId: paidWith.receiptId,
                  paymentId: paidWith.paymentId,
                  money: paidWith.money.toFixed(digits),
                },
              }
            : {}),
          ...(paidWith && newMoney !== undefined ? { newMoney: newMoney.toFixed(digits) } : {}),
          ...(canceledPaymentIds.length === 0 ? {} : { canceledPaymentIds }),
          ...(held.length === 0
            ? {}
            : {
                heldPayments: held.map((payment) => ({
                  paymentId: payment.id,
                  ...(payment.receivedMinor === null
                    ? {}
                    : { receivedMinor: String(payment.receivedMinor), receivedCurrency: payment.receivedCurrency }),
                })),
              }),
        },
      });
      // Filed under the voided receipt too: its history (the audit filter target=receipt:<id>, its
      // page's link) did not say where its money went, the mark paid being the new receipt's entry.
      if (paidWith) {
        await appendAudit(
          tx,
          {
            ...actor,
            action: 'receipt.money_applied',
            target: `receipt:${paidWith.receiptId}`,
            status: 'ok',
            details: {
              paidReceiptId: id,
              money: paidWith.money.toFixed(digits),
              currency: receipt.currency,
              ...(paidWith.paymentId == null ? {} : { paymentId: paidWith.paymentId }),
              ...(newMoney === undefined ? {} : { newMoney: newMoney.toFixed(digits) }),
            },
          },
          recordedAt,
        );
      }
      // All of a held payment's money gone back already (refunded in full while a dispute keeps it held):
      // "otherwise refund it" asked finance to refund the payer a second time.
      const allGone = await heldMoneyAllGone(tx, id, held);
      for (const payment of held) {
        const gone = allGone.get(payment.id);
        await paymentsRepository.addToHoldReason(
          tx,
          payment.id,
          `${payment.reviewReason ?? 'held for review'}; receipt #${id} was marked paid by hand while this payment was ` +
            (gone
              ? `held, so it cannot be accepted for it; ${allGoneAdvice(gone)}`
              : 'held, so it cannot be accepted for it: resolve it as dismissed if its money is what paid the receipt, ' +
                'otherwise refund it'),
        );
      }
      // The voided receipt's money came in by a payment still held for review, whose reason said to
      // "refund the payment or apply it elsewhere": it is applied now, and refunding it would leave this
      // receipt paid with money gone back to the payer (an admin's `refunded` is refused for it).
      const sourcePayment =
        paidWith?.paymentId == null ? null : await paymentsRepository.findById(tx, paidWith.paymentId);
      if (paidWith && sourcePayment?.status === 'needs_review') {
        await paymentsRepository.addToHoldReason(
          tx,
          sourcePayment.id,
          `${sourcePayment.reviewReason ?? 'held for review'}; its money paid receipt #${id} (marked paid with the ` +
            `money of receipt #${paidWith.receiptId}${newMoney === undefined ? '' : ' and new money for the rest'}), ` +
            `which stays paid from it: resolve this as dismissed, not refunded, unless receipt #${id} is voided first`,
        );
      }
      const heldPayments = held.map((payment) => ({
        id: payment.id,
        received: paymentMoneyOf(payment).received,
        isAllGone: allGone.has(payment.id),
      }));
      return {
        ...paid,
        // The reference as stored (trimmed, null when none), as the receipt's JSON has it.
        txRef,
        paidWithReceiptId: paidWith?.receiptId ?? null,
        paidWithReceiptMoney: paidWith?.money ?? null,
        // The receipts whose paid.csv lines count that money: the flash names them.
        paidWithMoneyCameInOn: paidWith?.cameInOn ?? [],
        newMoney: paidWith ? (newMoney ?? null) : null,
        amountReceived: input.amount_received,
        currency: receipt.currency,
        canceledPaymentIds,
        heldPayments,
      };
    });
    metrics.receiptMarkedPaid.inc({ actor_type: 'admin' });
    // After the commit, and whatever the provider answers: the receipt stays paid either way.
    const checkoutsLeftOpen =
      deps.closeCanceledCheckouts && canceled.length > 0
        ? await deps.closeCanceledCheckouts(id, canceled, 'mark_paid')
        : [];
    return {
      ...result,
      checkoutsLeftOpen,
      checkoutNotice: checkoutsLeftOpen.length === 0 ? null : checkoutsLeftOpen.map((open) => open.notice).join(' '),
    };
  }

  /**
   * A receipt paid online is being voided: its jobs go back to billing, so the next receipt bills
   * them again while the provider keeps the money of this one. The payment is held for review, in
   * the void's transaction, so the banner on /admin/payments asks for a refund or for the money to
   * be applied elsewhere; accepting it stays impossible, as its receipt is void.
   */
  async function holdPaymentOfVoidedReceipt(tx: Prisma.TransactionClient, actor: AuditContext, id: number, at: Date) {
    const payment = await paymentsRepository.findPaymentThatPaid(tx, id);
    if (!payment) return null;
    const accepted = payment.status === 'resolved' ? `; it had been accepted for it by ${payment.reviewedBy}` : '';
    // Already held while the receipt stayed paid from it (a partial refund, a dispute, a refund that
    // failed): why is what finance must still settle, so it stays in the reason. Replaced, an open
    // dispute vanished from /admin/payments, and its advice to refund the payment stood alone.
    const held =
      payment.status === 'needs_review' && payment.reviewReason
        ? `; before the void it was held for review: ${payment.reviewReason}`
        : '';
    const reason = `receipt #${id} was voided after it was paid online: refund the payment or apply it elsewhere${accepted}${held}`;
    // Conditional, like every payment move: nothing else moves a payment out of these states, so
    // a miss means the data changed under us, and the whole void is refused rather than done half.
    if (!(await paymentsRepository.holdPaymentThatPaid(tx, payment.id, reason))) {
      throw new ConflictError(`Payment #${payment.id} of receipt #${id} changed meanwhile; nothing was changed.`);
    }
    await appendAudit(
      tx,
      {
        ...actor,
        action: 'payment.review',
        target: `receipt:${id}`,
        status: 'ok',
        details: { paymentId: payment.id, reason, previousStatus: payment.status },
      },
      at,
    );
    return payment.id;
  }

  /**
   * pending or paid -> void, with a reason; its jobs become billable again. Audited. A paid
   * receipt may need voiding (wrong project, duplicate) even when it was paid online; its
   * payment is then held for an admin's refund decision in the same transaction. A pending
   * receipt's open checkout is canceled in the same transaction, then closed at the provider; a
   * checkout that may still take money is in `checkoutsLeftOpen`, with what to tell the admin.
   */
  async function voidReceipt(actor: AuditContext, id: number, input: TVoidReceipt) {
    const voidedAt = now();
    let canceled: CanceledCheckout[] = [];
    const result = await db.$transaction(async (tx) => {
      // Its payments held for review first, in the order an admin resolving one takes locks (that
      // payment, the open ones, the receipt): the void names them, as their money is for the jobs
      // it puts back to be billed.
      await paymentsRepository.lockHeldPayments(tx, id);
      // Then the open ones, so that a success a webhook is applying to one of them has committed (the
      // receipt is then read as paid, and its payment held) or waits for the void.
      await paymentsRepository.lockOpenPayments(tx, id);
      // And the one that paid it, which a paid receipt's void holds: a refund or a dispute of it
      // locks it, then the receipt, and a void that took them the other way round deadlocked with it.
      await paymentsRepository.lockPaymentThatPaid(tx, id);
      // Then the receipt, before reading its status: an admin accepting a held payment (or marking
      // it paid by hand) may be committing pending -> paid, and a status read before that commit
      // would void a paid receipt as if pending, leaving the money that paid it unheld.
      await paymentsRepository.lockReceiptForPayments(tx, id);
      const before = await requireReceipt(tx, id);
      refuseStatusChangesNeverMade(id, input.based_on_status_changes, before.statusChanges);
      // A form opened on a pending receipt must not void it once paid (nor one opened on a paid
      // receipt once refunded): what the void means for the money is what the page did not show.
      // A void receipt keeps its own answer below.
      if (input.based_on_status && before.status !== 'void' && before.status !== input.based_on_status) {
        throw new ConflictError(
          `Receipt #${id} was ${input.based_on_status} when this page was opened and is ${before.status} now; nothing was changed.`,
        );
      }
      // The same status, reached again: paid online, refunded in full (pending), then paid again (by
      // hand, or by another payment), or the other way round. The page showed other money than the
      // void now concerns (its "Paid online: payment #N", the payment the void would hold).
      if (
        input.based_on_status_changes !== undefined &&
        before.status !== 'void' &&
        before.statusChanges !== input.based_on_status_changes
      ) {
        const was = input.based_on_status;
        const between = was === 'paid' ? 'pending and paid again' : 'paid and pending again';
        throw new ConflictError(
          was === undefined
            ? `Receipt #${id} changed since this page was opened: it is ${before.status} now; nothing was changed.`
            : `Receipt #${id} was ${was} when this page was opened, and has been ${between} since; nothing was changed.`,
        );
      }
      const isMoved = await receiptsRepository.transitionReceipt(tx, id, ['pending', 'paid'], {
        status: 'void',
        voidReason: input.reason,
        voidedAt,
        voidedBy: actor.actor,
      });
      if (!isMoved) throw new ConflictError(`Receipt #${id} is already void.`);
      const releasedJobs = await receiptsRepository.voidItems(tx, id);
      // Only a paid receipt can have an online payment that paid it.
      const heldPaymentId = before.status === 'paid' ? await holdPaymentOfVoidedReceipt(tx, actor, id, voidedAt) : null;
      // Held already (paid short or over, after its refund failed, a success after a cancel): that
      // money can no longer be accepted for this receipt, and its jobs are billed again. The void used
      // to say nothing of it, in its answer or its audit entry, and the reason still read as if the
      // receipt could be paid from it.
      const alreadyHeld = (await paymentsRepository.findHeldPaymentsOfReceipt(tx, id)).filter(
        (payment) => payment.id !== heldPaymentId,
      );
      // All of its money gone back already: "refund the payment" asked for a second refund.
      const allGone = await heldMoneyAllGone(tx, id, alreadyHeld);
      for (const payment of alreadyHeld) {
        const gone = allGone.get(payment.id);
        await paymentsRepository.addToHoldReason(
          tx,
          payment.id,
          `${payment.reviewReason ?? 'held for review'}; receipt #${id} was voided while this payment was held, so ` +
            (gone
              ? `it cannot be accepted for it; ${allGoneAdvice(gone)}`
              : 'it cannot be accepted for it: refund the payment or apply it elsewhere'),
        );
      }
      const alreadyHeldPayments = alreadyHeld.map((payment) => ({
        id: payment.id,
        received: paymentMoneyOf(payment).received,
        isAllGone: allGone.has(payment.id),
      }));
      // Paid by hand, the money is outside the app and nothing can be held: the answer and the audit
      // entry say what it was, and which dismissed online payments of the receipt took money too.
      const paidByHand =
        before.status === 'paid' && heldPaymentId === null
          ? await withOnlineMoney(tx, paidByHandOf(before), before)
          : null;
      const dismissedPayments = paidByHand
        ? (await paymentsRepository.findDismissedPayments(tx, id)).map(dismissedPaymentOf)
        : [];
      const dismissedPaymentIds = dismissedPayments.map((payment) => payment.id);
      canceled = await cancelOpenPaymentsIn(
        tx,
        actor,
        id,
        `receipt #${id} was voided while this checkout was open`,
        voidedAt,
      );
      const canceledPaymentIds = canceled.map((payment) => payment.id);
      await appendAudit(
        tx,
        {
          ...actor,
          action: 'receipt.void',
          target: `receipt:${id}`,
          status: 'ok',
          details: {
            reason: input.reason,
            previousStatus: before.status,
            total: before.total.toFixed(minorUnitDigits(before.currency)),
            currency: before.currency,
            releasedJobs,
            ...(heldPaymentId === null ? {} : { heldPaymentId }),
            ...(alreadyHeld.length === 0
              ? {}
              : {
                  alreadyHeld: alreadyHeld.map((payment) => ({
                    paymentId: payment.id,
                    ...(payment.receivedMinor === null
                      ? {}
                      : { receivedMinor: String(payment.receivedMinor), receivedCurrency: payment.receivedCurrency }),
                  })),
                }),
            ...(paidByHand === null
              ? {}
              : {
                  paidByHand: paidByHandRecord(paidByHand),
                }),
            ...(dismissedPaymentIds.length === 0 ? {} : { dismissedPaymentIds }),
            ...(canceledPaymentIds.length === 0 ? {} : { canceledPaymentIds }),
          },
        },
        voidedAt,
      );
      return {
        id,
        status: 'void' as const,
        previousStatus: before.status,
        releasedJobs,
        heldPaymentId,
        alreadyHeldPayments,
        paidByHand,
        dismissedPayments,
        canceledPaymentIds,
      };
    }, VOID_TRANSACTION);
    metrics.receiptVoided.inc();
    // After the commit, and whatever the provider answers: the void stands either way.
    const checkoutsLeftOpen = deps.closeCanceledCheckouts ? await deps.closeCanceledCheckouts(id, canceled) : [];
    return {
      ...result,
      checkoutsLeftOpen,
      checkoutNotice: checkoutsLeftOpen.length === 0 ? null : checkoutsLeftOpen.map((open) => open.notice).join(' '),
    };
  }

  /**
   * The user's receipts, newest first, and which of them have a payment held for review (a dispute,
   * a short payment): the list says so, as each receipt's page does. A page past the last is a 404.
   */
  async function listForUser(username: string, query: ListQuery) {
    const [{ rows, isPlace, ...paging }, held] = await Promise.all([
      receiptsRepository.listReceipts(deps.db.pool, { username }, sliceOf(query, PAGE_SIZE), PAGE_SIZE),
      findHeldPaymentsOf(username),
    ]);
    refuseUnknownPlace(query, isPlace);
    const pageCount = assertListPageExists('You have', paging.count, query.page);
    // Money that went back to the payer, as each receipt's page says it: a voided receipt whose payment
    // the billing team refunded read as paid and void, nothing more.
    const refunded = (
      await paymentsRepository.findRefundedPaymentsOfReceipts(
        db,
        rows.map((receipt) => receipt.id),
      )
    ).map((payment) => ({ receiptId: payment.receiptId, refund: refundOf(payment) }));
    const heldReceiptIds = [...new Set(held.map((payment) => payment.receiptId))];
    // A pending receipt that bills again jobs of a receipt whose payment is held (one voided and billed
    // again) cannot be paid online either (startPayment refuses it): held payments are rare, so this
    // reads anything only when there is one.
    // Money paid by hand on a receipt voided since that billed some of a pending receipt's jobs, as its
    // page says it: one query for the page's receipts (none when none is pending).
    const [blocked, voidedPaidByHand] = await Promise.all([
      paymentsRepository.findReceiptsBillingJobsOf(
        db,
        heldReceiptIds,
        rows
          .filter((receipt) => receipt.status === 'pending' && !heldReceiptIds.includes(receipt.id))
          .map((receipt) => receipt.id),
      ),
      findVoidedPaidByHandOfSameJobs(rows),
    ]);
    // What is left of each of that money, as the receipt's page judges it: the row says it "may pay" the
    // receipt only when some of it is the receipt's total (else its page says what it covers).
    const moneyOfSources = await findMoneyOfSources([
      ...new Set([...voidedPaidByHand.values()].flat().map((voided) => voided.receiptId)),
    ]);
    const isTotalOf = (receipt: { total: Prisma.Decimal; currency: string }, sourceId: number) => {
      const money = moneyOfSources.get(sourceId) ?? null;
      // Money whose amount the provider did not report is not judged, as on the page.
      return money === null || (money.currency === receipt.currency && money.amount.equals(receipt.total));
    };
    // A void receipt's held payment whose money paid another receipt since, as its page says it: read only
    // for void receipts with a held payment of their own (rare), one each.
    const moneyPaidOf = new Map(
      await Promise.all(
        rows
          .filter((receipt) => receipt.status === 'void' && heldReceiptIds.includes(receipt.id))
          .map(async (receipt) => [receipt.id, await findMoneyPaidByHeld(receipt, true, username)] as const),
      ),
    );
    return {
      // Each with the held payment that concerns it, as its own page and JSON name it (heldPaymentOfReceipt).
      receipts: rows.map((receipt) => {
        const sameJobsOf = blocked.filter((pair) => pair.receiptId === receipt.id).map((pair) => pair.heldReceiptId);
        // The oldest of each kind, as the receipt's page picks them: held is in id order.
        const own = held.find((payment) => payment.receiptId === receipt.id);
        const sameJobs = held.find((payment) => sameJobsOf.includes(payment.receiptId)) ?? null;
        return {
          ...receipt,
          heldPayment: heldPaymentOfReceipt(receipt, own, sameJobs, moneyPaidOf.get(receipt.id) ?? null),
          refunds: refunded.filter((row) => row.receiptId === receipt.id).map((row) => row.refund),
          /** For a pending receipt, the receipts voided after they were paid by hand that billed some of its jobs. */
          sameJobsVoidedPaidByHand: voidedPaidByHand.get(receipt.id) ?? [],
          /** Whether the money of one of those may pay this receipt alone: it is its total. */
          sameJobsVoidedMayPay: (voidedPaidByHand.get(receipt.id) ?? []).some((voided) =>
            isTotalOf(receipt, voided.receiptId),
          ),
        };
      }),
      ...pagedAs(query, pageCount),
      ...paging,
    };
  }

  /**
   * The held payment a researcher is told of on a receipt: its own held payment (the oldest), whatever
   * its status, or else, for a pending receipt, the held payment of another receipt that billed some of
   * its jobs (paying this one online is refused meanwhile). `own` and `sameJobs` as read for it.
   */
  function heldPaymentOfReceipt(
    receipt: { id: number; status: string },
    own: HeldPayment | undefined,
    sameJobs: HeldPayment | null,
    moneyPaid: MoneyPaidReceipt | null = null,
  ): HeldPaymentNote | null {
    const held = own ?? (receipt.status === 'pending' ? sameJobs : null);
    return held ? heldPaymentNoteOf(held, receipt, moneyPaid) : null;
  }

  /**
   * For a void receipt with a payment of its own held for review, the receipt marked paid with its money
   * since (null while none is, and for any other receipt): the researcher is told where that money went,
   * not that it is still only being checked. `isOwn` says whether it is `username`'s, to link it.
   */
  async function findMoneyPaidByHeld(
    receipt: { id: number; status: string },
    hasOwnHeld: boolean,
    username: string,
  ): Promise<MoneyPaidReceipt | null> {
    if (receipt.status !== 'void' || !hasOwnHeld) return null;
    const paid = await receiptsRepository.findReceiptPaidWithMoneyOf(db, receipt.id);
    return paid && { id: paid.id, status: paid.status, isOwn: paid.username === username };
  }

  /** The pages of a list of `count` receipts, refusing a page past the last as a receipt's items do. */
  function assertListPageExists(subject: string, count: number, page: number): number {
    return pageCountOrNotFound(
      count,
      PAGE_SIZE,
      page,
      (pages) => `${subject} ${counted(count, 'receipt')} on ${counted(pages, 'page')}`,
    );
  }

  type FoundReceipt = NonNullable<Awaited<ReturnType<typeof receiptsRepository.findReceipt>>>;

  /** The receipt itself, `username`'s only when given: another user's receipt is "not found", never "forbidden". */
  async function findOrFail(id: number, username?: string): Promise<FoundReceipt> {
    const receipt = await receiptsRepository.findReceipt(db, id, username);
    if (!receipt) throw notFoundById('Receipt', id);
    return receipt;
  }

  /** How many pages a receipt's items fill; a page past the last is a 404 saying how many there are. */
  function itemPageCountOf(receipt: FoundReceipt, page: number): number {
    const count = receipt._count.items;
    return pageCountOrNotFound(
      count,
      RECEIPT_ITEMS_PAGE_SIZE,
      page,
      (pages) => `Receipt #${receipt.id} lists ${counted(count, 'job')} on ${counted(pages, 'page')}`,
    );
  }

  /**
   * What the page of receipt `id` refuses (`username`'s only when given, as getForUser): a receipt
   * not there for the asker, or a page past its items' last (404), found from the receipt's row and
   * its count of items alone. For a HEAD (a link checker, `curl -I`), which answers the status and
   * headers of its GET and used to read the page's items, payments and refunds for nothing.
   */
  async function checkReceiptPage(id: number, page: number, username?: string): Promise<void> {
    itemPageCountOf(await findOrFail(id, username), page);
  }

  /**
   * A receipt with one page of its items (RECEIPT_ITEMS_PAGE_SIZE), whether a payment of it is
   * held, and the online payment that paid it; a page past the last is a 404.
   */
  async function withItemsPage(receipt: FoundReceipt, page: number) {
    const count = receipt._count.items;
    const pageCount = itemPageCountOf(receipt, page);
    const offset = (page - 1) * RECEIPT_ITEMS_PAGE_SIZE;
    const [items, hours, isPaymentHeld, paidOnline, paidWith, openPayments, refunded, receivedNet] = await Promise.all([
      receiptsRepository.listItems(db, receipt.id, { offset, limit: RECEIPT_ITEMS_PAGE_SIZE }),
      // The hours of every page, for the total row beside the total of every page.
      receiptsRepository.sumItemHours(db, receipt.id),
      // Paying online again is closed while one of its payments waits for an admin's review.
      paymentsRepository.hasPaymentInReview(db, receipt.id),
      // An admin about to void a paid receipt is told that its online payment will be held.
      receipt.status === 'paid' ? paymentsRepository.findPaymentThatPaid(db, receipt.id) : null,
      findPaidWith(receipt),
      // An admin about to void is told that a checkout is open and will be canceled.
      receipt.status === 'void' ? [] : paymentsRepository.findOpenPayments(db, receipt.id),
      // Money the provider gave back: a receipt unpaid again says why, and a paid one how much went back.
      paymentsRepository.findRefundedPayments(db, receipt.id),
      receivedNetOf(receipt),
    ]);
    return {
      receipt,
      /** What it brought in when not its total, as the billing list's row says it; null otherwise. */
      receivedNet,
      // A pending receipt of 0.00 (made before such receipts were settled at once) has no Pay button.
      hasAmountDue: hasAmountDue(receipt),
      items,
      hours,
      isPaymentHeld,
      paidOnline,
      paidWith,
      openPayments,
      refundedPayments: refunded.map(refundOf),
      itemPager: { page, pageCount, count, first: offset + 1, last: offset + items.length },
    };
  }

  /**
   * A payment's refund as the receipt's pages and JSON show it: what went back to the payer (the
   * provider's refunded total less its refunds that failed since) and what failed, so a failed
   * refund never reads as money returned.
   */
  function refundOf(payment: Awaited<ReturnType<typeof paymentsRepository.findRefundedPayments>>[number]) {
    const money = paymentMoneyOf(payment);
    const received = money.received ?? { amount: money.amount, currency: money.currency };
    // Resolved as refunded by the billing team (after a void, say): all of it went back then.
    const byBillingTeam = billingTeamRefundOf(payment);
    if (byBillingTeam) {
      const refunded = { amount: byBillingTeam.amount, currency: byBillingTeam.currency };
      return {
        paymentId: payment.id,
        provider: payment.provider,
        isHeld: false,
        received,
        refunded,
        refundedAt: byBillingTeam.at,
        refundFailed: null,
        failedAt: null,
        isFull: true,
        hasPaidReceipt: payment.paidAt !== null,
        isByBillingTeam: true,
        partByProvider: byBillingTeam.byProvider,
        partByBillingTeam: byBillingTeam.byProvider ? byBillingTeam.byBillingTeam : null,
        // The provider's part may be, all or in part, what the bank took back by a lost dispute.
        ...(byBillingTeam.byProvider
          ? takenBackOf(money.takenBackByDispute, byBillingTeam.byProvider, payment.disputeClosedAt)
          : takenBackOf(null, refunded, null)),
      };
    }
    const refunded = money.refunded ?? { amount: new Prisma.Decimal(0), currency: received.currency };
    // A failed refund's money stays with the centre only until a lost dispute takes it back: what is
    // said to have stayed is never more than the centre still holds of the payment.
    const held = received.amount.minus(refunded.amount);
    const refundFailed =
      money.refundFailed && money.refundFailed.currency === received.currency && refunded.currency === received.currency
        ? held.greaterThan(0)
          ? { amount: Prisma.Decimal.min(money.refundFailed.amount, held), currency: received.currency }
          : null
        : money.refundFailed;
    return {
      paymentId: payment.id,
      provider: payment.provider,
      // Still held for the billing team's review (a partial refund, a failed one).
      isHeld: payment.status === 'needs_review',
      received,
      refunded,
      refundedAt: payment.refundedAt,
      refundFailed,
      failedAt: refundFailed ? payment.lastFailedAt : null,
      isFull: refunded.currency === received.currency && refunded.amount.equals(received.amount),
      // Whether it ever paid the receipt: a refund in full of one held instead (paid short, say)
      // leaves a receipt that was never paid, not one "unpaid again".
      hasPaidReceipt: payment.paidAt !== null,
      isByBillingTeam: false,
      partByProvider: null,
      partByBillingTeam: null,
      // Part or all of it was taken back by the payer's bank, a dispute lost, not refunded: said as such,
      // with what was refunded apart from it and when the bank took it.
      ...takenBackOf(money.takenBackByDispute, refunded, payment.disputeClosedAt),
    };
  }

  function takenBackOf(
    takenBack: PaymentMoney['takenBackByDispute'],
    refunded: { amount: Prisma.Decimal; currency: string },
    at: Date | null,
  ) {
    if (!takenBack || takenBack.currency !== refunded.currency) {
      return { takenBackByDispute: null, refundedApart: null, takenBackAt: null };
    }
    return {
      takenBackByDispute: takenBack,
      refundedApart: { amount: refunded.amount.minus(takenBack.amount), currency: refunded.currency },
      takenBackAt: at,
    };
  }

  /**
   * The online payment the receipt records as its payment (method = provider, reference = its
   * id), also once the receipt is void, with what it received: shown next to the total.
   */
  async function findPaidWith(receipt: FoundReceipt) {
    if (!(receipt.paidAt && receipt.paymentMethod && receipt.txRef)) return null;
    const payment = await paymentsRepository.findByExternalId(db, receipt.paymentMethod, receipt.txRef);
    if (payment?.receiptId !== receipt.id) return null;
    return {
      id: payment.id,
      ...paymentMoneyOf(payment),
      // An admin accepted it for the receipt after a review (paid short or over, refunded in part): the
      // researcher is told that what it received pays the receipt, not only that it was not the total.
      isAccepted: payment.status === 'resolved' && payment.reviewOutcome === 'accepted',
    };
  }

  /**
   * A receipt's items in batches of `size`, in the order its pages list them, each read after the
   * last item of the one before, so any number of them takes flat memory.
   */
  async function* itemBatchesOf(receiptId: number, size: number) {
    let after: receiptsRepository.ItemCursor | undefined;
    for (;;) {
      const batch = await receiptsRepository.findItemsBatch(db, receiptId, after, size);
      if (batch.length > 0) yield batch;
      const last = batch.at(-1);
      if (!last || batch.length < size) return;
      after = last;
    }
  }

  /** Nothing when the receipt is there for the asker (a user's own; any, for an admin), else its 404. */
  async function assertFound(id: number, username?: string): Promise<void> {
    await findOrFail(id, username);
  }

  /**
   * A receipt with every one of its items, for printing it whole, `username`'s only when given
   * (as getForUser). The items come in batches as the page is written, never all at once.
   */
  async function getPrintable(id: number, username?: string) {
    const receipt = await findOrFail(id, username);
    // On paper too: the receipt's page says a payment is being checked, or was refunded, but only on screen.
    // And money paid by hand on a receipt voided since that billed some of its jobs: printed for a finance
    // office, a receipt the researcher may have paid already read as a bill to pay.
    const [paidWith, heldHere, heldForSameJobs, paidOnline, refunded, voidedPaidByHand, hours, receivedNet] =
      await Promise.all([
        findPaidWith(receipt),
        paymentsRepository.findHeldPaymentRowsOfReceipt(db, receipt.id),
        receipt.status === 'pending' ? paymentsRepository.findHeldPaymentForSameJobs(db, id) : null,
        receipt.status === 'paid' ? paymentsRepository.findPaymentThatPaid(db, receipt.id) : null,
        paymentsRepository.findRefundedPayments(db, receipt.id),
        findVoidedPaidByHandOfSameJobs([receipt]),
        receiptsRepository.sumItemHours(db, receipt.id),
        receivedNetOf(receipt),
      ]);
    const own = heldHere[0];
    const sameJobsVoidedPaidByHand = voidedPaidByHand.get(id) ?? [];
    const moneyPaid = await findMoneyPaidByHeld(receipt, own !== undefined, receipt.username);
    return {
      receipt,
      hours,
      paidWith,
      receivedNet,
      paidOnline,
      refundedPayments: refunded.map(refundOf),
      /** For a pending receipt, the receipts voided after they were paid by hand that billed some of its jobs. */
      sameJobsVoidedPaidByHand,
      /** What is left of the money of each of those, as the receipt's page judges it. */
      moneyOfSources: await findMoneyOfSources(sameJobsVoidedPaidByHand.map((voided) => voided.receiptId)),
      heldPayment: heldPaymentOfReceipt(
        receipt,
        own === undefined ? undefined : heldPaymentOf(own),
        heldForSameJobs === null ? null : heldPaymentOf(heldForSameJobs),
        moneyPaid,
      ),
      itemBatches: itemBatchesOf(receipt.id, ITEMS_PRINT_BATCH),
    };
  }

  /**
   * A user's own receipt with one page of its items, and the user's payments held for review:
   * the one of this receipt (whatever its status), the others, and the one of another receipt
   * that billed some of these jobs (paying this one online is refused meanwhile).
   */
  async function getForUser(username: string, id: number, page = 1) {
    const receipt = await findOrFail(id, username);
    const [shown, held, heldForSameJobs, billedAgainOn, voidedPaidByHand] = await Promise.all([
      withItemsPage(receipt, page),
      findHeldPaymentsOf(username),
      receipt.status === 'pending' ? paymentsRepository.findHeldPaymentForSameJobs(db, id) : null,
      // A void receipt's jobs are billed again (or will be): where, as the admin's page says it. The
      // researcher's page said only "void" above the jobs a new receipt lists again.
      receipt.status === 'void' ? receiptsRepository.findReceiptsBillingJobsAgain(db, id) : [],
      // Money the researcher paid by hand for some of these jobs, on a receipt voided since: only the
      // admin's page said it may pay for this one, and the researcher, offered Pay online, paid twice.
      findVoidedPaidByHandOfSameJobs([receipt]),
    ]);
    const heldHere = held.find((payment) => payment.receiptId === id);
    const sameJobs = heldForSameJobs === null ? null : heldPaymentOf(heldForSameJobs);
    const sameJobsVoidedPaidByHand = voidedPaidByHand.get(id) ?? [];
    const moneyPaid = await findMoneyPaidByHeld(receipt, heldHere !== undefined, username);
    return {
      ...shown,
      heldHere: heldHere ?? null,
      heldElsewhere: held.filter((payment) => payment.receiptId !== id && payment.id !== heldForSameJobs?.id),
      /** What the page, My receipts, the printable receipt and the JSON say of a held payment concerning it. */
      heldPayment: heldPaymentOfReceipt(receipt, heldHere, sameJobs, moneyPaid),
      /** For a void receipt, the receipts that bill its jobs now (empty while none does, and for any other receipt). */
      billedAgainOn,
      /** For a pending receipt, the receipts voided after they were paid by hand that billed some of its jobs. */
      sameJobsVoidedPaidByHand,
      /** What is left of the money of each of those, as the admin's page judges it: the notice says what it covers. */
      moneyOfSources: await findMoneyOfSources(sameJobsVoidedPaidByHand.map((voided) => voided.receiptId)),
    };
  }

  /** The user's payments held for review, with the money each stands for, oldest first. */
  async function findHeldPaymentsOf(username: string) {
    return (await paymentsRepository.findHeldPaymentsOfUser(deps.db.pool, username)).map(heldPaymentOf);
  }

  /**
   * For each pending receipt of `receipts`, the receipts voided after they were paid by hand that billed
   * some of its jobs, with the money recorded on each (oldest first): what the receipt's page, My receipts,
   * the printable receipt and the JSON say of it. Absent for any other receipt. One query for them all.
   */
  async function findVoidedPaidByHandOfSameJobs(receipts: ReadonlyArray<{ id: number; status: string }>) {
    const pendingIds = receipts.filter((receipt) => receipt.status === 'pending').map((receipt) => receipt.id);
    const rows = await receiptsRepository.findVoidedPaidReceiptsOfSameJobs(db, pendingIds, HAND_METHODS);
    const byReceipt = new Map<number, Array<{ receiptId: number; voidedAt: Date; paidByHand: PaidByHand }>>();
    for (const row of rows) {
      const money = paidByHandOf(row);
      if (!money) continue;
      const shown = byReceipt.get(row.forReceiptId) ?? [];
      shown.push({ receiptId: row.id, voidedAt: row.voidedAt, paidByHand: money });
      byReceipt.set(row.forReceiptId, shown);
    }
    return byReceipt;
  }

  /**
   * What is left of the money of each voided receipt of `sourceIds`, by its id, as a mark paid judges it
   * (less what went back of it, plus new money received along its chain); null when the provider did not
   * report it. The admin's page, the printable receipt and the researcher's page judge it alike.
   */
  async function findMoneyOfSources(sourceIds: readonly number[]) {
    return new Map(
      await Promise.all(
        sourceIds.map(
          async (sourceId) =>
            [sourceId, (await receiptsRepository.findMoneySource(db, sourceId))?.money ?? null] as const,
        ),
      ),
    );
  }

  /**
   * Of receipts paid with a voided receipt's money, those whose money stands now at another amount than
   * their total (part of it refunded or taken back by a lost dispute since they were marked paid), with
   * what stays: that money as a mark paid judges it now, plus the new money received with it. Money whose
   * provider did not report it, or in another currency, is left at the total, as before.
   */
  async function stayingOfVoidedMoney(
    paid: Awaited<ReturnType<typeof receiptsRepository.findPaidWithVoidedMoney>>,
  ): Promise<{ id: number; total: Prisma.Decimal; stays: { amount: Prisma.Decimal; currency: string } }[]> {
    // One findMoneySource each, all started together: Prisma batches findUnique calls of one shape made
    // in the same tick into one query (per step of the chains), so a page of 5 such receipts sends what a
    // page of 1 does (billing-list-voided-money-queries.test.ts). Awaiting them one by one, or reading the
    // source with findFirst, would send a few statements per receipt.
    const judged = await Promise.all(
      paid.map(async (receipt) => {
        if (receipt.paidWithReceiptId === null) return null;
        const money = (await receiptsRepository.findMoneySource(db, receipt.paidWithReceiptId))?.money;
        if (!money || money.currency !== receipt.currency) return null;
        const amount = money.amount.plus(receipt.newMoneyReceived ?? 0);
        if (amount.equals(receipt.total)) return null;
        return { id: receipt.id, total: receipt.total, stays: { amount, currency: receipt.currency } };
      }),
    );
    return judged.filter((receipt) => receipt !== null);
  }

  /**
   * For a paid receipt, what the billing list's row says it brought in when that is not its total (net of
   * refunds and lost disputes), by the row's rule: its pages and JSON say the same. Null otherwise.
   */
  async function receivedNetOf(receipt: FoundReceipt): Promise<{ amount: Prisma.Decimal; currency: string } | null> {
    if (receipt.status !== 'paid') return null;
    const [receivedOf, staying] = await Promise.all([
      receiptsRepository.findReceivedOfPaid(db, [receipt.id]),
      stayingOfVoidedMoney(receipt.paidWithReceiptId === null ? [] : [receipt]),
    ]);
    return receivedDifferentOf(receipt, receivedOf, new Map(staying.map((paid) => [paid.id, paid.stays])));
  }

  /** Any receipt with one page of its items (admin). */
  async function getById(id: number, page = 1) {
    const receipt = await findOrFail(id);
    // An admin about to void a receipt paid by hand, or reading one voided since, is told what money it
    // concerns, and where the part of it that came in online is.
    const paidByHand = await withOnlineMoney(db, paidByHandOf(receipt), receipt);
    const [shown, heldForSameJobs, dismissed, voidedPaidByHand, billedAgainOn, moneyPaidReceipt] = await Promise.all([
      withItemsPage(receipt, page),
      receipt.status === 'pending' ? paymentsRepository.findHeldPaymentForSameJobs(db, id) : null,
      paidByHand ? paymentsRepository.findDismissedPayments(db, id) : [],
      findVoidedPaidByHandOfSameJobs([receipt]),
      receipt.status === 'void' ? receiptsRepository.findReceiptsBillingJobsAgain(db, id) : [],
      // A void receipt paid by hand whose money paid the receipt billing its jobs again: its page names
      // that receipt, where it said to return the money to the payer.
      receipt.status === 'void' && paidByHand ? receiptsRepository.findReceiptPaidWithMoneyOf(db, id) : null,
    ]);
    // What is left of the money each of those voided receipts could pay this one with, as a mark paid
    // judges it (moneyOfVoidedReceiptIn): the page offers only money that is this receipt's total.
    const moneyOfSources = await findMoneyOfSources([
      ...(heldForSameJobs === null ? [] : [heldForSameJobs.receiptId]),
      ...(voidedPaidByHand.get(id) ?? []).map((voided) => voided.receiptId),
    ]);
    // Money for some of these jobs may already be held on a voided receipt that billed them: the
    // researcher is told not to pay again, and the admin, about to mark this one paid, is told too.
    // Money recorded by hand on a receipt voided since is not held by the app, but may be what pays
    // for them: the admin is told of it here too, and a void receipt names the receipts that bill its jobs now.
    // That held payment's money may have paid a receipt since (marked paid with it, voided in turn, its
    // jobs billed again here): a mark paid with it is refused, and that receipt's money is what may pay this.
    const [sameJobsHeldMoneyPaid, sameJobsHeldVoidedUnpaid] =
      heldForSameJobs === null
        ? [null, null]
        : await Promise.all([
            receiptsRepository.findReceiptPaidWithMoneyOf(db, heldForSameJobs.receiptId),
            receiptsRepository.findHeldPaymentOfUnpaidVoid(db, heldForSameJobs.id),
          ]);
    return {
      ...shown,
      sameJobsHeldPayment: heldForSameJobs === null ? null : heldPaymentOf(heldForSameJobs),
      /** The receipt the held payment's money paid since (voided in turn), or null while it paid none. */
      sameJobsHeldMoneyPaid,
      /**
       * When the held payment's receipt was voided before it was paid: its money came in after the void (or
       * short, the receipt voided meanwhile) and cannot be named as that receipt's money (a mark paid refuses
       * it), with the payment's provider id for the reference of a mark paid as new money. Null otherwise.
       */
      sameJobsHeldVoidedUnpaid,
      paidByHand,
      dismissedPayments: dismissed.map(dismissedPaymentOf),
      sameJobsVoidedPaidByHand: voidedPaidByHand.get(id) ?? [],
      billedAgainOn,
      /** For a void receipt paid by hand, the receipt marked paid with its money since; null while none is. */
      moneyPaidReceipt,
      /** What is left of the money of each voided receipt named above, by its id; null when unknown. */
      moneyOfSources,
    };
  }

  /**
   * Every item of a receipt as CSV text (no header), in batches in the receipt's order, so a
   * receipt of any size streams in flat memory. Checked before the first byte is sent:
   * an unknown (or another user's) receipt is a plain 404, not a broken download.
   */
  async function streamItemsCsv(id: number, username?: string) {
    const receipt = await findOrFail(id, username);
    const digits = minorUnitDigits(receipt.currency);
    async function* chunks() {
      for await (const batch of itemBatchesOf(receipt.id, ITEMS_CSV_BATCH)) {
        const records = batch.map((item) => [
          receipt.id,
          // A pending array's id keeps what its [] holds (csvJobKeySql writes it alike in the usage CSVs).
          escapeCsvText(item.displayJobId),
          escapeCsvText(item.cluster),
          item.cpuHours.toFixed(6),
          item.gpuHours.toFixed(6),
          item.memGbHours.toFixed(6),
          item.cost.toFixed(digits),
          receipt.currency,
          escapeCsvText(item.jobName ?? ''),
          formatCsvUtcTime(item.jobEndAt),
        ]);
        yield formatCsvLines(records, RECEIPT_ITEMS_CSV_COLUMNS);
      }
    }
    return { receipt, chunks: chunks() };
  }

  /**
   * The usernames the billing page's User filter means among the receipts' (userFilterMatchOf's rule), an
   * account's whole name included when it has no receipt: /admin/usage links each user to ?user=<name>, and
   * dan's link, dan with no receipt yet, listed and summed danny's as if they were dan's.
   */
  async function usernamesMatching(search: string): Promise<UserFilterMatch> {
    const [containing, account] = await Promise.all([
      receiptsRepository.findReceiptUsernamesContaining(db, search),
      // Accounts are named in lower case (users.schema.ts): the unique index answers any case typed.
      usersRepository.findByUsername(db, search.toLowerCase()),
    ]);
    const isAccountMissing = account !== null && !containing.includes(account.username);
    return userFilterMatchOf(search, isAccountMissing ? [...containing, account.username] : containing);
  }

  /** The admin list's filter for the repository, once checked: a reversed window 400, a run not there 404. */
  async function checkedAdminFilterOf(filter: TReceiptFilter): Promise<{
    repoFilter: receiptsRepository.ReceiptFilter;
    matchedUsers: string[] | null;
    alsoContaining: string[];
  }> {
    // Answered like the other windows (/admin/usage, /admin/paid.csv): an empty list with zero
    // totals would read as "nothing was billed" rather than "these dates are the wrong way round".
    if (filter.start && filter.end && filter.start > filter.end) {
      throw new ReversedWindowError(filter.start, filter.end, { labels: RECEIPT_FIELD_LABELS });
    }
    // Created from alone reads up to today, as paid.csv's From does: after today it listed no receipt,
    // "No receipts match." where paid.csv says why.
    const today = toLocalDate(now(), config.timeZone);
    if (filter.start && !filter.end && filter.start > today) {
      throw new StartAfterTodayError(filter.start, today, RECEIPT_FIELD_LABELS.start);
    }
    // A run that does not exist is a 404, not an empty list that reads as "it made no receipts".
    if (filter.run !== undefined && !(await monthEndRunsRepository.findRun(db, filter.run))) {
      throw new UnknownRunFilterError(filter.run);
    }
    const { usernames, alsoContaining } = filter.user
      ? await usernamesMatching(filter.user)
      : { usernames: undefined, alsoContaining: [] };
    // A whole name typed is its few names; part of one is every name containing it (userFilterMatchOf),
    // which the queries read by the same pattern rather than as a list of every such name.
    const typed = filter.user;
    const isPartOfNames = typed !== undefined && !usernames?.some((name) => isWholeName(typed, name));
    const repoFilter = {
      status: filter.status,
      usernames: isPartOfNames ? undefined : usernames,
      usernameContaining: isPartOfNames ? filter.user : undefined,
      createdFrom: filter.start ? startOfLocalDay(filter.start, config.timeZone) : undefined,
      createdBefore: filter.end ? endOfLocalDay(filter.end, config.timeZone) : undefined,
      monthEndRunId: filter.run,
    };
    return { repoFilter, matchedUsers: usernames ?? null, alsoContaining };
  }

  /**
   * What /admin/receipts refuses (listForAdmin's 400 and 404s), for a HEAD: the receipts matching
   * counted for a later page, none read or summed. Page 1 is always there.
   */
  async function checkAdminListPage(filter: TReceiptFilter): Promise<void> {
    const { repoFilter } = await checkedAdminFilterOf(filter);
    await assertReceiptPlace(filter);
    if (filter.page === 1) return;
    assertListPageExists('The filters match', await receiptsRepository.countReceipts(db, repoFilter), filter.page);
  }

  /** What /me/receipts?page= refuses (a page past the last, 404), for a HEAD: the user's receipts counted, none read. */
  async function checkOwnListPage(username: string, query: ListQuery): Promise<void> {
    await assertReceiptPlace(query, username);
    if (query.page === 1) return;
    assertListPageExists('You have', await receiptsRepository.countReceipts(db, { username }), query.page);
  }

  /**
   * A 400 for an Older or Newer link's place that names no receipt (of `username`, for My receipts):
   * the link was edited. Any receipt's will do whatever its status now: one voided out of a status
   * filter since the page that linked it still marks where the next page starts.
   */
  async function assertReceiptPlace(query: ListQuery, username?: string): Promise<void> {
    const [field, place] = placeAsked(query);
    if (place && !(await receiptsRepository.isReceiptPlace(db, place, username))) throw notAPlace(field);
  }

  /** assertReceiptPlace's 400, told by the list's own read of the place (listReceipts' `isPlace`). */
  function refuseUnknownPlace(query: ListQuery, isPlace: boolean): void {
    const [field, place] = placeAsked(query);
    if (place && !isPlace) throw notAPlace(field);
  }

  /** Receipts across users with filters and the pending/paid totals under them (admin billing). */
  async function listForAdmin(filter: TReceiptFilter) {
    const { repoFilter, matchedUsers, alsoContaining } = await checkedAdminFilterOf(filter);
    const [{ rows, isPlace, ...paging }, totals, received, paidWithVoided] = await Promise.all([
      receiptsRepository.listReceipts(deps.db.pool, repoFilter, sliceOf(filter, PAGE_SIZE), PAGE_SIZE),
      receiptsRepository.sumByStatus(db, repoFilter),
      receiptsRepository.sumReceivedOfPaid(db, repoFilter),
      receiptsRepository.findPaidWithVoidedMoney(db, repoFilter),
    ]);
    refuseUnknownPlace(filter, isPlace);
    const pageCount = assertListPageExists('The filters match', paging.count, filter.page);
    // A receipt paid with a voided receipt's money brought in that money as it stands now (less what a
    // refund or lost dispute of it took back since) and any new money received with it: counted at its
    // total, the card and its row read 10.00 THB received after 3.00 THB of it went back to the payer.
    const paidWithVoidedMoney = await stayingOfVoidedMoney(paidWithVoided);
    const stays = new Map(paidWithVoidedMoney.map((paid) => [paid.id, paid.stays]));
    // A receipt paid short or over (an accepted held payment, or one partly refunded since) says
    // what it brought in beside its total, as the paid card sums it: without it, a paid card of
    // "received 24,165.02 THB" beside 24,087.61 THB could not be traced to its receipts.
    // A payment held for review (a dispute, a short payment, a void's hold) says so on the row, as the
    // receipt's own page does: the list read such a receipt as plainly paid, or payable.
    const [receivedOf, held] = await Promise.all([
      receiptsRepository.findReceivedOfPaid(
        db,
        rows.filter((receipt) => receipt.status === 'paid').map((receipt) => receipt.id),
      ),
      paymentsRepository.findHeldPaymentsConcerning(
        db,
        rows.map((receipt) => receipt.id),
        rows.filter((receipt) => receipt.status === 'pending').map((receipt) => receipt.id),
      ),
    ]);
    const receipts = rows.map((receipt) => {
      const heldHere = held.find((row) => row.receiptId === receipt.id);
      const heldPayment = heldHere ? { paymentId: heldHere.paymentId, receiptId: heldHere.heldReceiptId } : null;
      return {
        ...receipt,
        receivedDifferent: receivedDifferentOf(receipt, receivedOf, stays),
        heldPayment,
      };
    });
    return {
      receipts,
      totals,
      received: receivedTotals(totals, received, paidWithVoidedMoney),
      ...pagedAs(filter, pageCount),
      ...paging,
      // The usernames a User filter matched, which the page names when there are several, and the
      // other names containing a whole name matched, offered as links (bobby's beside bob's).
      matchedUsers,
      alsoContaining,
    };
  }

  /**
   * The receipts the billing list's filters match, every page of them, newest first, as CSV lines in
   * batches (ADMIN_RECEIPTS_CSV_COLUMNS): what finance chases pending receipts from. Its filters are
   * checked as the list's are (a reversed window 400, a run not there 404) before any line.
   */
  async function streamAdminCsv(filter: TReceiptFilter) {
    const { repoFilter } = await checkedAdminFilterOf(filter);
    async function* chunks() {
      let after: { at: Date; id: number } | undefined;
      for (;;) {
        const batch = await receiptsRepository.findReceiptBatch(db, repoFilter, after, ADMIN_RECEIPTS_CSV_BATCH);
        const records = batch.map((receipt) => [
          receipt.id,
          escapeCsvText(receipt.username),
          receipt.status,
          receipt.total.toFixed(minorUnitDigits(receipt.currency)),
          receipt.currency,
          escapeCsvText(receipt.tierName),
          receipt.billedThrough.toISOString().slice(0, 10),
          receipt.createdAt.toISOString(),
          receipt.paidAt?.toISOString() ?? '',
          receipt.paymentMethod ?? '',
          receipt.monthEndRunId ?? '',
        ]);
        yield formatCsvLines(records, ADMIN_RECEIPTS_CSV_COLUMNS);
        const last = batch.at(-1);
        if (!last || batch.length < ADMIN_RECEIPTS_CSV_BATCH) return;
        after = { at: last.createdAt, id: last.id };
      }
    }
    return { chunks: chunks() };
  }

  /** Today, the local day (APP_TZ) now. */
  function today(): string {
    return toLocalDate(now(), config.timeZone);
  }

  /**
   * How far Slurm accounting has been read (ingestion's "data complete through"), for the billing
   * page's month-end form: a run bills only the jobs read, so with ingestion stopped since the
   * month's last afternoon a run on the 1st left that evening's jobs to December, unannounced.
   * `isBehind`: a run for yesterday would leave jobs out. Null before any run has read accounting.
   * With two instances on the database, one per cluster, the earliest of the clusters' marks, and
   * `cluster` names whose it is (null with one cluster): a run bills every cluster's jobs.
   */
  async function findIngestedThrough(): Promise<{
    through: Date;
    day: string;
    isBehind: boolean;
    cluster: string | null;
  } | null> {
    const earliest = await ingestionRepository.findIngestedThroughEveryCluster(db, now());
    if (!earliest) return null;
    const { through } = earliest;
    const isBehind = through < startOfLocalDay(today(), config.timeZone);
    const cluster = earliest.clusterCount > 1 ? earliest.cluster : null;
    return { through, day: toLocalDate(through, config.timeZone), isBehind, cluster };
  }

  return {
    today,
    findIngestedThrough,
    createForUser,
    ...monthEnd,
    markPaid,
    voidReceipt,
    listForUser,
    getForUser,
    findHeldPaymentsOf,
    getById,
    assertFound,
    checkReceiptPage,
    checkOwnListPage,
    checkAdminListPage,
    getPrintable,
    streamItemsCsv,
    listForAdmin,
    streamAdminCsv,
  };
}

export type ReceiptsService = ReturnType<typeof createReceiptsService>;
