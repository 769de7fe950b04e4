import { Prisma } from '@prisma/client';
import express from 'express';
import type { z } from 'zod';
import { auditContextOf } from '../../http/audit-context.js';
import type { CsvExports } from '../../http/csv-exports.js';
import { getDownload, receiptPageOf } from '../../http/download-page.js';
import { prefersJson } from '../../http/error-handler.js';
import { hoursJson, moneyJson, rateJson } from '../../http/json-money.js';
import { linkTo, olderNewerLinks } from '../../http/page-links.js';
import {
  answerCreated,
  answeredHeadWithoutWork,
  answerHeadWithoutWork,
  type BackLink,
  isRefusedForm,
  offerWayBack,
  sessionUserOf,
  typedIn,
} from '../../http/route-helpers.js';
import { renderView, sendStreamedPage } from '../../http/streamed-page.js';
import { parseInput } from '../../http/validate.js';
import type { ViewFormatters } from '../../http/view-format.js';
import { counted } from '../../shared/counted.js';
import { AppError, NotAcceptableError, readableMessageOf } from '../../shared/errors.js';
import type { Guards } from '../auth/auth.guards.js';
import { type HeldPaymentNote, heldPaymentJsonOf } from '../payments/payment-money.js';
import type { ShowMyUsage } from '../usage/usage.routes.js';
import { BilledMeanwhileError, NothingToBillError, unfinishedJobsSentence } from './receipt-creation.errors.js';
import {
  ZCreateOwnReceipt,
  ZPageQuery,
  ZReceiptId,
  ZReceiptItemsCsvQuery,
  ZReceiptListQuery,
} from './receipts.schema.js';
import {
  type PaidByHand,
  paidByHandRecord,
  RECEIPT_ITEMS_CSV_COLUMNS,
  type ReceiptsService,
} from './receipts.service.js';

/** Renders a user's own receipt; `error` says why a payment of it was not started. */
export type ShowOwnReceipt = (
  res: express.Response,
  shown: { username: string; id: number; page: number; error?: string },
) => Promise<void>;

type ListedReceipt = Awaited<ReturnType<ReceiptsService['listForUser']>>['receipts'][number];
type ShownReceipt = Awaited<ReturnType<ReceiptsService['getForUser']>>;

type ShownRefund = ShownReceipt['refundedPayments'][number];

/**
 * Money that went back to the payer, as the receipt's page says it: given back by the provider (a
 * receipt refunded in full is pending again), or by the billing team (`isByBillingTeam`, e.g. after a
 * void; `refundedAt` is when they recorded it). A refund that failed at the provider is not in
 * `amount` (the money stayed): `failedAmount` says it. What a lost dispute took back is in `amount`,
 * and `takenBackByDispute` says how much of it that was.
 */
export function refundJson(refund: ShownRefund) {
  return {
    paymentId: refund.paymentId,
    amount: moneyJson(refund.refunded.amount, refund.refunded.currency),
    currency: refund.refunded.currency,
    refundedAt: refund.refundedAt?.toISOString() ?? null,
    isFull: refund.isFull,
    isByBillingTeam: refund.isByBillingTeam,
    // Whose each part was, as the page says it: what the provider reported refunded and what the billing
    // team returned (the rest, when it resolved the payment as refunded), each with when. `amount` is the
    // two together; /admin/payments shows the same parts (`refundedAtProvider`, `refundedByBillingTeam`).
    // The provider's figure may hold what the bank took back by a lost dispute (no refund, docs/payments.md):
    // its two parts are labelled, `refundedApart` being what paid.csv counts as `amount_refunded` and
    // `takenBackByDispute` its `amount_disputed_lost`, with when the bank took it.
    atProvider: providerPartJson(refund),
    byBillingTeam: refundPartJson(...billingTeamPartOf(refund)),
    failedAmount: refund.refundFailed ? moneyJson(refund.refundFailed.amount, refund.refundFailed.currency) : null,
    failedAt: refund.failedAt?.toISOString() ?? null,
    // What of `amount` the payer's bank took back by a dispute the centre lost (no refund), or null.
    takenBackByDispute: refund.takenBackByDispute
      ? moneyJson(refund.takenBackByDispute.amount, refund.takenBackByDispute.currency)
      : null,
  };
}

/** A part of a refund as `{amount, refundedAt}`, or null when there is none. */
function refundPartJson(money: { amount: Prisma.Decimal; currency: string } | null, at: Date | null) {
  return money && { amount: moneyJson(money.amount, money.currency), refundedAt: at?.toISOString() ?? null };
}

/**
 * The provider's part of a refund as JSON, with what of it a lost dispute took back (the bank's, no refund)
 * and what the provider refunded apart from it: it read 1,500.00 where paid.csv's `amount_refunded` reads
 * 1,000.00 and its `amount_disputed_lost` 500.00, with nothing in it saying so. Null when there is none.
 */
