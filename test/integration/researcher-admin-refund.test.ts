import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPayingResearchers,
  deliverDummy,
  dummyRefundEvent,
  setUpDummyPaymentsApp,
} from '../support/dummy-payments.js';
import { elementById, visibleTextOf as textOf } from '../support/html.js';
import { type Agent, csrfTokenOf } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// A receipt paid online, voided by an admin, whose held payment the admin then resolved as refunded:
// the researcher's receipt page still read "Paid on … · dummy" and "Void …" with no word that the
// money went back, My receipts and the JSON said nothing either, and the status page said only "This
// receipt was voided." A refund the provider reports was said on every one of them; one the billing
// team made and recorded was said on none.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;
beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('adminrefunder'));
});
afterAll(() => db?.drop());

const { paidOnline } = createPayingResearchers(() => ({ db, app }), 'adminrefunded');

async function post(path: string, body: Record<string, unknown>) {
  const answer = await admin
    .post(path)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin))
    .send(body);
  expect(answer.status, answer.text).toBe(200);
}

describe("the researcher's receipt once the billing team refunded its payment after a void", () => {
  it('says the payment was refunded, how much and when, on every view of it', async () => {
    const { agent, receiptId, payment } = await paidOnline();
    await post(`/admin/receipts/${receiptId}/void`, { reason: 'billed to the wrong project' });
    await post(`/admin/payments/${payment.id}/resolve`, {
      outcome: 'refunded',
      note: 'Refunded in the dummy dashboard.',
    });
    const resolved = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    const said = new RegExp(
      `^Payment #${payment.id} of 10\\.00 THB via dummy was refunded in full by the billing team on ` +
        '[\\d-]+ [\\d:]+: the money went back to the payer\\.$',
    );

    const page = (await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200)).text;
    const print = (await agent.get(`/me/receipts/${receiptId}/print`).set('Accept', 'text/html').expect(200)).text;
    for (const html of [page, print]) expect(textOf(elementById(html, `refund-${payment.id}`) ?? '')).toMatch(said);

    const refund = {
      paymentId: payment.id,
      amount: '10.00',
      currency: 'THB',
      refundedAt: resolved.reviewedAt?.toISOString(),
      isFull: true,
      isByBillingTeam: true,
      failedAmount: null,
      failedAt: null,
    };
    const json = (await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'application/json').expect(200)).body;
    expect(json.receipt).toMatchObject({ status: 'void', heldPayment: null, refunds: [refund] });

    const list = await agent.get('/me/receipts').set('Accept', 'text/html').expect(200);
    const row = textOf(list.text.slice(list.text.indexOf(`href="/me/receipts/${receiptId}"`)).split('</tr>')[0] ?? '');
    expect(row).toContain(`payment #${payment.id} of 10.00 THB refunded in full`);
    const listJson = (await agent.get('/me/receipts').set('Accept', 'application/json').expect(200)).body;
    expect(listJson.receipts.find((receipt: { id: number }) => receipt.id === receiptId)).toMatchObject({
      status: 'void',
      refunds: [refund],
    });

    const status = await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(textOf(status.text)).toMatch(
      new RegExp(
        `This receipt was voided\\. Your payment #${payment.id} of 10\\.00 THB was refunded in full by the billing ` +
          'team on [\\d-]+ [\\d:]+\\.',
      ),
    );
  });

  it('a receipt voided with its payment still held says no refund', async () => {
    const { agent, receiptId, payment } = await paidOnline();
    await post(`/admin/receipts/${receiptId}/void`, { reason: 'billed to the wrong project' });
    const json = (await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'application/json').expect(200)).body;
    expect(json.receipt.refunds).toEqual([]);
    expect(json.receipt.heldPayment).toMatchObject({ paymentId: payment.id });
    const page = (await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200)).text;
    expect(elementById(page, `refund-${payment.id}`)).toBeUndefined();
  });

  it('a payment the billing team dismissed (settled otherwise) is not said to be refunded', async () => {
    const { agent, receiptId, payment } = await paidOnline();
    await post(`/admin/receipts/${receiptId}/void`, { reason: 'billed to the wrong project' });
    await post(`/admin/payments/${payment.id}/resolve`, {
      outcome: 'dismissed',
      note: 'Applied to another receipt of the lab.',
    });
    const json = (await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'application/json').expect(200)).body;
    expect(json.receipt.refunds).toEqual([]);
  });
});

describe('the status page of a voided receipt whose payment the provider refunded in full', () => {
  // The receipt's page said "Payment #7 … was refunded in full on …: the money went back to the payer.",
  // but the status page a payer comes back to said only "This receipt was voided.", as it had of a
  // refund by the billing team before that was said there.
  it('says the payment was refunded at the provider, how much and when', async () => {
    const { agent, receiptId, payment } = await paidOnline();
    await post(`/admin/receipts/${receiptId}/void`, { reason: 'billed to the wrong project' });
    await deliverDummy(app, dummyRefundEvent(payment.externalPaymentId, `void-refund-${payment.id}`, 1000)).expect(
      200,
      { received: true, outcome: 'ok' },
    );
    const status = await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(textOf(status.text)).toMatch(
      new RegExp(
        `This receipt was voided\\. Your payment #${payment.id} of 10\\.00 THB was refunded in full at dummy on ` +
          '[\\d-]+ [\\d:]+\\.',
      ),
    );
  });

  it('says what the bank took back by a lost dispute apart from what was refunded', async () => {
    const { agent, receiptId, payment } = await paidOnline();
    const dispute = { external_payment_id: payment.externalPaymentId, amount_cents: 400, currency: 'THB' };
    await deliverDummy(app, {
      ...dispute,
      event_id: `void-dp-${payment.id}`,
      event_type: 'payment.disputed',
      dispute_id: `dp_${payment.id}`,
    }).expect(200);
    await deliverDummy(app, {
      ...dispute,
      event_id: `void-dp-lost-${payment.id}`,
      event_type: 'payment.dispute_closed',
      dispute_id: `dp_${payment.id}`,
      dispute_status: 'lost',
    }).expect(200);
    await post(`/admin/receipts/${receiptId}/void`, { reason: 'billed to the wrong project' });
    await deliverDummy(app, dummyRefundEvent(payment.externalPaymentId, `void-rest-${payment.id}`, 600)).expect(200, {
      received: true,
      outcome: 'ok',
    });
    const status = await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(textOf(status.text)).toMatch(
      new RegExp(
        `This receipt was voided\\. Your payment #${payment.id} of 10\\.00 THB went back in full: 6\\.00 THB was ` +
          'refunded at dummy on [\\d-]+ [\\d:]+, and 4\\.00 THB was taken back by your bank on [\\d-]+ [\\d:]+, as you ' +
          'disputed it\\.',
      ),
    );
  });
});
