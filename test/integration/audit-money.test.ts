import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliverDummy, setUpDummyPaymentsApp } from '../support/dummy-payments.js';
import { researcherWithReceiptOf } from '../support/receipt-steps.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;
beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('ledger'));
});
afterAll(() => db?.drop());

let counter = 0;
/** A pending receipt of 1.50 THB (3 CPU hours at 0.50 THB). */
async function pendingReceipt() {
  counter += 1;
  return (await researcherWithReceiptOf(app, db, `auditee${counter}`, 3)).receiptId;
}

async function auditOf(action: string, receiptId: number) {
  return db.prisma.auditLog.findFirstOrThrow({ where: { action, target: `receipt:${receiptId}` } });
}

/**
 * A pending receipt whose checkout the provider paid `amountCents` (not the amount due), held for
 * review, and which the admin resolved as refunded with `note`; the receipt's id.
 */
async function overpaidAndRefundedByHand(eventPrefix: string, amountCents: number, note: string) {
  const receiptId = await pendingReceipt();
  const { username } = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
  const agent = await signInAs(app, username, `${username}-password`);
  await agent
    .post(`/payments/receipt/${receiptId}/start`)
    .type('form')
    .send({ csrf_token: await csrfTokenOf(agent) })
    .expect(303);
  const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId } });
  await deliverDummy(app, {
    event_id: `${eventPrefix}${payment.id}`,
    event_type: 'payment.succeeded',
    external_payment_id: payment.externalPaymentId,
    amount_cents: amountCents,
    currency: 'THB',
  }).expect(200);
  await admin
    .post(`/admin/payments/${payment.id}/resolve`)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin))
    .send({ outcome: 'refunded', note })
    .expect(200);
  return receiptId;
}

describe('the audit entries of finance actions say how much money', () => {
  it('a receipt marked paid by hand records the amount recorded as paid', async () => {
    const receiptId = await pendingReceipt();
    const { total, currency } = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
    await admin
      .post(`/admin/receipts/${receiptId}/paid`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ method: 'bank_transfer', amount_received: total.toFixed(2), tx_ref: 'BT-1' })
      .expect(200);
    expect((await auditOf('receipt.mark_paid', receiptId)).details).toMatchObject({
      method: 'bank_transfer',
      total: total.toFixed(2),
      amountReceived: total.toFixed(2),
      currency,
    });
  });

  it('a voided receipt records the amount it no longer bills', async () => {
    const receiptId = await pendingReceipt();
    const { total, currency } = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
    await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ reason: 'duplicate receipt' })
      .expect(200);
    expect((await auditOf('receipt.void', receiptId)).details).toMatchObject({
      previousStatus: 'pending',
      total: total.toFixed(2),
      currency,
    });
  });

  it('a held payment resolved as refunded records what was due and what the provider received', async () => {
    const receiptId = await overpaidAndRefundedByHand(
      'evt_over_',
      1500,
      'refunded the 15.00 THB in the provider dashboard',
    );
    expect((await auditOf('payment.resolve', receiptId)).details).toMatchObject({
      outcome: 'refunded',
      amountMinor: '150',
      currency: 'THB',
      receivedMinor: '1500',
      receivedCurrency: 'THB',
    });
  });

  it('a receipt paid online records the currency of its amounts, at the start and when paid', async () => {
    const receiptId = await pendingReceipt();
    const { username } = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
    const agent = await signInAs(app, username, `${username}-password`);
    const started = await agent
      .post(`/payments/receipt/${receiptId}/start`)
      .type('form')
      .send({ csrf_token: await csrfTokenOf(agent) })
      .expect(303);
    await agent
      .post(started.headers.location as string)
      .type('form')
      .send({ choice: 'pay', csrf_token: await csrfTokenOf(agent) })
      .expect(303);
    expect((await auditOf('payment.start', receiptId)).details).toMatchObject({ amountMinor: '150', currency: 'THB' });
    expect((await auditOf('receipt.paid_online', receiptId)).details).toMatchObject({
      amountMinor: '150',
      currency: 'THB',
    });
  });
  it('the audit page writes each amount kept in minor units as money beside it, the details as recorded', async () => {
    const receiptId = await overpaidAndRefundedByHand(
      'evt_page_',
      123456,
      'refunded the 1,234.56 THB in the provider dashboard',
    );
    const page = await admin
      .get(`/admin/audit?action=payment.resolve&actor=ledger`)
      .set('Accept', 'text/html')
      .expect(200);
    const row = page.text.slice(page.text.indexOf(`receipt:${receiptId}`));
    const details = row.slice(row.indexOf('data-label="Details"'), row.indexOf('</tr>'));
    // "receivedMinor":"123456" read as 123,456 THB: the amount is said in the currency as well.
    expect(details).toContain('amountMinor 150 = 1.50 THB');
    expect(details).toContain('receivedMinor 123456 = 1,234.56 THB');
    // The recorded details, which the hash chain covers, are shown as they are.
    expect(details).toContain('&#34;amountMinor&#34;:&#34;150&#34;');
  });
});
