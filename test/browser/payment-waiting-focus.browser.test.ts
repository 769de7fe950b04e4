import type express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BrowserRig,
  closeRigAndDatabase,
  hasChromium,
  signInThroughPage,
  startDummyPaymentsRig,
} from '../support/browser.js';
import { deliverDummy } from '../support/dummy-payments.js';
import { researcherWithReceiptOf, startCheckout } from '../support/receipt-steps.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * The payment status page waits for the provider's confirmation. It reloaded itself every 2 s (a
 * meta refresh), and each reload put the keyboard's focus back at the top of the page: a keyboard
 * or screen-reader user could never reach "go back to the payment page" or "Open the receipt"
 * while it waited, and a screen reader read the page again every 2 s. Now a script asks for the
 * payment's state and only loads the page again once it has changed.
 */
describe.skipIf(!hasChromium)('the payment status page while it waits', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let app: express.Express;
  let rig: BrowserRig;

  beforeAll(async () => {
    ({ db, app, rig } = await startDummyPaymentsRig());
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  it('keeps the focus on a link while it waits, and moves on once the provider confirms', async () => {
    const { user, agent, receiptId } = await researcherWithReceiptOf(app, db, 'waitfocus', 20);
    const checkout = await startCheckout(agent, receiptId);
    const context = await rig.browser.newContext();
    try {
      const page = await context.newPage();
      await signInThroughPage(page, rig.base, user.username, user.password);
      // The page's own clock, running at the real pace until the test moves it on (below).
      await page.clock.install();
      await page.goto(`${rig.base}/payments/thanks?rid=${receiptId}`);
      await page.waitForSelector('text=Waiting for the payment provider to confirm');
      let loads = 0;
      page.on('load', () => {
        loads += 1;
      });
      await page.focus(`a[href="${checkout}"]`);

      // Two checks of the payment's state, or the page loading again (the old meta refresh, at 2 s).
      const isStatusCheck = (url: string) => url.includes(`/payments/receipt/${receiptId}/status`);
      const checks = (async () => {
        await page.waitForResponse((response) => isStatusCheck(response.url()));
        await page.waitForResponse((response) => isStatusCheck(response.url()));
      })();
      await Promise.race([checks, page.waitForEvent('load')]);
      expect(loads).toBe(0);
      const focused = await page.evaluate('document.activeElement && document.activeElement.textContent');
      expect(focused).toBe('go back to the payment page');
      // Said politely, not by reading the whole page again.
      const progress = await page.textContent('[aria-live="polite"]#payment-wait-progress');
      expect(progress).toMatch(/Still waiting for the payment provider/);

      const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId }, orderBy: { id: 'desc' } });
      await deliverDummy(app, {
        event_id: `waitfocus_${payment.id}`,
        event_type: 'payment.succeeded',
        external_payment_id: payment.externalPaymentId,
        amount_cents: 1000,
        currency: 'THB',
      }).expect(200);
      // The third check was 8 s away, time the test only waited out: the page's clock skips it
      // (the first two checks above ran at the real pace, while a meta refresh would have shown).
      await page.clock.fastForward(30_000);
      await page.waitForSelector('text=Paid. Thank you.', { timeout: 60_000 });
      expect(page.url()).toBe(`${rig.base}/payments/thanks?rid=${receiptId}`);
    } finally {
      await context.close();
    }
  });

  it('still loads itself again in a browser without JavaScript', async () => {
    const { user, agent, receiptId } = await researcherWithReceiptOf(app, db, 'waitnoscript', 20);
    await startCheckout(agent, receiptId);
    const context = await rig.browser.newContext({ javaScriptEnabled: false });
    try {
      const page = await context.newPage();
      await signInThroughPage(page, rig.base, user.username, user.password);
      await page.goto(`${rig.base}/payments/thanks?rid=${receiptId}`);
      await page.waitForSelector('text=Waiting for the payment provider to confirm');
      // The meta refresh inside <noscript> applies when scripts do not run.
      await page.waitForEvent('load');
      expect(page.url()).toBe(`${rig.base}/payments/thanks?rid=${receiptId}`);
    } finally {
      await context.close();
    }
  });
});