function providerPartJson(refund: ShownRefund) {
  const [money, at] = providerPartOf(refund);
  const part = refundPartJson(money, at);
  if (!part || !money) return null;
  const takenBack = refund.takenBackByDispute;
  if (!takenBack || !refund.refundedApart) return { ...part, refundedApart: part.amount, takenBackByDispute: null };
  return {
    ...part,
    refundedApart: moneyJson(refund.refundedApart.amount, refund.refundedApart.currency),
    takenBackByDispute: {
      amount: moneyJson(takenBack.amount, takenBack.currency),
      takenBackAt: refund.takenBackAt?.toISOString() ?? null,
    },
  };
}

/** What the provider refunded of it, with when: all of a refund of its own, the part before the team's, or none. */
function providerPartOf(refund: ShownRefund): [{ amount: Prisma.Decimal; currency: string } | null, Date | null] {
  if (!refund.isByBillingTeam) return [refund.refunded, refund.refundedAt];
  return refund.partByProvider ? [refund.partByProvider, refund.partByProvider.at] : [null, null];
}

/** What the billing team returned of it (the rest after the provider's part, or all), with when; none for the provider's. */
function billingTeamPartOf(refund: ShownRefund): [{ amount: Prisma.Decimal; currency: string } | null, Date | null] {
  if (!refund.isByBillingTeam) return [null, null];
  return [refund.partByBillingTeam ?? refund.refunded, refund.refundedAt];
}

type ReceiptFacts = Pick<
  ListedReceipt,
  'id' | 'status' | 'createdAt' | 'billedThrough' | 'tierName' | '_count' | 'total' | 'currency' | 'paidAt' | 'voidedAt'
>;

/**
 * A receipt's own facts as every JSON answer writes them (a researcher's and the admin's): money as
 * decimal text, days as YYYY-MM-DD, times as ISO 8601, so a receipt reads the same wherever a script meets it.
 */
export function receiptFactsJson(receipt: ReceiptFacts) {
  return {
    id: receipt.id,
    status: receipt.status,
    createdAt: receipt.createdAt.toISOString(),
    before: receipt.billedThrough.toISOString().slice(0, 10),
    tier: receipt.tierName,
    jobCount: receipt._count.items,
    total: moneyJson(receipt.total, receipt.currency),
    currency: receipt.currency,
    paidAt: receipt.paidAt?.toISOString() ?? null,
    voidedAt: receipt.voidedAt?.toISOString() ?? null,
  };
}

/**
 * The rates a receipt was priced at, from its snapshot, as `/formula` writes rates ("0.50"): what a
 * script checks a receipt's costs against, kept whatever the tier's rates have become since. Null
 * for a snapshot without them (none is written so; a row edited by hand).
 */
function receiptRatesJson(
  receipt: Pick<ShownReceipt['receipt'], 'ratesSnapshot' | 'ratesLockedAt' | 'currency' | 'rateId'>,
) {
  const snapshot = receipt.ratesSnapshot;
  if (snapshot === null || typeof snapshot !== 'object' || Array.isArray(snapshot)) return null;
  const { cpu, gpu, mem, currency, effectiveFrom, cpuBasis, roundedTo } = snapshot as Record<string, unknown>;
  if (typeof cpu !== 'string' || typeof gpu !== 'string' || typeof mem !== 'string') return null;
  const rateCurrency = typeof currency === 'string' ? currency : receipt.currency;
  const rate = (value: string) => rateJson(new Prisma.Decimal(value), rateCurrency);
  return {
    rateId: receipt.rateId,
    cpu: rate(cpu),
    gpu: rate(gpu),
    mem: rate(mem),
    currency: rateCurrency,
    effectiveFrom: typeof effectiveFrom === 'string' ? effectiveFrom : null,
    lockedAt: receipt.ratesLockedAt.toISOString(),
    cpuBasis: typeof cpuBasis === 'string' ? cpuBasis : null,
    ...(typeof roundedTo === 'string' ? { roundedTo } : {}),
  };
}

/** A researcher's receipt as JSON: its facts, the held payment that concerns it, and its page. */
function receiptJson(receipt: ReceiptFacts, heldPayment: HeldPaymentNote | null) {
  return {
    ...receiptFactsJson(receipt),
    heldPayment: heldPaymentJsonOf(heldPayment),
    url: `/me/receipts/${receipt.id}`,
  };
}

type ReceiptWithItems = Pick<
  ShownReceipt,
  'receipt' | 'items' | 'hours' | 'itemPager' | 'paidWith' | 'refundedPayments'
>;

