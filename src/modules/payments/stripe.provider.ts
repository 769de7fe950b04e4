import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type Stripe from 'stripe';
import { minorUnitDigits } from '../pricing/pricing.js';
import type { Checkout, CheckoutExpiry, CheckoutRequest, PaymentEvent, PaymentProvider } from './payment-provider.js';
import {
  AMOUNT_TOO_LARGE,
  isAmountTooLarge,
  PaymentProviderError,
  PROVIDER_CURRENCY_CODE,
  parseWebhookJson,
  refuseBodyNotUtf8,
  WebhookBodyError,
  WebhookSignatureError,
} from './payment-provider.js';

export interface StripeOptions {
  secretKey: string;
  webhookSecret: string;
  /** Seconds a signed delivery stays valid (replay window). */
  toleranceSec: number;
  /** Only for tests and egress proxies: where the Stripe API is. */
  apiUrl?: string;
}

function clientOptions(options: StripeOptions): Stripe.StripeConfig {
  if (!options.apiUrl) return { maxNetworkRetries: 2, timeout: 15_000 };
  const url = new URL(options.apiUrl);
  return {
    host: url.hostname,
    port: url.port || (url.protocol === 'https:' ? 443 : 80),
    protocol: url.protocol === 'http:' ? 'http' : 'https',
    maxNetworkRetries: 0,
    timeout: 5_000,
  };
}

/**
 * Stripe's minimum charge per presentment currency, in major units (Stripe's "Minimum and maximum
 * charge amounts" table): below it Stripe refuses to open the Checkout Session. A currency not
 * listed is left to Stripe. Stripe also requires a charge to convert to at least the minimum of
 * the account's settlement currency, which depends on the day's rate and is not checked here: a
 * charge refused for that still fails at Stripe, with Stripe's reason.
 */
const STRIPE_MINIMUM_CHARGES: Readonly<Record<string, string>> = {
  USD: '0.50',
  AED: '2.00',
  AUD: '0.50',
  BGN: '1.00',
  BRL: '0.50',
  CAD: '0.50',
  CHF: '0.50',
  CZK: '15.00',
  DKK: '2.50',
  EUR: '0.50',
  GBP: '0.30',
  HKD: '4.00',
  HUF: '175.00',
  INR: '0.50',
  JPY: '50',
  MXN: '10.00',
  MYR: '2.00',
  NOK: '3.00',
  NZD: '0.50',
  PLN: '2.00',
  RON: '2.00',
  SEK: '3.00',
  SGD: '0.50',
  THB: '10.00',
};

/**
 * Stripe's zero-decimal currencies (docs.stripe.com/currencies#zero-decimal): Stripe takes their
 * amounts in whole units. Its three-decimal ones take thousandths; every other currency hundredths.
 */
const STRIPE_ZERO_DECIMAL = new Set([
  'BIF',
  'CLP',
  'DJF',
  'GNF',
  'JPY',
  'KMF',
  'KRW',
  'MGA',
  'PYG',
  'RWF',
  'UGX',
  'VND',
  'VUV',
  'XAF',
  'XOF',
  'XPF',
]);
const STRIPE_THREE_DECIMAL = new Set(['BHD', 'JOD', 'KWD', 'OMR', 'TND']);

/**
 * How many digits more Stripe's unit of `currency` has than the app's minor unit (Intl's, the
 * one receipts are priced to): 2 for HUF, IDR, ISK, COP or PKR, which the app bills in whole units
 * and Stripe counts in hundredths; 0 for most. A receipt of 10,000 HUF was sent to Stripe as 10000,
 * which Stripe reads as 100.00 HUF, and Stripe's report of those 10000 paid the receipt.
 */
function stripeShiftOf(currency: string): number {
  const code = currency.toUpperCase();
  // A code Intl does not know cannot be a receipt's; the payment's checks refuse it as it comes.
  if (!/^[A-Z]{3}$/.test(code)) return 0;
  const stripeDigits = STRIPE_ZERO_DECIMAL.has(code) ? 0 : STRIPE_THREE_DECIMAL.has(code) ? 3 : 2;
  return stripeDigits - minorUnitDigits(code);
}

