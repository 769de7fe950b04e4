import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type express from 'express';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/shared/paths.js';
import { buildTiers } from '../support/billing-factories.js';
import { type BrowserRig, hasChromium, signInThroughPage, startBrowserRig } from '../support/browser.js';
import { createPayingResearchers, DUMMY_PAYMENTS_ENV, deliverDummy } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

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
  let browser: Browser;
  let base: string;
  const { paidOnline, researcherWithReceipt, startCheckout, latestPaymentOf } = createPayingResearchers(
    () => ({ db, app }),
    'payer',
  );

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
    app = buildTestApp(db, { env: { ...DUMMY_PAYMENTS_ENV, APP_TZ: 'Asia/Bangkok' } });
    await mkdir(ARTIFACTS, { recursive: true });
    rig = await startBrowserRig(app);
    ({ browser, base } = rig);
  });

  afterAll(async () => {
    await rig?.close();
    await db?.drop();
  });

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

    for (const width of [1280, 390]) {
      const context = await browser.newContext({ viewport: { width, height: 900 } });
      const page = await context.newPage();
      await signInThroughPage(page, base, 'boss', 'boss-password');
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
      await context.close();
    }
  });
});
