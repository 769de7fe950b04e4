import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, deliverDummy, setUpDummyPayments } from '../support/dummy-payments.js';
import { type Agent, signInNewAdmin } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// Finance reconciles from paid.csv. A payment whose payer had disputed it with their bank (the bank
// not having decided yet, so the money may still be taken back) read there as an ordinary paid line:
// nothing in the file said that part of what arrived was being claimed back.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  ({ db, app } = await setUpDummyPayments());
});
afterAll(() => db?.drop());

const { paidOnline } = createPayingResearchers(() => ({ db, app }), 'csvdispute');

/** The dummy provider's dispute event: amountCents is what the payer disputes of the payment. */
function disputeEvent(externalPaymentId: string | null, eventId: string, amountCents: number) {
  return {
    event_id: eventId,
    event_type: 'payment.disputed',
    external_payment_id: externalPaymentId,
    amount_cents: amountCents,
    currency: 'THB',
    dispute_id: `dp_${eventId}`,
    dispute_reason: 'fraudulent',
  };
}

/** The dummy provider's closed dispute: as payment.disputed (of the same amount), with how it ended. */
function closedEvent(
  externalPaymentId: string | null,
  eventId: string,
  disputeId: string,
  status: 'won' | 'lost',
  amountCents: number,
) {
  return {
    ...disputeEvent(externalPaymentId, eventId, amountCents),
    event_type: 'payment.dispute_closed',
    dispute_id: disputeId,
    dispute_status: status,
  };
}

/** paid.csv of every day as its header and the line of payment `paymentId`, by column name. */
async function paidCsvLineOf(admin: Agent, paymentId: number) {
  const text = (await admin.get('/admin/paid.csv?start=2000-01-01&end=2100-12-31').expect(200)).text;
  const [header, ...lines] = text.trimEnd().split('\n');
  const columns = (header ?? '').split(',');
  const rows = lines.map((line) => Object.fromEntries(line.split(',').map((value, index) => [columns[index], value])));
  return { columns, row: rows.find((row) => row.payment_id === String(paymentId)) };
}

let adminCounter = 0;
function signInAdmin() {
  adminCounter += 1;
  return signInNewAdmin(app, db, `csvdisputeadmin${adminCounter}`);
}

describe('paid.csv of a payment whose dispute is open', () => {
  it('says what is disputed and since when, after the columns it had, until the bank decides', async () => {
    const admin = await signInAdmin();
    const { receiptId, payment } = await paidOnline();
    const before = await paidCsvLineOf(admin, payment.id);
    expect(before.columns.slice(-7)).toEqual([
      'paid_on',
      'amount_refunded',
      'voided_at',
      'void_reason',
      'amount_disputed',
      'disputed_at',
      'amount_disputed_lost',
    ]);
    expect(before.row).toMatchObject({ amount_disputed: '', disputed_at: '' });

    const eventId = `csv_dispute_open_${payment.id}`;
    await deliverDummy(app, disputeEvent(payment.externalPaymentId, eventId, 400)).expect(200);
    const disputed = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    const open = await paidCsvLineOf(admin, payment.id);
    // The columns it had are as before: the money arrived and is still counted received.
    const { amount_disputed, disputed_at, ...rest } = open.row ?? {};
    const { amount_disputed: _a, disputed_at: _d, ...restBefore } = before.row ?? {};
    expect(rest).toEqual(restBefore);
    expect(rest).toMatchObject({ receipt_id: String(receiptId), amount_received: '10.00', amount_refunded: '' });
    expect({ amount_disputed, disputed_at }).toEqual({
      amount_disputed: '4.00',
      disputed_at: disputed.disputedAt?.toISOString(),
    });

    // Lost: the money is gone, in a column of its own (it is no refund); the dispute is no longer open.
    await deliverDummy(
      app,
      closedEvent(payment.externalPaymentId, `csv_dispute_lost_${payment.id}`, `dp_${eventId}`, 'lost', 400),
    ).expect(200);
    expect((await paidCsvLineOf(admin, payment.id)).row).toMatchObject({
      amount_received: '10.00',
      amount_refunded: '',
      amount_disputed: '',
      disputed_at: '',
      amount_disputed_lost: '4.00',
    });
  });

  it('is no longer open once the dispute is won', async () => {
    const admin = await signInAdmin();
    const { payment } = await paidOnline();
    const eventId = `csv_dispute_won_open_${payment.id}`;
    await deliverDummy(app, disputeEvent(payment.externalPaymentId, eventId, 1000)).expect(200);
    expect((await paidCsvLineOf(admin, payment.id)).row).toMatchObject({ amount_disputed: '10.00' });
    await deliverDummy(
      app,
      closedEvent(payment.externalPaymentId, `csv_dispute_won_${payment.id}`, `dp_${eventId}`, 'won', 1000),
    ).expect(200);
    expect((await paidCsvLineOf(admin, payment.id)).row).toMatchObject({
      amount_received: '10.00',
      amount_refunded: '',
      amount_disputed: '',
      disputed_at: '',
      amount_disputed_lost: '',
    });
  });

  it('shows on the line of a payment refunded in full while its dispute is open', async () => {
    const admin = await signInAdmin();
    const { receiptId, payment } = await paidOnline();
    await deliverDummy(app, disputeEvent(payment.externalPaymentId, `csv_dispute_refund_${payment.id}`, 400)).expect(
      200,
    );
    await deliverDummy(app, {
      event_id: `csv_dispute_refunded_${payment.id}`,
      event_type: 'payment.refunded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 1000,
      currency: 'THB',
    }).expect(200);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
    expect((await paidCsvLineOf(admin, payment.id)).row).toMatchObject({
      amount_received: '10.00',
      amount_refunded: '10.00',
      amount_disputed: '4.00',
    });
  });

  // Finance sums amount_refunded to match the provider's refunds: money a lost dispute took back was
  // added into it, so the file's refunds were more than the provider ever refunded.
  it('keeps a refund and a lost dispute of one payment apart, and each on its own', async () => {
    const admin = await signInAdmin();
    const { payment } = await paidOnline();
    const ext = payment.externalPaymentId;
    await deliverDummy(app, {
      event_id: `csv_lost_refund_${payment.id}`,
      event_type: 'payment.refunded',
      external_payment_id: ext,
      amount_cents: 300,
      currency: 'THB',
    }).expect(200);
    expect((await paidCsvLineOf(admin, payment.id)).row).toMatchObject({
      amount_refunded: '3.00',
      amount_disputed_lost: '',
    });
    const eventId = `csv_lost_mixed_${payment.id}`;
    await deliverDummy(app, disputeEvent(ext, eventId, 500)).expect(200);
    await deliverDummy(
      app,
      closedEvent(ext, `csv_lost_mixed_closed_${payment.id}`, `dp_${eventId}`, 'lost', 500),
    ).expect(200);
    const { columns, row } = await paidCsvLineOf(admin, payment.id);
    expect(row).toMatchObject({
      amount_received: '10.00',
      amount_refunded: '3.00',
      amount_disputed: '',
      amount_disputed_lost: '5.00',
    });
    // The last column: every column before it keeps its place.
    expect(columns.at(-1)).toBe('amount_disputed_lost');
  });
});
