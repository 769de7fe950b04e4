import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { DUMMY_PAYMENTS_ENV, deliverDummy, dummyRefundEvent } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { createPaidCsvStory } from '../support/paid-csv-story.js';
import { signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { createVoidedMoneyStory } from '../support/voided-money-story.js';

// A receipt paid online (0.50 THB at mu), voided: its payment is held for review. Its job billed again at
// gov (0.80 THB) is marked paid with that money plus 0.30 THB new money. The new receipt's page, and the
// void of it, said "the app holds none of this money" of all 0.80 THB: 0.50 THB of it is the online payment,
// which the provider holds, held for review or settled. Only the new money is outside the app.
let db: TestDatabase;
const clock = new Date('2025-09-05T03:00:00Z');
let app: ReturnType<typeof buildTestApp>;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  for (const username of ['hana', 'ivan', 'jun', 'kim', 'lea', 'max', 'noa', 'oto', 'pia']) {
    await buildUser(db.prisma, { username, password: `${username}-password` });
  }
  await buildUser(db.prisma, { username: 'finance', role: 'admin', password: 'finance-password' });
  app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok', ...DUMMY_PAYMENTS_ENV }, now: () => clock });
});
afterAll(() => db?.drop());

const signIn = (username: string) => signInAs(app, username, `${username}-password`);
const { billEverything, payOnline } = createPaidCsvStory(() => db);
const { putOn, post } = createVoidedMoneyStory(() => db, signIn);