/**
 * A receipt with one page of its items (as the page pages them), as the researcher's and the admin's
 * JSON both write it: its facts, how it was paid and what went back, hours with the six decimals they
 * were priced at and costs at the currency's minor unit.
 */
export function receiptWithItemsJson(shown: ReceiptWithItems) {
  const { receipt, items, hours, itemPager, paidWith, refundedPayments } = shown;
  // What the online payment that paid it received, as the page's "Received" line says: an admin may
  // have accepted a short or over payment, so the total alone would tell a client it was paid in full.
  const received =
    paidWith === null
      ? null
      : {
          amount: paidWith.received ? moneyJson(paidWith.received.amount, paidWith.received.currency) : null,
          currency: paidWith.received?.currency ?? null,
          paymentId: paidWith.id,
          // What it received pays the receipt because an admin accepted it after a review, as the page says.
          isAccepted: paidWith.isAccepted && receipt.status === 'paid',
        };
  return {
    receipt: {
      ...receiptFactsJson(receipt),
      rates: receiptRatesJson(receipt),
      paymentMethod: receipt.paymentMethod,
      txRef: receipt.txRef,
      voidReason: receipt.voidReason,
      received,
      refunds: refundedPayments.map(refundJson),
      // The period's start: when its first job ended (null for a receipt made before it was kept).
      firstJobEndedAt: receipt.windowStart?.toISOString() ?? null,
      // Its end: the jobs it bills ended before this instant, the end of `before` in the APP_TZ it was
      // made under, which `timeZone` no longer names once APP_TZ has changed (null before it was kept).
      jobsEndedBefore: receipt.windowEnd?.toISOString() ?? null,
      // The hours of every item: what the total bills of each resource.
      hours: { cpu: hoursJson(hours.cpuHours), gpu: hoursJson(hours.gpuHours), mem: hoursJson(hours.memGbHours) },
    },
    page: itemPager.page,
    pageCount: itemPager.pageCount,
    count: itemPager.count,
    items: items.map((item) => ({
      jobId: item.displayJobId,
      cluster: item.cluster,
      name: item.jobName,
      endAt: item.jobEndAt?.toISOString() ?? null,
      cpuHours: hoursJson(item.cpuHours),
      gpuHours: hoursJson(item.gpuHours),
      memGbHours: hoursJson(item.memGbHours),
      cost: moneyJson(item.cost, receipt.currency),
    })),
  };
}

/**
 * "0.50 THB by bank transfer, ref KBANK-77, on 2026-01-10": the money an admin recorded paying a receipt by
 * hand. Topped up ("0.80 THB, 0.50 THB of it the money of receipt #5 (voided) and 0.30 THB new money by bank
 * transfer, ref BT-99, on …"), both parts: only the new money came in by that method and reference.
 */
export function describePaidByHand(paid: PaidByHand, fmt: ViewFormatters): string {
  const ref = paid.txRef ? `, ref ${paid.txRef}` : '';
  const money = (amount: Prisma.Decimal) => `${fmt.money(amount, paid.currency)} ${paid.currency}`;
  const parts =
    paid.paidWithReceipt && paid.newMoney
      ? `, ${money(paid.paidWithReceipt.money)} of it the money of receipt #${paid.paidWithReceipt.receiptId} (voided) and ${money(paid.newMoney)} new money`
      : '';
  return `${money(paid.amount)}${parts} by ${fmt.paymentMethod(paid.method)}${ref}, on ${paid.paidOn}`;
}

/**
 * Where the money recorded paying a receipt by hand is, when part or all of it is a voided receipt's money
 * that came in online (PaidByHand.onlinePayment): that payment, held for review, settled or refunded, is
 * named, and only the new money beside it is said to be outside the app ("the app holds none of this
 * money" was said of it all). `yourself` ends that sentence as the receipt's page does. Null when none of
 * it came in online: the callers' own "the app holds none of this money" is then true.
 */
