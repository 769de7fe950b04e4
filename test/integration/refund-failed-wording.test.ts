import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { createPayingResearchers } from '../support/dummy-payments.js';
import {
  buildStripeChargeRefunded,
  buildStripeCheckoutPaid,
  buildStripeRefundUpdated,
} from '../support/fake-stripe.js';
import { type Agent, signInNewAdmin } from '../support/sign-in.js';
import { useStripeApp } from '../support/stripe-webhooks.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// After a refund failed at the provider, the money is still with the centre, but every page that
// shows refunds read the refunded total the provider reported: the receipt pages said "refunded in
// full … the money went back to the payer", the JSON, paid.csv and /admin/payments counted the
// failed refund as returned, and the billing page's paid card counted it as gone.
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
});
afterAll(() => db?.drop());

const { stripe, deliver } = useStripeApp(() => db, {
  secretKey: 'sk_test_fakekeyforfailedrefundwording',
  webhookSecret: 'whsec_failedrefundwordingsecret',
});

const { researcherWithReceipt, startCheckout, latestPaymentOf } = createPayingResearchers(
  () => ({ db, app: stripe.app }),
  'refundwording',
);

let paidCounter = 0;
/** A receipt of 10.00 THB paid through Stripe Checkout, its PaymentIntent named by the success. */
async function paidAtStripe() {
  paidCounter += 1;
  const { agent, receiptId, user } = await researcherWithReceipt(stripe.app);
  await startCheckout(agent, receiptId);
  const payment = await latestPaymentOf(receiptId);
  const intent = `pi_test_refund_wording_${paidCounter}`;
  await deliver(
    buildStripeCheckoutPaid(payment.externalPaymentId, intent, `evt_refund_wording_paid_${paidCounter}`),
  ).expect(200);
  return { agent, receiptId, payment, intent, username: user.username };
}

function refundAtStripe(intent: string, amountRefunded: number, eventId: string) {
  return deliver(
    buildStripeChargeRefunded(
      { payment_intent: intent, amount: 1000, amount_refunded: amountRefunded, currency: 'thb' },
      eventId,
    ),
  );
}

function refundFailed(intent: string, refundId: string, amount: number, eventId: string) {
  return deliver(buildStripeRefundUpdated({ id: refundId, payment_intent: intent, amount, currency: 'thb' }, eventId));
}

let adminCounter = 0;
async function signInAdmin(): Promise<Agent> {
  adminCounter += 1;
  const username = `refundwordingadmin${adminCounter}`;
  return signInNewAdmin(stripe.app, db, username);
}

/** paid.csv's line of the payment, by column name. */
async function paidCsvLineOf(admin: Agent, paymentId: number) {
  const text = (await admin.get('/admin/paid.csv?start=2000-01-01&end=2100-12-31').expect(200)).text;
  const [header, ...lines] = text.trimEnd().split('\n');
  const columns = (header ?? '').split(',');
  const rows = lines.map((line) => Object.fromEntries(line.split(',').map((value, index) => [columns[index], value])));
  return { columns, row: rows.find((row) => row.payment_id === String(paymentId)) };
}

