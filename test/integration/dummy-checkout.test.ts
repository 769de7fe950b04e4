import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs } from '../support/billing-factories.js';
import { deliverDummy, setUpDummyPaymentsApp } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { formActionsIn } from '../support/html.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('cashier'));
});
afterAll(() => db?.drop());

let payerCount = 0;
/** A new researcher, signed in, with a receipt of one job and no payment started. */
async function withUnpaidReceipt() {
  payerCount += 1;
  const username = `payer${payerCount}`;
  await buildUser(db.prisma, { username, password: `${username}-password` });
  await buildJobs(db, [{ user: username, end: '2026-01-10T10:00:00Z' }]);
  const agent = await signInAs(app, username, `${username}-password`);
  const created = await agent
    .post('/me/receipt')
    .type('form')
    .send({ before: '2026-01-31', csrf_token: await csrfTokenOf(agent) });
  expect(created.status, created.text.slice(0, 200)).toBe(303);
  const receiptId = Number(/\/me\/receipts\/(\d+)/.exec(created.headers.location ?? '')?.[1]);
  return { agent, receiptId };
}

/** A researcher at the dummy checkout of their receipt's first payment, still pending. */
async function atCheckout() {
  const { agent, receiptId } = await withUnpaidReceipt();
  const started = await agent
    .post(`/payments/receipt/${receiptId}/start`)
    .type('form')
    .send({ csrf_token: await csrfTokenOf(agent) });
  expect(started.status, started.text.slice(0, 200)).toBe(303);
  const checkoutPath = started.headers.location as string;
  const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId } });
  return { agent, receiptId, checkoutPath, payment };
}

async function choose(agent: Agent, checkoutPath: string, choice: string, accept = 'text/html') {
  return agent
    .post(checkoutPath)
    .set('Accept', accept)
    .type('form')
    .send({ choice, csrf_token: await csrfTokenOf(agent) });
}

