import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/shared/paths.js';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { type BrowserRig, hasChromium, signInThroughPage, startBrowserRig } from '../support/browser.js';
import { buildUser } from '../support/factories.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * Usage across users on a phone: eight columns of a user's jobs, hours and money were twice as
 * wide as the screen, so each user's cost and what of it is billed, the figures a finance admin
 * opens the page for, and their totals, were behind a sideways scroll. Each user is now a card
 * whose lines name their column, as on the other admin lists, and so are the totals.
 */
const ARTIFACTS = path.join(PROJECT_ROOT, 'test-artifacts', 'browser');

describe.skipIf(!hasChromium)('Usage across users on a phone', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
    await buildUser(db.prisma, { username: 'alice' });
    // 2,000 CPU hours at 0.50 THB: a cost of 1,000.00 THB, with hours of seven figures beside it.
    await buildJobs(db, [{ user: 'alice', end: '2026-03-05T10:00:00Z', totalCpuSec: '7200000', stepMemGbHours: '0' }]);
    await mkdir(ARTIFACTS, { recursive: true });
    rig = await startBrowserRig(buildTestApp(db));
    ({ browser, base } = rig);
  });

  afterAll(async () => {
    await rig?.close();
    await db?.drop();
  });

  it("shows each user's cost and billed cost, and their totals, on screen without scrolling sideways", async () => {
    for (const width of [390, 1280]) {
      const context = await browser.newContext({ viewport: { width, height: 900 } });
      const page = await context.newPage();
      await signInThroughPage(page, base, 'boss', 'boss-password');
      await page.goto(`${base}/admin/usage?start=2026-03-01&end=2026-03-31`);
      const wrap = page.locator('.table-wrap:has(caption:text-is("Usage by user"))');
      const [scrollWidth, clientWidth] = (await wrap.evaluate((element) => [
        element.scrollWidth,
        element.clientWidth,
      ])) as number[];
      expect(scrollWidth, `${width} px`).toBeLessThanOrEqual(clientWidth ?? 0);
      for (const cell of [
        wrap.locator('tbody tr', { hasText: 'alice' }).getByText('1,000.00'),
        wrap.locator('tfoot').getByText('1,000.00'),
      ]) {
        const box = await cell.boundingBox();
        expect(box, `the cost at ${width} px`).not.toBeNull();
        expect((box?.x ?? 0) + (box?.width ?? Number.POSITIVE_INFINITY), `the cost at ${width} px`).toBeLessThanOrEqual(
          width,
        );
      }
      await page.screenshot({ path: path.join(ARTIFACTS, `admin-usage-${width}.png`), fullPage: true });
      await context.close();
    }
  });
});
