import { Prisma } from '@prisma/client';
import type { PaymentsConfig } from '../../config/config.js';
import { moneyJson } from '../../http/json-money.js';
import { formatDecimalText } from '../../http/view-format.js';
import { minorUnitDigits } from '../pricing/pricing.js';
import type { PaymentEvent } from './payment-provider.js';
import type * as paymentsRepository from './payments.repository.js';
import { stripeChargeDigits } from './stripe.provider.js';

/**
 * Decimal places receipts (each item, so their total too) and cost estimates are priced to in
 * `currency`: its minor unit, or fewer where the configured provider charges it in a coarser
 * step. Stripe takes BHD, JOD, KWD, OMR and TND only with a last digit of 0, so with Stripe a KWD
 * job costs 1.240, never 1.237: every receipt can be paid online at exactly its total
 * (docs/payments.md, "Amounts at Stripe").
 */
export function pricedDigitsOf(currency: string, payments: Pick<PaymentsConfig, 'provider'>): number {
  const digits = minorUnitDigits(currency);
  const charged = payments.provider === 'stripe' ? stripeChargeDigits(currency) : undefined;
  return charged === undefined ? digits : Math.min(digits, charged);
}

/**
 * The step costs in `currency` are priced to ("0.01" for KWD with Stripe) when it is coarser than
 * the currency's minor unit, else undefined: what the price list and a receipt say costs are
 * rounded to.
 */
export function pricedStepOf(currency: string, payments: Pick<PaymentsConfig, 'provider'>): string | undefined {
  const digits = pricedDigitsOf(currency, payments);
  return digits < minorUnitDigits(currency) ? new Prisma.Decimal(10).pow(-digits).toFixed(digits) : undefined;
}

/** Minor units back to a decimal amount, for pages. */
export function fromMinorUnits(amountMinor: bigint, currency: string): Prisma.Decimal {
  return new Prisma.Decimal(amountMinor.toString()).div(new Prisma.Decimal(10).pow(minorUnitDigits(currency)));
}

/** Whether a receipt asks for money: one of 0.00 has nothing to pay (docs/payments.md). */
export function hasAmountDue(receipt: { total: Prisma.Decimal }): boolean {
  return receipt.total.greaterThan(0);
}

/** A payment's due and received money as pages show them. */
export interface PaymentMoney {
  /** The amount due (the receipt's total when the payment started). */
  amount: Prisma.Decimal;
  currency: string;
  /** What the provider reported receiving, or null when it reported no success or did not say. */
  received: { amount: Prisma.Decimal; currency: string } | null;
  /** The received money is known and is not the amount due (another amount or currency). */
  isReceivedDifferent: boolean;
  /**
   * What of it went back to the payer: the provider's refunded total less its refunds that failed
   * since (returnedMinorOf), or null when nothing was refunded.
   */
  refunded: { amount: Prisma.Decimal; currency: string } | null;
  /** Its refunds that failed at the provider (money still with the centre), or null when none did. */
  refundFailed: { amount: Prisma.Decimal; currency: string } | null;
  /**
   * What of `refunded` the payer's bank took back by a dispute the centre lost (a chargeback, not a
   * refund: the pages say which), or null when no dispute was lost.
   */
  takenBackByDispute: { amount: Prisma.Decimal; currency: string } | null;
}

/**
 * What of a payment's refunds went back to the payer, in minor units: the refunded total the
 * provider reported less the refunds it reported failed since (docs/payments.md, "A refund that
 * failed"), never below nothing, plus what a lost dispute took back (which that total counts too,
 * and no failed refund undoes); null when no refund was reported, failed or not.
 */
