import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amountDueOf, buildJobs, buildTiers } from '../support/billing-factories.js';
import { DUMMY_PAYMENTS_ENV, deliverDummy } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { createPaidCsvStory } from '../support/paid-csv-story.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A finance reviewer found paid.csv counting the same money twice: a receipt paid (online, or by
// hand), voided (billed to the wrong project), its jobs billed again on a new receipt, and that receipt marked paid
// "with that money" as its admin page advises. Both lines carried the amount, so the file's
// amount_received added up to twice what came in. The mark paid now records whose money paid the new
// receipt, and its line carries no new money and names the voided receipt whose line has it.
let db: TestDatabase;
const clock = new Date('2025-09-05T03:00:00Z');
let app: ReturnType<typeof buildTestApp>;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  for (const username of ['alice', 'bob', 'carol', 'dave', 'erin', 'fay', 'gus', 'hal', 'ian', 'jon', 'kai', 'lea']) {
    await buildUser(db.prisma, { username, password: `${username}-password` });
  }
  await buildUser(db.prisma, { username: 'finance', role: 'admin', password: 'finance-password' });
  app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok', ...DUMMY_PAYMENTS_ENV }, now: () => clock });
});
afterAll(() => db?.drop());

const signIn = (username: string) => signInAs(app, username, `${username}-password`);
const { billEverything, payOnline, paidCsv } = createPaidCsvStory(() => db);
const september = 'start=2025-09-01&end=2025-09-30';

// The jobs are billed again at the same tier, so the voided receipt's money is the new total: money
// that is not is refused (voided-money-not-total.test.ts).
async function voidAsJson(admin: Agent, receiptId: number) {
  const voided = await admin
    .post(`/admin/receipts/${receiptId}/void`)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin))
    .send({ reason: 'billed to the wrong project' });
  expect(voided.status, voided.text).toBe(200);
}

async function markPaid(admin: Agent, receiptId: number, fields: Record<string, unknown>) {
  return admin
    .post(`/admin/receipts/${receiptId}/paid`)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin))
    .send({ method: 'internal_transfer', amount_received: await amountDueOf(db, receiptId), ...fields });
}

/** The sum of a file's amount_received, in minor units (THB has two decimals). */
function receivedSum(rows: Record<string, string | undefined>[]) {
  return rows.reduce((sum, row) => sum + Math.round(Number(row.amount_received || '0') * 100), 0);
}

