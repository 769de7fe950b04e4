import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAdminReceiptForm } from '../support/admin-receipt-forms.js';
import { setUpBillingApp } from '../support/billing-app.js';
import { amountDueOf } from '../support/billing-factories.js';
import { visibleTextOf } from '../support/html.js';
import { researcherWithReceiptOf } from '../support/receipt-steps.js';
import { type Agent, csrfTokenOf } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * An admin opened a pending receipt's page in one tab and, in another, marked it paid by hand. The
 * void form left open in the first tab, whose confirmation said "Void pending receipt #N", then
 * voided the paid receipt: the money it recorded was now for the admin to return, which the page
 * they acted on never said.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  ({ db, app, admin } = await setUpBillingApp('books'));
});
afterAll(() => db?.drop());

let counter = 0;
/** A researcher's pending receipt. */
async function pendingReceipt() {
  counter += 1;
  return (await researcherWithReceiptOf(app, db, `stalevoid${counter}`, 1)).receiptId;
}

const openVoidForm = (receiptId: number) => openAdminReceiptForm(admin, receiptId, 'void');

describe('a void form opened while the receipt was pending', () => {
  it('is refused once the receipt was marked paid meanwhile, and voids nothing', async () => {
    const receiptId = await pendingReceipt();
    const staleTab = await openVoidForm(receiptId);

    await admin
      .post(`/admin/receipts/${receiptId}/paid`)
      .type('form')
      .send({ method: 'cash', amount_received: await amountDueOf(db, receiptId), csrf_token: await csrfTokenOf(admin) })
      .expect(303);

    const voided = await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'text/html')
      .type('form')
      .send({ ...staleTab.hidden, reason: 'billed to the wrong project' });
    expect(voided.status).toBe(409);
    const text = visibleTextOf(voided.text);
    expect(text).toContain(
      `Not voided. Receipt #${receiptId} was pending when this page was opened and is paid now; nothing was changed.`,
    );
    // The page is the receipt as it is now: the paid-by-hand warning above a form that voids a paid receipt.
    expect(text).toContain('Paid by hand:');
    expect(voided.text).toContain('name="based_on_status" value="paid"');
    expect(voided.text).toContain('value="billed to the wrong project"');

    const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
    expect(receipt.status).toBe('paid');
    expect(await db.prisma.receiptItem.count({ where: { receiptId, isVoided: true } })).toBe(0);
    expect(await db.prisma.auditLog.count({ where: { action: 'receipt.void', target: `receipt:${receiptId}` } })).toBe(
      0,
    );

    // Sent again from the page as it is now, the void goes through, knowing what it voids.
    const fresh = await openVoidForm(receiptId);
    await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .type('form')
      .send({ ...fresh.hidden, reason: 'billed to the wrong project' })
      .expect(303);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('void');
  });

  it('is answered 409 in JSON too, and a JSON client that sends no based_on_status is not checked', async () => {
    const receiptId = await pendingReceipt();
    await admin
      .post(`/admin/receipts/${receiptId}/paid`)
      .type('form')
      .send({ method: 'cash', amount_received: await amountDueOf(db, receiptId), csrf_token: await csrfTokenOf(admin) })
      .expect(303);
    const token = await csrfTokenOf(admin);
    const stale = await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ reason: 'duplicate of another receipt', based_on_status: 'pending' });
    expect(stale.status).toBe(409);
    expect(stale.body.error).toBe(
      `Receipt #${receiptId} was pending when this page was opened and is paid now; nothing was changed.`,
    );
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('paid');

    const bad = await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ reason: 'duplicate of another receipt', based_on_status: 'void' });
    expect(bad.status).toBe(400);

    await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ reason: 'duplicate of another receipt' })
      .expect(200);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('void');
  });

  it('still says "already void" when another tab voided it first', async () => {
    const receiptId = await pendingReceipt();
    const staleTab = await openVoidForm(receiptId);
    const firstTab = await openVoidForm(receiptId);
    await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .type('form')
      .send({ ...firstTab.hidden, reason: 'duplicate of another receipt' })
      .expect(303);
    const second = await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'text/html')
      .type('form')
      .send({ ...staleTab.hidden, reason: 'duplicate of another receipt' });
    expect(second.status).toBe(409);
    expect(visibleTextOf(second.text)).toContain(`Not voided. Receipt #${receiptId} is already void.`);
  });
});
