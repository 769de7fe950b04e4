import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpBillingApp } from '../support/billing-app.js';
import { visibleTextOf } from '../support/html.js';
import { researcherWithReceiptOf } from '../support/receipt-steps.js';
import { type Agent, csrfTokenOf } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// Marking a receipt paid took a method, a reference and a day, but no amount: a bank transfer short of
// the total (or over it) marked the receipt paid in full, and nobody noticed. The admin now types the
// amount received; only the total marks it paid, anything else is refused with both amounts.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  ({ db, app, admin } = await setUpBillingApp('ledger'));
});
afterAll(() => db?.drop());

let counter = 0;
/** A pending receipt of 1,234.50 THB: 2,469 CPU hours at buildTiers' 0.50 THB. */
async function pendingReceipt(): Promise<number> {
  counter += 1;
  const { receiptId } = await researcherWithReceiptOf(app, db, `transferrer${counter}`, 2469);
  const { total } = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
  expect(total.toFixed(2)).toBe('1234.50');
  return receiptId;
}

/** POSTs `body`, JSON text as written (so numbers keep their digits), to the receipt's mark paid. */
async function markPaidJson(receiptId: number, body: string) {
  return admin
    .post(`/admin/receipts/${receiptId}/paid`)
    .set('Accept', 'application/json')
    .set('Content-Type', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin))
    .send(body);
}

async function markPaidForm(receiptId: number, fields: Record<string, string>) {
  return admin
    .post(`/admin/receipts/${receiptId}/paid`)
    .type('form')
    .set('Accept', 'text/html')
    .send({ ...fields, csrf_token: await csrfTokenOf(admin) });
}

/** What a refused mark paid must leave as it was: the receipt pending, unpaid, and no audit entry. */
async function expectUnchanged(receiptId: number) {
  expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
    status: 'pending',
    paidAt: null,
    paymentMethod: null,
    txRef: null,
  });
  expect(
    await db.prisma.auditLog.count({ where: { action: 'receipt.mark_paid', target: `receipt:${receiptId}` } }),
  ).toBe(0);
}

