import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toLocalDate } from '../../src/shared/local-date.js';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { type BrowserRig, closeRigAndDatabase, hasChromium, keptSignIns, startBrowserRig } from '../support/browser.js';
import { buildUser } from '../support/factories.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * My usage, Usage across users and a receipt's jobs on a tablet (640 to 1,024 px): below 640 px the
 * rows stack as cards and above about 1,000 px the table fits, but in between My usage's Jobs table
 * (eleven columns, hours to six decimals) scrolled sideways inside its box, its cost and Billed
 * columns behind the scroll.
 */
const TIME_ZONE = 'Asia/Bangkok';
const TABLETS = [640, 768, 820, 1024].map((width) => ({ width, height: 1000 }));
const LONG_NAME = 'nf-NFCORE_RNASEQ_RNASEQ_PREPARE_GENOME_GUNZIP_GTF_(genes.gtf.gz)';
const NAMES = ['relax-structure', 'md-run', LONG_NAME, 'train_resnet50_imagenet_lr0.1'];
const LONG_USER = 'bartholomew_longname_research';

describe.skipIf(!hasChromium)('usage tables on a tablet', { timeout: 180_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;
  let base: string;
  let receiptPath = '';
  // Each user signs in through the form once (dora in beforeAll); each test's context of its own starts
  // with that session, and none checks signing in.
  let signedInContext: ReturnType<typeof keptSignIns>;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    await buildUser(db.prisma, { username: 'dora', password: 'dora-password' });
    await buildUser(db.prisma, { username: 'finance', role: 'admin', password: 'finance-password' });
    const now = Date.now();
    // A cluster's jobs as the demo's look: seven-digit ids, days of elapsed time, hours in the
    // thousands, GPUs on some, states as long as OUT_OF_MEMORY, and a name a workflow tool wrote
    // without a space.
    const jobsOf = (user: string, firstId: number, hoursAgo: number) =>
      Array.from({ length: 8 }, (_, index) => ({
        user,
        jobId: String(firstId + index),
        name: NAMES[index % NAMES.length],
        state: index % 4 === 1 ? 'OUT_OF_MEMORY' : 'COMPLETED',
        end: new Date(now - (hoursAgo + index * 9) * 3_600_000),
        elapsedSec: 2 * 86_400 + 3_723,
        allocCpus: 128,
        allocMemMb: 512_000,
        allocGpus: index % 3 === 0 ? 8 : 0,
        totalCpuSec: String(20_000_000 + index * 7_200),
        account: index % 2 === 0 ? 'computational_chemistry_lab' : 'physics',
      }));
    await buildJobs(db, [...jobsOf('dora', 4_821_930, 30), ...jobsOf(LONG_USER, 4_822_930, 30)]);
    rig = await startBrowserRig(buildTestApp(db, { env: { APP_TZ: TIME_ZONE } }));
    ({ base } = rig);

    signedInContext = keptSignIns(rig);
    // Half of dora's jobs on a receipt, so the Billed column holds receipts' numbers and statuses.
    const { context, page } = await signedInContext('dora', 'dora-password', {
      viewport: { width: 1280, height: 800 },
      landing: /\/me$/,
    });
    await page.fill('#before', toLocalDate(new Date(now - 3 * 86_400_000), TIME_ZONE));
    await Promise.all([
      page.waitForURL(/\/me\/receipts\/\d+#receipt$/),
      page.click('button:has-text("Create receipt")'),
    ]);
    receiptPath = new URL(page.url()).pathname;
    await context.close();
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  /** How far each table's box and the page scroll sideways (0 when they do not). */
  async function overflowOf(page: Page) {
    return (await page.evaluate(`(() => {
      const page = document.documentElement;
      return {
        tables: [...document.querySelectorAll('main .table-wrap')].map((wrap) => wrap.scrollWidth - wrap.clientWidth),
        page: page.scrollWidth - page.clientWidth,
      };
    })()`)) as { tables: number[]; page: number };
  }

  it('fits every usage table within a tablet screen, without scrolling sideways', async () => {
    const paths = {
      dora: ['/me', '/me?view=billed', '/me?view=aggregate', receiptPath, `${receiptPath}/print`],
      finance: ['/admin/usage'],
    };
    const found: Record<string, { tables: number[]; page: number }> = {};
    for (const [user, userPaths] of Object.entries(paths)) {
      const { context, page } = await signedInContext(user, `${user}-password`, { viewport: TABLETS[0] });
      for (const viewport of TABLETS) {
        await page.setViewportSize(viewport);
        for (const path of userPaths) {
          await page.goto(`${base}${path}`);
          found[`${path} at ${viewport.width} px`] = await overflowOf(page);
        }
      }
      await context.close();
    }
    const fitting = Object.fromEntries(Object.keys(found).map((key) => [key, { tables: [0], page: 0 }]));
    expect(found).toEqual(fitting);
  });

  /** Each usage table of the page: tiled as cards (its header hidden, each row a grid) or a table. */
  async function layoutsOf(page: Page) {
    return (await page.evaluate(`(() => [...document.querySelectorAll('main .table-wrap > table')].map((table) => {
      const thead = getComputedStyle(table.querySelector('thead')).display;
      const row = getComputedStyle(table.querySelector('tbody tr')).display;
      return thead === 'none' && row === 'grid' ? 'cards' : thead === 'table-header-group' && row === 'table-row' ? 'table' : thead + '/' + row;
    }))()`)) as string[];
  }

  /** What makes a table look as it does on a desktop, cell by cell: set by app.css's rules for a table. */
  async function cellStylesOf(page: Page) {
    return (await page.evaluate(`(() => [...document.querySelectorAll('main .table-wrap > table :is(tr, th, td)')].map((cell) => {
      const style = getComputedStyle(cell);
      return [cell.tagName, style.display, style.padding, style.borderTop, style.borderBottom, style.textAlign,
        style.whiteSpace, style.minWidth, getComputedStyle(cell, '::before').content].join(' | ');
    }))()`)) as string[];
  }

  // Per day (six columns) and Usage across users (eight) fit as tables from 1,025 px, where the Jobs
  // table (eleven), Billed and a receipt's jobs still need their tiles: at 1,025 to 1,248 px those two
  // were tiled as the others are, though as tables they fit.
  it('keeps Per day and Usage across users as tables from 1,025 px, without scrolling sideways', async () => {
    const paths = {
      dora: { '/me?view=aggregate': 'fits', '/me': 'tiled', '/me?view=billed': 'tiled', [receiptPath]: 'tiled' },
      finance: { '/admin/usage': 'fits' },
    };
    const found: Record<string, unknown> = {};
    const expected: Record<string, unknown> = {};
    for (const [user, userPaths] of Object.entries(paths)) {
      const { context, page } = await signedInContext(user, `${user}-password`, {
        viewport: { width: 1280, height: 1000 },
      });
      const desktop: Record<string, string[]> = {};
      for (const path of Object.keys(userPaths)) {
        await page.goto(`${base}${path}`);
        desktop[path] = await cellStylesOf(page);
      }
      for (const width of [1024, 1100, 1248]) {
        await page.setViewportSize({ width, height: 1000 });
        for (const [path, fit] of Object.entries(userPaths)) {
          await page.goto(`${base}${path}`);
          const key = `${path} at ${width} px`;
          const layouts = await layoutsOf(page);
          found[key] = { ...(await overflowOf(page)), layouts };
          expected[key] = { tables: [0], page: 0, layouts: [width > 1024 && fit === 'fits' ? 'table' : 'cards'] };
          // As a table it is the desktop's table, cell for cell, not a card put back half way.
          if (layouts[0] === 'table') expect(await cellStylesOf(page), key).toEqual(desktop[path]);
        }
      }
      await context.close();
    }
    expect(found).toEqual(expected);
  });

  it("shows each job's figures on the screen, each on one line under its column's name, and the sort", async () => {
    const { context, page } = await signedInContext('dora', 'dora-password', { viewport: TABLETS[0] });
    for (const viewport of TABLETS) {
      await page.setViewportSize(viewport);
      await page.goto(`${base}/me`);
      const cells = (await page.evaluate(`(() => {
        const width = document.documentElement.clientWidth;
        return [...document.querySelectorAll('main table tbody td')].map((cell) => {
          const range = document.createRange();
          range.selectNodeContents(cell);
          const box = range.getBoundingClientRect();
          const label = getComputedStyle(cell, '::before').content;
          return {
            label: cell.dataset.label,
            text: cell.textContent.trim(),
            named: label === JSON.stringify(cell.dataset.label),
            lines: new Set([...range.getClientRects()].filter((rect) => rect.width > 0).map((rect) => Math.round(rect.top))).size,
            onScreen: box.left >= 0 && box.right <= width,
          };
        });
      })()`)) as { label: string; text: string; named: boolean; lines: number; onScreen: boolean }[];
      // Eight jobs of twelve columns each (Cluster since 084cda17).
      expect(cells, `${viewport.width} px`).toHaveLength(8 * 12);
      for (const cell of cells) {
        const where = `${cell.label} ${cell.text} at ${viewport.width} px`;
        expect(cell.onScreen, where).toBe(true);
        expect(cell.named, where).toBe(true);
        // A figure, a date or a state is read whole; a job's name may wrap, and a receipt's status
        // may go under its number.
        if (cell.label !== 'Name' && cell.label !== 'Billed') expect(cell.lines, where).toBe(1);
      }
      expect(cells.filter((cell) => cell.text === LONG_NAME)).toHaveLength(2);
      // The column headers' sort links are hidden with the header: the Sort by form stands in.
      expect(await page.getByLabel('Sort by').isVisible(), `${viewport.width} px`).toBe(true);
    }
    await context.close();
  });
});
