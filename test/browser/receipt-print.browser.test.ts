import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toLocalDate } from '../../src/shared/local-date.js';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import {
  type BrowserRig,
  closeRigAndDatabase,
  datesSplitAcrossLines,
  hasChromium,
  signInThroughPage,
  startBrowserRig,
} from '../support/browser.js';
import { buildUser } from '../support/factories.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A receipt on paper: every column, the cost above all, must be on the page. On screen a
 * table wider than its card scrolls sideways; on paper nothing scrolls, and the columns past
 * the page's edge were simply not printed (Mem GB·h, Cost and the total under them).
 */
const TIME_ZONE = 'Asia/Bangkok';
// A4 (210 mm) less the print dialog's default margins of about 1 cm a side, at 96 px an inch.
const A4_PRINTABLE_PX = Math.floor(((210 - 2 * 10) / 25.4) * 96);
// Letter (8.5 in) less the same margins.
const LETTER_PRINTABLE_PX = Math.floor((8.5 - 2 * (10 / 25.4)) * 96);
// The same across the paper (a page named wide, @page wide { size: landscape }).
const A4_LANDSCAPE_PRINTABLE_PX = Math.floor(((297 - 2 * 10) / 25.4) * 96);
const LETTER_LANDSCAPE_PRINTABLE_PX = Math.floor((11 - 2 * (10 / 25.4)) * 96);