describe('marking a receipt paid with the amount received', () => {
  it('marks it paid when the amount is its total, however it is written, and records the amount', async () => {
    const receiptId = await pendingReceipt();
    // A JSON number, without the trailing zero: read from its digits, 1234.5 is the total 1234.50.
    const paid = await markPaidJson(receiptId, '{"method":"bank_transfer","amount_received":1234.5,"tx_ref":"KB-1"}');
    expect(paid.status, paid.text).toBe(200);
    expect(paid.body.receipt).toMatchObject({
      id: receiptId,
      status: 'paid',
      amountReceived: '1234.50',
      currency: 'THB',
    });
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
      status: 'paid',
      paymentMethod: 'bank_transfer',
      txRef: 'KB-1',
    });
    const entry = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'receipt.mark_paid', target: `receipt:${receiptId}` },
    });
    expect(entry.details).toMatchObject({ amountReceived: '1234.50', total: '1234.50', currency: 'THB' });

    const byForm = await pendingReceipt();
    const marked = await markPaidForm(byForm, { method: 'cash', amount_received: ' 1234.50 ' });
    expect(marked.status, marked.text.slice(0, 300)).toBe(303);
    const page = await admin.get(`/admin/receipts/${byForm}`).set('Accept', 'text/html').expect(200);
    expect(visibleTextOf(page.text)).toContain(`Receipt #${byForm} marked paid on `);
    expect(visibleTextOf(page.text)).toContain('(cash), 1,234.50 THB received.');
  });

  it('reads leading zeros as nothing, however many: 000…01234.50 is the total, not too large', async () => {
    const receiptId = await pendingReceipt();
    const paid = await markPaidJson(
      receiptId,
      `{"method":"bank_transfer","amount_received":"${'0'.repeat(20)}1234.50"}`,
    );
    expect(paid.status, paid.text).toBe(200);
    expect(paid.body.receipt).toMatchObject({ status: 'paid', amountReceived: '1234.50' });
  });

  it.each([
    ['left out', '{"method":"bank_transfer"}', /^amount_received: is required/],
    ['empty', '{"method":"bank_transfer","amount_received":""}', /^amount_received: is required/],
    ['blank', '{"method":"bank_transfer","amount_received":"  "}', /^amount_received: is required/],
    // JSON's null is told so, as for every field (docs/development.md).
    [
      'null',
      '{"method":"bank_transfer","amount_received":null}',
      /^amount_received: cannot be null \(leave it out, or give a value\)$/,
    ],
    [
      'negative',
      '{"method":"bank_transfer","amount_received":"-1234.50"}',
      /^amount_received: must be a plain decimal/,
    ],
    ['a negative number', '{"method":"bank_transfer","amount_received":-1234.5}', /^amount_received: must be a plain/],
    ['not a number', '{"method":"bank_transfer","amount_received":"twelve"}', /^amount_received: must be a plain/],
    ['with separators', '{"method":"bank_transfer","amount_received":"1,234.50"}', /^amount_received: must be a plain/],
    ['with a currency', '{"method":"bank_transfer","amount_received":"1234.50 THB"}', /^amount_received: must be a/],
    ['an exponent', '{"method":"bank_transfer","amount_received":1.2345e3}', /^amount_received: must be a plain/],
    ['a boolean', '{"method":"bank_transfer","amount_received":true}', /^amount_received: must be a plain/],
    [
      'too many decimals',
      '{"method":"bank_transfer","amount_received":"1234.501"}',
      /^amount_received: must have at most 2 decimal places in THB, the currency of receipt #\d+$/,
    ],
    [
      'too many decimals as a number',
      '{"method":"bank_transfer","amount_received":1234.499}',
      /^amount_received: must have at most 2 decimal places in THB/,
    ],
    // More than 20 digits before the point was told it "must be a plain decimal", which it is.
    [
      'with 21 digits before the point',
      `{"method":"bank_transfer","amount_received":"1${'0'.repeat(20)}.00"}`,
      /^amount_received: is too large: it must have at most 20 digits before the decimal point$/,
    ],
    [
      'with 21 digits before the point as a number',
      `{"method":"bank_transfer","amount_received":1${'0'.repeat(20)}}`,
      /^amount_received: is too large: it must have at most 20 digits before the decimal point$/,
    ],
    [
      'with 40 digits and too many decimals',
      `{"method":"bank_transfer","amount_received":"${'9'.repeat(40)}.999"}`,
      /^amount_received: is too large: it must have at most 20 digits before the decimal point$/,
    ],
  ])('refuses an amount received %s with a 400 naming the field, and changes nothing', async (_case, body, error) => {
    const receiptId = await pendingReceipt();
    const refused = await markPaidJson(receiptId, body);
    expect(refused.status, refused.text).toBe(400);
    expect(refused.body.error).toMatch(error);
    await expectUnchanged(receiptId);
  });

  it('refuses an amount short of the total with both amounts and what to do, and changes nothing', async () => {
    const receiptId = await pendingReceipt();
    const refused = await markPaidJson(receiptId, '{"method":"bank_transfer","amount_received":"1000"}');
    expect(refused.status, refused.text).toBe(422);
    expect(refused.body).toMatchObject({
      code: 422,
      field: 'amount_received',
      amountReceived: '1000.00',
      total: '1234.50',
      currency: 'THB',
    });
    expect(refused.body.error).toBe(
      `The amount received, 1,000.00 THB, is 234.50 THB short of the total of receipt #${receiptId}, 1,234.50 THB; ` +
        'nothing was changed. Collect the remaining 234.50 THB, then mark it paid with the whole 1,234.50 THB once ' +
        'it has all arrived. If the total itself is wrong (a wrong tier or rate), void the receipt so that its ' +
        'jobs are billed again.',
    );
    await expectUnchanged(receiptId);
  });

  it('refuses an amount over the total, saying to return the excess, and changes nothing', async () => {
    const receiptId = await pendingReceipt();
    const refused = await markPaidJson(receiptId, '{"method":"cash","amount_received":"1300.00"}');
    expect(refused.status, refused.text).toBe(422);
    expect(refused.body.error).toMatch(
      new RegExp(
        `^The amount received, 1,300\\.00 THB, is 65\\.50 THB more than the total of receipt #${receiptId}, ` +
          '1,234\\.50 THB; nothing was changed\\. Return the excess 65\\.50 THB to the payer \\(or apply it ' +
          'elsewhere\\), then mark it paid with 1,234\\.50 THB\\.',
      ),
    );
    await expectUnchanged(receiptId);
  });
});

