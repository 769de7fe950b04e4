import type express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectPageForBrowsersAndNoJsonForResearchers } from '../support/admin-json.js';
import { createPayingResearchers, deliverDummy, setUpDummyPaymentsApp } from '../support/dummy-payments.js';
import type { Agent } from '../support/sign-in.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * /admin/payments for a script (finance listing what is held for review): the page answered a JSON
 * client with its HTML, while a bad cursor already got {error, code}. Now the held payments, the
 * refused refunds and disputes, the page of every payment with its cursor links and the webhook
 * deliveries come as JSON, money as decimal text.
 */

let db: TestDatabase;
let app: express.Express;
let admin: Agent;
const researchers = createPayingResearchers(() => ({ db, app }), 'held');

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('ledger'));
});
afterAll(() => db?.drop());

type PaymentJson = { id: number; status: string };

function getJson(path: string) {
  return admin.get(path).set('Accept', 'application/json');
}

describe('GET /admin/payments for a JSON client', () => {
  it('answers the held payments, refused claims, payments and deliveries of the page as JSON', async () => {
    const paid = await researchers.paidOnline();
    // More back than it received: refused, changing nothing, and listed for finance.
    const refusedEvent = `too_much_${paid.payment.id}`;
    await deliverDummy(app, {
      event_id: refusedEvent,
      event_type: 'payment.refunded',
      external_payment_id: paid.payment.externalPaymentId,
      amount_cents: 1001,
      currency: 'THB',
    }).expect(409);
    const held = await researchers.researcherWithReceipt();
    await researchers.startCheckout(held.agent, held.receiptId);
    const short = await researchers.latestPaymentOf(held.receiptId);
    await deliverDummy(app, {
      event_id: `short_${short.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: short.externalPaymentId,
      amount_cents: 100,
      currency: 'THB',
    }).expect(200);

    const answer = await getJson('/admin/payments').expect(200);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    const body = answer.body;
    expect(body.needsReview).toBe(1);
    expect(body.heldForReview).toEqual([
      expect.objectContaining({
        id: short.id,
        receiptId: held.receiptId,
        receiptStatus: 'pending',
        username: held.user.username,
        provider: 'dummy',
        status: 'needs_review',
        amount: '10.00',
        currency: 'THB',
        received: { amount: '1.00', currency: 'THB' },
        isReceivedDifferent: true,
        hasAmountMismatch: true,
        holdsPaidReceipt: false,
        refunded: null,
        refundFailed: null,
        reviewReason: expect.any(String),
        reviewOutcome: null,
        externalPaymentId: short.externalPaymentId,
        createdAt: short.createdAt.toISOString(),
        receiptUrl: `/admin/receipts/${held.receiptId}`,
      }),
    ]);
    expect(body.refusedClaimCount).toBe(1);
    expect(body.refusedClaims).toEqual([
      expect.objectContaining({
        paymentId: paid.payment.id,
        receiptId: paid.receiptId,
        provider: 'dummy',
        externalEventId: refusedEvent,
        eventType: 'payment.refunded',
        what: expect.any(String),
        claimed: { amount: '10.01', currency: 'THB' },
        reason: expect.any(String),
        deliveries: 1,
        firstReceivedAt: expect.stringMatching(/Z$/),
      }),
    ]);
    // Every payment, newest first; one page, so no cursor.
    expect(body.payments.map((payment: PaymentJson) => [payment.id, payment.status])).toEqual([
      [short.id, 'needs_review'],
      [paid.payment.id, 'succeeded'],
    ]);
    expect(body.payments[1]).toMatchObject({ amount: '10.00', received: { amount: '10.00', currency: 'THB' } });
    expect(body.paging).toEqual({ isFirst: true, newerUrl: null, olderUrl: null });
    expect(body.events.map((event: { externalEventId: string }) => event.externalEventId)).toContain(
      `short_${short.id}`,
    );
    expect(body.events[0]).toMatchObject({ provider: 'dummy', receivedAt: expect.stringMatching(/Z$/) });
  });

  it('pages every payment with the page’s cursor links, and refuses a bad cursor with {error, code}', async () => {
    const { receiptId } = await researchers.researcherWithReceipt();
    await db.pool.query(
      `INSERT INTO payments (receipt_id, provider, status, amount_minor, currency, external_payment_id,
                             idempotency_key, created_at, updated_at)
       SELECT $1, 'dummy', 'failed', 1000, 'THB', 'bulk-' || n, 'bulk-' || n,
              timestamptz '2026-02-01 00:00Z' + n * interval '1 minute', now()
         FROM generate_series(1, 205) AS n`,
      [receiptId],
    );
    const expected = (
      await db.prisma.payment.findMany({ orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], select: { id: true } })
    ).map((payment) => payment.id);
    const first = (await getJson('/admin/payments').expect(200)).body;
    expect(first.payments.map((payment: PaymentJson) => payment.id)).toEqual(expected.slice(0, 200));
    expect(first.paging).toEqual({ isFirst: true, newerUrl: null, olderUrl: `/admin/payments?older=${expected[199]}` });
    const second = (await getJson(first.paging.olderUrl).expect(200)).body;
    expect(second.payments.map((payment: PaymentJson) => payment.id)).toEqual(expected.slice(200));
    expect(second.paging).toEqual({
      isFirst: false,
      newerUrl: `/admin/payments?newer=${expected[200]}`,
      olderUrl: null,
    });
    const back = (await getJson(second.paging.newerUrl).expect(200)).body;
    expect(back.payments.map((payment: PaymentJson) => payment.id)).toEqual(expected.slice(0, 200));

    const before = await db.prisma.payment.findMany({ orderBy: { id: 'asc' } });
    for (const [path, code] of [
      ['/admin/payments?older=abc', 400],
      ['/admin/payments?older=1&newer=2', 400],
      ['/admin/payments?older=2000000', 404],
    ] as const) {
      const refused = await getJson(path).expect(code);
      expect(refused.headers['content-type']).toMatch(/^application\/json/);
      expect(refused.body).toEqual({ error: expect.any(String), code });
    }
    expect(await db.prisma.payment.findMany({ orderBy: { id: 'asc' } })).toEqual(before);
  });

  it('still gives a browser the page, and a researcher asking for JSON no one’s payments', async () => {
    const { agent } = await researchers.researcherWithReceipt();
    await expectPageForBrowsersAndNoJsonForResearchers(admin, agent, '/admin/payments');
  });
});
