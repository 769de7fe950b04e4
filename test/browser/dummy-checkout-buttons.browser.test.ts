import type express from 'express';
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
 * The demo provider's checkout offers Pay, Fail the payment and Cancel. Each button took a share of the card's
 * width as a form field does: at 1280 px Pay sat at the left, Fail near the middle and Cancel alone
 * on a second line, and on a phone each had a line of its own. They are one row of buttons.
 */
describe.skipIf(!hasChromium)("the demo provider's checkout buttons", { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let app: express.Express;
  let rig: BrowserRig;

  beforeAll(async () => {
    ({ db, app, rig } = await startDummyPaymentsRig());
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  it.each([
    ['desktop', { width: 1280, height: 900 }],
    ['phone', { width: 390, height: 844 }],
  ])('puts Pay, Fail the payment and Cancel side by side on one line (%s)', async (label, viewport) => {
    const { user, agent, receiptId } = await researcherWithReceiptOf(app, db, `checkout_${label}`, 4);
    const checkout = await startCheckout(agent, receiptId);
    const context = await rig.browser.newContext({ viewport });
    try {
      const page = await context.newPage();
      await signInThroughPage(page, rig.base, user.username, user.password);
      await page.goto(`${rig.base}${checkout}`);
      const boxes = [];
      for (const choice of ['pay', 'fail', 'cancel']) {
        const box = await page.locator(`button[name=choice][value=${choice}]`).boundingBox();
        expect(box, choice).not.toBeNull();
        boxes.push(box as { x: number; y: number; width: number; height: number });
      }
      const [pay, fail, cancel] = boxes as [(typeof boxes)[0], (typeof boxes)[0], (typeof boxes)[0]];
      expect([fail.y, cancel.y]).toEqual([pay.y, pay.y]);
      // Next to each other, as buttons in a row are: not spread over the card.
      expect(fail.x - (pay.x + pay.width)).toBeLessThan(24);
      expect(cancel.x - (fail.x + fail.width)).toBeLessThan(24);
      expect(fail.x).toBeGreaterThan(pay.x + pay.width);
      expect(cancel.x).toBeGreaterThan(fail.x + fail.width);
      // Each name on one line (as tall as Pay's), and the row within its card: "Fail the payment" wrapped
      // onto two lines inside its button at 390 px.
      expect([fail.height, cancel.height]).toEqual([pay.height, pay.height]);
      const card = await page.locator('main section.card').boundingBox();
      expect(cancel.x + cancel.width).toBeLessThanOrEqual((card?.x ?? 0) + (card?.width ?? 0));
    } finally {
      await context.close();
    }
  });

  it('keeps every button on a 360 px phone, Cancel on a line of its own under the others', async () => {
    // Kept on one line whatever the width, the row ran 8 px past a 360 px screen: Cancel was cut at its edge
    // and the whole page scrolled sideways.
    const { user, agent, receiptId } = await researcherWithReceiptOf(app, db, 'checkout_narrow', 4);
    const checkout = await startCheckout(agent, receiptId);
    const context = await rig.browser.newContext({ viewport: { width: 360, height: 740 } });
    try {
      const page = await context.newPage();
      await signInThroughPage(page, rig.base, user.username, user.password);
      await page.goto(`${rig.base}${checkout}`);
      expect(await page.evaluate('document.documentElement.scrollWidth - window.innerWidth')).toBe(0);
      const card = await page.locator('main section.card').boundingBox();
      const cardRight = (card?.x ?? 0) + (card?.width ?? 0);
      const boxes: Record<string, { x: number; y: number; width: number; height: number }> = {};
      for (const choice of ['pay', 'fail', 'cancel']) {
        const box = await page.locator(`button[name=choice][value=${choice}]`).boundingBox();
        if (!box) throw new Error(`no ${choice} button`);
        expect(box.x + box.width, choice).toBeLessThanOrEqual(cardRight);
        boxes[choice] = box;
      }
      expect(boxes.fail?.y).toBe(boxes.pay?.y);
      expect(boxes.cancel?.y).toBeGreaterThan((boxes.pay?.y ?? 0) + (boxes.pay?.height ?? 0));
      expect(boxes.cancel?.x).toBe(boxes.pay?.x);
    } finally {
      await context.close();
    }
  });
});
