import type { IncomingHttpHeaders } from 'node:http';
import { Prisma } from '@prisma/client';
import type { PaymentsConfig } from '../../config/config.js';
import type { Database } from '../../db/database.js';
import { describeEndedPayment } from '../../http/view-format.js';
import { formatCount } from '../../shared/counted.js';
import { BadRequestError, ConflictError, isUniqueViolation, NotFoundError, notFoundById } from '../../shared/errors.js';
import { formatLocalDateTime, toLocalDate } from '../../shared/local-date.js';
import type { Logger } from '../../shared/logger.js';
import { unstorableTextIn } from '../../shared/storable-text.js';
import { revealControls } from '../../shared/visible-text.js';
import { type AuditContext, appendAudit } from '../audit/audit.service.js';
import type { Metrics } from '../metrics/metrics.js';
import { minorUnitDigits } from '../pricing/pricing.js';
import * as receiptsRepository from '../receipts/receipts.repository.js';
import {
  allGoneAdvice,
  cancelOpenPaymentsIn,
  heldMoneyAllGone,
  markReceiptPaidIn,
} from '../receipts/receipts.service.js';
import {
  type CanceledCheckout,
  type CheckoutEndedBy,
  type CloseCanceledCheckouts,
  createCheckoutCloser,
} from './checkout-closer.js';
import { createDummyProvider, signDummyWebhook } from './dummy.provider.js';
import {
  type BillingTeamRefund,
  billingTeamRefundOf,
  billingTeamTakenBackOf,
  describeMoney,
  fromMinorUnits,
  hasAmountDue,
  heldForSameJobsMessage,
  heldPaymentJsonOf,
  heldPaymentNoteOf,
  heldPaymentOf,
  lostDisputeMinorOf,
  type PaymentMoney,
  paymentMoneyOf,
  returnedMinorOf,
  withoutEarlierRefundSoFar,
} from './payment-money.js';
import {
  type Checkout,
  DisputeOutcomeAsDisputedError,
  KNOWN_EVENT_TYPES,
  type PaymentEvent,
  type PaymentProvider,
  PaymentProviderError,
  WebhookBodyError,
  WebhookSignatureError,
} from './payment-provider.js';
import * as paymentsRepository from './payments.repository.js';
import type { TPaymentsPageQuery, TResolveReview, TSettleRefusedClaim } from './payments.schema.js';
import { createStripeProvider } from './stripe.provider.js';

export { fromMinorUnits, type PaymentMoney, paymentMoneyOf } from './payment-money.js';

export type WebhookOutcome =
  | 'ok'
  | 'duplicate'
  | 'bad_signature'
  | 'mismatch'
  | 'review'
  | 'ignored'
  | 'unknown_payment'
  | 'error';

export interface PaymentsServiceDeps {
  db: Database;
  config: PaymentsConfig;
  metrics: Pick<Metrics, 'webhookEvents' | 'receiptMarkedPaid' | 'checkoutExpiries'>;
  logger: Logger;
  now: () => Date;
  /** APP_TZ: how times in messages are written, and the local day a held payment accepted was paid on. */
  timeZone: string;
  /** The provider to use instead of one built from config (the app shares one; tests pass their own). */
  provider?: PaymentProvider;
  /** Closes the checkouts a void canceled (the app shares the void's); one over `provider` when absent. */
  closeCanceledCheckouts?: CloseCanceledCheckouts;
}

/** The configured provider, or undefined when online payment is off. */
export function buildPaymentProvider(config: PaymentsConfig): PaymentProvider | undefined {
  if (config.provider === 'dummy') {
    return createDummyProvider({ webhookSecret: config.webhookSecret });
  }
  if (config.provider === 'stripe' && config.stripe) return createStripeProvider(config.stripe);
  return undefined;
}

/** Where a checkout form may send the browser, for the CSP's form-action. */
export function checkoutOrigins(config: PaymentsConfig): string[] {
  return config.provider === 'stripe' ? ['https://checkout.stripe.com'] : [];
}

/** A receipt total (rounded to the minor unit when it was made) in minor units, exactly. */
export function toMinorUnits(total: Prisma.Decimal | string, currency: string): bigint {
  const scaled = new Prisma.Decimal(total).mul(new Prisma.Decimal(10).pow(minorUnitDigits(currency)));
  if (!scaled.isInteger()) throw new Error(`receipt total ${total} ${currency} is not a whole number of minor units`);
  return BigInt(scaled.toFixed(0));
}

const ISO_CURRENCY = /^[A-Z]{3}$/;

/** How /admin/payments names what a refused claim was, by its event's type. */
const REFUSED_CLAIM_KINDS: Readonly<Record<string, string>> = {
  'payment.refunded': 'Refund',
  'payment.disputed': 'Dispute',
  'payment.dispute_closed': 'Dispute outcome',
  'payment.refund_failed': 'Failed refund',
};

/** How many payments held for review, payments and webhook deliveries /admin/payments lists (a page of payments). */
const ADMIN_LIST_LIMIT = 200;

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

/** The parts of an event the app acts on: two events alike in these are the same event. */
function isSameEvent(a: PaymentEvent, b: PaymentEvent): boolean {
  return (
    a.type === b.type &&
    a.externalPaymentId === b.externalPaymentId &&
    (a.externalIntentId ?? null) === (b.externalIntentId ?? null) &&
    a.amountMinor === b.amountMinor &&
    a.currency === b.currency &&
    JSON.stringify(a.dispute ?? null) === JSON.stringify(b.dispute ?? null) &&
    JSON.stringify(a.refund ?? null) === JSON.stringify(b.refund ?? null)
  );
}

/**
 * An event in a few words: "payment.refunded of 8,574.25 THB for dummy_1_ab12cd34". `details` (what
 * the few words leave out, such as "dispute won") follow its refund's or dispute's id in brackets.
 */
function describeEvent(event: PaymentEvent, details: string[] = []): string {
  const amount =
    event.amountMinor === null || event.currency === null
      ? ''
      : ` of ${describeMinorUnits(event.amountMinor, event.currency)}`;
  const about = event.externalPaymentId ?? event.externalIntentId;
  const id = event.refund?.id ?? event.dispute?.id;
  const bracketed = [...(id && id !== event.id ? [id] : []), ...details].join('; ');
  return `${event.type}${amount}${about ? ` for ${about}` : ''}${bracketed ? ` (${bracketed})` : ''}`;
}

/** What isSameEvent compares that describeEvent leaves out, each in the few words that say it. */
function detailsOf(event: PaymentEvent): string[] {
  return [
    event.externalPaymentId ? `PaymentIntent ${event.externalIntentId ?? 'none'}` : '',
    event.dispute ? `dispute ${event.dispute.status ?? 'open'}` : '',
    event.dispute ? `reason ${event.dispute.reason ?? 'none given'}` : '',
    event.refund ? `refund ${event.refund.status}` : '',
    event.refund ? `failure reason ${event.refund.failureReason ?? 'none given'}` : '',
  ];
}

/**
 * Two events under one event id, as a refusal says them: in a few words, and when those read the
 * same (a dispute told won, then lost), with what differs, so the sender sees what it changed.
 */
function describeTwoEvents(first: PaymentEvent, second: PaymentEvent): [string, string] {
  if (describeEvent(first) !== describeEvent(second)) return [describeEvent(first), describeEvent(second)];
  const [a, b] = [detailsOf(first), detailsOf(second)];
  const differs = (_: string, at: number) => a[at] !== b[at];
  return [describeEvent(first, a.filter(differs)), describeEvent(second, b.filter(differs))];
}

/**
 * What a success event says was received, when it says both amount and currency (a code that
 * is no currency is kept only in the reason, as it came).
 */
function receivedOf(event: PaymentEvent): paymentsRepository.Received | null {
  if (event.amountMinor === null || event.amountMinor < 0n || event.currency === null) return null;
  if (!ISO_CURRENCY.test(event.currency)) return null;
  return { amountMinor: event.amountMinor, currency: event.currency };
}

/** The ISO 4217 codes Intl knows, as CURRENCY is checked (config.schema.ts). */
const KNOWN_CURRENCIES: ReadonlySet<string> = new Set(Intl.supportedValuesOf('currency'));

/**
 * What a success says was received, to record on its payment: only in a currency (docs/payments.md,
 * Webhooks 3, "a code that is no currency is kept only in the reason"). Three letters no currency
 * has ("XYZ") were recorded as money received, and a refund claimed in them then matched it.
 */
function receivedMoneyOf(event: PaymentEvent): paymentsRepository.Received | null {
  const received = receivedOf(event);
  return received !== null && KNOWN_CURRENCIES.has(received.currency) ? received : null;
}

/** Why a success's money is not the payment's, or undefined when it is. */
function describeMismatch(event: PaymentEvent, payment: paymentsRepository.PaymentRow): string | undefined {
  if (event.amountMinor === payment.amountMinor && event.currency === payment.currency) return undefined;
  const paid = describeMinorUnits(event.amountMinor, event.currency);
  return `paid ${paid} but ${describeMinorUnits(payment.amountMinor, payment.currency)} was due`;
}

/**
 * How long a payment may stay pending without a checkout before a new start treats it as
 * abandoned. The payment row is saved before the provider is asked for a checkout and the
 * checkout is attached after; a process that dies in between (crash, deploy) leaves the row
 * pending forever. A live start finishes well within this: the Stripe client gives up after
 * three tries of 15 s at most. Not a setting: no site has a reason to tune it.
 */
export const ABANDONED_START_GRACE_MS = 60_000;

/** A pending payment whose start never got a checkout and is older than the grace period. */
export function isAbandonedStart(payment: paymentsRepository.PaymentRow, at: Date): boolean {
  return (
    payment.status === 'pending' &&
    payment.checkoutUrl === null &&
    payment.externalPaymentId === null &&
    at.getTime() - payment.createdAt.getTime() >= ABANDONED_START_GRACE_MS
  );
}

/**
 * A receipt whose total is below the smallest payment the provider takes in its currency: it
 * cannot be paid online, and the provider is not asked (nothing is written).
 */
export class BelowMinimumChargeError extends ConflictError {
  constructor(receiptId: number, total: Prisma.Decimal, minimum: string, currency: string) {
    const amountOf = (amount: Prisma.Decimal | string) => describeMinorUnits(toMinorUnits(amount, currency), currency);
    super(
      `Receipt #${receiptId} totals ${amountOf(total)}, less than the smallest amount that can be paid online ` +
        `(${amountOf(minimum)}); ask the billing team how to pay it.`,
      { receiptId },
    );
  }
}

/**
 * A total the provider cannot charge exactly: more decimals than the step it takes the currency
 * in (12.345 KWD at Stripe, which takes only a last digit of 0). Receipts are priced to that step
 * (pricedDigitsOf); one made before the provider was chosen can still have such a total.
 */
export class UnpayableTotalError extends ConflictError {
  constructor(receiptId: number, total: Prisma.Decimal, step: string, currency: string, provider: string) {
    const amountOf = (amount: Prisma.Decimal | string) => describeMinorUnits(toMinorUnits(amount, currency), currency);
    super(
      `Receipt #${receiptId} totals ${amountOf(total)}, which cannot be paid online: ${provider} takes ${currency} ` +
        `only in steps of ${amountOf(step)}; ask the billing team how to pay it.`,
      { receiptId },
    );
  }
}

/**
 * A refund or dispute event that does not fit the payment (another currency, more than it
 * received): no money changes, the provider is told why (its dashboard shows the answer), and
 * the refusal is kept for finance on /admin/payments (recordRefusedClaim).
 */
export class ClaimBackRefusedError extends ConflictError {
  constructor(
    /** Why, as one clause (the answer wraps it); kept for finance with the refused claim. */
    readonly reason: string,
    /** The payment the claim was for, and what it claimed back (null: the event said no amount and currency). */
    readonly claim: { payment: { id: number; receiptId: number }; claimed: paymentsRepository.Received | null },
  ) {
    super(`Webhook rejected: ${reason}; nothing was changed.`);
  }
}

/**
 * A choice at the dummy checkout for a payment that has ended (a page left open in another tab):
 * 409, and nothing is sent or changed. Not a provider's delivery, so not counted as a webhook error.
 */
class CheckoutChoiceRefusedError extends ConflictError {}

/** Refuses a dummy checkout choice unless its payment is still open (`status`, read or locked). */
function refuseChoiceOnEndedPayment(status: string): void {
  const ended = describeEndedPayment(status);
  if (ended !== undefined) {
    throw new CheckoutChoiceRefusedError(
      `This payment ${ended}, so its checkout takes no other choice; nothing was changed.`,
    );
  }
}

/** Events that claim money back from a payment, as a refusal names them. */
const CLAIM_BACK_EVENTS: Readonly<Record<string, string>> = {
  'payment.refunded': 'its refund',
  'payment.disputed': 'its dispute',
  'payment.dispute_closed': "its dispute's outcome",
  'payment.refund_failed': 'its failed refund',
};

/** False for a payment that never took money (still open, failed or canceled): a refund or dispute of it changes nothing. */
function hasTakenMoney(payment: paymentsRepository.PaymentRow): boolean {
  return payment.status !== 'pending' && payment.status !== 'failed' && payment.status !== 'canceled';
}

/** Who and what a provider's webhook audits: the provider, on the payment's receipt (no address or agent of a person). */
function providerAuditOf(providerName: string, payment: { receiptId: number }) {
  return { actor: `provider:${providerName}`, ip: null, userAgent: null, target: `receipt:${payment.receiptId}` };
}

/** What a refund or dispute of `payment` is measured against: what the provider said it received, else what was due. */
function receivedBy(payment: paymentsRepository.PaymentRow): paymentsRepository.Received {
  return payment.receivedMinor !== null && payment.receivedCurrency !== null
    ? { amountMinor: payment.receivedMinor, currency: payment.receivedCurrency }
    : { amountMinor: payment.amountMinor, currency: payment.currency };
}

/**
 * Refuses money claimed back from `payment` (a refund, a dispute) in another currency than it
 * received, or more than it received: webhooks are amount-checked, and such an event is a
 * provider's or a forger's mistake that must change nothing (ClaimBackRefusedError, 409).
 */
function refuseClaimBeyondReceived(
  payment: paymentsRepository.PaymentRow,
  claimed: paymentsRepository.Received,
  kind: 'refund' | 'dispute' | 'failed refund',
  amountSuffix?: string,
): void {
  const received = receivedBy(payment);
  const receivedText = describeMinorUnits(received.amountMinor, received.currency);
  const claimedText = describeMinorUnits(claimed.amountMinor, claimed.currency);
  if (claimed.currency !== received.currency) {
    throw new ClaimBackRefusedError(
      `the ${kind} of payment #${payment.id} is in ${claimed.currency} (${claimedText}), but the payment received ${receivedText}`,
      { payment, claimed },
    );
  }
  if (claimed.amountMinor > received.amountMinor) {
    const amount = amountSuffix ? `${claimedText} ${amountSuffix}` : claimedText;
    throw new ClaimBackRefusedError(
      `the ${kind} of payment #${payment.id} (${amount}) is more than the ${receivedText} it received`,
      { payment, claimed },
    );
  }
}

/**
 * True for the payment a paid receipt is paid from: a success, an accepted held payment, or one
 * held after a partial refund or a dispute while the receipt stays paid from it.
 */
