import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, deliverDummy, setUpDummyPaymentsApp } from '../support/dummy-payments.js';
import { visibleTextOf } from '../support/html.js';
import { type Agent, csrfTokenOf } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// paid.csv's amount_disputed is the open dispute of the payment a line is about. A receipt can have
// another payment that took money but never paid it (a second checkout paid after the first was
// canceled, say); the payer may dispute that one too. Its money has no line in paid.csv and is in
// none of its sums, so nothing the file counts is at risk: the dispute must show where that money is
// shown, on /admin/payments and in the billing list, and leave paid.csv as it was. One that did pay
// it once (refunded in full, the receipt paid again) keeps its own line, which shows the dispute.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;
beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('csvotherdispute'));
});
afterAll(() => db?.drop());

const { researcherWithReceipt, startCheckout, latestPaymentOf, paidOnline } = createPayingResearchers(
  () => ({ db, app }),
  'csvother',
);

const ALL_DAYS = '/admin/paid.csv?start=2000-01-01&end=2100-12-31';

/**
 * A receipt of 10.00 THB paid by its second checkout, and its first, canceled, whose success the
 * provider reported late: 10.00 THB more arrived, held for review, never paying the receipt.
 */
async function paidTwice() {
  const { agent, receiptId } = await researcherWithReceipt();
  const firstPath = await startCheckout(agent, receiptId);
  const first = await latestPaymentOf(receiptId);
  await agent
    .post(firstPath)
    .type('form')
    .send({ choice: 'cancel', csrf_token: await csrfTokenOf(agent) })
    .expect(303);
  const secondPath = await startCheckout(agent, receiptId);
  const second = await latestPaymentOf(receiptId);
  await agent
    .post(secondPath)
    .type('form')
    .send({ choice: 'pay', csrf_token: await csrfTokenOf(agent) })
    .expect(303);
  await deliverDummy(app, {
    event_id: `csvother_late_${first.id}`,
    event_type: 'payment.succeeded',
    external_payment_id: first.externalPaymentId,
    amount_cents: 1000,
    currency: 'THB',
  }).expect(200);
  expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
    status: 'paid',
    txRef: second.externalPaymentId,
  });
  expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: first.id } })).toMatchObject({
    status: 'needs_review',
    reviewReason: `payment succeeded after it was canceled; receipt #${receiptId} was already paid`,
    paidAt: null,
  });
  return { receiptId, first, second };
}

function disputeOf(externalPaymentId: string | null, eventId: string) {
  return deliverDummy(app, {
    event_id: eventId,
    event_type: 'payment.disputed',
    external_payment_id: externalPaymentId,
    amount_cents: 1000,
    currency: 'THB',
    dispute_id: `dp_${eventId}`,
    dispute_reason: 'duplicate',
  }).expect(200);
}

async function paidCsvText() {
  return (await admin.get(ALL_DAYS).expect(200)).text;
}

/** The billing list's status cell of the receipt, as read. */
async function billingStatusOf(receiptId: number) {
  const page = (await admin.get('/admin/receipts').set('Accept', 'text/html').expect(200)).text;
  const row =
    new RegExp(
      `<tr>\\s*<td data-label="Receipt"><a href="/admin/receipts/${receiptId}" aria-label="Receipt #${receiptId}">.*?</tr>`,
      's',
    ).exec(page)?.[0] ?? '';
  return visibleTextOf(/<td data-label="Status".*?<\/td>/s.exec(row)?.[0] ?? '');
}

