import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS_DIR } from '../../src/db/migrations.js';
import { findPaidBatch, type PaidLineCursor } from '../../src/modules/receipts/receipts.repository.js';
import { amountDueOf, buildJobs, buildTiers } from '../support/billing-factories.js';
import { DUMMY_PAYMENTS_ENV, deliverDummy } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { createPaidCsvStory } from '../support/paid-csv-story.js';
import { csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Finance reconciles September in early October. A receipt paid online in September whose payment
// the provider refunded in full in October went back to pending with its paid_at cleared, so it
// disappeared from September's paid.csv: the export of a closed month lost a line that the bank
// statement still has (the money did arrive in September; the refund left in October).
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
const { billEverything, payOnline, paidCsv } = createPaidCsvStory(() => db);

/** What a file's lines add up to in the docs' terms (minor units of THB, every line here is in THB). */
function sumsOf(rows: Record<string, string | undefined>[]) {
  const minor = (value: string | undefined) => (value ? BigInt(value.replace('.', '')) : 0n);
  const received = rows.reduce((sum, row) => sum + minor(row.amount_received), 0n);
  const refunded = rows.reduce((sum, row) => sum + minor(row.amount_refunded), 0n);
  return { received, refunded, stayed: received - refunded };
}

describe('paid.csv of a month whose online payment was refunded in full after it', () => {
  it('keeps the payment’s line in the month it was paid, with the refund, and a new payment is a line of its own month', async () => {
    await buildJobs(db, [
      { user: 'alice', end: '2025-09-01T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' },
      { user: 'bob', end: '2025-09-02T03:00:00Z', totalCpuSec: '7200', stepMemGbHours: '0' },
    ]);
    let alice = await signIn('alice');
    const receiptId = await billEverything(alice);
    const bob = await signIn('bob');
    const byHand = await billEverything(bob);

    // September: alice pays online at the dummy checkout, bob's receipt is paid by bank transfer.
    const first = await payOnline(alice, receiptId);
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

    const september = 'start=2025-09-01&end=2025-09-30';
    const reconciled = await paidCsv(admin, september);
    expect(reconciled.rows).toEqual([
      expect.objectContaining({
        receipt_id: String(receiptId),
        method: 'dummy',
        tx_ref: first.externalPaymentId,
        total: '0.50',
        amount_received: '0.50',
        received_currency: 'THB',
        payment_id: String(first.id),
        paid_on: '2025-09-05',
        amount_refunded: '',
        voided_at: '',
      }),
      expect.objectContaining({ receipt_id: String(byHand), method: 'bank_transfer', amount_received: '1.00' }),
    ]);
    expect(sumsOf(reconciled.rows)).toEqual({ received: 150n, refunded: 0n, stayed: 150n });

    // October: the provider refunds alice's payment in full; her receipt is to be paid again.
    clock = new Date('2025-10-07T02:00:00Z');
    const refund = await deliverDummy(app, {
      event_id: 'refund_october',
      event_type: 'payment.refunded',
      external_payment_id: first.externalPaymentId,
      amount_cents: 50,
      currency: 'THB',
    });
    expect(refund.status, refund.text).toBe(200);
    expect(refund.body).toEqual({ received: true, outcome: 'ok' });
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
      status: 'pending',
      paidAt: null,
    });

    // September keeps both lines; alice's has the same values up to paid_on and says the refund.
    admin = await signIn('finance');
    const afterRefund = await paidCsv(admin, september);
    expect(afterRefund.columns).toEqual(reconciled.columns);
    expect(afterRefund.rows).toHaveLength(2);
    const upToPaidOn = reconciled.columns.indexOf('paid_on') + 1;
    const cut = (line: string | undefined) => (line ?? '').split(',').slice(0, upToPaidOn);
    expect(afterRefund.lines.map(cut)).toEqual(reconciled.lines.map(cut));
    expect(afterRefund.rows.map((row) => [row.amount_refunded, row.voided_at, row.void_reason])).toEqual([
      ['0.50', '', ''],
      ['', '', ''],
    ]);
    // What came in during September is unchanged; what stayed of it is bob's transfer.
    expect(sumsOf(afterRefund.rows)).toEqual({ received: 150n, refunded: 50n, stayed: 100n });
    // A refund is not a payment: it puts no line in October's file.
    expect((await paidCsv(admin, 'start=2025-10-01&end=2025-10-31')).rows).toEqual([]);

    // November: alice pays the same receipt again, a new payment of November.
    clock = new Date('2025-11-10T04:00:00Z');
    alice = await signIn('alice');
    const second = await payOnline(alice, receiptId);
    expect(second.id).not.toBe(first.id);
    admin = await signIn('finance');
    const november = await paidCsv(admin, 'start=2025-11-01&end=2025-11-30');
    expect(november.rows).toEqual([
      expect.objectContaining({
        receipt_id: String(receiptId),
        paid_at: '2025-11-10T04:00:00.000Z',
        method: 'dummy',
        tx_ref: second.externalPaymentId,
        total: '0.50',
        amount_received: '0.50',
        payment_id: String(second.id),
        paid_on: '2025-11-10',
        amount_refunded: '',
        voided_at: '',
      }),
    ]);
    expect(sumsOf(november.rows)).toEqual({ received: 50n, refunded: 0n, stayed: 50n });
    // September is still as it was after the refund: paying again changed nothing there.
    expect((await paidCsv(admin, september)).lines).toEqual(afterRefund.lines);
    // Over both months, the receipt was paid once for good: what stayed is its total and bob's.
    const both = await paidCsv(admin, 'start=2025-09-01&end=2025-11-30');
    expect(both.rows.map((row) => [row.receipt_id, row.payment_id, row.paid_on])).toEqual([
      [String(receiptId), String(first.id), '2025-09-05'],
      [String(byHand), '', '2025-09-05'],
      [String(receiptId), String(second.id), '2025-11-10'],
    ]);
    expect(sumsOf(both.rows)).toEqual({ received: 200n, refunded: 50n, stayed: 150n });

    // The export reads in batches (10,000 lines): read one and two at a time, the lines and their
    // order are the same, a receipt's own line and a refunded payment's of it interleaved by paid_at.
    const window = { from: new Date('2025-08-31T17:00:00Z'), before: new Date('2025-11-30T17:00:00Z') };
    for (const limit of [1, 2]) {
      const lines: [number, number | null][] = [];
      let after: PaidLineCursor | undefined;
      for (;;) {
        const batch = await findPaidBatch(db.prisma, window, after, limit);
        lines.push(...batch.map((line): [number, number | null] => [line.id, line.paidWith?.id ?? null]));
        const last = batch.at(-1);
        if (!last || batch.length < limit) break;
        after = { paidAt: last.paidAt, receiptId: last.id, paymentId: last.refundedPaymentId ?? 0 };
      }
      expect(lines).toEqual([
        [receiptId, first.id],
        [byHand, null],
        [receiptId, second.id],
      ]);
    }

    // Payments from before payments.paid_at get it from their migration: from the receipt that
    // names them, or, refunded in full, from the audit entry that marked the receipt paid from them.
    const migration = readFileSync(
      path.join(MIGRATIONS_DIR, '20261203070000_payment_paid_at', 'migration.sql'),
      'utf8',
    );
    const backfill = migration.slice(migration.indexOf('-- Existing rows.'), migration.indexOf('-- paid.csv selects'));
    await db.pool.query('UPDATE payments SET paid_at = NULL');
    await db.pool.query(backfill);
    const paidAts = await db.prisma.payment.findMany({ select: { id: true, paidAt: true }, orderBy: { id: 'asc' } });
    expect(paidAts).toEqual([
      { id: first.id, paidAt: new Date('2025-09-05T03:00:00Z') },
      { id: second.id, paidAt: new Date('2025-11-10T04:00:00Z') },
    ]);
    expect((await paidCsv(admin, 'start=2025-09-01&end=2025-11-30')).lines).toEqual(both.lines);
  });

  it('keeps the line of a short payment an admin accepted, once the provider refunds all it received', async () => {
    clock = new Date('2025-12-03T03:00:00Z');
    await buildUser(db.prisma, { username: 'carol', password: 'carol-password' });
    await buildJobs(db, [{ user: 'carol', end: '2025-09-03T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const carol = await signIn('carol');
    const receiptId = await billEverything(carol);
    const started = await carol
      .post(`/payments/receipt/${receiptId}/start`)
      .type('form')
      .send({ csrf_token: await csrfTokenOf(carol) });
    expect(started.status, started.text.slice(0, 200)).toBe(303);
    const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId } });
    // The provider took 0.30 of the 0.50 THB due: held, and accepted by finance.
    const short = await deliverDummy(app, {
      event_id: 'short_success',
      event_type: 'payment.succeeded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 30,
      currency: 'THB',
    });
    expect(short.body).toEqual({ received: true, outcome: 'mismatch' });
    let admin = await signIn('finance');
    const accepted = await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'accepted', accept_mismatch: 'yes', note: 'The lab pays the rest by transfer.' });
    expect(accepted.status, accepted.text).toBe(200);
    // The payment keeps when it paid the receipt, as the receipt's paid_at has it.
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      paidAt: new Date('2025-12-03T03:00:00Z'),
    });
    const december = 'start=2025-12-01&end=2025-12-31';
    const reconciled = await paidCsv(admin, december);
    expect(reconciled.rows).toEqual([
      expect.objectContaining({
        receipt_id: String(receiptId),
        paid_at: '2025-12-03T03:00:00.000Z',
        method: 'dummy',
        total: '0.50',
        amount_received: '0.30',
        payment_id: String(payment.id),
        amount_refunded: '',
      }),
    ]);

    clock = new Date('2025-12-20T03:00:00Z');
    const refund = await deliverDummy(app, {
      event_id: 'short_refund',
      event_type: 'payment.refunded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 30,
      currency: 'THB',
    });
    expect(refund.body).toEqual({ received: true, outcome: 'ok' });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
    admin = await signIn('finance');
    const afterRefund = await paidCsv(admin, december);
    const upToPaidOn = reconciled.columns.indexOf('paid_on') + 1;
    const cut = (line: string | undefined) => (line ?? '').split(',').slice(0, upToPaidOn);
    expect(afterRefund.lines.map(cut)).toEqual(reconciled.lines.map(cut));
    expect(afterRefund.rows.map((row) => row.amount_refunded)).toEqual(['0.30']);
    expect(sumsOf(afterRefund.rows)).toEqual({ received: 30n, refunded: 30n, stayed: 0n });
  });
});
