import type { IncomingHttpHeaders } from 'node:http';
import {
  JsonDuplicateKeyError,
  JsonNumberText,
  JsonTooDeepError,
  type LosslessJson,
  parseJsonKeepingNumberText,
} from '../../http/lossless-json.js';
import { AppError } from '../../shared/errors.js';
import { findFirstNonUtf8Byte } from '../../shared/utf8-bytes.js';

/** What every provider's webhook boils down to. */
export interface PaymentEvent {
  /** The provider's id of this delivery's event (deduplication key). */
  id: string;
  /**
   * Normalized: payment.succeeded | payment.failed | payment.canceled | payment.refunded |
   * payment.disputed | payment.dispute_closed | payment.refund_failed, or the provider's own type.
   */
  type: string;
  /** The provider's id of the payment (what startCheckout returned), when the event is about one. */
  externalPaymentId: string | null;
  /**
   * The provider's id of the money the checkout took, when it has one apart from the checkout
   * (Stripe's PaymentIntent): kept from a success, it is how a refund that names only it finds its payment.
   */
  externalIntentId?: string | null;
  /**
   * What was paid; for payment.refunded, what the provider has refunded of the payment so far (all
   * refunds); for payment.disputed and payment.dispute_closed, the amount the payer disputed; for
   * payment.refund_failed, the amount of the refund that failed.
   */
  amountMinor: bigint | null;
  currency: string | null;
  /**
   * For payment.disputed and payment.dispute_closed: the provider's id of the dispute, the payer's
   * reason as it words it (null: none given), and for payment.dispute_closed its outcome.
   */
  dispute?: { id: string; reason: string | null; status?: 'won' | 'lost' };
  /**
   * For payment.refund_failed: the provider's id of the refund that failed or was canceled after it
   * was reported, how it ended, and why when the provider says (Stripe's failure_reason).
   */
  refund?: { id: string; status: 'failed' | 'canceled'; failureReason: string | null };
  /**
   * When the provider made the event, when it says (Stripe's `created`, to the second): a refund total
   * made before a refund failed still counts that refund, however late it is delivered.
   */
  occurredAt?: Date | null;
  /** The body exactly as received, for the record. */
  raw: string;
}

export const KNOWN_EVENT_TYPES = [
  'payment.succeeded',
  'payment.failed',
  'payment.canceled',
  'payment.refunded',
  'payment.disputed',
  'payment.dispute_closed',
  'payment.refund_failed',
] as const;

export interface CheckoutRequest {
  paymentId: number;
  receiptId: number;
  amountMinor: bigint;
  currency: string;
  idempotencyKey: string;
  description: string;
  successUrl: string;
  cancelUrl: string;
}

export interface Checkout {
  externalPaymentId: string;
  checkoutUrl: string;
}

/**
 * What closing a checkout found: `expired` (closed now, or already closed unpaid) or
 * `already_complete` (the payer finished paying first; the provider's success webhook follows).
 */
export type CheckoutExpiry = 'expired' | 'already_complete';