export function describeHandMoneyOnline(paid: PaidByHand, fmt: ViewFormatters, yourself = false): string | null {
  const online = paid.onlinePayment;
  if (!online || !paid.paidWithReceipt) return null;
  const money = (amount: Prisma.Decimal) => `${fmt.money(amount, paid.currency)} ${paid.currency}`;
  const sourceId = paid.paidWithReceipt.receiptId;
  const part = paid.newMoney
    ? `The ${money(paid.paidWithReceipt.money)} of receipt #${sourceId}`
    : `Its money, the ${money(paid.paidWithReceipt.money)} of receipt #${sourceId},`;
  const by =
    online.receiptId === sourceId
      ? `by its online payment #${online.paymentId}`
      : `by online payment #${online.paymentId} of receipt #${online.receiptId}`;
  // Refunded in part, the provider holds only the rest: "holds that money" said it held all of it.
  const refunded = online.refunded;
  const holds = refunded
    ? `; ${fmt.money(refunded.amount, refunded.currency)} ${refunded.currency} of it has been refunded, and the provider holds the rest, so refund it there or apply it elsewhere`
    : ': the provider holds that money, so refund it there or apply it elsewhere';
  // One state, said after "which" in the one-payment sentence and after "Payment #N" in the chain's.
  const resolved = `resolved as ${online.reviewOutcome ?? 'paid'}${online.reviewedBy ? ` by ${online.reviewedBy}` : ''}${holds}.`;
  const state =
    online.status === 'held'
      ? `is held for review${holds}, then resolve payment #${online.paymentId} on the payments page.`
      : online.status === 'refunded'
        ? 'has been refunded: that money went back to the payer, so none of it is left to return.'
        : null;
  const newMoney = paid.newMoney
    ? ` The app holds none of the ${money(paid.newMoney)} new money: return it to the payer or apply it elsewhere${yourself ? ' yourself' : ''}.`
    : '';
  // A voided receipt itself topped up: its money is that payment's and the new money paid by hand along
  // the way; said as one payment's, it read as if all of it came in online.
  if (online.handMoneyAlong && online.receiptId !== sourceId) {
    return (
      `The ${money(paid.paidWithReceipt.money)} of receipt #${sourceId} came in by online payment #${online.paymentId} ` +
      `of receipt #${online.receiptId} and, along the way, ${money(online.handMoneyAlong)} new money paid by hand, ` +
      `which the app holds none of. Payment #${online.paymentId} ${state ?? `was ${resolved}`}${newMoney}`
    );
  }
  const where = state ? `, which ${state}` : `, ${resolved}`;
  return `${part} came in ${by}${where}${newMoney}`;
}

/**
 * The receipts voided after they were paid by hand that billed some of a pending receipt's jobs, as a
 * receipt's page and its printable receipt name them (views/receipts/voided-paid-by-hand.ejs).
 */
export function voidedPaidByHandView(
  voided: ShownReceipt['sameJobsVoidedPaidByHand'],
  fmt: ViewFormatters,
  billed: { total: Prisma.Decimal; currency: string },
  /** What is left of each one's money as a mark paid judges it, when known; else what it was paid. */
  moneyOf?: ReadonlyMap<number, { amount: Prisma.Decimal; currency: string } | null>,
) {
  return voided.map((receipt) => {
    const money = moneyOf?.has(receipt.receiptId) ? (moneyOf.get(receipt.receiptId) ?? null) : receipt.paidByHand;
    return {
      receiptId: receipt.receiptId,
      paidByHandText: describePaidByHand(receipt.paidByHand, fmt),
      moneyNote: describeMoneyNotTotal(money, billed, fmt, receipt.receiptId),
      // The researcher's words for the same: what that money covers, and what the billing office will do.
      payerNote: describeMoneyNotTotalToPayer(money, billed, fmt),
      // Short of the total, it still pays the receipt with new money for the rest: the form offers it.
      canTopUp: isShortOfTotal(money, billed),
    };
  });
}

/**
 * The money of a voided receipt is short of this receipt's total, in its currency: it pays the receipt
 * with new money received for the rest (New money received now), as one mark paid.
 */
export function isShortOfTotal(
  money: { amount: Prisma.Decimal; currency: string } | null,
  billed: { total: Prisma.Decimal; currency: string },
): boolean {
  return money !== null && money.currency === billed.currency && money.amount.lessThan(billed.total);
}

/**
 * Why the money of a voided receipt (`sourceId`) cannot pay this one alone (its jobs billed again at
 * another tier or rate cost another total), and what to do instead; null when it is this receipt's
 * total. A mark paid with it alone is refused then (VoidedMoneyNotTotalError): short of the total, it
 * pays with new money for the rest (one mark paid, each part recorded, so paid.csv counts each once).
 */
export function describeMoneyNotTotal(
  money: { amount: Prisma.Decimal; currency: string } | null,
  billed: { total: Prisma.Decimal; currency: string },
  fmt: ViewFormatters,
  sourceId: number,
): string | null {
  // Money whose amount the provider did not report is not judged by a mark paid either.
  if (money === null) return null;
  const total = `${fmt.money(billed.total, billed.currency)} ${billed.currency}`;
  if (money.currency !== billed.currency) {
    return `Its money is in ${money.currency}, not in ${billed.currency} as this receipt's total, ${total}, so it cannot pay this receipt.`;
  }
  if (money.amount.equals(billed.total)) return null;
  const difference = `${fmt.money(money.amount.minus(billed.total).abs(), billed.currency)} ${billed.currency}`;
  return money.amount.lessThan(billed.total)
    ? `Its money is ${difference} short of this receipt's total, ${total}, so it cannot pay it alone: once the remaining ${difference} has arrived, mark this receipt paid with it (Paid with the money of: receipt #${sourceId}) and ${difference} as New money received now, with the reference of that payment.`
    : `Its money is ${difference} more than this receipt's total, ${total}, so it cannot pay it as it is: return the excess ${difference} to the payer (or apply it elsewhere), then mark this receipt paid as new money with ${total}, its reference naming that payment.`;
}

