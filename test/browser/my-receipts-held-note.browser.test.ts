import type express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BrowserRig,
  closeRigAndDatabase,
  hasChromium,
  signInThroughPage,
  startDummyPaymentsRig,
} from '../support/browser.js';
import { createPayingResearchers, deliverDummy } from '../support/dummy-payments.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * My receipts says under a receipt's status that its payment is held for review. On one line (the
 * table's cells do not wrap) the note ran past a 1280 px screen's edge, cut off behind a sideways
 * scroll; on a phone it must stay in the card and leave the status badge whole.
 */
describe.skipIf(!hasChromium)('the held-payment note on My receipts', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let app: express.Express;
  let rig: BrowserRig;

  beforeAll(async () => {
    ({ db, app, rig } = await startDummyPaymentsRig());
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  const { paidOnline } = createPayingResearchers(() => ({ db, app }), 'heldnote');

  it.each([
    ['at 1280 px', { width: 1280, height: 800 }],
    ['on a phone', { width: 375, height: 800 }],
  ])('stays within the screen %s', async (_, viewport) => {
    const { user, payment } = await paidOnline();
    await deliverDummy(app, {
      event_id: `heldnote_${payment.id}`,
      event_type: 'payment.refunded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 1000,
      currency: 'THB',
    }).expect(200);
    await deliverDummy(app, {
      event_id: `heldnote_dispute_${payment.id}`,
      event_type: 'payment.disputed',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 1000,
      currency: 'THB',
      dispute_id: `dp_heldnote_${payment.id}`,
    }).expect(200);

    const context = await rig.browser.newContext({ viewport });
    try {
      const page = await context.newPage();
      await signInThroughPage(page, rig.base, user.username, user.password);
      await page.goto(`${rig.base}/me/receipts`);
      const layout = (await page.evaluate(`(() => {
        const cell = document.querySelector('main td[data-label="Status"]');
        const badge = cell.querySelector('.badge');
        const wrap = document.querySelector('main .table-wrap');
        return {
          text: cell.textContent.replace(/\\s+/g, ' ').trim(),
          cellRight: cell.getBoundingClientRect().right,
          badgeHeight: badge.getBoundingClientRect().height,
          lineHeight: parseFloat(getComputedStyle(badge).lineHeight) || 20,
          scrolls: wrap.scrollWidth > wrap.clientWidth,
          width: window.innerWidth,
        };
      })()`)) as {
        text: string;
        cellRight: number;
        badgeHeight: number;
        lineHeight: number;
        scrolls: boolean;
        width: number;
      };
      expect(layout.text).toContain('payment being checked by the billing team; not payable online meanwhile');
      expect(layout.scrolls).toBe(false);
      expect(layout.cellRight).toBeLessThanOrEqual(layout.width);
      // The badge on one line: "pending" broken into "pe/ndi/ng" is three lines tall.
      expect(layout.badgeHeight).toBeLessThan(layout.lineHeight * 2);
    } finally {
      await context.close();
    }
  });
});
