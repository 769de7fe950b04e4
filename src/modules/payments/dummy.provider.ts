import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { z } from 'zod';
import type { Checkout, CheckoutExpiry, CheckoutRequest, PaymentEvent, PaymentProvider } from './payment-provider.js';
import { WebhookSignatureError } from './payment-provider.js';

export const DUMMY_SIGNATURE_HEADER = 'x-dummy-signature';

/** Lowercase hex HMAC-SHA256 of the raw body. */
export function signDummyWebhook(rawBody: string | Buffer, secret: string): string {
  return createHmac('sha256', secret).update(rawBody).digest('hex');
}

const ZDummyEvent = z.object({
  event_id: z.string().min(1).max(128),
  event_type: z.string().min(1).max(64),
  external_payment_id: z.string().min(1).max(128),
  amount_cents: z.number().int().nonnegative().safe(),
  currency: z.string().regex(/^[A-Za-z]{3}$/),
});

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
      if (typeof given !== 'string' || !/^[0-9a-f]{64}$/.test(given))
        throw new WebhookSignatureError('missing or malformed X-Dummy-Signature');
      const expected = Buffer.from(signDummyWebhook(rawBody, options.webhookSecret), 'hex');
      if (!timingSafeEqual(expected, Buffer.from(given, 'hex')))
        throw new WebhookSignatureError('signature does not match');
      let body: unknown;
      try {
        body = JSON.parse(rawBody.toString('utf8'));
      } catch {
        throw new WebhookSignatureError('body is not JSON');
      }
      const parsed = ZDummyEvent.safeParse(body);
      if (!parsed.success)
        throw new WebhookSignatureError(
          `body does not have the dummy event fields (${parsed.error.issues[0]?.path.join('.')})`,
        );
      return {
        id: parsed.data.event_id,
        type: parsed.data.event_type,
        externalPaymentId: parsed.data.external_payment_id,
        amountMinor: BigInt(parsed.data.amount_cents),
        currency: parsed.data.currency.toUpperCase(),
        raw: rawBody.toString('utf8'),
      };
    },
  };
}
