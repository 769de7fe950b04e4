import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
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
 * Usage across users on a 390 px phone. The table scrolled sideways in its card, so each user's
 * cost and what of it was billed (its last two columns) started off the screen, and the reason an
 * empty answer gave ("The User filter matches a whole username ...") was cut at the screen's edge
 * in its one wide cell. Its rows stack as cards now, each figure named, as My usage's do.
 */
const PHONE = { width: 390, height: 844 };

describe.skipIf(!hasChromium)('usage across users on a phone', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    await buildUser(db.prisma, { username: 'finance', role: 'admin', password: 'finance-password' });
    const now = Date.now();
    await buildJobs(
      db,
      ['alice', 'bartholomew-longname', 'chen'].flatMap((user, index) =>
        Array.from({ length: 3 }, (_, job) => ({
          user,
          end: new Date(now - (job + 1) * 5 * 3_600_000),
          allocGpus: index,
          totalCpuSec: String(360_000 * (index + 1)),
        })),
      ),
    );
    rig = await startBrowserRig(buildTestApp(db));
    ({ base } = rig);
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  /** The cells of `column` (1-based) that are not wholly on the screen, and what labels them on it. */
  async function cellsOf(page: Page, section: 'tbody' | 'tfoot', column: number) {
    return (await page.evaluate(`(() => {
      const cells = [...document.querySelectorAll('main table ${section} tr > :nth-child(${column})')];
      return {
        cells: cells.length,
        outside: cells
          .filter((cell) => { const box = cell.getBoundingClientRect(); return box.left < 0 || box.right > window.innerWidth; })
          .map((cell) => cell.textContent.trim()),
        labels: [...new Set(cells.map((cell) => getComputedStyle(cell, '::before').content))],
      };
    })()`)) as { cells: number; outside: string[]; labels: string[] };
  }

  it("shows each user's cost and what of it was billed, and the totals, on the screen and named", async () => {
    const { context, page } = await signedInPage(rig, 'finance', 'finance-password', { viewport: PHONE });
    await page.goto(`${base}/admin/usage`);

    expect(await cellsOf(page, 'tbody', 7)).toEqual({ cells: 3, outside: [], labels: ['"Cost (THB)"'] });
    expect(await cellsOf(page, 'tbody', 8)).toEqual({ cells: 3, outside: [], labels: ['"Of which billed"'] });
    // The foot's Total spans User and Tier, so its Cost is its 6th cell.
    expect(await cellsOf(page, 'tfoot', 6)).toEqual({ cells: 1, outside: [], labels: ['"Cost (THB)"'] });
    expect(await cellsOf(page, 'tfoot', 7)).toEqual({ cells: 1, outside: [], labels: ['"Of which billed"'] });
    const scrollsBy = await page.evaluate(
      `(() => { const wrap = document.querySelector('main .table-wrap'); return wrap.scrollWidth - wrap.clientWidth; })()`,
    );
    expect(scrollsBy).toBe(0);
    await context.close();
  });

  it('shows the whole reason an empty answer gives', async () => {
    const { context, page } = await signedInPage(rig, 'finance', 'finance-password', { viewport: PHONE });
    // Part of a name matches (alice for "ali"): a name no job owner contains gets the reason.
    await page.goto(`${base}/admin/usage?user=nobody-by-this-name`);
    const reason = page.locator('main table tbody td', { hasText: 'No jobs match.' });
    expect(await reason.innerText()).toContain(
      'No job is for a username containing “nobody-by-this-name” (in any case).',
    );
    const { right, scrollsBy } = await reason.evaluate((cell) => ({
      right: cell.getBoundingClientRect().right,
      scrollsBy: cell.scrollWidth - cell.clientWidth,
    }));
    expect(right).toBeLessThanOrEqual(PHONE.width);
    expect(scrollsBy).toBe(0);
    await context.close();
  });

  it('keeps the table, with its column headers, on a desktop screen', async () => {
    const { context, page } = await signedInPage(rig, 'finance', 'finance-password', {
      viewport: { width: 1280, height: 800 },
    });
    await page.goto(`${base}/admin/usage`);
    expect(await page.locator('main table thead').isVisible()).toBe(true);
    expect(await page.locator('main table thead th').allInnerTexts()).toEqual([
      'USER',
      'TIER',
      'JOBS',
      'CPU H',
      'GPU H',
      'MEM GB·H',
      'COST (THB)',
      'OF WHICH BILLED',
    ]);
    await context.close();
  });
});