describe('a dispute of a payment that never paid its receipt', () => {
  it('leaves paid.csv as it was and shows on /admin/payments and the billing list, where that money is', async () => {
    const { receiptId, first, second } = await paidTwice();
    const before = await paidCsvText();
    const columnsOf = (text: string) => (text.split('\n')[0] ?? '').split(',');
    const linesOf = (text: string) => text.trimEnd().split('\n').slice(1);
    const paymentIdAt = columnsOf(before).indexOf('payment_id');
    const ofReceipt = (text: string) =>
      linesOf(text)
        .filter((line) => line.startsWith(`${receiptId},`))
        .map((line) => line.split(','));
    // One line, the second payment's; the late one's money is in none of the file's sums.
    expect(ofReceipt(before).map((line) => line[paymentIdAt])).toEqual([String(second.id)]);

    await disputeOf(first.externalPaymentId, `csvother_dispute_${first.id}`);
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: first.id } })).toMatchObject({
      status: 'needs_review',
      disputedMinor: 1000n,
      reviewReason: `payment succeeded after it was canceled; receipt #${receiptId} was already paid; the payer disputed 10.00 THB of the 10.00 THB received at dummy (reason: duplicate)`,
    });

    // paid.csv: every line as it was; the paying line's dispute columns stay empty (not its dispute).
    expect(await paidCsvText()).toBe(before);
    // Where finance sees that money: held for review, the dispute in the reason; and in the billing list.
    const payments = visibleTextOf((await admin.get('/admin/payments').set('Accept', 'text/html').expect(200)).text);
    expect(payments).toContain(
      `receipt #${receiptId} was already paid; the payer disputed 10.00 THB of the 10.00 THB received at dummy`,
    );
    expect(await billingStatusOf(receiptId)).toContain(`paid payment #${first.id} held for review`);
  });

  it('after an admin resolved it as refunded, holds it again and still leaves paid.csv as it was', async () => {
    const { receiptId, first } = await paidTwice();
    await admin
      .post(`/admin/payments/${first.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'refunded', note: 'Refunded the duplicate in the dummy dashboard.' })
      .expect(200);
    const before = await paidCsvText();
    expect(await billingStatusOf(receiptId)).not.toContain('held for review');

    await disputeOf(first.externalPaymentId, `csvother_dispute_resolved_${first.id}`);
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: first.id } })).toMatchObject({
      status: 'needs_review',
      paidAt: null,
    });
    expect(await paidCsvText()).toBe(before);
    const payments = visibleTextOf((await admin.get('/admin/payments').set('Accept', 'text/html').expect(200)).text);
    expect(payments).toContain('the payer disputed 10.00 THB of the 10.00 THB received at dummy (reason: duplicate)');
    expect(await billingStatusOf(receiptId)).toContain(`paid payment #${first.id} held for review`);
  });

  it("of a payment refunded in full before the receipt was paid again, shows on that payment's own line", async () => {
    const { agent, receiptId, payment: first } = await paidOnline();
    await deliverDummy(app, {
      event_id: `csvother_refund_${first.id}`,
      event_type: 'payment.refunded',
      external_payment_id: first.externalPaymentId,
      amount_cents: 1000,
      currency: 'THB',
    }).expect(200);
    const againPath = await startCheckout(agent, receiptId);
    const second = await latestPaymentOf(receiptId);
    await agent
      .post(againPath)
      .type('form')
      .send({ choice: 'pay', csrf_token: await csrfTokenOf(agent) })
      .expect(303);
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
      status: 'paid',
      txRef: second.externalPaymentId,
    });

    await deliverDummy(app, {
      event_id: `csvother_dispute_refunded_${first.id}`,
      event_type: 'payment.disputed',
      external_payment_id: first.externalPaymentId,
      amount_cents: 400,
      currency: 'THB',
      dispute_reason: 'fraudulent',
    }).expect(200);
    const disputed = await db.prisma.payment.findUniqueOrThrow({ where: { id: first.id } });
    const text = await paidCsvText();
    const [header, ...lines] = text.trimEnd().split('\n');
    const columns = (header ?? '').split(',');
    const rows = lines
      .map((line) => Object.fromEntries(line.split(',').map((value, index) => [columns[index], value])))
      .filter((row) => row.receipt_id === String(receiptId));
    expect(rows.map((row) => [row.payment_id, row.amount_received, row.amount_refunded, row.amount_disputed])).toEqual([
      [String(first.id), '10.00', '10.00', '4.00'],
      [String(second.id), '10.00', '', ''],
    ]);
    expect(rows[0]?.disputed_at).toBe(disputed.disputedAt?.toISOString());
  });
});
