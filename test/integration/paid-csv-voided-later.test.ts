import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amountDueOf, buildJobs, buildTiers } from '../support/billing-factories.js';
import { DUMMY_PAYMENTS_ENV } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { createPaidCsvStory } from '../support/paid-csv-story.js';
import { csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Finance reconciles September in early October. A receipt paid in September and voided in
// October (wrong project, duplicate) disappeared from September's paid.csv, so the export of a
// closed month changed after the fact and no longer matched the bank statement it was checked against.
let db: TestDatabase;
let clock = new Date('2025-09-05T03:00:00Z');
let app: ReturnType<typeof buildTestApp>;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'bob', password: 'bob-password' });
  await buildUser(db.prisma, { username: 'finance', role: 'admin', password: 'finance-password' });
  app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok', ...DUMMY_PAYMENTS_ENV }, now: () => clock });
});
afterAll(() => db?.drop());

/** Sessions end after an hour idle on the app's clock: every step of the story signs in afresh. */
const signIn = (username: string) => signInAs(app, username, `${username}-password`);
const { billEverything, paidCsv } = createPaidCsvStory(() => db);

describe('paid.csv of a month whose receipts were voided after it', () => {
  it('still lists every receipt paid in it, unchanged, and says when and why each was voided since', async () => {
    await buildJobs(db, [
      { user: 'alice', end: '2025-09-01T03:00:00Z', totalCpuSec: '7200', stepMemGbHours: '0' },
      { user: 'bob', end: '2025-09-02T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' },
    ]);
    const alice = await signIn('alice');
    const byHand = await billEverything(alice);
    const bob = await signIn('bob');
    const online = await billEverything(bob);

    // September: alice's receipt is paid by bank transfer, bob's online at the dummy checkout.
    let admin = await signIn('finance');
    await admin
      .post(`/admin/receipts/${byHand}/paid`)
      .type('form')
      .send({
        method: 'bank_transfer',
        amount_received: await amountDueOf(db, byHand),
        tx_ref: 'KBANK-905',
        csrf_token: await csrfTokenOf(admin),
      })
      .expect(303);
    const started = await bob
      .post(`/payments/receipt/${online}/start`)
      .type('form')
      .send({ csrf_token: await csrfTokenOf(bob) });
    expect(started.status, started.text.slice(0, 200)).toBe(303);
    await bob
      .post(started.headers.location as string)
      .type('form')
      .send({ choice: 'pay', csrf_token: await csrfTokenOf(bob) })
      .expect(303);
    const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId: online } });
    expect(payment.status).toBe('succeeded');

    const september = 'start=2025-09-01&end=2025-09-30';
    const reconciled = await paidCsv(admin, september);
    expect(reconciled.rows).toEqual([
      expect.objectContaining({
        receipt_id: String(byHand),
        method: 'bank_transfer',
        tx_ref: 'KBANK-905',
        total: '1.00',
        amount_received: '1.00',
        received_currency: 'THB',
        payment_id: '',
        paid_on: '2025-09-05',
        voided_at: '',
        void_reason: '',
      }),
      expect.objectContaining({
        receipt_id: String(online),
        method: 'dummy',
        total: '0.50',
        amount_received: '0.50',
        received_currency: 'THB',
        payment_id: String(payment.id),
        paid_on: '2025-09-05',
        voided_at: '',
        void_reason: '',
      }),
    ]);

    // October: both are voided (bob's payment is then held for a refund).
    clock = new Date('2025-10-07T02:00:00Z');
    admin = await signIn('finance');
    // The reason is typed text: a spreadsheet must not run it as a formula.
    const reasons = { [byHand]: 'billed to the wrong project', [online]: '@duplicate of another receipt' };
    for (const id of [byHand, online]) {
      await admin
        .post(`/admin/receipts/${id}/void`)
        .type('form')
        .send({ reason: reasons[id], csrf_token: await csrfTokenOf(admin) })
        .expect(303);
    }
    expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe('needs_review');

    // September's export keeps both lines as they were reconciled; the columns added at the end say what came later.
    const again = await paidCsv(admin, september);
    // Every column before voided_at (those after it are added later too: amount_disputed, disputed_at).
    const before = reconciled.columns.indexOf('voided_at');
    expect(again.columns.slice(0, before)).toEqual(reconciled.columns.slice(0, before));
    expect(again.rows).toHaveLength(2);
    const cut = (line: string | undefined) => (line ?? '').split(',').slice(0, before);
    expect(again.lines.map(cut)).toEqual(reconciled.lines.map(cut));
    expect(again.rows.map((row) => [row.voided_at, row.void_reason])).toEqual([
      ['2025-10-07T02:00:00.000Z', 'billed to the wrong project'],
      ['2025-10-07T02:00:00.000Z', "'@duplicate of another receipt"],
    ]);
    // The void is not a payment of October.
    expect((await paidCsv(admin, 'start=2025-10-01&end=2025-10-31')).rows).toEqual([]);
  });
});
