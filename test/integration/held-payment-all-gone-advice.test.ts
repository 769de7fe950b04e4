import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amountDueOf } from '../support/billing-factories.js';
import {
  createPayingResearchers,
  deliverDummy,
  dummyRefundEvent,
  setUpDummyPaymentsApp,
} from '../support/dummy-payments.js';
import { visibleTextOf } from '../support/html.js';
import { type Agent, csrfTokenOf } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// A payment paid online, disputed, then refunded in full at the provider: the receipt is pending again
// and the payment stays held for review for its open dispute, though all of its money has gone back to
// the payer. Marking that receipt paid by hand (the payer paid again by bank transfer), or voiding it,
// told finance, in the confirmation and in the payment's reason on /admin/payments, to "refund it" (or
// "refund the payment or apply it elsewhere"): a second refund of money the payer already has back.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('allgone'));
});
afterAll(() => db?.drop());

const { paidOnline, researcherWithReceipt, startCheckout, latestPaymentOf } = createPayingResearchers(
  () => ({ db, app }),
  'allgonepayer',
);

/** A receipt of 10.00 THB paid online, 1.00 THB of it disputed (still open), then refunded in full. */
async function refundedInFullWithDisputeOpen(paid?: {
  receiptId: number;
  payment: { id: number; externalPaymentId: string | null };
}) {
  const { receiptId, payment } = paid ?? (await paidOnline());
  const ext = payment.externalPaymentId;
  await deliverDummy(app, {
    event_id: `allgone_dispute_${payment.id}`,
    event_type: 'payment.disputed',
    external_payment_id: ext,
    amount_cents: 100,
    currency: 'THB',
    dispute_id: `dp_allgone_${payment.id}`,
  }).expect(200);
  await deliverDummy(app, dummyRefundEvent(ext, `allgone_refund_${payment.id}`, 1000)).expect(200);
  const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
  expect(held.status).toBe('needs_review');
  expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
  return { receiptId, paymentId: payment.id };
}

const ALL_GONE =
  'all of the 10.00 THB it received has gone back to the payer already, so none of it paid the receipt and ' +
  'none of it is left to refund or apply elsewhere: do not refund it again; resolve it as refunded once the ' +
  'provider has nothing more open on it';

describe('a held payment all of whose money went back, when its receipt is settled otherwise', () => {
  it('marked paid by hand: the reason and the confirmation do not ask for a second refund', async () => {
    const { receiptId, paymentId } = await refundedInFullWithDisputeOpen();
    await admin
      .post(`/admin/receipts/${receiptId}/paid`)
      .type('form')
      .send({
        method: 'bank_transfer',
        amount_received: await amountDueOf(db, receiptId),
        tx_ref: 'KBANK-ALLGONE',
        csrf_token: await csrfTokenOf(admin),
      })
      .expect(303);
    const reason = (await db.prisma.payment.findUniqueOrThrow({ where: { id: paymentId } })).reviewReason ?? '';
    expect(reason).toContain(
      `; receipt #${receiptId} was marked paid by hand while this payment was held, so it cannot be accepted for it; ${ALL_GONE}`,
    );
    expect(reason).not.toContain('otherwise refund it');
    const page = visibleTextOf((await admin.get(`/admin/receipts/${receiptId}`).expect(200)).text);
    expect(page).toContain(
      `Payment #${paymentId} (10.00 THB received, all of it gone back to the payer since) of this receipt is held ` +
        'for review and can no longer be accepted for it; none of its money is left to refund: do not refund it ' +
        'again, and resolve it on the payments page once the provider has nothing more open on it.',
    );
    expect(page).not.toContain('otherwise refund it');
  });

  it('voided: the reason and the confirmation do not ask for a second refund', async () => {
    const { receiptId, paymentId } = await refundedInFullWithDisputeOpen();
    await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .type('form')
      .send({ reason: 'billed to the wrong project', based_on_status: 'pending', csrf_token: await csrfTokenOf(admin) })
      .expect(303);
    const reason = (await db.prisma.payment.findUniqueOrThrow({ where: { id: paymentId } })).reviewReason ?? '';
    expect(reason).toContain(
      `; receipt #${receiptId} was voided while this payment was held, so it cannot be accepted for it; ${ALL_GONE}`,
    );
    expect(reason).not.toContain('refund the payment or apply it elsewhere');
    const page = visibleTextOf((await admin.get(`/admin/receipts/${receiptId}`).expect(200)).text);
    expect(page).toContain(
      `Payment #${paymentId} (10.00 THB received, all of it gone back to the payer since) was held for review and ` +
        'can no longer be accepted for this receipt; none of its money is left to refund or apply elsewhere: do not ' +
        'refund it again, and resolve it on the payments page once the provider has nothing more open on it.',
    );
  });
});

// Accepting another held payment of the receipt marks it paid from that one: the all-gone payment's reason
// still gained "refund it, or apply it elsewhere and resolve it as dismissed", though its money was back.
describe('a held payment all of whose money went back, when another held payment of its receipt is accepted', () => {
  it("the payment's reason does not ask for a second refund", async () => {
    // A first checkout failed; a second paid, disputed and refunded in full (held for its dispute).
    const researcher = await researcherWithReceipt();
    const firstPath = await startCheckout(researcher.agent, researcher.receiptId);
    const first = await latestPaymentOf(researcher.receiptId);
    await researcher.agent
      .post(firstPath)
      .type('form')
      .send({ choice: 'fail', csrf_token: await csrfTokenOf(researcher.agent) })
      .expect(303);
    const secondPath = await startCheckout(researcher.agent, researcher.receiptId);
    await researcher.agent
      .post(secondPath)
      .type('form')
      .send({ choice: 'pay', csrf_token: await csrfTokenOf(researcher.agent) })
      .expect(303);
    const second = await latestPaymentOf(researcher.receiptId);
    expect(second.status).toBe('succeeded');
    const { receiptId, paymentId } = await refundedInFullWithDisputeOpen({
      receiptId: researcher.receiptId,
      payment: second,
    });
    // Then the first checkout's late success, held for review, accepted: the receipt is paid from it.
    await deliverDummy(app, {
      event_id: `allgone_late_${first.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: first.externalPaymentId,
      amount_cents: 1000,
      currency: 'THB',
    }).expect(200);
    expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: first.id } })).status).toBe('needs_review');
    const accepted = await admin
      .post(`/admin/payments/${first.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'accepted', note: 'Checked at the provider: this money pays it.' });
    expect(accepted.status, accepted.text).toBe(200);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('paid');
    const reason = (await db.prisma.payment.findUniqueOrThrow({ where: { id: paymentId } })).reviewReason ?? '';
    expect(reason).toContain(
      `; receipt #${receiptId} was marked paid from payment #${first.id}, accepted by allgone, while this payment ` +
        `was held, so it cannot be accepted for it; ${ALL_GONE}`,
    );
    expect(reason).not.toContain('refund it, or apply it elsewhere');
  });
});
