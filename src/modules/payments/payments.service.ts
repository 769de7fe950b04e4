import type { IncomingHttpHeaders } from 'node:http';
import { Prisma } from '@prisma/client';
import type { PaymentsConfig } from '../../config/config.js';
import type { Database } from '../../db/database.js';
import { describeEndedPayment } from '../../http/view-format.js';
import { formatCount } from '../../shared/counted.js';
import { BadRequestError, ConflictError, isUniqueViolation, NotFoundError, notFoundById } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { unstorableTextIn } from '../../shared/storable-text.js';
import { type AuditContext, appendAudit } from '../audit/audit.service.js';
import type { Metrics } from '../metrics/metrics.js';
import { minorUnitDigits } from '../pricing/pricing.js';
import * as receiptsRepository from '../receipts/receipts.repository.js';
import { type CheckoutEndedBy, type CloseCanceledCheckouts, createCheckoutCloser } from './checkout-closer.js';
import { createDummyProvider, signDummyWebhook } from './dummy.provider.js';
import {
  type BillingTeamRefund,
  billingTeamRefundOf,
  billingTeamTakenBackOf,
  describeMinorUnits,
  hasAmountDue,
  hasTakenMoney,
  heldForSameJobsMessage,
  heldPaymentJsonOf,
  heldPaymentNoteOf,
  heldPaymentOf,
  type PaymentMoney,
  paymentMoneyOf,
  receivedOf,
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
import { ClaimBackRefusedError, createPaymentReturnsService, providerAuditOf } from './payment-returns.service.js';
import { createPaymentReviewService } from './payment-review.service.js';
import * as paymentsRepository from './payments.repository.js';
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
  const { receiptPaidWithMoneyOf, ...review } = createPaymentReviewService(deps, { closeCanceledCheckouts });
  const { applyRefund, applyDispute, applyDisputeClosed, applyRefundFailed } = createPaymentReturnsService(deps, {
    receiptPaidWithMoneyOf,
  });

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
    ...review,
  };
}

export type PaymentsService = ReturnType<typeof createPaymentsService>;
