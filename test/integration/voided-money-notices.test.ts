import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { DUMMY_PAYMENTS_ENV, deliverDummy } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { createPaidCsvStory } from '../support/paid-csv-story.js';
import { signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { createVoidedMoneyStory } from '../support/voided-money-story.js';

// What the pages say of the money of a voided receipt that billed some of a receipt's jobs, after a
// finance review: the printable receipt judged that money otherwise than the page, the researcher was
// told it "may pay" a receipt it could not pay alone, and a voided receipt topped up with new money was
// described as paid by hand in full with the new reference.
let db: TestDatabase;
const clock = new Date('2025-09-05T03:00:00Z');
let app: ReturnType<typeof buildTestApp>;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  for (const username of ['alice', 'bob', 'carol', 'dave', 'erin']) {
    await buildUser(db.prisma, { username, password: `${username}-password` });
  }
  await buildUser(db.prisma, { username: 'finance', role: 'admin', password: 'finance-password' });
  app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok', ...DUMMY_PAYMENTS_ENV }, now: () => clock });
});
afterAll(() => db?.drop());

const signIn = (username: string) => signInAs(app, username, `${username}-password`);
const { billEverything, payOnline } = createPaidCsvStory(() => db);
const { putOn, post, billedAgainAfterHandPaidVoid } = createVoidedMoneyStory(() => db, signIn);

function noticeOf(html: string, id: string): string {
  return visibleTextOf(new RegExp(`id="${id}">([\\s\\S]*?)</div>`).exec(html)?.[1] ?? '');
}

