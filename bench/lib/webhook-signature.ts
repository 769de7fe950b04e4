import { DUMMY_SIGNATURE_HEADER, signDummyWebhook } from '../../src/modules/payments/dummy.provider.js';

// The app's own signer, so the harness signs exactly as the provider verifies.
export { DUMMY_SIGNATURE_HEADER, signDummyWebhook };

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