/** Paid online at mu, voided (its payment held), billed again at gov and marked paid with that money and `newMoney`. */
async function paidWithHeldOnlineMoney(username: string, newMoney?: string) {
  await buildJobs(db, [{ user: username, end: '2025-09-01T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
  const researcher = await signIn(username);
  const first = await billEverything(researcher);
  const payment = await payOnline(researcher, first);
  const admin = await signIn('finance');
  expect((await post(admin, `/admin/receipts/${first}/void`, { reason: 'billed at the wrong tier' })).status).toBe(200);
  if (newMoney !== undefined) await putOn(username, 'gov');
  const again = await billEverything(researcher);
  const marked = await post(admin, `/admin/receipts/${again}/paid`, {
    method: 'bank_transfer',
    amount_received: newMoney === undefined ? '0.50' : '0.80',
    paid_with_receipt: String(first),
    ...(newMoney === undefined ? {} : { new_money: newMoney, tx_ref: `BT-${username}` }),
  });
  expect(marked.status, marked.text).toBe(200);
  return { admin, first, again, payment };
}

async function adminPage(admin: Awaited<ReturnType<typeof signIn>>, id: number) {
  return (await admin.get(`/admin/receipts/${id}`).set('Accept', 'text/html').expect(200)).text;
}

const noticeOf = (html: string, id: string) =>
  visibleTextOf(new RegExp(`id="${id}">([\\s\\S]*?)</div>`).exec(html)?.[1] ?? '');

describe("voiding a receipt paid with a voided receipt's online money", () => {
  it('says the online part is a payment held for review, and that the app holds none of the new money alone', async () => {
    const { admin, first, again, payment } = await paidWithHeldOnlineMoney('hana', '0.30');
    const held =
      `The 0.50 THB of receipt #${first} came in by its online payment #${payment.id}, which is held for review: ` +
      `the provider holds that money, so refund it there or apply it elsewhere, then resolve payment #${payment.id} ` +
      'on the payments page.';
    const page = await adminPage(admin, again);
    expect(noticeOf(page, 'paid-by-hand')).toBe(
      `Paid by hand: 0.80 THB, 0.50 THB of it the money of receipt #${first} (voided) and 0.30 THB new money by ` +
        'bank transfer, ref BT-hana, on 2025-09-05. Voiding this receipt puts its job back to be billed again. ' +
        `${held} The app holds none of the 0.30 THB new money: return it to the payer or apply it elsewhere yourself.`,
    );
    expect(page).not.toContain('the app holds none of this money');
    expect(page).toContain(`payment #${payment.id} of receipt #${first} stays held for review`);
    const json = (await admin.get(`/admin/receipts/${again}`).set('Accept', 'application/json').expect(200)).body;
    expect(json.receipt.paidByHand.onlinePayment).toEqual({
      paymentId: payment.id,
      receiptId: first,
      status: 'held',
      reviewOutcome: null,
    });

    const voided = await post(admin, `/admin/receipts/${again}/void`, { reason: 'wrong project' });
    expect(voided.status, voided.text).toBe(200);
    expect(voided.body.message).toContain(held);
    expect(voided.body.message).toContain(
      'The app holds none of the 0.30 THB new money: return it to the payer or apply it elsewhere.',
    );
    expect(voided.body.message).not.toContain('The app holds none of this money');
    expect(voided.body.receipt.paidByHand.onlinePayment).toMatchObject({ paymentId: payment.id, status: 'held' });
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'receipt.void', target: `receipt:${again}` },
    });
    expect(audit.details).toMatchObject({
      paidByHand: { onlinePayment: { paymentId: payment.id, receiptId: first, status: 'held' }, newMoney: '0.30' },
    });
    // Voided, its page says the same of that money.
    const after = noticeOf(await adminPage(admin, again), 'void-paid-by-hand');
    expect(after).toContain(held);
    expect(after).not.toContain('The app holds none of this money');
  });

  it('says so of the money alone, without new money', async () => {
    const { admin, first, again, payment } = await paidWithHeldOnlineMoney('ivan');
    // The held payment's reason, on /admin/payments, said to refund it or apply it elsewhere: it is applied.
    expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).reviewReason).toBe(
      `receipt #${first} was voided after it was paid online: refund the payment or apply it elsewhere; its money ` +
        `paid receipt #${again} (marked paid with the money of receipt #${first}), which stays paid from it: resolve ` +
        `this as dismissed, not refunded, unless receipt #${again} is voided first`,
    );
    const notice = noticeOf(await adminPage(admin, again), 'paid-by-hand');
    expect(notice).toContain(
      `Voiding this receipt puts its job back to be billed again. Its money, the 0.50 THB of receipt #${first}, came ` +
        `in by its online payment #${payment.id}, which is held for review: the provider holds that money, so refund ` +
        `it there or apply it elsewhere, then resolve payment #${payment.id} on the payments page.`,
    );
    expect(notice).not.toContain('holds none');
  });

  it('names the payment settled (dismissed) as the provider holding the money, not the app holding none', async () => {
    const { admin, first, again, payment } = await paidWithHeldOnlineMoney('jun', '0.30');
    const resolved = await post(admin, `/admin/payments/${payment.id}/resolve`, {
      outcome: 'dismissed',
      note: `paid receipt #${again} with it`,
    });
    expect(resolved.status, resolved.text).toBe(200);
    const settled =
      `The 0.50 THB of receipt #${first} came in by its online payment #${payment.id}, resolved as dismissed by ` +
      'finance: the provider holds that money, so refund it there or apply it elsewhere.';
    expect(noticeOf(await adminPage(admin, again), 'paid-by-hand')).toContain(
      `${settled} The app holds none of the 0.30 THB new money`,
    );
    const voided = await post(admin, `/admin/receipts/${again}/void`, { reason: 'wrong project' });
    expect(voided.status, voided.text).toBe(200);
    expect(voided.body.message).toContain(settled);
    expect(voided.body.receipt.paidByHand.onlinePayment).toEqual({
      paymentId: payment.id,
      receiptId: first,
      status: 'settled',
      reviewOutcome: 'dismissed',
    });
  });
});

describe('a held payment whose money paid the receipt billing its jobs again, refunded in part', () => {
  it('names that receipt in its reason, linked on the payments page', async () => {
    const { admin, first, again, payment } = await paidWithHeldOnlineMoney('kim');
    const held = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    const refund = await deliverDummy(app, dummyRefundEvent(payment.externalPaymentId, `kim_part_${payment.id}`, 20));
    expect(refund.status, refund.text).toBe(200);
    const after = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(after).toMatchObject({ status: 'needs_review', refundedMinor: 20n });
    // It said the refund and what is still held, and nothing of receipt #again, paid with that money.
    expect(after.reviewReason).toBe(
      `${held.reviewReason}; 0.20 THB of the 0.50 THB received has been refunded at dummy so far; 0.30 THB is ` +
        `still held; its money paid receipt #${again} (marked paid with the money of receipt #${first}), which ` +
        `stays paid though 0.20 THB of that money went back to the payer: collect 0.20 THB for receipt #${again} ` +
        'or void it, then resolve this',
    );
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'payment.refund' },
      orderBy: { id: 'desc' },
    });
    expect(audit.details).toMatchObject({ paymentId: payment.id, moneyPaidReceiptId: again });
    const page = (await admin.get('/admin/payments').set('Accept', 'text/html').expect(200)).text;
    const card = /<section class="card review" id="review-(\d+)">[\s\S]*?<\/section>/g;
    const ours = [...page.matchAll(card)].find((match) => match[1] === String(payment.id))?.[0] ?? '';
    expect(ours).toContain(`its money paid receipt <a href="/admin/receipts/${again}">#${again}</a>`);
    expect(visibleTextOf(ours)).toContain(`collect 0.20 THB for receipt #${again} or void it, then resolve this`);
    // The receipt it paid says what of that money the provider still holds: not the whole 0.50 THB.
    expect(noticeOf(await adminPage(admin, again), 'paid-by-hand')).toContain(
      `Its money, the 0.50 THB of receipt #${first}, came in by its online payment #${payment.id}, which is held ` +
        'for review; 0.20 THB of it has been refunded, and the provider holds the rest, so refund it there or apply ' +
        `it elsewhere, then resolve payment #${payment.id} on the payments page.`,
    );
  });
});