// An amount more precise than the receipt's currency was told it "must be a plain decimal" once it had
// more than 20 decimals, which it is: the reason is the currency's digits, whatever way it is typed.
describe('an amount received with more decimals than the currency has', () => {
  /** The digits 1234.50 is followed by to have 21 decimals: past what the grammar used to take. */
  const longTail = `${'0'.repeat(19)}1`;
  it.each([
    // [how it is sent, currency, total, amount received, what the currency allows]
    ['form', 'THB', '1234.50', '1234.501', 'must have at most 2 decimal places in THB'],
    ['JSON string', 'THB', '1234.50', '1234.501', 'must have at most 2 decimal places in THB'],
    ['JSON number', 'THB', '1234.50', '1234.501', 'must have at most 2 decimal places in THB'],
    ['form', 'THB', '1234.50', `1234.50${longTail}`, 'must have at most 2 decimal places in THB'],
    ['JSON string', 'THB', '1234.50', `1234.50${longTail}`, 'must have at most 2 decimal places in THB'],
    ['JSON number', 'THB', '1234.50', `1234.50${longTail}`, 'must have at most 2 decimal places in THB'],
    ['form', 'KWD', '1234.500', '1234.5001', 'must have at most 3 decimal places in KWD'],
    ['JSON number', 'KWD', '1234.500', `1234.50${longTail}`, 'must have at most 3 decimal places in KWD'],
    ['form', 'JPY', '1234', '1234.5', 'must be a whole number of JPY'],
    ['JSON string', 'JPY', '1234', `1234.0${longTail}`, 'must be a whole number of JPY'],
  ])(
    "sent as a %s in %s (total %s), %s is refused naming the currency's digits, and changes nothing",
    async (how, currency, total, amount, rule) => {
      const receiptId = await pendingReceipt();
      // As a receipt made while CURRENCY was another: it keeps its own currency.
      await db.prisma.receipt.update({ where: { id: receiptId }, data: { currency, total } });
      const before = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
      const reason = `${rule}, the currency of receipt #${receiptId}`;
      if (how === 'form') {
        const refused = await markPaidForm(receiptId, { method: 'bank_transfer', amount_received: amount });
        expect(refused.status).toBe(400);
        expect(visibleTextOf(refused.text)).toContain(`Not marked paid. Amount received: ${reason}`);
        expect(visibleTextOf(refused.text)).not.toContain('plain decimal');
      } else {
        const value = how === 'JSON number' ? amount : JSON.stringify(amount);
        const refused = await markPaidJson(receiptId, `{"method":"bank_transfer","amount_received":${value}}`);
        expect(refused.status, refused.text).toBe(400);
        expect(refused.body.error).toBe(`amount_received: ${reason}`);
      }
      expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toEqual(before);
      await expectUnchanged(receiptId);
    },
  );
});

describe("the receipt page's mark paid form", () => {
  it('asks for the amount received without filling in the total', async () => {
    const receiptId = await pendingReceipt();
    const page = await admin.get(`/admin/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    const field = /<input id="amount_received"[^>]*>/.exec(page.text)?.[0] ?? '';
    expect(field).toContain('name="amount_received"');
    expect(field).toContain('required');
    expect(field).toContain('value=""');
    expect(page.text).toContain('<label for="amount_received">Amount received (THB)</label>');
  });

  it('shows a refused amount with the reason, keeps what was typed and marks the field', async () => {
    const receiptId = await pendingReceipt();
    const short = await markPaidForm(receiptId, { method: 'bank_transfer', amount_received: '1000', tx_ref: 'KB-2' });
    expect(short.status).toBe(422);
    expect(visibleTextOf(short.text)).toContain(
      'Not marked paid. The amount received, 1,000.00 THB, is 234.50 THB short of the total of receipt',
    );
    const field = /<input id="amount_received"[^>]*>/.exec(short.text)?.[0] ?? '';
    expect(field).toContain('value="1000"');
    expect(field).toContain('aria-invalid="true"');
    expect(/<input id="tx_ref"[^>]*>/.exec(short.text)?.[0]).toContain('value="KB-2"');

    const missing = await markPaidForm(receiptId, { method: 'bank_transfer', amount_received: '' });
    expect(missing.status).toBe(400);
    expect(visibleTextOf(missing.text)).toContain('Not marked paid. Amount received: is required');

    const huge = await markPaidForm(receiptId, { method: 'bank_transfer', amount_received: '9'.repeat(21) });
    expect(huge.status).toBe(400);
    expect(visibleTextOf(huge.text)).toContain(
      'Not marked paid. Amount received: is too large: it must have at most 20 digits before the decimal point',
    );
    expect(/<input id="amount_received"[^>]*>/.exec(huge.text)?.[0]).toContain(`value="${'9'.repeat(21)}"`);
    await expectUnchanged(receiptId);
  });
});

describe('a pending receipt of 0.00', () => {
  it('is closed with the method "other" and an amount received of 0, and refuses any other amount', async () => {
    const receiptId = await pendingReceipt();
    // As one made before receipts of 0.00 were settled when made: pending, with nothing to pay.
    await db.prisma.receipt.update({ where: { id: receiptId }, data: { total: 0 } });
    const page = await admin.get(`/admin/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(visibleTextOf(page.text)).toContain(
      'there is nothing to pay. Mark it paid with the method "other" and an amount received of 0.00 to close it.',
    );
    const over = await markPaidJson(receiptId, '{"method":"other","amount_received":"0.01"}');
    expect(over.status, over.text).toBe(422);
    await expectUnchanged(receiptId);
    const closed = await markPaidJson(receiptId, '{"method":"other","amount_received":"0","tx_ref":"no charge"}');
    expect(closed.status, closed.text).toBe(200);
    expect(closed.body.receipt).toMatchObject({ status: 'paid', amountReceived: '0.00' });
  });
});
