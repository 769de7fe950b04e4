import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpDummyPayments } from '../support/dummy-payments.js';
import { researcherWithReceiptOf, startCheckout } from '../support/receipt-steps.js';
import { type Agent, csrfTokenOf } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * A payment that failed sends the payer to the status page, whose Try again opens a new checkout.
 * Pressing Back there (or opening the status page from history while a checkout is open) showed
 * "Waiting for the payment provider to confirm… this page refreshes by itself" (it then was), refreshing every
 * 2 seconds for as long as the page stayed open, for a payment the payer never made, and offered
 * no way back to the checkout: only the receipt's page. The status page now says how to go on
 * paying, with a link to the open checkout, while it waits.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;

beforeAll(async () => {
  ({ db, app } = await setUpDummyPayments());
});
afterAll(() => db?.drop());

async function choose(agent: Agent, checkoutPath: string, choice: 'pay' | 'fail' | 'cancel') {
  const chosen = await agent
    .post(checkoutPath)
    .type('form')
    .send({ choice, csrf_token: await csrfTokenOf(agent) });
  expect(chosen.status, chosen.text.slice(0, 200)).toBe(303);
  return chosen.headers.location as string;
}

describe('the payment status page while a checkout is open', () => {
  it('links to the open checkout after Try again and Back', async () => {
    const { agent, receiptId } = await researcherWithReceiptOf(app, db, 'tryagain', 4);
    const first = await startCheckout(agent, receiptId);
    const thanks = await choose(agent, first, 'fail');
    expect(thanks).toBe(`/payments/thanks?rid=${receiptId}`);
    const failed = await agent.get(thanks).set('Accept', 'text/html').expect(200);
    expect(failed.text).toContain('The payment failed. Nothing was charged; you can try again.');

    // Try again, then Back to the status page: the new checkout is open, nothing is paid.
    const second = await startCheckout(agent, receiptId);
    expect(second).not.toBe(first);
    const back = await agent.get(thanks).set('Accept', 'text/html').expect(200);
    expect(back.text).toContain('Waiting for the payment provider to confirm');
    expect(back.text).toContain(
      `Not paid yet? If you left the payment page before paying, <a href="${second}">go back to the payment page</a>.`,
    );

    // Paid there, the page says so and no longer offers the checkout.
    await choose(agent, second, 'pay');
    const paid = await agent.get(thanks).set('Accept', 'text/html').expect(200);
    expect(paid.text).toContain('Paid. Thank you.');
    expect(paid.text).not.toContain('go back to the payment page');
  });
});