/**
 * Decimal places Stripe charges `currency` in, where that is coarser than the app's minor unit:
 * 2 for its three-decimal currencies (BHD, JOD, KWD, OMR, TND), whose amounts it takes in
 * thousandths but only with a last digit of 0 (12.345 KWD is refused, 12.350 taken);
 * undefined for every other currency.
 */
export function stripeChargeDigits(currency: string): number | undefined {
  const code = currency.toUpperCase();
  return STRIPE_THREE_DECIMAL.has(code) && minorUnitDigits(code) > 2 ? 2 : undefined;
}

/** An amount in the app's minor units of `currency` as Stripe's API takes it. */
export function toStripeAmount(amountMinor: bigint, currency: string): bigint {
  const shift = stripeShiftOf(currency);
  const chargeDigits = stripeChargeDigits(currency);
  if (chargeDigits !== undefined && amountMinor % 10n ** BigInt(minorUnitDigits(currency) - chargeDigits) !== 0n) {
    // The payment's start refuses such a total before it gets here (findUnpayableStep): Stripe would refuse it.
    throw new PaymentProviderError(
      `Stripe takes ${currency} amounts only in steps of 0.01 ${currency}, so this total cannot be charged exactly; ask the billing team how to pay it.`,
    );
  }
  if (shift >= 0) return amountMinor * 10n ** BigInt(shift);
  const unit = 10n ** BigInt(-shift);
  if (amountMinor % unit !== 0n) {
    throw new PaymentProviderError(
      `Stripe takes ${currency} amounts to ${minorUnitDigits(currency) + shift} decimals, so this total cannot be charged exactly; ask the billing team how to pay it.`,
    );
  }
  return amountMinor / unit;
}

/**
 * An amount Stripe reports, in the app's minor units of `currency`. One that is not a whole
 * number of them (a refund of 0.50 HUF typed at Stripe) is rounded against the centre: money
 * received down, money returned up, so that neither can make a receipt read as paid in full.
 */
