import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, deliverDummy, setUpDummyPayments } from '../support/dummy-payments.js';
import { visibleTextOf as textOf } from '../support/html.js';
import { voidAndBillAgain } from '../support/receipt-steps.js';
import { signInNewAdmin } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// A payment disputed by the payer's bank (or reopened by a dispute after a refund) is held for the
// billing team's review. The receipt's own page said so, but My receipts listed the receipt as a
// bare "pending" or "paid", and the payment status page said "Paid. Thank you." with nothing more.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  ({ db, app } = await setUpDummyPayments());
});
afterAll(() => db?.drop());

const { researcherWithReceipt, paidOnline } = createPayingResearchers(() => ({ db, app }), 'heldlist');

function dispute(externalPaymentId: string | null, eventId: string) {
  return {
    event_id: eventId,
    event_type: 'payment.disputed',
    external_payment_id: externalPaymentId,
    amount_cents: 1000,
    currency: 'THB',
    dispute_id: `dp_${eventId}`,
    dispute_reason: 'fraudulent',
  };
}

/** The text of the row of `receiptId` on My receipts. */
async function listRowOf(agent: Awaited<ReturnType<typeof researcherWithReceipt>>['agent'], receiptId: number) {
  const html = (await agent.get('/me/receipts').set('Accept', 'text/html').expect(200)).text;
  const row = html.split('<tr').find((part) => part.includes(`href="/me/receipts/${receiptId}"`));
  return textOf(`<tr${row ?? ''}`);
}

describe('a researcher whose payment is held for review after a dispute', () => {
  it('sees it on My receipts for a receipt that stays paid', async () => {
    const { agent, receiptId, payment } = await paidOnline();
    await deliverDummy(app, dispute(payment.externalPaymentId, `held_paid_${payment.id}`)).expect(200);

    const row = await listRowOf(agent, receiptId);
    expect(row).toContain('paid');
    expect(row).toContain('payment being checked by the billing team');
    expect(row).not.toContain('not payable online');
  });

  it('sees on My receipts that a pending receipt whose refunded payment a dispute reopened cannot be paid online', async () => {
    const { agent, receiptId, payment } = await paidOnline();
    await deliverDummy(app, {
      event_id: `refund_${payment.id}`,
      event_type: 'payment.refunded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 1000,
      currency: 'THB',
    }).expect(200);
    await deliverDummy(app, dispute(payment.externalPaymentId, `held_pending_${payment.id}`)).expect(200);
    expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe('needs_review');

    const row = await listRowOf(agent, receiptId);
    expect(row).toContain('pending');
    expect(row).toContain('payment being checked by the billing team; not payable online meanwhile');
  });

  it('is told on the payment status page that the paid receipt is being checked, not only "Paid. Thank you."', async () => {
    const { agent, receiptId, payment } = await paidOnline();
    const before = textOf((await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html')).text);
    expect(before).toContain('Paid. Thank you.');
    await deliverDummy(app, dispute(payment.externalPaymentId, `held_status_${payment.id}`)).expect(200);

    const status = textOf((await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html')).text);
    expect(status).not.toContain('Paid. Thank you.');
    expect(status).toContain(
      'Paid, but a payment of this receipt is being checked by the billing team; they will be in touch. Please do not pay it again meanwhile.',
    );
  });

  it('is told on the payment status page that a receipt a dispute reopened cannot be paid online, not that the payment arrived', async () => {
    const { agent, receiptId, payment } = await paidOnline();
    await deliverDummy(app, {
      event_id: `status_refund_${payment.id}`,
      event_type: 'payment.refunded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 1000,
      currency: 'THB',
    }).expect(200);
    await deliverDummy(app, dispute(payment.externalPaymentId, `status_reopened_${payment.id}`)).expect(200);

    const status = textOf((await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html')).text);
    // The money went back to the payer; what the billing team checks now is the bank's claim on it.
    expect(status).not.toContain('Your payment arrived');
    expect(status).toContain(
      'A payment of this receipt is being checked by the billing team; they will be in touch. Please do not pay this receipt again meanwhile: it cannot be paid online until they have decided.',
    );
    expect(status).not.toContain('Try again');
  });

  it('sees on My receipts that a receipt billing again the jobs of a voided receipt whose payment is held cannot be paid online', async () => {
    const { agent, receiptId, payment } = await paidOnline();
    const admin = await signInNewAdmin(app, db, `voider${payment.id}`);
    const newReceiptId = await voidAndBillAgain(admin, agent, receiptId);
    // Its own page refuses to offer Pay (the held money may pay for these jobs already) ...
    const page = textOf((await agent.get(`/me/receipts/${newReceiptId}`).set('Accept', 'text/html')).text);
    expect(page).toContain('cannot be paid online until they have decided');

    // ... and the list says so too, rather than a bare "pending".
    const row = await listRowOf(agent, newReceiptId);
    expect(row).toContain('pending');
    expect(row).toContain(
      'a payment for some of these jobs is being checked by the billing team; not payable online meanwhile',
    );
    const voided = await listRowOf(agent, receiptId);
    expect(voided).toContain('void');
    expect(voided).toContain('payment being checked by the billing team');
    expect(voided).not.toContain('not payable online');
  });

  it('lists a receipt without a held payment as before', async () => {
    const { agent, receiptId } = await researcherWithReceipt();
    const row = await listRowOf(agent, receiptId);
    expect(row).toContain('pending');
    expect(row).not.toContain('being checked');
  });
});