function paysItsReceipt(payment: paymentsRepository.PaymentRow): boolean {
  return (
    payment.status === 'succeeded' ||
    (payment.status === 'resolved' && payment.reviewOutcome === 'accepted') ||
    (payment.status === 'needs_review' && payment.holdsPaidReceipt)
  );
}

/**
 * What happened to a held payment that still pays its receipt, and what accepting it keeps, for the
 * 409 that refuses any other outcome: a dispute lost in part is money the bank took back, not a
 * refund, though both count as refunded (recordMoneyGone).
 */
function whatWentBackFrom(
  payment: paymentsRepository.PaymentRow,
  failedRefundMinor: bigint,
  uncountedFailedMinor: bigint,
): string {
  const lost = lostDisputeMinorOf(payment);
  if (lost > 0n) {
    const lostText = describeMinorUnits(lost, payment.disputedCurrency);
    // Refunds apart from the lost dispute, which the refunded total counts too; a refund that
    // failed took nothing back.
    const refundedApart =
      (returnedMinorOf(payment.refundedMinor, failedRefundMinor, lost, uncountedFailedMinor) ?? 0n) - lost;
    const what =
      refundedApart > 0n
        ? `${describeMinorUnits(refundedApart, payment.refundedCurrency)} was refunded and ${lostText} taken back by a lost dispute`
        : `${lostText} was taken back by a lost dispute`;
    return `of which ${what}. Accept it to keep the receipt paid from the rest,`;
  }
  if (payment.disputedMinor !== null && payment.refundedMinor === null) {
    return 'and the payer disputed it. Accept it to keep the receipt paid,';
  }
  if (payment.disputedMinor !== null) {
    return 'of which part was refunded, and the payer disputed it. Accept it to keep the receipt paid from the rest,';
  }
  return 'of which part was refunded. Accept it to keep the receipt paid from the rest,';
}

/** Why a researcher cannot pay a receipt while one of its payments is held for review. */
export const PAYMENT_IN_REVIEW_MESSAGE =
  'A payment for this receipt is being checked by the billing team, so it cannot be paid again now; they will be in touch.';

/**
 * When the oldest checkout still open was opened, per provider, for the NoWebhooks alert at each
 * scrape (the metrics' open-checkouts gauge); gives up after `timeoutMs`.
 */
export function findOldestOpenCheckouts(
  db: Database,
  timeoutMs: number,
): Promise<{ provider: string; openedAt: Date }[]> {
  return paymentsRepository.findOldestOpenCheckouts(db.pool, timeoutMs);
}

