import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, deliverDummy, setUpDummyPayments } from '../support/dummy-payments.js';
import { visibleTextOf } from '../support/html.js';
import { csrfTokenOf, signInNewAdmin } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// Money the payer's bank takes back by a dispute the centre lost (a chargeback) is counted wherever
// refunds are, but it is no refund: nobody at the centre or the provider gave it back. The pages
// said it was one: "Payment #7 of 10.00 THB via dummy was refunded in full on …: the money went back
// to the payer", "4.00 THB of payment #7 … was refunded on …", My receipts "refunded in full", the
// status page "Your earlier payment was refunded to you", and /admin/payments' Refunded column, so
// finance looked for a refund at the provider that was never made.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  ({ db, app } = await setUpDummyPayments());
});
afterAll(() => db?.drop());

const payers = createPayingResearchers(() => ({ db, app }), 'bankback');
const AT = '\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}';

/** A receipt of 10.00 THB paid online, `refundCents` refunded (if any), then a dispute of `lostCents` lost. */
async function lostDispute(label: string, lostCents: number, refundCents = 0) {
  const paid = await payers.paidOnline();
  const ext = paid.payment.externalPaymentId;
  if (refundCents > 0) {
    await deliverDummy(app, {
      event_id: `${label}_refund`,
      event_type: 'payment.refunded',
      external_payment_id: ext,
      amount_cents: refundCents,
      currency: 'THB',
    }).expect(200);
  }
  const dispute = { external_payment_id: ext, amount_cents: lostCents, currency: 'THB', dispute_id: `dp_${label}` };
  await deliverDummy(app, { ...dispute, event_id: `${label}_dispute`, event_type: 'payment.disputed' }).expect(200);
  await deliverDummy(app, {
    ...dispute,
    event_id: `${label}_lost`,
    event_type: 'payment.dispute_closed',
    dispute_status: 'lost',
  }).expect(200);
  const admin = await signInNewAdmin(app, db, `${label}admin`);
  const textOf = async (agent: typeof admin, path: string) =>
    visibleTextOf((await agent.get(path).set('Accept', 'text/html').expect(200)).text);
  return {
    ...paid,
    admin,
    pages: {
      receipt: await textOf(paid.agent, `/me/receipts/${paid.receiptId}`),
      print: await textOf(paid.agent, `/me/receipts/${paid.receiptId}/print`),
      adminReceipt: await textOf(admin, `/admin/receipts/${paid.receiptId}`),
    },
    list: await textOf(paid.agent, '/me/receipts'),
    thanks: await textOf(paid.agent, `/payments/thanks?rid=${paid.receiptId}`),
    adminPayments: await textOf(admin, '/admin/payments'),
  };
}