/** The receipt page's text, tags and spacing left out, as a reader sees it. */
function textOf(html: string) {
  return html
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .replace(/&#39;/g, "'");
}

describe('a refund in full that failed', () => {
  it('every page says the refund failed and nothing went back; none says it was refunded', async () => {
    const { agent, receiptId, payment, intent } = await paidAtStripe();
    await refundAtStripe(intent, 1000, 'evt_wording_full').expect(200);
    const failed = await refundFailed(intent, 're_wording_full', 1000, 'evt_wording_full_failed');
    expect(failed.body).toEqual({ received: true, outcome: 'review' });
    const admin = await signInAdmin();

    const said =
      `The refund of 10.00 THB of payment #${payment.id} (10.00 THB via stripe) failed at stripe on ` +
      '__WHEN__: the money was not returned to the payer and is still with the centre, so nothing of it was refunded';
    const saidPattern = new RegExp(said.replace(/[.()#]/g, '\\$&').replace('__WHEN__', '[^:]+ \\d{2}:\\d{2}'));
    for (const [who, page] of [
      ['researcher', await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200)],
      ['admin', await admin.get(`/admin/receipts/${receiptId}`).set('Accept', 'text/html').expect(200)],
    ] as const) {
      const text = textOf(page.text);
      expect(text, who).not.toContain('refunded in full');
      expect(text, who).not.toContain('the money went back to the payer');
      expect(text, who).toMatch(saidPattern);
    }

    const json = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'application/json').expect(200);
    expect(json.body.receipt.refunds).toEqual([
      {
        paymentId: payment.id,
        amount: '0.00',
        currency: 'THB',
        refundedAt: expect.any(String),
        isFull: false,
        isByBillingTeam: false,
        atProvider: { amount: '0.00', refundedAt: expect.any(String), refundedApart: '0.00', takenBackByDispute: null },
        byBillingTeam: null,
        failedAmount: '10.00',
        failedAt: expect.any(String),
        takenBackByDispute: null,
      },
    ]);

    // Held: the thanks page says the payment is being checked, not that it was refunded.
    const thanks = await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(thanks.text).not.toContain('refunded to you');
    expect(thanks.text).toContain('Your payment arrived but needs a check by the billing team');

    // paid.csv: the payment's line says nothing went back; its columns are as before.
    const { columns, row } = await paidCsvLineOf(admin, payment.id);
    expect(columns.slice(-7)).toEqual([
      'paid_on',
      'amount_refunded',
      'voided_at',
      'void_reason',
      'amount_disputed',
      'disputed_at',
      'amount_disputed_lost',
    ]);
    expect(row).toMatchObject({ amount_received: '10.00', received_currency: 'THB', amount_refunded: '0.00' });

    const payments = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(payments.text).not.toContain('10.00 THB refunded</strong>');
    expect(payments.text).toMatch(
      /<strong class="received-different">0\.00 THB refunded<\/strong> [^,]+, <strong class="received-different">the refund of 10\.00 THB failed<\/strong>/,
    );
    expect(payments.text).toContain('or a refund failed at the provider (the money is still here)');
    expect(payments.text).toMatch(/0\.00 THB \([^)]+\); the refund of 10\.00 THB failed/);
  });
});

describe('a partial refund, part of which failed', () => {
  it('every page counts only what went back, and says what failed', async () => {
    const { agent, receiptId, payment, intent, username } = await paidAtStripe();
    await refundAtStripe(intent, 300, 'evt_wording_part_1').expect(200);
    await refundAtStripe(intent, 500, 'evt_wording_part_2').expect(200);
    const failed = await refundFailed(intent, 're_wording_part_1', 300, 'evt_wording_part_1_failed');
    expect(failed.body).toEqual({ received: true, outcome: 'review' });
    const admin = await signInAdmin();

    const page = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    const text = textOf(page.text);
    expect(text).not.toContain(`5.00 THB of payment #${payment.id}`);
    expect(text).toMatch(
      new RegExp(
        `2\\.00 THB of payment #${payment.id} \\(10\\.00 THB via stripe\\) was refunded on [^;]+; the refund of a ` +
          'further 3\\.00 THB failed at stripe on [^:]+ \\d{2}:\\d{2}: that money was not returned to the payer and ' +
          'is still with the centre; this receipt stays paid while the billing team checks it\\.',
      ),
    );
    const adminPage = await admin.get(`/admin/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(textOf(adminPage.text)).toContain(
      `2.00 THB of payment #${payment.id} (10.00 THB via stripe) was refunded on`,
    );

    const json = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'application/json').expect(200);
    expect(json.body.receipt.refunds).toMatchObject([
      { paymentId: payment.id, amount: '2.00', currency: 'THB', isFull: false, failedAmount: '3.00' },
    ]);

    const { row } = await paidCsvLineOf(admin, payment.id);
    expect(row).toMatchObject({ receipt_id: String(receiptId), amount_received: '10.00', amount_refunded: '2.00' });

    // The paid card counts what stayed: 10.00 received, 2.00 of it went back.
    const billing = await admin.get(`/admin/receipts?user=${username}`).set('Accept', 'text/html').expect(200);
    expect(billing.text).toContain('received, net of refunds and lost disputes: 8.00 THB');

    const payments = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(payments.text).toContain('the refund of 3.00 THB failed</strong>');
    expect(payments.text).toMatch(
      /2\.00 THB refunded<\/strong> [^,]+, <strong class="received-different">the refund of 3\.00 THB failed/,
    );
  });

  it('a refund with none failed reads as before', async () => {
    const { agent, receiptId, payment, intent } = await paidAtStripe();
    await refundAtStripe(intent, 400, 'evt_wording_plain').expect(200);
    const json = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'application/json').expect(200);
    expect(json.body.receipt.refunds).toMatchObject([
      { paymentId: payment.id, amount: '4.00', isFull: false, failedAmount: null, failedAt: null },
    ]);
    const page = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    expect(textOf(page.text)).toContain(`4.00 THB of payment #${payment.id} (10.00 THB via stripe) was refunded on`);
    expect(textOf(page.text)).not.toContain('failed at stripe');
  });
});