describe('paid.csv when a voided receipt’s money pays the receipt that bills its jobs again', () => {
  it('counts money paid online once: the new line carries none and names the voided receipt', async () => {
    await buildJobs(db, [{ user: 'alice', end: '2025-09-01T03:00:00Z', totalCpuSec: '7200', stepMemGbHours: '0' }]);
    const alice = await signIn('alice');
    const first = await billEverything(alice);
    const payment = await payOnline(alice, first);
    const admin = await signIn('finance');
    await voidAsJson(admin, first);
    const again = await billEverything(alice);

    const marked = await markPaid(admin, again, { paid_with_receipt: String(first) });
    expect(marked.status, marked.text).toBe(200);
    expect(marked.body.receipt).toMatchObject({ paidWithReceiptId: first, txRef: `receipt #${first}` });
    expect(marked.body.message).toBe(
      `Receipt #${again} marked paid on 2025-09-05 (internal transfer), 1.00 THB paid with the money of receipt #${first}, ` +
        `voided: no new money, so paid.csv counts that money once, on receipt #${first}'s line.`,
    );
    // As the page says: the held payment is dismissed, its money being what paid the new receipt.
    await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'dismissed', note: `its money paid receipt #${again}` })
      .expect(200);

    const { rows } = await paidCsv(admin, september);
    expect(rows).toEqual([
      expect.objectContaining({
        receipt_id: String(first),
        method: 'dummy',
        total: '1.00',
        amount_received: '1.00',
        payment_id: String(payment.id),
        void_reason: 'billed to the wrong project',
      }),
      expect.objectContaining({
        receipt_id: String(again),
        method: 'internal_transfer',
        tx_ref: `receipt #${first}`,
        total: '1.00',
        tier: 'mu',
        amount_received: '0.00',
        received_currency: 'THB',
        payment_id: '',
        voided_at: '',
      }),
    ]);
    // One payment of 1.00 THB came in.
    expect(receivedSum(rows)).toBe(100);

    const stored = await db.prisma.receipt.findUniqueOrThrow({ where: { id: again } });
    expect(stored).toMatchObject({ status: 'paid', paidWithReceiptId: first, txRef: `receipt #${first}` });
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'receipt.mark_paid', target: `receipt:${again}` },
    });
    expect(audit.details).toMatchObject({ paidWithReceipt: { receiptId: first, paymentId: payment.id } });
  });

  it('counts money paid by hand once, and refuses to spend the same money twice', async () => {
    await buildJobs(db, [{ user: 'bob', end: '2025-09-02T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const bob = await signIn('bob');
    const first = await billEverything(bob);
    const admin = await signIn('finance');
    const byHand = await markPaid(admin, first, { method: 'bank_transfer', tx_ref: 'BT-11' });
    expect(byHand.status, byHand.text).toBe(200);
    await voidAsJson(admin, first);
    const again = await billEverything(bob);
    // The new receipt's page offers that money in its mark-paid form, as its notice says.
    const page = (await admin.get(`/admin/receipts/${again}`).set('Accept', 'text/html').expect(200)).text;
    expect(page).toContain(
      `it may pay for this receipt: mark this receipt paid with it (Paid with the money of: receipt #${first}); ` +
        'marking this receipt paid with other money bills the researcher twice for the same jobs.',
    );
    expect(page).toContain(`<option value="${first}">receipt #${first}, voided (paid by hand)</option>`);
    // Sent as the form sends it.
    await admin
      .post(`/admin/receipts/${again}/paid`)
      .type('form')
      .send({
        method: 'internal_transfer',
        amount_received: await amountDueOf(db, again),
        tx_ref: '',
        paid_on: '2025-09-05',
        paid_with_receipt: String(first),
        csrf_token: await csrfTokenOf(admin),
      })
      .expect(303);

    const { rows } = await paidCsv(admin, september);
    const bobs = rows.filter((row) => row.user === 'bob');
    expect(bobs).toEqual([
      expect.objectContaining({ receipt_id: String(first), tx_ref: 'BT-11', amount_received: '0.50' }),
      expect.objectContaining({
        receipt_id: String(again),
        tx_ref: `receipt #${first}`,
        total: '0.50',
        amount_received: '0.00',
        payment_id: '',
      }),
    ]);
    expect(receivedSum(bobs)).toBe(50);

    // The same money cannot pay a second receipt: voided in turn, the receipt it paid has its jobs
    // billed a third time, and that receipt is refused the first one's money; nothing changes.
    await voidAsJson(admin, again);
    const next = await billEverything(bob);
    const auditsBefore = await db.prisma.auditLog.count();
    const twice = await markPaid(admin, next, { paid_with_receipt: first });
    expect(twice.status, twice.text).toBe(409);
    expect(twice.body.error).toBe(
      `The money of receipt #${first} already paid receipt #${again}; it cannot pay receipt #${next} too. Nothing was changed.`,
    );
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: next } })).toMatchObject({
      status: 'pending',
      paidAt: null,
      paidWithReceiptId: null,
    });
    expect(await db.prisma.auditLog.count()).toBe(auditsBefore);
  });

  it('refuses money that is not a voided paid receipt of the same user, naming why, and changes nothing', async () => {
    await buildJobs(db, [{ user: 'carol', end: '2025-09-01T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const carol = await signIn('carol');
    const admin = await signIn('finance');
    const carolsPaid = await billEverything(carol);
    expect((await markPaid(admin, carolsPaid, { tx_ref: 'IT-1' })).status).toBe(200);
    await buildJobs(db, [{ user: 'carol', end: '2025-09-02T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const pending = await billEverything(carol);
    const alicesVoided = (await db.prisma.receipt.findFirstOrThrow({ where: { username: 'alice', status: 'void' } }))
      .id;
    const auditsBefore = await db.prisma.auditLog.count();
    const cases: [Record<string, unknown>, number, string][] = [
      [{ paid_with_receipt: '999999' }, 400, 'paid_with_receipt: there is no receipt #999999'],
      [{ paid_with_receipt: 'abc' }, 400, 'paid_with_receipt: must be a whole number'],
      [
        { paid_with_receipt: alicesVoided },
        400,
        `paid_with_receipt: receipt #${alicesVoided} bills alice, not carol; its money cannot pay carol's receipt`,
      ],
      [{ paid_with_receipt: pending }, 400, `paid_with_receipt: receipt #${pending} is this receipt`],
      [
        { paid_with_receipt: carolsPaid },
        400,
        `paid_with_receipt: receipt #${carolsPaid} is paid, not void; only the money of a receipt voided after it was paid can pay another`,
      ],
      [
        { paid_with_receipt: alicesVoided, tx_ref: 'payment #6' },
        400,
        `tx_ref: leave it empty when the receipt is paid with the money of receipt #${alicesVoided}: that receipt is the reference recorded`,
      ],
    ];
    for (const [fields, status, error] of cases) {
      const refused = await markPaid(admin, pending, fields);
      expect(refused.status, refused.text).toBe(status);
      expect(refused.body.error).toBe(error);
    }
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: pending } })).toMatchObject({
      status: 'pending',
      paidWithReceiptId: null,
    });
    expect(await db.prisma.auditLog.count()).toBe(auditsBefore);
  });

  it('refuses the money of a voided receipt whose payment was refunded, and changes nothing', async () => {
    await buildJobs(db, [{ user: 'dave', end: '2025-09-01T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const dave = await signIn('dave');
    const first = await billEverything(dave);
    const payment = await payOnline(dave, first);
    const admin = await signIn('finance');
    await voidAsJson(admin, first);
    await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'refunded', note: 'refunded at the provider' })
      .expect(200);
    const again = await billEverything(dave);
    const auditsBefore = await db.prisma.auditLog.count();
    const refused = await markPaid(admin, again, { paid_with_receipt: first });
    expect(refused.status, refused.text).toBe(409);
    expect(refused.body.error).toBe(
      `The money of receipt #${first} went back to the payer: payment #${payment.id} was refunded, so it cannot pay receipt #${again}. Nothing was changed.`,
    );
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: again } })).toMatchObject({
      status: 'pending',
      paidWithReceiptId: null,
    });
    expect(await db.prisma.auditLog.count()).toBe(auditsBefore);
  });

  it('refuses the money of a voided receipt that billed none of this receipt’s jobs, and changes nothing', async () => {
    // erin's first job: billed, paid by hand, voided, billed again and paid with new money.
    await buildJobs(db, [{ user: 'erin', end: '2025-09-01T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const erin = await signIn('erin');
    const admin = await signIn('finance');
    const first = await billEverything(erin);
    expect((await markPaid(admin, first, { method: 'bank_transfer', tx_ref: 'BT-21' })).status).toBe(200);
    await voidAsJson(admin, first);
    const again = await billEverything(erin);
    expect((await markPaid(admin, again, { tx_ref: 'IT-21' })).status).toBe(200);
    // Her next job is on a receipt of its own: the voided receipt's money never paid for it.
    await buildJobs(db, [{ user: 'erin', end: '2025-09-02T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const other = await billEverything(erin);
    const auditsBefore = await db.prisma.auditLog.count();
    const refused = await markPaid(admin, other, { paid_with_receipt: first });
    expect(refused.status, refused.text).toBe(400);
    // A script has no notice above: it is told where the receipt's JSON names them.
    expect(refused.body.error).toBe(
      `paid_with_receipt: receipt #${first} billed none of this receipt's jobs; only the money of a voided receipt ` +
        `that billed some of them can pay it (sameJobsVoidedPaidByHand of GET /admin/receipts/${other} names them)`,
    );
    // The page keeps its words: its notice above the form names them.
    const page = await admin
      .post(`/admin/receipts/${other}/paid`)
      .set('Accept', 'text/html')
      .type('form')
      .send({
        method: 'internal_transfer',
        amount_received: await amountDueOf(db, other),
        paid_with_receipt: String(first),
        csrf_token: await csrfTokenOf(admin),
      });
    expect(page.status).toBe(400);
    expect(page.text).toContain('that billed some of them (its notice above names it) can pay it');
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: other } })).toMatchObject({
      status: 'pending',
      paidAt: null,
      txRef: null,
      paidWithReceiptId: null,
    });
    expect(await db.prisma.receipt.count({ where: { paidWithReceiptId: first } })).toBe(0);
    expect(await db.prisma.auditLog.count()).toBe(auditsBefore);
  });

  it('refuses the "money" of a voided receipt settled at no charge, which took none, and changes nothing', async () => {
    // lea's job was billed at a tier priced 0 (a 0.00 receipt is settled as it is made), that receipt
    // voided and the job billed again at mu. The page never offers the voided receipt as money, but a
    // mark paid naming it was taken: receipt #N read "with the money of receipt #M (voided), 0.00 THB",
    // and paid.csv's reference pointed finance at a payment that never happened.
    await buildTiers(db, [{ name: 'free', cpu: '0', gpu: '0', mem: '0' }]);
    const free = await db.prisma.pricingTier.findUniqueOrThrow({ where: { name: 'free' } });
    await db.prisma.tierOverride.create({ data: { username: 'lea', tierId: free.id, createdBy: 'finance' } });
    await buildJobs(db, [{ user: 'lea', end: '2025-09-01T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const lea = await signIn('lea');
    const admin = await signIn('finance');
    const noCharge = await billEverything(lea);
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: noCharge } })).toMatchObject({
      status: 'paid',
      paymentMethod: 'no_charge',
    });
    await voidAsJson(admin, noCharge);
    await db.prisma.tierOverride.delete({ where: { username: 'lea' } });
    const again = await billEverything(lea);
    const page = (await admin.get(`/admin/receipts/${again}`).set('Accept', 'text/html').expect(200)).text;
    expect(page).not.toContain(`<option value="${noCharge}">`);
    const auditsBefore = await db.prisma.auditLog.count();
    for (const fields of [
      { paid_with_receipt: noCharge },
      { paid_with_receipt: noCharge, new_money: await amountDueOf(db, again), tx_ref: 'BT-LEA' },
    ]) {
      const refused = await markPaid(admin, again, fields);
      expect(refused.status, refused.text).toBe(400);
      expect(refused.body.error).toBe(
        `paid_with_receipt: receipt #${noCharge} was settled at no charge (its total was 0): it took no money to pay another`,
      );
    }
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: again } })).toMatchObject({
      status: 'pending',
      paidAt: null,
      txRef: null,
      paidWithReceiptId: null,
      newMoneyReceived: null,
    });
    expect(await db.prisma.auditLog.count()).toBe(auditsBefore);
    // Marked paid with the money that came in, as any receipt is.
    expect((await markPaid(admin, again, { tx_ref: 'BT-LEA' })).status).toBe(200);
  });

  it('refuses to resolve as refunded the payment whose money paid the receipt billing its jobs again, and changes nothing', async () => {
    await buildJobs(db, [{ user: 'fay', end: '2025-09-01T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const fay = await signIn('fay');
    const first = await billEverything(fay);
    const payment = await payOnline(fay, first);
    const admin = await signIn('finance');
    await voidAsJson(admin, first);
    const again = await billEverything(fay);
    expect((await markPaid(admin, again, { paid_with_receipt: first })).status).toBe(200);
    const resolveAs = async (outcome: string) =>
      admin
        .post(`/admin/payments/${payment.id}/resolve`)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(admin))
        .send({ outcome, note: 'refunded at the provider' });

    const auditsBefore = await db.prisma.auditLog.count();
    const refused = await resolveAs('refunded');
    expect(refused.status, refused.text).toBe(409);
    expect(refused.body.error).toBe(
      `The money of payment #${payment.id} (receipt #${first}, voided) paid receipt #${again}: it was marked paid ` +
        `with it. To refund it, void receipt #${again} first; nothing was changed.`,
    );
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'needs_review',
      reviewOutcome: null,
    });
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: again } })).toMatchObject({
      status: 'paid',
      paidWithReceiptId: first,
    });
    expect(await db.prisma.auditLog.count()).toBe(auditsBefore);

    // Done as it says: with that receipt voided, the money pays nothing and can go back.
    await voidAsJson(admin, again);
    const refunded = await resolveAs('refunded');
    expect(refunded.status, refunded.text).toBe(200);
  });

  it('keeps held, naming the receipt it paid, a payment the provider refunds in full whose money paid the receipt billing its jobs again', async () => {
    // The admin cannot resolve that payment as refunded while the receipt it paid stands (above); the
    // provider's refund in full did it unasked, and the receipt stayed paid with money the payer has back,
    // with nothing left on /admin/payments to say so.
    await buildJobs(db, [{ user: 'kai', end: '2025-09-01T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const kai = await signIn('kai');
    const first = await billEverything(kai);
    const payment = await payOnline(kai, first);
    const admin = await signIn('finance');
    await voidAsJson(admin, first);
    const again = await billEverything(kai);
    expect((await markPaid(admin, again, { paid_with_receipt: first })).status).toBe(200);
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });

    const refund = await deliverDummy(app, {
      event_id: `kai_refund_${payment.id}`,
      event_type: 'payment.refunded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: Number(payment.amountMinor),
      currency: 'THB',
    });
    expect(refund.status, refund.text).toBe(200);
    expect(refund.body.outcome).toBe('review');
    const after = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(after).toMatchObject({
      status: 'needs_review',
      reviewOutcome: null,
      reviewedBy: null,
      refundedMinor: payment.amountMinor,
      refundedCurrency: 'THB',
    });
    expect(after.reviewReason).toBe(
      `${held.reviewReason}; refunded in full at dummy (0.50 THB); its money paid receipt #${again} (marked paid ` +
        `with the money of receipt #${first}), which stays paid with money that went back to the payer: collect ` +
        `receipt #${again} again or void it, then resolve this`,
    );
    // The receipt it paid is left as it is, for the admin; the refund is audited with why it stays held.
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: again } })).toMatchObject({
      status: 'paid',
      paidWithReceiptId: first,
    });
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'payment.refund' },
      orderBy: { id: 'desc' },
    });
    expect(audit.details).toMatchObject({ paymentId: payment.id, receipt: 'none', moneyPaidReceiptId: again });
    // paid.csv: the money is on the voided receipt's line, refunded in full; the receipt it paid carries none.
    const { rows } = await paidCsv(admin, september);
    expect(rows.find((row) => row.receipt_id === String(first))).toMatchObject({
      amount_received: '0.50',
      amount_refunded: '0.50',
    });
    expect(rows.find((row) => row.receipt_id === String(again))).toMatchObject({ amount_received: '0.00' });

    // Once that receipt is voided, the money pays nothing: the admin resolves it as refunded.
    await voidAsJson(admin, again);
    const resolved = await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'refunded', note: 'refunded at the provider, receipt voided' });
    expect(resolved.status, resolved.text).toBe(200);
  });

  it('shows the admin and the researcher whose money paid the receipt, on its page and in its JSON', async () => {
    await buildJobs(db, [{ user: 'gus', end: '2025-09-01T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const gus = await signIn('gus');
    const admin = await signIn('finance');
    const first = await billEverything(gus);
    expect((await markPaid(admin, first, { method: 'bank_transfer', tx_ref: 'BT-31' })).status).toBe(200);
    await voidAsJson(admin, first);
    const again = await billEverything(gus);
    expect((await markPaid(admin, again, { paid_with_receipt: first })).status).toBe(200);

    const adminJson = (await admin.get(`/admin/receipts/${again}`).set('Accept', 'application/json').expect(200)).body;
    expect(adminJson.receipt).toMatchObject({
      txRef: `receipt #${first}`,
      paidWithReceipt: { id: first, url: `/admin/receipts/${first}` },
    });
    const ownJson = (await gus.get(`/me/receipts/${again}`).set('Accept', 'application/json').expect(200)).body;
    expect(ownJson.receipt.paidWithReceipt).toEqual({
      id: first,
      url: `/me/receipts/${first}`,
      money: await amountDueOf(db, again),
      newMoney: null,
    });
    // New money: none.
    const firstJson = (await gus.get(`/me/receipts/${first}`).set('Accept', 'application/json').expect(200)).body;
    expect(firstJson.receipt.paidWithReceipt).toBeNull();

    const paidLine = (html: string) => /<dt>Paid on<\/dt><dd>(.*?)<\/dd>/.exec(html)?.[1];
    const ownPage = (await gus.get(`/me/receipts/${again}`).set('Accept', 'text/html').expect(200)).text;
    expect(paidLine(ownPage)).toBe(
      `<span class="nowrap">2025-09-05</span> · internal transfer · with the money of receipt <a href="/me/receipts/${first}">#${first}</a> (voided)`,
    );
    const adminPage = (await admin.get(`/admin/receipts/${again}`).set('Accept', 'text/html').expect(200)).text;
    expect(paidLine(adminPage)).toBe(
      `<span class="nowrap">2025-09-05</span> · internal transfer · with the money of receipt <a href="/admin/receipts/${first}">#${first}</a> (voided)`,
    );
    // A receipt paid with new money keeps its reference.
    expect(paidLine((await gus.get(`/me/receipts/${first}`).set('Accept', 'text/html').expect(200)).text)).toBe(
      '<span class="nowrap">2025-09-05</span> · bank transfer · ref BT-31',
    );
  });

  describe('when the receipt paid with that money is voided in turn and the jobs billed a third time', () => {
    const resolvePayment = async (admin: Agent, paymentId: number, outcome: string, note: string) =>
      admin
        .post(`/admin/payments/${paymentId}/resolve`)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(admin))
        .send({ outcome, note });

    it('lets the third receipt be paid with the second’s money, and paid.csv still counts the money once', async () => {
      await buildJobs(db, [{ user: 'hal', end: '2025-09-01T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
      const hal = await signIn('hal');
      const admin = await signIn('finance');
      const first = await billEverything(hal);
      const payment = await payOnline(hal, first);
      await voidAsJson(admin, first);
      const second = await billEverything(hal);
      expect((await markPaid(admin, second, { paid_with_receipt: first })).status).toBe(200);
      expect((await resolvePayment(admin, payment.id, 'dismissed', `its money paid receipt #${second}`)).status).toBe(
        200,
      );
      await voidAsJson(admin, second);
      const third = await billEverything(hal);
      const page = (await admin.get(`/admin/receipts/${third}`).set('Accept', 'text/html').expect(200)).text;
      expect(page).toContain(`<option value="${second}">receipt #${second}, voided (paid by hand)</option>`);
      const marked = await markPaid(admin, third, { paid_with_receipt: second });
      expect(marked.status, marked.text).toBe(200);
      expect(marked.body.receipt).toMatchObject({ paidWithReceiptId: second, txRef: `receipt #${second}` });
      // The money is still the first receipt's online payment.
      const audit = await db.prisma.auditLog.findFirstOrThrow({
        where: { action: 'receipt.mark_paid', target: `receipt:${third}` },
      });
      expect(audit.details).toMatchObject({ paidWithReceipt: { receiptId: second, paymentId: payment.id } });

      const { rows } = await paidCsv(admin, september);
      const hals = rows.filter((row) => row.user === 'hal');
      expect(hals).toEqual([
        expect.objectContaining({ receipt_id: String(first), amount_received: '0.50', payment_id: String(payment.id) }),
        expect.objectContaining({
          receipt_id: String(second),
          tx_ref: `receipt #${first}`,
          amount_received: '0.00',
          void_reason: 'billed to the wrong project',
        }),
        expect.objectContaining({
          receipt_id: String(third),
          tx_ref: `receipt #${second}`,
          amount_received: '0.00',
          voided_at: '',
        }),
      ]);
      // One payment of 0.50 THB came in.
      expect(receivedSum(hals)).toBe(50);
      // And it cannot be refunded while the third receipt is paid with it.
      const auditsBefore = await db.prisma.auditLog.count();
      expect((await resolvePayment(admin, payment.id, 'refunded', 'refunded at the provider')).status).toBe(409);
      expect(await db.prisma.auditLog.count()).toBe(auditsBefore);
    });

    it('refuses the second receipt’s money once the first receipt’s payment went back, and changes nothing', async () => {
      await buildJobs(db, [{ user: 'ian', end: '2025-09-01T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
      const ian = await signIn('ian');
      const admin = await signIn('finance');
      const first = await billEverything(ian);
      const payment = await payOnline(ian, first);
      await voidAsJson(admin, first);
      const second = await billEverything(ian);
      expect((await markPaid(admin, second, { paid_with_receipt: first })).status).toBe(200);
      await voidAsJson(admin, second);
      // Paying nothing now, the money goes back to the payer.
      expect((await resolvePayment(admin, payment.id, 'refunded', 'refunded at the provider')).status).toBe(200);
      const third = await billEverything(ian);
      const auditsBefore = await db.prisma.auditLog.count();
      const refused = await markPaid(admin, third, { paid_with_receipt: second });
      expect(refused.status, refused.text).toBe(409);
      expect(refused.body.error).toBe(
        `The money of receipt #${second} went back to the payer: payment #${payment.id} was refunded, so it cannot pay receipt #${third}. Nothing was changed.`,
      );
      expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: third } })).toMatchObject({
        status: 'pending',
        paidWithReceiptId: null,
      });
      expect(await db.prisma.auditLog.count()).toBe(auditsBefore);
    });

    it('names, on the third receipt’s page, the second receipt’s money and not the first’s, spent', async () => {
      await buildJobs(db, [{ user: 'jon', end: '2025-09-01T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
      const jon = await signIn('jon');
      const admin = await signIn('finance');
      const first = await billEverything(jon);
      expect((await markPaid(admin, first, { method: 'bank_transfer', tx_ref: 'BT-41' })).status).toBe(200);
      await voidAsJson(admin, first);
      const second = await billEverything(jon);
      expect((await markPaid(admin, second, { paid_with_receipt: first })).status).toBe(200);
      await voidAsJson(admin, second);
      const third = await billEverything(jon);
      const json = (await admin.get(`/admin/receipts/${third}`).set('Accept', 'application/json').expect(200)).body;
      expect(json.receipt.sameJobsVoidedPaidByHand.map((voided: { receiptId: number }) => voided.receiptId)).toEqual([
        second,
      ]);
      const page = (await admin.get(`/admin/receipts/${third}`).set('Accept', 'text/html').expect(200)).text;
      expect(page).toContain(`<option value="${second}">receipt #${second}, voided (paid by hand)</option>`);
      expect(page).not.toContain(`<option value="${first}">`);
      const own = (await jon.get(`/me/receipts/${third}`).set('Accept', 'application/json').expect(200)).body;
      expect(own.receipt.sameJobsVoidedPaidByHand.map((voided: { receiptId: number }) => voided.receiptId)).toEqual([
        second,
      ]);
    });
  });
});
