import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpBillingApp } from '../support/billing-app.js';
import { amountDueOf } from '../support/billing-factories.js';
import { researcherWithReceiptOf } from '../support/receipt-steps.js';
import { type Agent, csrfTokenOf } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * A mark-paid's Reference and a void's Reason are one-line fields on the receipt page, but a JSON
 * client (or a reference pasted from a spreadsheet row, tab and all) stored them with line breaks
 * and tabs: the paid receipts CSV then carried a receipt's row over two lines, a bank reference
 * no longer matched the statement's, and the page showed the text run together. They are refused,
 * as a tier's one-line description is, and nothing changes.
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
  return (await researcherWithReceiptOf(app, db, `oneline${counter}`, 1)).receiptId;
}

async function receiptState(id: number) {
  const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id } });
  const entries = await db.prisma.auditLog.count({
    where: { target: `receipt:${id}`, action: { not: 'receipt.create' } },
  });
  return { status: receipt.status, txRef: receipt.txRef, voidReason: receipt.voidReason, entries };
}

const ONE_LINE = 'must be one line of text, without line breaks, tabs or other control characters';

describe('a receipt field the page holds on one line', () => {
  it.each([
    ['a line break', 'KBANK-77\n2026-01-12'],
    ['a tab', 'KBANK-77\t2026-01-12'],
    ['a carriage return', 'KBANK-77\r2026-01-12'],
    // Unicode's own line and paragraph breaks (a reference pasted from a text a Mac's Pages or a PDF wrote).
    ['a line separator (U+2028)', 'KBANK-77\u20282026-01-12'],
    ['a paragraph separator (U+2029)', 'KBANK-77\u20292026-01-12'],
  ])('a Reference with %s is refused and the receipt stays pending', async (_what, txRef) => {
    const id = await pendingReceipt();
    const before = await receiptState(id);
    const answer = await admin
      .post(`/admin/receipts/${id}/paid`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ method: 'bank_transfer', amount_received: await amountDueOf(db, id), tx_ref: txRef });
    expect(answer.status).toBe(400);
    expect(answer.body.error).toBe(`tx_ref: ${ONE_LINE}`);
    expect(await receiptState(id)).toEqual(before);
  });

  it('a Reason to void with a line break is refused and the receipt stays pending', async () => {
    const id = await pendingReceipt();
    const before = await receiptState(id);
    const answer = await admin
      .post(`/admin/receipts/${id}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ reason: 'duplicate\nof receipt 12' });
    expect(answer.status).toBe(400);
    expect(answer.body.error).toBe(`reason: ${ONE_LINE}`);
    expect(await receiptState(id)).toEqual(before);
  });

  it('on the page, names the field by its label, and one line with spaces is taken', async () => {
    const id = await pendingReceipt();
    const refused = await admin
      .post(`/admin/receipts/${id}/paid`)
      .set('Accept', 'text/html')
      .type('form')
      .send({
        method: 'bank_transfer',
        amount_received: await amountDueOf(db, id),
        tx_ref: 'KBANK-77\t2026-01-12',
        csrf_token: await csrfTokenOf(admin),
      });
    expect(refused.status).toBe(400);
    expect(refused.text).toContain(`Not marked paid. Reference: ${ONE_LINE}`);
    await admin
      .post(`/admin/receipts/${id}/paid`)
      .type('form')
      .send({
        method: 'bank_transfer',
        amount_received: await amountDueOf(db, id),
        tx_ref: ' KBANK-77 2026-01-12 ',
        csrf_token: await csrfTokenOf(admin),
      })
      .expect(303);
    expect(await receiptState(id)).toMatchObject({ status: 'paid', txRef: 'KBANK-77 2026-01-12' });
  });
});
