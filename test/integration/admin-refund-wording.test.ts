import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, deliverDummy, setUpDummyPaymentsApp } from '../support/dummy-payments.js';
import { type Agent, csrfTokenOf } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// A partial refund holds the payment that paid a receipt for an admin to decide; once they accept
// it, the receipt stays paid from the rest. The admin's receipt page still said "this receipt stays
// paid while the billing team checks it", so finance looked for a review that was already closed.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('reconciler'));
});
afterAll(() => db?.drop());

const { paidOnline, researcherWithReceipt, startCheckout, latestPaymentOf } = createPayingResearchers(
  () => ({ db, app }),
  'partrefund',
);

/** The notice of payment `paymentId`'s refund on the admin's page of the receipt. */
async function refundNoticeOf(receiptId: number, paymentId: number) {
  const page = await admin.get(`/admin/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
  return new RegExp(`<div class="alert warning" role="status" id="refund-${paymentId}">([^<]*)</div>`).exec(
    page.text,
  )?.[1];
}

describe("a partial refund on the admin's receipt page", () => {
  it('says the billing team checks it while the payment is held, and that the rest was accepted once it is', async () => {
    const { receiptId, payment } = await paidOnline();
    await deliverDummy(app, {
      event_id: `part_${payment.id}`,
      event_type: 'payment.refunded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 300,
      currency: 'THB',
    }).expect(200);
    expect(await refundNoticeOf(receiptId, payment.id)).toMatch(
      new RegExp(
        `^3\\.00 THB of payment #${payment.id} \\(10\\.00 THB via dummy\\) was refunded on [\\d-]+ [\\d:]+; ` +
          'this receipt stays paid while the billing team checks it\\.$',
      ),
    );

    const accepted = await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'accepted', note: 'Partial refund agreed with the lab as a discount.' });
    expect(accepted.status, accepted.text).toBe(200);
    expect(await refundNoticeOf(receiptId, payment.id)).toMatch(
      new RegExp(
        `^3\\.00 THB of payment #${payment.id} \\(10\\.00 THB via dummy\\) was refunded on [\\d-]+ [\\d:]+; ` +
          'what is left of it was accepted as paying this receipt, which stays paid\\.$',
      ),
    );
  });
});

// The provider refunded part of a payment (3.00 of 10.00 THB); the receipt was voided and the billing
// team refunded the rest, resolving the payment as refunded. Every page then said "Payment #N of 10.00
// THB via dummy was refunded in full by the billing team", as if the team had returned all of it: finance
// reconciling the team's refunds looked for 10.00 THB it never sent, and the provider's 3.00 vanished.
describe('a payment refunded in part at the provider and the rest by the billing team', () => {
  it('says what each returned, on the receipt page, the list and the payment status page', async () => {
    const { agent, receiptId, payment } = await paidOnline();
    await deliverDummy(app, {
      event_id: `rest_${payment.id}`,
      event_type: 'payment.refunded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 300,
      currency: 'THB',
    }).expect(200);
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
      .send({ outcome: 'refunded', note: 'Returned the other 7.00 THB by bank transfer.' });
    expect(resolved.status, resolved.text).toBe(200);

    const said = new RegExp(
      `^Payment #${payment.id} of 10\\.00 THB via dummy was refunded in full: 3\\.00 THB at dummy on [\\d-]+ [\\d:]+, ` +
        'and the other 7\\.00 THB by the billing team on [\\d-]+ [\\d:]+: the money went back to the payer\\.$',
    );
    expect(await refundNoticeOf(receiptId, payment.id)).toMatch(said);
    const own = (await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200)).text;
    expect(new RegExp(`id="refund-${payment.id}">([^<]*)</div>`).exec(own)?.[1]).toMatch(said);

    const list = (await agent.get('/me/receipts').set('Accept', 'text/html').expect(200)).text;
    const row = list.slice(list.indexOf(`href="/me/receipts/${receiptId}"`)).split('</tr>')[0] ?? '';
    expect(row).toContain(
      `payment #${payment.id} of 10.00 THB refunded in full (3.00 THB at dummy, the other 7.00 THB by the billing team)`,
    );
    expect(row).not.toContain('in full by the billing team');

    const status = (await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html').expect(200)).text;
    expect(status).toMatch(
      new RegExp(
        `This receipt was voided\\. Your payment #${payment.id} of 10\\.00 THB was refunded in full: 3\\.00 THB at ` +
          'dummy on [\\d-]+ [\\d:]+, and the other 7\\.00 THB by the billing team on [\\d-]+ [\\d:]+\\.',
      ),
    );
  });
});

