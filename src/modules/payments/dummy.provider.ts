import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { z } from 'zod';
import type { Checkout, CheckoutExpiry, CheckoutRequest, PaymentEvent, PaymentProvider } from './payment-provider.js';
import {
  AMOUNT_TOO_LARGE,
  DisputeOutcomeAsDisputedError,
  isAmountTooLarge,
  PROVIDER_CURRENCY_CODE,
  parseWebhookJson,
  refuseBodyNotUtf8,
  WebhookBodyError,
  WebhookSignatureError,
} from './payment-provider.js';

export const DUMMY_SIGNATURE_HEADER = 'x-dummy-signature';

/** Lowercase hex HMAC-SHA256 of the raw body (the header takes it in either case). */
export function signDummyWebhook(rawBody: string | Buffer, secret: string): string {
  return createHmac('sha256', secret).update(rawBody).digest('hex');
}

// Each message finishes "body's <field> …": the answer is all a provider's developer sees.
const text = (max: number) =>
  z
    .string({ error: `must be text of 1 to ${max} characters` })
    .min(1)
    .max(max);
const ZDummyEvent = z.object(
  {
    event_id: text(128),
    event_type: text(64),
    external_payment_id: text(128),
    amount_cents: z
      .number({ error: 'must be a whole number of minor units, 0 or more' })
      .refine((value) => !isAmountTooLarge(value), { error: AMOUNT_TOO_LARGE, abort: true })
      .int()
      .nonnegative(),
    currency: z.string({ error: 'must be a three-letter currency code' }).regex(PROVIDER_CURRENCY_CODE),
    // payment.disputed only: the dispute's id (the event's when left out) and the payer's reason.
    dispute_id: text(128).optional(),
    dispute_reason: text(64).optional(),
    // payment.dispute_closed only: how the dispute ended.
    dispute_status: z.enum(['won', 'lost'], { error: 'must be "won" or "lost"' }).optional(),
    // payment.refund_failed only: the refund that failed (each failure is recorded once per refund
    // id, so it has no default), how it ended ("failed" when left out) and why, as Stripe's Refund says.
    refund_id: text(128).optional(),
    refund_status: z.enum(['failed', 'canceled'], { error: 'must be "failed" or "canceled"' }).optional(),
    failure_reason: text(64).optional(),
  },
  { error: 'is not a JSON object with the dummy event fields' },
);

/**
 * The development and demo provider: checkout is a local page (/payments/dummy/checkout/:id)
 * where the payer chooses pay, fail or cancel, and the outcome arrives as a webhook signed
 * like a real provider's. Refused in production.
 */
export function createDummyProvider(options: { webhookSecret: string }): PaymentProvider {
  return {
    name: 'dummy',
    async startCheckout(request: CheckoutRequest): Promise<Checkout> {
      const externalPaymentId = `dummy_${request.paymentId}_${randomUUID().slice(0, 8)}`;
      // Same-origin path: the page is ours, whatever address the payer reached us by.
      return { externalPaymentId, checkoutUrl: `/payments/dummy/checkout/${externalPaymentId}` };
    },
    // The local page takes a choice only while its payment is pending (completeDummyCheckout), so
    // the payment's cancel has closed it already: there is no one else to tell.
    async expireCheckout(): Promise<CheckoutExpiry> {
      return 'expired';
    },
    async parseWebhook(rawBody: Buffer, headers: IncomingHttpHeaders): Promise<PaymentEvent> {
      const given = headers[DUMMY_SIGNATURE_HEADER];
      // Hex in either case: some HMAC libraries (.NET's) print it in upper case, the same bytes.
      if (typeof given !== 'string' || !/^[0-9a-f]{64}$/i.test(given))
        throw new WebhookSignatureError('missing or malformed X-Dummy-Signature');
      const expected = Buffer.from(signDummyWebhook(rawBody, options.webhookSecret), 'hex');
      if (!timingSafeEqual(expected, Buffer.from(given, 'hex')))
        throw new WebhookSignatureError('signature does not match');
      refuseBodyNotUtf8(rawBody);
      return readDummyEvent(rawBody);
    },
    readEvent: readDummyEvent,
  };
}

