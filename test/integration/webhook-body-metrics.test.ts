import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, type Metrics } from '../../src/modules/metrics/metrics.js';
import { signDummyWebhook } from '../../src/modules/payments/dummy.provider.js';
import { DUMMY_PAYMENTS_ENV, DUMMY_WEBHOOK_SECRET } from '../support/dummy-payments.js';
import { buildTestApp, metricValue } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let metrics: Metrics;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  db = await createTestDatabase();
  metrics = createMetrics();
  app = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV, metrics });
});
afterAll(() => db?.drop());

const outcomes = async () => ({
  badSignature: await metricValue(metrics, 'payments_webhook_events_total', {
    provider: 'dummy',
    event: 'other',
    outcome: 'bad_signature',
  }),
  error: await metricValue(metrics, 'payments_webhook_events_total', {
    provider: 'dummy',
    event: 'other',
    outcome: 'error',
  }),
});

describe('a correctly signed webhook whose body is no event', () => {
  it.each([
    ['text that is not JSON', 'not json', 'Webhook rejected: body is not JSON.'],
    ['a JSON array', '[]', 'Webhook rejected: body is not a JSON object with the dummy event fields.'],
  ])('%s is refused with 400 and counted as an error, not as a bad signature', async (_label, body, message) => {
    const before = await outcomes();
    const response = await request(app)
      .post('/payments/webhook/dummy')
      .set('Content-Type', 'application/json')
      .set('X-Dummy-Signature', signDummyWebhook(body, DUMMY_WEBHOOK_SECRET))
      .send(body);
    expect(response.status).toBe(400);
    expect(response.body).toEqual({ error: message, code: 400 });
    expect(await db.prisma.paymentEvent.count()).toBe(0);
    // The secret is right: an alert on bad signatures must not send anyone to rotate it.
    expect(await outcomes()).toEqual({ badSignature: before.badSignature, error: before.error + 1 });
  });
});