/** The payments service: starting checkouts, webhooks, and the admin's review of held payments. */
export function createPaymentsService(deps: PaymentsServiceDeps) {
  const { db, metrics, logger, now } = deps;
  const provider = deps.provider ?? buildPaymentProvider(deps.config);
  const prisma = db.prisma;
  const closeCanceledCheckouts = deps.closeCanceledCheckouts ?? createCheckoutCloser({ db, provider, metrics, logger });

  function requireProvider(): PaymentProvider {
    if (!provider) throw new NotFoundError('Online payment is not enabled here.');
    return provider;
  }

  async function requireOwnReceipt(username: string, receiptId: number) {
    const receipt = await receiptsRepository.findReceipt(prisma, receiptId, username);
    if (!receipt) throw notFoundById('Receipt', receiptId);
    return receipt;
  }

  /**
   * Money already arrived for this receipt and an admin has not decided what it pays for: a second
   * payment now would most likely take the same amount twice. The refusal names the held payment (the
   * oldest) as the receipt's JSON does (`heldPayment`), so a script can tell which.
   */
  async function refuseWhileHeld(
    client: Prisma.TransactionClient | typeof prisma,
    receipt: { id: number; status: string },
  ) {
    const [held] = await paymentsRepository.findHeldPaymentRowsOfReceipt(client, receipt.id);
    if (held) {
      throw new ConflictError(
        PAYMENT_IN_REVIEW_MESSAGE,
        { receiptId: receipt.id, heldPaymentId: held.id },
        { publicFields: { heldPayment: heldPaymentJsonOf(heldPaymentNoteOf(heldPaymentOf(held), receipt)) } },
      );
    }
  }

  /**
   * Money taken for another receipt that billed some of these jobs waits for an admin's decision
   * (refund it, or apply it to this receipt): paying this one now would pay for the jobs twice.
   */
  async function refuseWhileSameJobsHeld(client: Prisma.TransactionClient | typeof prisma, receiptId: number) {
    const found = await paymentsRepository.findHeldPaymentForSameJobs(client, receiptId);
    if (found) {
      const held = heldPaymentOf(found);
      // Named as the receipt's JSON names it (`heldPayment`, the other receipt's payment).
      throw new ConflictError(
        heldForSameJobsMessage(held),
        { receiptId, heldPaymentId: held.id },
        {
          publicFields: {
            heldPayment: heldPaymentJsonOf(heldPaymentNoteOf(held, { id: receiptId, status: 'pending' })),
          },
        },
      );
    }
  }

  /**
   * Marks a start that never got its checkout failed (audited), so the caller starts the next
   * attempt. Conditional: of several clicks finding it, one marks and audits it, and all of
   * them go on to the same next attempt.
   */
  async function abandonHalfStarted(payment: paymentsRepository.PaymentRow, actor: AuditContext) {
    const at = now();
    const reason = `start interrupted: no checkout within ${ABANDONED_START_GRACE_MS / 1000} s, abandoned for a new attempt`;
    await prisma.$transaction(async (tx) => {
      const startedBefore = new Date(at.getTime() - ABANDONED_START_GRACE_MS);
      if (!(await paymentsRepository.abandonHalfStarted(tx, payment.id, startedBefore, reason))) return;
      await appendAudit(
        tx,
        {
          ...actor,
          action: 'payment.abandon',
          target: `receipt:${payment.receiptId}`,
          status: 'failed',
          details: {
            paymentId: payment.id,
            idempotencyKey: payment.idempotencyKey,
            startedAt: payment.createdAt.toISOString(),
            reason,
          },
        },
        at,
      );
    });
    logger.warn({ paymentId: payment.id, receiptId: payment.receiptId }, 'abandoned a payment start without checkout');
  }

  /**
   * Opens (or reopens) the provider's checkout for a pending receipt of the user. A double
   * click gets the same payment: the idempotency key is derived from the receipt and its
   * attempt number, so a racing second insert hits the unique index and reuses the first.
   * A start that never got its checkout (the process died between saving the payment and
   * attaching the checkout) is abandoned after ABANDONED_START_GRACE_MS, which ends that
   * attempt: the next one counts it and so gets a new key (see docs/payments.md).
   */
  async function startPayment(
    username: string,
    receiptId: number,
    actor: AuditContext,
  ): Promise<{ redirectUrl: string }> {
    const activeProvider = requireProvider();
    const receipt = await requireOwnReceipt(username, receiptId);
    if (receipt.status !== 'pending')
      throw new ConflictError(`Receipt #${receiptId} is ${receipt.status}; there is nothing to pay.`);
    // A receipt of 0.00 is settled when it is made; one from before that rule stays pending, and
    // a checkout for it would be a payment of nothing (Stripe refuses amounts under its minimum).
    if (!hasAmountDue(receipt)) {
      throw new ConflictError(
        `Receipt #${receiptId} totals ${describeMinorUnits(0n, receipt.currency)}; there is nothing to pay.`,
        { receiptId },
      );
    }
    // Below the provider's minimum the provider refuses the checkout: say so before asking it,
    // rather than leave a failed payment carrying the provider's refusal.
    const minimum = findUnmetMinimumCharge(receipt.total, receipt.currency);
    if (minimum !== undefined) throw new BelowMinimumChargeError(receiptId, receipt.total, minimum, receipt.currency);
    // The same for a total the provider cannot charge exactly (a KWD receipt priced before Stripe was chosen).
    const step = findUnpayableStep(receipt.total, receipt.currency);
    if (step !== undefined) {
      throw new UnpayableTotalError(receiptId, receipt.total, step, receipt.currency, activeProvider.name);
    }
    // Money already arrived for this receipt and an admin has not decided what it pays for:
    // a second payment now would most likely take the same amount twice.
    await refuseWhileHeld(prisma, receipt);
    await refuseWhileSameJobsHeld(prisma, receiptId);
    const open = await paymentsRepository.findOpenPayment(prisma, receiptId, activeProvider.name);
    if (open?.checkoutUrl) return { redirectUrl: open.checkoutUrl };
    // Another request is between saving its payment and attaching the checkout: wait for it.
    if (open && !isAbandonedStart(open, now())) return { redirectUrl: `/payments/thanks?rid=${receiptId}` };
    // That request died: its attempt ends here, and this one starts the next.
    if (open) await abandonHalfStarted(open, actor);

    // Counting only ended attempts keeps the key the same for every click racing on this one.
    const attempt = (await paymentsRepository.countEndedPayments(prisma, receiptId, activeProvider.name)) + 1;
    const idempotencyKey = `receipt-${receiptId}-${activeProvider.name}-${attempt}`;
    const amountMinor = toMinorUnits(receipt.total, receipt.currency);
    let payment: paymentsRepository.PaymentRow;
    try {
      payment = await prisma.$transaction(async (tx) => {
        // Checked again under the receipt's lock: a webhook may have held a payment since.
        await paymentsRepository.lockReceiptForPayments(tx, receiptId);
        await refuseWhileHeld(tx, receipt);
        // And voided meanwhile: a void cancels the open payments it finds under this lock.
        const locked = await receiptsRepository.findReceipt(tx, receiptId);
        if (locked?.status !== 'pending') {
          throw new ConflictError(`Receipt #${receiptId} is ${locked?.status ?? 'gone'}; there is nothing to pay.`);
        }
        await refuseWhileSameJobsHeld(tx, receiptId);
        const created = await paymentsRepository.insertPayment(tx, {
          receiptId,
          provider: activeProvider.name,
          amountMinor,
          currency: receipt.currency,
          idempotencyKey,
          createdAt: now(),
        });
        await appendAudit(
          tx,
          {
            ...actor,
            action: 'payment.start',
            target: `receipt:${receiptId}`,
            status: 'ok',
            details: {
              paymentId: created.id,
              provider: activeProvider.name,
              amountMinor: String(amountMinor),
              currency: receipt.currency,
            },
          },
          now(),
        );
        return created;
      });
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      const winner = await paymentsRepository.findByIdempotencyKey(prisma, idempotencyKey);
      return { redirectUrl: winner?.checkoutUrl ?? `/payments/thanks?rid=${receiptId}` };
    }

    let checkout: Checkout;
    let attached: paymentsRepository.PaymentRow;
    try {
      checkout = await activeProvider.startCheckout({
        paymentId: payment.id,
        receiptId,
        amountMinor,
        currency: receipt.currency,
        idempotencyKey,
        description: `HPC usage, receipt #${receiptId}`,
        successUrl: `${deps.config.publicBaseUrl}/payments/thanks?rid=${receiptId}`,
        cancelUrl: `${deps.config.publicBaseUrl}/me/receipts/${receiptId}`,
      });
      // Recorded even when the payment ended meanwhile (see closeLateCheckout): a success for this
      // checkout must find its payment and be held for review, not go unknown.
      attached = await paymentsRepository.attachCheckout(
        prisma,
        payment.id,
        checkout.externalPaymentId,
        checkout.checkoutUrl,
      );
    } catch (error) {
      // The next click starts a fresh attempt with a new idempotency key. A payment a void
      // canceled meanwhile keeps its status and reason, and the researcher learns of the void.
      const status = await paymentsRepository.failPendingStart(
        prisma,
        payment.id,
        `checkout could not start: ${(error as Error).message}`,
      );
      if (status === 'canceled') throw await settledWhileStarting(receiptId, payment.id);
      throw error;
    }
    if (attached.status === 'pending') return { redirectUrl: checkout.checkoutUrl };
    await closeLateCheckout(attached);
    if (attached.status === 'canceled') throw await settledWhileStarting(receiptId, payment.id);
    // Abandoned by a later click: the status page shows the newer attempt.
    return { redirectUrl: `/payments/thanks?rid=${receiptId}` };
  }

  /**
   * A checkout the provider opened after its payment had ended, while the start waited for it. A
   * void canceled the payment before it had a provider id, so the void's closer had nothing to
   * expire: the page would stay payable for a void receipt to anyone holding its URL. A later click
   * may also have abandoned the start (the provider took longer than the grace period); that
   * checkout is closed too, though its URL never reached the payer: the payer goes on in the newer
   * attempt's checkout, so this one could only take the money a second time, to be held and refunded
   * by hand. Closed through the void's closer (same key, metric, log and reason when it fails). Only
   * a void or an abandonment ends a payment that has no provider id yet, so no other status is met.
   */
  async function closeLateCheckout(payment: paymentsRepository.PaymentRow) {
    const endedBy: CheckoutEndedBy | undefined =
      payment.status === 'canceled'
        ? await canceledBy(payment.receiptId)
        : payment.status === 'failed'
          ? 'abandoned_start'
          : undefined;
    if (endedBy === undefined) return;
    await closeCanceledCheckouts(payment.receiptId, [payment], endedBy);
  }

  /**
   * What canceled a payment still starting: a void, or the receipt being paid another way (marked
   * paid by hand, or a held payment accepted for it), which cancel its open payments alike.
   */
  async function canceledBy(receiptId: number): Promise<'void' | 'mark_paid'> {
    const receipt = await receiptsRepository.findReceipt(prisma, receiptId);
    return receipt?.status === 'paid' ? 'mark_paid' : 'void';
  }

  /** The researcher's answer when the payment being started was canceled meanwhile: says why. */
  async function settledWhileStarting(receiptId: number, paymentId: number): Promise<ConflictError> {
    const how = (await canceledBy(receiptId)) === 'mark_paid' ? 'marked paid' : 'voided';
    return new ConflictError(
      `Receipt #${receiptId} was ${how} while its payment was starting; there is nothing to pay.`,
      { receiptId, paymentId },
    );
  }

  function count(providerName: string, type: string, outcome: WebhookOutcome) {
    // Provider event types are open-ended; only ours become label values, so series stay bounded.
    const event = (KNOWN_EVENT_TYPES as readonly string[]).includes(type) ? type : 'other';
    metrics.webhookEvents.inc({ provider: providerName, event, outcome });
  }

  /** Marks a payment for an admin to look at, and audits why. */
  async function holdForReview(
    tx: Prisma.TransactionClient,
    payment: paymentsRepository.PaymentRow,
    event: PaymentEvent,
    action: 'payment.mismatch' | 'payment.review',
    reason: string,
    hasAmountMismatch: boolean,
  ) {
    await paymentsRepository.lockReceiptForPayments(tx, payment.receiptId);
    const received = receivedMoneyOf(event);
    await paymentsRepository.holdForReview(
      tx,
      payment.id,
      reason,
      hasAmountMismatch,
      received,
      event.externalIntentId ?? null,
    );
    const details = {
      paymentId: payment.id,
      eventId: event.id,
      reason,
      ...(received ? { receivedMinor: String(received.amountMinor), receivedCurrency: received.currency } : {}),
    };
    await appendAudit(
      tx,
      {
        actor: `provider:${payment.provider}`,
        ip: null,
        userAgent: null,
        target: `receipt:${payment.receiptId}`,
        action,
        status: 'failed',
        details,
      },
      now(),
    );
  }

  /**
   * Records that `gone` (all of the payment's money gone back so far: refunds, and a lost dispute's
   * amount) left the payment, and settles its receipt as a refund does: when the payment paid it,
   * gone in full, the receipt is unpaid again and the payment resolved `refunded` by the provider;
   * in part, the receipt stays paid and the payment is held for an admin with `partReason`.
   */
  async function recordMoneyGone(
    tx: Prisma.TransactionClient,
    providerName: string,
    payment: paymentsRepository.PaymentRow,
    gone: paymentsRepository.Received,
    at: Date,
    texts: {
      fullReason: string;
      fullNote: string;
      partReason: string;
      /**
       * Gone in full while something is still open on the payment (a dispute): the receipt is unpaid
       * all the same, but the payment stays held with this reason instead of being resolved.
       */
      fullHeldReason?: string;
    },
    /** What of `gone` actually went back (less refunds known to have failed); `gone` when absent. */
    returned: bigint = gone.amountMinor,
  ): Promise<{ receiptChange: 'unpaid' | 'stays_paid' | 'none'; outcome: WebhookOutcome }> {
    await paymentsRepository.recordRefund(tx, payment.id, gone, at);
    // Payment, then receipt: the lock order of every webhook and of a void.
    await paymentsRepository.lockReceiptForPayments(tx, payment.receiptId);
    const receipt = await receiptsRepository.findReceipt(tx, payment.receiptId);
    const paidTheReceipt = receipt?.status === 'paid' && paysItsReceipt(payment);
    if (!paidTheReceipt) return { receiptChange: 'none', outcome: 'ok' };
    if (returned === receivedBy(payment).amountMinor) {
      // Nothing of the money is left: the receipt, with its jobs, is to be paid again. The payment
      // keeps when it paid it, so paid.csv still lists it in that period.
      if (receipt.paidAt) await paymentsRepository.keepPaidAtIfUnset(tx, payment.id, receipt.paidAt);
      const isUnpaid = await receiptsRepository.transitionReceipt(tx, payment.receiptId, ['paid'], {
        status: 'pending',
        paidAt: null,
        paymentMethod: null,
        txRef: null,
      });
      if (!isUnpaid) throw new ConflictError(`Receipt #${payment.receiptId} changed meanwhile; nothing was changed.`);
      if (texts.fullHeldReason !== undefined) {
        await paymentsRepository.holdAfterFullRefund(tx, payment.id, texts.fullHeldReason);
        return { receiptChange: 'unpaid', outcome: 'review' };
      }
      await paymentsRepository.resolveAsRefundedByProvider(tx, payment.id, {
        reviewReason: texts.fullReason,
        note: texts.fullNote,
        reviewedBy: `provider:${providerName}`,
        reviewedAt: at,
      });
      return { receiptChange: 'unpaid', outcome: 'ok' };
    }
    // Part of the money went back: the receipt stays paid from the rest until an admin decides
    // (keep it paid, or void it to bill its jobs again and settle the rest).
    await paymentsRepository.holdForPartialRefund(tx, payment.id, texts.partReason);
    return { receiptChange: 'stays_paid', outcome: 'review' };
  }

  /**
   * A payment whose review was closed other than by accepting it (refunded, dismissed, or resolved
   * by a refund in full) pays no receipt, and /admin/payments lists it as settled: what the provider
   * reports about its money since (a dispute, its outcome) is nothing that decision weighed.
   */
  function isResolvedApart(payment: paymentsRepository.PaymentRow): boolean {
    return payment.status === 'resolved' && payment.reviewOutcome !== 'accepted';
  }

  /**
   * A resolution as the reason of a later hold names it: "resolved as refunded by alice on 2026-12-04
   * 03:50 ("note")". The note's bidirectional controls are written as escapes (revealControls):
   * raw, one turned the rest of the sentence around wherever it went (the card's "Why:", a refusal
   * quoting the reason). The note as typed stays in its payment.resolve audit entry.
   */
  function describeResolution(payment: paymentsRepository.PaymentRow): string {
    const when = payment.reviewedAt ? formatLocalDateTime(payment.reviewedAt, deps.timeZone) : 'an unknown date';
    return (
      `resolved as ${payment.reviewOutcome} by ${payment.reviewedBy ?? 'an unknown reviewer'} on ${when}` +
      `${payment.reviewNote ? ` ("${revealControls(payment.reviewNote)}")` : ''}`
    );
  }

  /**
   * For a payment an admin resolved, which an event is about to hold again (clearing the decision
   * from the row): the decision and what it was taken on (an open dispute, a void), for the end of
   * the new reason, where /admin/payments says them. Empty otherwise; a provider's own resolution (a
   * refund in full) is the event's business and not repeated.
   */
  function decisionNoteOf(payment: paymentsRepository.PaymentRow): string {
    if (payment.status !== 'resolved' || payment.reviewedBy?.startsWith('provider:')) return '';
    return (
      `; it had been ${describeResolution(payment)}` +
      `${payment.reviewReason ? `, after it was held for review: ${revealControls(payment.reviewReason)}` : ''}`
    );
  }

  /**
   * Holds a resolved payment for review again because the provider reported `what` after the
   * decision; the reason names that decision (who, when, their note) and what it was held for
   * before, since the resolution itself is cleared (the audit log keeps it). Takes the receipt's
   * lock after the payment's, as every hold does.
   */
  async function reopenAfterResolution(
    tx: Prisma.TransactionClient,
    providerName: string,
    payment: paymentsRepository.PaymentRow,
    what: string,
    consequence: string,
  ) {
    await paymentsRepository.lockReceiptForPayments(tx, payment.receiptId);
    const reason =
      `${what}, after this payment was ${describeResolution(payment)}: ${consequence}; check it with ` +
      `${providerName} and resolve it again` +
      `${payment.reviewReason ? `; before it was resolved it was held for review: ${revealControls(payment.reviewReason)}` : ''}`;
    if (!(await paymentsRepository.reopenResolvedReview(tx, payment.id, reason)))
      throw new ConflictError(`Payment #${payment.id} changed meanwhile; nothing was changed.`);
  }

  /**
   * A refund the provider reports for a payment (what it has refunded of it so far), inside the
   * event's transaction; the payment's row is locked. Money that never arrived changes nothing
   * (`ignored`). A refund in another currency than the payment received, or of more than it
   * received, is refused (ClaimBackRefusedError: the transaction, event row included, rolls back).
   * Otherwise the refund is recorded on the payment and audited, and when the payment paid its
   * receipt: refunded in full, the receipt is unpaid again and the payment resolved as refunded
   * by the provider; in part, the receipt stays paid and the payment is held for an admin. A held
   * payment that did not pay its receipt has a refund in part added to its reason, with what is left.
   */
  async function applyRefund(
    tx: Prisma.TransactionClient,
    providerName: string,
    payment: paymentsRepository.PaymentRow,
    event: PaymentEvent,
  ): Promise<{ outcome: WebhookOutcome; paymentId: number | null }> {
    if (!hasTakenMoney(payment)) return { outcome: 'ignored', paymentId: payment.id };
    const received = receivedBy(payment);
    const receivedText = describeMinorUnits(received.amountMinor, received.currency);
    const refunded = receivedOf(event);
    if (refunded === null) {
      throw new ClaimBackRefusedError(
        `the refund of payment #${payment.id} says ${describeMinorUnits(event.amountMinor, event.currency)}, not an amount and currency`,
        { payment, claimed: null },
      );
    }
    const refundedText = describeMinorUnits(refunded.amountMinor, refunded.currency);
    refuseClaimBeyondReceived(payment, refunded, 'refund', 'in all');
    // A lost dispute is in the recorded total too (recordMoneyGone), but not in the provider's
    // refund total (Stripe's amount_refunded counts refunds only): it is kept on top of it.
    const lostMinor = lostDisputeMinorOf(payment);
    // The provider's total counts the refunds that stand: one reported and then failed is taken out
    // of it again (Stripe's amount_refunded; the dummy's amount_cents alike), so the failures the
    // recorded total counts are added back to read it as the recorded one (refunds ever reported).
    // A failure the provider made after this total (Stripe's event times say so) is still in it:
    // a report made before a refund failed, delivered after the failure. Without the times (the
    // dummy provider), or made in the same second, a total is read as made after every failure told
    // before it.
    const madeBefore = (failure: { failureOccurredAt: Date | null }) =>
      event.occurredAt != null && failure.failureOccurredAt !== null && event.occurredAt < failure.failureOccurredAt;
    let droppedMinor = 0n;
    let failedSinceMinor = 0n;
    for (const failure of await paymentsRepository.findFailedRefundsInReportedTotal(tx, payment.id)) {
      if (madeBefore(failure)) failedSinceMinor += failure.amountMinor;
      else droppedMinor += failure.amountMinor;
    }
    const reported = refunded.amountMinor + droppedMinor;
    // Provider totals only grow: an earlier refund's event arriving late, or one of nothing, adds nothing.
    const before = (payment.refundedMinor ?? 0n) - lostMinor;
    if (reported <= before) return { outcome: 'ignored', paymentId: payment.id };
    const at = now();
    // Providers do not promise order: a refund's failure can arrive before the report that counts
    // it. A refund known to have failed returned nothing, so it must not unpay the receipt; the
    // total is still recorded as reported, as when the failure comes second (returnedMinorOf).
    const failedMinor = await paymentsRepository.sumFailedRefundMinor(tx, payment.id);
    // Of the failures told before any report of them, this total counts only those it can hold (in
    // the order they were told): what it adds to the refunds already recorded. A refund larger than
    // that had failed before the total was made, which leaves it out as it leaves out any failed
    // refund; it was read as counted all the same, so 3.00 THB reported after a failed 4.00 THB read
    // as nothing returned. Either way it is in the recorded total from now on.
    const failedFirst = await paymentsRepository.findFailedRefundsNotInReportedTotal(tx, payment.id);
    let room = reported - before;
    let failedFirstMinor = 0n;
    let failedBeforeMinor = 0n;
    for (const failure of failedFirst) {
      if (failure.amountMinor <= room) {
        room -= failure.amountMinor;
        failedFirstMinor += failure.amountMinor;
      } else {
        failedBeforeMinor += failure.amountMinor;
      }
    }
    // Refunds this total counts that had failed already: its reason says so.
    const failedInTotalMinor = failedFirstMinor + failedSinceMinor;
    const standingMinor = reported - droppedMinor - failedInTotalMinor;
    const returned = standingMinor > 0n ? standingMinor : 0n;
    const returnedText = returned === 0n ? 'nothing' : describeMinorUnits(returned, refunded.currency);
    const recorded = { amountMinor: reported + failedBeforeMinor + lostMinor, currency: refunded.currency };
    refuseClaimBeyondReceived(
      payment,
      { amountMinor: returned + lostMinor, currency: refunded.currency },
      'refund',
      'in all, with its lost dispute',
    );
    const lostText = describeMinorUnits(lostMinor, refunded.currency);
    // What the provider refunded, when a lost dispute took the rest: "the whole" amount read as refunded,
    // and finance matching the provider's refunds looked for money the provider never returned.
    const fullRefundNote =
      lostMinor === 0n
        ? `${providerName} reported the whole ${receivedText} refunded (event ${event.id})`
        : `${providerName} reported ${refundedText} refunded, the rest of the ${receivedText} received after the ` +
          `${lostText} taken back by the lost dispute (event ${event.id})`;
    // Held already for a dispute: the bank may take more than this refund, so the dispute stays in
    // what the admin decides on (the refund's own words replace an earlier refund's).
    // What it is held for so far, less the words of an earlier refund in part: this total says the refund
    // so far in their place (each refund's words were added after the last, so the reason repeated itself).
    const heldAsIs = payment.status === 'needs_review' && payment.reviewReason ? payment.reviewReason : '';
    const heldReason = heldAsIs && withoutEarlierRefundSoFar(heldAsIs, receivedText, providerName);
    const heldForDispute = payment.externalDisputeId !== null && heldReason !== '' ? `${heldReason}; ` : '';
    // Held already, by a refund that failed before this total: what the admin decides on so far is kept.
    const heldBefore = heldReason === '' ? '' : `${heldReason}; `;
    const partReason =
      (failedInTotalMinor === 0n && lostMinor === 0n
        ? `${failedMinor === 0n ? heldForDispute : heldBefore}${refundedText} of the ${receivedText} received was ` +
          `refunded at ${providerName}; receipt #${payment.receiptId} stays paid until this is resolved`
        : failedInTotalMinor === 0n
          ? // Held already by the lost dispute: what the admin decides on so far is kept.
            `${heldBefore}` +
            `${refundedText} of the ${receivedText} received was refunded at ${providerName}, on top of the ` +
            `${lostText} taken back by the lost dispute; receipt #${payment.receiptId} stays paid until this is resolved`
          : // Held already by the failure told first: what the admin decides on so far is kept.
            `${heldBefore}` +
            `${providerName} reported ${refundedText} of the ${receivedText} received refunded, of which ` +
            `${describeMinorUnits(failedInTotalMinor, refunded.currency)} had failed already, so ${returnedText} went back; ` +
            `receipt #${payment.receiptId} stays paid until this is resolved`) + decisionNoteOf(payment);
    // Held after a refund that failed, what the admin decided on so far is kept whole before the refund in
    // full: the failure's words were dropped from the reason /admin/payments shows (still recorded apart),
    // and only "refunded in full …" was left. Whole, since the failure's words name the refund in part.
    const fullReason =
      `${failedMinor === 0n ? heldForDispute : heldAsIs && `${heldAsIs}; `}refunded in full at ${providerName} (${refundedText}` +
      `${lostMinor === 0n ? '' : `, with ${lostText} taken back by the lost dispute`}); ` +
      `receipt #${payment.receiptId} is unpaid again`;
    // A dispute still open: the bank may yet take the money back from the centre, though it went back
    // to the payer already. Resolved as refunded, the payment left /admin/payments' held list and the
    // dispute's words left its reason, so nobody answered the bank; held, it waits for finance, as a
    // dispute told after a refund in full holds it (either order ends the same).
    const isDisputeOpen = payment.externalDisputeId !== null && payment.disputeStatus === null;
    const { receiptChange, outcome } = await recordMoneyGone(
      tx,
      providerName,
      payment,
      recorded,
      at,
      {
        fullReason: `${fullReason}${decisionNoteOf(payment)}`,
        fullNote: fullRefundNote,
        partReason,
        ...(isDisputeOpen
          ? {
              fullHeldReason:
                `${fullReason}; the dispute is still open, so the bank may take the money back as well: answer ` +
                `it at ${providerName} (the payer was refunded) and resolve this once it is settled` +
                decisionNoteOf(payment),
            }
          : {}),
      },
      returned + lostMinor,
    );
    // A failure told before this report is counted by it; the provider's next totals leave it out.
    if (failedFirst.length > 0) await paymentsRepository.markFailedRefundsInReportedTotal(tx, payment.id);
    // Held without paying its receipt (paid short, after a cancel, its receipt voided or paid
    // otherwise), and now all of its money went back to the payer: there is nothing left for
    // finance to accept or apply, which is what the hold waited for. Left held, it kept the receipt,
    // and every receipt billing its jobs, from being paid online until an admin typed in what the
    // provider had already said. An open dispute keeps it held: the bank may take the money again.
    const isHeldGoneInFull =
      receiptChange === 'none' &&
      payment.status === 'needs_review' &&
      !isDisputeOpen &&
      returned + lostMinor === received.amountMinor;
    // Held without paying its receipt and with its dispute still open, all of its money went back:
    // it stays held for the dispute, and its reason says the payer was refunded. It used to be
    // recorded and answered `ok` with the reason unchanged, so the admin reviewing it did not see
    // that the money had gone back, and might refund it again.
    const isHeldWithDisputeGoneInFull =
      receiptChange === 'none' &&
      payment.status === 'needs_review' &&
      isDisputeOpen &&
      returned + lostMinor === received.amountMinor;
    // Unless its money paid another receipt since (its receipt voided, the receipt billing its jobs
    // again marked paid with that money): that receipt stays paid with money the payer now has back.
    // Resolved as refunded, nothing on /admin/payments said so, though an admin's own `refunded` is
    // refused for it (refuseRefundOfMoneyPayingAReceipt); held, it waits for finance to collect that
    // receipt again or void it.
    // Held without paying its receipt (its receipt voided, paid short, after a cancel), and part of its
    // money went back: still held, as it was (`ok`), but the reason the admin reads on /admin/payments
    // said nothing of the refund, so finance, told to refund the payment or apply it, saw the Refunded
    // column but not what is left to settle. Each total is added as a total ("so far"): the provider
    // reports what it has refunded in all, and a later one is read after the earlier.
    const isHeldGoneInPart =
      receiptChange === 'none' && payment.status === 'needs_review' && returned + lostMinor < received.amountMinor;
    // Its money paid another receipt (its receipt voided, the receipt billing its jobs again marked paid
    // with that money): a refund in full or in part is money that receipt stays paid with, gone back.
    const moneyPaid = isHeldGoneInFull || isHeldGoneInPart ? await receiptPaidWithMoneyOf(tx, payment) : null;
    const isHeldRefundedInFull = isHeldGoneInFull && moneyPaid === null;
    let heldOutcome = outcome;
    if (isHeldWithDisputeGoneInFull) {
      await paymentsRepository.addToHoldReason(
        tx,
        payment.id,
        `${heldReason || 'held for review'}; refunded in full at ${providerName} (${refundedText}` +
          `${lostMinor === 0n ? '' : `, with ${lostText} taken back by the lost dispute`}); the dispute is still ` +
          `open, so the bank may take the money back as well: answer it at ${providerName} (the payer was ` +
          'refunded) and resolve this once it is settled',
      );
      heldOutcome = 'review';
    }
    if (isHeldGoneInPart) {
      const stillText = describeMinorUnits(received.amountMinor - returned - lostMinor, refunded.currency);
      const refundWords =
        failedInTotalMinor === 0n
          ? `${refundedText} of the ${receivedText} received has been refunded at ${providerName} so far` +
            `${lostMinor === 0n ? '' : `, on top of the ${lostText} taken back by the lost dispute`}`
          : `${providerName} reported ${refundedText} of the ${receivedText} received refunded so far, of which ` +
            `${describeMinorUnits(failedInTotalMinor, refunded.currency)} had failed already, so ${returnedText} went back`;
      // In part: the reason named only what is still held, and finance, told to refund the rest or apply it,
      // did not see that a receipt stays paid with the money that went back.
      const goneText = describeMinorUnits(returned + lostMinor, refunded.currency);
      const paidWords =
        moneyPaid === null
          ? ''
          : `; its money paid receipt #${moneyPaid.id} (marked paid with the money of receipt #${payment.receiptId}` +
            `${moneyPaid.through.length === 0 ? '' : `, through ${moneyPaid.through.join(', ')}, voided since`}), ` +
            `which stays paid though ${goneText} of that money went back to the payer: collect ${goneText} for ` +
            `receipt #${moneyPaid.id} or void it, then resolve this`;
      await paymentsRepository.addToHoldReason(
        tx,
        payment.id,
        `${heldReason || 'held for review'}; ${refundWords}; ${stillText} is still held${paidWords}`,
      );
    }
    if (moneyPaid !== null && isHeldGoneInFull) {
      await paymentsRepository.addToHoldReason(
        tx,
        payment.id,
        `${heldReason || 'held for review'}; refunded in full at ${providerName} (${refundedText}` +
          `${lostMinor === 0n ? '' : `, with ${lostText} taken back by the lost dispute`}); its money paid receipt ` +
          `#${moneyPaid.id} (marked paid with the money of receipt #${payment.receiptId}` +
          `${moneyPaid.through.length === 0 ? '' : `, through ${moneyPaid.through.join(', ')}, voided since`}), which ` +
          `stays paid with money that went back to the payer: collect receipt #${moneyPaid.id} again or void it, ` +
          'then resolve this',
      );
      heldOutcome = 'review';
    }
    if (isHeldRefundedInFull) {
      await paymentsRepository.resolveAsRefundedByProvider(tx, payment.id, {
        reviewReason:
          `${heldReason || 'held for review'}; refunded in full at ${providerName} (${refundedText}` +
          `${lostMinor === 0n ? '' : `, with ${lostText} taken back by the lost dispute`})`,
        note: fullRefundNote,
        reviewedBy: `provider:${providerName}`,
        reviewedAt: at,
      });
    }
    // Dismissed (handled otherwise: applied to another receipt, settled outside the app): the
    // decision counted on this money, which has now gone back to the payer. A payment resolved
    // `refunded` was refunded as the admin said, and this is the provider confirming it.
    const isReopened = payment.status === 'resolved' && payment.reviewOutcome === 'dismissed';
    if (isReopened) {
      await reopenAfterResolution(
        tx,
        providerName,
        payment,
        `${refundedText} of the ${receivedText} received was refunded at ${providerName}`,
        'the payer got back money that was settled otherwise, so what it was applied to may be unpaid',
      );
      heldOutcome = 'review';
    }
    await appendAudit(
      tx,
      {
        ...providerAuditOf(providerName, payment),
        action: 'payment.refund',
        status: 'ok',
        details: {
          paymentId: payment.id,
          eventId: event.id,
          // This refund, in the currency the payment received.
          amountMinor: String(reported - before),
          currency: refunded.currency,
          // All of them so far as recorded: with the amount of a lost dispute, as its audit entry's.
          refundedTotalMinor: String(recorded.amountMinor),
          // Of that total, what went back: less the refunds already reported failed.
          ...(failedMinor === 0n ? {} : { returnedTotalMinor: String(returned + lostMinor) }),
          receivedMinor: String(received.amountMinor),
          receivedCurrency: received.currency,
          // The payment was resolved before: now held again, or (accepted) resolved by this refund.
          ...(isReopened || (payment.status === 'resolved' && receiptChange !== 'none')
            ? { previousOutcome: payment.reviewOutcome }
            : {}),
          // Held for review before, and resolved as refunded by this refund.
          ...(isHeldRefundedInFull ? { previousStatus: 'needs_review' } : {}),
          // Refunded in full or in part but held: its money paid this receipt, which stays paid.
          ...(moneyPaid === null ? {} : { moneyPaidReceiptId: moneyPaid.id }),
          // Refunded in full (unpaid by it, or held without paying it), but held: its dispute is still open.
          ...((receiptChange === 'unpaid' && isDisputeOpen) || isHeldWithDisputeGoneInFull
            ? { isDisputeOpen: true }
            : {}),
          receipt: receiptChange,
        },
      },
      at,
    );
    return { outcome: heldOutcome, paymentId: payment.id };
  }

  /**
   * A dispute (chargeback) the provider reports for a payment, inside the event's transaction:
   * recorded on the payment and audited; the payment that paid its receipt is held for an admin,
   * the receipt staying paid from it until they decide (docs/payments.md, "Disputes").
   */
  async function applyDispute(
    tx: Prisma.TransactionClient,
    providerName: string,
    payment: paymentsRepository.PaymentRow,
    event: PaymentEvent,
  ): Promise<{ outcome: WebhookOutcome; paymentId: number | null }> {
    // Nothing was taken, so nothing can be claimed back; and the same dispute told again adds nothing.
    if (!hasTakenMoney(payment)) return { outcome: 'ignored', paymentId: payment.id };
    const disputed = receivedOf(event);
    if (!event.dispute || disputed === null) {
      throw new BadRequestError(
        `Webhook rejected: the dispute of payment #${payment.id} says no dispute id, amount or currency.`,
      );
    }
    if (payment.externalDisputeId === event.dispute.id) return { outcome: 'ignored', paymentId: payment.id };
    // A dispute of nothing claims nothing back, as a refund total of nothing adds nothing. Recorded, it
    // held the payment (no online payment for its jobs meanwhile) and took the payment's one dispute, so
    // the payer's real dispute after it was refused as a second one. Its outcome then finds no dispute
    // of its id and is ignored too (applyDisputeClosed).
    if (disputed.amountMinor === 0n) return { outcome: 'ignored', paymentId: payment.id };
    if (payment.externalDisputeId !== null) {
      // The payment's columns hold one dispute: another one written over it replaced the first's id,
      // amount and time but kept its outcome, so a lost 4.00 read as a lost 2.00 and 2.00 refunded.
      // Refused and listed for finance, as a claim that does not fit its payment is.
      throw new ClaimBackRefusedError(
        `payment #${payment.id} already has dispute ${payment.externalDisputeId} (${payment.disputeStatus ?? 'open'}), ` +
          `and a payment records one dispute here, so dispute ${event.dispute.id} ` +
          `(${describeMinorUnits(disputed.amountMinor, disputed.currency)}) was not recorded: check it at ${providerName}`,
        { payment, claimed: disputed },
      );
    }
    refuseClaimBeyondReceived(payment, disputed, 'dispute');
    const at = now();
    await paymentsRepository.recordDispute(
      tx,
      payment.id,
      { externalDisputeId: event.dispute.id, disputed, reason: event.dispute.reason },
      at,
    );
    // Payment, then receipt: the lock order of every webhook and of a void.
    await paymentsRepository.lockReceiptForPayments(tx, payment.receiptId);
    const receipt = await receiptsRepository.findReceipt(tx, payment.receiptId);
    const paidTheReceipt = receipt?.status === 'paid' && paysItsReceipt(payment);
    let outcome: WebhookOutcome = 'ok';
    const received =
      payment.receivedMinor !== null && payment.receivedCurrency !== null
        ? describeMinorUnits(payment.receivedMinor, payment.receivedCurrency)
        : describeMinorUnits(payment.amountMinor, payment.currency);
    const disputeNote =
      `the payer disputed ${describeMinorUnits(disputed.amountMinor, disputed.currency)} of the ${received} received ` +
      `at ${providerName} (reason: ${event.dispute.reason ?? 'none given'})`;
    // Resolved already (refunded, dismissed): the bank claiming the money back is news to finance,
    // and a resolved payment is listed nowhere as needing attention. Held again, saying why.
    const isReopened = isResolvedApart(payment);
    if (isReopened) {
      await reopenAfterResolution(
        tx,
        providerName,
        payment,
        disputeNote,
        'the bank may take back money already returned or settled',
      );
      outcome = 'review';
    }
    if (!paidTheReceipt && payment.status === 'needs_review') {
      // Held for another reason (its receipt voided, a success after a cancel): the admin deciding
      // to refund it must know the bank may take the money back as well. /admin/payments says a
      // dispute nowhere but in the reason.
      await paymentsRepository.addToHoldReason(tx, payment.id, `${payment.reviewReason ?? 'held'}; ${disputeNote}`);
    }
    if (paidTheReceipt) {
      // Held already after a partial refund: the dispute is added to what the admin decides on.
      const reason =
        payment.status === 'needs_review' && payment.reviewReason
          ? `${payment.reviewReason}; ${disputeNote}`
          : `${disputeNote}; receipt #${payment.receiptId} stays paid until this is resolved${decisionNoteOf(payment)}`;
      await paymentsRepository.holdForDispute(tx, payment.id, reason);
      outcome = 'review';
    }
    await appendAudit(
      tx,
      {
        ...providerAuditOf(providerName, payment),
        action: 'payment.dispute',
        status: 'ok',
        details: {
          paymentId: payment.id,
          eventId: event.id,
          disputeId: event.dispute.id,
          amountMinor: String(disputed.amountMinor),
          currency: disputed.currency,
          reason: event.dispute.reason,
          // The payment was resolved before (refunded, dismissed): now held again.
          ...(isReopened ? { previousOutcome: payment.reviewOutcome } : {}),
          // What became of the receipt: still paid from the held payment, or left as it was.
          receipt: paidTheReceipt ? 'stays_paid' : 'none',
        },
      },
      at,
    );
    return { outcome, paymentId: payment.id };
  }

  /**
   * The outcome of a dispute the provider reports closed, inside the event's transaction
   * (docs/payments.md, "Disputes"). Only the dispute recorded on the payment, with its amount and
   * currency, is taken (another amount is refused, nothing stored); an unknown dispute, or one
   * already closed, changes nothing (`ignored`). Lost: the bank took the disputed amount back, so it
   * is recorded as refunded, and the receipt settled as a refund of it settles it. Won: recorded,
   * and a payment held for the dispute says so, for the admin to accept.
   */
  async function applyDisputeClosed(
    tx: Prisma.TransactionClient,
    providerName: string,
    payment: paymentsRepository.PaymentRow,
    event: PaymentEvent,
  ): Promise<{ outcome: WebhookOutcome; paymentId: number | null }> {
    const disputed = receivedOf(event);
    const status = event.dispute?.status;
    if (!event.dispute || disputed === null || status === undefined) {
      throw new BadRequestError(
        `Webhook rejected: the closed dispute of payment #${payment.id} says no dispute id, outcome, amount or currency.`,
      );
    }
    // Resolved before this event: its audit entry names the decision the outcome undoes, if any.
    const wasResolvedAs = payment.status === 'resolved' ? payment.reviewOutcome : null;
    // Providers do not promise the order of their events: an outcome that comes first records its
    // dispute as the dispute's own event would (that event, arriving later, then adds nothing).
    if (payment.externalDisputeId === null && hasTakenMoney(payment)) {
      await applyDispute(tx, providerName, payment, { ...event, type: 'payment.disputed' });
      const recorded = await paymentsRepository.lockById(tx, payment.id);
      if (!recorded) throw new ConflictError(`Payment #${payment.id} changed meanwhile; nothing was changed.`);
      payment = recorded;
    }
    if (payment.externalDisputeId !== event.dispute.id || payment.disputeStatus !== null)
      return { outcome: 'ignored', paymentId: payment.id };
    const disputedText = describeMinorUnits(disputed.amountMinor, disputed.currency);
    if (disputed.amountMinor !== payment.disputedMinor || disputed.currency !== payment.disputedCurrency) {
      throw new ClaimBackRefusedError(
        `the closed dispute ${event.dispute.id} of payment #${payment.id} is for ${disputedText}, but it was opened ` +
          `for ${describeMinorUnits(payment.disputedMinor, payment.disputedCurrency)}`,
        { payment, claimed: disputed },
      );
    }
    refuseClaimBeyondReceived(payment, disputed, 'dispute');
    const received = receivedBy(payment);
    const receivedText = describeMinorUnits(received.amountMinor, received.currency);
    const at = now();
    await paymentsRepository.recordDisputeClosed(tx, payment.id, status, at);
    let receiptChange: 'unpaid' | 'stays_paid' | 'none' = 'none';
    let outcome: WebhookOutcome = 'ok';
    let goneTotal: paymentsRepository.Received | null = null;
    let failedMinor = 0n;
    let returnedTotalMinor = 0n;
    if (status === 'lost') {
      // The bank took the amount back from the centre: for finance it is gone as a refund of it is,
      // on top of what was refunded already (the total is what every refund count reads).
      goneTotal = { amountMinor: (payment.refundedMinor ?? 0n) + disputed.amountMinor, currency: disputed.currency };
      // A refund that failed stays in that total (flagged, not reversed) but took nothing back: the
      // money the bank took is checked, and settles the receipt, on top of what actually went back.
      failedMinor = await paymentsRepository.sumFailedRefundMinor(tx, payment.id);
      // One told before any report of its refund is not in the refunded total: nothing to take out.
      const uncountedMinor = await paymentsRepository.sumFailedRefundMinor(tx, payment.id, {
        isInReportedTotal: false,
      });
      returnedTotalMinor =
        (returnedMinorOf(payment.refundedMinor, failedMinor, 0n, uncountedMinor) ?? 0n) + disputed.amountMinor;
      refuseClaimBeyondReceived(
        payment,
        { amountMinor: returnedTotalMinor, currency: disputed.currency },
        'dispute',
        'with its refunds',
      );
      const lostNote = `the dispute was lost at ${providerName}: ${disputedText} of the ${receivedText} received was taken back`;
      ({ receiptChange, outcome } = await recordMoneyGone(
        tx,
        providerName,
        payment,
        goneTotal,
        at,
        {
          fullReason: `${lostNote}; receipt #${payment.receiptId} is unpaid again${decisionNoteOf(payment)}`,
          fullNote: `${providerName} reported dispute ${event.dispute.id} lost (event ${event.id})`,
          partReason:
            payment.status === 'needs_review' && payment.reviewReason
              ? `${payment.reviewReason}; ${lostNote}`
              : `${lostNote}; receipt #${payment.receiptId} stays paid until this is resolved${decisionNoteOf(payment)}`,
        },
        returnedTotalMinor,
      ));
      // Held without paying its receipt (after a refund in full that failed): the reason says the
      // bank took the money, so the admin does not mark the receipt paid from it.
      if (receiptChange === 'none' && payment.status === 'needs_review') {
        await paymentsRepository.addToHoldReason(tx, payment.id, `${payment.reviewReason ?? 'held'}; ${lostNote}`);
      }
      // Resolved (refunded, dismissed): the bank took money finance had returned or settled already.
      if (receiptChange === 'none' && isResolvedApart(payment)) {
        await reopenAfterResolution(
          tx,
          providerName,
          payment,
          lostNote,
          'the bank took that money back from the centre, though it was already returned or settled',
        );
        outcome = 'review';
      }
    } else if (isResolvedApart(payment)) {
      // Resolved (refunded, dismissed) while the dispute was open: finance may have counted this
      // money as lost or returned; the bank takes none of it.
      await reopenAfterResolution(
        tx,
        providerName,
        payment,
        `the dispute was won at ${providerName}, the ${disputedText} stays`,
        'the bank takes none of it back, which the decision may not have counted on',
      );
      outcome = 'review';
    } else if (payment.status === 'needs_review' && payment.holdsPaidReceipt) {
      // Still held for the admin, who decides; the won dispute is what they accept it on.
      await paymentsRepository.lockReceiptForPayments(tx, payment.receiptId);
      await paymentsRepository.holdForDispute(
        tx,
        payment.id,
        `${payment.reviewReason ?? ''}; the dispute was won at ${providerName}, the ${disputedText} stays: ` +
          `accept this payment to keep receipt #${payment.receiptId} paid`,
      );
      receiptChange = 'stays_paid';
      outcome = 'review';
    } else if (payment.status === 'needs_review') {
      // Held for another reason, whose reason named the dispute: it must not read as still open.
      await paymentsRepository.addToHoldReason(
        tx,
        payment.id,
        `${payment.reviewReason ?? 'held'}; the dispute was won at ${providerName}, the ${disputedText} stays`,
      );
    }
    await appendAudit(
      tx,
      {
        ...providerAuditOf(providerName, payment),
        action: 'payment.dispute_closed',
        status: 'ok',
        details: {
          paymentId: payment.id,
          eventId: event.id,
          disputeId: event.dispute.id,
          disputeStatus: status,
          amountMinor: String(disputed.amountMinor),
          currency: disputed.currency,
          ...(goneTotal ? { refundedTotalMinor: String(goneTotal.amountMinor) } : {}),
          // Of that total, what went back: less the refunds reported failed.
          ...(failedMinor === 0n ? {} : { returnedTotalMinor: String(returnedTotalMinor) }),
          receivedMinor: String(received.amountMinor),
          receivedCurrency: received.currency,
          // The payment was resolved before: now held again, or (accepted) unpaid by the loss.
          ...(wasResolvedAs !== null && (outcome === 'review' || receiptChange !== 'none')
            ? { previousOutcome: wasResolvedAs }
            : {}),
          receipt: receiptChange,
        },
      },
      at,
    );
    return { outcome, paymentId: payment.id };
  }

  /**
   * A refund the provider reported, then reported failed or canceled (docs/payments.md, "A refund
   * that failed"), inside the event's transaction: the money was not returned, so finance must
   * decide again. The failure is recorded once per refund id and audited, and the payment is held
   * for review with a message saying so; the refunded amount stays what the provider reported (it
   * may count this refund or not, depending on what arrived before), and no receipt changes by
   * itself: a receipt a full refund unpaid stays pending, but the hold stops it being paid online
   * again, so its jobs are not paid for twice.
   */
  async function applyRefundFailed(
    tx: Prisma.TransactionClient,
    providerName: string,
    payment: paymentsRepository.PaymentRow,
    event: PaymentEvent,
  ): Promise<{ outcome: WebhookOutcome; paymentId: number | null }> {
    const failed = receivedOf(event);
    if (!event.refund || failed === null) {
      throw new BadRequestError(
        `Webhook rejected: the failed refund of payment #${payment.id} says no refund id, amount or currency.`,
      );
    }
    // Nothing was taken, so no refund of it can have failed.
    if (!hasTakenMoney(payment)) return { outcome: 'ignored', paymentId: payment.id };
    // A refund of nothing returned nothing, so its failure leaves nothing with the centre, as a dispute
    // of nothing claims nothing (applyDispute). Recorded, it held the payment for money that is not
    // there, and a receipt refunded in full could not be paid online again meanwhile.
    if (failed.amountMinor === 0n) return { outcome: 'ignored', paymentId: payment.id };
    refuseClaimBeyondReceived(payment, failed, 'failed refund');
    const at = now();
    // Reported already when the refunds the provider's last total counted (the recorded total less
    // the lost dispute and the failures it leaves out since) cover it; else its report is still to
    // come, and will count it (applyRefund).
    const standingMinor =
      (payment.refundedMinor ?? 0n) -
      lostDisputeMinorOf(payment) -
      (await paymentsRepository.sumFailedRefundMinor(tx, payment.id, { isInReportedTotal: true }));
    const isNew = await paymentsRepository.recordFailedRefund(tx, {
      provider: providerName,
      externalRefundId: event.refund.id,
      paymentId: payment.id,
      failed,
      status: event.refund.status,
      failureReason: event.refund.failureReason,
      externalEventId: event.id,
      failedAt: at,
      isInReportedTotal: standingMinor >= failed.amountMinor,
      failureOccurredAt: event.occurredAt ?? null,
    });
    if (!isNew) {
      // Refund ids are the provider's, one per refund: a failure recorded under this one for another
      // payment is another refund under a used id (a second demo payment's failure sent with the
      // docs' refund_id), not this one told again. Answered "ignored", it was read as taken, and
      // this payment's money was never shown as still with the centre.
      const recordedFor = await paymentsRepository.findPaymentOfFailedRefund(tx, providerName, event.refund.id);
      if (recordedFor !== null && recordedFor !== payment.id) {
        throw new ConflictError(
          `Webhook rejected: the refund ${event.refund.id} was already reported failed for payment #${recordedFor}, ` +
            `and this delivery says it was a refund of payment #${payment.id}; a refund id names one refund, so this ` +
            `failure was not applied. Send it with the refund_id of payment #${payment.id}'s refund; nothing was changed.`,
        );
      }
      // The same refund's failure told again by another event.
      return { outcome: 'ignored', paymentId: payment.id };
    }
    // A dispute lost in full took back all the payment received, so a refund of it tried since
    // (a provider refuses one) returned nothing and leaves nothing with the centre: holding the
    // payment would ask finance to decide on money that is not there, and accepting is refused.
    const failureDetails = {
      paymentId: payment.id,
      eventId: event.id,
      refundId: event.refund.id,
      refundStatus: event.refund.status,
      failureReason: event.refund.failureReason,
      amountMinor: String(failed.amountMinor),
      currency: failed.currency,
    };
    if (lostDisputeMinorOf(payment) >= receivedBy(payment).amountMinor) {
      await appendAudit(
        tx,
        {
          ...providerAuditOf(providerName, payment),
          action: 'payment.refund_failed',
          status: 'ok',
          details: { ...failureDetails, isAllTakenByDispute: true, receipt: 'none' },
        },
        at,
      );
      return { outcome: 'ok', paymentId: payment.id };
    }
    const failedText = describeMinorUnits(failed.amountMinor, failed.currency);
    const how = event.refund.status === 'failed' ? 'failed' : 'was canceled';
    const why = event.refund.failureReason ? ` (${event.refund.failureReason})` : '';
    const failureNote =
      `the refund ${event.refund.id} of ${failedText} ${how} at ${providerName}${why}: ` +
      'the money was not returned to the payer and is still with the centre';
    // Payment, then receipt: the lock order of every webhook and of a void.
    await paymentsRepository.lockReceiptForPayments(tx, payment.receiptId);
    const receipt = await receiptsRepository.findReceipt(tx, payment.receiptId);
    const receiptStatus = receipt?.status ?? 'gone';
    // Resolved by an admin: the hold below clears that decision; the reason keeps it (decisionNoteOf).
    const decisionNote = decisionNoteOf(payment);
    let receiptChange: 'stays_paid' | 'none' = 'none';
    if (payment.status === 'needs_review') {
      // Held already (a partial refund, a dispute, a void): the failure is added to what the admin decides on.
      await paymentsRepository.addToHoldReason(tx, payment.id, `${payment.reviewReason ?? 'held'}; ${failureNote}`);
      if (payment.holdsPaidReceipt) receiptChange = 'stays_paid';
    } else if (receiptStatus === 'paid' && paysItsReceipt(payment)) {
      // Still paying its receipt (a partial refund, accepted or not yet): held again as after a partial refund.
      await paymentsRepository.holdForPartialRefund(
        tx,
        payment.id,
        `${failureNote}; receipt #${payment.receiptId} stays paid until this is resolved${decisionNote}`,
      );
      receiptChange = 'stays_paid';
    } else {
      // A full refund unpaid the receipt (or an admin resolved the payment): the money is back with
      // the centre but pays nothing. Held, the receipt cannot be paid online meanwhile.
      const receiptNote =
        receiptStatus === 'pending'
          ? `receipt #${payment.receiptId} was unpaid by that refund and is pending: accept this payment to mark it ` +
            `paid from this money, or refund it again at ${providerName} and resolve as refunded`
          : receiptStatus === 'paid'
            ? `receipt #${payment.receiptId} was paid again since, so the payer may have paid twice: refund this ` +
              `payment again at ${providerName} and resolve as refunded, or resolve as dismissed with what was done`
            : `receipt #${payment.receiptId} is ${receiptStatus}: refund this payment again at ${providerName} and ` +
              'resolve as refunded, or resolve as dismissed with what was done';
      await paymentsRepository.holdAfterFailedRefund(tx, payment.id, `${failureNote}; ${receiptNote}${decisionNote}`);
    }
    await appendAudit(
      tx,
      {
        ...providerAuditOf(providerName, payment),
        action: 'payment.refund_failed',
        status: 'ok',
        details: {
          ...failureDetails,
          // What is recorded as refunded so far, left as the provider reported it.
          ...(payment.refundedMinor === null ? {} : { refundedTotalMinor: String(payment.refundedMinor) }),
          // The payment was resolved before (by a full refund, or an admin): now held again.
          ...(payment.status === 'resolved' ? { previousOutcome: payment.reviewOutcome } : {}),
          receipt: receiptChange,
        },
      },
      at,
    );
    return { outcome: 'review', paymentId: payment.id };
  }

  /**
   * Applies a verified event to its payment and receipt; runs inside the event's transaction.
   * `checkoutOfIntent`: the provider's checkout that took the money the event names, when no
   * payment had recorded that money before the transaction (checkoutOfUnknownIntent).
   */
  async function applyEvent(
    tx: Prisma.TransactionClient,
    providerName: string,
    event: PaymentEvent,
    checkoutOfIntent: string | null,
    isCheckoutChoice = false,
  ): Promise<{ outcome: WebhookOutcome; paymentId: number | null }> {
    if (!(KNOWN_EVENT_TYPES as readonly string[]).includes(event.type)) return { outcome: 'ignored', paymentId: null };
    // A refund may name only the money taken (Stripe's charge names its PaymentIntent).
    let payment = event.externalPaymentId
      ? await paymentsRepository.lockByExternalId(tx, providerName, event.externalPaymentId)
      : event.externalIntentId
        ? await paymentsRepository.lockByExternalIntentId(tx, providerName, event.externalIntentId)
        : null;
    // Not recorded on any payment, but the provider says which of its checkouts took that money:
    // the payment of that checkout, if this app opened it, whose success has not been applied yet
    // (one that recorded other money is not this money's). Its success may have been applied while
    // this waited for the payment's lock, recording this very money: that is still its payment. It
    // was read as other money, and the refund or dispute answered 200 `unknown_payment`, never sent again.
    let isFoundByCheckout = false;
    if (!payment && checkoutOfIntent !== null) {
      const ofCheckout = await paymentsRepository.lockByExternalId(tx, providerName, checkoutOfIntent);
      isFoundByCheckout =
        ofCheckout !== null &&
        (ofCheckout.externalIntentId === null || ofCheckout.externalIntentId === event.externalIntentId);
      if (isFoundByCheckout) payment = ofCheckout;
    }
    if (!payment) return { outcome: 'unknown_payment', paymentId: null };
    // The payer's choice at the dummy checkout, under the payment's lock: another tab's may have ended it.
    if (isCheckoutChoice) refuseChoiceOnEndedPayment(payment.status);
    const audit = providerAuditOf(providerName, payment);
    // Providers do not promise the order of their events: a refund or dispute of a payment whose
    // success has not arrived yet was answered `ignored` (200, so never sent again), and the success
    // arriving next paid the receipt with money that had gone back. Refused unstored, so the
    // provider's retry, once the success is in, is applied. So is a claim on a failed or canceled
    // payment when the provider names its checkout (the dummy's external_payment_id, or Stripe's
    // session found by its PaymentIntent): the provider says that checkout took money, so its
    // success is due and will be held for review. Answered `ignored`, a refund of it was never sent
    // again, and the held payment showed no refund: finance refunded the money a second time.
    const isCheckoutNamed = isFoundByCheckout || event.externalPaymentId !== null;
    const isAwaitingSuccess = payment.status === 'pending' || (isCheckoutNamed && !hasTakenMoney(payment));
    if (isAwaitingSuccess && CLAIM_BACK_EVENTS[event.type] !== undefined) {
      throw new ConflictError(
        `Webhook rejected: payment #${payment.id} has not been reported paid yet, so ${CLAIM_BACK_EVENTS[event.type]} ` +
          'cannot be applied before its success; nothing was changed. Send it again once the success has arrived.',
      );
    }
    if (isFoundByCheckout && payment.externalIntentId === null && event.externalIntentId) {
      // Its success named no PaymentIntent (a release from 2026-12-02 or earlier did not record it):
      // kept now that the provider named it, so the next refund or dispute of this money is found
      // here, and not refused while the provider cannot be asked.
      await paymentsRepository.recordExternalIntentId(tx, payment.id, event.externalIntentId);
    }
    if (event.type === 'payment.refunded') return applyRefund(tx, providerName, payment, event);
    if (event.type === 'payment.disputed') return applyDispute(tx, providerName, payment, event);
    if (event.type === 'payment.dispute_closed') return applyDisputeClosed(tx, providerName, payment, event);
    if (event.type === 'payment.refund_failed') return applyRefundFailed(tx, providerName, payment, event);

    if (event.type !== 'payment.succeeded') {
      // A late failure or cancel never undoes a final state.
      if (payment.status !== 'pending') return { outcome: 'ignored', paymentId: payment.id };
      await paymentsRepository.setStatus(tx, payment.id, event.type === 'payment.failed' ? 'failed' : 'canceled');
      await appendAudit(
        tx,
        { ...audit, action: event.type, status: 'ok', details: { paymentId: payment.id, eventId: event.id } },
        now(),
      );
      return { outcome: 'ok', paymentId: payment.id };
    }

    // Another success for a paid payment is the same money told twice; one already held stays held
    // once, and one an admin resolved stays as they decided.
    if (payment.status === 'succeeded' || payment.status === 'resolved')
      return { outcome: 'ignored', paymentId: payment.id };
    if (payment.status === 'needs_review') return { outcome: 'review', paymentId: payment.id };
    const mismatch = describeMismatch(event, payment);
    if (payment.status === 'failed' || payment.status === 'canceled') {
      // The provider took money we had given up on: the receipt is left as it is (pending, or
      // paid by a later attempt), and an admin checks with the provider before marking or refunding.
      // Its status is read under its lock (payment, then receipt, as every webhook takes them), which
      // holding takes anyway: read before it, a mark paid or void committing meanwhile was missed, and
      // the reason did not say the receipt was paid or void already.
      await paymentsRepository.lockReceiptForPayments(tx, payment.receiptId);
      const receipt = await receiptsRepository.findReceipt(tx, payment.receiptId);
      const receiptNote =
        receipt?.status === 'pending'
          ? undefined
          : `receipt #${payment.receiptId} was already ${receipt?.status ?? 'gone'}`;
      const ended = payment.status === 'failed' ? 'it failed' : 'it was canceled';
      const reason = [`payment succeeded after ${ended}`, mismatch, receiptNote].filter(Boolean).join('; ');
      await holdForReview(tx, payment, event, 'payment.review', reason, mismatch !== undefined);
      return { outcome: 'review', paymentId: payment.id };
    }
    // A checkout opened before another payment of this receipt was held can still take the
    // money at the provider; paying the receipt with it would count the same bill twice, so it
    // waits for the same review. Checked under the receipt's lock, which holding takes too.
    await paymentsRepository.lockReceiptForPayments(tx, payment.receiptId);
    if (await paymentsRepository.hasPaymentInReview(tx, payment.receiptId)) {
      const reason = [`another payment of receipt #${payment.receiptId} is held for review`, mismatch]
        .filter(Boolean)
        .join('; ');
      await holdForReview(tx, payment, event, 'payment.review', reason, mismatch !== undefined);
      return { outcome: 'review', paymentId: payment.id };
    }
    // A receipt voided with its money held (a success paid in its checkout left open, or the
    // payment that had paid it) had these jobs billed again on this one. A checkout opened here
    // before that hold passed the start's check; paying this receipt now would pay for the same
    // jobs twice, so this money waits for the same admin, who decides which pays them. Only read
    // under this receipt's lock: taking the other receipt's lock too would add an order the void
    // (payments, then receipt) does not follow. A hold of the other payment committing meanwhile
    // is not seen; that is as if this success came first, and the other stays held as it would.
    const sameJobsHeld = await paymentsRepository.findHeldPaymentForSameJobs(tx, payment.receiptId);
    if (sameJobsHeld) {
      const sharedJobs = await paymentsRepository.countJobsBilledByBoth(tx, payment.receiptId, sameJobsHeld.receiptId);
      const receipt = await receiptsRepository.findReceipt(tx, payment.receiptId);
      const receiptNote =
        receipt?.status === 'pending'
          ? undefined
          : `receipt #${payment.receiptId} was already ${receipt?.status ?? 'gone'}`;
      const reason = [
        `receipt #${sameJobsHeld.receiptId}, which billed ${formatCount(sharedJobs)} of the same jobs, ` +
          `has payment #${sameJobsHeld.id} held for review; an admin decides which pays them`,
        mismatch,
        receiptNote,
      ]
        .filter(Boolean)
        .join('; ');
      await holdForReview(tx, payment, event, 'payment.review', reason, mismatch !== undefined);
      return { outcome: 'review', paymentId: payment.id };
    }
    if (mismatch) {
      await holdForReview(tx, payment, event, 'payment.mismatch', mismatch, true);
      return { outcome: 'mismatch', paymentId: payment.id };
    }
    // One moment for the receipt and the payment: paid.csv lists the payment by it once a refund
    // in full has unpaid the receipt, in the same period and at the same paid_at as before.
    const paidAt = now();
    const isPaid = await receiptsRepository.transitionReceipt(tx, payment.receiptId, ['pending'], {
      status: 'paid',
      paidAt,
      paymentMethod: providerName,
      txRef: event.externalPaymentId,
    });
    if (!isPaid) {
      // Paid by hand meanwhile, or voided: the money arrived anyway, so someone must look.
      const receipt = await receiptsRepository.findReceipt(tx, payment.receiptId);
      const reason = `money received but receipt #${payment.receiptId} was already ${receipt?.status ?? 'gone'}`;
      await holdForReview(tx, payment, event, 'payment.review', reason, false);
      return { outcome: 'review', paymentId: payment.id };
    }
    await paymentsRepository.markSucceeded(
      tx,
      payment.id,
      receivedMoneyOf(event),
      event.externalIntentId ?? null,
      paidAt,
    );
    await appendAudit(
      tx,
      {
        ...audit,
        action: 'receipt.paid_online',
        status: 'ok',
        details: {
          paymentId: payment.id,
          eventId: event.id,
          txRef: event.externalPaymentId,
          amountMinor: String(payment.amountMinor),
          currency: payment.currency,
        },
      },
      now(),
    );
    return { outcome: 'ok', paymentId: payment.id };
  }

  /**
   * Keeps a refused refund or dispute for finance (/admin/payments), once per provider event id,
   * with a `payment.claim_refused` audit entry the first time. Written after the event's
   * transaction rolled back, so nothing of the refused event itself is: the money, the receipt and
   * the deliveries list stay as they were, and the answer stays 409 (the provider shows it, and
   * retries; each retry only counts a delivery). A failure here is logged and does not change the answer.
   */
  async function recordRefusedClaim(providerName: string, event: PaymentEvent, refusal: ClaimBackRefusedError) {
    const { payment, claimed } = refusal.claim;
    const at = now();
    try {
      await prisma.$transaction(async (tx) => {
        const deliveries = await paymentsRepository.recordRefusedClaim(tx, {
          provider: providerName,
          externalEventId: event.id,
          eventType: event.type,
          paymentId: payment.id,
          claimed,
          reason: refusal.reason,
          rawPayload: event.raw,
          receivedAt: at,
        });
        if (deliveries > 1) return;
        await appendAudit(
          tx,
          {
            ...providerAuditOf(providerName, payment),
            action: 'payment.claim_refused',
            status: 'failed',
            details: {
              paymentId: payment.id,
              eventId: event.id,
              eventType: event.type,
              ...(claimed ? { claimedMinor: String(claimed.amountMinor), claimedCurrency: claimed.currency } : {}),
              reason: refusal.reason,
            },
          },
          at,
        );
      });
    } catch (error) {
      logger.error(
        { err: error, provider: providerName, eventId: event.id, paymentId: payment.id },
        'refused refund or dispute could not be recorded for the payments page',
      );
    }
  }

  /**
   * A redelivery carries the event its id was first received with. Another event under that id (a
   * refund of another amount, another payment) is not applied, since the id has been used, and
   * must not be answered as a duplicate either: "duplicate" told its sender that it was taken.
   * Compared as the provider reads it, not byte for byte: a provider may word a redelivery
   * differently (Stripe's pending_webhooks).
   */
  async function refuseOtherEventUnderSameId(tx: Prisma.TransactionClient, from: PaymentProvider, event: PaymentEvent) {
    const storedBody = await paymentsRepository.findEventBody(tx, from.name, event.id);
    if (storedBody === null || storedBody === event.raw || !from.readEvent) return;
    let stored: PaymentEvent | undefined;
    try {
      stored = from.readEvent(Buffer.from(storedBody, 'utf8'));
    } catch {
      // Stored before this app read such bodies; nothing to compare with.
      return;
    }
    if (isSameEvent(stored, event)) return;
    const [was, says] = describeTwoEvents(stored, event);
    throw new ConflictError(
      `Webhook rejected: event ${event.id} was already received as ${was}, and this delivery ` +
        `says ${says}; an event id names one event, so this one was not applied. ` +
        'Send it with an event id of its own; nothing was changed.',
    );
  }

  /**
   * For a refund or dispute that names only the money taken (Stripe's PaymentIntent) when no payment
   * here has recorded it: the provider's checkout that took that money, or null when none did
   * (money this app never took). The app records the money from the checkout's success, and
   * providers do not promise order, so such an event may come first. Null without asking when there
   * is nothing to ask: another event, the money recorded already, a redelivery (a duplicate anyway).
   * The provider is asked outside the event's transaction, so a slow answer holds no row lock.
   */
  async function checkoutOfUnknownIntent(
    from: PaymentProvider,
    providerName: string,
    event: PaymentEvent,
  ): Promise<string | null> {
    const intent = event.externalIntentId;
    if (CLAIM_BACK_EVENTS[event.type] === undefined || event.externalPaymentId || !intent) return null;
    if (!from.findCheckoutOfIntent) return null;
    if (await paymentsRepository.hasExternalIntentId(prisma, providerName, intent)) return null;
    if (await paymentsRepository.hasEvent(prisma, providerName, event.id, event.type)) return null;
    try {
      return await from.findCheckoutOfIntent(intent);
    } catch (error) {
      if (!(error instanceof PaymentProviderError)) throw error;
      // Not knowing whose money it is, the event is not applied: the provider sends it again.
      const what = CLAIM_BACK_EVENTS[event.type]?.replace(/^its /, 'this ');
      throw new PaymentProviderError(
        `Webhook rejected: ${error.message.replace(/[\s.]+$/, '')}; no payment here has recorded ${intent} yet, ` +
          `so ${what} could not be matched to a payment; nothing was changed. Send it again.`,
      );
    }
  }

  /**
   * A webhook delivery: verified (bad signatures store nothing), recorded once per event id
   * (duplicates answer 200 and change nothing), then applied, all in one transaction.
   * `isCheckoutChoice`: the dummy checkout's own event for the payer's choice, refused (409, nothing
   * stored) if the payment has ended by the time the event holds its row.
   */
  async function handleWebhook(
    providerName: string,
    rawBody: Buffer,
    headers: IncomingHttpHeaders,
    options: { isCheckoutChoice?: boolean } = {},
  ): Promise<{ outcome: WebhookOutcome }> {
    const activeProvider = requireProvider();
    if (providerName !== activeProvider.name)
      throw new NotFoundError(`No payment provider "${providerName}" is configured.`);
    let event: PaymentEvent;
    try {
      event = await activeProvider.parseWebhook(rawBody, headers);
    } catch (error) {
      if (error instanceof WebhookSignatureError) count(providerName, 'unknown', 'bad_signature');
      if (error instanceof WebhookBodyError) count(providerName, 'unknown', 'error');
      if (error instanceof DisputeOutcomeAsDisputedError) {
        // Its sender must resend it as another event: the answer says so, and so does the log.
        logger.warn(
          { provider: providerName, reason: error.message },
          'webhook refused: a dispute outcome sent as payment.disputed',
        );
      }
      throw error;
    }
    try {
      // Checked once the signature holds, as the routes' middleware checks a form: the provider's
      // own text (a NUL, a lone surrogate such as "\ud800") cannot be stored, and failing inside
      // the query would answer 500, which a provider retries forever.
      const unstorable = unstorableTextIn([
        event.id,
        event.type,
        event.externalPaymentId,
        event.externalIntentId,
        event.currency,
        event.raw,
        // A dispute's or failed refund's own ids and reasons are stored too (a lone surrogate there
        // failed inside the query: 500, retried for days).
        event.dispute,
        event.refund,
      ]);
      if (unstorable !== undefined) throw new BadRequestError(unstorable);
      const checkoutOfIntent = await checkoutOfUnknownIntent(activeProvider, providerName, event);
      const result = await prisma.$transaction(async (tx) => {
        const eventRowId = await paymentsRepository.insertEventOnce(tx, {
          provider: providerName,
          externalEventId: event.id,
          type: event.type,
          rawPayload: event.raw,
        });
        if (eventRowId === null) {
          await refuseOtherEventUnderSameId(tx, activeProvider, event);
          return { outcome: 'duplicate' as const, paymentId: null };
        }
        const applied = await applyEvent(tx, providerName, event, checkoutOfIntent, options.isCheckoutChoice);
        await paymentsRepository.finishEvent(tx, eventRowId, applied.outcome, applied.paymentId);
        return applied;
      });
      count(providerName, event.type, result.outcome);
      if (result.outcome === 'ok' && event.type === 'payment.succeeded')
        metrics.receiptMarkedPaid.inc({ actor_type: 'provider' });
      if (result.outcome === 'mismatch' || result.outcome === 'review') {
        // Which payment waits on /admin/payments: the provider's event id alone had to be looked up.
        logger.warn(
          {
            provider: providerName,
            eventId: event.id,
            eventType: event.type,
            outcome: result.outcome,
            paymentId: result.paymentId,
          },
          'payment needs review',
        );
      }
      if (event.type === 'payment.refunded' && (result.outcome === 'unknown_payment' || result.outcome === 'ignored')) {
        // Money went back to a payer for something that paid no receipt here: finance may want to know.
        logger.warn(
          { provider: providerName, eventId: event.id, outcome: result.outcome, paymentId: result.paymentId },
          result.outcome === 'unknown_payment'
            ? 'refund for a payment this app does not know'
            : 'refund that changes nothing: the payment never received money, or the refund was already recorded',
        );
      }
      if (
        event.type === 'payment.dispute_closed' &&
        (result.outcome === 'unknown_payment' || result.outcome === 'ignored')
      ) {
        logger.warn(
          { provider: providerName, eventId: event.id, outcome: result.outcome, paymentId: result.paymentId },
          'dispute outcome that changes nothing: no such payment or dispute here, or its outcome was already recorded',
        );
      }
      return { outcome: result.outcome };
    } catch (error) {
      if (!(error instanceof CheckoutChoiceRefusedError)) count(providerName, event.type, 'error');
      if (error instanceof ClaimBackRefusedError) {
        const what = event.type.startsWith('payment.dispute') ? 'dispute refused' : 'refund refused';
        logger.warn({ provider: providerName, eventId: event.id, reason: error.message }, what);
        await recordRefusedClaim(providerName, event, error);
      }
      throw error;
    }
  }

  /** Whether all a payment received went back to the payer, by the provider, the bank or the billing team. */
  function isAllReturned(money: PaymentMoney | null, byBillingTeam: BillingTeamRefund | null): boolean {
    if (money?.received == null) return false;
    if (byBillingTeam !== null) return true;
    const { refunded, received } = money;
    return refunded !== null && refunded.currency === received.currency && refunded.amount.gte(received.amount);
  }

  /** What the payer sees after checkout: the receipt and its latest payment. */
  async function getStatus(username: string, receiptId: number) {
    const receipt = await requireOwnReceipt(username, receiptId);
    const [payment, isPaymentHeld, heldForSameJobs] = await Promise.all([
      paymentsRepository.latestPaymentOf(prisma, receiptId),
      paymentsRepository.hasPaymentInReview(prisma, receiptId),
      receipt.status === 'pending' ? paymentsRepository.findHeldPaymentForSameJobs(prisma, receiptId) : null,
    ]);
    // A start that never got its checkout will not move by itself: the page stops waiting and
    // offers to try again, which abandons it (startPayment).
    const isStartAbandoned = payment !== null && isAbandonedStart(payment, now());
    // No payment at all (the page opened from history or a bookmark): nothing is on its way, so
    // the page says so instead of waiting for a provider that was never asked.
    const isFinal =
      receipt.status !== 'pending' || payment === null || payment.status !== 'pending' || isStartAbandoned;
    // Its refunds counted with those that failed since (money that stayed), read once one was reported.
    const refundedPayment =
      payment !== null && payment.refundedMinor !== null
        ? ((await paymentsRepository.findRefundedPaymentsOfReceipts(prisma, [receiptId])).find(
            (row) => row.id === payment.id,
          ) ?? payment)
        : payment;
    const paymentMoney = refundedPayment === null ? null : paymentMoneyOf(refundedPayment);
    const billingTeamRefund = refundedPayment === null ? null : billingTeamRefundOf(refundedPayment);
    return {
      receipt,
      payment,
      /**
       * What the status page shows, in one word list: its script (payment-wait.js) asks for it
       * (getWaitState) while it waits, and loads the page again only once it differs.
       */
      waitState: [
        receipt.status,
        payment?.id ?? 'none',
        payment?.status ?? 'none',
        payment?.checkoutUrl ? 'checkout' : 'no-checkout',
        isPaymentHeld ? 'held' : 'not-held',
        heldForSameJobs === null ? 'jobs-free' : 'jobs-held',
        isFinal ? 'final' : 'waiting',
      ].join(' '),
      /** The latest payment's money: what arrived, when the provider said, is shown beside the total. */
      paymentMoney,
      /** The latest payment's money, when the billing team refunded it (a voided receipt says so). */
      billingTeamRefund,
      /** Of that refund, what the payer's bank took back by a lost dispute: said as such, not as refunded. */
      billingTeamTakenBack: billingTeamTakenBackOf(billingTeamRefund, paymentMoney, payment?.disputeClosedAt ?? null),
      /**
       * All the latest payment received went back (refunded, taken back by a lost dispute, or refunded by
       * the billing team): the page no longer says it was received, as if the receipt were paid short by it.
       */
      isReceivedAllReturned: isAllReturned(paymentMoney, billingTeamRefund),
      isFinal,
      isPaymentHeld,
      isStartAbandoned,
      hasAmountDue: hasAmountDue(receipt),
      /** Why it cannot be paid online now: a payment for some of its jobs is held (startPayment refuses). */
      sameJobsHeldMessage: heldForSameJobs === null ? null : heldForSameJobsMessage(heldPaymentOf(heldForSameJobs)),
    };
  }

  /**
   * The status page's state while it waits for the provider (GET /payments/receipt/:id/status): the
   * page's script compares `state` with the one the page was drawn with, and loads it again once
   * they differ, instead of reloading every 2 s.
   */
  async function getWaitState(username: string, receiptId: number) {
    const { receipt, payment, isFinal, waitState } = await getStatus(username, receiptId);
    return {
      receiptId: receipt.id,
      receiptStatus: receipt.status,
      paymentStatus: payment?.status ?? null,
      isFinal,
      state: waitState,
    };
  }

  /** Throws NotFoundError unless `receiptId` is a receipt of `username`'s (what its pages show first). */
  async function assertOwnReceipt(username: string, receiptId: number): Promise<void> {
    await requireOwnReceipt(username, receiptId);
  }

  /**
   * The dummy provider's hosted page: the payment, for its owner only. Another user's checkout is "No
   * such checkout." as one that is not there: its "Receipt #7 was not found." told that the address
   * was a checkout, and of which receipt.
   */
  async function getDummyCheckout(username: string, externalPaymentId: string) {
    if (provider?.name !== 'dummy') throw new NotFoundError('The dummy payment provider is not enabled.');
    const payment = await paymentsRepository.findByExternalId(prisma, 'dummy', externalPaymentId);
    const isOwn = payment && (await receiptsRepository.findReceipt(prisma, payment.receiptId, username)) !== undefined;
    if (!payment || !isOwn) throw new NotFoundError('No such checkout.');
    return payment;
  }

  /**
   * The dummy provider's answer to the payer's choice: a webhook signed exactly as a
   * provider signs it, delivered through the same verification and processing path.
   */
  async function completeDummyCheckout(username: string, externalPaymentId: string, choice: 'pay' | 'fail' | 'cancel') {
    const payment = await getDummyCheckout(username, externalPaymentId);
    // A hosted checkout takes one choice. A page left open (a second tab, Back) must not send
    // another event: Pay on a canceled or held payment would be money taken after it ended.
    // Late events from the provider itself still go through the webhook, which holds them.
    refuseChoiceOnEndedPayment(payment.status);
    const eventType = { pay: 'payment.succeeded', fail: 'payment.failed', cancel: 'payment.canceled' }[choice];
    const body = JSON.stringify({
      event_id: `dummy_evt_${payment.id}_${choice}_${now().getTime()}`,
      event_type: eventType,
      external_payment_id: externalPaymentId,
      amount_cents: Number(payment.amountMinor),
      currency: payment.currency,
    });
    // Checked again once the event holds the payment's row: Cancel and Pay pressed in two tabs at
    // once both passed the check above, and the second choice's event was held for review as a
    // provider's late success is, where one after the first committed is refused.
    const { outcome } = await handleWebhook(
      'dummy',
      Buffer.from(body),
      {
        'content-type': 'application/json',
        'x-dummy-signature': signDummyWebhook(body, deps.config.webhookSecret),
      },
      { isCheckoutChoice: true },
    );
    if (outcome === 'error') throw new BadRequestError('The payment could not be recorded.');
    return { receiptId: payment.receiptId, outcome };
  }

  /**
   * What /admin/payments refuses in its cursor, a 400 for both at once and a 404 for a payment that
   * is not there, and the place it pages from. Alone, for a HEAD (a link checker, `curl -I`), which
   * answers the status and headers of its GET and used to read every list of the page for nothing.
   */
  async function checkAdminPage(from: TPaymentsPageQuery = {}) {
    if (from.older !== undefined && from.newer !== undefined) {
      throw new BadRequestError('Give older or newer, not both.');
    }
    const fromPayment =
      from.older !== undefined
        ? { direction: 'older' as const, paymentId: from.older }
        : from.newer !== undefined
          ? { direction: 'newer' as const, paymentId: from.newer }
          : undefined;
    if (fromPayment && !(await paymentsRepository.paymentExists(prisma, fromPayment.paymentId))) {
      throw new NotFoundError(`There is no payment #${fromPayment.paymentId} to page from.`);
    }
    return fromPayment;
  }

  /**
   * /admin/payments: the payments held for review, one page of every payment (newest first,
   * `older` or `newer` than a payment's place: keyset paging on created_at, id) and the latest
   * webhook deliveries.
   */
  async function listForAdmin(from: TPaymentsPageQuery = {}) {
    const fromPayment = await checkAdminPage(from);
    // One more than a page says whether there is a page beyond it.
    let rows = await paymentsRepository.listPaymentsPageForAdmin(prisma, fromPayment, ADMIN_LIST_LIMIT + 1);
    let hasOlder: boolean;
    let hasNewer: boolean;
    if (fromPayment?.direction === 'newer') {
      hasNewer = rows.length > ADMIN_LIST_LIMIT;
      // Back at the newest: the first page itself, full, rather than the few left above the cursor.
      if (!hasNewer) return listForAdmin();
      rows = rows.slice(0, ADMIN_LIST_LIMIT).reverse();
      hasOlder = true;
    } else {
      hasOlder = rows.length > ADMIN_LIST_LIMIT;
      rows = rows.slice(0, ADMIN_LIST_LIMIT);
      // The payment paged from is newer than all of these.
      hasNewer = fromPayment !== undefined;
    }
    const [held, events, needsReview, refusedClaims, refusedClaimCount] = await Promise.all([
      paymentsRepository.listHeldPaymentsForAdmin(prisma, ADMIN_LIST_LIMIT),
      paymentsRepository.listEventsForAdmin(prisma, ADMIN_LIST_LIMIT),
      paymentsRepository.countPaymentsInReview(prisma),
      paymentsRepository.listRefusedClaimsForAdmin(prisma, ADMIN_LIST_LIMIT),
      paymentsRepository.countRefusedClaims(prisma),
    ]);
    const withMoney = (payment: paymentsRepository.AdminPaymentRow) => ({
      ...payment,
      ...paymentMoneyOf(payment),
      // Resolved as refunded by the billing team: all it received went back, part of it perhaps at the
      // provider first. The list showed only the provider's part (or nothing), where the receipt's
      // page, its JSON and paid.csv count all of it, so one payment read as two refunds.
      billingTeamRefund: billingTeamRefundOf(payment),
    });
    return {
      heldForReview: held.map(withMoney),
      payments: rows.map(withMoney),
      events,
      needsReview,
      refusedClaims: refusedClaims.map((claim) => ({
        ...claim,
        what: REFUSED_CLAIM_KINDS[claim.eventType] ?? claim.eventType,
        claimedText:
          claim.claimedMinor === null || claim.claimedCurrency === null
            ? 'no amount'
            : describeMinorUnits(claim.claimedMinor, claim.claimedCurrency),
      })),
      refusedClaimCount,
      paymentsPage: {
        // Past the oldest payment (an edited or saved link) there is no row to page from: back to the newest.
        newerLink: hasNewer ? (rows[0] ? `/admin/payments?newer=${rows[0].id}` : '/admin/payments') : undefined,
        olderLink: hasOlder && rows.length > 0 ? `/admin/payments?older=${rows[rows.length - 1]?.id}` : undefined,
        isFirst: fromPayment === undefined,
      },
    };
  }

  /**
   * Refuses a resolution that the payment's state decides, whatever the form says: no such payment
   * (404), resolved already or never held (409).
   */
  function refuseUnlessHeld(
    paymentId: number,
    payment: paymentsRepository.PaymentRow | null,
  ): asserts payment is paymentsRepository.PaymentRow {
    if (!payment) throw notFoundById('Payment', paymentId);
    if (payment.status === 'resolved') {
      throw new ConflictError(
        `Payment #${paymentId} was already resolved (${payment.reviewOutcome}) by ${payment.reviewedBy} on ` +
          `${payment.reviewedAt ? formatLocalDateTime(payment.reviewedAt, deps.timeZone) : 'an unknown date'}; ` +
          'nothing was changed.',
      );
    }
    if (payment.status !== 'needs_review') {
      throw new ConflictError(
        `Payment #${paymentId} is ${payment.status}, not held for review; there is nothing to resolve.`,
      );
    }
  }

  /**
   * Before its form is read: a payment resolved already (a second admin, another tab) is told so
   * (409), not that the note is too short, which led the admin to correct a note for a 409. Read
   * without a lock; resolveReview checks again under it.
   */
  async function checkResolvable(paymentId: number): Promise<void> {
    refuseUnlessHeld(paymentId, await paymentsRepository.findById(prisma, paymentId));
  }

  /**
   * A payment that paid its receipt before the receipt was voided, whose money then paid the receipt
   * billing its jobs again (marked paid "with the money of" it, docs/billing.md): resolved as refunded,
   * that receipt would read as paid with money the payer has back. Refused (409, nothing changed)
   * while the money pays a receipt that is not void; voiding that receipt first frees it. The voided
   * receipt is locked as a mark paid spending its money locks it, so the two take turns.
   */
  async function refuseRefundOfMoneyPayingAReceipt(
    tx: Prisma.TransactionClient,
    payment: { id: number; receiptId: number; provider: string; externalPaymentId: string | null },
  ) {
    const paid = await receiptPaidWithMoneyOf(tx, payment);
    if (paid === null) return;
    throw new ConflictError(
      `The money of payment #${payment.id} (receipt #${payment.receiptId}, voided) paid receipt #${paid.id}` +
        `${paid.through.length === 0 ? '' : ` (through ${paid.through.join(', ')}, voided since)`}: it was marked paid with it. ` +
        `To refund it, void receipt #${paid.id} first; nothing was changed.`,
      { field: 'outcome' },
    );
  }

  /**
   * The receipt, not void, that the money of this payment pays now: its own receipt voided since and
   * the receipt billing its jobs again marked paid with that money (receipts.paid_with_receipt_id),
   * or, that one voided in turn, the next down the chain (`through` names the voided ones between).
   * Null when its money pays no receipt. The voided receipt is locked as a mark paid spending its money
   * locks it, so the two take turns.
   */
  async function receiptPaidWithMoneyOf(
    tx: Prisma.TransactionClient,
    payment: { receiptId: number; provider: string; externalPaymentId: string | null },
  ): Promise<{ id: number; through: string[] } | null> {
    await receiptsRepository.lockReceiptWhoseMoneyPays(tx, payment.receiptId);
    const receipt = await receiptsRepository.findReceipt(tx, payment.receiptId);
    const isMoneyOfReceipt =
      receipt !== undefined &&
      receipt.status === 'void' &&
      receipt.paymentMethod === payment.provider &&
      payment.externalPaymentId !== null &&
      receipt.txRef === payment.externalPaymentId;
    if (!isMoneyOfReceipt) return null;
    const chain = await receiptsRepository.findReceiptsPaidWithMoneyOf(tx, payment.receiptId);
    const now = chain.at(-1);
    if (now === undefined || now.status === 'void') return null;
    return { id: now.id, through: chain.slice(0, -1).map((voided) => `receipt #${voided.id}`) };
  }

  /**
   * Closes a review: the admin says what was done with the money (accepted for the receipt,
   * refunded at the provider, or handled otherwise) and why. The payment row is locked, so a
   * double submit or a second admin waits and then finds it resolved (409, nothing written).
   * Accepting marks the receipt paid from this payment through the billing page's mark-paid
   * rule; refunded and dismissed leave the receipt as it is.
   */
  async function resolveReview(actor: AuditContext, paymentId: number, input: TResolveReview) {
    const reviewedAt = now();
    let canceled: CanceledCheckout[] = [];
    const result = await prisma.$transaction(async (tx) => {
      // Accepting marks the receipt paid and names its other held payments, as marking paid by hand
      // does: their locks are taken in the order marking paid and voiding take them, the receipt's
      // held payments in id order (this one among them) before anything else. Taking this one first,
      // then an earlier one, waited in a circle with a mark paid holding the earlier one.
      if (input.outcome === 'accepted') {
        const receiptId = await paymentsRepository.findReceiptIdOf(tx, paymentId);
        if (receiptId !== null) await paymentsRepository.lockHeldPayments(tx, receiptId);
      }
      const payment = await paymentsRepository.lockById(tx, paymentId);
      refuseUnlessHeld(paymentId, payment);
      // A form opened before the payment changed (a refund or a dispute reported, its receipt voided or
      // paid since): its reason, which the decision is taken on, is not the one the admin read.
      if (
        input.based_on_updated_at !== undefined &&
        payment.updatedAt.getTime() !== Number(input.based_on_updated_at)
      ) {
        throw new ConflictError(
          `Payment #${paymentId} changed after this page was opened; nothing was changed. ` +
            'Read why it is held now, then resolve it.',
        );
      }
      if (input.outcome === 'refunded') await refuseRefundOfMoneyPayingAReceipt(tx, payment);
      if (payment.holdsPaidReceipt && input.outcome !== 'accepted') {
        // Its receipt is paid from it: any other outcome would leave a paid receipt that no money pays.
        const failedMinor = await paymentsRepository.sumFailedRefundMinor(tx, payment.id);
        const uncountedMinor = await paymentsRepository.sumFailedRefundMinor(tx, payment.id, {
          isInReportedTotal: false,
        });
        throw new ConflictError(
          `Payment #${paymentId} still pays receipt #${payment.receiptId}, ` +
            `${whatWentBackFrom(payment, failedMinor, uncountedMinor)} ` +
            'or void the receipt on the billing page first; nothing was changed.',
          { field: 'outcome' },
        );
      }
      if (input.outcome === 'accepted' && payment.holdsPaidReceipt) {
        // The receipt stays paid from what is left of this payment, as it has been since the refund.
        await paymentsRepository.lockReceiptForPayments(tx, payment.receiptId);
      } else if (input.outcome === 'accepted') {
        // Held after its refund failed, a payment can still lose its money to a lost dispute (or a
        // refund reported since): what went back is no money to mark its receipt paid from.
        const failedMinor = await paymentsRepository.sumFailedRefundMinor(tx, payment.id);
        const uncountedMinor = await paymentsRepository.sumFailedRefundMinor(tx, payment.id, {
          isInReportedTotal: false,
        });
        const returned =
          returnedMinorOf(payment.refundedMinor, failedMinor, lostDisputeMinorOf(payment), uncountedMinor) ?? 0n;
        const received = receivedBy(payment);
        // A success the provider reported as 0.00: nothing arrived, so none of it "went back" either.
        if (received.amountMinor === 0n) {
          throw new ConflictError(
            `Nothing of payment #${paymentId} is left to pay receipt #${payment.receiptId}: it received nothing ` +
              `(${describeMinorUnits(0n, received.currency)}). Resolve it as dismissed with what was done; nothing was changed.`,
            { field: 'outcome' },
          );
        }
        if (returned >= received.amountMinor) {
          throw new ConflictError(
            `Nothing of payment #${paymentId} is left to pay receipt #${payment.receiptId}: the ` +
              `${describeMinorUnits(received.amountMinor, received.currency)} it received went back (refunded, or taken ` +
              'back by a lost dispute). Resolve it as refunded, or as dismissed with what was done; nothing was changed.',
            { field: 'outcome' },
          );
        }
        if (payment.hasAmountMismatch && !input.accept_mismatch) {
          throw new BadRequestError(
            // The reason may quote a note (describeResolution) or a provider's words: their bidi controls as escapes.
            `Payment #${paymentId} did not match the amount due (${revealControls(payment.reviewReason ?? '')}). ` +
              'To accept it anyway, say in the note how the difference was settled and tick "accept the different ' +
              'amount" (accept_mismatch=yes).',
            {
              field: 'accept_mismatch',
              fields: { accept_mismatch: 'is required to accept a payment whose amount did not match' },
            },
          );
        }
        // Part of its money went back since it arrived (a refund, a lost dispute): what is left is short of
        // the total, as a short payment's is, and is accepted only so, ticked. It marked the receipt paid at
        // its whole total with nothing asked, also from a page opened before the refund arrived.
        if (returned > 0n && !payment.hasAmountMismatch && !input.accept_mismatch) {
          throw new BadRequestError(
            `Payment #${paymentId} received ${describeMinorUnits(received.amountMinor, received.currency)}, but ` +
              `${describeMinorUnits(returned, received.currency)} of it went back to the payer since (refunded, or ` +
              `taken back by a lost dispute): only ${describeMinorUnits(received.amountMinor - returned, received.currency)} ` +
              `of it is left for receipt #${payment.receiptId}, whose total is ` +
              `${describeMinorUnits(payment.amountMinor, payment.currency)}. To accept it anyway, say in the note how ` +
              'the rest was settled and tick "accept the different amount" (accept_mismatch=yes).',
            {
              field: 'accept_mismatch',
              fields: { accept_mismatch: 'is required to accept a payment part of whose money went back' },
            },
          );
        }
        // Payment, then the receipt's open payments, then the receipt: the order a webhook and a void take.
        // The receipt before reading it or its other held payments, as a mark paid by hand takes it: a
        // late success being held at this moment holds the receipt, and read before it, that payment
        // was missed, left held without saying it can no longer be accepted for the receipt paid here.
        await paymentsRepository.lockOpenPayments(tx, payment.receiptId);
        await paymentsRepository.lockReceiptForPayments(tx, payment.receiptId);
        const receipt = await receiptsRepository.findReceipt(tx, payment.receiptId);
        if (receipt && receipt.status !== 'pending') {
          throw new ConflictError(
            `Receipt #${payment.receiptId} is ${receipt.status}, so payment #${paymentId} cannot be accepted for it. ` +
              'Refund the money at the provider and resolve as refunded, or resolve as dismissed with what was done.',
            // The outcome is what to change, not the note.
            { field: 'outcome' },
          );
        }
        // A newer checkout of the receipt (opened after this payment failed or was canceled) could
        // take the same money a second time: canceled here, as marking paid by hand does, so a
        // success there is held for review, and closed at the provider after the commit.
        canceled = await cancelOpenPaymentsIn(
          tx,
          actor,
          payment.receiptId,
          `receipt #${payment.receiptId} was marked paid from payment #${paymentId} while this checkout was open`,
          reviewedAt,
        );
        // Held after a refund that failed, the payment's money arrived when it first paid the
        // receipt and never left: it pays it from then, so the period it was paid in keeps its
        // paid.csv line (a closed export must not lose or move one). Any other held payment's
        // money pays the receipt from now.
        const keptPaidAt = await paymentsRepository.findPaidAtKeptByFailedRefund(tx, paymentId);
        const paidAt = keptPaidAt ?? reviewedAt;
        // The receipt's other payments held for review (a success held behind this one, paid short)
        // can no longer be accepted for it once it is paid from this one: named in the mark_paid entry
        // and in their reasons, as marking paid by hand names them. Locked above, in id order.
        const otherHeld = (await paymentsRepository.findHeldPaymentsOfReceipt(tx, payment.receiptId)).filter(
          (held) => held.id !== paymentId,
        );
        await markReceiptPaidIn(tx, actor, payment.receiptId, {
          method: payment.provider,
          txRef: payment.externalPaymentId,
          paidAt,
          paidOn: toLocalDate(paidAt, deps.timeZone),
          recordedAt: reviewedAt,
          details: {
            paymentId,
            ...(canceled.length === 0 ? {} : { canceledPaymentIds: canceled.map((open) => open.id) }),
            // What actually arrived, when it is known: finance reconciles this, not the total.
            ...(payment.receivedMinor === null
              ? {}
              : { receivedMinor: String(payment.receivedMinor), receivedCurrency: payment.receivedCurrency }),
            ...(otherHeld.length === 0
              ? {}
              : {
                  heldPayments: otherHeld.map((held) => ({
                    paymentId: held.id,
                    ...(held.receivedMinor === null
                      ? {}
                      : { receivedMinor: String(held.receivedMinor), receivedCurrency: held.receivedCurrency }),
                  })),
                }),
          },
        });
        // All of a held payment's money gone back already (refunded in full while a dispute keeps it
        // held): "refund it" asked finance to refund the payer a second time. The rule and wording of
        // marking paid by hand and voiding.
        const allGone = await heldMoneyAllGone(tx, payment.receiptId, otherHeld);
        for (const held of otherHeld) {
          const gone = allGone.get(held.id);
          await paymentsRepository.addToHoldReason(
            tx,
            held.id,
            `${held.reviewReason ?? 'held for review'}; receipt #${payment.receiptId} was marked paid from payment ` +
              `#${paymentId}, accepted by ${actor.actor}, while this payment was held, so it cannot be accepted for ` +
              (gone
                ? `it; ${allGoneAdvice(gone)}`
                : 'it: refund it, or apply it elsewhere and resolve it as dismissed'),
          );
        }
        if (keptPaidAt === null) await paymentsRepository.recordPaidAt(tx, paymentId, reviewedAt);
      }
      const isResolved = await paymentsRepository.resolveReview(tx, paymentId, {
        outcome: input.outcome,
        note: input.note,
        reviewedBy: actor.actor,
        reviewedAt,
      });
      if (!isResolved) throw new ConflictError(`Payment #${paymentId} was resolved meanwhile; nothing was changed.`);
      await appendAudit(
        tx,
        {
          ...actor,
          action: 'payment.resolve',
          target: `receipt:${payment.receiptId}`,
          status: 'ok',
          details: {
            paymentId,
            outcome: input.outcome,
            note: input.note,
            reviewReason: payment.reviewReason,
            hasAmountMismatch: payment.hasAmountMismatch,
            // The money the decision is about (refunded, kept or settled otherwise), as payment.start wrote it.
            amountMinor: String(payment.amountMinor),
            currency: payment.currency,
            ...(payment.receivedMinor === null
              ? {}
              : { receivedMinor: String(payment.receivedMinor), receivedCurrency: payment.receivedCurrency }),
            ...(payment.refundedMinor === null
              ? {}
              : { refundedMinor: String(payment.refundedMinor), refundedCurrency: payment.refundedCurrency }),
          },
        },
        reviewedAt,
      );
      return {
        id: paymentId,
        receiptId: payment.receiptId,
        status: 'resolved' as const,
        outcome: input.outcome,
        // A partly refunded payment accepted keeps a receipt that was paid already.
        isReceiptMarkedPaid: input.outcome === 'accepted' && !payment.holdsPaidReceipt,
      };
    });
    const { isReceiptMarkedPaid, ...resolved } = result;
    if (isReceiptMarkedPaid) metrics.receiptMarkedPaid.inc({ actor_type: 'admin' });
    // After the commit, and whatever the provider answers: the receipt stays paid either way.
    const checkoutsLeftOpen =
      canceled.length > 0 ? await closeCanceledCheckouts(result.receiptId, canceled, 'accept') : [];
    return {
      ...resolved,
      canceledPaymentIds: canceled.map((open) => open.id),
      checkoutNotice: checkoutsLeftOpen.length === 0 ? null : checkoutsLeftOpen.map((open) => open.notice).join(' '),
    };
  }

  /**
   * Refuses a settlement that the claim's state decides, whatever the form says: no such claim
   * (404), settled already (409).
   */
  function refuseUnlessUnsettled<T extends { settledAt: Date | null; settledBy: string | null }>(
    id: number,
    claim: T | null,
  ): asserts claim is T {
    if (!claim) throw notFoundById('Refused claim', id);
    if (claim.settledAt !== null) {
      throw new ConflictError(
        `Refused claim #${id} was already settled by ${claim.settledBy} on ` +
          `${formatLocalDateTime(claim.settledAt, deps.timeZone)}; nothing was changed.`,
      );
    }
  }

  /**
   * Before its form is read: a claim settled already (a second admin, another tab) is told so
   * (409), and one not there 404, not that the note is too short, which led the admin to correct
   * a note for a 409. Read without a lock; settleRefusedClaim checks again under it.
   */
  async function checkSettleable(id: number): Promise<void> {
    refuseUnlessUnsettled(id, await paymentsRepository.findRefusedClaim(prisma, id));
  }

  /**
   * Marks a refused refund or dispute settled: finance checked it with the provider and says what
   * was done. Nothing about money changes (the claim was refused); it leaves the banner and the
   * list on /admin/payments, and the row and a `payment.claim_refusal_settle` audit entry keep it.
   * The row is locked, so a double submit waits and then finds it settled (409, nothing written).
   */
  async function settleRefusedClaim(actor: AuditContext, id: number, input: TSettleRefusedClaim) {
    const settledAt = now();
    return prisma.$transaction(async (tx) => {
      const claim = await paymentsRepository.lockRefusedClaim(tx, id);
      refuseUnlessUnsettled(id, claim);
      if (
        !(await paymentsRepository.settleRefusedClaim(tx, id, { settledBy: actor.actor, settledAt, note: input.note }))
      )
        throw new ConflictError(`Refused claim #${id} was settled meanwhile; nothing was changed.`);
      await appendAudit(
        tx,
        {
          ...actor,
          action: 'payment.claim_refusal_settle',
          target: `receipt:${claim.payment.receiptId}`,
          status: 'ok',
          details: {
            refusedClaimId: id,
            paymentId: claim.paymentId,
            eventId: claim.externalEventId,
            eventType: claim.eventType,
            reason: claim.reason,
            note: input.note,
          },
        },
        settledAt,
      );
      return { id, paymentId: claim.paymentId, externalEventId: claim.externalEventId };
    });
  }

  /**
   * The provider's minimum charge in `currency` when `total` is below it (it cannot be paid
   * online), else undefined. The receipt page asks too, so it offers no Pay button that would
   * only be refused.
   */
  function findUnmetMinimumCharge(total: Prisma.Decimal, currency: string): string | undefined {
    const minimum = provider?.minimumCharge?.(currency);
    return minimum !== undefined && total.lessThan(minimum) ? minimum : undefined;
  }

  /**
   * The step the provider charges `currency` in ("0.01" for KWD at Stripe) when `total` is not a
   * whole number of it, else undefined. The receipt page asks too, so it offers no Pay button
   * that would only be refused.
   */
  function findUnpayableStep(total: Prisma.Decimal, currency: string): string | undefined {
    const digits = provider?.chargeDigits?.(currency);
    if (digits === undefined || new Prisma.Decimal(total).decimalPlaces() <= digits) return undefined;
    return new Prisma.Decimal(10).pow(-digits).toFixed(digits);
  }

  return {
    providerName: provider?.name,
    findUnmetMinimumCharge,
    findUnpayableStep,
    startPayment,
    handleWebhook,
    getStatus,
    getWaitState,
    assertOwnReceipt,
    getDummyCheckout,
    completeDummyCheckout,
    listForAdmin,
    checkAdminPage,
    checkResolvable,
    resolveReview,
    checkSettleable,
    settleRefusedClaim,
  };
}

export type PaymentsService = ReturnType<typeof createPaymentsService>;
