import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordAudit } from '../../src/modules/audit/audit.service.js';
import { amountDueOf } from '../support/billing-factories.js';
import { createPayingResearchers, deliverDummy, setUpDummyPaymentsApp } from '../support/dummy-payments.js';
import { type Agent, csrfTokenOf } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * A bidirectional override or isolate (U+202A-U+202E, U+2066-U+2069) turns the text after it around
 * until its paragraph ends. The audit page writes them as their JSON escape (\u202e); the one-line
 * fields refuse them, but rows stored before that (a reference, a reason to void), a review note (a
 * paragraph of free text) and the audit log's own entries still hold them, and paid.csv, audit.csv
 * and the notes on /admin/payments and a receipt's page printed them raw: a spreadsheet or a page
 * showed a reference or the figures after it backwards.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;
const researchers = createPayingResearchers(() => ({ db, app }), 'bidi');

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('books'));
});
afterAll(() => db?.drop());

const RLO = '\u202e';
const ISOLATE = '\u2066';
const BIDI = /[\u202a-\u202e\u2066-\u2069]/u;
const today = () => new Date().toISOString().slice(0, 10);

async function markPaidByHand(receiptId: number, txRef: string) {
  await admin
    .post(`/admin/receipts/${receiptId}/paid`)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin))
    .send({ method: 'bank_transfer', amount_received: await amountDueOf(db, receiptId), tx_ref: txRef })
    .expect(200);
}

describe('bidirectional controls in stored text', () => {
  it('are written as escapes in paid.csv', async () => {
    const { receiptId } = await researchers.researcherWithReceipt();
    await markPaidByHand(receiptId, 'KB-77');
    // As a reference stored before the one-line fields refused them reads.
    await db.pool.query('UPDATE receipts SET tx_ref = $1 WHERE id = $2', [`KB${RLO}77-${ISOLATE}x`, receiptId]);

    const csv = await admin.get(`/admin/paid.csv?start=${today()}&end=${today()}`).expect(200);
    const line = csv.text.split('\n').find((row) => row.startsWith(`${receiptId},`));
    expect(line).toBeDefined();
    expect(csv.text).not.toMatch(BIDI);
    expect(line).toContain(',KB\\u202e77-\\u2066x,');
  });

  it('are written as escapes in audit.csv, the details still the JSON recorded', async () => {
    await recordAudit(db, {
      actor: `mallory${RLO}nimda`,
      ip: null,
      userAgent: null,
      action: 'test.bidi',
      status: 'ok',
      details: { reason: `dup${RLO}licate`, releasedJobs: 76 },
    });
    const csv = await admin.get('/admin/audit.csv?action=test.bidi').expect(200);
    expect(csv.text).not.toMatch(BIDI);
    const line = csv.text.split('\n').find((row) => row.includes('test.bidi')) ?? '';
    expect(line).toContain(',mallory\\u202enimda,');
    const details = /,"(\{.*\})",/.exec(line)?.[1]?.replaceAll('""', '"') ?? '';
    expect(JSON.parse(details)).toEqual({ reason: `dup${RLO}licate`, releasedJobs: 76 });
  });

  it("are written as escapes in a review note on /admin/payments and on the receipt's page", async () => {
    const researcher = await researchers.researcherWithReceipt();
    await researchers.startCheckout(researcher.agent, researcher.receiptId);
    const payment = await researchers.latestPaymentOf(researcher.receiptId);
    // Marked paid by hand while its checkout was open; the provider's late success is held, then dismissed.
    await markPaidByHand(researcher.receiptId, 'KB-78');
    await deliverDummy(app, {
      event_id: `evt-late-${payment.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 1000,
      currency: 'THB',
    }).expect(200);
    const note = `Paid twice; returned ${RLO}1000 THB\nto the payer, ref ${ISOLATE}RF-9`;
    await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'dismissed', note })
      .expect(200);

    const payments = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(payments.text).not.toMatch(BIDI);
    expect(payments.text).toContain(`returned \\u202e1000 THB\nto the payer, ref \\u2066RF-9`);

    const receipt = await admin.get(`/admin/receipts/${researcher.receiptId}`).set('Accept', 'text/html').expect(200);
    expect(receipt.text).not.toMatch(BIDI);
    expect(receipt.text).toContain('returned \\u202e1000 THB');

    // A JSON client still reads the note as recorded.
    const json = await admin.get('/admin/payments').set('Accept', 'application/json').expect(200);
    expect(JSON.stringify(json.body)).toContain(JSON.stringify(note).slice(1, -1));
  });
});

// A note put into a sentence of the app's own: a payment dismissed with a note that holds a bidi
// control, held again by a dispute, carried the note raw in its new reason ("Why:" on its card) and in
// the 400 that refused accepting it without the tick, as JSON and beside the card.
describe('bidirectional controls in a resolution named by a later hold', () => {
  it('are written as escapes in the reason and in the refusal that quotes it', async () => {
    const researcher = await researchers.researcherWithReceipt();
    await researchers.startCheckout(researcher.agent, researcher.receiptId);
    const payment = await researchers.latestPaymentOf(researcher.receiptId);
    await deliverDummy(app, {
      event_id: `short_${payment.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 800,
      currency: 'THB',
    }).expect(200);
    await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'dismissed', note: `Settled by hand, ref ${RLO}RF-10 for 200 THB` })
      .expect(200);
    await deliverDummy(app, {
      event_id: `dispute_${payment.id}`,
      event_type: 'payment.disputed',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 800,
      currency: 'THB',
      dispute_id: `dp_${payment.id}`,
      dispute_reason: 'fraudulent',
    }).expect(200);
    const escapedNote = 'Settled by hand, ref \\u202eRF-10 for 200 THB';

    const page = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    const card = page.text.slice(page.text.indexOf(`id="review-${payment.id}"`));
    expect(card.slice(0, card.indexOf('</section>'))).toContain(escapedNote);
    expect(page.text).not.toMatch(BIDI);

    const refused = await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'accepted', note: 'The bank was told.' });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toContain('did not match the amount due');
    expect(refused.body.error).toContain(escapedNote);
    expect(refused.body.error).not.toMatch(BIDI);

    const form = await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'text/html')
      .type('form')
      .send({ outcome: 'accepted', note: 'The bank was told.', csrf_token: await csrfTokenOf(admin) });
    expect(form.status).toBe(400);
    expect(form.text).toContain('did not match the amount due');
    expect(form.text).not.toMatch(BIDI);
    expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe('needs_review');
  });
});
