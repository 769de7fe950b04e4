import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/shared/paths.js';
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
 * A tier's name may be 32 characters ("research_computing_partners_tier"), and a line does not
 * break at '_': in one piece, in every row of My usage's jobs, of Usage across users and of Tier
 * overrides, it made each list wider than a 1280 px screen, its last columns (the cost, whether a
 * job is billed) behind a sideways scroll.
 */
const ARTIFACTS = path.join(PROJECT_ROOT, 'test-artifacts', 'browser');
const LONG_TIER = 'research_computing_partners_tier';
const LONG_NAME = 'srinivasaraghavan_venkatanarayanan';

describe.skipIf(!hasChromium)('a long tier name', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db, [
      { name: 'mu', isDefault: true, cpu: '0.50', gpu: '12.00', mem: '0.05' },
      { name: LONG_TIER, cpu: '123456.123456', gpu: '999999.999999', mem: '12345.654321' },
    ]);
    await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
    await buildUser(db.prisma, { username: LONG_NAME, password: 'srini-password' });
    const tier = await db.prisma.pricingTier.findUniqueOrThrow({ where: { name: LONG_TIER } });
    await db.prisma.tierOverride.create({ data: { username: LONG_NAME, tierId: tier.id, createdBy: 'boss' } });
    await buildJobs(
      db,
      Array.from({ length: 5 }, (_, index) => ({
        user: LONG_NAME,
        end: new Date(Date.now() - (index + 1) * 3_600_000),
        totalCpuSec: String(3600 * (index + 1) * 97),
        allocGpus: 2,
      })),
    );
    await mkdir(ARTIFACTS, { recursive: true });
    rig = await startBrowserRig(buildTestApp(db));
    ({ base } = rig);
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  it('keeps every column of the lists that name it on a 1280 px screen, the name whole', async () => {
    for (const [who, password, listPath] of [
      [LONG_NAME, 'srini-password', '/me'],
      ['boss', 'boss-password', '/admin/usage'],
      ['boss', 'boss-password', '/admin/tiers'],
    ] as const) {
      const { context, page } = await signedInPage(rig, who, password, { viewport: { width: 1280, height: 900 } });
      await page.goto(`${base}${listPath}`);
      await page.screenshot({
        path: path.join(ARTIFACTS, `long-tier${listPath.replaceAll('/', '-')}.png`),
        fullPage: true,
      });
      const [scrollWidth, clientWidth] = (await page.evaluate(
        '[document.querySelector(".table-wrap").scrollWidth, document.querySelector(".table-wrap").clientWidth]',
      )) as number[];
      expect(scrollWidth, `${listPath} at 1280 px`).toBeLessThanOrEqual(clientWidth ?? 0);
      const tierCell = page.locator('tbody td', { hasText: 'research_computing' }).first();
      expect((await tierCell.innerText()).replace(/\s/g, ''), listPath).toContain(LONG_TIER);
      await context.close();
    }
  });

  it('keeps the pages that name it within a phone screen', async () => {
    const { context, page } = await signedInPage(rig, 'boss', 'boss-password', {
      viewport: { width: 375, height: 800 },
    });
    const wide: string[] = [];
    for (const pagePath of ['/admin/rates', '/rates', '/admin/tiers', '/admin/usage']) {
      await page.goto(`${base}${pagePath}`);
      for (const width of [320, 375, 390]) {
        await page.setViewportSize({ width, height: 800 });
        const pageWidth = (await page.evaluate('document.documentElement.scrollWidth')) as number;
        if (pageWidth > width) wide.push(`${pagePath} at ${width} px: ${pageWidth} px wide`);
      }
    }
    await page.setViewportSize({ width: 375, height: 800 });
    await page.goto(`${base}/admin/rates`);
    await page.screenshot({ path: path.join(ARTIFACTS, 'long-tier-admin-rates-375.png'), fullPage: true });
    expect(wide).toEqual([]);
    await context.close();
  });
});