/**
 * describeMoneyNotTotal for the researcher: the money of a voided receipt that is not this receipt's
 * total cannot pay it alone, so "it may pay for this receipt" was untrue; it says what that money covers
 * and what the billing office will do with it, as the admin is advised (null when it is the total).
 */
export function describeMoneyNotTotalToPayer(
  money: { amount: Prisma.Decimal; currency: string } | null,
  billed: { total: Prisma.Decimal; currency: string },
  fmt: ViewFormatters,
): string | null {
  if (money === null) return null;
  const total = `${fmt.money(billed.total, billed.currency)} ${billed.currency}`;
  if (money.currency !== billed.currency) {
    return `Its money is in ${money.currency}, not in ${billed.currency} as this receipt's total, ${total}, so it cannot pay this receipt as it is.`;
  }
  if (money.amount.equals(billed.total)) return null;
  const amount = `${fmt.money(money.amount, money.currency)} ${money.currency}`;
  const difference = `${fmt.money(money.amount.minus(billed.total).abs(), billed.currency)} ${billed.currency}`;
  return money.amount.lessThan(billed.total)
    ? `Its money covers ${amount} of this receipt's total, ${total}, so it cannot pay it alone: unless that money was returned to you, your billing office will ask you for the remaining ${difference}, not for the whole total.`
    : `Its money, ${amount}, is ${difference} more than this receipt's total, ${total}: unless that money was returned to you, your billing office will return the excess ${difference} to you (or apply it elsewhere) and count the rest toward this receipt.`;
}

/** The receipts voided after they were paid by hand that billed some of a pending receipt's jobs, as JSON. */
export function voidedPaidByHandJson(voided: ShownReceipt['sameJobsVoidedPaidByHand']) {
  return voided.map((receipt) => ({
    receiptId: receipt.receiptId,
    voidedAt: receipt.voidedAt.toISOString(),
    paidByHand: paidByHandRecord(receipt.paidByHand),
  }));
}

/** The receipts that bill a void receipt's jobs now, as JSON, with their addresses under `base`. */
export function billedAgainJson(
  billedAgainOn: ShownReceipt['billedAgainOn'],
  base: '/me/receipts' | '/admin/receipts',
) {
  return billedAgainOn.map((again) => ({
    receiptId: again.id,
    status: again.status,
    total: moneyJson(again.total, again.currency),
    currency: again.currency,
    url: `${base}/${again.id}`,
  }));
}

/**
 * The voided receipt whose money paid this one (an admin marked it paid "with the money of" it), as
 * JSON with its address under `base`, the part of the total that money paid (`money`) and the new
 * money received beside it for the rest (`newMoney`, null when that money paid it all); null for a
 * receipt paid with new money alone, or not paid.
 */
export function paidWithReceiptJson(
  receipt: {
    paidWithReceiptId: number | null;
    newMoneyReceived: Prisma.Decimal | null;
    total: Prisma.Decimal;
    currency: string;
  },
  base: '/me/receipts' | '/admin/receipts',
) {
  const id = receipt.paidWithReceiptId;
  if (id === null) return null;
  const newMoney = receipt.newMoneyReceived;
  return {
    id,
    url: `${base}/${id}`,
    money: moneyJson(receipt.total.minus(newMoney ?? 0), receipt.currency),
    newMoney: newMoney === null ? null : moneyJson(newMoney, receipt.currency),
  };
}

/** A researcher's receipt as JSON: with the held payment that concerns it, and its own addresses. */
function ownReceiptJson(shown: ShownReceipt) {
  const { receipt, ...itemsPage } = receiptWithItemsJson(shown);
  return {
    receipt: {
      ...receipt,
      heldPayment: heldPaymentJsonOf(shown.heldPayment),
      billedAgainOn: billedAgainJson(shown.billedAgainOn, '/me/receipts'),
      sameJobsVoidedPaidByHand: voidedPaidByHandJson(shown.sameJobsVoidedPaidByHand),
      paidWithReceipt: paidWithReceiptJson(shown.receipt, '/me/receipts'),
      url: `/me/receipts/${receipt.id}`,
      itemsCsvUrl: `/me/receipts/${receipt.id}/items.csv`,
    },
    ...itemsPage,
  };
}

