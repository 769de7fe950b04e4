import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amountDueOf, buildJobs } from '../support/billing-factories.js';
import { deliverDummy, setUpDummyPaymentsApp } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// Voiding a paid receipt holds the online payment that paid it, for a refund decision. A receipt
// marked paid by hand has none, and its void said only "its jobs can be billed again": nothing
// about the money recorded as paying it, which someone must now return or apply elsewhere; nor
// about an online payment of the same receipt that an admin had dismissed, its money kept.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('finance'));
});
afterAll(() => db?.drop());

let counter = 0;
/** A researcher with one pending receipt of 0.50 THB (1 CPU hour). */
async function researcherWithReceipt() {
  counter += 1;
  const user = await buildUser(db.prisma, { username: `handpayer${counter}` });
  await buildJobs(db, [{ user: user.username, end: '2026-01-10T10:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
  const agent = await signInAs(app, user.username, user.password);
  const created = await agent
    .post('/me/receipt')
    .type('form')
    .send({ before: '2026-01-31', csrf_token: await csrfTokenOf(agent) });
  expect(created.status, created.text.slice(0, 200)).toBe(303);
  const receiptId = Number(/^\/me\/receipts\/(\d+)#receipt$/.exec(created.headers.location ?? '')?.[1]);
  return { agent, receiptId };
}

async function markPaidByHand(receiptId: number, txRef: string) {
  await admin
    .post(`/admin/receipts/${receiptId}/paid`)
    .type('form')
    .send({
      method: 'bank_transfer',
      amount_received: await amountDueOf(db, receiptId),
      tx_ref: txRef,
      csrf_token: await csrfTokenOf(admin),
    })
    .expect(303);
}

/**
 * The researcher also paid online: the checkout they had open was canceled when the receipt was
 * marked paid by hand, and the provider's late success was held, then dismissed by the admin.
 */
async function paidByHandWithDismissedOnlinePayment() {
  const { agent, receiptId } = await researcherWithReceipt();
  const started = await agent
    .post(`/payments/receipt/${receiptId}/start`)
    .type('form')
    .send({ csrf_token: await csrfTokenOf(agent) });
  expect(started.status, started.text.slice(0, 200)).toBe(303);
  const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId } });
  await markPaidByHand(receiptId, 'KBANK-77');
  const held = await deliverDummy(app, {
    event_id: `evt-late-${payment.id}`,
    event_type: 'payment.succeeded',
    external_payment_id: payment.externalPaymentId,
    amount_cents: 50,
    currency: 'THB',
  }).expect(200);
  expect(held.body.outcome).toBe('review');
  await admin
    .post(`/admin/payments/${payment.id}/resolve`)
    .type('form')
    .send({
      outcome: 'dismissed',
      note: 'Paid twice; the bank transfer was returned, the online money kept.',
      csrf_token: await csrfTokenOf(admin),
    })
    .expect(303);
  return { receiptId, paymentId: payment.id };
}

const page = async (path: string) => (await admin.get(path).set('Accept', 'text/html').expect(200)).text;

describe('voiding a receipt marked paid by hand', () => {
  it('names the money recorded by hand, and the online payment dismissed, before and after the void', async () => {
    const { receiptId, paymentId } = await paidByHandWithDismissedOnlinePayment();

    const before = await page(`/admin/receipts/${receiptId}`);
    expect(before).toContain(
      'Paid by hand: 0.50 THB by bank transfer, ref KBANK-77, on 2026-', // the day the test runs
    );
    expect(before).toContain(
      'Voiding this receipt puts its job back to be billed again; the app holds none of this money, so return it to the payer or apply it elsewhere yourself.',
    );
    expect(before).toContain(`Online payment #${paymentId} of this receipt received 0.50 THB and was dismissed`);

    const voided = await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .type('form')
      .send({ reason: 'billed to the wrong project', csrf_token: await csrfTokenOf(admin) });
    expect(voided.status, voided.text.slice(0, 300)).toBe(303);
    const after = await page(voided.headers.location as string);
    expect(after).toMatch(
      new RegExp(
        `Receipt #${receiptId} voided; its job can be billed again\\. It was paid by hand: 0\\.50 THB by bank transfer, ` +
          'ref KBANK-77, on 2026-\\d\\d-\\d\\d\\. The app holds none of this money: return it to the payer or apply it elsewhere\\. ' +
          `Online payment #${paymentId} of this receipt received 0\\.50 THB and was dismissed`,
      ),
    );
    // The voided receipt keeps saying it, for whoever opens it later.
    expect(after).toContain('Voided after it was paid by hand: 0.50 THB by bank transfer, ref KBANK-77');

    // The payment's resolution is the admin's decision: the void leaves it as it was.
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: paymentId } })).toMatchObject({
      status: 'resolved',
      reviewOutcome: 'dismissed',
    });
    // Written with the void, in its transaction: the audit log says what money it concerned.
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'receipt.void', target: `receipt:${receiptId}` },
    });
    expect(audit.details).toMatchObject({
      previousStatus: 'paid',
      paidByHand: { method: 'bank_transfer', txRef: 'KBANK-77', amount: '0.50', currency: 'THB' },
      dismissedPaymentIds: [paymentId],
    });
    expect(audit.details).not.toHaveProperty('heldPaymentId');
  });

  it('answers a JSON client with the money paid by hand, and a second void changes nothing', async () => {
    const { receiptId } = await researcherWithReceipt();
    await markPaidByHand(receiptId, 'KBANK-88');
    const token = await csrfTokenOf(admin);
    const voidAsJson = () =>
      admin
        .post(`/admin/receipts/${receiptId}/void`)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', token)
        .send({ reason: 'duplicate of another receipt' });
    const voided = await voidAsJson();
    expect(voided.status).toBe(200);
    expect(voided.body.receipt).toMatchObject({
      heldPaymentId: null,
      paidByHand: {
        method: 'bank_transfer',
        txRef: 'KBANK-88',
        paidOn: expect.stringMatching(/^\d{4}-\d\d-\d\d$/),
        amount: '0.50',
        currency: 'THB',
      },
      dismissedPaymentIds: [],
    });
    const audits = () =>
      db.prisma.auditLog.count({ where: { action: 'receipt.void', target: `receipt:${receiptId}` } });
    expect(await audits()).toBe(1);
    expect((await voidAsJson()).status).toBe(409);
    expect(await audits()).toBe(1);
  });

  it('says nothing of money for a pending receipt', async () => {
    const { receiptId } = await researcherWithReceipt();
    const voided = await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ reason: 'made by mistake' })
      .expect(200);
    expect(voided.body.receipt).toMatchObject({ previousStatus: 'pending', paidByHand: null });
  });
});
