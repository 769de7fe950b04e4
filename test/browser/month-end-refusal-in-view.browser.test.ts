import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReceiptRow, buildTiers } from '../support/billing-factories.js';
import {
  type BrowserRig,
  closeRigAndDatabase,
  hasChromium,
  signedInPage,
  startBrowserRig,
} from '../support/browser.js';
import { buildUser } from '../support/factories.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A refused Month-end run (a day in the future, say) put its reason at the top of the billing page,
 * above the totals, the filters and the receipts, and the focus on its date field at the bottom: a
 * keyboard user saw the field focused and nothing saying what was wrong with it. The reason is shown
 * above the Month-end form now, beside the field, as the receipt page shows a refused Mark paid.
 */
describe.skipIf(!hasChromium)('a refused month-end run on the billing page', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    await buildUser(db.prisma, { username: 'finance', role: 'admin', password: 'finance-password' });
    await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
    // A page of receipts between the top of the page and the Month-end form, as a month has.
    for (let index = 0; index < 8; index++) await buildReceiptRow(db, 'alice', { total: '12.50' });
    rig = await startBrowserRig(buildTestApp(db));
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  /** The focused element's id, and whether it and the reason describing it are wholly on the screen. */
  const focusAndReason = async (page: import('playwright-core').Page) =>
    (await page.evaluate(`(() => {
      const field = document.activeElement;
      const reason = document.getElementById(field.getAttribute('aria-describedby') || '');
      const isOnScreen = (el) => { const box = el.getBoundingClientRect(); return box.top >= 0 && box.bottom <= innerHeight; };
      return { focused: field.id, invalid: field.getAttribute('aria-invalid'),
        reason: reason ? reason.textContent.trim().slice(0, 27) : null,
        isReasonInItsSection: reason ? reason.closest('section') === field.closest('section') : false,
        isFieldOnScreen: isOnScreen(field), isReasonOnScreen: reason ? isOnScreen(reason) : false,
        alertsAtTop: document.querySelectorAll('main > .alert.error').length };
    })()`)) as Record<string, unknown>;

  it('shows the reason above the form, beside the focused date it is about, at 1280 and 375 px', async () => {
    for (const width of [1280, 375]) {
      const { context, page } = await signedInPage(rig, 'finance', 'finance-password', {
        viewport: { width, height: 700 },
      });
      await page.goto(`${rig.base}/admin/receipts`);
      await page.fill('#before', '2030-01-31');
      // A day after today: the browser's own check (max) is what a person meets first; skip it to reach the app's.
      await page.evaluate(`document.querySelector('#before').closest('form').noValidate = true`);
      await page.focus('#before');
      await Promise.all([page.waitForEvent('load'), page.keyboard.press('Enter')]);
      expect(await page.title()).toBe('Error: Billing · HPC Billing');
      expect(await focusAndReason(page), `at ${width} px`).toEqual({
        focused: 'before',
        invalid: 'true',
        reason: 'Month-end run not started. ',
        isReasonInItsSection: true,
        isFieldOnScreen: true,
        isReasonOnScreen: true,
        alertsAtTop: 0,
      });
      await context.close();
    }
    expect(await db.prisma.monthEndRun.count()).toBe(0);
  });
});
