import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, deliverDummy, setUpDummyPaymentsApp } from '../support/dummy-payments.js';
import { visibleTextOf } from '../support/html.js';
import { voidAndBillAgain } from '../support/receipt-steps.js';
import type { Agent } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * Finance reconciling the month on the billing page saw a receipt whose payment the payer had
 * disputed as plain "paid", and a receipt that bills again the jobs of one whose payment is held as
 * plain "pending": only each receipt's own page (and the researcher's list) said a payment was held.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('reconciler'));
});
afterAll(() => db?.drop());

const { paidOnline } = createPayingResearchers(() => ({ db, app }), 'heldlist');

describe('the billing list', () => {
  it('says which receipts have a payment held for review, on the page and in the JSON', async () => {
    const disputed = await paidOnline();
    await deliverDummy(app, {
      event_id: `list_dispute_${disputed.payment.id}`,
      event_type: 'payment.disputed',
      external_payment_id: disputed.payment.externalPaymentId,
      amount_cents: 400,
      currency: 'THB',
      dispute_reason: 'fraudulent',
    }).expect(200);
    const settled = await paidOnline();
    const voided = await paidOnline();
    const again = await voidAndBillAgain(admin, voided.agent, voided.receiptId);

    const page = (await admin.get('/admin/receipts').set('Accept', 'text/html').expect(200)).text;
    const rowOf = (receiptId: number) =>
      new RegExp(
        `<tr>\\s*<td data-label="Receipt"><a href="/admin/receipts/${receiptId}" aria-label="Receipt #${receiptId}">.*?</tr>`,
        's',
      ).exec(page)?.[0] ?? '';
    const statusOf = (receiptId: number) =>
      visibleTextOf(/<td data-label="Status".*?<\/td>/s.exec(rowOf(receiptId))?.[0] ?? '');
    expect(statusOf(disputed.receiptId)).toContain(`paid payment #${disputed.payment.id} held for review`);
    expect(statusOf(voided.receiptId)).toContain(`void payment #${voided.payment.id} held for review`);
    expect(statusOf(again)).toContain(
      `pending payment #${voided.payment.id} of receipt #${voided.receiptId}, which billed some of these jobs, held for review`,
    );
    expect(statusOf(settled.receiptId)).not.toContain('held for review');
    expect(rowOf(disputed.receiptId)).toContain('href="/admin/payments"');

    const json = (await admin.get('/admin/receipts').set('Accept', 'application/json').expect(200)).body;
    const heldOf = (receiptId: number) =>
      json.receipts.find((receipt: { id: number }) => receipt.id === receiptId)?.heldPayment;
    expect(heldOf(disputed.receiptId)).toEqual({ paymentId: disputed.payment.id, receiptId: disputed.receiptId });
    expect(heldOf(again)).toEqual({ paymentId: voided.payment.id, receiptId: voided.receiptId });
    expect(heldOf(settled.receiptId)).toBeNull();
  });
});