/** A checkout whose payment ended as `status`, the way each end is reached. */
async function endedCheckout(status: string) {
  const checkout = await atCheckout();
  const { agent, checkoutPath, payment } = checkout;
  const choice = { succeeded: 'pay', failed: 'fail' }[status] ?? 'cancel';
  expect((await choose(agent, checkoutPath, choice)).status).toBe(303);
  if (status === 'needs_review' || status === 'resolved') {
    // The provider reports the money after the cancel: held for the billing team.
    await deliverDummy(app, {
      event_id: `evt-late-${payment.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: Number(payment.amountMinor),
      currency: payment.currency,
    }).expect(200);
  }
  if (status === 'resolved') {
    await admin
      .post(`/admin/payments/${payment.id}/resolve`)
      .set('Accept', 'application/json')
      .set('X-CSRF-Token', await csrfTokenOf(admin, '/admin/payments'))
      .send({ outcome: 'refunded', note: 'refunded at the provider' })
      .expect(200);
  }
  expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe(status);
  return checkout;
}

/** What a refused choice must leave as it was. */
async function stateOf(receiptId: number) {
  const [receipt, payments, events, audit] = await Promise.all([
    db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } }),
    db.prisma.payment.findMany({ where: { receiptId }, orderBy: { id: 'asc' } }),
    db.prisma.paymentEvent.count(),
    db.prisma.auditLog.count(),
  ]);
  return { receipt, payments, events, audit };
}

const ENDINGS = [
  ['succeeded', 'This payment has already succeeded.'],
  ['failed', 'This payment failed.'],
  ['canceled', 'This payment was canceled.'],
  ['needs_review', 'This payment is held for review by the billing team.'],
  ['resolved', 'This payment was reviewed and closed by the billing team.'],
] as const;

describe('the dummy checkout page', () => {
  it('offers Pay, Fail the payment and Cancel while the payment is pending', async () => {
    const { agent, checkoutPath } = await atCheckout();
    const page = await agent.get(checkoutPath).set('Accept', 'text/html').expect(200);
    expect(formActionsIn(page.text)).toContain(checkoutPath);
    // Named by what each does: "Fail" alone, heard out of context in a screen reader's list of buttons, said nothing.
    const buttons = [
      ...page.text.matchAll(/<button type="submit" name="choice" value="([a-z]+)"[^>]*>([^<]*)<\/button>/g),
    ];
    expect(buttons.map((button) => [button[1], button[2]])).toEqual([
      ['pay', 'Pay'],
      ['fail', 'Fail the payment'],
      ['cancel', 'Cancel'],
    ]);
    expect(page.text).not.toContain('This payment');
  });

  it.each(ENDINGS)(
    'says in plain words that a %s payment has ended, and offers no choice',
    async (status, sentence) => {
      const { agent, checkoutPath, receiptId } = await endedCheckout(status);
      const page = await agent.get(checkoutPath).set('Accept', 'text/html').expect(200);
      expect(page.text).toContain(sentence);
      expect(page.text).not.toContain('This checkout is already');
      expect(page.text).not.toContain('name="choice"');
      expect(formActionsIn(page.text)).not.toContain(checkoutPath);
      expect(page.text).toContain(`href="/payments/thanks?rid=${receiptId}"`);
    },
  );

  it.each(ENDINGS)('refuses a choice for a %s payment with 409 and changes nothing', async (status, sentence) => {
    const { agent, checkoutPath, receiptId } = await endedCheckout(status);
    const before = await stateOf(receiptId);
    for (const choice of ['pay', 'fail', 'cancel']) {
      const json = await choose(agent, checkoutPath, choice, 'application/json');
      expect(json.status, json.text.slice(0, 300)).toBe(409);
      expect(json.body).toEqual({
        error: `${sentence.slice(0, -1)}, so its checkout takes no other choice; nothing was changed.`,
        code: 409,
      });
    }
    // A browser gets the checkout page back, with the reason and still no buttons.
    const page = await choose(agent, checkoutPath, 'pay');
    expect(page.status).toBe(409);
    expect(page.text).toContain(
      `${sentence.slice(0, -1)}, so its checkout takes no other choice; nothing was changed.`,
    );
    expect(page.text).not.toContain('name="choice"');
    expect(await stateOf(receiptId)).toEqual(before);
  });
});

// The payer's browser pages answered a client asking for JSON with their HTML, which a script then
// failed to parse; a choice sent as JSON was a 303 to one of them.
describe('the payer pages asked for JSON', () => {
  it('/payments/thanks is 406 pointing at the receipt, whose JSON answers; a browser still gets the page', async () => {
    const { agent, receiptId } = await atCheckout();
    const response = await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'application/json');
    expect(response.status).toBe(406);
    expect(response.body).toEqual({
      error: `/payments/thanks is the page a payer's browser comes back to from the checkout, HTML only. The status of receipt #${receiptId} is in its JSON at /me/receipts/${receiptId}.`,
      code: 406,
      jsonUrl: `/me/receipts/${receiptId}`,
    });
    const receipt = await agent.get(response.body.jsonUrl).set('Accept', 'application/json').expect(200);
    expect(receipt.body.receipt.status).toBe('pending');
    const page = await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html');
    expect([page.status, page.type]).toEqual([200, 'text/html']);
  });

  it("/payments/thanks keeps its other refusals: another's receipt 404, a bad rid 400", async () => {
    const { receiptId } = await atCheckout();
    const other = await atCheckout();
    const notTheirs = await other.agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'application/json');
    expect(notTheirs.status).toBe(404);
    const badRid = await other.agent.get('/payments/thanks?rid=abc').set('Accept', 'application/json');
    expect(badRid.status).toBe(400);
  });

  it('the checkout page is 406 saying how to choose, and chooses nothing; a browser still gets the page', async () => {
    const { agent, checkoutPath, receiptId, payment } = await atCheckout();
    const response = await agent.get(checkoutPath).set('Accept', 'application/json');
    expect(response.status).toBe(406);
    expect(response.body).toEqual({
      error: `The dummy checkout is the payment provider's page for the payer's browser, HTML only. To choose as its buttons do, send POST ${checkoutPath} with choice pay, fail or cancel and the X-CSRFToken header. The status of receipt #${receiptId} is in its JSON at /me/receipts/${receiptId}.`,
      code: 406,
      jsonUrl: `/me/receipts/${receiptId}`,
    });
    expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe('pending');
    const page = await agent.get(checkoutPath).set('Accept', 'text/html');
    expect([page.status, page.type]).toEqual([200, 'text/html']);
    // Another's checkout is still not found.
    const other = await atCheckout();
    expect((await other.agent.get(checkoutPath).set('Accept', 'application/json')).status).toBe(404);
  });

  it('the Pay confirmation page is 406 naming the POST that starts a payment, and starts none', async () => {
    const { agent, receiptId } = await withUnpaidReceipt();
    const response = await agent.get(`/payments/receipt/${receiptId}/start`).set('Accept', 'application/json');
    expect(response.status).toBe(406);
    expect(response.body).toEqual({
      error: `/payments/receipt/${receiptId}/start is the page that asks a payer's browser to confirm, HTML only. To start the payment, send POST /payments/receipt/${receiptId}/start with the X-CSRFToken header: it answers the checkout's address. The status of receipt #${receiptId} is in its JSON at /me/receipts/${receiptId}.`,
      code: 406,
      jsonUrl: `/me/receipts/${receiptId}`,
    });
    expect(await db.prisma.payment.count({ where: { receiptId } })).toBe(0);
    const page = await agent.get(`/payments/receipt/${receiptId}/start`).set('Accept', 'text/html');
    expect([page.status, page.type]).toEqual([200, 'text/html']);
    // Another's receipt, and a receipt id that is none, keep their refusals.
    const other = await atCheckout();
    const notTheirs = await other.agent.get(`/payments/receipt/${receiptId}/start`).set('Accept', 'application/json');
    expect(notTheirs.status).toBe(404);
    const badId = await other.agent.get('/payments/receipt/abc/start').set('Accept', 'application/json');
    expect(badId.status).toBe(400);
  });

  it('a choice sent as JSON answers what was done, not a redirect to the HTML status page', async () => {
    const { agent, checkoutPath, receiptId, payment } = await atCheckout();
    const response = await choose(agent, checkoutPath, 'pay', 'application/json');
    expect(response.status, response.text.slice(0, 300)).toBe(200);
    expect(response.body).toEqual({
      ok: true,
      receiptId,
      choice: 'pay',
      receiptUrl: `/me/receipts/${receiptId}`,
      message: `The dummy checkout reported the payment of receipt #${receiptId} as paid. The status of receipt #${receiptId} is in its JSON at /me/receipts/${receiptId}.`,
    });
    expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe('succeeded');
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('paid');
  });
});