export function fromStripeAmount(amount: number, currency: string, rounding: 'received' | 'returned'): bigint {
  const shift = stripeShiftOf(currency);
  if (shift <= 0) return BigInt(amount) * 10n ** BigInt(-shift);
  const unit = 10n ** BigInt(shift);
  const whole = BigInt(amount) / unit;
  return rounding === 'returned' && BigInt(amount) % unit !== 0n ? whole + 1n : whole;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Where the amounts toPaymentEvent reads are: a Checkout Session's, a Charge's refunded, a Dispute's or Refund's. */
const STRIPE_AMOUNT_PATHS = [
  ['data', 'object', 'amount_total'],
  ['data', 'object', 'amount_refunded'],
  ['data', 'object', 'amount'],
] as const;

/**
 * The event Stripe signed, checked for what toPaymentEvent reads: the signature only proves who
 * sent the bytes, and a body that is no event is the sender's mistake, not a wrong secret.
 */
function readStripeEvent(rawBody: Buffer): Stripe.Event {
  const body = parseWebhookJson(rawBody, STRIPE_AMOUNT_PATHS);
  if (
    !isRecord(body) ||
    typeof body.id !== 'string' ||
    typeof body.type !== 'string' ||
    !isRecord(body.data) ||
    !isRecord(body.data.object)
  ) {
    throw new WebhookBodyError('body is not a Stripe event (an object with an id, a type and data.object)');
  }
  // What the event's row and the payment's columns can hold (payment_events.external_event_id
  // varchar(128), type varchar(64)): longer, the insert failed with a 500 that Stripe retried for
  // three days, where a body the dummy provider's schema refuses is a 400 saying why.
  if (body.id.length < 1 || body.id.length > STORED_ID_MAX) {
    throw new WebhookBodyError(`body's event id must be text of 1 to ${STORED_ID_MAX} characters`);
  }
  if (body.type.length < 1 || body.type.length > STORED_TYPE_MAX) {
    throw new WebhookBodyError(`body's event type must be text of 1 to ${STORED_TYPE_MAX} characters`);
  }
  const object = body.data.object;
  if (body.type.startsWith('checkout.session.')) {
    requireObjectOf(body.type, object, 'checkout.session', 'a Checkout Session');
    if (isAmountTooLarge(object.amount_total))
      throw new WebhookBodyError(`body's Checkout Session amount_total ${AMOUNT_TOO_LARGE}`);
    // Below 0 too, as every other amount of either provider: taken, it held the payment as "paid -0.05 THB".
    if (
      object.amount_total !== null &&
      (!Number.isSafeInteger(object.amount_total) || (object.amount_total as number) < 0)
    ) {
      throw new WebhookBodyError(
        `body's Checkout Session amount_total must be a whole number of minor units, 0 or more, or null`,
      );
    }
    if (object.currency !== null && typeof object.currency !== 'string') {
      throw new WebhookBodyError(`body's Checkout Session currency must be a currency code or null`);
    }
    requireStorableId(object.payment_intent, 'Checkout Session payment_intent');
  }
  if (body.type === 'charge.refunded') {
    requireObjectOf(body.type, object, 'charge', 'a Charge');
    if (isAmountTooLarge(object.amount_refunded))
      throw new WebhookBodyError(`body's Charge amount_refunded ${AMOUNT_TOO_LARGE}`);
    if (!Number.isSafeInteger(object.amount_refunded) || (object.amount_refunded as number) < 0) {
      throw new WebhookBodyError(`body's Charge amount_refunded must be a whole number of minor units, 0 or more`);
    }
    if (!isCurrencyCode(object.currency)) {
      throw new WebhookBodyError(`body's Charge currency must be a currency code`);
    }
    requireStorableId(object.payment_intent, 'Charge payment_intent');
  }
  if (body.type === 'charge.dispute.created' || body.type === 'charge.dispute.closed') {
    requireObjectOf(body.type, object, 'dispute', 'a Dispute');
    if (isAmountTooLarge(object.amount)) throw new WebhookBodyError(`body's Dispute amount ${AMOUNT_TOO_LARGE}`);
    if (!Number.isSafeInteger(object.amount) || (object.amount as number) < 0) {
      throw new WebhookBodyError(`body's Dispute amount must be a whole number of minor units, 0 or more`);
    }
    if (!isCurrencyCode(object.currency)) {
      throw new WebhookBodyError(`body's Dispute currency must be a currency code`);
    }
    if (object.reason !== undefined && object.reason !== null && typeof object.reason !== 'string') {
      throw new WebhookBodyError(`body's Dispute reason must be text`);
    }
    requireStorableId(object.id, 'Dispute id');
    requireStorableId(object.payment_intent, 'Dispute payment_intent');
  }
  if (body.type === 'charge.refund.updated') {
    requireObjectOf(body.type, object, 'refund', 'a Refund');
    if (isAmountTooLarge(object.amount)) throw new WebhookBodyError(`body's Refund amount ${AMOUNT_TOO_LARGE}`);
    if (!Number.isSafeInteger(object.amount) || (object.amount as number) < 0) {
      throw new WebhookBodyError(`body's Refund amount must be a whole number of minor units, 0 or more`);
    }
    if (!isCurrencyCode(object.currency)) {
      throw new WebhookBodyError(`body's Refund currency must be a currency code`);
    }
    if (typeof object.status !== 'string') throw new WebhookBodyError(`body's Refund status must be text`);
    if (
      object.failure_reason !== undefined &&
      object.failure_reason !== null &&
      typeof object.failure_reason !== 'string'
    ) {
      throw new WebhookBodyError(`body's Refund failure_reason must be text`);
    }
    requireStorableId(object.id, 'Refund id');
    requireStorableId(object.payment_intent, 'Refund payment_intent');
  }
  return body as unknown as Stripe.Event;
}

/**
 * Three letters, as Stripe writes ISO 4217 codes: money claimed back is kept in char(3) columns
 * (refunded_currency, disputed_currency, a refused claim's claimed_currency), and a longer code
 * failed the insert of a refused refund, which then never reached /admin/payments.
 */
const isCurrencyCode = (value: unknown): value is string =>
  typeof value === 'string' && PROVIDER_CURRENCY_CODE.test(value);

/** payment_events.type: varchar(64). */
const STORED_TYPE_MAX = 64;
/** payment_events.external_event_id and the payment's external_*_id columns: varchar(128). */
const STORED_ID_MAX = 128;

/**
 * Refuses an id (or an expanded object's id) the payment's columns cannot hold: the dispute's and
 * the failed refund's ids are stored, and so is the PaymentIntent a success names. Absent is fine.
 */
function requireStorableId(value: unknown, what: string): void {
  const id = idOf(value as string | { id: string } | null | undefined);
  if (id !== null && id.length > STORED_ID_MAX) {
    throw new WebhookBodyError(`body's ${what} must be an id of at most ${STORED_ID_MAX} characters`);
  }
}

/** Refuses an event whose object is not the kind its type is about, or has no id. */
function requireObjectOf(type: string, object: Record<string, unknown>, kind: string, described: string): void {
  if (object.object === kind && typeof object.id === 'string') return;
  const named = typeof object.object === 'string' ? `a "${object.object}"` : 'no object Stripe names';
  throw new WebhookBodyError(`body's ${type} event is about ${named}, not ${described}`);
}

/** An id Stripe may give as the id or as the expanded object. */
function idOf(value: string | { id: string } | null | undefined): string | null {
  if (typeof value === 'string') return value;
  return value && typeof value.id === 'string' ? value.id : null;
}

/**
 * Maps Stripe's Checkout Session events, charge.refunded, charge.refund.updated (failed or canceled) and
 * charge.dispute.created/closed onto ours; anything else keeps its
 * Stripe type (ignored).
 */
function toPaymentEvent(event: Stripe.Event, raw: string): PaymentEvent {
  // When Stripe made the event: orders a refund total against a refund's failure (applyRefund).
  const occurredAt =
    // Up to 9999-12-31: a Date holds no more, and the column no further.
    typeof event.created === 'number' &&
    Number.isInteger(event.created) &&
    event.created > 0 &&
    event.created < 253402300800
      ? new Date(event.created * 1000)
      : null;
  const base = { id: event.id, raw, occurredAt };
  if (event.type === 'charge.refunded') {
    // Names the PaymentIntent, not the Checkout Session: the payment is found by the intent its
    // success recorded. amount_refunded is every refund of the charge so far, as ours is.
    const charge = event.data.object as Stripe.Charge;
    return {
      ...base,
      type: 'payment.refunded',
      externalPaymentId: null,
      externalIntentId: idOf(charge.payment_intent),
      amountMinor: fromStripeAmount(charge.amount_refunded, charge.currency, 'returned'),
      currency: charge.currency.toUpperCase(),
    };
  }
  if (event.type === 'charge.refund.updated') {
    // A refund that failed or was canceled after it was reported: the money stayed with the centre.
    // Any other update (pending, succeeded, requires_action, a metadata change) moves no money.
    const refund = event.data.object as Stripe.Refund;
    if (refund.status !== 'failed' && refund.status !== 'canceled') {
      return { ...base, type: event.type, externalPaymentId: null, amountMinor: null, currency: null };
    }
    return {
      ...base,
      type: 'payment.refund_failed',
      externalPaymentId: null,
      externalIntentId: idOf(refund.payment_intent),
      amountMinor: fromStripeAmount(refund.amount, refund.currency, 'returned'),
      currency: refund.currency.toUpperCase(),
      // Stripe's failure reasons are short codes (expired_or_canceled_card, lost_or_stolen_card, unknown).
      refund: {
        id: refund.id,
        status: refund.status,
        failureReason: refund.failure_reason ? refund.failure_reason.slice(0, 64) : null,
      },
    };
  }
  if (event.type === 'charge.dispute.created') {
    // Names the PaymentIntent, as a refund does: the payment is found by the intent its success recorded.
    const dispute = event.data.object as Stripe.Dispute;
    return {
      ...base,
      type: 'payment.disputed',
      externalPaymentId: null,
      externalIntentId: idOf(dispute.payment_intent),
      amountMinor: fromStripeAmount(dispute.amount, dispute.currency, 'returned'),
      currency: dispute.currency.toUpperCase(),
      // Stripe's reason codes are short words (fraudulent, duplicate, product_not_received, ...).
      dispute: { id: dispute.id, reason: dispute.reason ? dispute.reason.slice(0, 64) : null },
    };
  }
  if (event.type === 'charge.dispute.closed') {
    const dispute = event.data.object as Stripe.Dispute;
    const status: string = dispute.status;
    // Only won and lost move money; an inquiry closed without a chargeback (warning_closed) keeps
    // Stripe's type and is ignored.
    if (status !== 'won' && status !== 'lost') {
      return { ...base, type: event.type, externalPaymentId: null, amountMinor: null, currency: null };
    }
    return {
      ...base,
      type: 'payment.dispute_closed',
      externalPaymentId: null,
      externalIntentId: idOf(dispute.payment_intent),
      amountMinor: fromStripeAmount(dispute.amount, dispute.currency, 'returned'),
      currency: dispute.currency.toUpperCase(),
      dispute: {
        id: dispute.id,
        reason: dispute.reason ? dispute.reason.slice(0, 64) : null,
        status,
      },
    };
  }
  if (event.type.startsWith('checkout.session.')) {
    const session = event.data.object as Stripe.Checkout.Session;
    const money = {
      externalPaymentId: session.id,
      externalIntentId: idOf(session.payment_intent),
      amountMinor:
        session.amount_total === null
          ? null
          : fromStripeAmount(session.amount_total, session.currency ?? '', 'received'),
      currency: session.currency ? session.currency.toUpperCase() : null,
    };
    if (
      (event.type === 'checkout.session.completed' && session.payment_status === 'paid') ||
      event.type === 'checkout.session.async_payment_succeeded'
    ) {
      return { ...base, ...money, type: 'payment.succeeded' };
    }
    if (event.type === 'checkout.session.async_payment_failed') return { ...base, ...money, type: 'payment.failed' };
    if (event.type === 'checkout.session.expired') return { ...base, ...money, type: 'payment.canceled' };
    return { ...base, ...money, type: event.type };
  }
  return { ...base, type: event.type, externalPaymentId: null, amountMinor: null, currency: null };
}

/**
 * The status Stripe names when it refuses to expire a Checkout Session that is no longer open (400,
 * invalid_request_error: "Only Checkout Sessions with a status in ["open"] can be expired. This
 * Checkout Session has a status of `complete`."). Stripe gives that refusal no code of its own, so
 * the message is the only place the status is said; undefined for any other error.
 */
function closedSessionStatusOf(error: unknown): string | undefined {
  const stripeError = error as { type?: unknown; statusCode?: unknown; message?: unknown };
  if (stripeError.type !== 'StripeInvalidRequestError' || stripeError.statusCode !== 400) return undefined;
  if (typeof stripeError.message !== 'string') return undefined;
  return /can be expired\. This Checkout Session has a status of `(\w+)`/.exec(stripeError.message)?.[1];
}

/**
 * Why Stripe's signature check refused a delivery, as one plain clause: the answer's
 * "Webhook rejected: <reason>." goes to the sender and the logs. Stripe's own texts are for the
 * developer of an integration ("… Are you passing the raw request body you received from Stripe? "),
 * and quoted whole they ended the answer in "Stripe? .".
 */
function signatureRefusalOf(error: unknown, toleranceSec: number): string {
  const message = error instanceof Error ? error.message : String(error);
  if (message.startsWith('No signatures found matching the expected signature')) {
    return 'the Stripe-Signature header does not match this body signed with the webhook secret';
  }
  if (message.startsWith('Timestamp outside the tolerance zone')) {
    return `the Stripe-Signature timestamp is more than ${toleranceSec} s from now`;
  }
  if (message.startsWith('Unable to extract timestamp and signatures')) {
    return 'the Stripe-Signature header has no timestamp or no signature';
  }
  if (message.startsWith('No signatures found with expected scheme')) {
    return 'the Stripe-Signature header has no v1 signature';
  }
  // Anything else: its first sentence, without the punctuation the answer adds.
  const first = message
    .split('\n')[0]
    ?.split(/(?<=[.?!])\s/)[0]
    ?.trim()
    .replace(/[\s.?!]+$/, '');
  return first || 'bad signature';
}

/**
 * The Stripe-Signature header's timestamp (`t=`, seconds), as the package reads it; undefined without one.
 * Of several, the last: the package checks the signature over that one, so reading the first let a
 * current `t=` put in front of a delivery signed for later through.
 */
function signedAtOf(header: string): number | undefined {
  const stamp = stampOf(header);
  const seconds = stamp === undefined ? Number.NaN : Number.parseInt(stamp, 10);
  return Number.isFinite(seconds) ? seconds : undefined;
}

/** The Stripe-Signature header's last `t=` as written (the one the package reads); undefined without one. */
function stampOf(header: string): string | undefined {
  return header
    .split(',')
    .map((item) => item.split('='))
    .findLast(([key]) => key === 't')?.[1];
}

/**
 * Whether the header has a `t=` that is not a whole number of seconds (digits alone). The package
 * reads it with parseInt: "abc" became NaN and the signature was checked over "NaN.", "17e8" over
 * "17.", so the delivery was refused as not matching the webhook secret, which sent Stripe's
 * operator to the secret rather than to the header.
 */
function hasMalformedStamp(header: string): boolean {
  const stamp = stampOf(header);
  return stamp !== undefined && !/^\d+$/.test(stamp.trim());
}

/**
 * Whether one of the header's v1 signatures is Stripe's HMAC-SHA256 of `<t>.` and the body's bytes as
 * received (t read as the package reads it: the last, as a whole number). The package hashes the
 * body as text: given the Buffer, it decoded it with TextDecoder, which drops a leading byte-order mark,
 * and either way bytes that are not UTF-8 become U+FFFD, so a mark put in front of a signed body, or
 * such a byte in place of a signed U+FFFD, still matched. The package now hashes with signerOverBytes;
 * this check stays so that the bytes' signature does not rest on how the package uses it.
 */
function isSignedOverBytes(rawBody: Buffer, header: string, secret: string): boolean {
  const signedAt = signedAtOf(header);
  if (signedAt === undefined) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(`${signedAt}.`).update(rawBody).digest('hex'));
  return header
    .split(',')
    .map((item) => item.split('='))
    .filter(([key]) => key === 'v1')
    .some(([, given]) => {
      const candidate = Buffer.from(given ?? '');
      return candidate.length === expected.length && timingSafeEqual(candidate, expected);
    });
}

