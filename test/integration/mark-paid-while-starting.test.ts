import type request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amountDueOf, buildTiers } from '../support/billing-factories.js';
import { type FakeStripe, startFakeStripe } from '../support/fake-stripe.js';
import { researcherWithReceiptOf } from '../support/receipt-steps.js';
import { csrfTokenOf, signInNewAdmin } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

const SECRET_KEY = 'sk_test_fakekeyformarkpaid';

let db: TestDatabase;
let fake: FakeStripe;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  fake = await startFakeStripe(SECRET_KEY);
  app = buildTestApp(db, {
    env: {
      PAYMENT_PROVIDER: 'stripe',
      STRIPE_SECRET_KEY: SECRET_KEY,
      STRIPE_WEBHOOK_SECRET: 'whsec_testsecretformarkpaid',
      STRIPE_API_URL: fake.url,
      PUBLIC_BASE_URL: 'http://billing.test',
    },
  });
});
afterAll(async () => {
  await fake?.close();
  await db?.drop();
});

describe('a receipt marked paid by hand while its payment is starting', () => {
  it('tells the researcher it was paid, not that it was voided, and closes the session it opened', async () => {
    // 10.00 THB (20 CPU core-hours), Stripe's minimum in THB.
    const { agent, receiptId } = await researcherWithReceiptOf(app, db, 'startpayer', 20);
    const admin = await signInNewAdmin(app, db, 'cashier');

    // The researcher pays by bank transfer too; the billing team records it while Stripe opens the session.
    let marked: request.Response | undefined;
    fake.whileNextInFlight(async () => {
      marked = await admin
        .post(`/admin/receipts/${receiptId}/paid`)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(admin))
        .send({ method: 'bank_transfer', amount_received: await amountDueOf(db, receiptId), tx_ref: 'BT-77' });
    });
    const token = await csrfTokenOf(agent);
    const started = await agent
      .post(`/payments/receipt/${receiptId}/start`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({});

    expect(marked?.status, marked?.text).toBe(200);
    expect(started.status, started.text).toBe(409);
    expect(started.body).toEqual({
      error: `Receipt #${receiptId} was marked paid while its payment was starting; there is nothing to pay.`,
      code: 409,
    });
    const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId } });
    expect(payment.status).toBe('canceled');
    expect(
      fake.requests.filter((sent) => sent.path === `/v1/checkout/sessions/${payment.externalPaymentId}/expire`),
    ).toHaveLength(1);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('paid');
  });
});
