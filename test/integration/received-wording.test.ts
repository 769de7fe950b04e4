import type express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, deliverDummy, setUpDummyPaymentsApp } from '../support/dummy-payments.js';
import { visibleTextOf } from '../support/html.js';
import type { Agent } from '../support/sign-in.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * "received" meant two things: on the billing page (its paid card and a receipt's Paid column)
 * what stayed after refunds, on /admin/payments what the provider took before any refund. A
 * finance clerk comparing the two pages saw "received 7.00 THB" and "received 10.00 THB" for the
 * same payment. Each label now says which it is.
 */
let db: TestDatabase;
let app: express.Express;
let admin: Agent;
const { paidOnline, paidShortAndAccepted } = createPayingResearchers(() => ({ db, app }), 'clerk');

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('ledger'));
});
afterAll(() => db?.drop());

const textOf = async (path: string) =>
  visibleTextOf((await admin.get(path).set('Accept', 'text/html').expect(200)).text);

/** The provider refunds `cents` of payment `externalPaymentId`. */
const refund = (externalPaymentId: string | null, cents: number) =>
  deliverDummy(app, {
    event_id: `refund_${externalPaymentId}`,
    event_type: 'payment.refunded',
    external_payment_id: externalPaymentId,
    amount_cents: cents,
    currency: 'THB',
  }).expect(200);

describe('what a payment received', () => {
  it('reads as net of refunds on the billing page and as before refunds on /admin/payments', async () => {
    const { user, receiptId, payment } = await paidOnline();
    await refund(payment.externalPaymentId, 300);

    const billing = await textOf(`/admin/receipts?user=${user.username}`);
    // The paid card and the receipt's row: 10.00 THB paid, 3.00 THB of it refunded.
    expect(billing).toContain('paid 10.00 THB1 receipt received, net of refunds and lost disputes: 7.00 THB');
    expect(billing).toContain(`#${receiptId} ${user.username}`);
    expect(billing.match(/received, net of refunds and lost disputes: 7\.00 THB/g)).toHaveLength(2);
    expect(billing).not.toMatch(/received(?!, net of refunds and lost disputes:)/);

    const payments = await textOf('/admin/payments');
    expect(payments).toContain('Due Received, before refunds Refunded');
    expect(payments).toContain(`#${receiptId} (paid) ${user.username} dummy needs review 10.00 THB 10.00 THB 3.00 THB`);
  });

  it('names a short payment refunded since as received before refunds on its held card', async () => {
    const { user, payment } = await paidShortAndAccepted(admin, 100);
    await refund(payment.externalPaymentId, 50);

    const payments = await textOf('/admin/payments');
    expect(payments).toContain(
      `Payment #${payment.id}: 10.00 THB due, 1.00 THB received before refunds, 0.50 THB refunded`,
    );
    expect(await textOf(`/admin/receipts?user=${user.username}`)).toContain(
      'received, net of refunds and lost disputes: 0.50 THB',
    );
  });
});
