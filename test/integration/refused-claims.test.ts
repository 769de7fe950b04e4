import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, type Metrics } from '../../src/modules/metrics/metrics.js';
import { createPayingResearchers, deliverDummy, setUpDummyPayments } from '../support/dummy-payments.js';
import { buildStripeChargeRefunded, buildStripeCheckoutPaid } from '../support/fake-stripe.js';
import { csrfTokenOf, signInNewAdmin } from '../support/sign-in.js';
import { useStripeApp } from '../support/stripe-webhooks.js';
import { type buildTestApp, metricValue } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// A refund or dispute the app refuses (more than the payment received, another currency) answered
// 409 and was kept only in the log and a metric: the provider retried it for days, and finance, who
// read /admin/payments, never saw it.
let db: TestDatabase;
let metrics: Metrics;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  metrics = createMetrics();
  ({ db, app } = await setUpDummyPayments({ metrics }));
});
afterAll(() => db?.drop());

const { researcherWithReceipt, startCheckout, latestPaymentOf, paidOnline } = createPayingResearchers(
  () => ({ db, app }),
  'refusedclaim',
);

/** The money rows a refused claim must leave as they were. */
async function moneyOf(receiptId: number) {
  return {
    receipt: await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } }),
    payments: await db.prisma.payment.findMany({ where: { receiptId }, orderBy: { id: 'asc' } }),
    items: await db.prisma.receiptItem.findMany({ where: { receiptId }, orderBy: { id: 'asc' } }),
  };
}

let adminCounter = 0;
async function signInAdmin() {
  adminCounter += 1;
  const username = `claimreviewer${adminCounter}`;
  return signInNewAdmin(app, db, username);
}

const refusalsOf = (eventId: string) =>
  db.prisma.paymentRefusedClaim.findMany({ where: { externalEventId: eventId }, orderBy: { id: 'asc' } });
const refusalAuditsOf = (receiptId: number) =>
  db.prisma.auditLog.findMany({
    where: { action: 'payment.claim_refused', target: `receipt:${receiptId}` },
    orderBy: { id: 'asc' },
  });

