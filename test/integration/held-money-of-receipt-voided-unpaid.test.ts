import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { DUMMY_PAYMENTS_ENV, deliverDummy } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { createPaidCsvStory } from '../support/paid-csv-story.js';
import { startCheckout } from '../support/receipt-steps.js';
import { signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { createVoidedMoneyStory } from '../support/voided-money-story.js';

// Found in the demo: a researcher opened a checkout, the receipt was voided (the checkout canceled), and the
// payment succeeded afterwards: held for review on a receipt that was never paid. Its jobs billed again, the
// new receipt's page said to mark it paid with that money (Paid with the money of: receipt #N), and offered
// receipt #N in the select, but the mark paid refuses it ("was voided before it was paid; it took no money"):
// a voided receipt's money pays another only when that receipt was paid (paid.csv counts the money on its
// line; a receipt never paid has none). The page now says how that money can pay, and does not offer it.
let db: TestDatabase;
const clock = new Date('2025-09-05T03:00:00Z');
let app: ReturnType<typeof buildTestApp>;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'rui', password: 'rui-password' });
  await buildUser(db.prisma, { username: 'finance', role: 'admin', password: 'finance-password' });
  for (const username of ['ana', 'kim', 'lou'])
    await buildUser(db.prisma, { username, password: `${username}-password` });
  app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok', ...DUMMY_PAYMENTS_ENV }, now: () => clock });
});
afterAll(() => db?.drop());

const signIn = (username: string) => signInAs(app, username, `${username}-password`);
const { billEverything } = createPaidCsvStory(() => db);
const { post } = createVoidedMoneyStory(() => db, signIn);

describe('a payment held for review on a receipt voided before it was paid, whose jobs are billed again', () => {
  it('is not offered as the money of that receipt, and the notice says how it can pay', async () => {
    await buildJobs(db, [{ user: 'rui', end: '2025-09-01T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const researcher = await signIn('rui');
    const first = await billEverything(researcher);
    const checkout = await startCheckout(researcher, first);
    const externalId = decodeURIComponent(checkout.split('/').pop() ?? '');
    const admin = await signIn('finance');
    expect((await post(admin, `/admin/receipts/${first}/void`, { reason: 'wrong project' })).status).toBe(200);
    const late = await deliverDummy(app, {
      event_id: 'late-success',
      event_type: 'payment.succeeded',
      external_payment_id: externalId,
      amount_cents: 50,
      currency: 'THB',
    });
    expect(late.status, late.text).toBe(200);
    const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId: first } });
    expect(payment.status).toBe('needs_review');
    const again = await billEverything(researcher);

    const page = (await admin.get(`/admin/receipts/${again}`).set('Accept', 'text/html').expect(200)).text;
    const notice = visibleTextOf(/id="same-jobs-held">([\s\S]*?)<\/div>/.exec(page)?.[1] ?? '');
    expect(notice).toBe(
      `Payment #${payment.id} of 0.50 THB for receipt #${first}, which billed some of these jobs, is held for ` +
        `review. Receipt #${first} was voided before that money came, so it cannot be chosen as Paid with the money ` +
        `of. If that money pays for these jobs, mark this receipt paid as new money, its reference that payment's ` +
        `(${externalId}), and resolve payment #${payment.id} as dismissed on the payments page; marking it paid ` +
        'with other money bills the researcher twice for the same jobs.',
    );
    expect(page).not.toContain('id="paid_with_receipt"');
    const json = await admin.get(`/admin/receipts/${again}`).set('Accept', 'application/json').expect(200);
    expect(json.body.receipt.sameJobsHeldPayment).toMatchObject({
      paymentId: payment.id,
      receiptId: first,
      isReceiptVoidedUnpaid: true,
    });

    // As the page says: new money quoting the payment, which the mark paid takes.
    const marked = await post(admin, `/admin/receipts/${again}/paid`, {
      method: 'card',
      amount_received: '0.50',
      tx_ref: externalId,
    });
    expect(marked.status, marked.text).toBe(200);
  });
});

