import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amountDueOf, buildJobs, buildTiers } from '../support/billing-factories.js';
import { DUMMY_PAYMENTS_ENV } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { refusedFormStateOf, visibleTextOf } from '../support/html.js';
import { createPaidCsvStory } from '../support/paid-csv-story.js';
import { csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { createVoidedMoneyStory } from '../support/voided-money-story.js';

// A finance admin voided a receipt paid by hand (billed at the wrong tier, mu: 0.50 THB) and billed its
// jobs again at gov (0.80 THB). The voided receipt's money is 0.30 THB short, so a mark paid with it alone
// is refused; the advice was to collect the rest and mark the receipt paid as new money with the whole
// 0.80 THB, and paid.csv then counted the 0.50 THB twice over the period (on the voided receipt's line
// and again on the new one). The mark paid now takes the voided receipt's money plus the new money
// received for the rest, and the new receipt's line carries only that new money.
let db: TestDatabase;
const clock = new Date('2025-09-05T03:00:00Z');
let app: ReturnType<typeof buildTestApp>;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  for (const username of ['alice', 'bob', 'carol', 'dave', 'erin', 'fay', 'gil', 'hal', 'ida', 'jan', 'kim']) {
    await buildUser(db.prisma, { username, password: `${username}-password` });
  }
  await buildUser(db.prisma, { username: 'finance', role: 'admin', password: 'finance-password' });
  app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok', ...DUMMY_PAYMENTS_ENV }, now: () => clock });
});
afterAll(() => db?.drop());

const signIn = (username: string) => signInAs(app, username, `${username}-password`);
const { billEverything, payOnline, paidCsv } = createPaidCsvStory(() => db);
const { putOn, post, billedAgainAfterHandPaidVoid } = createVoidedMoneyStory(() => db, signIn);
const september = 'start=2025-09-01&end=2025-09-30';

async function expectStillPending(receiptId: number) {
  expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
    status: 'pending',
    paidAt: null,
    paidWithReceiptId: null,
    newMoneyReceived: null,
    txRef: null,
  });
  expect(
    await db.prisma.auditLog.count({ where: { action: 'receipt.mark_paid', target: `receipt:${receiptId}` } }),
  ).toBe(0);
}

/** The sum of a file's amount_received, in minor units (THB has two decimals). */
function receivedSum(rows: Record<string, string | undefined>[]) {
  return rows.reduce((sum, row) => sum + Math.round(Number(row.amount_received || '0') * 100), 0);
}

