import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDummyWebhook } from '../../src/modules/payments/dummy.provider.js';
import { createPayingResearchers, DUMMY_WEBHOOK_SECRET, setUpDummyPayments } from '../support/dummy-payments.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * A provider's developer whose HMAC library prints hex in upper case (.NET's Convert.ToHexString,
 * for one) sent the right digest and was refused 400 "missing or malformed X-Dummy-Signature": the
 * header took only lowercase hex. The digest is the same bytes in either case.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
const researchers = createPayingResearchers(() => ({ db, app }), 'hexcase');

beforeAll(async () => {
  ({ db, app } = await setUpDummyPayments());
});
afterAll(() => db?.drop());

const pendingPayment = () => researchers.pendingPayment();

function succeededBody(payment: { id: number; externalPaymentId: string | null }, eventId: string) {
  return JSON.stringify({
    event_id: eventId,
    event_type: 'payment.succeeded',
    external_payment_id: payment.externalPaymentId,
    amount_cents: 1000,
    currency: 'THB',
  });
}

const deliver = (body: string, signature: string) =>
  request(app)
    .post('/payments/webhook/dummy')
    .set('Content-Type', 'application/json')
    .set('X-Dummy-Signature', signature)
    .send(body);

describe('the dummy provider’s X-Dummy-Signature', () => {
  it('takes the digest in upper case, or mixed, as in lower case', async () => {
    const upper = await pendingPayment();
    const upperBody = succeededBody(upper, `evt-upper-${upper.id}`);
    const answer = await deliver(upperBody, signDummyWebhook(upperBody, DUMMY_WEBHOOK_SECRET).toUpperCase());
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toEqual({ received: true, outcome: 'ok' });
    expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: upper.id } })).status).toBe('succeeded');

    const mixed = await pendingPayment();
    const mixedBody = succeededBody(mixed, `evt-mixed-${mixed.id}`);
    const digest = signDummyWebhook(mixedBody, DUMMY_WEBHOOK_SECRET);
    const mixedCase = [...digest].map((char, index) => (index % 2 === 0 ? char.toUpperCase() : char)).join('');
    await deliver(mixedBody, mixedCase).expect(200);
    expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: mixed.id } })).status).toBe('succeeded');
  });

  it('still refuses another secret’s digest in upper case, a sha256= prefix and a wrong length, storing nothing', async () => {
    const payment = await pendingPayment();
    const body = succeededBody(payment, `evt-refused-${payment.id}`);
    const before = await db.prisma.paymentEvent.count();
    const otherSecret = await deliver(body, signDummyWebhook(body, 'some-other-secret').toUpperCase());
    expect(otherSecret.status).toBe(400);
    expect(otherSecret.body).toEqual({ error: 'Webhook rejected: signature does not match.', code: 400 });
    const digest = signDummyWebhook(body, DUMMY_WEBHOOK_SECRET);
    for (const malformed of [`sha256=${digest}`, `SHA256=${digest.toUpperCase()}`, digest.slice(2), `${digest}00`]) {
      const answer = await deliver(body, malformed);
      expect(answer.status, malformed).toBe(400);
      expect(answer.body).toEqual({ error: 'Webhook rejected: missing or malformed X-Dummy-Signature.', code: 400 });
    }
    expect(await db.prisma.paymentEvent.count()).toBe(before);
    expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe('pending');
  });
});
