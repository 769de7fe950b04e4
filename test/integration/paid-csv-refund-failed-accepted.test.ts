import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { DUMMY_PAYMENTS_ENV, deliverDummy } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { createPaidCsvStory } from '../support/paid-csv-story.js';
import { csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Finance reconciles September in early October. A receipt paid online in September was refunded
// in full in October, the refund failed, and finance accepted the held payment in November to mark
// the receipt paid from it. Accepting set the payment's paid_at to November, so September's closed
// paid.csv lost the line and November's gained it, though the money arrived in September and never left.
let db: TestDatabase;
let clock = new Date('2025-09-05T03:00:00Z');
let app: ReturnType<typeof buildTestApp>;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'finance', role: 'admin', password: 'finance-password' });
  app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok', ...DUMMY_PAYMENTS_ENV }, now: () => clock });
});
afterAll(() => db?.drop());

/** Sessions end after an hour idle on the app's clock: every step of the story signs in afresh. */
const signIn = (username: string) => signInAs(app, username, `${username}-password`);
const { billEverything, payOnline, paidCsv } = createPaidCsvStory(() => db);

describe('paid.csv of a month whose payment was refunded in full, the refund failed and the payment was accepted later', () => {
  it('keeps the payment’s line in the month the money arrived; the month it was accepted gains none', async () => {
    await buildJobs(db, [{ user: 'alice', end: '2025-09-01T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const alice = await signIn('alice');
    const receiptId = await billEverything(alice);
    const payment = await payOnline(alice, receiptId);
    const paidAt = (await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).paidAt;
    expect(paidAt).toEqual(new Date('2025-09-05T03:00:00Z'));

    const september = 'start=2025-09-01&end=2025-09-30';
    const november = 'start=2025-11-01&end=2025-11-30';
    let admin = await signIn('finance');
    const reconciled = (await paidCsv(admin, september)).rows;
    expect(reconciled).toEqual([
      expect.objectContaining({ receipt_id: String(receiptId), payment_id: String(payment.id), paid_on: '2025-09-05' }),
    ]);

    // October: the refund in full, then its failure; the receipt is pending and the payment held.
    clock = new Date('2025-10-07T02:00:00Z');
    const refund = { external_payment_id: payment.externalPaymentId, amount_cents: 50, currency: 'THB' };
    expect(
      (await deliverDummy(app, { event_id: 'refund_oct', event_type: 'payment.refunded', ...refund })).body.outcome,
    ).toBe('ok');
    clock = new Date('2025-10-08T02:00:00Z');
    const failed = await deliverDummy(app, {
      event_id: 'refund_oct_failed',
      event_type: 'payment.refund_failed',
      ...refund,
      refund_id: 'refund_oct',
    });
    expect(failed.body).toEqual({ received: true, outcome: 'review' });

    // November: finance accepts the held payment; the receipt is paid from it again.
    clock = new Date('2025-11-12T04:00:00Z');
    admin = await signIn('finance');
    const accepted = await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ outcome: 'accepted', note: 'The refund failed; the September money stays for this receipt.' });
    expect(accepted.status, accepted.text).toBe(200);
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
      status: 'paid',
      paidAt,
    });
    expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).paidAt).toEqual(paidAt);

    // September still has its line, as reconciled; November has none for money that arrived before.
    const after = (await paidCsv(admin, september)).rows;
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({
      receipt_id: String(receiptId),
      payment_id: String(payment.id),
      paid_on: '2025-09-05',
      amount_received: reconciled[0]?.amount_received,
      amount_refunded: '0.00',
    });
    expect((await paidCsv(admin, november)).rows).toEqual([]);
  });
});