/** A payment provider: starts hosted checkouts and turns signed webhook deliveries into events. */
export interface PaymentProvider {
  name: string;
  /**
   * The smallest amount the provider takes in one payment in `currency`, as a decimal in the
   * currency's major units ("0.50"); undefined when it sets none or its minimum for that currency
   * is not known here. A receipt below it is refused before the provider is asked.
   */
  minimumCharge?(currency: string): string | undefined;
  /**
   * Decimal places the provider takes an amount of `currency` in, when fewer than the currency's
   * minor unit (Stripe: 2 for KWD, whose last digit must be 0); undefined when it takes every
   * minor unit. Receipts are priced to it (pricedDigitsOf), and an older total that is not a whole
   * number of that step is refused before the provider is asked.
   */
  chargeDigits?(currency: string): number | undefined;
  startCheckout(request: CheckoutRequest): Promise<Checkout>;
  /**
   * Closes a checkout (what startCheckout returned as externalPaymentId) so that it takes no
   * payment; throws PaymentProviderError when the provider could not be told. Absent for a
   * provider whose checkout closes with its payment's status. The idempotency key makes a retry
   * after a lost answer read "expired", not "no longer open".
   */
  expireCheckout?(externalPaymentId: string, idempotencyKey: string): Promise<CheckoutExpiry>;
  /**
   * The checkout (what startCheckout returned as externalPaymentId) whose payment took the money
   * `externalIntentId` names (Stripe's PaymentIntent), or null when none of the provider's checkouts
   * did; throws PaymentProviderError when the provider could not be asked. A refund or dispute
   * names only that money, which the app learns from the checkout's success: told before the
   * success, it is matched to its payment through this. Absent for a provider whose events name
   * the checkout itself.
   */
  findCheckoutOfIntent?(externalIntentId: string): Promise<string | null>;
  /** Verifies the signature over the raw body; throws WebhookSignatureError when it does not hold. */
  parseWebhook(rawBody: Buffer, headers: IncomingHttpHeaders): Promise<PaymentEvent>;
  /**
   * Reads a body whose signature held when it arrived (a stored event) as parseWebhook reads it,
   * without the signature: a later delivery under the same event id is compared with it.
   */
  readEvent?(rawBody: Buffer): PaymentEvent;
}

const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/**
 * A signed webhook body as JSON text to parse: without the UTF-8 byte-order mark it may open with,
 * which JSON.parse refuses ("body is not JSON") and RFC 8259 (8.1) lets a parser ignore. Neither
 * provider sends one, but a body written by .NET's or PowerShell's UTF-8 encoders may carry it. Only
 * the parsing drops it: the signature is checked over the bytes received, the mark included, and the
 * body is recorded as it came.
 */
export function jsonTextOf(rawBody: Buffer): string {
  const start = rawBody.subarray(0, UTF8_BOM.length).equals(UTF8_BOM) ? UTF8_BOM.length : 0;
  return rawBody.subarray(start).toString('utf8');
}

/**
 * The whole number a JSON number's text is exactly ("1000.0", "1e3", "100000e-2" are 1000), or
 * undefined when its digits are not one ("999.99999999999999", which JSON.parse rounds to 1000).
 */
export function exactWholeNumberOf(text: string): bigint | undefined {
  const parts = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!parts) return undefined;
  const [, sign = '', whole = '', fraction = '', exponent = '0'] = parts;
  const shift = Number(exponent) - fraction.length;
  // No amount comes near; a double holds no whole number past 10^309 anyway.
  if (!Number.isSafeInteger(shift) || shift > 400) return undefined;
  const digits = `${whole}${fraction}`;
  if (shift >= 0) return BigInt(`${sign}${digits}`) * 10n ** BigInt(shift);
  const kept = digits.slice(0, Math.max(0, digits.length + shift));
  if (!/^0*$/.test(digits.slice(kept.length))) return undefined;
  return BigInt(`${sign}${kept || '0'}`);
}

/** The value at `path` in a parsed body, or undefined. */
function valueAt(tree: LosslessJson | undefined, path: readonly string[]): LosslessJson | undefined {
  let at: LosslessJson | undefined = tree;
  for (const key of path) {
    if (at === null || typeof at !== 'object' || Array.isArray(at) || at instanceof JsonNumberText) return undefined;
    at = Object.hasOwn(at, key) ? at[key] : undefined;
  }
  return at;
}

/**
 * A signed webhook body parsed as JSON: WebhookBodyError when it is not JSON, or when an object in it
 * gives a key twice. JSON.parse keeps the last value unseen (`"event_type":"payment.failed",
 * "event_type":"payment.succeeded"` paid a receipt), where another reader of the same signed bytes
 * (the provider's log, a proxy) may take the first; the app's other JSON bodies are refused alike.
 *
 * `amountPaths` are where the provider's amounts are (`["amount_cents"]`): one written with more
 * digits than a JSON number holds and read by JSON.parse as a whole number that its digits are not
 * (`999.99999999999999` is 1000 once parsed) comes back as NaN, which the provider's check of the
 * amount refuses as not a whole number of minor units. Such a body paid a 10.00 receipt in full.
 */
