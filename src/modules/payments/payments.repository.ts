import { type PaymentReviewOutcome, type PaymentStatus, Prisma } from '@prisma/client';
import type pg from 'pg';
import type { Db } from '../../db/database.js';
import { queryWithin } from '../../db/query-timeout.js';

type Tx = Prisma.TransactionClient;
type Client = Db | Tx;

export interface PaymentRow {
  id: number;
  receiptId: number;
  provider: string;
  status: PaymentStatus;
  amountMinor: bigint;
  currency: string;
  externalPaymentId: string | null;
  checkoutUrl: string | null;
  idempotencyKey: string;
  reviewReason: string | null;
  /** What the provider reported receiving (see Received), or null when it did not say. */
  receivedMinor: bigint | null;
  receivedCurrency: string | null;
  hasAmountMismatch: boolean;
  /** The provider's id of the money taken (Stripe's PaymentIntent), which its refund events name. */
  externalIntentId: string | null;
  /** What the provider reported refunding so far, and when the latest refund arrived; null when none. */
  refundedMinor: bigint | null;
  refundedCurrency: string | null;
  refundedAt: Date | null;
  /**
   * The latest dispute (chargeback) the provider reported: its id, the amount disputed, the payer's
   * reason as the provider words it, and when it arrived; null when none.
   */
  externalDisputeId: string | null;
  disputedMinor: bigint | null;
  disputedCurrency: string | null;
  disputeReason: string | null;
  disputedAt: Date | null;
  /** The dispute's outcome once the provider closed it (won, lost), and when; null while open. */
  disputeStatus: string | null;
  disputeClosedAt: Date | null;
  /** Held after a partial refund or a dispute while the receipt stays paid from it (see PAID_THE_RECEIPT). */
  holdsPaidReceipt: boolean;
  reviewOutcome: PaymentReviewOutcome | null;
  reviewNote: string | null;
  reviewedBy: string | null;
  reviewedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

const SELECT_PAYMENT = {
  id: true,
  receiptId: true,
  provider: true,
  status: true,
  amountMinor: true,
  currency: true,
  externalPaymentId: true,
  checkoutUrl: true,
  idempotencyKey: true,
  reviewReason: true,
  receivedMinor: true,
  receivedCurrency: true,
  hasAmountMismatch: true,
  externalIntentId: true,
  refundedMinor: true,
  refundedCurrency: true,
  refundedAt: true,
  externalDisputeId: true,
  disputedMinor: true,
  disputedCurrency: true,
  disputeReason: true,
  disputedAt: true,
  disputeStatus: true,
  disputeClosedAt: true,
  holdsPaidReceipt: true,
  reviewOutcome: true,
  reviewNote: true,
  reviewedBy: true,
  reviewedAt: true,
  createdAt: true,
  updatedAt: true,
} as const;

/** The receipt's newest payment at `provider` still pending, if any. */
export function findOpenPayment(db: Client, receiptId: number, provider: string): Promise<PaymentRow | null> {
  return db.payment.findFirst({
    where: { receiptId, provider, status: 'pending' },
    orderBy: { id: 'desc' },
    select: SELECT_PAYMENT,
  });
}

/** Earlier attempts that ended (failed, canceled, held for review, resolved): the next attempt's number is this + 1. */
export function countEndedPayments(db: Client, receiptId: number, provider: string): Promise<number> {
  return db.payment.count({ where: { receiptId, provider, NOT: { status: 'pending' } } });
}

/** The payment started under `idempotencyKey`, if any: a start sent twice finds the first. */
export function findByIdempotencyKey(db: Client, idempotencyKey: string): Promise<PaymentRow | null> {
  return db.payment.findUnique({ where: { idempotencyKey }, select: SELECT_PAYMENT });
}

/** Records a payment as it starts at a provider (pending, the column's default), before its checkout is opened. */
export function insertPayment(
  db: Client,
  data: {
    receiptId: number;
    provider: string;
    amountMinor: bigint;
    currency: string;
    idempotencyKey: string;
    /** The app's clock, which also decides when a start that never finished is abandoned. */
    createdAt: Date;
  },
): Promise<PaymentRow> {
  return db.payment.create({ data, select: SELECT_PAYMENT });
}

/** Records the provider's checkout on the payment, whatever its status now (see startPayment). */
export function attachCheckout(db: Client, id: number, externalPaymentId: string, checkoutUrl: string) {
  return db.payment.update({ where: { id }, data: { externalPaymentId, checkoutUrl }, select: SELECT_PAYMENT });
}

/**
 * pending -> failed with the reason, for a start whose checkout could not be opened. Returns the
 * payment's status after: another when it was no longer pending (a void canceled it meanwhile,
 * or a later click abandoned it), whose reason then stays.
 */
export async function failPendingStart(db: Client, id: number, reason: string): Promise<PaymentStatus | undefined> {
  const result = await db.payment.updateMany({
    where: { id, status: 'pending' },
    data: { status: 'failed', reviewReason: reason },
  });
  if (result.count === 1) return 'failed';
  return (await db.payment.findUnique({ where: { id }, select: { status: true } }))?.status;
}

/**
 * pending -> failed with the reason, for a start that never got its checkout (no provider id, no
 * URL) and was saved at or before `startedBefore`; false when it is no longer such a payment (another
 * request abandoned it, or its checkout arrived meanwhile).
 */
export async function abandonHalfStarted(db: Client, id: number, startedBefore: Date, reason: string) {
  const result = await db.payment.updateMany({
    where: { id, status: 'pending', checkoutUrl: null, externalPaymentId: null, createdAt: { lte: startedBefore } },
    data: { status: 'failed', reviewReason: reason },
  });
  return result.count === 1;
}

/** Money a provider reported receiving: minor units of its currency. */
export interface Received {
  amountMinor: bigint;
  currency: string;
}

const receivedData = (received: Received | null) => ({
  receivedMinor: received?.amountMinor ?? null,
  receivedCurrency: received?.currency ?? null,
});

/**
 * pending -> succeeded, with what the provider reported receiving, its id of that money and when
 * the payment paid its receipt (the receipt's paid_at).
 */
export function markSucceeded(
  tx: Tx,
  id: number,
  received: Received | null,
  externalIntentId: string | null,
  paidAt: Date,
) {
  return tx.payment.update({
    where: { id },
    data: {
      status: 'succeeded',
      paidAt,
      ...receivedData(received),
      ...(externalIntentId ? { externalIntentId } : {}),
    },
  });
}

/**
 * Records when a held payment an admin accepted paid its receipt (the receipt's paid_at): kept
 * on the payment after a refund in full unpays the receipt, for paid.csv's period.
 */
export function recordPaidAt(tx: Tx, id: number, paidAt: Date) {
  return tx.payment.update({ where: { id }, data: { paidAt } });
}

/**
 * Keeps on the payment when it paid its receipt, before a refund in full clears the receipt's
 * paid_at, if it has none yet (a payment whose receipt was paid from it by an older version).
 */
export function keepPaidAtIfUnset(tx: Tx, id: number, paidAt: Date) {
  return tx.payment.updateMany({ where: { id, paidAt: null }, data: { paidAt } });
}

/** Records the provider's id of the money a payment took, when its success did not name it. */
export function recordExternalIntentId(tx: Tx, id: number, externalIntentId: string) {
  return tx.payment.updateMany({ where: { id, externalIntentId: null }, data: { externalIntentId } });
}

/** Sets a payment's status, and its review reason when one is given. */
export function setStatus(db: Client, id: number, status: PaymentStatus, reviewReason?: string) {
  return db.payment.update({ where: { id }, data: { status, ...(reviewReason ? { reviewReason } : {}) } });
}

/**
 * Puts a payment on hold for an admin after the provider reported its success, with what it
 * reported receiving and whether that differed from what was due.
 */
export function holdForReview(
  tx: Tx,
  id: number,
  reviewReason: string,
  hasAmountMismatch: boolean,
  received: Received | null,
  externalIntentId: string | null,
) {
  return tx.payment.update({
    where: { id },
    data: {
      status: 'needs_review',
      reviewReason,
      hasAmountMismatch,
      ...receivedData(received),
      ...(externalIntentId ? { externalIntentId } : {}),
    },
  });
}

/**
 * The online payment whose money paid the receipt: the one a webhook marked succeeded, a held
 * one an admin accepted for it, or one of those held after part of its money was refunded or the
 * payer disputed it (the receipt stays paid from it until an admin decides). A receipt is paid
 * once, so there is at most one.
 */
export const PAID_THE_RECEIPT = {
  OR: [
    { status: 'succeeded' },
    { status: 'resolved', reviewOutcome: 'accepted' },
    { status: 'needs_review', holdsPaidReceipt: true },
  ],
} satisfies Prisma.PaymentWhereInput;

/** PAID_THE_RECEIPT in SQL, over payments `p`: change one, change the other. */
export const PAID_THE_RECEIPT_SQL = Prisma.sql`(p.status = 'succeeded'
       OR (p.status = 'resolved' AND p.review_outcome = 'accepted')
       OR (p.status = 'needs_review' AND p.holds_paid_receipt))`;

/** The online payment that paid the receipt, or null (unpaid, or paid by hand). */
export function findPaymentThatPaid(db: Client, receiptId: number): Promise<PaymentRow | null> {
  return db.payment.findFirst({
    where: { receiptId, ...PAID_THE_RECEIPT },
    orderBy: { id: 'desc' },
    select: SELECT_PAYMENT,
  });
}

/**
 * A payment put under review (again): any resolution is cleared, since the CHECK allows outcome,
 * note, reviewer and time only on resolved payments; the audit log and the reason keep it.
 */
function underReview(reviewReason: string, hold: { holdsPaidReceipt: boolean }) {
  return {
    status: 'needs_review',
    reviewReason,
    holdsPaidReceipt: hold.holdsPaidReceipt,
    reviewOutcome: null,
    reviewNote: null,
    reviewedBy: null,
    reviewedAt: null,
  } as const;
}

/**
 * Holds the payment that paid the receipt for review, because the receipt is being voided and
 * its money now pays for nothing. An accepted resolution is cleared (the CHECK allows outcome,
 * note, reviewer and time only on resolved payments); the audit log keeps it, and the caller
 * says it in the reason. False when the payment no longer paid the receipt.
 */
export async function holdPaymentThatPaid(tx: Tx, id: number, reviewReason: string): Promise<boolean> {
  const result = await tx.payment.updateMany({
    where: { id, ...PAID_THE_RECEIPT },
    data: underReview(reviewReason, { holdsPaidReceipt: false }),
  });
  return result.count === 1;
}

/** Records what the provider reported refunding so far (see PaymentRow.refundedMinor). */
export function recordRefund(tx: Tx, id: number, refunded: Received, at: Date) {
  return tx.payment.update({
    where: { id },
    data: { refundedMinor: refunded.amountMinor, refundedCurrency: refunded.currency, refundedAt: at },
  });
}

/** Records the dispute (chargeback) the provider reported for the payment (see PaymentRow.externalDisputeId). */
export function recordDispute(
  tx: Tx,
  id: number,
  dispute: { externalDisputeId: string; disputed: Received; reason: string | null },
  at: Date,
) {
  return tx.payment.update({
    where: { id },
    data: {
      externalDisputeId: dispute.externalDisputeId,
      disputedMinor: dispute.disputed.amountMinor,
      disputedCurrency: dispute.disputed.currency,
      disputeReason: dispute.reason,
      disputedAt: at,
    },
  });
}

/** Records the outcome of the payment's dispute the provider reported closed (see PaymentRow.disputeStatus). */
export function recordDisputeClosed(tx: Tx, id: number, status: 'won' | 'lost', at: Date) {
  return tx.payment.update({ where: { id }, data: { disputeStatus: status, disputeClosedAt: at } });
}

/**
 * Holds the payment that paid its receipt for review after part of its money was refunded (or
 * the payer disputed it, see holdForDispute): the
 * receipt stays paid from it (holds_paid_receipt) until an admin decides. An accepted resolution
 * is cleared, as a void's hold clears it (the audit log keeps it).
 */
export function holdForPartialRefund(tx: Tx, id: number, reviewReason: string) {
  return tx.payment.update({
    where: { id },
    data: underReview(reviewReason, { holdsPaidReceipt: true }),
  });
}

/**
 * Records a refund the provider reported failed or canceled, once per (provider, refund id); false
 * when that refund's failure was recorded already (told again by another event).
 */
export async function recordFailedRefund(
  tx: Tx,
  refund: {
    provider: string;
    externalRefundId: string;
    paymentId: number;
    failed: Received;
    status: 'failed' | 'canceled';
    failureReason: string | null;
    externalEventId: string;
    failedAt: Date;
    /** The payment's recorded refunded total counts this refund already (its report came first). */
    isInReportedTotal: boolean;
    /** When the provider made the event that said it failed, when it says. */
    failureOccurredAt: Date | null;
  },
): Promise<boolean> {
  const rows = await tx.$queryRaw<Array<{ id: number }>>`
    INSERT INTO payment_failed_refunds (provider, external_refund_id, payment_id, amount_minor, currency, status,
                                        failure_reason, external_event_id, failed_at, is_in_reported_total,
                                        failure_occurred_at)
    VALUES (${refund.provider}, ${refund.externalRefundId}, ${refund.paymentId}, ${refund.failed.amountMinor},
            ${refund.failed.currency}, ${refund.status}, ${refund.failureReason}, ${refund.externalEventId},
            ${refund.failedAt}, ${refund.isInReportedTotal}, ${refund.failureOccurredAt})
    ON CONFLICT (provider, external_refund_id) DO NOTHING
    RETURNING id`;
  return rows.length === 1;
}

/** The payment a refund's recorded failure is of, or null when no failure of that refund is recorded. */
export async function findPaymentOfFailedRefund(tx: Tx, provider: string, externalRefundId: string) {
  const row = await tx.paymentFailedRefund.findUnique({
    where: { provider_externalRefundId: { provider, externalRefundId } },
    select: { paymentId: true },
  });
  return row?.paymentId ?? null;
}

/**
 * What of the payment's refunds the provider reported failed or canceled, in minor units (0 when
 * none): all of them, or only those the recorded refunded total counts (`isInReportedTotal`).
 */
export async function sumFailedRefundMinor(
  tx: Tx,
  paymentId: number,
  only: { isInReportedTotal?: boolean } = {},
): Promise<bigint> {
  const sum = await tx.paymentFailedRefund.aggregate({
    where: { paymentId, ...only },
    _sum: { amountMinor: true },
  });
  return sum._sum.amountMinor ?? 0n;
}

/**
 * The payment's failed refunds that its recorded refunded total does not count yet (told before
 * any report of them), in the order they were told.
 */
export function findFailedRefundsNotInReportedTotal(tx: Tx, paymentId: number) {
  return tx.paymentFailedRefund.findMany({
    where: { paymentId, isInReportedTotal: false },
    orderBy: { id: 'asc' },
    select: { amountMinor: true, failureOccurredAt: true },
  });
}

/**
 * The payment's failed refunds that its recorded refunded total counts, with when the provider
 * made the event that said each failed (null when it did not say).
 */
export function findFailedRefundsInReportedTotal(tx: Tx, paymentId: number) {
  return tx.paymentFailedRefund.findMany({
    where: { paymentId, isInReportedTotal: true },
    orderBy: { id: 'asc' },
    select: { amountMinor: true, failureOccurredAt: true },
  });
}

/**
 * Marks the payment's failed refunds as counted by its recorded refunded total: a refund report
 * was just recorded, and the provider's reports after it leave them out.
 */
export function markFailedRefundsInReportedTotal(tx: Tx, paymentId: number) {
  return tx.paymentFailedRefund.updateMany({
    where: { paymentId, isInReportedTotal: false },
    data: { isInReportedTotal: true },
  });
}

/**
 * When the payment first paid its receipt, if a refund of it was reported failed since (the money
 * never left); null otherwise, or when it never paid its receipt.
 */
export async function findPaidAtKeptByFailedRefund(tx: Tx, paymentId: number): Promise<Date | null> {
  const payment = await tx.payment.findFirst({
    where: { id: paymentId, failedRefunds: { some: {} } },
    select: { paidAt: true },
  });
  return payment?.paidAt ?? null;
}

/** Replaces a held payment's reason (something more for the admin to decide on); it stays held as it was. */
export function addToHoldReason(tx: Tx, id: number, reviewReason: string) {
  return tx.payment.updateMany({ where: { id, status: 'needs_review' }, data: { reviewReason } });
}

/**
 * Holds for review a payment that no longer pays its receipt after the provider reported one of
 * its refunds failed: the money is back with the centre. A resolution (the provider's `refunded`
 * after a full refund, or an admin's) is cleared, as a void's hold clears it; the audit log keeps it.
 */
export function holdAfterFailedRefund(tx: Tx, id: number, reviewReason: string) {
  return tx.payment.update({
    where: { id },
    data: underReview(reviewReason, { holdsPaidReceipt: false }),
  });
}

/**
 * Puts a payment whose review was resolved (refunded or dismissed) back under review: the provider
 * reported something about its money after the decision (a dispute, its outcome). The resolution is
 * cleared, as a void's hold clears one (the CHECK allows it only on resolved payments); the audit
 * log and the new reason keep it. False when the payment is no longer resolved.
 */
export async function reopenResolvedReview(tx: Tx, id: number, reviewReason: string): Promise<boolean> {
  const result = await tx.payment.updateMany({
    where: { id, status: 'resolved' },
    data: underReview(reviewReason, { holdsPaidReceipt: false }),
  });
  return result.count === 1;
}

/**
 * Holds for review a payment refunded in full whose dispute is still open: its receipt was unpaid by
 * the refund, but the bank may take the money back as well. Cleared of any resolution, as every hold.
 */
export function holdAfterFullRefund(tx: Tx, id: number, reviewReason: string) {
  return tx.payment.update({
    where: { id },
    data: underReview(reviewReason, { holdsPaidReceipt: false }),
  });
}

/** Holds the payment that paid its receipt for review after the payer disputed it, as a partial refund does. */
export const holdForDispute = holdForPartialRefund;

/**
 * Closes a payment whose money the provider refunded in full as resolved `refunded`, by the
 * provider: nothing is left for an admin to decide about it.
 */
export function resolveAsRefundedByProvider(
  tx: Tx,
  id: number,
  resolution: { note: string; reviewedBy: string; reviewedAt: Date; reviewReason: string | null },
) {
  return tx.payment.update({
    where: { id },
    data: {
      status: 'resolved',
      holdsPaidReceipt: false,
      reviewReason: resolution.reviewReason,
      reviewOutcome: 'refunded',
      reviewNote: resolution.note,
      reviewedBy: resolution.reviewedBy,
      reviewedAt: resolution.reviewedAt,
    },
  });
}

/**
 * The receipts' payments whose money went back to the payer, in whole or in part: refunded by the
 * provider, a refund of which it reported failed, or resolved by an admin as refunded (the billing
 * team returned it, e.g. after a void); newest refund first; each with the sum of its failed refunds
 * and when the latest failure arrived (a refund's currency is the one the payment received), and
 * when it paid its receipt (null for one that never did: held when paid short, say).
 */
export async function findRefundedPaymentsOfReceipts(db: Client, receiptIds: number[]) {
  if (receiptIds.length === 0) return [];
  const payments = await db.payment.findMany({
    where: {
      receiptId: { in: receiptIds },
      OR: [
        { refundedMinor: { not: null } },
        { failedRefunds: { some: {} } },
        { status: 'resolved', reviewOutcome: 'refunded' },
      ],
    },
    orderBy: [{ refundedAt: { sort: 'desc', nulls: 'last' } }, { id: 'desc' }],
    select: {
      ...SELECT_PAYMENT,
      paidAt: true,
      failedRefunds: { select: { amountMinor: true, failedAt: true, isInReportedTotal: true } },
    },
  });
  return payments.map(({ failedRefunds, ...payment }) => ({
    ...payment,
    failedRefundMinor: failedRefunds.reduce((sum, failed) => sum + failed.amountMinor, 0n),
    uncountedFailedRefundMinor: failedRefunds.reduce(
      (sum, failed) => (failed.isInReportedTotal ? sum : sum + failed.amountMinor),
      0n,
    ),
    lastFailedAt: failedRefunds.reduce<Date | null>(
      (latest, failed) => (latest === null || failed.failedAt > latest ? failed.failedAt : latest),
      null,
    ),
  }));
}

/** The receipt's refunded payments, as findRefundedPaymentsOfReceipts reads them. */
export function findRefundedPayments(db: Client, receiptId: number) {
  return findRefundedPaymentsOfReceipts(db, [receiptId]);
}

/**
 * The receipt's payments that an admin resolved as dismissed (handled otherwise, e.g. the
 * receipt was paid by hand as well), oldest first: each was held for a success, so the provider
 * took its money. A void of the receipt paid by hand names them, as that money may be what paid it.
 */
export function findDismissedPayments(db: Client, receiptId: number): Promise<PaymentRow[]> {
  return db.payment.findMany({
    where: { receiptId, status: 'resolved', reviewOutcome: 'dismissed' },
    orderBy: { id: 'asc' },
    select: SELECT_PAYMENT,
  });
}

/**
 * Locks the receipt's open (pending) payments, in the order a webhook takes them (payment, then
 * receipt): a void that took the receipt's row first and a success that took the payment's row
 * first would each wait for the other.
 */
export async function lockOpenPayments(tx: Tx, receiptId: number): Promise<void> {
  await tx.$queryRaw`SELECT id FROM payments WHERE receipt_id = ${receiptId} AND status = 'pending' ORDER BY id FOR UPDATE`;
}

/**
 * pending -> canceled with the reason, for every open payment of the receipt (its checkout is
 * closed at the provider after the transaction commits, see checkout-closer.ts; a success there
 * meanwhile is held for review as a late success of a canceled payment). Returns the payments
 * canceled, by id.
 */
export async function cancelOpenPayments(
  tx: Tx,
  receiptId: number,
  reviewReason: string,
): Promise<Array<{ id: number; provider: string; externalPaymentId: string | null; idempotencyKey: string }>> {
  return tx.$queryRaw`
    UPDATE payments SET status = 'canceled', review_reason = ${reviewReason}, updated_at = now()
     WHERE receipt_id = ${receiptId} AND status = 'pending'
    RETURNING id, provider, external_payment_id AS "externalPaymentId", idempotency_key AS "idempotencyKey"`;
}

/**
 * Adds to a canceled payment's reason (or an abandoned start's, failed) why its checkout may still
 * be open at the provider, for the payments page. A payment held since (its success arrived) keeps
 * the hold's own reason.
 */
export async function noteCheckoutLeftOpen(db: Client, id: number, note: string): Promise<void> {
  await db.$executeRaw`
    UPDATE payments SET review_reason = concat_ws('; ', review_reason, ${note}::text), updated_at = now()
     WHERE id = ${id} AND status IN ('canceled', 'failed')`;
}

/** The receipt's open (pending) payments, oldest first: an online checkout may be open for each. */
export function findOpenPayments(db: Client, receiptId: number): Promise<PaymentRow[]> {
  return db.payment.findMany({
    where: { receiptId, status: 'pending' },
    orderBy: { id: 'asc' },
    select: SELECT_PAYMENT,
  });
}

/**
 * A payment held for review, with the receipt it was for, as the researcher is told of it: the money it
 * stands for and what of it went back (refunds, less those that failed; a lost dispute).
 */
export type HeldPaymentRow = Pick<
  PaymentRow,
  | 'id'
  | 'receiptId'
  | 'amountMinor'
  | 'currency'
  | 'receivedMinor'
  | 'receivedCurrency'
  | 'refundedMinor'
  | 'refundedCurrency'
  | 'disputeStatus'
  | 'disputedMinor'
> & { failedRefundMinor: bigint | null; uncountedFailedRefundMinor: bigint | null };

/** The columns of a HeldPaymentRow, from `payments p`, each as text where it is money (the pool's rows). */
const HELD_PAYMENT_COLUMNS = `p.id, p.receipt_id AS "receiptId", p.amount_minor::text AS "amountMinor", p.currency,
       p.received_minor::text AS "receivedMinor", p.received_currency AS "receivedCurrency",
       p.refunded_minor::text AS "refundedMinor", p.refunded_currency AS "refundedCurrency",
       p.dispute_status::text AS "disputeStatus", p.disputed_minor::text AS "disputedMinor",
       -- The refunds the provider reported failed went nowhere (docs/payments.md, "A refund that failed").
       (SELECT SUM(f.amount_minor) FROM payment_failed_refunds f WHERE f.payment_id = p.id)::text
         AS "failedRefundMinor",
       (SELECT SUM(f.amount_minor) FROM payment_failed_refunds f
         WHERE f.payment_id = p.id AND NOT f.is_in_reported_total)::text AS "uncountedFailedRefundMinor"`;

type HeldPaymentText = {
  [K in keyof HeldPaymentRow]: HeldPaymentRow[K] extends bigint | null ? string | null : HeldPaymentRow[K];
};

function heldPaymentRowOf(row: HeldPaymentText): HeldPaymentRow {
  const minor = (text: string | null) => (text === null ? null : BigInt(text));
  return {
    ...row,
    amountMinor: BigInt(row.amountMinor ?? '0'),
    receivedMinor: minor(row.receivedMinor),
    refundedMinor: minor(row.refundedMinor),
    disputedMinor: minor(row.disputedMinor),
    failedRefundMinor: minor(row.failedRefundMinor),
    uncountedFailedRefundMinor: minor(row.uncountedFailedRefundMinor),
  };
}

/**
 * The user's payments held for review and not yet resolved, on any of their receipts, oldest first.
 * Read on every /me, so through the pool as a named prepared statement, as the page's own queries
 * are: through Prisma it cost the page about 4 ms of the worker's CPU (`me` fell from about 400
 * to 200 requests/s).
 */
export async function findHeldPaymentsOfUser(pool: pg.Pool, username: string): Promise<HeldPaymentRow[]> {
  const result = await pool.query<HeldPaymentText>({
    name: 'held-payments-of-user',
    // Through the (status, created_at) index: held payments are few.
    text: `SELECT ${HELD_PAYMENT_COLUMNS}
             FROM payments p JOIN receipts r ON r.id = p.receipt_id
            WHERE p.status = 'needs_review' AND r.username = $1
            ORDER BY p.id`,
    values: [username],
  });
  return result.rows.map(heldPaymentRowOf);
}

/** The receipt's payments held for review, oldest first, as the researcher is told of them (HeldPaymentRow). */
export async function findHeldPaymentRowsOfReceipt(db: Client, receiptId: number): Promise<HeldPaymentRow[]> {
  const rows = await db.$queryRaw<HeldPaymentText[]>`
    SELECT ${Prisma.raw(HELD_PAYMENT_COLUMNS)}
      FROM payments p
     WHERE p.receipt_id = ${receiptId} AND p.status = 'needs_review'
     ORDER BY p.id`;
  return rows.map(heldPaymentRowOf);
}

/**
 * A payment held for review of another receipt that billed one of this receipt's jobs (a receipt
 * voided and billed again): its money may already pay for these jobs. Null when there is none.
 */
export async function findHeldPaymentForSameJobs(db: Client, receiptId: number): Promise<HeldPaymentRow | null> {
  const rows = await db.$queryRaw<HeldPaymentText[]>`
    SELECT ${Prisma.raw(HELD_PAYMENT_COLUMNS)}
      FROM payments p
     WHERE p.status = 'needs_review'
       AND p.receipt_id <> ${receiptId}
       AND EXISTS (SELECT 1
                     FROM receipt_items held
                     JOIN receipt_items here ON here.cluster = held.cluster AND here.job_key = held.job_key
                    WHERE held.receipt_id = p.receipt_id AND here.receipt_id = ${receiptId} AND NOT here.is_voided)
     ORDER BY p.id
     LIMIT 1`;
  return rows[0] === undefined ? null : heldPaymentRowOf(rows[0]);
}

/**
 * Of `receiptIds`, those that bill (live) some of the jobs of one of `heldReceiptIds`, the
 * receipts with a payment held for review, other than themselves, each with that held receipt: as
 * findHeldPaymentForSameJobs, for a whole list at once. Reads only the held receipts' items, which are few.
 */
export async function findReceiptsBillingJobsOf(
  db: Client,
  heldReceiptIds: number[],
  receiptIds: number[],
): Promise<Array<{ receiptId: number; heldReceiptId: number }>> {
  if (heldReceiptIds.length === 0 || receiptIds.length === 0) return [];
  return db.$queryRaw<Array<{ receiptId: number; heldReceiptId: number }>>`
    SELECT DISTINCT here.receipt_id AS "receiptId", held.receipt_id AS "heldReceiptId"
      FROM receipt_items held
      JOIN receipt_items here ON here.cluster = held.cluster AND here.job_key = held.job_key
     WHERE held.receipt_id = ANY(${heldReceiptIds}::int[])
       AND here.receipt_id = ANY(${receiptIds}::int[])
       AND here.receipt_id <> held.receipt_id
       AND NOT here.is_voided`;
}

/**
 * For a list of receipts, the payment held for review that concerns each: its own (the oldest), or
 * for one of `pendingIds` the oldest held payment of another receipt that billed some of its jobs, as
 * the receipt's own page picks them. Receipts with none are left out. Driven by the held payments,
 * which are few (the (status, created_at) index), as findReceiptsBillingJobsOf is.
 */
export async function findHeldPaymentsConcerning(
  db: Client,
  receiptIds: number[],
  pendingIds: number[],
): Promise<Array<{ receiptId: number; paymentId: number; heldReceiptId: number }>> {
  if (receiptIds.length === 0) return [];
  return db.$queryRaw<Array<{ receiptId: number; paymentId: number; heldReceiptId: number }>>`
    SELECT DISTINCT ON (c.receipt_id) c.receipt_id AS "receiptId", c.payment_id AS "paymentId",
           c.held_receipt_id AS "heldReceiptId"
      FROM (SELECT p.receipt_id, p.id AS payment_id, p.receipt_id AS held_receipt_id, 0 AS kind
              FROM payments p
             WHERE p.status = 'needs_review' AND p.receipt_id = ANY(${receiptIds}::int[])
            UNION ALL
            SELECT here.receipt_id, p.id, p.receipt_id, 1
              FROM payments p
              JOIN receipt_items held ON held.receipt_id = p.receipt_id
              JOIN receipt_items here ON here.cluster = held.cluster AND here.job_key = held.job_key
             WHERE p.status = 'needs_review'
               AND here.receipt_id = ANY(${pendingIds}::int[])
               AND here.receipt_id <> p.receipt_id
               AND NOT here.is_voided) c
     ORDER BY c.receipt_id, c.kind, c.payment_id`;
}

/**
 * How many of this receipt's (live) jobs the other receipt billed too, for a hold's reason: the
 * admin sees how much of the bill the held money may already pay.
 */
export async function countJobsBilledByBoth(db: Client, receiptId: number, otherReceiptId: number): Promise<number> {
  const rows = await db.$queryRaw<Array<{ shared: number }>>`
    SELECT count(*)::int AS shared
      FROM receipt_items here
     WHERE here.receipt_id = ${receiptId} AND NOT here.is_voided
       AND EXISTS (SELECT 1 FROM receipt_items other
                    WHERE other.receipt_id = ${otherReceiptId}
                      AND other.cluster = here.cluster AND other.job_key = here.job_key)`;
  return rows[0]?.shared ?? 0;
}

/** Whether any payment of the receipt is held for review and not yet resolved. */
export async function hasPaymentInReview(db: Client, receiptId: number): Promise<boolean> {
  return (await db.payment.count({ where: { receiptId, status: 'needs_review' } })) > 0;
}

/**
 * Locks the receipt's row for the rest of the transaction: holding a payment for review and
 * starting a new one both take it, so a start either sees the hold or happens before it.
 */
export async function lockReceiptForPayments(tx: Tx, receiptId: number): Promise<void> {
  await tx.$queryRaw`SELECT id FROM receipts WHERE id = ${receiptId} FOR NO KEY UPDATE`;
}

/**
 * Locks the receipt's payments held for review, in id order. A void takes them first, before the
 * receipt's open payments and its row: the order in which an admin resolving one of them takes
 * locks (that payment, the open ones, the receipt), so neither waits for the other in a circle.
 */
export async function lockHeldPayments(tx: Tx, receiptId: number): Promise<void> {
  await tx.$queryRaw`SELECT id FROM payments WHERE receipt_id = ${receiptId} AND status = 'needs_review' ORDER BY id FOR UPDATE`;
}

/**
 * Locks the online payment that paid the receipt (PAID_THE_RECEIPT), if any. A void takes it before
 * the receipt's row, as a webhook about it (a refund, a dispute) does: taken after, while holding the
 * receipt, a void and such a webhook each waited for the other until PostgreSQL broke the deadlock.
 */
export async function lockPaymentThatPaid(tx: Tx, receiptId: number): Promise<void> {
  await tx.$queryRaw`
    SELECT p.id FROM payments p
     WHERE p.receipt_id = ${receiptId} AND ${PAID_THE_RECEIPT_SQL}
     ORDER BY p.id FOR UPDATE`;
}

/** The receipt's payments held for review, oldest first. */
export function findHeldPaymentsOfReceipt(db: Client, receiptId: number): Promise<PaymentRow[]> {
  return db.payment.findMany({
    where: { receiptId, status: 'needs_review' },
    orderBy: { id: 'asc' },
    select: SELECT_PAYMENT,
  });
}

/** Payments held for review and not yet resolved, across all receipts. */
export function countPaymentsInReview(db: Client): Promise<number> {
  return db.payment.count({ where: { status: 'needs_review' } });
}

/** The receipt a payment is for (which never changes), without locking it; null when there is no such payment. */
export async function findReceiptIdOf(db: Client, id: number): Promise<number | null> {
  const payment = await db.payment.findUnique({ where: { id }, select: { receiptId: true } });
  return payment?.receiptId ?? null;
}

/** The payment, read without a lock (what a form about it is checked against first); null when there is none. */
export function findById(db: Client, id: number): Promise<PaymentRow | null> {
  return db.payment.findUnique({ where: { id }, select: SELECT_PAYMENT });
}

/** Locks the payment row for the rest of the transaction, so one admin at a time resolves it. */
export async function lockById(tx: Tx, id: number): Promise<PaymentRow | null> {
  const rows = await tx.$queryRaw<Array<{ id: number }>>`SELECT id FROM payments WHERE id = ${id} FOR UPDATE`;
  return rows.length === 0 ? null : tx.payment.findUnique({ where: { id }, select: SELECT_PAYMENT });
}

/**
 * needs_review -> resolved with the resolution, only if the payment is still held; false
 * when it was not (the caller holds the row lock, so that means resolved before it).
 */
export async function resolveReview(
  tx: Tx,
  id: number,
  resolution: { outcome: PaymentReviewOutcome; note: string; reviewedBy: string; reviewedAt: Date },
): Promise<boolean> {
  const result = await tx.payment.updateMany({
    where: { id, status: 'needs_review' },
    data: {
      status: 'resolved',
      holdsPaidReceipt: false,
      reviewOutcome: resolution.outcome,
      reviewNote: resolution.note,
      reviewedBy: resolution.reviewedBy,
      reviewedAt: resolution.reviewedAt,
    },
  });
  return result.count === 1;
}

/** Locks the payment row for the rest of the transaction, so one event at a time moves it. */
export async function lockByExternalId(
  tx: Tx,
  provider: string,
  externalPaymentId: string,
): Promise<PaymentRow | null> {
  const rows = await tx.$queryRaw<Array<{ id: number }>>`
    SELECT id FROM payments WHERE provider = ${provider} AND external_payment_id = ${externalPaymentId} FOR UPDATE`;
  const id = rows[0]?.id;
  return id === undefined ? null : tx.payment.findUnique({ where: { id }, select: SELECT_PAYMENT });
}

/** Like lockByExternalId, by the provider's id of the money taken (Stripe's PaymentIntent). */
export async function lockByExternalIntentId(
  tx: Tx,
  provider: string,
  externalIntentId: string,
): Promise<PaymentRow | null> {
  const rows = await tx.$queryRaw<Array<{ id: number }>>`
    SELECT id FROM payments WHERE provider = ${provider} AND external_intent_id = ${externalIntentId} FOR UPDATE`;
  const id = rows[0]?.id;
  return id === undefined ? null : tx.payment.findUnique({ where: { id }, select: SELECT_PAYMENT });
}

/** The payment a provider knows by `externalPaymentId`, if any. */
export function findByExternalId(db: Client, provider: string, externalPaymentId: string): Promise<PaymentRow | null> {
  return db.payment.findUnique({
    where: { provider_externalPaymentId: { provider, externalPaymentId } },
    select: SELECT_PAYMENT,
  });
}

/** True when a payment of `provider` has recorded this id of the money taken (Stripe's PaymentIntent). */
export async function hasExternalIntentId(db: Client, provider: string, externalIntentId: string): Promise<boolean> {
  const row = await db.payment.findUnique({
    where: { provider_externalIntentId: { provider, externalIntentId } },
    select: { id: true },
  });
  return row !== null;
}

/**
 * True when a delivery of this (provider, event id) is recorded already, and taken: a row an older
 * release ignored under another type (insertEventOnce) is not, as insertEventOnce applies it again.
 */
export async function hasEvent(db: Client, provider: string, externalEventId: string, type: string): Promise<boolean> {
  const row = await db.paymentEvent.findUnique({
    where: { provider_externalEventId: { provider, externalEventId } },
    select: { type: true, outcome: true },
  });
  return row !== null && !(row.outcome === 'ignored' && row.type !== type);
}

/**
 * Records a delivery once per (provider, event id): concurrent duplicates wait on the unique
 * index and then insert nothing. Returns the row's id, or null for a duplicate.
 *
 * Except a row stored `ignored` under another type than this release reads the event as: a release
 * that did not read that kind of event stored it (one from before refunds were read kept Stripe's
 * `charge.refunded` as its type and answered 200, so Stripe never sent it again). Its redelivery
 * (the provider's "resend") takes that row over and is applied; an event this release ignored has
 * the same type and stays a duplicate. Concurrent redeliveries wait on the row: the first takes it,
 * the others then see its type and are duplicates.
 */
export async function insertEventOnce(
  tx: Tx,
  event: { provider: string; externalEventId: string; type: string; rawPayload: string },
): Promise<bigint | null> {
  const rows = await tx.$queryRaw<Array<{ id: bigint }>>`
    INSERT INTO payment_events (provider, external_event_id, type, signature_verdict, outcome, raw_payload)
    VALUES (${event.provider}, ${event.externalEventId}, ${event.type}, 'valid', 'processing', ${event.rawPayload})
    ON CONFLICT (provider, external_event_id) DO UPDATE
       SET type = EXCLUDED.type, outcome = 'processing', payment_id = NULL
     WHERE payment_events.outcome = 'ignored' AND payment_events.type <> EXCLUDED.type
    RETURNING id`;
  return rows[0]?.id ?? null;
}

/** The body an event id was first received with, when it is stored. */
export async function findEventBody(tx: Tx, provider: string, externalEventId: string): Promise<string | null> {
  const row = await tx.paymentEvent.findUnique({
    where: { provider_externalEventId: { provider, externalEventId } },
    select: { rawPayload: true },
  });
  return row?.rawPayload ?? null;
}

/** Records what applying a webhook event did, and to which payment. */
export function finishEvent(tx: Tx, id: bigint, outcome: string, paymentId: number | null) {
  return tx.paymentEvent.update({ where: { id }, data: { outcome, paymentId } });
}

/**
 * Keeps a refund or dispute the webhook refused, once per (provider, event id): a retry of the
 * same event (the provider retries a 409) only counts a delivery and when it came. Returns how
 * many deliveries it has now: 1 for a new entry. Concurrent retries wait on the unique index.
 */
export async function recordRefusedClaim(
  tx: Tx,
  claim: {
    provider: string;
    externalEventId: string;
    eventType: string;
    paymentId: number;
    claimed: Received | null;
    reason: string;
    rawPayload: string;
    receivedAt: Date;
  },
): Promise<number> {
  const rows = await tx.$queryRaw<Array<{ deliveries: number }>>`
    INSERT INTO payment_refused_claims (provider, external_event_id, event_type, payment_id, claimed_minor,
                                        claimed_currency, reason, raw_payload, first_received_at, last_received_at)
    VALUES (${claim.provider}, ${claim.externalEventId}, ${claim.eventType}, ${claim.paymentId},
            ${claim.claimed?.amountMinor ?? null}, ${claim.claimed?.currency ?? null}, ${claim.reason},
            ${claim.rawPayload}, ${claim.receivedAt}, ${claim.receivedAt})
    ON CONFLICT (provider, external_event_id)
    DO UPDATE SET deliveries = payment_refused_claims.deliveries + 1, last_received_at = EXCLUDED.last_received_at
    RETURNING deliveries`;
  return rows[0]?.deliveries ?? 1;
}

/** A refused refund or dispute as /admin/payments lists it, with the receipt its payment is for. */
export interface RefusedClaimRow {
  id: number;
  provider: string;
  externalEventId: string;
  eventType: string;
  paymentId: number;
  receiptId: number;
  claimedMinor: bigint | null;
  claimedCurrency: string | null;
  reason: string;
  deliveries: number;
  firstReceivedAt: Date;
  lastReceivedAt: Date;
}

/** The newest `limit` refused refunds and disputes, newest first (by when each was first delivered). */
export function listRefusedClaimsForAdmin(db: Client, limit: number) {
  return db.$queryRaw<RefusedClaimRow[]>`
    SELECT c.id, c.provider, c.external_event_id AS "externalEventId", c.event_type AS "eventType",
           c.payment_id AS "paymentId", p.receipt_id AS "receiptId", c.claimed_minor AS "claimedMinor",
           c.claimed_currency AS "claimedCurrency", c.reason, c.deliveries,
           c.first_received_at AS "firstReceivedAt", c.last_received_at AS "lastReceivedAt"
      FROM payment_refused_claims c JOIN payments p ON p.id = c.payment_id
     WHERE c.settled_at IS NULL
     ORDER BY c.first_received_at DESC, c.id DESC
     LIMIT ${limit}`;
}

/** Refused refunds and disputes finance has not settled yet. */
export function countRefusedClaims(db: Client): Promise<number> {
  return db.paymentRefusedClaim.count({ where: { settledAt: null } });
}

const SELECT_REFUSED_CLAIM = {
  id: true,
  provider: true,
  externalEventId: true,
  eventType: true,
  paymentId: true,
  claimedMinor: true,
  claimedCurrency: true,
  reason: true,
  settledBy: true,
  settledAt: true,
  payment: { select: { receiptId: true } },
} satisfies Prisma.PaymentRefusedClaimSelect;

/** A refused claim, read without a lock (what a form about it is checked against first); null when there is none. */
export function findRefusedClaim(db: Client, id: number) {
  return db.paymentRefusedClaim.findUnique({ where: { id }, select: SELECT_REFUSED_CLAIM });
}

/** Locks a refused claim's row for the rest of the transaction, so one admin at a time settles it. */
export async function lockRefusedClaim(tx: Tx, id: number) {
  const rows = await tx.$queryRaw<
    Array<{ id: number }>
  >`SELECT id FROM payment_refused_claims WHERE id = ${id} FOR UPDATE`;
  if (rows.length === 0) return null;
  return tx.paymentRefusedClaim.findUnique({ where: { id }, select: SELECT_REFUSED_CLAIM });
}

/** Marks a refused claim settled; false when it was settled already. */
export async function settleRefusedClaim(
  tx: Tx,
  id: number,
  settlement: { settledBy: string; settledAt: Date; note: string },
): Promise<boolean> {
  const result = await tx.paymentRefusedClaim.updateMany({
    where: { id, settledAt: null },
    data: { settledBy: settlement.settledBy, settledAt: settlement.settledAt, settleNote: settlement.note },
  });
  return result.count === 1;
}

export type AdminPaymentRow = PaymentRow & {
  username: string;
  receiptStatus: string;
  failedRefundMinor: bigint | null;
  uncountedFailedRefundMinor: bigint | null;
};

const SELECT_ADMIN_PAYMENTS = Prisma.sql`
  SELECT p.id, p.receipt_id AS "receiptId", p.provider, p.status::text AS status, p.amount_minor AS "amountMinor",
         p.currency, p.external_payment_id AS "externalPaymentId", p.review_reason AS "reviewReason",
         p.received_minor AS "receivedMinor", p.received_currency AS "receivedCurrency",
         p.has_amount_mismatch AS "hasAmountMismatch", p.review_outcome::text AS "reviewOutcome",
         p.external_intent_id AS "externalIntentId", p.refunded_minor AS "refundedMinor",
         p.refunded_currency AS "refundedCurrency", p.refunded_at AS "refundedAt",
         p.external_dispute_id AS "externalDisputeId", p.disputed_minor AS "disputedMinor",
         p.disputed_currency AS "disputedCurrency", p.dispute_reason AS "disputeReason", p.disputed_at AS "disputedAt",
         p.dispute_status::text AS "disputeStatus", p.dispute_closed_at AS "disputeClosedAt",
         p.holds_paid_receipt AS "holdsPaidReceipt",
         p.review_note AS "reviewNote", p.reviewed_by AS "reviewedBy", p.reviewed_at AS "reviewedAt",
         p.created_at AS "createdAt", p.updated_at AS "updatedAt", r.username, r.status::text AS "receiptStatus",
         -- The refunds the provider reported failed: not money that went back (docs/payments.md).
         (SELECT SUM(f.amount_minor) FROM payment_failed_refunds f WHERE f.payment_id = p.id)::bigint
           AS "failedRefundMinor",
         -- Of those, the ones told before any report of them, which the refunded total does not count yet.
         (SELECT SUM(f.amount_minor) FROM payment_failed_refunds f
           WHERE f.payment_id = p.id AND NOT f.is_in_reported_total)::bigint AS "uncountedFailedRefundMinor"
  FROM payments p JOIN receipts r ON r.id = p.receipt_id`;

/** The newest `limit` payments held for review, for the review forms at the top of /admin/payments. */
export function listHeldPaymentsForAdmin(db: Client, limit: number) {
  return db.$queryRaw<AdminPaymentRow[]>`${SELECT_ADMIN_PAYMENTS}
    WHERE p.status = 'needs_review'
    ORDER BY p.created_at DESC, p.id DESC
    LIMIT ${limit}`;
}

/**
 * One page of every payment, newest first by (created_at, id): the first `limit`, or the `limit`
 * just older or just newer than the payment `from` (keyset paging, so a page stays put however
 * many payments arrive meanwhile). Newer pages come back oldest first; the caller reverses them.
 */
export function listPaymentsPageForAdmin(
  db: Client,
  from: { direction: 'older' | 'newer'; paymentId: number } | undefined,
  limit: number,
) {
  if (!from) {
    return db.$queryRaw<AdminPaymentRow[]>`${SELECT_ADMIN_PAYMENTS}
      ORDER BY p.created_at DESC, p.id DESC LIMIT ${limit}`;
  }
  const key = Prisma.sql`(SELECT k.created_at, k.id FROM payments k WHERE k.id = ${from.paymentId})`;
  return from.direction === 'older'
    ? db.$queryRaw<AdminPaymentRow[]>`${SELECT_ADMIN_PAYMENTS}
        WHERE (p.created_at, p.id) < ${key}
        ORDER BY p.created_at DESC, p.id DESC LIMIT ${limit}`
    : db.$queryRaw<AdminPaymentRow[]>`${SELECT_ADMIN_PAYMENTS}
        WHERE (p.created_at, p.id) > ${key}
        ORDER BY p.created_at ASC, p.id ASC LIMIT ${limit}`;
}

/** Whether a payment with this id exists. */
export async function paymentExists(db: Client, id: number): Promise<boolean> {
  return (await db.payment.count({ where: { id } })) > 0;
}

/** The newest `limit` webhook events received, for the admin's payments page. */
export function listEventsForAdmin(db: Client, limit: number) {
  return db.paymentEvent.findMany({
    orderBy: { receivedAt: 'desc' },
    take: limit,
    select: {
      id: true,
      provider: true,
      externalEventId: true,
      type: true,
      outcome: true,
      paymentId: true,
      receivedAt: true,
    },
  });
}

/** The receipt's newest payment, whatever its provider or status, if any. */
export function latestPaymentOf(db: Client, receiptId: number) {
  return db.payment.findFirst({ where: { receiptId }, orderBy: { id: 'desc' }, select: SELECT_PAYMENT });
}

/**
 * When the oldest checkout still open (its payment pending, the provider's id known) was opened,
 * per provider, for the NoWebhooks alert at each scrape; given up after `timeoutMs` (its
 * connection closed) so that a silent database cannot make the scrape time out.
 */
export async function findOldestOpenCheckouts(
  pool: pg.Pool,
  timeoutMs: number,
): Promise<{ provider: string; openedAt: Date }[]> {
  const { rows } = await queryWithin<{ provider: string; opened_at: Date }>(
    pool,
    {
      text: `SELECT provider, min(created_at) AS opened_at FROM payments
             WHERE status = 'pending' AND external_payment_id IS NOT NULL
             GROUP BY provider`,
    },
    timeoutMs,
  );
  return rows.map((row) => ({ provider: row.provider, openedAt: row.opened_at }));
}
