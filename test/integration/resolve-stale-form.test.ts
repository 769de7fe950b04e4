import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, deliverDummy, setUpDummyPaymentsApp } from '../support/dummy-payments.js';
import { hiddenFieldsIn, visibleTextOf } from '../support/html.js';
import { type Agent, csrfTokenIn, csrfTokenOf } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// An admin opened /admin/payments on a payment held for review (a success after its checkout was
// canceled: all 10.00 THB received, its receipt pending) and decided to keep it for the receipt. Before
// they pressed Resolve, the payer disputed the payment with their bank. The form, opened on the reason
// without the dispute, still accepted the payment and marked the receipt paid, from money the bank may
// take back: the decision was taken on what the page said, not on what the payment had become.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;
beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('stalereview'));
});
afterAll(() => db?.drop());

const { heldLateSuccess } = createPayingResearchers(() => ({ db, app }), 'stalereview');

/** The resolve form of `paymentId` as /admin/payments rendered it: its hidden fields, and the card. */
async function openResolveForm(paymentId: number) {
  const page = (await admin.get('/admin/payments').set('Accept', 'text/html').expect(200)).text;
  const card = new RegExp(`<section class="card review" id="review-${paymentId}">.*?</section>`, 's').exec(page)?.[0];
  expect(card, 'the held payment card').toBeDefined();
  const hidden = hiddenFieldsIn(card ?? '');
  const fields: Record<string, string> = { ...hidden, csrf_token: csrfTokenIn(page) };
  return { hidden: fields, card: card ?? '' };
}

function disputeAll(payment: { id: number; externalPaymentId: string | null }) {
  return deliverDummy(app, {
    event_id: `dispute_${payment.id}`,
    event_type: 'payment.disputed',
    external_payment_id: payment.externalPaymentId,
    amount_cents: 1000,
    currency: 'THB',
    dispute_id: `dp_${payment.id}`,
    dispute_reason: 'fraudulent',
  }).expect(200);
}

const NOTE = 'Checked at the provider: this money pays the receipt.';

describe('a resolve form opened before the held payment changed', () => {
  it('is refused once the payment changed meanwhile (a dispute), showing it as it is now, and changes nothing', async () => {
    const { receiptId, payment } = await heldLateSuccess();
    const staleTab = await openResolveForm(payment.id);
    await disputeAll(payment);
    const entries = await db.prisma.auditLog.count();

    const stale = await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'text/html')
      .type('form')
      .send({ ...staleTab.hidden, outcome: 'accepted', note: NOTE });
    expect(stale.status).toBe(409);
    const card = new RegExp(`<section class="card review" id="review-${payment.id}">.*?</section>`, 's').exec(
      stale.text,
    )?.[0];
    const text = visibleTextOf(card ?? '');
    expect(text).toContain(
      `Payment #${payment.id} changed after this page was opened; nothing was changed. Read why it is held now, then resolve it.`,
    );
    // The card as it is now: its reason names the dispute, and the note typed is kept.
    expect(text).toContain('the payer disputed 10.00 THB');
    expect(card).toContain(NOTE);

    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
      status: 'pending',
    });
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'needs_review',
      reviewOutcome: null,
    });
    expect(await db.prisma.auditLog.count()).toBe(entries);

    // Sent again from the page as it is now, the decision stands on what the payment is.
    const fresh = await openResolveForm(payment.id);
    await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .type('form')
      .send({ ...fresh.hidden, outcome: 'dismissed', note: 'Left for the dispute at the provider.' })
      .expect(303);
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'resolved',
      reviewOutcome: 'dismissed',
    });
  });

  it('is answered 409 in JSON too; a JSON client that sends no based_on_updated_at is not checked', async () => {
    const { payment } = await heldLateSuccess();
    const { hidden } = await openResolveForm(payment.id);
    expect(hidden.based_on_updated_at).toMatch(/^\d+$/);
    await disputeAll(payment);
    const token = await csrfTokenOf(admin);
    const stale = await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ outcome: 'dismissed', note: NOTE, based_on_updated_at: hidden.based_on_updated_at });
    expect(stale.status).toBe(409);
    expect(stale.body.error).toBe(
      `Payment #${payment.id} changed after this page was opened; nothing was changed. Read why it is held now, then resolve it.`,
    );

    const bad = await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ outcome: 'dismissed', note: NOTE, based_on_updated_at: 'yesterday' });
    expect(bad.status).toBe(400);

    await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ outcome: 'dismissed', note: NOTE })
      .expect(200);
  });

  it('an unchanged payment is resolved from its form as before', async () => {
    const { receiptId, payment } = await heldLateSuccess();
    const { hidden } = await openResolveForm(payment.id);
    await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .type('form')
      .send({ ...hidden, outcome: 'accepted', note: NOTE })
      .expect(303);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('paid');
  });
});
