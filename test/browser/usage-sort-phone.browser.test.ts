import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addLocalDays, toLocalDate } from '../../src/shared/local-date.js';
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
 * My usage's jobs on a 390 px phone: the rows stack as cards and the table's header is hidden, and
 * with it every sort link. A researcher on a phone could not sort the jobs (by cost, to find the
 * expensive ones) nor see how they were sorted. A small "Sort by" form stands in for the header on
 * a phone; on a wider screen the header's links do it and the form is not shown.
 */
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };

describe.skipIf(!hasChromium)("sorting My usage's jobs on a phone", { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    await buildUser(db.prisma, { username: 'phoebe', password: 'phoebe-password' });
    const now = Date.now();
    await buildJobs(
      db,
      Array.from({ length: 5 }, (_, index) => ({
        user: 'phoebe',
        name: `job-${index}`,
        end: new Date(now - (index + 1) * 20 * 3_600_000),
        // Older jobs cost more, so the cost order is not the Ended order.
        totalCpuSec: String(3_600 * (index + 1) * 10),
      })),
    );
    rig = await startBrowserRig(buildTestApp(db));
    ({ base } = rig);
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  it('offers a visible sort control that sorts by cost, keeping the window', async () => {
    const { context, page } = await signedInPage(rig, 'phoebe', 'phoebe-password', {
      viewport: PHONE,
      landing: /\/me$/,
    });
    const today = toLocalDate(new Date(), 'UTC');
    const window = { start: addLocalDays(today, -10), end: today };
    await page.goto(`${base}/me?start=${window.start}&end=${window.end}`);

    const sortBy = page.getByLabel('Sort by');
    expect(await sortBy.isVisible()).toBe(true);
    // It says how the jobs are sorted now.
    expect(await sortBy.inputValue()).toBe('end');
    await sortBy.selectOption('cost');
    await Promise.all([page.waitForURL(/sort=cost/), page.getByRole('button', { name: 'Sort', exact: true }).click()]);

    const url = new URL(page.url());
    expect(url.searchParams.get('sort')).toBe('cost');
    expect(url.searchParams.get('view')).toBe('detail');
    expect([url.searchParams.get('start'), url.searchParams.get('end')]).toEqual([window.start, window.end]);
    expect(await page.locator('td[data-label="Name"]').allInnerTexts()).toEqual([
      'job-4',
      'job-3',
      'job-2',
      'job-1',
      'job-0',
    ]);
    expect(await page.getByLabel('Sort by').inputValue()).toBe('cost');

    // Every control on the page can be reached: nothing focusable is hidden in the table's header.
    const box = await sortBy.boundingBox();
    expect(box && box.x >= 0 && box.x + box.width <= PHONE.width).toBe(true);
    await context.close();
  });

  it('is not shown on a wide screen, where the column headers sort', async () => {
    const { context, page } = await signedInPage(rig, 'phoebe', 'phoebe-password', {
      viewport: DESKTOP,
      landing: /\/me$/,
    });
    expect(await page.getByLabel('Sort by').isVisible()).toBe(false);
    expect(await page.locator('th a:has-text("Cost")').isVisible()).toBe(true);
    await context.close();
  });
});