describe('a receipt billing again the jobs of a held payment whose money paid a receipt voided since', () => {
  it('is not told to mark it paid with that spent money, nor offered it, but the receipt it paid', async () => {
    const { admin, first, again, payment } = await paidWithHeldOnlineMoney('lea');
    expect((await post(admin, `/admin/receipts/${again}/void`, { reason: 'wrong project' })).status).toBe(200);
    const third = await billEverything(await signIn('lea'));
    const page = await adminPage(admin, third);
    const notice = noticeOf(page, 'same-jobs-held');
    // A mark paid with receipt #first's money is refused (409): it already paid receipt #again.
    expect(notice).toBe(
      `Payment #${payment.id} of 0.50 THB for receipt #${first}, which billed some of these jobs, is held for ` +
        `review. Its money paid receipt #${again} since (marked paid with the money of receipt #${first}), voided ` +
        `in turn: that receipt's money is what may pay this one (Paid with the money of: receipt #${again}), not ` +
        `receipt #${first}'s. Once it does, resolve payment #${payment.id} as dismissed on the payments page.`,
    );
    // The JSON says it too: sameJobsHeldPayment carried only the payment, not the receipt its money paid.
    const json = (await admin.get(`/admin/receipts/${third}`).set('Accept', 'application/json').expect(200)).body;
    expect(json.receipt.sameJobsHeldPayment).toEqual({
      paymentId: payment.id,
      receiptId: first,
      amount: '0.50',
      currency: 'THB',
      moneyPaidReceipt: { id: again, status: 'void', url: `/admin/receipts/${again}` },
      isReceiptVoidedUnpaid: false,
    });
    expect(page).not.toContain(`<option value="${first}">`);
    expect(page).toContain(`<option value="${again}">receipt #${again}, voided (paid by hand)</option>`);
    const marked = await post(admin, `/admin/receipts/${third}/paid`, {
      method: 'bank_transfer',
      amount_received: '0.50',
      paid_with_receipt: String(again),
    });
    expect(marked.status, marked.text).toBe(200);
  });
});

describe('a receipt paid with the money of a voided receipt that was itself topped up with new money', () => {
  it('says only the online part came in online, and the new money along the way by hand', async () => {
    const { admin, first, again, payment } = await paidWithHeldOnlineMoney('max', '0.30');
    expect((await post(admin, `/admin/receipts/${again}/void`, { reason: 'wrong project' })).status).toBe(200);
    const third = await billEverything(await signIn('max'));
    const marked = await post(admin, `/admin/receipts/${third}/paid`, {
      method: 'bank_transfer',
      amount_received: '0.80',
      paid_with_receipt: String(again),
    });
    expect(marked.status, marked.text).toBe(200);
    // It said the whole 0.80 THB of receipt #again came in by the online payment of 0.50 THB.
    expect(noticeOf(await adminPage(admin, third), 'paid-by-hand')).toContain(
      `Voiding this receipt puts its job back to be billed again. The 0.80 THB of receipt #${again} came in by ` +
        `online payment #${payment.id} of receipt #${first} and, along the way, 0.30 THB new money paid by hand, ` +
        `which the app holds none of. Payment #${payment.id} is held for review: the provider holds that money, so ` +
        `refund it there or apply it elsewhere, then resolve payment #${payment.id} on the payments page.`,
    );
  });
});