/** The printable page of a researcher's own receipt, /me/receipts/:id. */
export function createOwnReceiptPage(receipts: ReceiptsService): ShowOwnReceipt {
  return async (res, { username, id, page, error }) => {
    const { sameJobsVoidedPaidByHand, moneyOfSources, ...shown } = await receipts.getForUser(username, id, page);
    const fmt = res.app.locals.fmt as ViewFormatters;
    res.render('receipts/show', {
      title: `Receipt #${id}`,
      ...shown,
      sameJobsVoidedPaidByHand: voidedPaidByHandView(sameJobsVoidedPaidByHand, fmt, shown.receipt, moneyOfSources),
      isAdminView: false,
      link: (changes: Record<string, unknown>) => linkTo(`/me/receipts/${id}`, {}, changes),
      itemsCsvLink: `/me/receipts/${id}/items.csv`,
      printLink: `/me/receipts/${id}/print`,
      error,
    });
  };
}

/**
 * What a client asking a printable page for JSON gets (406), once the receipt is known to be there
 * for it: the receipt's JSON (`receiptLink`) holds the same receipt, and the printable page has no
 * JSON of its own. It got the HTML.
 */
export function printableHasNoJson(id: number, receiptLink: string): NotAcceptableError {
  return new NotAcceptableError(`The printable page of receipt #${id} is HTML only. Its JSON is at ${receiptLink}.`, {
    publicFields: { jsonUrl: receiptLink },
  });
}

/**
 * The printable full receipt: every item on one page, which opens the print dialog. A receipt's
 * own page lists 500 items at a time, so printing it printed one page of jobs under the full
 * total. The rows are rendered and sent a batch at a time (see ReceiptsService.getPrintable).
 */
export async function sendPrintableReceipt(
  res: express.Response,
  printable: Awaited<ReturnType<ReceiptsService['getPrintable']>>,
  receiptLink: string,
  isAdminView: boolean,
): Promise<void> {
  const {
    receipt,
    hours,
    paidWith,
    receivedNet,
    heldPayment,
    paidOnline,
    refundedPayments,
    sameJobsVoidedPaidByHand,
    moneyOfSources,
    itemBatches,
  } = printable;
  const fmt = res.app.locals.fmt as ViewFormatters;
  async function* rows() {
    for await (const items of itemBatches) yield await renderView(res, 'receipts/item-rows', { receipt, items });
  }
  await sendStreamedPage(
    res,
    'receipts/print',
    {
      title: `Receipt #${receipt.id} (printable, all jobs)`,
      receipt,
      hours,
      paidWith,
      receivedNet,
      heldPayment,
      paidOnline,
      refundedPayments,
      // In the words of the receipt's page, the admin's or the researcher's, with links to their own pages,
      // and with the money it judges: what is left of it (the whole paid, before, said it may pay a receipt
      // the page said it could not pay alone).
      sameJobsVoidedPaidByHand: voidedPaidByHandView(sameJobsVoidedPaidByHand, fmt, receipt, moneyOfSources),
      isAdminView,
      receiptLink,
    },
    rows(),
  );
}

// "Nothing to bill" (422), a date refused (400), a race lost to another receipt (409).
const RECEIPT_REFUSALS = [400, 409, 422];

/** Where a receipt that cannot be shown (not found, a page past the last) sends the researcher. */
export const MY_RECEIPTS: BackLink = { href: '/me/receipts', text: 'Open My receipts' };

/**
 * Where a refused download of a receipt that is there (its items CSV with an option edited by hand,
 * or no export slot free) sends the browser: the receipt whose link it was, not the whole list.
 */
export function backToReceipt(receiptUrl: string, id: number): BackLink {
  return { href: receiptUrl, text: `Back to receipt #${id}` };
}

/**
 * The page of a receipt's jobs its address asks for. Refused (`?page=abc`, `?page=0`, an address
 * edited by hand), it leads to the receipt's page 1 as a page past the last does, once the receipt
 * is known to be there (`assertFound`): it led to the list of receipts, away from the receipt the
 * address named. The refusal stays the page's (400), there or not: another user's receipt, or one
 * that is not there, keeps the list as its way back.
 */
export async function receiptPageAsked(
  req: express.Request,
  res: express.Response,
  receiptUrl: string,
  assertFound: () => Promise<void>,
): Promise<number> {
  return (await pagesAsked(req, res, receiptUrl, assertFound, ZPageQuery)).page;
}

/**
 * The pages of its tables a page's address asks for (`schema`, its page fields), refused as a receipt's
 * `?page=` is (receiptPageAsked): with a way to `pageUrl` once what it shows is known to be there.
 */