describe('a dispute lost, as the pages say it', () => {
  it('lost in full: taken back by the payer’s bank, not refunded', async () => {
    const { payment, receiptId, agent, admin, pages, list, thanks, adminPayments } = await lostDispute('full', 1000);
    for (const page of Object.values(pages)) {
      expect(page).toMatch(
        new RegExp(
          `Payment #${payment.id} of 10\\.00 THB via dummy was taken back in full by the bank on ${AT}, ` +
            'as the dispute was lost, so this receipt is unpaid again and its jobs are still on it\\.',
        ),
      );
      expect(page).not.toContain('refunded');
    }
    expect(list).toMatch(
      new RegExp(`payment #${payment.id} of 10\\.00 THB taken back in full by the bank \\(dispute lost\\) on ${AT}`),
    );
    expect(list).not.toContain('refunded in full');
    expect(thanks).toContain(
      'Your earlier payment was taken back through your bank, as you disputed it, so this receipt is still to be paid.',
    );
    expect(adminPayments).toContain('10.00 THB (');
    expect(adminPayments).toMatch(
      new RegExp(`10\\.00 THB \\(${AT}\\); all of it taken back by a lost dispute, not refunded`),
    );

    const json = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'application/json').expect(200);
    expect(json.body.receipt.refunds).toEqual([
      expect.objectContaining({ paymentId: payment.id, amount: '10.00', isFull: true, takenBackByDispute: '10.00' }),
    ]);
    const payments = await admin.get('/admin/payments').set('Accept', 'application/json').expect(200);
    expect(payments.body.payments.find((row: { id: number }) => row.id === payment.id)).toMatchObject({
      refunded: { amount: '10.00', currency: 'THB' },
      takenBackByDispute: { amount: '10.00', currency: 'THB' },
    });
  });

  it('lost in part: the part taken back is said so, and the receipt stays paid', async () => {
    const { payment, receiptId, agent, pages, list, adminPayments } = await lostDispute('part', 400);
    for (const page of Object.values(pages)) {
      expect(page).toMatch(
        new RegExp(
          `4\\.00 THB of payment #${payment.id} \\(10\\.00 THB via dummy\\) was taken back by the bank on ${AT}, ` +
            'as the dispute was lost; this receipt stays paid while the billing team checks it\\.',
        ),
      );
    }
    expect(list).toMatch(new RegExp(`4\\.00 THB of payment #${payment.id} taken back by the bank \\(dispute lost\\)`));
    expect(adminPayments).toContain('4.00 THB taken back by a lost dispute');
    expect(adminPayments).not.toContain('4.00 THB refunded');
    const json = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'application/json').expect(200);
    expect(json.body.receipt.refunds[0]).toMatchObject({ amount: '4.00', isFull: false, takenBackByDispute: '4.00' });
  });

  it('a refund and a dispute lost: each is said as what it was', async () => {
    const { payment, pages, list, thanks, adminPayments } = await lostDispute('mixed', 400, 600);
    for (const page of Object.values(pages)) {
      expect(page).toMatch(
        new RegExp(
          `Payment #${payment.id} of 10\\.00 THB via dummy went back in full: 6\\.00 THB was refunded, and 4\\.00 THB ` +
            `was taken back by the bank on ${AT}, as the dispute was lost, so this receipt is unpaid again`,
        ),
      );
    }
    expect(list).toContain(
      `payment #${payment.id} of 10.00 THB went back in full (6.00 THB refunded, 4.00 THB taken back by the bank: dispute lost)`,
    );
    expect(thanks).toContain(
      'Your earlier payment went back to you, part of it refunded and part taken back through your bank',
    );
    expect(adminPayments).toMatch(
      new RegExp(`10\\.00 THB \\(${AT}\\); 4\\.00 THB of it taken back by a lost dispute, not refunded`),
    );
  });

  it('lost in part, the rest refunded by the billing team after a void: each part said as what it was', async () => {
    const { payment, receiptId, agent, admin } = await lostDispute('team', 400);
    const post = async (path: string, body: Record<string, unknown>) => {
      const answer = await admin
        .post(path)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(admin))
        .send(body);
      expect(answer.status, answer.text).toBe(200);
    };
    await post(`/admin/receipts/${receiptId}/void`, { reason: 'billed to the wrong project' });
    await post(`/admin/payments/${payment.id}/resolve`, { outcome: 'refunded', note: 'Refunded the rest at dummy.' });
    const page = visibleTextOf(
      (await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200)).text,
    );
    expect(page).toMatch(
      new RegExp(
        `Payment #${payment.id} of 10\\.00 THB via dummy went back in full: 4\\.00 THB was taken back by the bank on ${AT}, ` +
          `as the dispute was lost, and the other 6\\.00 THB was refunded by the billing team on ${AT}\\.`,
      ),
    );
    expect(page).not.toContain('4.00 THB at dummy');
    const list = visibleTextOf((await agent.get('/me/receipts').set('Accept', 'text/html').expect(200)).text);
    expect(list).toContain(
      `payment #${payment.id} of 10.00 THB went back in full (4.00 THB taken back by the bank: dispute lost, the other 6.00 THB by the billing team)`,
    );
    expect(list).not.toContain('refunded in full');
    // The payment status page of the voided receipt said "refunded in full: 4.00 THB at dummy on …".
    const thanks = visibleTextOf(
      (await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html').expect(200)).text,
    );
    expect(thanks).toMatch(
      new RegExp(
        `This receipt was voided\\. Your payment #${payment.id} of 10\\.00 THB went back in full: 4\\.00 THB was ` +
          `taken back by the bank on ${AT}, as the dispute was lost, and the other 6\\.00 THB was refunded by the ` +
          `billing team on ${AT}\\.`,
      ),
    );
    expect(thanks).not.toContain('at dummy');
    expect(thanks).not.toContain('refunded in full');
  });

  it('refunded in part, lost in part, the rest refunded by the billing team after a void: the status page says each', async () => {
    const { payment, receiptId, agent, admin } = await lostDispute('teammixed', 400, 200);
    for (const [path, body] of [
      [`/admin/receipts/${receiptId}/void`, { reason: 'billed to the wrong project' }],
      [`/admin/payments/${payment.id}/resolve`, { outcome: 'refunded', note: 'Refunded the rest at dummy.' }],
    ] as const) {
      const answer = await admin
        .post(path)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(admin))
        .send(body);
      expect(answer.status, answer.text).toBe(200);
    }
    const thanks = visibleTextOf(
      (await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html').expect(200)).text,
    );
    expect(thanks).toMatch(
      new RegExp(
        `This receipt was voided\\. Your payment #${payment.id} of 10\\.00 THB went back in full: 2\\.00 THB was ` +
          `refunded at dummy, 4\\.00 THB was taken back by the bank on ${AT}, as the dispute was lost, and the other ` +
          `4\\.00 THB was refunded by the billing team on ${AT}\\.`,
      ),
    );
  });
});