describe("marking a receipt paid with a voided receipt's money plus new money for the rest", () => {
  it('records both parts, and paid.csv counts each payment once', async () => {
    const { admin, first, again } = await billedAgainAfterHandPaidVoid('alice', 'mu', 'gov');
    // The page offers that money, with the new money received now for the rest.
    const page = (await admin.get(`/admin/receipts/${again}`).set('Accept', 'text/html').expect(200)).text;
    expect(page).toContain(`<option value="${first}">receipt #${first}, voided (paid by hand)</option>`);
    expect(page).toContain('name="new_money"');
    const notice = visibleTextOf(/id="same-jobs-voided-paid-by-hand">([\s\S]*?)<\/div>/.exec(page)?.[1] ?? '');
    expect(notice).toContain(
      "Its money is 0.30 THB short of this receipt's total, 0.80 THB, so it cannot pay it alone: once the " +
        `remaining 0.30 THB has arrived, mark this receipt paid with it (Paid with the money of: receipt #${first}) ` +
        'and 0.30 THB as New money received now, with the reference of that payment.',
    );
    expect(notice).not.toContain('as new money with the whole');

    const marked = await post(admin, `/admin/receipts/${again}/paid`, {
      method: 'bank_transfer',
      amount_received: '0.80',
      paid_with_receipt: String(first),
      new_money: '0.30',
      tx_ref: 'BT-TOPUP',
    });
    expect(marked.status, marked.text).toBe(200);
    expect(marked.body.receipt).toMatchObject({
      status: 'paid',
      paidWithReceiptId: first,
      paidWithReceiptMoney: '0.50',
      newMoney: '0.30',
      txRef: 'BT-TOPUP',
      amountReceived: '0.80',
    });
    expect(marked.body.message).toBe(
      `Receipt #${again} marked paid on 2025-09-05 (bank transfer), 0.80 THB: 0.50 THB the money of receipt #${first}, ` +
        'voided, and 0.30 THB new money received (ref BT-TOPUP); paid.csv counts only the new 0.30 THB on this ' +
        `receipt's line, the rest on receipt #${first}'s.`,
    );

    const stored = await db.prisma.receipt.findUniqueOrThrow({ where: { id: again } });
    expect(stored).toMatchObject({ status: 'paid', paidWithReceiptId: first, txRef: 'BT-TOPUP' });
    expect(stored.newMoneyReceived?.toFixed(2)).toBe('0.30');
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'receipt.mark_paid', target: `receipt:${again}` },
    });
    expect(audit.details).toMatchObject({
      total: '0.80',
      currency: 'THB',
      paidWithReceipt: { receiptId: first, paymentId: null, money: '0.50' },
      newMoney: '0.30',
      txRef: 'BT-TOPUP',
    });

    // The receipt's JSON and page say which part was which.
    const json = await admin.get(`/admin/receipts/${again}`).set('Accept', 'application/json').expect(200);
    expect(json.body.receipt.paidWithReceipt).toEqual({
      id: first,
      url: `/admin/receipts/${first}`,
      money: '0.50',
      newMoney: '0.30',
    });
    const shown = visibleTextOf((await admin.get(`/admin/receipts/${again}`).set('Accept', 'text/html')).text);
    expect(shown).toContain(
      `bank transfer · with the money of receipt #${first} (voided), 0.50 THB, and 0.30 THB new money, ref BT-TOPUP`,
    );

    // As the researcher's page, JSON and printable receipt do, with the admin's figures.
    const researcher = await signIn('alice');
    expect(visibleTextOf((await researcher.get(`/me/receipts/${again}`).set('Accept', 'text/html')).text)).toContain(
      `with the money of receipt #${first} (voided), 0.50 THB, and 0.30 THB new money, ref BT-TOPUP`,
    );
    const own = await researcher.get(`/me/receipts/${again}`).set('Accept', 'application/json').expect(200);
    expect(own.body.receipt).toMatchObject({
      total: '0.80',
      txRef: 'BT-TOPUP',
      paidWithReceipt: { id: first, url: `/me/receipts/${first}`, money: '0.50', newMoney: '0.30' },
    });
    const ownPrinted = await researcher.get(`/me/receipts/${again}/print`).set('Accept', 'text/html');
    expect(visibleTextOf(ownPrinted.text)).toContain(
      `with the money of receipt #${first} (voided), 0.50 THB, and 0.30 THB new money, ref BT-TOPUP`,
    );
    const printed = await admin.get(`/admin/receipts/${again}/print`).set('Accept', 'text/html');
    expect(printed.status).toBe(200);
    expect(visibleTextOf(printed.text)).toContain('0.50 THB, and 0.30 THB new money, ref BT-TOPUP');

    const { rows } = await paidCsv(admin, september);
    const lines = rows.filter((row) => [String(first), String(again)].includes(row.receipt_id ?? ''));
    expect(lines).toEqual([
      expect.objectContaining({ receipt_id: String(first), amount_received: '0.50', tx_ref: 'BT-alice' }),
      expect.objectContaining({
        receipt_id: String(again),
        tx_ref: `receipt #${first} + BT-TOPUP`,
        total: '0.80',
        amount_received: '0.30',
        received_currency: 'THB',
        voided_at: '',
      }),
    ]);
    // 0.50 THB and 0.30 THB came in, once each: the new receipt's 0.80 THB.
    expect(receivedSum(lines)).toBe(80);
  });

  it('refuses parts that do not add up to the total, or are given wrong, and changes nothing', async () => {
    const { admin, first, again } = await billedAgainAfterHandPaidVoid('bob', 'mu', 'gov');
    const base = { method: 'bank_transfer', amount_received: '0.80', paid_with_receipt: String(first) };

    const short = await post(admin, `/admin/receipts/${again}/paid`, { ...base, new_money: '0.20', tx_ref: 'BT-1' });
    expect(short.status, short.text).toBe(422);
    expect(short.body).toMatchObject({
      error:
        `The money of receipt #${first}, 0.50 THB, and the new money received, 0.20 THB, add up to 0.70 THB, 0.10 THB ` +
        `short of the total of receipt #${again}, 0.80 THB; nothing was changed. A receipt is paid in full or not at ` +
        'all: the new money must be the remaining 0.30 THB.',
      field: 'new_money',
      money: '0.50',
      newMoney: '0.20',
      total: '0.80',
      currency: 'THB',
    });
    const over = await post(admin, `/admin/receipts/${again}/paid`, { ...base, new_money: '0.40', tx_ref: 'BT-1' });
    expect(over.status, over.text).toBe(422);
    expect(over.body.error).toContain('add up to 0.90 THB, 0.10 THB more than the total');

    // Without the reference of the new money, its line in paid.csv would match no bank statement line.
    const noRef = await post(admin, `/admin/receipts/${again}/paid`, { ...base, new_money: '0.30' });
    expect(noRef.status, noRef.text).toBe(400);
    expect(noRef.body.error).toContain('tx_ref: is required with new money received now');
    // New money alone is the amount received: the field belongs to a voided receipt's money.
    const alone = await post(admin, `/admin/receipts/${again}/paid`, {
      method: 'bank_transfer',
      amount_received: '0.80',
      new_money: '0.30',
      tx_ref: 'BT-1',
    });
    expect(alone.status, alone.text).toBe(400);
    expect(alone.body.error).toContain('new_money: only with the money of a voided receipt');
    for (const bad of ['0.305', '-0.30', 'abc', '0']) {
      const refused = await post(admin, `/admin/receipts/${again}/paid`, { ...base, new_money: bad, tx_ref: 'BT-1' });
      expect(refused.status, `${bad}: ${refused.text}`).toBe(400);
      expect(refused.body.error).toContain('new_money');
    }
    // Without new money, the short money is refused as before, now pointing to the new money field.
    const without = await post(admin, `/admin/receipts/${again}/paid`, base);
    expect(without.status, without.text).toBe(422);
    expect(without.body.error).toContain(
      `Once the remaining 0.30 THB has arrived, mark receipt #${again} paid with the money of receipt #${first} and ` +
        '0.30 THB as new money received now, with the reference of that payment.',
    );
    await expectStillPending(again);
    // The voided receipt's money was spent nowhere: it still pays the receipt when the parts add up.
    const marked = await post(admin, `/admin/receipts/${again}/paid`, { ...base, new_money: '0.30', tx_ref: 'BT-2' });
    expect(marked.status, marked.text).toBe(200);
  });

  // The admin typed the voided receipt's money as the amount received: refused as short of the total, the
  // advice was to collect the rest and mark the receipt paid with the whole total, which said nothing of
  // New money received now, the field that takes the rest beside that money.
  it("names New money received now when the amount received typed is only the voided receipt's money", async () => {
    const { admin, first, again } = await billedAgainAfterHandPaidVoid('hal', 'mu', 'gov');
    const refused = await post(admin, `/admin/receipts/${again}/paid`, {
      method: 'bank_transfer',
      amount_received: '0.50',
      paid_with_receipt: String(first),
    });
    expect(refused.status, refused.text).toBe(422);
    expect(refused.body).toMatchObject({ field: 'amount_received', amountReceived: '0.50', total: '0.80' });
    expect(refused.body.error).toBe(
      `The amount received, 0.50 THB, is 0.30 THB short of the total of receipt #${again}, 0.80 THB; nothing was ` +
        `changed. Amount received is the whole total even when the money of receipt #${first}, 0.50 THB, pays part ` +
        `of it: once the remaining 0.30 THB has arrived, mark it paid with 0.80 THB as Amount received, receipt ` +
        `#${first} as Paid with the money of, and 0.30 THB as New money received now (new_money), with the ` +
        'reference of that payment. If the total itself is wrong (a wrong tier or rate), void the receipt so that ' +
        'its jobs are billed again.',
    );
    expect(refused.body.error).not.toContain('Collect the remaining');
    await expectStillPending(again);
    // The same from the receipt page's form.
    const form = await admin
      .post(`/admin/receipts/${again}/paid`)
      .type('form')
      .set('Accept', 'text/html')
      .send({
        method: 'bank_transfer',
        amount_received: '0.50',
        paid_with_receipt: String(first),
        new_money: '',
        tx_ref: '',
        paid_on: '',
        csrf_token: await csrfTokenOf(admin),
      });
    expect(form.status).toBe(422);
    const shown = visibleTextOf(form.text);
    expect(shown).toContain('Not marked paid. The amount received, 0.50 THB, is 0.30 THB short of the total');
    expect(shown).toContain('and 0.30 THB as New money received now (new_money), with the reference of that payment.');
    expect(shown).not.toContain('Collect the remaining');
    await expectStillPending(again);
    // Done as it says, the receipt is paid.
    const marked = await post(admin, `/admin/receipts/${again}/paid`, {
      method: 'bank_transfer',
      amount_received: '0.80',
      paid_with_receipt: String(first),
      new_money: '0.30',
      tx_ref: 'BT-HAL',
    });
    expect(marked.status, marked.text).toBe(200);
  });

  it('says Amount received is the whole total when the new money alone was typed as it, with new money', async () => {
    const { admin, first, again } = await billedAgainAfterHandPaidVoid('ida', 'mu', 'gov');
    const refused = await post(admin, `/admin/receipts/${again}/paid`, {
      method: 'bank_transfer',
      amount_received: '0.30',
      paid_with_receipt: String(first),
      new_money: '0.30',
      tx_ref: 'BT-IDA',
    });
    expect(refused.status, refused.text).toBe(422);
    expect(refused.body.error).toContain(
      `is 0.50 THB short of the total of receipt #${again}, 0.80 THB; nothing was changed. Amount received is the ` +
        `whole total even when the money of receipt #${first}, 0.50 THB, pays part of it: once the remaining 0.30 ` +
        'THB has arrived, mark it paid with 0.80 THB as Amount received',
    );
    await expectStillPending(again);
  });

  it('says Amount received is the total when the voided money is all of it, typed short', async () => {
    // Billed again at the same tier: that money is the whole total, and no new money is needed.
    const { admin, first, again } = await billedAgainAfterHandPaidVoid('jan', 'mu', 'mu');
    const refused = await post(admin, `/admin/receipts/${again}/paid`, {
      method: 'bank_transfer',
      amount_received: '0.05',
      paid_with_receipt: String(first),
    });
    expect(refused.status, refused.text).toBe(422);
    expect(refused.body.error).toContain(
      `nothing was changed. Amount received is the whole total, 0.50 THB, even when the money of receipt #${first} ` +
        'pays part or all of it: type the total there, and any part of it that arrives now besides that money as ' +
        'New money received now (new_money), with the reference of that payment.',
    );
    await expectStillPending(again);
  });

  it('takes both parts from the receipt page, which keeps what was typed when they do not add up', async () => {
    const { admin, first, again } = await billedAgainAfterHandPaidVoid('fay', 'mu', 'gov');
    const form = {
      method: 'bank_transfer',
      amount_received: '0.80',
      paid_with_receipt: String(first),
      tx_ref: 'BT-FAY',
      paid_on: '',
    };
    const refused = await admin
      .post(`/admin/receipts/${again}/paid`)
      .type('form')
      .set('Accept', 'text/html')
      .send({ ...form, new_money: '0.25', csrf_token: await csrfTokenOf(admin) });
    expect(refused.status).toBe(422);
    expect(visibleTextOf(refused.text)).toContain(
      `Not marked paid. The money of receipt #${first}, 0.50 THB, and the new money received, 0.25 THB, add up to 0.75 THB`,
    );
    expect(refused.text).toMatch(/<input id="new_money" name="new_money"[^>]*value="0.25"[^>]*aria-invalid="true"/);
    // The field refused is described by the refusal, then by its hint: its hint's aria-describedby came first in
    // the tag and the refusal's second, and a browser keeps the first of two, so a screen reader on the field read
    // the hint and never why it was refused.
    const newMoney = /<input id="new_money"[^>]*>/.exec(refused.text)?.[0] ?? '';
    expect(newMoney.match(/aria-describedby=/g)).toHaveLength(1);
    expect(refusedFormStateOf(refused.text).describedBy.new_money).toBe('receipt-action-error new_money-hint');
    await expectStillPending(again);
    const marked = await admin
      .post(`/admin/receipts/${again}/paid`)
      .type('form')
      .send({ ...form, new_money: '0.30', csrf_token: await csrfTokenOf(admin) });
    expect(marked.status, marked.text.slice(0, 300)).toBe(303);
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: again } })).toMatchObject({
      status: 'paid',
      paidWithReceiptId: first,
      txRef: 'BT-FAY',
    });
  });

  it('keeps refusing money more than the total, new money or not', async () => {
    const { admin, first, again } = await billedAgainAfterHandPaidVoid('carol', 'private', 'mu');
    const marked = await post(admin, `/admin/receipts/${again}/paid`, {
      method: 'bank_transfer',
      amount_received: '0.50',
      paid_with_receipt: String(first),
      new_money: '0.10',
      tx_ref: 'BT-1',
    });
    expect(marked.status, marked.text).toBe(422);
    expect(marked.body.error).toContain(
      `The money of receipt #${first}, 1.50 THB, is 1.00 THB more than the total of receipt #${again}, 0.50 THB`,
    );
    await expectStillPending(again);
  });

  it('tops up the money of a payment online, and passes the whole on when billed a third time', async () => {
    await buildJobs(db, [{ user: 'dave', end: '2025-09-01T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const dave = await signIn('dave');
    const first = await billEverything(dave);
    const payment = await payOnline(dave, first);
    const admin = await signIn('finance');
    expect((await post(admin, `/admin/receipts/${first}/void`, { reason: 'billed at the wrong tier' })).status).toBe(
      200,
    );
    await putOn('dave', 'gov');
    const again = await billEverything(dave);
    const marked = await post(admin, `/admin/receipts/${again}/paid`, {
      method: 'bank_transfer',
      amount_received: '0.80',
      paid_with_receipt: String(first),
      new_money: '0.30',
      tx_ref: 'BT-DAVE',
    });
    expect(marked.status, marked.text).toBe(200);
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'receipt.mark_paid', target: `receipt:${again}` },
    });
    expect(audit.details).toMatchObject({
      paidWithReceipt: { receiptId: first, paymentId: payment.id, money: '0.50' },
      newMoney: '0.30',
    });
    // Voided in turn and billed a third time at the same tier: its money is the 0.50 THB and the 0.30 THB.
    expect((await post(admin, `/admin/receipts/${again}/void`, { reason: 'wrong project' })).status).toBe(200);
    const third = await billEverything(dave);
    const thirdPaid = await post(admin, `/admin/receipts/${third}/paid`, {
      method: 'internal_transfer',
      amount_received: '0.80',
      paid_with_receipt: String(again),
    });
    expect(thirdPaid.status, thirdPaid.text).toBe(200);
    // Its money came in on two lines of paid.csv (the payment online on the first receipt's, the new money
    // on the second's); the answer said "on receipt #<second>'s line", which carries only the 0.30 THB.
    expect(thirdPaid.body.message).toBe(
      `Receipt #${third} marked paid on 2025-09-05 (internal transfer), 0.80 THB paid with the money of receipt ` +
        `#${again}, voided: no new money, so paid.csv counts that money once, where it came in: on the lines of ` +
        `receipts #${first} and #${again}.`,
    );
    const { rows } = await paidCsv(admin, september);
    const lines = rows.filter((row) => [first, again, third].map(String).includes(row.receipt_id ?? ''));
    expect(lines.map((row) => [row.receipt_id, row.amount_received, row.tx_ref])).toEqual([
      [String(first), '0.50', payment.externalPaymentId],
      [String(again), '0.30', `receipt #${first} + BT-DAVE`],
      [String(third), '0.00', `receipt #${again}`],
    ]);
    expect(receivedSum(lines)).toBe(80);
  });

  it('names every line the money came in on when a topped-up receipt is voided and its money tops up another', async () => {
    const { admin, researcher, first, again } = await billedAgainAfterHandPaidVoid('kim', 'mu', 'gov');
    const topUp = { method: 'bank_transfer', amount_received: '0.80', paid_with_receipt: String(first) };
    expect(
      (await post(admin, `/admin/receipts/${again}/paid`, { ...topUp, new_money: '0.30', tx_ref: 'BT-K2' })).status,
    ).toBe(200);
    expect((await post(admin, `/admin/receipts/${again}/void`, { reason: 'billed at the wrong tier' })).status).toBe(
      200,
    );
    await putOn('kim', 'private');
    const third = await billEverything(researcher);
    const marked = await post(admin, `/admin/receipts/${third}/paid`, {
      method: 'bank_transfer',
      amount_received: '1.50',
      paid_with_receipt: String(again),
      new_money: '0.70',
      tx_ref: 'BT-K3',
    });
    expect(marked.status, marked.text).toBe(200);
    expect(marked.body.message).toBe(
      `Receipt #${third} marked paid on 2025-09-05 (bank transfer), 1.50 THB: 0.80 THB the money of receipt #${again}, ` +
        'voided, and 0.70 THB new money received (ref BT-K3); paid.csv counts only the new 0.70 THB on this ' +
        `receipt's line, the rest on the lines of receipts #${first} and #${again}.`,
    );
    const { rows } = await paidCsv(admin, september);
    const lines = rows.filter((row) => [first, again, third].map(String).includes(row.receipt_id ?? ''));
    expect(lines.map((row) => [row.receipt_id, row.amount_received])).toEqual([
      [String(first), '0.50'],
      [String(again), '0.30'],
      [String(third), '0.70'],
    ]);
  });

  it('lets the same money top up only one of two receipts billing its jobs again, marked at once', async () => {
    // Two jobs on one receipt at mu (1.00 THB), paid by hand and voided; billed again at private on two
    // receipts (1.50 THB each, the first job's and the second's), each marked paid with that money at once.
    await buildJobs(db, [
      { user: 'gil', end: '2025-09-01T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' },
      { user: 'gil', end: '2025-09-03T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' },
    ]);
    await putOn('gil', 'mu');
    const gil = await signIn('gil');
    const first = await billEverything(gil);
    const admin = await signIn('finance');
    const paid = await post(admin, `/admin/receipts/${first}/paid`, {
      method: 'bank_transfer',
      amount_received: '1.00',
      tx_ref: 'BT-gil',
    });
    expect(paid.status, paid.text).toBe(200);
    expect((await post(admin, `/admin/receipts/${first}/void`, { reason: 'billed at the wrong tier' })).status).toBe(
      200,
    );
    await putOn('gil', 'private');
    const billBefore = async (before: string) => {
      const created = await gil
        .post('/me/receipt')
        .type('form')
        .send({ before, csrf_token: await csrfTokenOf(gil, '/me') });
      expect(created.status, created.text.slice(0, 200)).toBe(303);
      return Number(/^\/me\/receipts\/(\d+)#receipt$/.exec(created.headers.location ?? '')?.[1]);
    };
    const receipts = [await billBefore('2025-09-02'), await billBefore('2025-09-04')];
    for (const receipt of receipts) expect(await amountDueOf(db, receipt)).toBe('1.50');
    const answers = await Promise.all(
      receipts.map((receipt) =>
        post(admin, `/admin/receipts/${receipt}/paid`, {
          method: 'bank_transfer',
          amount_received: '1.50',
          paid_with_receipt: String(first),
          new_money: '0.50',
          tx_ref: `BT-gil-${receipt}`,
        }),
      ),
    );
    expect(answers.map((answer) => answer.status).sort()).toEqual([200, 409]);
    const refused = answers.find((answer) => answer.status === 409);
    expect(refused?.body.error).toMatch(new RegExp(`^The money of receipt #${first} already paid receipt #\\d+`));
    const stored = await db.prisma.receipt.findMany({ where: { id: { in: receipts } }, orderBy: { id: 'asc' } });
    expect(stored.map((receipt) => receipt.status).sort()).toEqual(['paid', 'pending']);
    const pending = stored.find((receipt) => receipt.status === 'pending');
    expect(pending).toMatchObject({ paidWithReceiptId: null, newMoneyReceived: null, txRef: null });
  });

  it('lets only one of two top-ups of the receipt at once through, recorded once', async () => {
    const { admin, first, again } = await billedAgainAfterHandPaidVoid('erin', 'mu', 'gov');
    const body = {
      method: 'bank_transfer',
      amount_received: '0.80',
      paid_with_receipt: String(first),
      new_money: '0.30',
      tx_ref: 'BT-ERIN',
    };
    const answers = await Promise.all([
      post(admin, `/admin/receipts/${again}/paid`, body),
      post(admin, `/admin/receipts/${again}/paid`, body),
    ]);
    expect(answers.map((answer) => answer.status).sort()).toEqual([200, 409]);
    expect(await db.prisma.auditLog.count({ where: { action: 'receipt.mark_paid', target: `receipt:${again}` } })).toBe(
      1,
    );
  });
});