export async function pagesAsked<T extends z.ZodType>(
  req: express.Request,
  res: express.Response,
  pageUrl: string,
  assertFound: () => Promise<void>,
  schema: T,
): Promise<z.infer<T>> {
  try {
    return parseInput(schema, req.query);
  } catch (error) {
    const isFound = await assertFound().then(
      () => true,
      (notFound: unknown) => {
        if (notFound instanceof AppError && notFound.status === 404) return false;
        throw notFound;
      },
    );
    if (isFound) offerWayBack(res, { href: pageUrl, text: 'Go to page 1' });
    throw error;
  }
}

/**
 * Checks a `page` in a printable receipt's address as the receipt's page checks it: malformed is a
 * 400, a page past the last a 404, each with a way to the receipt's page 1. The printable receipt
 * has no pages of its own: it lists every job, so every page the receipt has is in it, and a page it
 * has is otherwise ignored. Ignored outright, `/print?page=2` of a one-page receipt printed where the
 * receipt's page said there is no page 2, and `?page=abc` printed too.
 */
export async function checkPrintPageAsked(
  req: express.Request,
  res: express.Response,
  receiptUrl: string,
  receipt: { assertFound: () => Promise<void>; checkPage: (page: number) => Promise<void> },
): Promise<void> {
  const page = await receiptPageAsked(req, res, receiptUrl, receipt.assertFound);
  if (page === 1) return;
  await receipt.assertFound();
  offerWayBack(res, { href: receiptUrl, text: 'Go to page 1' });
  await receipt.checkPage(page);
}