describe('a refused refund', () => {
  it('still answers 409 and changes no money, but is listed on /admin/payments once, however often it is retried, and audited once', async () => {
    const { receiptId, payment } = await paidOnline();
    const before = await moneyOf(receiptId);
    const event = {
      event_id: `refused_refund_${payment.id}`,
      event_type: 'payment.refunded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 1001,
      currency: 'THB',
    };
    const message = `Webhook rejected: the refund of payment #${payment.id} (10.01 THB in all) is more than the 10.00 THB it received; nothing was changed.`;
    const errorsBefore = await metricValue(metrics, 'payments_webhook_events_total', {
      provider: 'dummy',
      event: 'payment.refunded',
      outcome: 'error',
    });

    // The provider retries a refused delivery: three tries, two of them at once.
    const first = await deliverDummy(app, event);
    const retries = await Promise.all([deliverDummy(app, event), deliverDummy(app, event)]);
    for (const answer of [first, ...retries]) {
      expect(answer.status).toBe(409);
      expect(answer.body).toEqual({ error: message, code: 409 });
    }
    expect(
      await metricValue(metrics, 'payments_webhook_events_total', {
        provider: 'dummy',
        event: 'payment.refunded',
        outcome: 'error',
      }),
    ).toBe(errorsBefore + 3);

    // Money, receipt and jobs as they were; the event itself is not stored as a delivery.
    expect(await moneyOf(receiptId)).toEqual(before);
    expect(await db.prisma.paymentEvent.count({ where: { externalEventId: event.event_id } })).toBe(0);

    // One entry per provider event id, however often it came.
    const refusals = await refusalsOf(event.event_id);
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({
      provider: 'dummy',
      eventType: 'payment.refunded',
      paymentId: payment.id,
      claimedMinor: 1001n,
      claimedCurrency: 'THB',
      reason: `the refund of payment #${payment.id} (10.01 THB in all) is more than the 10.00 THB it received`,
      deliveries: 3,
    });
    expect(JSON.parse(refusals[0]?.rawPayload ?? '{}')).toMatchObject({ event_id: event.event_id });
    const audits = await refusalAuditsOf(receiptId);
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ actor: 'provider:dummy', status: 'failed' });
    expect(audits[0]?.details).toMatchObject({
      paymentId: payment.id,
      eventId: event.event_id,
      eventType: 'payment.refunded',
      claimedMinor: '1001',
      claimedCurrency: 'THB',
      reason: `the refund of payment #${payment.id} (10.01 THB in all) is more than the 10.00 THB it received`,
    });

    // Finance sees it where they look for money that needs a decision.
    const admin = await signInAdmin();
    const page = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('<h2 id="refused-claims">Refused refunds and disputes</h2>');
    expect(page.text).toContain(`id="refused-claim-${refusals[0]?.id}"`);
    expect(page.text).toContain(
      `Refund of 10.01 THB claimed for payment #${payment.id} (<a href="/admin/receipts/${receiptId}">receipt #${receiptId}</a>), refused: the refund of payment #${payment.id} (10.01 THB in all) is more than the 10.00 THB it received`,
    );
    expect(page.text).toContain('3 deliveries');
    // The first refused here: the banner counts it.
    expect(page.text).toContain('1 refund or dispute was refused: the provider claimed money back that does not fit');
  });

  it('in another currency is listed with what was claimed, and another event id is an entry of its own', async () => {
    const { receiptId, payment } = await paidOnline();
    const before = await moneyOf(receiptId);
    for (const eventId of [`usd_refund_${payment.id}_a`, `usd_refund_${payment.id}_b`]) {
      const answer = await deliverDummy(app, {
        event_id: eventId,
        event_type: 'payment.refunded',
        external_payment_id: payment.externalPaymentId,
        amount_cents: 500,
        currency: 'USD',
      });
      expect(answer.status).toBe(409);
    }
    expect(await moneyOf(receiptId)).toEqual(before);
    for (const eventId of [`usd_refund_${payment.id}_a`, `usd_refund_${payment.id}_b`]) {
      expect(await refusalsOf(eventId)).toMatchObject([
        {
          claimedMinor: 500n,
          claimedCurrency: 'USD',
          deliveries: 1,
          reason: `the refund of payment #${payment.id} is in USD (5.00 USD), but the payment received 10.00 THB`,
        },
      ]);
    }
    expect(await refusalAuditsOf(receiptId)).toHaveLength(2);
  });
});

describe('a refused dispute and a refused dispute outcome', () => {
  it('are listed and audited as a refused refund is, and change no money', async () => {
    const { receiptId, payment } = await paidOnline();
    const before = await moneyOf(receiptId);
    const disputed = await deliverDummy(app, {
      event_id: `refused_dispute_${payment.id}`,
      event_type: 'payment.disputed',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 1500,
      currency: 'THB',
      dispute_id: `dp_refused_${payment.id}`,
    });
    expect(disputed.status).toBe(409);
    expect(await moneyOf(receiptId)).toEqual(before);
    expect(await refusalsOf(`refused_dispute_${payment.id}`)).toMatchObject([
      {
        eventType: 'payment.disputed',
        paymentId: payment.id,
        claimedMinor: 1500n,
        claimedCurrency: 'THB',
        reason: `the dispute of payment #${payment.id} (15.00 THB) is more than the 10.00 THB it received`,
      },
    ]);

    // A dispute recorded, then closed for another amount than it was opened for.
    await deliverDummy(app, {
      event_id: `opened_dispute_${payment.id}`,
      event_type: 'payment.disputed',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 1000,
      currency: 'THB',
      dispute_id: `dp_open_${payment.id}`,
    }).expect(200);
    const held = await moneyOf(receiptId);
    const closed = await deliverDummy(app, {
      event_id: `refused_closed_${payment.id}`,
      event_type: 'payment.dispute_closed',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 900,
      currency: 'THB',
      dispute_id: `dp_open_${payment.id}`,
      dispute_status: 'lost',
    });
    expect(closed.status).toBe(409);
    expect(await moneyOf(receiptId)).toEqual(held);
    expect(await refusalsOf(`refused_closed_${payment.id}`)).toMatchObject([
      { eventType: 'payment.dispute_closed', claimedMinor: 900n, claimedCurrency: 'THB' },
    ]);
    expect(
      (await refusalAuditsOf(receiptId)).map((audit) => (audit.details as { eventType: string }).eventType),
    ).toEqual(['payment.disputed', 'payment.dispute_closed']);

    const admin = await signInAdmin();
    const page = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain(
      `Dispute of 15.00 THB claimed for payment #${payment.id} (<a href="/admin/receipts/${receiptId}">receipt #${receiptId}</a>), refused: the dispute of payment #${payment.id} (15.00 THB) is more than the 10.00 THB it received`,
    );
    expect(page.text).toContain(`Dispute outcome of 9.00 THB claimed for payment #${payment.id}`);
  });
});