export function parseWebhookJson(rawBody: Buffer, amountPaths: readonly (readonly string[])[] = []): unknown {
  const text = jsonTextOf(rawBody);
  let literal: LosslessJson | undefined;
  try {
    literal = parseJsonKeepingNumberText(text);
  } catch (error) {
    if (error instanceof JsonDuplicateKeyError) {
      throw new WebhookBodyError(
        `body gives ${error.key} more than once; an event gives each field once, so which value it means cannot be told`,
      );
    }
    // The reader stops there, so a key given twice after it would go unseen; no provider's event
    // comes near this depth (Stripe's are a few levels deep).
    if (error instanceof JsonTooDeepError) {
      throw new WebhookBodyError(`body is nested deeper than ${error.maxDepth} levels, which no event is`);
    }
    // Anything else it cannot read (not JSON) is left to JSON.parse below.
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new WebhookBodyError('body is not JSON');
  }
  for (const path of amountPaths) {
    const written = valueAt(literal, path);
    if (!(written instanceof JsonNumberText)) continue;
    const parent = path.slice(0, -1).reduce<unknown>((at, key) => (at as Record<string, unknown>)[key], body);
    const key = path[path.length - 1] as string;
    const read = (parent as Record<string, unknown>)[key];
    if (typeof read === 'number' && Number.isInteger(read) && exactWholeNumberOf(written.text) !== BigInt(read)) {
      (parent as Record<string, unknown>)[key] = Number.NaN;
    }
  }
  return body;
}

export class WebhookSignatureError extends AppError {
  constructor(reason: string) {
    super(400, `Webhook rejected: ${reason}.`);
  }
}

/**
 * A delivery whose signature holds but whose body is no event the provider sends: the secret is
 * right, so it is not counted as a bad signature (which would send someone to rotate it).
 */
export class WebhookBodyError extends AppError {
  constructor(reason: string) {
    super(400, `Webhook rejected: ${reason}.`);
  }
}

/**
 * A dispute's outcome (`dispute_status`) sent under the dispute's own event type: a body of another event,
 * refused as one missing its fields is, and logged with its reason, since its sender (a person sending the
 * dummy provider's events by hand) must resend it as `payment.dispute_closed`. It was answered 200 `ignored`
 * (the dispute recorded already) or recorded as a dispute still open, the loss dropped without a word.
 */
export class DisputeOutcomeAsDisputedError extends WebhookBodyError {}

/**
 * Refuses a body that is not UTF-8, once its signature holds, naming its first bad byte. JSON is UTF-8
 * (RFC 8259, 8.1): such bytes inside a string were read as U+FFFD and stored so from the dummy provider,
 * and Stripe's, signed over them, were answered "does not match", which sent its operator to the secret.
 */
export function refuseBodyNotUtf8(rawBody: Buffer): void {
  const offset = findFirstNonUtf8Byte(rawBody);
  if (offset === undefined) return;
  const byte = (rawBody[offset] ?? 0).toString(16).toUpperCase().padStart(2, '0');
  throw new WebhookBodyError(
    `body is not valid UTF-8: byte 0x${byte} at offset ${offset} (counting from 0) begins no valid UTF-8 character; JSON is sent as UTF-8 (RFC 8259, 8.1)`,
  );
}

/**
 * A currency code as a provider writes it (ISO 4217, three letters, either case): what both
 * providers accept in a webhook body, and what the char(3) currency columns can hold.
 */
export const PROVIDER_CURRENCY_CODE = /^[A-Za-z]{3}$/;

/**
 * A webhook amount too large to hold as a whole number exactly (JSON numbers are doubles): said as
 * such, since "must be a whole number, 0 or more" misled the sender of 1e20, which is both.
 */
export const AMOUNT_TOO_LARGE = `is too large: at most ${Number.MAX_SAFE_INTEGER} minor units`;

/** True for a JSON number above the largest whole number of minor units a webhook may carry. */
export function isAmountTooLarge(value: unknown): boolean {
  return typeof value === 'number' && value > Number.MAX_SAFE_INTEGER;
}

export class PaymentProviderError extends AppError {
  constructor(message: string) {
    super(502, message);
  }
}
