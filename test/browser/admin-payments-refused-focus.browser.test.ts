import type express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BrowserRig,
  closeRigAndDatabase,
  hasChromium,
  signedInPage,
  startDummyPaymentsRig,
} from '../support/browser.js';
import { createPayingResearchers, deliverDummy } from '../support/dummy-payments.js';
import { csrfTokenOf, signInAs } from '../support/sign-in.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * A resolution refused for a payment no longer held (another admin resolved it while the form was
 * open) comes back as the payments page with the reason at its top, the payment's card gone. The
 * keyboard's focus was on nothing: a screen reader heard "Error: Payments" and then the page from its
 * start, and Tab went into the header. The reason takes the focus now, as one shown in its card does.
 */
describe.skipIf(!hasChromium)("the payments page's refusal of a payment not listed", { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let app: express.Express;
  let rig: BrowserRig;
  const { researcherWithReceipt, startCheckout, latestPaymentOf } = createPayingResearchers(
    () => ({ db, app }),
    'heldpayer',
  );

  beforeAll(async () => {
    ({ db, app, rig } = await startDummyPaymentsRig({ admin: 'boss' }));
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  it('moves the focus to the reason, by keyboard, at 1280 and 375 px', async () => {
    for (const [index, width] of [1280, 375].entries()) {
      // Held: 1.00 THB received of 10.00 THB due.
      const short = await researcherWithReceipt();
      await startCheckout(short.agent, short.receiptId);
      const payment = await latestPaymentOf(short.receiptId);
      await deliverDummy(app, {
        event_id: `short-pay-${index}`,
        event_type: 'payment.succeeded',
        external_payment_id: payment.externalPaymentId,
        amount_cents: 100,
        currency: 'THB',
      }).expect(200);

      const { context, page } = await signedInPage(rig, 'boss', 'boss-password', { viewport: { width, height: 800 } });
      await page.goto(`${rig.base}/admin/payments`);
      // Meanwhile, in another tab, the payment is resolved.
      const otherTab = await signInAs(app, 'boss', 'boss-password');
      await otherTab
        .post(`/admin/payments/${payment.id}/resolve`)
        .type('form')
        .send({
          outcome: 'dismissed',
          note: 'Settled by bank transfer outside the app.',
          csrf_token: await csrfTokenOf(otherTab),
        })
        .expect(303);

      await page.focus(`#outcome-${payment.id}-refunded`);
      await page.keyboard.press('Space');
      await page.focus(`#note-${payment.id}`);
      await page.keyboard.type('Refunded the 1.00 THB at the provider.');
      await page.keyboard.press('Tab');
      await Promise.all([page.waitForEvent('load'), page.keyboard.press('Enter')]);

      expect(await page.title()).toBe('Error: Payments · HPC Billing');
      // Chromium applies autofocus at a rendering update after load, later on a busy machine (this read
      // null once in a full run); the assertions below still fail if the focus never lands there.
      await page
        .waitForFunction('document.activeElement?.getAttribute("role") === "alert"', undefined, { timeout: 5000 })
        .catch(() => undefined);
      const focused = (await page.evaluate(
        `(() => { const el = document.activeElement; const box = el.getBoundingClientRect();
          return { role: el.getAttribute('role'), text: el.textContent.trim(), isOnScreen: box.top >= 0 && box.bottom <= innerHeight }; })()`,
      )) as { role: string | null; text: string; isOnScreen: boolean };
      expect(focused.role, `at ${width} px`).toBe('alert');
      expect(focused.text).toMatch(new RegExp(`^Payment #${payment.id} was already resolved \\(dismissed\\) by boss`));
      expect(focused.isOnScreen).toBe(true);
      await context.close();
    }
  });
});
