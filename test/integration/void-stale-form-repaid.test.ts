import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAdminReceiptForm } from '../support/admin-receipt-forms.js';
import { amountDueOf } from '../support/billing-factories.js';
import {
  createPayingResearchers,
  deliverDummy,
  dummyRefundEvent,
  setUpDummyPaymentsApp,
} from '../support/dummy-payments.js';
import { visibleTextOf } from '../support/html.js';
import { type Agent, csrfTokenOf } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * An admin opened a receipt paid online: its page said "Paid online: payment #A", and its Void form
 * that the void holds payment #A for review. Meanwhile the provider refunded payment #A in full (the
 * receipt went back to pending) and the receipt was paid again, by hand. The form's status check saw
 * "paid" then and "paid" now, and the void went through: the money it now concerned (a payment by
 * hand, for the admin to return) was not what the page showed.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('repaidbooks'));
});
afterAll(() => db?.drop());

const { paidOnline } = createPayingResearchers(() => ({ db, app }), 'repaid');

const openVoidForm = (receiptId: number) => openAdminReceiptForm(admin, receiptId, 'void');

async function markPaidByHand(receiptId: number) {
  await admin
    .post(`/admin/receipts/${receiptId}/paid`)
    .type('form')
    .send({ method: 'cash', amount_received: await amountDueOf(db, receiptId), csrf_token: await csrfTokenOf(admin) })
    .expect(303);
}

describe('a void form opened while the receipt was paid online', () => {
  it('is refused once the payment was refunded in full and the receipt paid again, and voids nothing', async () => {
    const { receiptId, payment } = await paidOnline();
    const staleTab = await openVoidForm(receiptId);
    expect(staleTab.text).toContain(`Paid online: payment #${payment.id}`);

    await deliverDummy(app, dummyRefundEvent(payment.externalPaymentId, `refund_${payment.id}`, 1000)).expect(200);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
    await markPaidByHand(receiptId);

    const voided = await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'text/html')
      .type('form')
      .send({ ...staleTab.hidden, reason: 'billed to the wrong project' });
    expect(voided.status).toBe(409);
    expect(visibleTextOf(voided.text)).toContain(
      `Not voided. Receipt #${receiptId} was paid when this page was opened, and has been pending and paid again since; nothing was changed.`,
    );
    // The page is the receipt as it is now: paid by hand, not online.
    expect(visibleTextOf(voided.text)).toContain('Paid by hand:');
    expect(voided.text).toContain('value="billed to the wrong project"');

    const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
    expect(receipt).toMatchObject({ status: 'paid', paymentMethod: 'cash' });
    expect(await db.prisma.receiptItem.count({ where: { receiptId, isVoided: true } })).toBe(0);
    expect(await db.prisma.auditLog.count({ where: { action: 'receipt.void', target: `receipt:${receiptId}` } })).toBe(
      0,
    );

    // Sent again from the page as it is now, the void goes through.
    const fresh = await openVoidForm(receiptId);
    await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .type('form')
      .send({ ...fresh.hidden, reason: 'billed to the wrong project' })
      .expect(303);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('void');
  });

  it('refuses a count above the changes the receipt has had (400, no form shows one), rather than a 409 of changes that never happened', async () => {
    const { receiptId } = await paidOnline();
    const before = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
    const sent = before.statusChanges + 2;
    const answer = await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ reason: 'duplicate of another receipt', based_on_status: 'paid', based_on_status_changes: sent });
    expect(answer.status, answer.text).toBe(400);
    expect(answer.body.error).toBe(
      `based_on_status_changes: is ${sent}, but the status of receipt #${receiptId} has changed ${before.statusChanges} ` +
        `time${before.statusChanges === 1 ? '' : 's'}; send the statusChanges its page gives (${before.statusChanges})`,
    );
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toEqual(before);
  });

  it('is answered 409 in JSON too, from the statusChanges the JSON gave, and refuses one that is no count', async () => {
    const { receiptId, payment } = await paidOnline();
    const shown = await admin.get(`/admin/receipts/${receiptId}`).set('Accept', 'application/json').expect(200);
    const statusChanges = shown.body.receipt.statusChanges;
    expect(statusChanges).toEqual(expect.any(Number));
    await deliverDummy(app, dummyRefundEvent(payment.externalPaymentId, `refund_${payment.id}`, 1000)).expect(200);
    await markPaidByHand(receiptId);
    const token = await csrfTokenOf(admin);
    const stale = await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({
        reason: 'duplicate of another receipt',
        based_on_status: 'paid',
        based_on_status_changes: statusChanges,
      });
    expect(stale.status).toBe(409);
    expect(stale.body.error).toBe(
      `Receipt #${receiptId} was paid when this page was opened, and has been pending and paid again since; nothing was changed.`,
    );

    const bad = await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ reason: 'duplicate of another receipt', based_on_status: 'paid', based_on_status_changes: -1 });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('based_on_status_changes: must be at least 0');
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('paid');
  });
});