export function returnedMinorOf(
  refundedMinor: bigint | null | undefined,
  failedRefundMinor: bigint | null | undefined,
  lostDisputeMinor: bigint = 0n,
  /**
   * Of `failedRefundMinor`, the failures told before any report of their refund, which the refunded
   * total does not count yet (payment_failed_refunds.is_in_reported_total false): nothing to take out of it.
   */
  uncountedFailedMinor: bigint | null | undefined = 0n,
): bigint | null {
  const failed = failedRefundMinor ?? 0n;
  if ((refundedMinor === null || refundedMinor === undefined) && failed === 0n) return null;
  const returned = (refundedMinor ?? 0n) - lostDisputeMinor - (failed - (uncountedFailedMinor ?? 0n));
  // A failure told before the refund it undoes (or its total) arrived: nothing went back yet.
  return (returned > 0n ? returned : 0n) + lostDisputeMinor;
}

/** What a payment's lost dispute took back (counted in its refunded total), or nothing. */
export function lostDisputeMinorOf(payment: { disputeStatus?: string | null; disputedMinor?: bigint | null }): bigint {
  return payment.disputeStatus === 'lost' && payment.disputedMinor ? payment.disputedMinor : 0n;
}

/** A payment's money as the pages show it: due, received, refunded, failed to refund, taken back by a dispute. */
export function paymentMoneyOf(payment: {
  amountMinor: bigint;
  currency: string;
  receivedMinor: bigint | null;
  receivedCurrency: string | null;
  refundedMinor?: bigint | null;
  refundedCurrency?: string | null;
  /** The sum of its refunds the provider reported failed, in the currency it received. */
  failedRefundMinor?: bigint | null;
  /** Of those, the ones its refunded total does not count yet (told before any report of them). */
  uncountedFailedRefundMinor?: bigint | null;
  disputeStatus?: string | null;
  disputedMinor?: bigint | null;
}): PaymentMoney {
  const received =
    payment.receivedMinor === null || payment.receivedCurrency === null
      ? null
      : { amount: fromMinorUnits(payment.receivedMinor, payment.receivedCurrency), currency: payment.receivedCurrency };
  return {
    amount: fromMinorUnits(payment.amountMinor, payment.currency),
    currency: payment.currency,
    received,
    isReceivedDifferent:
      received !== null &&
      (payment.receivedMinor !== payment.amountMinor || payment.receivedCurrency !== payment.currency),
    ...refundedMoneyOf(payment, received?.currency ?? payment.currency),
  };
}

/**
 * A payment the billing team resolved as refunded (after a void, or paid short or too late): all it
 * received went back to the payer then, the admin's record says, and any refund the provider reported
 * failed is no longer money with the centre. Null for any other payment, and for one the provider had
 * already refunded in full (resolved by the provider itself, or reopened by a dispute and resolved
 * again): that refund stays the provider's, with the provider's date.
 */
export function billingTeamRefundOf(
  payment: Parameters<typeof paymentMoneyOf>[0] & {
    status: string;
    reviewOutcome: string | null;
    reviewedBy: string | null;
    reviewedAt: Date | null;
    refundedAt?: Date | null;
  },
): BillingTeamRefund | null {
  if (payment.status !== 'resolved' || payment.reviewOutcome !== 'refunded') return null;
  if ((payment.reviewedBy ?? '').startsWith('provider:')) return null;
  const money = paymentMoneyOf(payment);
  const received = money.received ?? { amount: money.amount, currency: money.currency };
  const byProvider = money.refunded;
  if (byProvider && byProvider.currency === received.currency && byProvider.amount.gte(received.amount)) return null;
  // Part of it the provider had refunded already (a partial refund): the team returned only the rest,
  // and saying it refunded all of it sent finance looking for money the team never sent.
  const isPartByProvider =
    byProvider !== null && byProvider.currency === received.currency && byProvider.amount.greaterThan(0);
  return {
    ...received,
    at: payment.reviewedAt,
    byProvider: isPartByProvider ? { ...byProvider, at: payment.refundedAt ?? null } : null,
    byBillingTeam: isPartByProvider
      ? { amount: received.amount.minus(byProvider.amount), currency: received.currency }
      : { ...received },
  };
}

