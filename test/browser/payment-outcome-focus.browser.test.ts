import type express from 'express';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BrowserRig,
  closeRigAndDatabase,
  hasChromium,
  signInThroughPage,
  startDummyPaymentsRig,
} from '../support/browser.js';
import { researcherWithReceiptOf, startCheckout } from '../support/receipt-steps.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * The checkout sends the payer back to /payments/thanks, which tells the outcome ("Paid. Thank you.",
 * "The payment was canceled. You can try again.") in a status region already on the page as it loads,
 * with the keyboard's focus at the page's top: a screen reader announces a status's changes, not its
 * first content, so it said nothing of whether the payment had gone through. The outcome now takes the
 * focus as a flash does (flash-focus.js), and so does the wait for the provider, which then loads the
 * page again with the outcome.
 */
describe.skipIf(!hasChromium)("the payment status page's outcome", { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let app: express.Express;
  let rig: BrowserRig;

  beforeAll(async () => {
    ({ db, app, rig } = await startDummyPaymentsRig());
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  /** The element holding the focus: its role and its text. */
  const focused = (page: Page) =>
    page.evaluate(
      `(() => { const el = document.activeElement; return (el.getAttribute('role') ?? el.tagName.toLowerCase()) + ' ' + (el.textContent ?? '').trim(); })()`,
    ) as Promise<string>;

  it.each([
    ['Pay', 'status Paid. Thank you.'],
    ['Cancel', 'status The payment was canceled. You can try again.'],
    ['Fail the payment', 'alert The payment failed. Nothing was charged; you can try again.'],
  ])('gives the focus to what %s did, once the checkout sends the payer back', async (choice, told) => {
    const username = `outcome_${choice.split(' ')[0]?.toLowerCase()}`;
    const { user, receiptId } = await researcherWithReceiptOf(app, db, username, 4);
    const context = await rig.browser.newContext();
    try {
      const page = await context.newPage();
      await signInThroughPage(page, rig.base, user.username, user.password);
      await page.goto(`${rig.base}/me/receipts/${receiptId}`);
      // The keyboard's way: Pay's button focused, Enter; on the checkout, the choice's button, Enter.
      await page.getByRole('button', { name: 'Pay 2.00 THB online' }).focus();
      await Promise.all([page.waitForURL(/\/payments\/dummy\/checkout\//), page.keyboard.press('Enter')]);
      await page.getByRole('button', { name: choice, exact: true }).focus();
      await Promise.all([page.waitForURL(/\/payments\/thanks\?rid=/), page.keyboard.press('Enter')]);
      await page.waitForLoadState('load');
      await expect.poll(() => focused(page)).toBe(told);
    } finally {
      await context.close();
    }
  });

  it('gives the focus to the wait for the provider, as the page opens', async () => {
    const { user, agent, receiptId } = await researcherWithReceiptOf(app, db, 'outcome_wait', 4);
    await startCheckout(agent, receiptId);
    const context = await rig.browser.newContext();
    try {
      const page = await context.newPage();
      await signInThroughPage(page, rig.base, user.username, user.password);
      await page.goto(`${rig.base}/payments/thanks?rid=${receiptId}`);
      await expect
        .poll(() => focused(page))
        .toBe('status Waiting for the payment provider to confirm… this page updates by itself.');
    } finally {
      await context.close();
    }
  });
});
