import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toLocalDate } from '../../src/shared/local-date.js';
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
 * My usage's jobs on a 1280 px screen once they are on a receipt: the receipt's number and status
 * badge took the room, and every Ended date broke onto two lines, the day above the time.
 */
const TIME_ZONE = 'Asia/Bangkok';
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const NAMES = ['relax-structure', 'md-run', 'nf-NFCORE_RNASEQ_RNASEQ_PREPARE_GENOME_GUNZIP_GTF_(genes.gtf.gz)'];

describe.skipIf(!hasChromium)("a researcher's jobs beside their receipt's status", { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    await buildUser(db.prisma, { username: 'dora', password: 'dora-password' });
    const now = Date.now();
    // A cluster's jobs: seven-digit ids, days of elapsed time, hours in the thousands, and one
    // name a workflow tool wrote without a space.
    await buildJobs(
      db,
      Array.from({ length: 6 }, (_, index) => ({
        user: 'dora',
        jobId: String(4_821_930 + index),
        name: NAMES[index % NAMES.length],
        end: new Date(now - (index + 1) * 9 * 3_600_000),
        elapsedSec: 2 * 86_400 + 3_723,
        allocCpus: 128,
        allocMemMb: 512_000,
        allocGpus: index % 3 === 0 ? 8 : 0,
        totalCpuSec: String(20_000_000 + index * 7_200),
      })),
    );
    rig = await startBrowserRig(buildTestApp(db, { env: { APP_TZ: TIME_ZONE } }));
    ({ base } = rig);
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  /** Each billed row's Ended cell: its text, on how many lines, and whether it is within the window. */
  async function endedCells(page: Page) {
    return (await page.evaluate(`(() => {
      const rows = [...document.querySelectorAll('main table tbody tr')]
        .filter((row) => row.querySelector('td[data-label="Billed"] .badge'));
      return rows.map((row) => {
        const cell = row.querySelector('td[data-label="Ended"]');
        const range = document.createRange();
        range.selectNodeContents(cell);
        const box = range.getBoundingClientRect();
        return {
          text: cell.textContent.trim(),
          lines: new Set([...range.getClientRects()].map((rect) => Math.round(rect.top))).size,
          onScreen: box.left >= 0 && box.right <= window.innerWidth,
        };
      });
    })()`)) as { text: string; lines: number; onScreen: boolean }[];
  }

  it('keeps each Ended date on one line at 1280 px, every column on the screen, and on a phone', async () => {
    const { context, page } = await signedInPage(rig, 'dora', 'dora-password', { viewport: DESKTOP, landing: /\/me$/ });
    await page.fill('#before', toLocalDate(new Date(), TIME_ZONE));
    await Promise.all([
      page.waitForURL(/\/me\/receipts\/\d+#receipt$/),
      page.click('button:has-text("Create receipt")'),
    ]);

    for (const viewport of [DESKTOP, PHONE]) {
      await page.setViewportSize(viewport);
      await page.goto(`${base}/me`);
      const cells = await endedCells(page);
      expect(cells, `${viewport.width} px`).toHaveLength(6);
      for (const cell of cells) {
        expect(cell, `${cell.text} at ${viewport.width} px`).toEqual({ text: cell.text, lines: 1, onScreen: true });
      }
      // Nothing to scroll sideways to.
      const [scrollWidth, clientWidth] = (await page.evaluate(
        '[document.querySelector("main .table-wrap").scrollWidth, document.querySelector("main .table-wrap").clientWidth]',
      )) as number[];
      expect(scrollWidth, `${viewport.width} px`).toBeLessThanOrEqual(clientWidth ?? 0);
    }
    await context.close();
  });
  it("shows the window's totals as figures to read, not in the small grey capitals of a column heading", async () => {
    const { context, page } = await signedInPage(rig, 'dora', 'dora-password', { viewport: DESKTOP, landing: /\/me$/ });
    await page.goto(`${base}/me?view=aggregate`);
    const styles = (await page.evaluate(`(() => {
      const pick = (element) => {
        const style = getComputedStyle(element);
        return { fontSize: style.fontSize, color: style.color, textTransform: style.textTransform };
      };
      return {
        total: pick(document.querySelector('main table tfoot td.num')),
        row: pick(document.querySelector('main table tbody td.num')),
      };
    })()`)) as { total: Record<string, string>; row: Record<string, string> };
    expect(styles.total).toEqual(styles.row);
    await context.close();
  });
});
