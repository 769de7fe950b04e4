import { createHmac } from 'node:crypto';

/** The header the dummy payment provider signs its webhooks in. */
export const DUMMY_SIGNATURE_HEADER = 'X-Dummy-Signature';

/** Lowercase hex HMAC-SHA256 of the exact raw body under the webhook secret. */
export function signDummyWebhook(rawBody: string | Buffer, secret: string): string {
  return createHmac('sha256', secret).update(rawBody).digest('hex');
}

export interface DummyPaymentEvent {
  event_id: string;
  event_type: 'payment.succeeded';
  external_payment_id: string;
  amount_cents: number;
  currency: string;
}

/** A payment.succeeded event and its signed raw body, ready to POST. */
export function buildSignedDummyEvent(event: DummyPaymentEvent, secret: string): { body: string; signature: string } {
  const body = JSON.stringify(event);
  return { body, signature: signDummyWebhook(body, secret) };
}
