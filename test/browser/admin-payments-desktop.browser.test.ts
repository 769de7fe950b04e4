import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type express from 'express';
import type { Locator } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/shared/paths.js';
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
 * The payments page's list of every payment, on a 1280 px desktop: twelve columns, with what was
 * received or refunded and its note on one line, were half as wide again as the page, so why each
 * payment was held and how it was resolved (the columns a finance admin opens the page for) were
 * past the right edge behind a sideways scroll, the reason squeezed to a word a line.
 */
const ARTIFACTS = path.join(PROJECT_ROOT, 'test-artifacts', 'browser');

describe.skipIf(!hasChromium)('the payments page on a desktop', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let app: express.Express;
  let rig: BrowserRig;
  let base: string;
  const { paidOnline, researcherWithReceipt, startCheckout, latestPaymentOf } = createPayingResearchers(
    () => ({ db, app }),
    'payer',
  );
  // Login names of 34 characters: two words, and a word of 32 letters after a short one.
  const longNamed = createPayingResearchers(() => ({ db, app }), 'srinivasaraghavan_venkatanarayana');
  const longWorded = createPayingResearchers(() => ({ db, app }), 'x_abcdefghijklmnopqrstuvwxyzabcde');

  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    ({ db, app, rig } = await startDummyPaymentsRig({ env: { APP_TZ: 'Asia/Bangkok' }, admin: 'boss' }));
    ({ base } = rig);
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  it('shows why each payment was held and how it was resolved on screen, without scrolling sideways', async () => {
    // Held: 3.00 of its 10.00 THB refunded at the provider while its receipt stays paid.
    const refunded = await paidOnline();
    await deliverDummy(app, {
      event_id: 'refund-part',
      event_type: 'payment.refunded',
      external_payment_id: refunded.payment.externalPaymentId,
      amount_cents: 300,
      currency: 'THB',
    }).expect(200);
    // Resolved: 1.00 THB received of 10.00 THB due, refunded by the admin.
    const short = await researcherWithReceipt();
    await startCheckout(short.agent, short.receiptId);
    const shortPayment = await latestPaymentOf(short.receiptId);
    await deliverDummy(app, {
      event_id: 'short-pay',
      event_type: 'payment.succeeded',
      external_payment_id: shortPayment.externalPaymentId,
      amount_cents: 100,
      currency: 'THB',
    }).expect(200);
    const admin = await signInAs(app, 'boss', 'boss-password');
    const note = 'refunded the 1.00 THB in the provider dashboard, ref R-20261203-0042';
    await admin
      .post(`/admin/payments/${shortPayment.id}/resolve`)
      .type('form')
      .send({ outcome: 'refunded', note, csrf_token: await csrfTokenOf(admin) })
      .expect(303);

    const { context, page } = await signedInPage(rig, 'boss', 'boss-password', {
      viewport: { width: 1280, height: 900 },
    });
    for (const width of [1280, 390]) {
      await page.setViewportSize({ width, height: 900 });
      await page.goto(`${base}/admin/payments`);
      const list = page.locator('.table-wrap:has(caption:text-is("All payments"))');
      const [scrollWidth, clientWidth] = (await list.evaluate((element) => [
        element.scrollWidth,
        element.clientWidth,
      ])) as number[];
      expect(scrollWidth, `All payments at ${width} px`).toBeLessThanOrEqual(clientWidth ?? 0);
      for (const text of [
        `3.00 THB of the 10.00 THB received was refunded at dummy; receipt #${refunded.receiptId} stays paid`,
        'paid 1.00 THB but 10.00 THB was due',
        note,
      ]) {
        const shown = list.getByText(text);
        const box = await shown.boundingBox();
        expect(box, `${text} at ${width} px`).not.toBeNull();
        expect(box?.x ?? -1, `${text} at ${width} px`).toBeGreaterThanOrEqual(0);
        // Wrapped within the screen: no word of it past the right edge.
        expect((box?.x ?? 0) + (box?.width ?? Number.POSITIVE_INFINITY), `${text} at ${width} px`).toBeLessThanOrEqual(
          width,
        );
        expect(box?.width ?? 0, `${text} at ${width} px is not squeezed to a word a line`).toBeGreaterThan(
          width === 1280 ? 400 : 200,
        );
      }
      await page.screenshot({ path: path.join(ARTIFACTS, `admin-payments-desktop-${width}.png`), fullPage: true });
    }
    await context.close();
  });

  /** How many lines the day (2026-12-04) of a cell's date and time takes on the screen. */
  function linesOfDay(cell: Locator) {
    return cell.evaluate((element) => {
      // 4: NodeFilter.SHOW_TEXT (this file is typed without the DOM's globals).
      const walker = element.ownerDocument.createTreeWalker(element, 4);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const day = /\d{4}-\d\d-\d\d/.exec(node.textContent ?? '');
        if (!day) continue;
        const range = element.ownerDocument.createRange();
        range.setStart(node, day.index);
        range.setEnd(node, day.index + day[0].length);
        return new Set([...range.getClientRects()].map((rect) => Math.round(rect.top))).size;
      }
      return 0;
    });
  }

  it('keeps every column of All payments on a 1280 px screen beside 34-character login names, each name whole', async () => {
    const admin = await signInAs(app, 'boss', 'boss-password');
    const named = [
      await longNamed.paidOnline(),
      await longNamed.paidShortAndAccepted(admin, 750),
      await longWorded.paidOnline(),
    ];
    const refunded = await longNamed.paidOnline();
    await deliverDummy(app, {
      event_id: 'refund-long-name',
      event_type: 'payment.refunded',
      external_payment_id: refunded.payment.externalPaymentId,
      amount_cents: 250,
      currency: 'THB',
    }).expect(200);
    named.push(refunded);
    expect(named.map(({ user }) => user.username.length)).toEqual([34, 34, 34, 34]);

    const { context, page } = await signedInPage(rig, 'boss', 'boss-password', {
      viewport: { width: 1280, height: 900 },
    });
    for (const width of [1280, 375]) {
      await page.setViewportSize({ width, height: 900 });
      await page.goto(`${base}/admin/payments`);
      const list = page.locator('.table-wrap:has(caption:text-is("All payments"))');
      const [scrollWidth, clientWidth] = (await list.evaluate((element) => [
        element.scrollWidth,
        element.clientWidth,
      ])) as number[];
      expect(scrollWidth, `All payments at ${width} px`).toBeLessThanOrEqual(clientWidth ?? 0);
      // Nor does the page: the held payment's heading names its payer too.
      const pageWidth = (await page.evaluate('document.documentElement.scrollWidth')) as number;
      expect(pageWidth, `the page at ${width} px`).toBeLessThanOrEqual(width);
      const heading = page.locator(`#review-${refunded.payment.id} h3`);
      expect((await heading.innerText()).replace(/\s/g, '')).toContain(`of${refunded.user.username}`);
      for (const { user, receiptId } of named) {
        const name = user.username;
        const row = list.locator(`tbody tr:has(a[href="/admin/receipts/${receiptId}"])`);
        // The whole name is on the page, broken (if at all) across lines, never cut.
        const shown = (await row.locator('td[data-label="User"]').innerText()).replace(/\s/g, '');
        expect(shown, `${name} at ${width} px`).toBe(name);
        const updatedCell = row.locator('td[data-label="Updated"]');
        const updated = await updatedCell.boundingBox();
        expect(
          (updated?.x ?? 0) + (updated?.width ?? Number.POSITIVE_INFINITY),
          `Updated at ${width} px`,
        ).toBeLessThanOrEqual(width);
        // Wrapped, if at all, between the day and the time: never "2026-12-" above "04 10:28".
        expect(await linesOfDay(updatedCell), `the day Updated at ${width} px`).toBe(1);
        // And the time follows the day, a space apart: on a phone's card it was pushed to the far right.
        const [day, time] = await updatedCell
          .locator('span.nowrap')
          .evaluateAll((parts) => parts.map((part) => part.getBoundingClientRect()));
        if (day && time && Math.abs(day.top - time.top) < 2) {
          expect(time.left - day.right, `the time after the day at ${width} px`).toBeLessThan(10);
        }
      }
      const refundedCell = list.locator(
        `tbody tr:has(a[href="/admin/receipts/${refunded.receiptId}"]) td[data-label="Refunded"]`,
      );
      expect((await refundedCell.innerText()).replace(/\s+/g, ' ')).toMatch(
        /^2\.50 THB \(\d{4}-\d\d-\d\d \d\d:\d\d\)$/,
      );
      expect(await linesOfDay(refundedCell), `the day refunded at ${width} px`).toBe(1);
      await page.screenshot({ path: path.join(ARTIFACTS, `admin-payments-long-names-${width}.png`), fullPage: true });
    }
    await context.close();
  });
});
