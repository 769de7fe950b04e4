import type express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, deliverDummy, setUpDummyPaymentsApp } from '../support/dummy-payments.js';
import type { Agent } from '../support/sign-in.js';
import type { TestDatabase } from '../support/test-database.js';

// Between `npm run db:migrate` and the restart of every instance (docs/operations.md, "Upgrading"), a
// release from before 20261205100000_failed_refund_in_reported_total still serves, and records a
// refund that failed at the provider as it always did: without is_in_reported_total, which took its
// default, false. This release then read a reported refund of 1.00 THB that failed as 1.00 THB
// returned to the payer, where the same events recorded before the migration (which sets the column
// from refunded_at) read 0.00: checked by upgrading a database from the release of 2026-12-04.
let db: TestDatabase;
let app: express.Express;
let admin: Agent;
beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('olderreleaseadmin'));
});
afterAll(() => db?.drop());

const { paidOnline } = createPayingResearchers(() => ({ db, app }), 'olderrelease');

/** The 2026-12-04 release's INSERT of a failed refund (payments.repository.ts, recordFailedRefund), word for word. */
function recordFailedRefundAsTheOlderRelease(paymentId: number, externalRefundId: string, amountMinor: number) {
  return db.pool.query(
    `INSERT INTO payment_failed_refunds (provider, external_refund_id, payment_id, amount_minor, currency, status,
                                        failure_reason, external_event_id, failed_at)
     VALUES ('dummy', $1, $2, $3, 'THB', 'failed', NULL, $4, now())
     ON CONFLICT (provider, external_refund_id) DO NOTHING
     RETURNING id`,
    [externalRefundId, paymentId, amountMinor, `evt_${externalRefundId}`],
  );
}

async function refundedShownFor(paymentId: number) {
  const listed = await admin.get('/admin/payments').set('Accept', 'application/json').expect(200);
  const payment = (listed.body.payments as Array<{ id: number; refunded: { amount: string } | null }>).find(
    (row) => row.id === paymentId,
  );
  return payment?.refunded?.amount;
}

describe('a failed refund recorded by an older release still serving after the migration', () => {
  it('after its refund was reported, is counted by that report: none of the money reads as returned', async () => {
    const { payment } = await paidOnline();
    await deliverDummy(app, {
      event_id: `older_refund_${payment.id}`,
      event_type: 'payment.refunded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 100,
      currency: 'THB',
    }).expect(200);
    expect(await refundedShownFor(payment.id)).toBe('1.00');

    await recordFailedRefundAsTheOlderRelease(payment.id, `re_older_${payment.id}`, 100);

    const row = await db.pool.query('SELECT is_in_reported_total FROM payment_failed_refunds WHERE payment_id = $1', [
      payment.id,
    ]);
    expect(row.rows[0]?.is_in_reported_total).toBe(true);
    expect(await refundedShownFor(payment.id)).toBe('0.00');
  });

  it('before any refund report, is left for the report to come, as the migration leaves it', async () => {
    const { payment } = await paidOnline();
    await recordFailedRefundAsTheOlderRelease(payment.id, `re_older_first_${payment.id}`, 100);
    const row = await db.pool.query('SELECT is_in_reported_total FROM payment_failed_refunds WHERE payment_id = $1', [
      payment.id,
    ]);
    expect(row.rows[0]?.is_in_reported_total).toBe(false);
  });
});