/** A researcher's receipts: create one, list them, open one (printable). */
export function receiptsRoutes(deps: {
  receipts: ReceiptsService;
  csvExports: CsvExports;
  guards: Guards;
  showMyUsage: ShowMyUsage;
  showOwnReceipt: ShowOwnReceipt;
}) {
  const { receipts, csvExports, guards, showMyUsage, showOwnReceipt } = deps;
  const router = express.Router();

  router.post('/me/receipt', guards.requireUser, async (req, res) => {
    let before: string;
    let receipt: Awaited<ReturnType<typeof receipts.createForUser>>;
    try {
      const input = parseInput(ZCreateOwnReceipt, req.body);
      before = input.before;
      receipt = await receipts.createForUser(sessionUserOf(req), before, auditContextOf(req), input.based_on);
    } catch (error) {
      // Back to /me, where the form was, with the reason beside it and the date as typed, as the
      // admin forms come back to their page; JSON clients get {error, code}.
      if (!isRefusedForm(req, error, RECEIPT_REFUSALS)) throw error;
      res.status(error.status);
      await showMyUsage(req, res, {
        // The window the form was sent from (its action's query), so the page behind the reason is the one left.
        query: req.query,
        refusedReceipt: {
          error: `No receipt created. ${readableMessageOf(error)}`,
          before: typedIn(req.body, 'before') ?? '',
          // Lost to another receipt (a double submit, or two tabs): that receipt is on the list.
          link:
            error instanceof BilledMeanwhileError
              ? { href: '/me/receipts', text: 'Open My receipts' }
              : error instanceof NothingToBillError && error.billedOn !== null
                ? { href: `/me/receipts/${error.billedOn}`, text: `Open receipt #${error.billedOn}` }
                : undefined,
        },
      });
      return;
    }
    const url = `/me/receipts/${receipt.id}`;
    const fmt = req.app.locals.fmt as ViewFormatters;
    const money = `${fmt.money(receipt.total, receipt.currency)} ${receipt.currency}`;
    answerCreated(req, res, {
      // Money as every JSON answer writes it: text at the currency's scale ("5.20"), beside its currency.
      json: {
        receipt: {
          id: receipt.id,
          status: receipt.status,
          before,
          total: moneyJson(receipt.total, receipt.currency),
          currency: receipt.currency,
          jobCount: receipt.itemCount,
          // Jobs of the window left out because they have not finished (shown on /me at an estimate).
          unfinishedJobCount: receipt.unfinishedJobCount,
          url,
        },
      },
      message: `Receipt #${receipt.id} created: ${counted(receipt.itemCount, 'job')}, total ${money}${
        receipt.status === 'paid' ? ', settled as no charge' : ''
      }.${receipt.unfinishedJobCount > 0 ? ` ${unfinishedJobsSentence(receipt.unfinishedJobCount, before)}` : ''}`,
      // A Location without a fragment would keep the form action's #create-receipt (RFC 7231 7.1.2),
      // an id the receipt page does not have: name the receipt itself, so the page opens at its top.
      location: `${url}#receipt`,
      url,
    });
  });

  router.get('/me/receipts', guards.requireUser, async (req, res) => {
    offerWayBack(res, MY_RECEIPTS);
    const query = parseInput(ZReceiptListQuery, req.query);
    // A HEAD (a link checker, `curl -I`): its GET's status and type, the receipts counted for a later page
    // (or the receipt an Older or Newer link names looked up).
    if (req.method === 'HEAD') {
      await receipts.checkOwnListPage(sessionUserOf(req).username, query);
      answerHeadWithoutWork(res, prefersJson(req));
      return;
    }
    const list = await receipts.listForUser(sessionUserOf(req).username, query);
    const links = olderNewerLinks('/me/receipts', {}, list);
    if (prefersJson(req)) {
      res.json({
        timeZone: (req.app.locals.fmt as ViewFormatters).timeZone,
        page: list.page,
        pageCount: list.pageCount,
        count: list.count,
        firstRow: list.firstRow,
        lastRow: list.lastRow,
        ...links,
        receipts: list.receipts.map((receipt) => ({
          ...receiptJson(receipt, receipt.heldPayment),
          refunds: receipt.refunds.map(refundJson),
          // As the row's marker says it, and as the receipt's own JSON has it.
          sameJobsVoidedPaidByHand: voidedPaidByHandJson(receipt.sameJobsVoidedPaidByHand),
        })),
      });
      return;
    }
    res.render('receipts/list', { title: 'My receipts', list, pager: { ...list, ...links } });
  });

  router.get('/me/receipts/:id', guards.requireUser, async (req, res) => {
    offerWayBack(res, MY_RECEIPTS);
    const id = parseInput(ZReceiptId, req.params.id, 'receipt id');
    const username = sessionUserOf(req).username;
    const page = await receiptPageAsked(req, res, `/me/receipts/${id}`, () => receipts.assertFound(id, username));
    // A HEAD (a link checker, `curl -I`): the status and type of its GET (another user's receipt, or a
    // page past the last, 404) from the receipt's row alone, without its items, payments or refunds;
    // refused, the error page its GET shows, with its way back.
    const isHeadAnswered = await answeredHeadWithoutWork(req, res, () => receipts.checkReceiptPage(id, page, username));
    if (isHeadAnswered) return;
    if (page > 1) {
      // A page past the last (an old link) leads to the receipt's page 1, once the receipt is known to be
      // there: another user's receipt keeps My receipts as its way back.
      await receipts.assertFound(id, username);
      offerWayBack(res, { href: `/me/receipts/${id}`, text: 'Go to page 1' });
    }
    if (prefersJson(req)) {
      res.json({
        timeZone: (req.app.locals.fmt as ViewFormatters).timeZone,
        ...ownReceiptJson(await receipts.getForUser(username, id, page)),
      });
      return;
    }
    await showOwnReceipt(res, { username, id, page });
  });

  router.get('/me/receipts/:id/print', guards.requireUser, async (req, res) => {
    offerWayBack(res, MY_RECEIPTS);
    const id = parseInput(ZReceiptId, req.params.id, 'receipt id');
    const username = sessionUserOf(req).username;
    await checkPrintPageAsked(req, res, `/me/receipts/${id}`, {
      assertFound: () => receipts.assertFound(id, username),
      checkPage: (page) => receipts.checkReceiptPage(id, page, username),
    });
    if (prefersJson(req)) {
      await receipts.assertFound(id, username);
      throw printableHasNoJson(id, `/me/receipts/${id}`);
    }
    // A HEAD: the page's type once the receipt is known to be there, without a batch of its items.
    if (req.method === 'HEAD') {
      await receipts.assertFound(id, username);
      answerHeadWithoutWork(res, false);
      return;
    }
    const printable = await receipts.getPrintable(id, username);
    await sendPrintableReceipt(res, printable, `/me/receipts/${id}`, false);
  });

  getDownload(
    router,
    '/me/receipts/:id/items.csv',
    (address) => receiptPageOf('/me/receipts', address.params.id),
    guards.requireUser,
    async (req, res) => {
      offerWayBack(res, MY_RECEIPTS);
      const id = parseInput(ZReceiptId, req.params.id, 'receipt id');
      const { username } = sessionUserOf(req);
      // Found first: another user's receipt stays a 404 whatever the query, and a refusal of the
      // export itself can then lead back to the receipt's page, which is there.
      await receipts.assertFound(id, username);
      offerWayBack(res, backToReceipt(`/me/receipts/${id}`, id));
      parseInput(ZReceiptItemsCsvQuery, req.query);
      await csvExports.send(req, res, {
        kind: 'receipt_items',
        username,
        filename: `receipt-${id}-items.csv`,
        columns: RECEIPT_ITEMS_CSV_COLUMNS,
        async open() {
          return (await receipts.streamItemsCsv(id, username)).chunks;
        },
      });
    },
  );

  return router;
}