/**
 * Of the provider's part of a billing team's refund, what the payer's bank took back by a dispute the
 * centre lost (no refund: the pages say so) with when, and what the provider refunded apart from it;
 * null when no lost dispute is in it.
 */
export function billingTeamTakenBackOf(
  refund: BillingTeamRefund | null,
  money: Pick<PaymentMoney, 'takenBackByDispute'> | null,
  disputeClosedAt: Date | null,
): BillingTeamTakenBack | null {
  const byProvider = refund?.byProvider;
  const takenBack = money?.takenBackByDispute;
  if (!byProvider || !takenBack || takenBack.currency !== byProvider.currency) return null;
  return {
    ...takenBack,
    at: disputeClosedAt,
    refundedApart: { amount: byProvider.amount.minus(takenBack.amount), currency: byProvider.currency },
  };
}

/** What a lost dispute took back of a payment the billing team refunded the rest of (billingTeamTakenBackOf). */
export interface BillingTeamTakenBack {
  amount: Prisma.Decimal;
  currency: string;
  /** When the provider reported the dispute lost. */
  at: Date | null;
  /** What the provider refunded of the payment apart from it (zero when nothing). */
  refundedApart: { amount: Prisma.Decimal; currency: string };
}

/** A payment's money the billing team recorded as refunded: all it received, of which part may be the provider's. */
export interface BillingTeamRefund {
  /** All the payment received: it all went back to the payer. */
  amount: Prisma.Decimal;
  currency: string;
  /** When the billing team recorded it. */
  at: Date | null;
  /** What the provider had refunded before (a partial refund, net of refunds that failed), with when; null if nothing. */
  byProvider: { amount: Prisma.Decimal; currency: string; at: Date | null } | null;
  /** What the billing team returned: the rest. */
  byBillingTeam: { amount: Prisma.Decimal; currency: string };
}

/** What went back to the payer and what failed to, in the currency of the refunds (which is the received one). */
function refundedMoneyOf(
  payment: {
    refundedMinor?: bigint | null;
    refundedCurrency?: string | null;
    failedRefundMinor?: bigint | null;
    uncountedFailedRefundMinor?: bigint | null;
    disputeStatus?: string | null;
    disputedMinor?: bigint | null;
  },
  receivedCurrency: string,
): Pick<PaymentMoney, 'refunded' | 'refundFailed' | 'takenBackByDispute'> {
  const currency = payment.refundedCurrency ?? receivedCurrency;
  const lostMinor = lostDisputeMinorOf(payment);
  const returned = returnedMinorOf(
    payment.refundedMinor,
    payment.failedRefundMinor,
    lostMinor,
    payment.uncountedFailedRefundMinor,
  );
  const failed = payment.failedRefundMinor ?? 0n;
  return {
    refunded: returned === null ? null : { amount: fromMinorUnits(returned, currency), currency },
    refundFailed: failed === 0n ? null : { amount: fromMinorUnits(failed, currency), currency },
    takenBackByDispute:
      returned === null || lostMinor === 0n ? null : { amount: fromMinorUnits(lostMinor, currency), currency },
  };
}

/** Money as describeMoney writes it ("1,234.50 THB", "500 JPY"), for matching the app's own reason words. */
const MONEY_TEXT = String.raw`\d[\d,]*(?:\.\d+)? [A-Z]{3}`;

