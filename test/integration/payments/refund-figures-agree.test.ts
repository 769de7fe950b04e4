import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliverDummy, dummyRefundEvent, setUpDummyPaymentsApp } from '../../support/dummy-payments.js';
import { createPaidCsvStory } from '../../support/paid-csv-story.js';
import { researcherWithReceiptOf, startCheckout } from '../../support/receipt-steps.js';
import { type Agent, csrfTokenOf } from '../../support/sign-in.js';
import type { buildTestApp } from '../../support/test-app.js';
import type { TestDatabase } from '../../support/test-database.js';

// A finance review: a receipt of 1,927.91 THB paid online in full; the provider refunded 578.37 THB
// (the payment held for review), the admin voided the receipt and resolved the payment as refunded
// (the billing team returned the other 1,349.54 THB). /admin/payments said 578.37 THB refunded, the
// receipt's JSON and paid.csv 1,927.91 THB: two figures for one payment, unlabelled, read as a
// contradiction. Both pages now say what went back in all and whose each part was.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('finreview'));
});
afterAll(() => db?.drop());

const { paidCsv } = createPaidCsvStory(() => db);

/** The story of the review: paid in full, 578.37 refunded at dummy, voided, resolved as refunded by the team. */
async function refundedByBoth() {
  // 3,855.82 CPU hours at buildTiers' 0.50 THB: 1,927.91 THB.
  const { agent, receiptId } = await researcherWithReceiptOf(app, db, 'finpayer', 3855.82);
  const checkout = await startCheckout(agent, receiptId);
  await agent
    .post(checkout)
    .type('form')
    .send({ choice: 'pay', csrf_token: await csrfTokenOf(agent) })
    .expect(303);
  const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId }, orderBy: { id: 'desc' } });
  expect(payment).toMatchObject({ status: 'succeeded', amountMinor: 192791n });
  await deliverDummy(app, dummyRefundEvent(payment.externalPaymentId, `fr_${payment.id}`, 57837)).expect(200);
  const token = await csrfTokenOf(admin);
  const voided = await admin
    .post(`/admin/receipts/${receiptId}/void`)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', token)
    .send({ reason: 'billed to the wrong project' });
  expect(voided.status, voided.text).toBe(200);
  const resolved = await admin
    .post(`/admin/payments/${payment.id}/resolve`)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', token)
    .send({ outcome: 'refunded', note: 'Returned the other 1,349.54 THB by bank transfer.' });
  expect(resolved.status, resolved.text).toBe(200);
  return { agent, receiptId, paymentId: payment.id };
}

describe('a payment refunded in part at the provider and the rest by the billing team', () => {
  it('reads the same on /admin/payments as on the receipt and paid.csv: the whole, and each part labelled', async () => {
    const { agent, receiptId, paymentId } = await refundedByBoth();

    const receipt = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'application/json').expect(200);
    const refund = receipt.body.receipt.refunds.find((one: { paymentId: number }) => one.paymentId === paymentId);
    expect(refund).toMatchObject({
      amount: '1927.91',
      currency: 'THB',
      isFull: true,
      isByBillingTeam: true,
      atProvider: { amount: '578.37', refundedAt: expect.any(String) },
      byBillingTeam: { amount: '1349.54', refundedAt: refund.refundedAt },
    });

    const listed = await admin.get('/admin/payments').set('Accept', 'application/json').expect(200);
    const row = listed.body.payments.find((one: { id: number }) => one.id === paymentId);
    expect(row).toMatchObject({
      refunded: { amount: '1927.91', currency: 'THB' },
      refundedAt: refund.refundedAt,
      refundedAtProvider: { amount: '578.37', currency: 'THB', refundedAt: refund.atProvider.refundedAt },
      refundedByBillingTeam: { amount: '1349.54', currency: 'THB', refundedAt: refund.refundedAt },
    });

    // paid.csv's default window, the last 7 days, holds today's payment.
    const csv = await paidCsv(admin, '');
    expect(csv.rows.find((line) => line.payment_id === String(paymentId))).toMatchObject({
      amount_received: '1927.91',
      amount_refunded: '1927.91',
    });

    const page = (await admin.get('/admin/payments').set('Accept', 'text/html').expect(200)).text;
    const listRow =
      page
        .split('<tr>')
        .find((one) => one.includes(`aria-label="Receipt #${receiptId}"`) && one.includes('"Refunded"')) ?? '';
    const cell = listRow.match(/<td data-label="Refunded"[^>]*>([\s\S]*?)<\/td>/)?.[1] ?? '';
    const text = cell
      .replace(/<[^>]+>/g, '')
      .replace(/\s+/g, ' ')
      .trim();
    expect(text).toMatch(
      /^1,927\.91 THB refunded in full: 578\.37 THB at dummy \([\d-]+ [\d:]+\), the other 1,349\.54 THB by the billing team \([\d-]+ [\d:]+\)$/,
    );
  });

  it('a payment the billing team refunded with nothing at the provider shows it on /admin/payments too', async () => {
    const { agent, receiptId } = await researcherWithReceiptOf(app, db, 'finteam', 20);
    const checkout = await startCheckout(agent, receiptId);
    await agent
      .post(checkout)
      .type('form')
      .send({ choice: 'pay', csrf_token: await csrfTokenOf(agent) })
      .expect(303);
    const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId }, orderBy: { id: 'desc' } });
    const token = await csrfTokenOf(admin);
    await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ reason: 'billed to the wrong project' })
      .expect(200);
    await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ outcome: 'refunded', note: 'Refunded in the provider dashboard.' })
      .expect(200);

    const listed = await admin.get('/admin/payments').set('Accept', 'application/json').expect(200);
    expect(listed.body.payments.find((one: { id: number }) => one.id === payment.id)).toMatchObject({
      refunded: { amount: '10.00', currency: 'THB' },
      refundedAtProvider: null,
      refundedByBillingTeam: { amount: '10.00', currency: 'THB' },
    });
    const page = (await admin.get('/admin/payments').set('Accept', 'text/html').expect(200)).text;
    const listRow = page.split('<tr>').find((one) => one.includes(`aria-label="Receipt #${receiptId}"`)) ?? '';
    expect(listRow.match(/<td data-label="Refunded"[^>]*>([\s\S]*?)<\/td>/)?.[1]?.replace(/<[^>]+>/g, '')).toMatch(
      /^10\.00 THB refunded in full by the billing team \([\d-]+ [\d:]+\)$/,
    );
    const receipt = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'application/json').expect(200);
    expect(receipt.body.receipt.refunds).toMatchObject([
      { amount: '10.00', isByBillingTeam: true, atProvider: null, byBillingTeam: { amount: '10.00' } },
    ]);
  });
});