// A payment refunded in full while its dispute was open stays held for review with nothing of it left;
// accepting it is refused (409), but its card offered "Accepted: mark receipt #N paid from this payment".
describe('the held card of a payment none of whose money is left', () => {
  it('does not offer to accept it, saying why, and still offers refunded and dismissed', async () => {
    const { receiptId, payment } = await paidOnline();
    const deliver = (fields: Record<string, unknown>) =>
      deliverDummy(app, {
        external_payment_id: payment.externalPaymentId,
        amount_cents: 1000,
        currency: 'THB',
        ...fields,
      }).expect(200);
    await deliver({
      event_id: `nl_d_${payment.id}`,
      event_type: 'payment.disputed',
      dispute_id: `dp_nl_${payment.id}`,
    });
    await deliver({ event_id: `nl_r_${payment.id}`, event_type: 'payment.refunded' });
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'needs_review',
    });
    const page = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    const card = page.text.slice(page.text.indexOf(`id="review-${payment.id}"`)).split('</section>')[0] ?? '';
    expect(card).toMatch(new RegExp(`id="outcome-${payment.id}-accepted"[^>]*disabled`));
    expect(card).toContain(
      `Accepted: mark receipt #${receiptId} paid from this payment (not possible: nothing of this payment is left, all it received went back)`,
    );
    expect(card).not.toContain('name="accept_mismatch"');
    expect(card).not.toMatch(new RegExp(`id="outcome-${payment.id}-refunded"[^>]*disabled`));
    expect(card).not.toMatch(new RegExp(`id="outcome-${payment.id}-dismissed"[^>]*disabled`));
  });
});

// A success the provider reported with amount_cents 0 is held as paid 0.00 THB of the 10.00 THB due. Its
// card offered "Accepted" and the accept_mismatch tick, and accepting was refused (409) saying "the 0.00 THB
// it received went back (refunded, or taken back by a lost dispute)", of money that never arrived.
describe('the held card of a payment that received nothing', () => {
  it('does not offer to accept it, and refusing it says nothing arrived, changing nothing', async () => {
    const researcher = await researcherWithReceipt();
    await startCheckout(researcher.agent, researcher.receiptId);
    const payment = await latestPaymentOf(researcher.receiptId);
    await deliverDummy(app, {
      event_id: `zero_${payment.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 0,
      currency: 'THB',
    }).expect(200, { received: true, outcome: 'mismatch' });
    const page = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    const card = page.text.slice(page.text.indexOf(`id="review-${payment.id}"`)).split('</section>')[0] ?? '';
    expect(card).toMatch(new RegExp(`id="outcome-${payment.id}-accepted"[^>]*disabled`));
    expect(card).toContain(
      `Accepted: mark receipt #${researcher.receiptId} paid from this payment (not possible: it received nothing, 0.00 THB)`,
    );
    // The tick that goes with Accepted is not offered without it: ticked, it asked to accept what cannot be.
    expect(card).not.toContain('name="accept_mismatch"');
    expect(card).not.toContain('Accept the different amount');
    expect(card).not.toMatch(new RegExp(`id="outcome-${payment.id}-dismissed"[^>]*disabled`));

    const before = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    const answer = await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'accepted', note: 'accepting what arrived', accept_mismatch: 'yes' });
    expect(answer.status, answer.text).toBe(409);
    expect(answer.body.error).toBe(
      `Nothing of payment #${payment.id} is left to pay receipt #${researcher.receiptId}: it received nothing ` +
        '(0.00 THB). Resolve it as dismissed with what was done; nothing was changed.',
    );
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toEqual(before);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: researcher.receiptId } })).status).toBe('pending');
  });
});