/** A dummy event's body, once its signature holds; throws WebhookBodyError saying what is wrong. */
function readDummyEvent(rawBody: Buffer): PaymentEvent {
  const body = parseWebhookJson(rawBody, [['amount_cents']]);
  const parsed = ZDummyEvent.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join('.');
    if (!field) throw new WebhookBodyError(`body ${issue?.message}`);
    if ((body as Record<string, unknown>)[field] === undefined) {
      throw new WebhookBodyError(
        `body has no ${field}; the dummy event fields are ${Object.keys(ZDummyEvent.shape).join(', ')}`,
      );
    }
    throw new WebhookBodyError(`body's ${field} ${issue?.message}`);
  }
  // Refunds, failed refunds and disputes are written by hand: a field spelt otherwise (`disputeId`) was
  // ignored, so the dispute was recorded under its event id and its loss, naming the id as written,
  // was answered 200 "ignored" and never counted. Checked once the fields it has are right.
  const unknownField = Object.keys(body as Record<string, unknown>).find(
    (key) => !Object.hasOwn(ZDummyEvent.shape, key),
  );
  if (unknownField !== undefined) {
    throw new WebhookBodyError(
      `body has a field the dummy events do not have, ${JSON.stringify(unknownField.slice(0, 64))}; ` +
        `the dummy event fields are ${Object.keys(ZDummyEvent.shape).join(', ')}`,
    );
  }
  const isDisputeClosed = parsed.data.event_type === 'payment.dispute_closed';
  if (parsed.data.event_type === 'payment.disputed' && parsed.data.dispute_status !== undefined) {
    throw new DisputeOutcomeAsDisputedError(
      `body gives dispute_status "${parsed.data.dispute_status}", the outcome of a dispute, which a payment.disputed ` +
        'event does not carry: send it as a payment.dispute_closed event with the same dispute_id ' +
        `(${parsed.data.dispute_id ?? parsed.data.event_id}); nothing was stored`,
    );
  }
  if (isDisputeClosed && parsed.data.dispute_status === undefined) {
    throw new WebhookBodyError('body has no dispute_status; a payment.dispute_closed event needs "won" or "lost"');
  }
  // Left out, the closed dispute's id was this event's own, which no recorded dispute has: a lost
  // dispute was answered 200 "ignored", and the money the bank took back was never counted.
  if (isDisputeClosed && parsed.data.dispute_id === undefined) {
    throw new WebhookBodyError(
      "body has no dispute_id; a payment.dispute_closed event names the dispute it closes: the dispute_id its payment.disputed gave, or that event's event_id when it gave none",
    );
  }
  const isRefundFailed = parsed.data.event_type === 'payment.refund_failed';
  if (isRefundFailed && parsed.data.refund_id === undefined) {
    throw new WebhookBodyError('body has no refund_id; a payment.refund_failed event names the refund that failed');
  }
  return {
    id: parsed.data.event_id,
    type: parsed.data.event_type,
    externalPaymentId: parsed.data.external_payment_id,
    amountMinor: BigInt(parsed.data.amount_cents),
    currency: parsed.data.currency.toUpperCase(),
    ...(parsed.data.event_type === 'payment.disputed' || isDisputeClosed
      ? {
          dispute: {
            id: parsed.data.dispute_id ?? parsed.data.event_id,
            reason: parsed.data.dispute_reason ?? null,
            ...(isDisputeClosed ? { status: parsed.data.dispute_status } : {}),
          },
        }
      : {}),
    ...(isRefundFailed && parsed.data.refund_id !== undefined
      ? {
          refund: {
            id: parsed.data.refund_id,
            status: parsed.data.refund_status ?? 'failed',
            failureReason: parsed.data.failure_reason ?? null,
          },
        }
      : {}),
    raw: rawBody.toString('utf8'),
  };
}