function escapeForPattern(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The sentence a refund in part leaves in a held payment's reason, as a pattern of one whole sentence
 * of it (the reason's sentences are joined by "; "): what the provider has refunded so far and what is
 * still held (with the receipt its money paid, when it did), or, for a payment still paying its receipt,
 * what was refunded and that the receipt stays paid. At the start it takes the "; " after it, elsewhere
 * the one before, so the sentences around it are joined as they were.
 */
function refundSoFarSentence(receivedText: string, providerName: string): RegExp {
  const received = escapeForPattern(receivedText);
  const provider = escapeForPattern(providerName);
  const lost = `(?:, on top of the ${MONEY_TEXT} taken back by the lost dispute)?`;
  const withFailed =
    `${provider} reported ${MONEY_TEXT} of the ${received} received refunded(?: so far)?, of which ${MONEY_TEXT} ` +
    `had failed already, so (?:nothing|${MONEY_TEXT}) went back`;
  const heldApart =
    `(?:${MONEY_TEXT} of the ${received} received has been refunded at ${provider} so far${lost}|${withFailed})` +
    `; ${MONEY_TEXT} is still held` +
    `(?:; its money paid receipt #\\d+ \\(marked paid with the money of receipt #\\d+(?:, through [^)]*, voided since)?\\), ` +
    `which stays paid though ${MONEY_TEXT} of that money went back to the payer: collect ${MONEY_TEXT} for ` +
    `receipt #\\d+ or void it, then resolve this)?`;
  const stillPaying =
    `(?:${MONEY_TEXT} of the ${received} received was refunded at ${provider}${lost}|${withFailed})` +
    `; receipt #\\d+ stays paid until this is resolved`;
  const sentence = `(?:${heldApart}|${stillPaying})`;
  return new RegExp(`^${sentence}(?:; |$)|; ${sentence}(?=; |$)`);
}

/**
 * A held payment's reason without the refund-so-far sentence an earlier refund in part left in it
 * (refundSoFarSentence), for the new total's words to take their place: each provider total is the whole
 * refund so far, and adding each after the last, three refunds read as three totals. The sentence is
 * taken wherever it is, words something else wrote after it (a failed refund, a dispute, an earlier
 * decision) staying where they are: it used to be taken only at the very end, so after those words the
 * old total stayed and the new one was added too. Only the first is taken: the reason's own comes before
 * an earlier decision's reason quoted after it ("…, after it was held for review: …"), which is left as it was.
 */
export function withoutEarlierRefundSoFar(reason: string, receivedText: string, providerName: string): string {
  return reason.replace(refundSoFarSentence(receivedText, providerName), '');
}

/** A payment held for review as the researcher is told of it: its receipt and the money it stands for. */
export interface HeldPayment {
  id: number;
  receiptId: number;
  /** What the provider reported receiving, or the amount due when it did not say. */
  amount: Prisma.Decimal;
  currency: string;
  /**
   * What of it went back to the payer since (refunds, less those that failed; what a lost dispute took
   * back), or null when nothing did: held, a payment refunded in part stays held.
   */
  refunded: { amount: Prisma.Decimal; currency: string } | null;
}

/** A held payment as the researcher is told of it: the money received, or the amount due when none was reported. */
export function heldPaymentOf(
  payment: Parameters<typeof paymentMoneyOf>[0] & { id: number; receiptId: number },
): HeldPayment {
  const money = paymentMoneyOf(payment);
  const shown = money.received ?? { amount: money.amount, currency: money.currency };
  return {
    id: payment.id,
    receiptId: payment.receiptId,
    amount: shown.amount,
    currency: shown.currency,
    refunded: money.refunded?.amount.greaterThan(0) ? money.refunded : null,
  };
}

/** Money in a sentence, as the pages write it: "1,234.50 THB", to the currency's minor unit. */
export function describeMoney(amount: Prisma.Decimal, currency: string): string {
  const digits = minorUnitDigits(currency);
  const text = amount.toFixed(digits);
  return `${formatDecimalText(text, digits) ?? text} ${currency}`;
}

const ISO_CURRENCY = /^[A-Z]{3}$/;

/**
 * An amount in minor units as people read it ("7,376.90 THB", "1,200 JPY"), the way the pages
 * format money. A provider's event may lack the amount or carry a code that is no currency;
 * those are said as they came, since the text is written inside the webhook's transaction.
 */
export function describeMinorUnits(amountMinor: bigint | null, currency: string | null): string {
  if (amountMinor === null) return `an unknown amount of ${currency ?? 'an unknown currency'}`;
  if (currency === null || !ISO_CURRENCY.test(currency))
    return `${amountMinor} minor units of ${currency === null ? 'an unknown currency' : `"${currency}"`}`;
  return describeMoney(fromMinorUnits(amountMinor, currency), currency);
}

/**
 * What a success event says was received, when it says both amount and currency (a code that
 * is no currency is kept only in the reason, as it came).
 */
export function receivedOf(event: PaymentEvent): paymentsRepository.Received | null {
  if (event.amountMinor === null || event.amountMinor < 0n || event.currency === null) return null;
  if (!ISO_CURRENCY.test(event.currency)) return null;
  return { amountMinor: event.amountMinor, currency: event.currency };
}

/** What a refund or dispute of `payment` is measured against: what the provider said it received, else what was due. */
export function receivedBy(payment: paymentsRepository.PaymentRow): paymentsRepository.Received {
  return payment.receivedMinor !== null && payment.receivedCurrency !== null
    ? { amountMinor: payment.receivedMinor, currency: payment.receivedCurrency }
    : { amountMinor: payment.amountMinor, currency: payment.currency };
}

/** False for a payment that never took money (still open, failed or canceled): a refund or dispute of it changes nothing. */
export function hasTakenMoney(payment: paymentsRepository.PaymentRow): boolean {
  return payment.status !== 'pending' && payment.status !== 'failed' && payment.status !== 'canceled';
}

/** The held money as the pages write money: "8,542.37 THB". */
export function describeHeldAmount(held: HeldPayment): string {
  return describeMoney(held.amount, held.currency);
}

/**
 * Why a researcher cannot pay a receipt online while a payment for another of their receipts
 * that billed some of the same jobs (a receipt voided and billed again) is held for review.
 */
export function heldForSameJobsMessage(held: HeldPayment): string {
  return (
    `A payment of ${describeHeldAmount(held)} for receipt #${held.receiptId}, which billed some of these jobs, is ` +
    'being checked by the billing team, so this receipt cannot be paid online until they have decided what that ' +
    'money pays for; they will be in touch.'
  );
}

/** What a held payment's note says of it (HeldPaymentNote.state), for a script reading the JSON. */
export type HeldPaymentState = 'being_checked' | 'money_paid_receipt' | 'held_for_same_jobs';

/** A held payment that concerns a receipt, with what its researcher is told of it. */
export interface HeldPaymentNote extends HeldPayment {
  /** The sentence the receipt's page, My receipts, the printable receipt and the JSON answer all say. */
  message: string;
  /**
   * Which of them it is: the receipt's own payment being checked, its own payment whose money paid another
   * receipt since, or another receipt's payment for some of the same jobs.
   */
  state: HeldPaymentState;
  /** The receipt marked paid with this voided receipt's money since (its own held payment's), or null. */
  moneyPaidReceipt: MoneyPaidReceipt | null;
  /**
   * Of the held money, what still pays `moneyPaidReceipt` (what went back to the payer since is no longer
   * there); null when there is no such receipt.
   */
  stillApplied: { amount: Prisma.Decimal; currency: string } | null;
}

/** A receipt marked paid "with the money of" a voided receipt: its id, its status now, and whether it is the asker's. */
export interface MoneyPaidReceipt {
  id: number;
  status: string;
  /** Whether the researcher told of it owns it (their page links it); false for anyone else's. */
  isOwn: boolean;
}

/**
 * What went back to the payer of a held payment whose money paid another receipt, and what is left paying
 * it: the researcher was told only that the receipt "stays paid from it", though part or all of that money
 * was theirs again. Empty when nothing went back.
 */
function moneyBackWords(held: HeldPayment, paid: MoneyPaidReceipt, left: Prisma.Decimal): string {
  const back = held.refunded;
  if (back === null) return '';
  if (paid.status === 'void') return `; ${describeMoney(back.amount, back.currency)} of it went back to you since`;
  return left.isZero()
    ? `; all of it went back to you since, so none of it pays receipt #${paid.id} any more, though that receipt ` +
        'stays paid for now: the billing team will be in touch about it.'
    : `; ${describeMoney(back.amount, back.currency)} of it went back to you since, so ` +
        `${describeMoney(left, held.currency)} of it still pays receipt #${paid.id}, which stays paid for now: the ` +
        `billing team will be in touch about the ${describeMoney(back.amount, back.currency)} it is short.`;
}

/**
 * What the researcher is told of a payment held for review that concerns `receipt`: one of its own
 * (whatever its status), or one of another receipt that billed some of its jobs (a receipt voided and
 * billed again), which stops this one being paid online until the billing team has decided.
 * `moneyPaid` is the receipt a voided `receipt`'s money paid since (marked paid with it): its own held
 * payment is then no longer only "being checked", and the researcher is told where the money went,
 * and what of it went back to them since.
 */
export function heldPaymentNoteOf(
  held: HeldPayment,
  receipt: { id: number; status: string },
  moneyPaid: MoneyPaidReceipt | null = null,
): HeldPaymentNote {
  const own = held.receiptId === receipt.id;
  const paid = own ? moneyPaid : null;
  // What of the held money still pays `paid`: none once refunds (or a lost dispute) took it all back.
  const left = Prisma.Decimal.max(held.amount.minus(held.refunded?.amount ?? 0), 0);
  const back = paid === null ? '' : moneyBackWords(held, paid, left);
  const paidIntro =
    paid === null
      ? ''
      : `A payment of ${describeHeldAmount(held)} for this receipt is held for review by the billing team; its money ` +
        `paid receipt #${paid.id} since (marked paid with the money of this receipt)`;
  const message =
    paid !== null
      ? paid.status === 'void'
        ? `${paidIntro}, voided in turn${back}: they will be in touch. Please do not pay again for these jobs meanwhile.`
        : back === ''
          ? `${paidIntro}, which stays paid from it.`
          : `${paidIntro}${back}`
      : own
        ? `A payment of ${describeHeldAmount(held)} for this receipt is being checked by the billing team; they will ` +
          'be in touch. Please do not pay again for these jobs meanwhile' +
          `${receipt.status === 'pending' ? ': this receipt cannot be paid online until they have decided' : ''}.`
        : heldForSameJobsMessage(held);
  return {
    ...held,
    message,
    state: paid !== null ? 'money_paid_receipt' : own ? 'being_checked' : 'held_for_same_jobs',
    moneyPaidReceipt: paid,
    stillApplied: paid === null ? null : { amount: left, currency: held.currency },
  };
}

/**
 * A held payment that concerns a receipt as the JSON answers write it (the receipts' `heldPayment`,
 * and a refused start's): which payment, of which receipt, its status and what the sentence says of it
 * (`state`), the money it stands for and what of it went back, the receipt its money paid since with
 * what of it still pays that one, and the sentence the pages say; null when none. A script had only
 * the sentence to read the last three from.
 */
export function heldPaymentJsonOf(held: HeldPaymentNote | null) {
  if (held === null) return null;
  const paid = held.moneyPaidReceipt;
  return {
    paymentId: held.id,
    receiptId: held.receiptId,
    // Held for review is the payment's status (as /admin/payments names it) for as long as it is told of.
    status: 'needs_review' as const,
    state: held.state,
    amount: moneyJson(held.amount, held.currency),
    currency: held.currency,
    refunded: held.refunded && {
      amount: moneyJson(held.refunded.amount, held.refunded.currency),
      currency: held.refunded.currency,
    },
    moneyPaidReceipt: paid && {
      id: paid.id,
      status: paid.status,
      // Linked only for the researcher's own receipt, as the page links it.
      url: paid.isOwn ? `/me/receipts/${paid.id}` : null,
      stillApplied: held.stillApplied && moneyJson(held.stillApplied.amount, held.stillApplied.currency),
    },
    message: held.message,
  };
}