describe('the printable receipt and the money of a voided receipt', () => {
  it('judges that money as the page does: less what went back of it', async () => {
    // 0.50 THB paid online, voided; the receipt billing the jobs again (0.80 THB) paid with it and 0.30 THB
    // new money, voided in turn; then 0.20 THB of the online payment went back: 0.60 THB is left.
    await buildJobs(db, [{ user: 'alice', end: '2025-09-01T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const alice = await signIn('alice');
    const first = await billEverything(alice);
    const payment = await payOnline(alice, first);
    const admin = await signIn('finance');
    expect((await post(admin, `/admin/receipts/${first}/void`, { reason: 'billed at the wrong tier' })).status).toBe(
      200,
    );
    await putOn('alice', 'gov');
    const second = await billEverything(alice);
    const marked = await post(admin, `/admin/receipts/${second}/paid`, {
      method: 'bank_transfer',
      amount_received: '0.80',
      paid_with_receipt: String(first),
      new_money: '0.30',
      tx_ref: 'BT-ALICE',
    });
    expect(marked.status, marked.text).toBe(200);
    expect((await post(admin, `/admin/receipts/${second}/void`, { reason: 'wrong project' })).status).toBe(200);
    const refund = await deliverDummy(app, {
      event_id: `alice_refund_${payment.id}`,
      event_type: 'payment.refunded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 20,
      currency: 'THB',
    });
    expect(refund.status, refund.text).toBe(200);
    const third = await billEverything(alice);

    const page = (await admin.get(`/admin/receipts/${third}`).set('Accept', 'text/html').expect(200)).text;
    const shown = noticeOf(page, 'same-jobs-voided-paid-by-hand');
    expect(shown).toContain(
      "Its money is 0.20 THB short of this receipt's total, 0.80 THB, so it cannot pay it alone: once the remaining " +
        `0.20 THB has arrived, mark this receipt paid with it (Paid with the money of: receipt #${second})`,
    );
    const printed = await admin.get(`/admin/receipts/${third}/print`).set('Accept', 'text/html');
    expect(printed.status).toBe(200);
    // The printout says what the page says, in the same words: before, it read 0.80 THB, the whole money
    // paid, as this receipt's total, and said it may pay this receipt.
    expect(noticeOf(printed.text, 'same-jobs-voided-paid-by-hand')).toBe(shown);
  });
});

describe("the researcher's notice of the money of a voided receipt", () => {
  it('says how much of this receipt that money covers when it cannot pay it alone', async () => {
    // Paid 0.50 THB by hand at mu, voided, billed again at gov: 0.80 THB.
    const { researcher, first, again } = await billedAgainAfterHandPaidVoid('bob', 'mu', 'gov');
    const expected =
      `Receipt #${first}, which billed some of these jobs, was voided after it was paid by hand: 0.50 THB by bank ` +
      "transfer, ref BT-bob, on 2025-09-05. Its money covers 0.50 THB of this receipt's total, 0.80 THB, " +
      'so it cannot pay it alone: unless that money was returned to you, your billing office will ask you for the ' +
      'remaining 0.30 THB, not for the whole total. Ask your billing office before you pay for these jobs again.';
    const page = (await researcher.get(`/me/receipts/${again}`).set('Accept', 'text/html').expect(200)).text;
    // Before: "Unless that money was returned to you, it may pay for this receipt", which it cannot.
    expect(noticeOf(page, 'same-jobs-voided-paid-by-hand')).toBe(expected);
    const printed = await researcher.get(`/me/receipts/${again}/print`).set('Accept', 'text/html').expect(200);
    expect(noticeOf(printed.text, 'same-jobs-voided-paid-by-hand')).toBe(expected);
    // My receipts marks the row in the same sense: it said that money "may pay for this receipt".
    const list = visibleTextOf((await researcher.get('/me/receipts').set('Accept', 'text/html').expect(200)).text);
    expect(list).toContain(
      `money paid by hand on receipt #${first}, voided since, is not this receipt's total: ask your billing office ` +
        'what is left to pay before you pay for these jobs again',
    );
    expect(list).not.toContain('may pay for this receipt');
  });

  it('says the excess goes back when that money is more than this receipt', async () => {
    // Paid 1.50 THB by hand at private, voided, billed again at mu: 0.50 THB.
    const { researcher, first, again } = await billedAgainAfterHandPaidVoid('carol', 'private', 'mu');
    const page = (await researcher.get(`/me/receipts/${again}`).set('Accept', 'text/html').expect(200)).text;
    expect(noticeOf(page, 'same-jobs-voided-paid-by-hand')).toBe(
      `Receipt #${first}, which billed some of these jobs, was voided after it was paid by hand: 1.50 THB by bank ` +
        "transfer, ref BT-carol, on 2025-09-05. Its money, 1.50 THB, is 1.00 THB more than this receipt's total, " +
        '0.50 THB: unless that money was returned to you, your billing office will return the excess 1.00 THB to ' +
        'you (or apply it elsewhere) and count the rest toward this receipt. Ask your billing office before you pay ' +
        'for these jobs again.',
    );
  });

  it('still says that money may pay this receipt when it is its total', async () => {
    const { researcher, first, again } = await billedAgainAfterHandPaidVoid('dave', 'mu', 'mu');
    const page = (await researcher.get(`/me/receipts/${again}`).set('Accept', 'text/html').expect(200)).text;
    expect(noticeOf(page, 'same-jobs-voided-paid-by-hand')).toBe(
      `Receipt #${first}, which billed some of these jobs, was voided after it was paid by hand: 0.50 THB by bank ` +
        'transfer, ref BT-dave, on 2025-09-05. Unless that money was returned to you, it may pay for this receipt: ' +
        'ask your billing office before you pay for these jobs again.',
    );
    const list = visibleTextOf((await researcher.get('/me/receipts').set('Accept', 'text/html').expect(200)).text);
    expect(list).toContain(
      `money paid by hand on receipt #${first}, voided since, may pay for this receipt: ask your billing office ` +
        'before you pay for these jobs again',
    );
  });
});

describe('voiding a receipt paid with the money of a voided receipt and new money', () => {
  it('names both parts wherever its payment is described', async () => {
    // 0.50 THB paid by hand at mu, voided; billed again at gov, 0.80 THB, paid with that money and 0.30 THB
    // new money (BT-ERIN-2); voided in turn and billed a third time.
    const { admin, researcher, first, again } = await billedAgainAfterHandPaidVoid('erin', 'mu', 'gov');
    const marked = await post(admin, `/admin/receipts/${again}/paid`, {
      method: 'bank_transfer',
      amount_received: '0.80',
      paid_with_receipt: String(first),
      new_money: '0.30',
      tx_ref: 'BT-ERIN-2',
    });
    expect(marked.status, marked.text).toBe(200);
    // Before: "0.80 THB by bank transfer, ref BT-ERIN-2, on 2025-09-05", as if all of it came in by BT-ERIN-2.
    const described =
      `0.80 THB, 0.50 THB of it the money of receipt #${first} (voided) and 0.30 THB new money by bank transfer, ` +
      'ref BT-ERIN-2, on 2025-09-05';
    const parts = {
      method: 'bank_transfer',
      txRef: 'BT-ERIN-2',
      paidOn: '2025-09-05',
      amount: '0.80',
      currency: 'THB',
      paidWithReceipt: { receiptId: first, money: '0.50' },
      newMoney: '0.30',
    };
    const before = (await admin.get(`/admin/receipts/${again}`).set('Accept', 'text/html').expect(200)).text;
    expect(noticeOf(before, 'paid-by-hand')).toContain(`Paid by hand: ${described}.`);
    // The void's confirmation too: it said "the 0.80 THB paid by hand is for you to return".
    expect(before).toContain(
      `can then be billed again; the money that paid it (${described.replace(/'/g, '&#39;')}) is for you to return ` +
        'or apply elsewhere. This cannot be undone."',
    );

    const voided = await post(admin, `/admin/receipts/${again}/void`, { reason: 'wrong project' });
    expect(voided.status, voided.text).toBe(200);
    expect(voided.body.message).toContain(`It was paid by hand: ${described}.`);
    expect(voided.body.receipt.paidByHand).toEqual(parts);
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'receipt.void', target: `receipt:${again}` },
    });
    expect(audit.details).toMatchObject({ paidByHand: parts });
    const page = (await admin.get(`/admin/receipts/${again}`).set('Accept', 'text/html').expect(200)).text;
    expect(noticeOf(page, 'void-paid-by-hand')).toContain(`Voided after it was paid by hand: ${described}.`);

    const third = await billEverything(researcher);
    const notice = `Receipt #${again}, which billed some of these jobs, was voided after it was paid by hand: ${described}.`;
    const thirdPage = (await admin.get(`/admin/receipts/${third}`).set('Accept', 'text/html').expect(200)).text;
    expect(noticeOf(thirdPage, 'same-jobs-voided-paid-by-hand')).toContain(notice);
    const own = (await researcher.get(`/me/receipts/${third}`).set('Accept', 'text/html').expect(200)).text;
    expect(noticeOf(own, 'same-jobs-voided-paid-by-hand')).toContain(notice);
    const json = await admin.get(`/admin/receipts/${third}`).set('Accept', 'application/json').expect(200);
    expect(json.body.receipt.sameJobsVoidedPaidByHand).toEqual([
      expect.objectContaining({ receiptId: again, paidByHand: parts }),
    ]);
  });
});