describe("a researcher's voided receipt whose held payment's money paid the receipt billing its jobs again", () => {
  it('says its money paid that receipt, linked, not that it is being checked', async () => {
    const { first, again, payment } = await paidWithHeldOnlineMoney('noa');
    const researcher = await signIn('noa');
    const said =
      `A payment of 0.50 THB for this receipt is held for review by the billing team; its money paid receipt ` +
      `#${again} since (marked paid with the money of this receipt), which stays paid from it.`;
    const page = (await researcher.get(`/me/receipts/${first}`).set('Accept', 'text/html').expect(200)).text;
    expect(noticeOf(page, 'payment-held')).toBe(said);
    expect(page).toContain(`its money paid receipt <a href="/me/receipts/${again}">#${again}</a>`);
    const json = (await researcher.get(`/me/receipts/${first}`).set('Accept', 'application/json').expect(200)).body;
    expect(json.receipt.heldPayment).toMatchObject({ paymentId: payment.id, receiptId: first, message: said });
    const printed = (await researcher.get(`/me/receipts/${first}/print`).set('Accept', 'text/html').expect(200)).text;
    expect(visibleTextOf(/id="payment-held">([\s\S]*?)<\/p>/.exec(printed)?.[1] ?? '')).toBe(said);
    // My receipts says it too, in its row and its JSON: it said "payment being checked by the billing team".
    const list = (await researcher.get('/me/receipts').set('Accept', 'text/html').expect(200)).text;
    expect(list).toContain(
      `payment held for review; its money paid receipt <a href="/me/receipts/${again}">#${again}</a></span>`,
    );
    expect(list).not.toContain('payment being checked by the billing team');
    const listed = (await researcher.get('/me/receipts').set('Accept', 'application/json').expect(200)).body;
    expect(listed.receipts.find((row: { id: number }) => row.id === first).heldPayment.message).toBe(said);
    // Voided in turn, it says so: that receipt's money is what may pay the jobs now.
    const admin = await signIn('finance');
    expect((await post(admin, `/admin/receipts/${again}/void`, { reason: 'wrong project' })).status).toBe(200);
    const after = (await researcher.get(`/me/receipts/${first}`).set('Accept', 'text/html').expect(200)).text;
    expect(noticeOf(after, 'payment-held')).toBe(
      `A payment of 0.50 THB for this receipt is held for review by the billing team; its money paid receipt ` +
        `#${again} since (marked paid with the money of this receipt), voided in turn: they will be in touch. ` +
        'Please do not pay again for these jobs meanwhile.',
    );
    expect((await researcher.get('/me/receipts').set('Accept', 'text/html').expect(200)).text).toContain(
      `its money paid receipt <a href="/me/receipts/${again}">#${again}</a>, voided in turn</span>`,
    );
  });
});

