import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPayingResearchers,
  deliverDummy,
  dummyRefundEvent,
  setUpDummyPaymentsApp,
} from '../support/dummy-payments.js';
import { visibleTextOf } from '../support/html.js';
import { type Agent, csrfTokenIn, csrfTokenOf } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// A payment held for review that had not paid its receipt (a success after its checkout was canceled)
// received the whole 10.00 THB, then the provider refunded 4.00 THB of it. Accepting it marked the
// receipt paid at its whole total with no more asked: only 6.00 THB of that money stayed with the
// centre, where a payment that arrived 6.00 THB short needs "accept the different amount" ticked, and a
// receipt marked paid by hand must be paid in full. A page opened before the refund arrived offered the
// same accept, so the admin kept money for the receipt that had partly gone back, unaware.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;
beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('acceptpart'));
});
afterAll(() => db?.drop());

const { heldLateSuccess } = createPayingResearchers(() => ({ db, app }), 'acceptpart');

function refundPart(payment: { id: number; externalPaymentId: string | null }) {
  return deliverDummy(app, dummyRefundEvent(payment.externalPaymentId, `part_${payment.id}`, 400)).expect(200);
}

function accept(paymentId: number, body: Record<string, unknown> = {}) {
  return csrfTokenOf(admin).then((token) =>
    admin
      .post(`/admin/payments/${paymentId}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ outcome: 'accepted', note: 'Checked at the provider: this money pays it.', ...body }),
  );
}

describe('accepting a held payment part of whose money went back', () => {
  it('is refused without "accept the different amount", saying what is left, and changes nothing', async () => {
    const { receiptId, payment } = await heldLateSuccess();
    await refundPart(payment);
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(held).toMatchObject({ status: 'needs_review', hasAmountMismatch: false });
    const entries = await db.prisma.auditLog.count();

    const refused = await accept(payment.id);
    expect(refused.status, refused.text).toBe(400);
    expect(refused.body.error).toBe(
      `Payment #${payment.id} received 10.00 THB, but 4.00 THB of it went back to the payer since (refunded, or ` +
        `taken back by a lost dispute): only 6.00 THB of it is left for receipt #${receiptId}, whose total is 10.00 THB. ` +
        'To accept it anyway, say in the note how the rest was settled and tick "accept the different amount" ' +
        '(accept_mismatch=yes).',
    );
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
      status: 'pending',
      paidAt: null,
    });
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'needs_review',
      reviewOutcome: null,
    });
    expect(await db.prisma.auditLog.count()).toBe(entries);

    // Ticked, with the note saying how the rest is settled, it is accepted as a short payment is.
    const accepted = await accept(payment.id, { accept_mismatch: 'yes' });
    expect(accepted.status, accepted.text).toBe(200);
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({ status: 'paid' });
  });

  it('offers the tick on the payments page, and a form opened before the refund is refused there', async () => {
    const { receiptId, payment } = await heldLateSuccess();
    // The page as it was before the refund: all 10.00 THB received, nothing to tick.
    const before = (await admin.get('/admin/payments').set('Accept', 'text/html').expect(200)).text;
    const card = (html: string) =>
      new RegExp(`<section class="card review" id="review-${payment.id}">.*?</section>`, 's').exec(html)?.[0] ?? '';
    expect(card(before)).not.toContain('name="accept_mismatch"');

    await refundPart(payment);
    const stale = await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'text/html')
      .type('form')
      .send({
        csrf_token: csrfTokenIn(before),
        outcome: 'accepted',
        note: 'Checked at the provider: this money pays it.',
      });
    expect(stale.status).toBe(400);
    expect(visibleTextOf(card(stale.text))).toContain('only 6.00 THB of it is left for receipt');
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');

    // The page now offers the tick on that payment's card, and says why.
    const after = card((await admin.get('/admin/payments').set('Accept', 'text/html').expect(200)).text);
    expect(after).toContain('name="accept_mismatch"');
    expect(visibleTextOf(after)).toContain('Accept the different amount');
  });

  it('a held payment with nothing gone back is accepted without the tick, as before', async () => {
    const { receiptId, payment } = await heldLateSuccess();
    const accepted = await accept(payment.id);
    expect(accepted.status, accepted.text).toBe(200);
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({ status: 'paid' });
  });
});