describe('settling a refused claim', () => {
  /** A refund refused for payment of a fresh receipt; its entry. */
  async function refusedRefund(name: string) {
    const { receiptId, payment } = await paidOnline();
    await deliverDummy(app, {
      event_id: name,
      event_type: 'payment.refunded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 2000,
      currency: 'THB',
    }).expect(409);
    const [claim] = await refusalsOf(name);
    if (!claim) throw new Error(`no refused claim for ${name}`);
    return { receiptId, payment, claim };
  }

  async function settle(admin: Awaited<ReturnType<typeof signInAdmin>>, id: number | string, body: object) {
    return admin
      .post(`/admin/payments/refused-claims/${id}/settle`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send(body);
  }

  it('takes it off the banner and the list, with who, when and what was done, audited; money unchanged', async () => {
    const { receiptId, claim } = await refusedRefund('settle_me');
    const before = await moneyOf(receiptId);
    const admin = await signInAdmin();
    const settled = await settle(admin, claim.id, { note: 'Stripe support reversed the duplicate refund.' });
    expect(settled.status, settled.text).toBe(200);
    expect(settled.body).toEqual({
      ok: true,
      refusedClaim: { id: claim.id, paymentId: claim.paymentId, settled: true },
      // The flash's sentence, as every change's JSON answer has it.
      message: `Refused claim #${claim.id} (event settle_me) settled.`,
    });
    const row = await db.prisma.paymentRefusedClaim.findUniqueOrThrow({ where: { id: claim.id } });
    expect(row).toMatchObject({
      settledBy: expect.stringMatching(/^claimreviewer\d+$/),
      settleNote: 'Stripe support reversed the duplicate refund.',
    });
    expect(row.settledAt).toBeInstanceOf(Date);
    expect(await moneyOf(receiptId)).toEqual(before);
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'payment.claim_refusal_settle', target: `receipt:${receiptId}` },
    });
    expect(audit.details).toMatchObject({
      refusedClaimId: claim.id,
      paymentId: claim.paymentId,
      eventId: 'settle_me',
      note: 'Stripe support reversed the duplicate refund.',
    });
    const page = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(page.text).not.toContain(`id="refused-claim-${claim.id}"`);

    // A retry of the settled event is still refused and counted, and stays settled: no new entry.
    await deliverDummy(app, {
      event_id: 'settle_me',
      event_type: 'payment.refunded',
      external_payment_id: before.payments[0]?.externalPaymentId,
      amount_cents: 2000,
      currency: 'THB',
    }).expect(409);
    const retried = await db.prisma.paymentRefusedClaim.findUniqueOrThrow({ where: { id: claim.id } });
    expect(retried).toMatchObject({ deliveries: 2, settledAt: row.settledAt, settledBy: row.settledBy });

    // Settling it twice is refused and changes nothing.
    const again = await settle(admin, claim.id, { note: 'Settled a second time by mistake.' });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatch(
      new RegExp(`^Refused claim #${claim.id} was already settled by claimreviewer\\d+ on .+; nothing was changed\\.$`),
    );
    expect(await db.prisma.paymentRefusedClaim.findUniqueOrThrow({ where: { id: claim.id } })).toEqual(retried);
  });

  // The note was read before the claim: an admin settling a claim settled meanwhile (another
  // admin, another tab) with a short note was told the note was too short, corrected it, and only
  // then was told 409 "already settled". The claim's state is answered first, as for a payment.
  it('tells an admin settling an already settled claim so (409), whatever the note, changing nothing', async () => {
    const { claim } = await refusedRefund('settle_twice_short');
    const admin = await signInAdmin();
    expect((await settle(admin, claim.id, { note: 'Checked with the provider today.' })).status).toBe(200);
    const settled = await db.prisma.paymentRefusedClaim.findUniqueOrThrow({ where: { id: claim.id } });
    const auditBefore = await db.prisma.auditLog.count();
    for (const body of [{ note: 'ok' }, {}, { note: 'Checked again.', refund_id: 're_1' }]) {
      const again = await settle(admin, claim.id, body);
      expect(again.status, again.text).toBe(409);
      expect(again.body.error).toMatch(
        new RegExp(
          `^Refused claim #${claim.id} was already settled by claimreviewer\\d+ on .+; nothing was changed\\.$`,
        ),
      );
    }
    const page = await admin
      .post(`/admin/payments/refused-claims/${claim.id}/settle`)
      .set('Accept', 'text/html')
      .type('form')
      .send({ note: 'short', csrf_token: await csrfTokenOf(admin) });
    expect(page.status).toBe(409);
    expect(page.text).toMatch(
      new RegExp(
        `<div class="alert error" role="alert" id="refused-claim-error" tabindex="-1" autofocus>Refused claim #${claim.id} was already settled by claimreviewer\\d+ on `,
      ),
    );
    expect(await db.prisma.paymentRefusedClaim.findUniqueOrThrow({ where: { id: claim.id } })).toEqual(settled);
    expect(await db.prisma.auditLog.count()).toBe(auditBefore);
  });

  it('refuses a missing or short note (400), an unknown entry (404) and a researcher (403), changing nothing', async () => {
    const { claim, receiptId } = await refusedRefund('settle_refused');
    const admin = await signInAdmin();
    const short = await settle(admin, claim.id, { note: 'ok' });
    expect(short.status).toBe(400);
    expect(short.body.error).toContain('must say what was done, in at least 10 characters');
    const missing = await settle(admin, claim.id, {});
    expect(missing.status).toBe(400);
    const unknown = await settle(admin, 999999, { note: 'Checked with the provider.' });
    expect(unknown.status).toBe(404);
    // An unknown entry is not there whatever the note says, as an unknown payment is.
    const unknownShort = await settle(admin, 999999, { note: 'ok' });
    expect(unknownShort.status).toBe(404);
    expect(unknownShort.body.error).toBe('Refused claim #999999 was not found.');
    const notANumber = await settle(admin, 'abc', { note: 'Checked with the provider.' });
    expect(notANumber.status).toBe(400);
    const researcher = (await researcherWithReceipt()).agent;
    const forbidden = await researcher
      .post(`/admin/payments/refused-claims/${claim.id}/settle`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(researcher))
      .send({ note: 'Checked with the provider.' });
    expect(forbidden.status).toBe(403);
    expect(await db.prisma.paymentRefusedClaim.findUniqueOrThrow({ where: { id: claim.id } })).toMatchObject({
      settledAt: null,
      settledBy: null,
      settleNote: null,
    });
    expect(
      await db.prisma.auditLog.count({
        where: { action: 'payment.claim_refusal_settle', target: `receipt:${receiptId}` },
      }),
    ).toBe(0);
  });

  it('from the page: a refused note comes back beside the entry as typed; a good one redirects with a message', async () => {
    const { claim } = await refusedRefund('settle_form');
    const admin = await signInAdmin();
    const page = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain(
      `<form method="post" action="/admin/payments/refused-claims/${claim.id}/settle" data-submit-once>`,
    );
    const short = await admin
      .post(`/admin/payments/refused-claims/${claim.id}/settle`)
      .set('Accept', 'text/html')
      .type('form')
      .send({ note: 'too short', csrf_token: await csrfTokenOf(admin) });
    expect(short.status).toBe(400);
    expect(short.text).toContain(`id="refused-claim-error-${claim.id}"`);
    expect(short.text).toContain('>too short</textarea>');
    const done = await admin
      .post(`/admin/payments/refused-claims/${claim.id}/settle`)
      .set('Accept', 'text/html')
      .type('form')
      .send({ note: 'Checked in the Stripe dashboard: a test refund.', csrf_token: await csrfTokenOf(admin) });
    expect(done.status).toBe(303);
    expect(done.headers.location).toBe('/admin/payments');
    const after = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(after.text).toContain(`Refused claim #${claim.id} (event settle_form) settled.`);

    // The same form sent again (another tab): the entry is off the page, so the reason is said above it.
    const again = await admin
      .post(`/admin/payments/refused-claims/${claim.id}/settle`)
      .set('Accept', 'text/html')
      .type('form')
      .send({ note: 'Checked in the Stripe dashboard: a test refund.', csrf_token: await csrfTokenOf(admin) });
    expect(again.status).toBe(409);
    expect(again.text).toMatch(
      new RegExp(
        `<div class="alert error" role="alert" id="refused-claim-error" tabindex="-1" autofocus>Refused claim #${claim.id} was already settled by claimreviewer\\d+ on `,
      ),
    );
  });
});