/**
 * What the package's signature check hashes with: HMAC-SHA256 of `<t>.` and the body's bytes as
 * received, where the package would hash `<t>.` and the body decoded to text. Bytes that are not
 * UTF-8 become U+FFFD in that text, so a body Stripe signed over such bytes was refused as "does not
 * match", which sends Stripe's operator to the secret; the package still reads the header and checks
 * the timestamp's age, and refuseBodyNotUtf8 then says what is wrong with the body.
 */
function signerOverBytes(rawBody: Buffer): Stripe.CryptoProvider {
  const hmacOf = (content: string, secret: string) => {
    // The package asks for "<t>.<body as text>"; t is a whole number, so its first dot ends it.
    const signedAt = content.slice(0, content.indexOf('.') + 1);
    return createHmac('sha256', secret).update(signedAt).update(rawBody).digest('hex');
  };
  return {
    computeHMACSignature: hmacOf,
    computeHMACSignatureAsync: async (content, secret) => hmacOf(content, secret),
    computeSHA256Async: async (data) => new Uint8Array(createHash('sha256').update(data).digest()),
  };
}

/** Stripe Checkout through the official SDK; webhooks verified with its own signature check. */
export function createStripeProvider(options: StripeOptions): PaymentProvider {
  // Loaded on first use: the SDK adds ~18 MB to every worker, which sites on another
  // provider should not pay for.
  let client: Promise<Stripe> | undefined;
  const getStripe = () => {
    client ??= import('stripe').then(
      ({ default: StripeClient }) => new StripeClient(options.secretKey, clientOptions(options)),
    );
    return client;
  };
  return {
    name: 'stripe',
    minimumCharge: (currency: string) => STRIPE_MINIMUM_CHARGES[currency.toUpperCase()],
    chargeDigits: stripeChargeDigits,
    async startCheckout(request: CheckoutRequest): Promise<Checkout> {
      try {
        const stripe = await getStripe();
        const session = await stripe.checkout.sessions.create(
          {
            mode: 'payment',
            client_reference_id: String(request.receiptId),
            metadata: { receipt_id: String(request.receiptId), payment_id: String(request.paymentId) },
            line_items: [
              {
                quantity: 1,
                price_data: {
                  currency: request.currency.toLowerCase(),
                  unit_amount: Number(toStripeAmount(request.amountMinor, request.currency)),
                  product_data: { name: request.description },
                },
              },
            ],
            success_url: request.successUrl,
            cancel_url: request.cancelUrl,
          },
          // A retried click reuses the same Checkout Session instead of opening a second one.
          { idempotencyKey: request.idempotencyKey },
        );
        if (!session.url) throw new PaymentProviderError('Stripe returned a Checkout Session without a URL.');
        return { externalPaymentId: session.id, checkoutUrl: session.url };
      } catch (error) {
        if (error instanceof PaymentProviderError) throw error;
        const message = (error as Error).message;
        throw new PaymentProviderError(`Stripe could not start the checkout: ${message}`);
      }
    },
    async expireCheckout(externalPaymentId: string, idempotencyKey: string): Promise<CheckoutExpiry> {
      try {
        const stripe = await getStripe();
        // The admin's void waits for this answer: at most two tries of 5 s (a checkout start may
        // take three of 15 s), after which the void stands and the admin is told the page is open.
        const patience = options.apiUrl ? { timeout: 5_000 } : { timeout: 5_000, maxNetworkRetries: 1 };
        await stripe.checkout.sessions.expire(externalPaymentId, {}, { idempotencyKey, ...patience });
        return 'expired';
      } catch (error) {
        const status = closedSessionStatusOf(error);
        if (status === 'complete') return 'already_complete';
        // Expired by Stripe itself (24 hours after it opened) or by an earlier try: closed all the same.
        if (status === 'expired') return 'expired';
        throw new PaymentProviderError(`Stripe could not expire the checkout: ${(error as Error).message}`);
      }
    },
    async findCheckoutOfIntent(externalIntentId: string): Promise<string | null> {
      try {
        const stripe = await getStripe();
        // A webhook waits for this answer, as a void waits for an expiry: at most two tries of 5 s.
        const patience = options.apiUrl ? { timeout: 5_000 } : { timeout: 5_000, maxNetworkRetries: 1 };
        const sessions = await stripe.checkout.sessions.list({ payment_intent: externalIntentId, limit: 1 }, patience);
        return sessions.data[0]?.id ?? null;
      } catch (error) {
        throw new PaymentProviderError(
          `Stripe could not say which Checkout Session took ${externalIntentId}: ${(error as Error).message}`,
        );
      }
    },
    async parseWebhook(rawBody: Buffer, headers: IncomingHttpHeaders): Promise<PaymentEvent> {
      const signature = headers['stripe-signature'];
      // An empty header is no signature either: the package's own words for it ("No stripe-signature
      // header value was provided.") read as Stripe's error, not as the missing header it is.
      if (typeof signature !== 'string' || signature.trim() === '')
        throw new WebhookSignatureError('missing Stripe-Signature');
      if (hasMalformedStamp(signature))
        throw new WebhookSignatureError('the Stripe-Signature timestamp is not a whole number of seconds');
      const stripe = await getStripe();
      try {
        // Only the signature: what follows a valid one is counted as the body's error, not the secret's.
        const verifier = stripe.webhooks.signature;
        if (!verifier) throw new Error('the stripe package has no signature verifier');
        // Hashed over the bytes (signerOverBytes): given a Buffer, the package decodes it with TextDecoder,
        // which drops a leading byte-order mark, and any text turns bytes that are not UTF-8 into U+FFFD.
        verifier.verifyHeader(
          rawBody.toString('utf8'),
          signature,
          options.webhookSecret,
          options.toleranceSec,
          signerOverBytes(rawBody),
        );
        if (!isSignedOverBytes(rawBody, signature, options.webhookSecret)) {
          throw new Error('No signatures found matching the expected signature for payload');
        }
        // The package refuses only a timestamp older than the tolerance: one as far ahead (a body
        // signed for later) was taken, and stayed replayable until that time plus the tolerance.
        const signedAt = signedAtOf(signature);
        if (signedAt === undefined || signedAt - Math.floor(Date.now() / 1000) > options.toleranceSec) {
          throw new Error('Timestamp outside the tolerance zone');
        }
      } catch (error) {
        throw new WebhookSignatureError(signatureRefusalOf(error, options.toleranceSec));
      }
      // After the signature, which proves who sent the bytes: they are Stripe's, and are no text.
      refuseBodyNotUtf8(rawBody);
      return toPaymentEvent(readStripeEvent(rawBody), rawBody.toString('utf8'));
    },
    readEvent(rawBody: Buffer): PaymentEvent {
      return toPaymentEvent(readStripeEvent(rawBody), rawBody.toString('utf8'));
    },
  };
}