describe("a researcher's voided receipt whose held payment's money paid another receipt, refunded in part", () => {
  it('says what went back to them and what still pays that receipt, on its page, My receipts and the JSON', async () => {
    const { first, again, payment } = await paidWithHeldOnlineMoney('oto');
    const refund = await deliverDummy(app, dummyRefundEvent(payment.externalPaymentId, `oto_part_${payment.id}`, 20));
    expect(refund.status, refund.text).toBe(200);
    const researcher = await signIn('oto');
    // It still said the receipt "stays paid from it", all 0.50 THB, though 0.20 THB of it was theirs again.
    const said =
      `A payment of 0.50 THB for this receipt is held for review by the billing team; its money paid receipt ` +
      `#${again} since (marked paid with the money of this receipt); 0.20 THB of it went back to you since, so ` +
      `0.30 THB of it still pays receipt #${again}, which stays paid for now: the billing team will be in touch ` +
      'about the 0.20 THB it is short.';
    const page = (await researcher.get(`/me/receipts/${first}`).set('Accept', 'text/html').expect(200)).text;
    expect(noticeOf(page, 'payment-held')).toBe(said);
    expect(page).toContain(`its money paid receipt <a href="/me/receipts/${again}">#${again}</a>`);
    const printed = (await researcher.get(`/me/receipts/${first}/print`).set('Accept', 'text/html').expect(200)).text;
    expect(visibleTextOf(/id="payment-held">([\s\S]*?)<\/p>/.exec(printed)?.[1] ?? '')).toBe(said);
    const list = (await researcher.get('/me/receipts').set('Accept', 'text/html').expect(200)).text;
    expect(list).toContain(
      `payment held for review; its money paid receipt <a href="/me/receipts/${again}">#${again}</a>; 0.20 THB of ` +
        'it went back to you, 0.30 THB still pays it</span>',
    );
    // The JSON has it as fields beside the sentence, not only in it.
    const heldJson = {
      paymentId: payment.id,
      receiptId: first,
      status: 'needs_review',
      state: 'money_paid_receipt',
      amount: '0.50',
      currency: 'THB',
      refunded: { amount: '0.20', currency: 'THB' },
      moneyPaidReceipt: { id: again, status: 'paid', url: `/me/receipts/${again}`, stillApplied: '0.30' },
      message: said,
    };
    const json = (await researcher.get(`/me/receipts/${first}`).set('Accept', 'application/json').expect(200)).body;
    expect(json.receipt.heldPayment).toEqual(heldJson);
    const listed = (await researcher.get('/me/receipts').set('Accept', 'application/json').expect(200)).body;
    expect(listed.receipts.find((row: { id: number }) => row.id === first).heldPayment).toEqual(heldJson);

    // The rest goes back too: none of it pays that receipt any more, which stays paid for now.
    const rest = await deliverDummy(app, dummyRefundEvent(payment.externalPaymentId, `oto_rest_${payment.id}`, 50));
    expect(rest.status, rest.text).toBe(200);
    const after = (await researcher.get(`/me/receipts/${first}`).set('Accept', 'application/json').expect(200)).body;
    expect(after.receipt.heldPayment).toMatchObject({
      refunded: { amount: '0.50', currency: 'THB' },
      moneyPaidReceipt: { id: again, status: 'paid', stillApplied: '0.00' },
      message:
        `A payment of 0.50 THB for this receipt is held for review by the billing team; its money paid receipt ` +
        `#${again} since (marked paid with the money of this receipt); all of it went back to you since, so none ` +
        `of it pays receipt #${again} any more, though that receipt stays paid for now: the billing team will be in ` +
        'touch about it.',
    });
    expect((await researcher.get('/me/receipts').set('Accept', 'text/html').expect(200)).text).toContain(
      `its money paid receipt <a href="/me/receipts/${again}">#${again}</a>; all of it went back to you</span>`,
    );
  });
});

describe("the researcher's JSON of a held payment", () => {
  it('names its status, what the sentence says, and what went back, for its own receipt and one billing its jobs', async () => {
    await buildJobs(db, [{ user: 'pia', end: '2025-09-01T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const researcher = await signIn('pia');
    const first = await billEverything(researcher);
    const payment = await payOnline(researcher, first);
    const admin = await signIn('finance');
    expect((await post(admin, `/admin/receipts/${first}/void`, { reason: 'billed at the wrong tier' })).status).toBe(
      200,
    );
    const again = await billEverything(researcher);
    const held = (await researcher.get(`/me/receipts/${first}`).set('Accept', 'application/json').expect(200)).body;
    expect(held.receipt.heldPayment).toEqual({
      paymentId: payment.id,
      receiptId: first,
      status: 'needs_review',
      state: 'being_checked',
      amount: '0.50',
      currency: 'THB',
      refunded: null,
      moneyPaidReceipt: null,
      message: expect.stringContaining('is being checked by the billing team'),
    });
    // Refunded in part, held still: what went back is a field, not only the Refunds list.
    const refund = await deliverDummy(app, dummyRefundEvent(payment.externalPaymentId, `pia_part_${payment.id}`, 10));
    expect(refund.status, refund.text).toBe(200);
    const list = (await researcher.get('/me/receipts').set('Accept', 'application/json').expect(200)).body;
    const row = (id: number) => list.receipts.find((receipt: { id: number }) => receipt.id === id);
    expect(row(first).heldPayment).toMatchObject({
      state: 'being_checked',
      refunded: { amount: '0.10', currency: 'THB' },
      moneyPaidReceipt: null,
    });
    // The receipt billing its jobs again is told of that payment as another receipt's.
    expect(row(again).heldPayment).toMatchObject({
      paymentId: payment.id,
      receiptId: first,
      status: 'needs_review',
      state: 'held_for_same_jobs',
      refunded: { amount: '0.10', currency: 'THB' },
      moneyPaidReceipt: null,
    });
  });
});
