import type express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectPageForBrowsersAndNoJsonForResearchers } from '../support/admin-json.js';
import { createPayingResearchers, deliverDummy, setUpDummyPaymentsApp } from '../support/dummy-payments.js';
import { type Agent, csrfTokenOf } from '../support/sign-in.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * /admin/receipts/:id for a script: the admin's receipt page answered a JSON client with its HTML,
 * while a bad id already got {error, code}. Now the receipt comes as JSON, written as the
 * researcher's /me/receipts/:id writes it, with what only the admin's page says (who it bills, how
 * it was paid, what is held or open, what a void would concern).
 */

let db: TestDatabase;
let app: express.Express;
let admin: Agent;
const researchers = createPayingResearchers(() => ({ db, app }), 'payee');

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('ledger'));
});
afterAll(() => db?.drop());

function getJson(path: string) {
  return admin.get(path).set('Accept', 'application/json');
}

/** The researcher's own JSON of the receipt, less what only it says, to compare with the admin's. */
async function ownJsonOf(agent: Agent, receiptId: number) {
  const own = (await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'application/json').expect(200)).body;
  const { heldPayment, url, itemsCsvUrl, ...facts } = own.receipt;
  return { ...own, receipt: facts };
}

describe('GET /admin/receipts/:id for a JSON client', () => {
  it('answers a receipt paid by hand as the researcher’s JSON writes it, with what the admin’s page adds', async () => {
    const { user, agent, receiptId } = await researchers.researcherWithReceipt();
    await admin
      .post(`/admin/receipts/${receiptId}/paid`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ method: 'bank_transfer', amount_received: '10.00', tx_ref: 'KBANK-77' })
      .expect(200);
    const answer = await getJson(`/admin/receipts/${receiptId}`).expect(200);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    const body = answer.body;
    const own = await ownJsonOf(agent, receiptId);
    expect(body).toMatchObject(own);
    expect(body.items).toEqual(own.items);
    expect(body.receipt).toMatchObject({
      id: receiptId,
      status: 'paid',
      total: '10.00',
      currency: 'THB',
      paymentMethod: 'bank_transfer',
      txRef: 'KBANK-77',
      username: user.username,
      createdBy: user.username,
      monthEndRunId: null,
      voidedBy: null,
      url: `/admin/receipts/${receiptId}`,
      itemsCsvUrl: `/admin/receipts/${receiptId}/items.csv`,
      isPaymentHeld: false,
      sameJobsHeldPayment: null,
      paidOnline: null,
      openPayments: [],
      dismissedPayments: [],
      paidByHand: {
        method: 'bank_transfer',
        txRef: 'KBANK-77',
        paidOn: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/),
        amount: '10.00',
        currency: 'THB',
      },
    });
    expect(body).toMatchObject({ page: 1, pageCount: 1, count: 1 });
    expect(body.items).toEqual([expect.objectContaining({ cost: '10.00', cpuHours: '20.000000' })]);
  });

  it('answers a mark paid with the method named paymentMethod, as the receipt’s JSON names it', async () => {
    const { receiptId } = await researchers.researcherWithReceipt();
    const marked = await admin
      .post(`/admin/receipts/${receiptId}/paid`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ method: 'cheque', amount_received: '10.00', tx_ref: 'CHQ-0042' })
      .expect(200);
    const shown = (await getJson(`/admin/receipts/${receiptId}`).expect(200)).body.receipt;
    expect(shown.paymentMethod).toBe('cheque');
    // `method` stays for the scripts written against the older answer.
    expect(marked.body.receipt).toMatchObject({ id: receiptId, paymentMethod: shown.paymentMethod, method: 'cheque' });
    // And the reference, as the receipt's JSON has it beside the method.
    expect(shown.txRef).toBe('CHQ-0042');
    expect(marked.body.receipt.txRef).toBe(shown.txRef);
  });

  it('answers a mark paid and a void with the message the page’s flash says, as every other change does', async () => {
    const paid = await researchers.researcherWithReceipt();
    const marked = await admin
      .post(`/admin/receipts/${paid.receiptId}/paid`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ method: 'cash', amount_received: '10.00' })
      .expect(200);
    expect(marked.body).toMatchObject({ ok: true, receipt: { id: paid.receiptId, status: 'paid' } });
    expect(marked.body.message).toMatch(
      new RegExp(
        `^Receipt #${paid.receiptId} marked paid on \\d{4}-\\d{2}-\\d{2} \\(cash\\), 10\\.00 THB received\\.$`,
      ),
    );
    const voided = await admin
      .post(`/admin/receipts/${paid.receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ reason: 'billed to the wrong project' })
      .expect(200);
    expect(voided.body).toMatchObject({ ok: true, receipt: { id: paid.receiptId, status: 'void' } });
    expect(voided.body.message).toMatch(
      new RegExp(`^Receipt #${paid.receiptId} voided; its job can be billed again\\. It was paid by hand: `),
    );
    // Only browsers get the flash: the admin's next page says nothing of what the script did.
    const next = await admin.get('/admin/receipts').set('Accept', 'text/html').expect(200);
    expect(next.text).not.toContain(`Receipt #${paid.receiptId} voided`);
  });

  it('names the online payment that paid it short, and an open checkout of a pending one', async () => {
    const short = await researchers.paidShortAndAccepted(admin, 100);
    const paid = (await getJson(`/admin/receipts/${short.receiptId}`).expect(200)).body.receipt;
    expect(paid).toMatchObject({
      status: 'paid',
      received: { amount: '1.00', currency: 'THB', paymentId: short.payment.id, isAccepted: true },
      paidOnline: { paymentId: short.payment.id, provider: 'dummy' },
      paidByHand: null,
    });

    const open = await researchers.researcherWithReceipt();
    await researchers.startCheckout(open.agent, open.receiptId);
    const checkout = await researchers.latestPaymentOf(open.receiptId);
    const pending = (await getJson(`/admin/receipts/${open.receiptId}`).expect(200)).body.receipt;
    expect(pending).toMatchObject({ status: 'pending', isPaymentHeld: false, paidOnline: null });
    expect(pending.openPayments).toEqual([
      { paymentId: checkout.id, provider: 'dummy', createdAt: checkout.createdAt.toISOString() },
    ]);
  });

  it('says a payment of it is held for review', async () => {
    const held = await researchers.researcherWithReceipt();
    await researchers.startCheckout(held.agent, held.receiptId);
    const payment = await researchers.latestPaymentOf(held.receiptId);
    await deliverDummy(app, {
      event_id: `short_${payment.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 100,
      currency: 'THB',
    }).expect(200);
    const receipt = (await getJson(`/admin/receipts/${held.receiptId}`).expect(200)).body.receipt;
    expect(receipt).toMatchObject({ status: 'pending', isPaymentHeld: true });
  });

  it('refuses a bad id, an unknown receipt or a page past the last with {error, code}, changing nothing', async () => {
    const { receiptId } = await researchers.researcherWithReceipt();
    const before = await db.prisma.receipt.findMany({ orderBy: { id: 'asc' } });
    for (const [path, code] of [
      ['/admin/receipts/abc', 400],
      ['/admin/receipts/999999', 404],
      [`/admin/receipts/${receiptId}?page=2`, 404],
      [`/admin/receipts/${receiptId}?page=0`, 400],
    ] as const) {
      const refused = await getJson(path).expect(code);
      expect(refused.headers['content-type']).toMatch(/^application\/json/);
      expect(refused.body).toEqual({ error: expect.any(String), code });
    }
    expect(await db.prisma.receipt.findMany({ orderBy: { id: 'asc' } })).toEqual(before);
  });

  it('still gives a browser the page, and a researcher asking for JSON not the admin’s view', async () => {
    const { agent, receiptId } = await researchers.researcherWithReceipt();
    await expectPageForBrowsersAndNoJsonForResearchers(admin, agent, `/admin/receipts/${receiptId}`);
  });
});
