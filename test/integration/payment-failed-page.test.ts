import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs } from '../support/billing-factories.js';
import { setUpDummyPaymentsApp } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * A researcher who pressed the demo checkout's fail button came back to a page titled "Payment status",
 * its "The payment failed." a polite role="status": a screen reader announced the title as the page
 * loaded and read the failure only when it came to it. Every other page telling an error starts its
 * title with "Error: " and says the error as an alert (role="alert"); the failed payment's page does
 * too, and so does a start that was interrupted. A canceled payment is the payer's own choice, not an
 * error: its page stays as it was.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;

beforeAll(async () => {
  ({ db, app } = await setUpDummyPaymentsApp('failedpage'));
});
afterAll(() => db?.drop());

let payerCount = 0;
/** A new researcher at the dummy checkout of their receipt's first payment. */
async function atCheckout(): Promise<{ agent: Agent; receiptId: number; checkoutPath: string }> {
  payerCount += 1;
  const username = `payer${payerCount}`;
  await buildUser(db.prisma, { username, password: `${username}-password` });
  await buildJobs(db, [{ user: username, end: '2026-01-10T10:00:00Z' }]);
  const agent = await signInAs(app, username, `${username}-password`);
  const created = await agent
    .post('/me/receipt')
    .type('form')
    .send({ before: '2026-01-31', csrf_token: await csrfTokenOf(agent) })
    .expect(303);
  const receiptId = Number(/\/me\/receipts\/(\d+)/.exec(created.headers.location ?? '')?.[1]);
  const started = await agent
    .post(`/payments/receipt/${receiptId}/start`)
    .type('form')
    .send({ csrf_token: await csrfTokenOf(agent) })
    .expect(303);
  return { agent, receiptId, checkoutPath: started.headers.location as string };
}

async function statusPageOf(agent: Agent, receiptId: number): Promise<string> {
  return (await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html').expect(200)).text;
}

const titleOf = (html: string) => /<title>([^<]*)<\/title>/.exec(html)?.[1];

describe('the payment status page of a failed payment', () => {
  it('starts its title with "Error: " and tells the failure as an alert', async () => {
    const { agent, receiptId, checkoutPath } = await atCheckout();
    await agent
      .post(checkoutPath)
      .type('form')
      .send({ choice: 'fail', csrf_token: await csrfTokenOf(agent) })
      .expect(303);
    const html = await statusPageOf(agent, receiptId);
    expect(titleOf(html)).toMatch(/^Error: Payment status · /);
    expect(html).toContain(
      '<div class="alert error" role="alert">The payment failed. Nothing was charged; you can try again.</div>',
    );
  });

  it('does the same for a start interrupted before the checkout opened', async () => {
    const { agent, receiptId } = await atCheckout();
    // The process died between saving the payment and attaching its checkout, over a minute ago.
    await db.prisma.payment.updateMany({
      where: { receiptId },
      data: { checkoutUrl: null, externalPaymentId: null, createdAt: new Date(Date.now() - 5 * 60_000) },
    });
    const html = await statusPageOf(agent, receiptId);
    expect(titleOf(html)).toMatch(/^Error: Payment status · /);
    expect(html).toContain('<div class="alert error" role="alert">The payment could not be started:');
  });

  it('keeps a canceled payment a polite status, its title without "Error: "', async () => {
    const { agent, receiptId, checkoutPath } = await atCheckout();
    await agent
      .post(checkoutPath)
      .type('form')
      .send({ choice: 'cancel', csrf_token: await csrfTokenOf(agent) })
      .expect(303);
    const html = await statusPageOf(agent, receiptId);
    expect(titleOf(html)).toMatch(/^Payment status · /);
    expect(html).toContain('<div class="alert warning" role="status">The payment was canceled.');
  });
});
