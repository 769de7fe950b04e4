import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Prisma } from '@prisma/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/shared/paths.js';
import { buildTiers } from '../support/billing-factories.js';
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
 * A tier's rate history on the Rates page, on a phone: six columns of dates, rates to six
 * decimals and who set them were wider than the screen, and the rates and their author were
 * behind a sideways scroll. Each rate now stacks as a card, as the other admin lists do.
 */
const ARTIFACTS = path.join(PROJECT_ROOT, 'test-artifacts', 'browser');

describe.skipIf(!hasChromium)("the Rates page's rate history on a phone", { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db, [{ name: 'mu', isDefault: true, cpu: '0.50', gpu: '12.00', mem: '0.05' }]);
    await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
    const tier = await db.prisma.pricingTier.findUniqueOrThrow({ where: { name: 'mu' } });
    // Two later rates: wide figures, set by an admin with a long name.
    for (const [index, figures] of [
      ['123456.123456', '999999.999999', '0.000001'],
      ['0.654321', '987654.321', '100000.5'],
    ].entries()) {
      await db.prisma.pricingRate.create({
        data: {
          tierId: tier.id,
          cpuPerHour: new Prisma.Decimal(figures[0] as string),
          gpuPerHour: new Prisma.Decimal(figures[1] as string),
          memPerHour: new Prisma.Decimal(figures[2] as string),
          currency: 'THB',
          effectiveFrom: new Date(Date.UTC(2025, index, 1)),
          createdBy: 'finance-administrator-of-the-centre',
        },
      });
    }
    await mkdir(ARTIFACTS, { recursive: true });
    rig = await startBrowserRig(buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' } }));
    ({ base } = rig);
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  it('shows every rate and who set it on screen, each rate a card, without scrolling sideways', async () => {
    for (const width of [390, 1280]) {
      const { context, page } = await signedInPage(rig, 'boss', 'boss-password', { viewport: { width, height: 900 } });
      await page.goto(`${base}/admin/rates`);
      const history = page.locator('section#tier-mu details:has(summary:has-text("History of mu (3)"))');
      expect(await history.getAttribute('open')).not.toBeNull();
      const wrap = history.locator('.table-wrap');
      const [scrollWidth, clientWidth] = (await wrap.evaluate((element) => [
        element.scrollWidth,
        element.clientWidth,
      ])) as number[];
      expect(scrollWidth, `${width} px`).toBeLessThanOrEqual(clientWidth ?? 0);
      // Grouped by thousands as the pages write money (168059b9).
      const row = history.locator('tbody tr', { hasText: '123,456.123456' });
      for (const [label, text] of [
        ['CPU', '123,456.123456'],
        ['GPU', '999,999.999999'],
        ['Memory', '0.000001'],
        ['Set by', 'finance-administrator-of-the-centre'],
      ] as const) {
        const cell = row.locator(`td[data-label="${label}"]`);
        expect((await cell.innerText()).trim(), `${label} at ${width} px`).toContain(text);
        const box = await cell.boundingBox();
        expect((box?.x ?? Number.POSITIVE_INFINITY) + (box?.width ?? 0), `${label} at ${width} px`).toBeLessThanOrEqual(
          width,
        );
      }
      // On a phone the header row is hidden and each cell names its column.
      const isHeaderShown = await history.locator('thead').isVisible();
      expect(isHeaderShown, `${width} px`).toBe(width > 640);
      await page.screenshot({ path: path.join(ARTIFACTS, `rates-history-${width}.png`), fullPage: true });
      await context.close();
    }
  });

  it("makes a card's Rename or describe and History at least 24 px tall, as they sit on lines one under the other", async () => {
    // 19 px tall on lines 19 px apart: a thumb aiming at History could open Rename or describe above it
    // (WCAG 2.2's least target size is 24 by 24 px, or that much room around a smaller one).
    const { context, page } = await signedInPage(rig, 'boss', 'boss-password', {
      viewport: { width: 360, height: 740 },
    });
    await page.goto(`${base}/admin/rates`);
    const heights = await page
      .locator('section#tier-mu summary')
      .evaluateAll((summaries) => summaries.map((summary) => summary.getBoundingClientRect().height));
    expect(heights).toHaveLength(2);
    expect(heights.filter((height) => height < 24)).toEqual([]);
    await context.close();
  });
});