describe('a delivery refused for another reason', () => {
  it('(a body that is no event, a bad signature) is not listed: it names no payment', async () => {
    const before = await db.prisma.paymentRefusedClaim.count();
    await deliverDummy(app, { event_id: 'no_amount', event_type: 'payment.refunded' }).expect(400);
    await deliverDummy(
      app,
      {
        event_id: 'bad_sig',
        event_type: 'payment.refunded',
        external_payment_id: 'x',
        amount_cents: 1,
        currency: 'THB',
      },
      'another-secret',
    ).expect(400);
    expect(await db.prisma.paymentRefusedClaim.count()).toBe(before);
  });
});

describe("Stripe's charge.refunded refused (SDK against a local fake of the API)", () => {
  const { stripe, deliver: deliverStripe } = useStripeApp(() => db, {
    secretKey: 'sk_test_fakekeyforrefusedclaims',
    webhookSecret: 'whsec_refusedclaimsecretfortests',
  });

  it('is listed once with the Stripe event id', async () => {
    const { agent, receiptId } = await researcherWithReceipt(stripe.app);
    await startCheckout(agent, receiptId);
    const payment = await latestPaymentOf(receiptId);
    await deliverStripe(
      buildStripeCheckoutPaid(payment.externalPaymentId, 'pi_test_refused_1', 'evt_refused_paid'),
    ).expect(200);
    const before = await moneyOf(receiptId);
    const event = buildStripeChargeRefunded(
      { payment_intent: 'pi_test_refused_1', amount: 1000, amount_refunded: 1200, currency: 'thb' },
      'evt_refused_too_much',
    );
    await deliverStripe(event).expect(409);
    await deliverStripe(event).expect(409);
    expect(await moneyOf(receiptId)).toEqual(before);
    expect(await refusalsOf('evt_refused_too_much')).toMatchObject([
      { provider: 'stripe', paymentId: payment.id, claimedMinor: 1200n, claimedCurrency: 'THB', deliveries: 2 },
    ]);
    expect(await refusalAuditsOf(receiptId)).toHaveLength(1);
  });
});
