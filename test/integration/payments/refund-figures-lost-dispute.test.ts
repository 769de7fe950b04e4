import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliverDummy, dummyRefundEvent, setUpDummyPaymentsApp } from '../../support/dummy-payments.js';
import { createPaidCsvStory } from '../../support/paid-csv-story.js';
import { researcherWithReceiptOf, startCheckout } from '../../support/receipt-steps.js';
import { type Agent, csrfTokenOf } from '../../support/sign-in.js';
import type { buildTestApp } from '../../support/test-app.js';
import type { TestDatabase } from '../../support/test-database.js';

// A finance review: a receipt of 2,000.00 THB paid online; the provider refunded 1,000.00 THB, then the
// payer's bank took back 500.00 THB by a dispute the centre lost. The receipt's JSON `refunds[].atProvider`
// and /admin/payments' `refundedAtProvider` read 1,500.00 THB at the dispute's close time, paid.csv's
// `amount_refunded` 1,000.00 THB (the loss in `amount_disputed_lost`, as docs/billing.md decides): the
// provider's part read as 1,500.00 THB refunded, with nothing in it saying 500.00 THB was the bank's. Each
// part of the provider's figure is now labelled: what the provider refunded apart from the loss, and the loss
// with when the bank took it, so the three places are seen to agree.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('finlost'));
});
afterAll(() => db?.drop());

const { paidCsv } = createPaidCsvStory(() => db);

describe('a payment refunded in part at the provider, then part taken back by a lost dispute', () => {
  it('labels the lost part in the receipt JSON and /admin/payments JSON as paid.csv splits it', async () => {
    // 4,000 CPU hours at buildTiers' 0.50 THB: 2,000.00 THB.
    const { agent, receiptId } = await researcherWithReceiptOf(app, db, 'finlostpayer', 4000);
    const checkout = await startCheckout(agent, receiptId);
    await agent
      .post(checkout)
      .type('form')
      .send({ choice: 'pay', csrf_token: await csrfTokenOf(agent) })
      .expect(303);
    const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId }, orderBy: { id: 'desc' } });
    await deliverDummy(app, dummyRefundEvent(payment.externalPaymentId, `lr_${payment.id}`, 100000)).expect(200);
    const dispute = {
      external_payment_id: payment.externalPaymentId,
      amount_cents: 50000,
      currency: 'THB',
      dispute_id: `dp_${payment.id}`,
    };
    await deliverDummy(app, { ...dispute, event_id: `ld_${payment.id}`, event_type: 'payment.disputed' }).expect(200);
    await deliverDummy(app, {
      ...dispute,
      event_id: `ll_${payment.id}`,
      event_type: 'payment.dispute_closed',
      dispute_status: 'lost',
    }).expect(200);
    const closedAt = (await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).disputeClosedAt;
    const lostAt = closedAt?.toISOString();
    expect(lostAt).toEqual(expect.any(String));

    const receipt = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'application/json').expect(200);
    const refund = receipt.body.receipt.refunds.find((one: { paymentId: number }) => one.paymentId === payment.id);
    expect(refund).toMatchObject({
      amount: '1500.00',
      isByBillingTeam: false,
      takenBackByDispute: '500.00',
      atProvider: {
        amount: '1500.00',
        refundedApart: '1000.00',
        takenBackByDispute: { amount: '500.00', takenBackAt: lostAt },
      },
      byBillingTeam: null,
    });

    const listed = await admin.get('/admin/payments').set('Accept', 'application/json').expect(200);
    expect(listed.body.payments.find((one: { id: number }) => one.id === payment.id)).toMatchObject({
      refunded: { amount: '1500.00', currency: 'THB' },
      takenBackByDispute: { amount: '500.00', currency: 'THB' },
      refundedAtProvider: {
        amount: '1500.00',
        currency: 'THB',
        refundedApart: '1000.00',
        takenBackByDispute: { amount: '500.00', takenBackAt: lostAt },
      },
    });

    const csv = await paidCsv(admin, '');
    expect(csv.rows.find((line) => line.payment_id === String(payment.id))).toMatchObject({
      amount_received: '2000.00',
      amount_refunded: '1000.00',
      amount_disputed_lost: '500.00',
    });
  });
});
