import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amountDueOf } from '../support/billing-factories.js';
import { deliverDummy, setUpDummyPaymentsApp } from '../support/dummy-payments.js';
import { researcherWithReceiptOf } from '../support/receipt-steps.js';
import { type Agent, csrfTokenOf } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// The app's clock, a day after the jobs were billed: every finance change is recorded at this instant.
const NOW = new Date('2026-02-02T09:00:00.000Z');

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;
beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('clockadmin', { now: () => NOW }));
});
afterAll(() => db?.drop());

let counter = 0;
async function pendingReceipt() {
  counter += 1;
  const { agent, receiptId } = await researcherWithReceiptOf(app, db, `clocked${counter}`, 1);
  return { agent, receiptId };
}

async function auditTimes(receiptId: number, actions: string[]) {
  const entries = await db.prisma.auditLog.findMany({
    where: { target: `receipt:${receiptId}`, action: { in: actions } },
    orderBy: { id: 'asc' },
  });
  return entries.map((entry) => [entry.action, entry.ts.toISOString()]);
}

async function post(path: string, body: Record<string, unknown>) {
  return admin
    .post(path)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin))
    .send(body)
    .expect(200);
}

describe('the audit entries of finance changes carry the time the change was made', () => {
  it('created: the creation at the receipt created_at', async () => {
    const { receiptId } = await pendingReceipt();
    const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
    expect(receipt.createdAt.toISOString()).toBe(NOW.toISOString());
    expect(await auditTimes(receiptId, ['receipt.create'])).toEqual([['receipt.create', NOW.toISOString()]]);
  });

  it('marked paid by hand with an open checkout: the cancel and the mark-paid at the receipt paid_at', async () => {
    const { agent, receiptId } = await pendingReceipt();
    await agent
      .post(`/payments/receipt/${receiptId}/start`)
      .type('form')
      .send({ csrf_token: await csrfTokenOf(agent) })
      .expect(303);
    await post(`/admin/receipts/${receiptId}/paid`, {
      method: 'cash',
      amount_received: await amountDueOf(db, receiptId),
    });
    const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
    expect(receipt.paidAt?.toISOString()).toBe(NOW.toISOString());
    expect(await auditTimes(receiptId, ['payment.cancel', 'receipt.mark_paid'])).toEqual([
      ['payment.cancel', NOW.toISOString()],
      ['receipt.mark_paid', NOW.toISOString()],
    ]);
  });

  it('voided: the void at the receipt voided_at', async () => {
    const { receiptId } = await pendingReceipt();
    await post(`/admin/receipts/${receiptId}/void`, { reason: 'duplicate receipt' });
    const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
    expect(receipt.voidedAt?.toISOString()).toBe(NOW.toISOString());
    expect(await auditTimes(receiptId, ['receipt.void'])).toEqual([['receipt.void', NOW.toISOString()]]);
  });

  it('a held payment accepted: the mark-paid no later than the resolution that made it', async () => {
    const { agent, receiptId } = await pendingReceipt();
    await agent
      .post(`/payments/receipt/${receiptId}/start`)
      .type('form')
      .send({ csrf_token: await csrfTokenOf(agent) })
      .expect(303);
    const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId } });
    await deliverDummy(app, {
      event_id: `evt_clock_${payment.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 40,
      currency: 'THB',
    }).expect(200);
    await post(`/admin/payments/${payment.id}/resolve`, {
      outcome: 'accepted',
      accept_mismatch: 'yes',
      note: 'short by 0.10 THB, written off',
    });
    expect(await auditTimes(receiptId, ['receipt.mark_paid', 'payment.resolve'])).toEqual([
      ['receipt.mark_paid', NOW.toISOString()],
      ['payment.resolve', NOW.toISOString()],
    ]);
  });
});