// A mark paid naming such a receipt (the select no longer offers it, but a form opened before, or a JSON
// client, may) was refused with "receipt #N was voided before it was paid; it took no money": untrue when a
// payment held on it took money, which is held on the payments page. The refusal now says where that money
// is and how it can pay (new money quoting that payment's provider id, then dismiss it); nothing changes.
describe('a mark paid with the money of a receipt voided before it was paid', () => {
  /** `username`'s receipt of one CPU hour (0.50 THB) with its checkout open, the admin signed in. */
  async function receiptWithCheckout(username: string) {
    await buildJobs(db, [{ user: username, end: '2025-09-01T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const researcher = await signIn(username);
    const first = await billEverything(researcher);
    const checkout = await startCheckout(researcher, first);
    const externalId = decodeURIComponent(checkout.split('/').pop() ?? '');
    return { researcher, first, externalId, admin: await signIn('finance') };
  }
  const succeeded = (externalId: string, cents: number) =>
    deliverDummy(app, {
      event_id: `success-${externalId}`,
      event_type: 'payment.succeeded',
      external_payment_id: externalId,
      amount_cents: cents,
      currency: 'THB',
    });

  /** Marks `again` paid naming `first`'s money: refused (400) with `why`, the receipt left pending. */
  async function expectRefused(admin: Awaited<ReturnType<typeof signIn>>, again: number, first: number, why: string) {
    const auditsBefore = await db.prisma.auditLog.count();
    const refused = await post(admin, `/admin/receipts/${again}/paid`, {
      method: 'bank_transfer',
      amount_received: '0.50',
      paid_with_receipt: first,
    });
    expect(refused.status, refused.text).toBe(400);
    expect(refused.body.error).toBe(`paid_with_receipt: ${why}`);
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: again } })).toMatchObject({
      status: 'pending',
      paidAt: null,
      paidWithReceiptId: null,
    });
    expect(await db.prisma.auditLog.count()).toBe(auditsBefore);
  }

  it('whose payment succeeded after the void: says that money is held, and how it can pay', async () => {
    const { researcher, first, externalId, admin } = await receiptWithCheckout('kim');
    expect((await post(admin, `/admin/receipts/${first}/void`, { reason: 'wrong project' })).status).toBe(200);
    expect((await succeeded(externalId, 50)).status).toBe(200);
    const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId: first } });
    expect(payment.status).toBe('needs_review');
    const again = await billEverything(researcher);
    await expectRefused(
      admin,
      again,
      first,
      `receipt #${first} was voided before it was paid, so it has no line in paid.csv to count money on; ` +
        `payment #${payment.id} took 0.50 THB for it and is held for review on the payments page. If that money ` +
        `pays for this receipt, mark it paid as new money, its reference that payment's (${externalId}), and ` +
        `resolve payment #${payment.id} as dismissed`,
    );
  });

  it('whose payment paid short of its total before the void: says that money is held, and how it can pay', async () => {
    const { researcher, first, externalId, admin } = await receiptWithCheckout('ana');
    expect((await succeeded(externalId, 30)).status).toBe(200);
    const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId: first } });
    expect(payment.status).toBe('needs_review');
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: first } })).toMatchObject({ status: 'pending' });
    expect((await post(admin, `/admin/receipts/${first}/void`, { reason: 'wrong project' })).status).toBe(200);
    const again = await billEverything(researcher);
    await expectRefused(
      admin,
      again,
      first,
      `receipt #${first} was voided before it was paid, so it has no line in paid.csv to count money on; ` +
        `payment #${payment.id} took 0.30 THB for it (of its 0.50 THB total) and is held for review on the ` +
        'payments page. If that money pays for this receipt, mark it paid as new money, its reference that ' +
        `payment's (${externalId}), and resolve payment #${payment.id} as dismissed`,
    );
  });

  it('whose checkout took nothing: still says it took no money', async () => {
    const { researcher, first, admin } = await receiptWithCheckout('lou');
    expect((await post(admin, `/admin/receipts/${first}/void`, { reason: 'wrong project' })).status).toBe(200);
    const again = await billEverything(researcher);
    await expectRefused(admin, again, first, `receipt #${first} was voided before it was paid; it took no money`);
  });
});
