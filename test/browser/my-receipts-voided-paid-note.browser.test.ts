import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import {
  type BrowserRig,
  closeRigAndDatabase,
  hasChromium,
  signInThroughPage,
  startBrowserRig,
} from '../support/browser.js';
import {
  billJobs,
  markPaidByHandAsJson,
  researcherWithReceiptOf,
  voidReceiptAsJson,
} from '../support/receipt-steps.js';
import { type Agent, signInNewAdmin } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * My receipts marks a pending receipt that bills again jobs of a receipt voided after it was paid by
 * hand, under its status, with a link to the notice on the receipt's page. The marker is a sentence:
 * it must wrap inside the Status cell (at 1280 px and in a phone's card), not push the table into a
 * sideways scroll, and its link must open the receipt at the notice. The printable receipt prints it.
 */
describe.skipIf(!hasChromium)('the voided-paid-by-hand marker on My receipts', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let app: ReturnType<typeof buildTestApp>;
  let admin: Agent;
  let rig: BrowserRig;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    app = buildTestApp(db);
    admin = await signInNewAdmin(app, db, 'marknote');
    rig = await startBrowserRig(app);
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  let made = 0;
  /** A researcher whose receipt was paid by bank transfer, voided, and billed again: the new receipt pending. */
  async function researcherBilledAgain() {
    made += 1;
    const { user, agent, receiptId: voidedId } = await researcherWithReceiptOf(app, db, `marknote${made}`, 3);
    await markPaidByHandAsJson(admin, db, voidedId, `BT-MARK-${made}`);
    await voidReceiptAsJson(admin, voidedId, 'billed on the wrong tier');
    return { user, voidedId, againId: await billJobs(agent) };
  }

  it.each([
    ['at 1280 px', { width: 1280, height: 800 }],
    ['on a phone', { width: 375, height: 800 }],
  ])('stays within the screen %s and opens the receipt at its notice', async (_, viewport) => {
    const { user, voidedId, againId } = await researcherBilledAgain();
    const context = await rig.browser.newContext({ viewport });
    try {
      const page = await context.newPage();
      await signInThroughPage(page, rig.base, user.username, user.password);
      await page.goto(`${rig.base}/me/receipts`);
      const layout = (await page.evaluate(`(() => {
        const link = document.querySelector('main a[href="/me/receipts/${againId}#same-jobs-voided-paid-by-hand"]');
        const cell = link.closest('td');
        const badge = cell.querySelector('.badge');
        const wrap = document.querySelector('main .table-wrap');
        return {
          label: cell.dataset.label,
          text: link.textContent.replace(/\\s+/g, ' ').trim(),
          cellRight: cell.getBoundingClientRect().right,
          linkRight: link.getBoundingClientRect().right,
          badgeHeight: badge.getBoundingClientRect().height,
          lineHeight: parseFloat(getComputedStyle(badge).lineHeight) || 20,
          scrolls: wrap.scrollWidth > wrap.clientWidth,
          width: window.innerWidth,
        };
      })()`)) as {
        label: string;
        text: string;
        cellRight: number;
        linkRight: number;
        badgeHeight: number;
        lineHeight: number;
        scrolls: boolean;
        width: number;
      };
      expect(layout.label).toBe('Status');
      expect(layout.text).toBe(
        `money paid by hand on receipt #${voidedId}, voided since, may pay for this receipt: ask your billing office before you pay for these jobs again`,
      );
      expect(layout.scrolls).toBe(false);
      expect(layout.cellRight).toBeLessThanOrEqual(layout.width);
      expect(layout.linkRight).toBeLessThanOrEqual(layout.cellRight);
      // The badge on one line: "pending" broken into "pe/ndi/ng" is three lines tall.
      expect(layout.badgeHeight).toBeLessThan(layout.lineHeight * 2);

      await Promise.all([
        page.waitForURL(`${rig.base}/me/receipts/${againId}#same-jobs-voided-paid-by-hand`),
        page.click(`main a[href="/me/receipts/${againId}#same-jobs-voided-paid-by-hand"]`),
      ]);
      const notice = page.locator('#same-jobs-voided-paid-by-hand');
      expect(await notice.isVisible()).toBe(true);
      expect(await notice.textContent()).toContain('ask your billing office before you pay for these jobs again.');
      const box = await notice.boundingBox();
      // Scrolled to the notice: its top at the screen's (to within a sub-pixel), not below the fold.
      expect(box?.y ?? -1).toBeGreaterThan(-1);
      expect(box?.y ?? Number.POSITIVE_INFINITY).toBeLessThan(viewport.height);
    } finally {
      await context.close();
    }
  });

  it('is printed on the printable receipt', async () => {
    const { user, voidedId, againId } = await researcherBilledAgain();
    const context = await rig.browser.newContext({ viewport: { width: 1280, height: 900 } });
    // The printable list opens the print dialog by itself; headless chromium has none to wait on.
    await context.addInitScript({ content: 'window.print = () => {};' });
    try {
      const page = await context.newPage();
      await signInThroughPage(page, rig.base, user.username, user.password);
      await page.goto(`${rig.base}/me/receipts/${againId}/print`);
      await page.emulateMedia({ media: 'print' });
      const notice = page.locator('#same-jobs-voided-paid-by-hand');
      expect(await notice.isVisible()).toBe(true);
      expect(await notice.textContent()).toContain(`Receipt #${voidedId}, which billed some of these jobs`);
    } finally {
      await context.close();
    }
  });
});
