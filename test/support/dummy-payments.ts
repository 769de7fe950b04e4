import type express from 'express';
import request from 'supertest';
import { signDummyWebhook } from '../../src/modules/payments/dummy.provider.js';

export const DUMMY_WEBHOOK_SECRET = 'test-dummy-webhook-secret';

/** The environment of an app that takes payments through the dummy provider. */
export const DUMMY_PAYMENTS_ENV = {
  PAYMENT_PROVIDER: 'dummy',
  PAYMENT_WEBHOOK_SECRET: DUMMY_WEBHOOK_SECRET,
  PUBLIC_BASE_URL: 'http://billing.test',
};

/** POSTs `event` to the dummy provider's webhook, signed as the provider signs it. */
export function deliverDummy(app: express.Express, event: Record<string, unknown>, secret = DUMMY_WEBHOOK_SECRET) {
  const body = JSON.stringify(event);
  return request(app)
    .post('/payments/webhook/dummy')
    .set('Content-Type', 'application/json')
    .set('X-Dummy-Signature', signDummyWebhook(body, secret))
    .send(body);
}