describe.skipIf(!hasChromium)('a receipt printed on paper', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    await buildUser(db.prisma, { username: 'paula', password: 'paula-password' });
    const dayAgo = Date.now() - 86_400_000;
    await buildJobs(db, [
      // Wide figures: thousands of core-hours and GPU-hours, a cost in the tens of thousands.
      { user: 'paula', end: new Date(dayAgo), totalCpuSec: String(4321 * 3600), allocGpus: 4, elapsedSec: 300 * 3600 },
      // A Slurm job name is whatever the user typed, without a space to break it at.
      { user: 'paula', end: new Date(dayAgo - 60_000), name: 'relax_structure_with_high_cutoff_and_dense_kpoints' },
      { user: 'paula', end: new Date(dayAgo - 120_000), name: 'md-run' },
    ]);
    rig = await startBrowserRig(buildTestApp(db, { env: { APP_TZ: TIME_ZONE } }));
    ({ browser, base } = rig);
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  /**
   * How far each table's content reaches past what its wrapper shows, and whether each cost cell
   * is shown (labelled "Cost" on a receipt, "Cost (THB)", with its currency, on My usage).
   */
  async function measurePrinted(page: Page) {
    return (await page.evaluate(`(() => {
      const wraps = [...document.querySelectorAll('.table-wrap')];
      const hidden = [];
      for (const wrap of wraps) {
        const right = wrap.getBoundingClientRect().right;
        const cells = wrap.querySelectorAll('td[data-label^="Cost"], tfoot :is(th, td):last-child');
        for (const cell of cells) {
          if (cell.getBoundingClientRect().right > Math.min(right, window.innerWidth) + 0.5) hidden.push(cell.textContent.trim());
        }
      }
      return {
        tables: wraps.length,
        cutOff: wraps.map((wrap) => wrap.scrollWidth - wrap.clientWidth),
        hiddenCosts: hidden,
        costCells: document.querySelectorAll('td[data-label^="Cost"]').length,
      };
    })()`)) as { tables: number; cutOff: number[]; hiddenCosts: string[]; costCells: number };
  }

  it('prints every column of the receipt page, its printable full list and My usage on A4 and Letter, and shows them on screen', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    // The printable list opens the print dialog by itself; headless chromium has none to wait on.
    await context.addInitScript({ content: 'window.print = () => {};' });
    const page = await context.newPage();
    await signInThroughPage(page, base, 'paula', 'paula-password', /\/me$/);
    await page.fill('#before', toLocalDate(new Date(), TIME_ZONE));
    await Promise.all([
      page.waitForURL(/\/me\/receipts\/\d+#receipt$/),
      page.click('button:has-text("Create receipt")'),
    ]);
    const receiptPath = new URL(page.url()).pathname;

    await page.emulateMedia({ media: 'print' });
    const portrait = [A4_PRINTABLE_PX, LETTER_PRINTABLE_PX];
    const landscape = [A4_LANDSCAPE_PRINTABLE_PX, LETTER_LANDSCAPE_PRINTABLE_PX];
    // My usage's jobs too: eleven columns, the hours to 6 decimals, printed across the paper.
    const pages: [string, number[], string][] = [
      [receiptPath, portrait, 'auto'],
      [`${receiptPath}/print`, portrait, 'auto'],
      ['/me', landscape, 'wide'],
    ];
    for (const [path, widths, pageName] of pages) {
      for (const width of widths) {
        await page.setViewportSize({ width, height: 1100 });
        await page.goto(`${base}${path}`);
        expect(await page.evaluate(`getComputedStyle(document.querySelector('main')).page`), path).toBe(pageName);
        const printed = await measurePrinted(page);
        expect(printed.tables, `${path} at ${width} px`).toBe(1);
        expect(printed.costCells, `${path} at ${width} px`).toBe(3);
        expect(printed.hiddenCosts, `${path} at ${width} px`).toEqual([]);
        expect(printed.cutOff, `${path} at ${width} px`).toEqual([0]);
        // The total is printed once, after the last job, not at the foot of every page (as a
        // footer group would be); the column headings repeat on every page.
        if (path.startsWith(receiptPath)) {
          expect(await page.evaluate(`getComputedStyle(document.querySelector('tfoot')).display`), path).toBe(
            'table-row-group',
          );
          expect(await page.evaluate(`getComputedStyle(document.querySelector('thead')).display`), path).toBe(
            'table-header-group',
          );
        }
      }
    }
    // On a 1280 px screen the long name wraps, rather than push the hours and the cost off the
    // screen (kept on one line it made both tables scroll sideways by hundreds of pixels).
    await page.emulateMedia({ media: 'screen' });
    await page.setViewportSize({ width: 1280, height: 900 });
    for (const path of [receiptPath, '/me']) {
      await page.goto(`${base}${path}`);
      const shown = await measurePrinted(page);
      expect(shown.hiddenCosts, `${path} on screen`).toEqual([]);
      expect(shown.cutOff, `${path} on screen`).toEqual([0]);
    }
    await context.close();
  });

  it('offers a Print button only where it works, and says how to print without JavaScript', async () => {
    await buildUser(db.prisma, { username: 'quinn', password: 'quinn-password' });
    await buildJobs(db, [{ user: 'quinn', end: new Date(Date.now() - 86_400_000) }]);
    for (const javaScriptEnabled of [false, true]) {
      const context = await browser.newContext({ javaScriptEnabled, viewport: { width: 1280, height: 900 } });
      await context.addInitScript({ content: 'window.print = () => { window.printed = (window.printed || 0) + 1; };' });
      const page = await context.newPage();
      await signInThroughPage(page, base, 'quinn', 'quinn-password', /\/me$/);
      if (!javaScriptEnabled) {
        await page.fill('#before', toLocalDate(new Date(), TIME_ZONE));
        await Promise.all([
          page.waitForURL(/\/me\/receipts\/\d+#receipt$/),
          page.click('button:has-text("Create receipt")'),
        ]);
      }
      const receipt = await db.prisma.receipt.findFirstOrThrow({ where: { username: 'quinn' } });
      for (const path of [`/me/receipts/${receipt.id}`, `/me/receipts/${receipt.id}/print`]) {
        await page.goto(`${base}${path}`);
        const print = page.locator('button[data-print]');
        const hint = page.getByText("use your browser's Print");
        if (javaScriptEnabled) {
          expect(await print.isVisible(), path).toBe(true);
          expect(await hint.isVisible(), path).toBe(false);
          const before = (await page.evaluate('window.printed || 0')) as number;
          await print.click();
          expect(await page.evaluate('window.printed'), path).toBe(before + 1);
        } else {
          // A button that did nothing when pressed: the browser's own Print is what works.
          expect(await print.isVisible(), path).toBe(false);
          expect(await hint.isVisible(), path).toBe(true);
        }
      }
      await context.close();
    }
  });

  it("keeps each date of a receipt's facts whole on a phone of any width", async () => {
    await buildUser(db.prisma, { username: 'rosa', password: 'rosa-password' });
    await buildJobs(db, [{ user: 'rosa', end: new Date(Date.now() - 86_400_000) }]);
    const context = await browser.newContext({ viewport: { width: 375, height: 800 } });
    await context.addInitScript({ content: 'window.print = () => {};' });
    const page = await context.newPage();
    await signInThroughPage(page, base, 'rosa', 'rosa-password', /\/me$/);
    await page.fill('#before', toLocalDate(new Date(), TIME_ZONE));
    await Promise.all([
      page.waitForURL(/\/me\/receipts\/\d+#receipt$/),
      page.click('button:has-text("Create receipt")'),
    ]);
    const receiptPath = new URL(page.url()).pathname;
    // "(in force since 2020-01-01 07:00, locked 2026-12-04 10:28)": at 375 px "2026-12-" ended a line.
    const split: string[] = [];
    for (const path of [receiptPath, `${receiptPath}/print`]) {
      await page.goto(`${base}${path}`);
      for (let width = 320; width <= 440; width += 4) {
        await page.setViewportSize({ width, height: 800 });
        for (const text of await datesSplitAcrossLines(page, '.facts')) split.push(`${path} at ${width} px: ${text}`);
      }
    }
    expect(split).toEqual([]);
    await context.close();
  });
});