/**
 * The choice and the start of a payment change money, and read no field but the choice: a field they
 * do not have (`{"choice": "pay", "amount": "1.00"}`, a start sent with an amount) was ignored, so a
 * script read the 200 as its field applied, where every other body that changes money names it.
 */
describe('a field the payment forms do not have', () => {
  it('a choice with another field is 400 naming it, and the payment stays pending', async () => {
    const { agent, checkoutPath, receiptId, payment } = await atCheckout();
    const response = await agent
      .post(checkoutPath)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({ choice: 'pay', amount: '1.00' });
    expect(response.status, response.text.slice(0, 300)).toBe(400);
    expect(response.body).toEqual({ error: 'input: has an unknown field: amount', code: 400 });
    expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe('pending');
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
    expect(await db.prisma.paymentEvent.count({ where: { paymentId: payment.id } })).toBe(0);
  });

  it('a start with a field is 400 naming it, and starts no payment', async () => {
    const { agent, receiptId } = await withUnpaidReceipt();
    const response = await agent
      .post(`/payments/receipt/${receiptId}/start`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({ amount: '1.00' });
    expect(response.status, response.text.slice(0, 300)).toBe(400);
    expect(response.body).toEqual({ error: 'input: has an unknown field: amount', code: 400 });
    expect(await db.prisma.payment.count({ where: { receiptId } })).toBe(0);
  });

  it('a start with no body, or the form with its token alone, still starts the payment', async () => {
    const { agent, receiptId } = await withUnpaidReceipt();
    const json = await agent
      .post(`/payments/receipt/${receiptId}/start`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent));
    expect(json.status, json.text.slice(0, 300)).toBe(200);
    expect(await db.prisma.payment.count({ where: { receiptId } })).toBe(1);
  });
});
