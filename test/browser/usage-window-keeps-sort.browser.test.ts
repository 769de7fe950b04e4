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
 * My usage sorted by cost (to find the expensive jobs), then shown for another window with the
 * From and To fields and Show: the jobs came back sorted by Ended again, while the tabs, the pages
 * and a refused receipt all keep the sort. The window's form now sends the sort with the dates.
 */
const TIME_ZONE = 'UTC';

describe.skipIf(!hasChromium)("My usage's date window and the sort", { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    await buildUser(db.prisma, { username: 'sorter', password: 'sorter-password' });
    const now = Date.now();
    await buildJobs(
      db,
      Array.from({ length: 6 }, (_, index) => ({
        user: 'sorter',
        name: `job-${index}`,
        end: new Date(now - (index + 1) * 26 * 3_600_000),
        // Cost rises as the jobs get older, so the cost order is not the Ended order.
        totalCpuSec: String(3_600 * (index + 1) * 10),
      })),
    );
    rig = await startBrowserRig(buildTestApp(db, { env: { APP_TZ: TIME_ZONE } }));
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  it('keeps the sort when the window changes', async () => {
    const { context, page } = await signedInPage(rig, 'sorter', 'sorter-password', {
      viewport: { width: 1280, height: 800 },
      landing: /\/me$/,
    });
    await page.click('th a:has-text("Cost")');
    await page.waitForURL(/sort=cost&dir=desc/);

    const today = toLocalDate(new Date(), TIME_ZONE);
    await page.fill('#start', addLocalDays(today, -10));
    await Promise.all([page.waitForURL(/start=/), page.click('button:has-text("Show")')]);

    const url = new URL(page.url());
    expect(url.searchParams.get('sort')).toBe('cost');
    expect(url.searchParams.get('dir')).toBe('desc');
    expect(await page.getAttribute('th[aria-sort]', 'aria-sort')).toBe('descending');
    const names = await page.locator('td[data-label="Name"]').allInnerTexts();
    expect(names).toEqual(['job-5', 'job-4', 'job-3', 'job-2', 'job-1', 'job-0']);
    await context.close();
  });
});
