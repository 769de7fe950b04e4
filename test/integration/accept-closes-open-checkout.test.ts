import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliverDummy, setUpDummyPayments } from '../support/dummy-payments.js';
import { researcherWithReceiptOf, startCheckout } from '../support/receipt-steps.js';
import { csrfTokenOf, signInNewAdmin } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  ({ db, app } = await setUpDummyPayments());
});
afterAll(() => db?.drop());

describe('accepting a held payment while a newer checkout of the receipt is open', () => {
  it('cancels that checkout, so the researcher cannot pay the receipt a second time there', async () => {
    const { agent, receiptId } = await researcherWithReceiptOf(app, db, 'twicepayer', 1);

    // The first attempt fails at the provider, the researcher opens a second checkout, and then the
    // provider reports that the first attempt took the money after all: it is held for review.
    await startCheckout(agent, receiptId);
    const first = await db.prisma.payment.findFirstOrThrow({ where: { receiptId }, orderBy: { id: 'asc' } });
    const event = { external_payment_id: first.externalPaymentId, amount_cents: 50, currency: 'THB' };
    await deliverDummy(app, { ...event, event_id: 'evt_first_failed', event_type: 'payment.failed' }).expect(200);
    const secondPath = await startCheckout(agent, receiptId);
    await deliverDummy(app, { ...event, event_id: 'evt_first_late', event_type: 'payment.succeeded' }).expect(200);
    const second = await db.prisma.payment.findFirstOrThrow({ where: { receiptId }, orderBy: { id: 'desc' } });
    expect(second.id).not.toBe(first.id);
    expect(second.status).toBe('pending');

    const admin = await signInNewAdmin(app, db, 'acceptor');
    const accepted = await admin
      .post(`/admin/payments/${first.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'accepted', note: 'the late success is the money; receipt paid from it' });
    expect(accepted.status, accepted.text).toBe(200);
    expect(accepted.body.payment).toMatchObject({ status: 'resolved', canceledPaymentIds: [second.id] });

    // The receipt is paid from the first payment: the second checkout takes no more money.
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: second.id } })).toMatchObject({
      status: 'canceled',
      reviewReason: `receipt #${receiptId} was marked paid from payment #${first.id} while this checkout was open`,
    });
    const pay = await agent
      .post(secondPath)
      .type('form')
      .send({ choice: 'pay', csrf_token: await csrfTokenOf(agent) });
    expect(pay.status).toBe(409);
    expect(await db.prisma.payment.count({ where: { receiptId, status: 'needs_review' } })).toBe(0);
    const cancelAudit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'payment.cancel', target: `receipt:${receiptId}` },
    });
    expect(cancelAudit.actor).toBe('acceptor');
    expect(cancelAudit.details).toMatchObject({ paymentId: second.id });
  });
});
