import type { BrowserContextOptions, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toLocalDate } from '../../src/shared/local-date.js';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import {
  type BrowserRig,
  closeRigAndDatabase,
  hasChromium,
  keptSignIns,
  signedInPage,
  startBrowserRig,
} from '../support/browser.js';
import { buildUser } from '../support/factories.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A researcher's lists on a 390 px phone: what each row costs, and whether a receipt is paid,
 * must be on the screen. A table wider than the phone scrolls sideways in its card, and the
 * columns that said it (Cost, Total, Status: the last ones) started off the screen.
 */
const TIME_ZONE = 'Asia/Bangkok';
const PHONE = { width: 390, height: 844 };
const LONG_NAME = 'firstname_lastname_computational_structural_bio';

describe.skipIf(!hasChromium)("a researcher's lists on a phone", { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;
  let base: string;
  // pia signs in through the form once; her later tests start with that session (none checks signing in).
  let piaSignIns: ReturnType<typeof keptSignIns> | undefined;
  const signedInAsPia = (options: BrowserContextOptions) => {
    piaSignIns ??= keptSignIns(rig);
    return piaSignIns('pia', 'pia-password', options);
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    await buildUser(db.prisma, { username: 'pia', password: 'pia-password' });
    const now = Date.now();
    await buildJobs(
      db,
      Array.from({ length: 6 }, (_, index) => ({
        user: 'pia',
        name: index % 2 ? 'md-run' : 'relax-structure',
        end: new Date(now - (index + 1) * 9 * 3_600_000),
        allocGpus: index % 3 === 0 ? 2 : 0,
        totalCpuSec: String(36_000 + index * 7_200),
      })),
    );
    // A receipt in the millions: three jobs of 64 GPUs for 20,000 hours each.
    await buildUser(db.prisma, { username: 'ula', password: 'ula-password' });
    await buildJobs(
      db,
      Array.from({ length: 3 }, (_, index) => ({
        user: 'ula',
        end: new Date(now - (index + 1) * 3_600_000),
        elapsedSec: 72_000_000,
        allocGpus: 64,
      })),
    );
    // 48 letters with no hyphen: "_" and "." do not break a line.
    await buildUser(db.prisma, { username: LONG_NAME, password: 'long-name-password' });
    rig = await startBrowserRig(buildTestApp(db, { env: { APP_TZ: TIME_ZONE } }));
    ({ base } = rig);
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  /** The cells labelled `label` that are not within the phone's width, and how far the table scrolls sideways. */
  async function offScreen(page: Page, label: string) {
    return (await page.evaluate(`(() => {
      const cells = [...document.querySelectorAll('main [data-label="${label}"]')];
      const wrap = document.querySelector('main .table-wrap');
      return {
        cells: cells.length,
        outside: cells
          .filter((cell) => { const box = cell.getBoundingClientRect(); return box.left < 0 || box.right > window.innerWidth; })
          .map((cell) => cell.textContent.trim()),
        scrollsBy: wrap.scrollWidth - wrap.clientWidth,
      };
    })()`)) as { cells: number; outside: string[]; scrollsBy: number };
  }

  it('shows the cost of each day and of each billed job, and the total and status of each receipt', async () => {
    const { context, page } = await signedInAsPia({ viewport: PHONE });
    await page.goto(`${base}/me`);
    await page.fill('#before', toLocalDate(new Date(), TIME_ZONE));
    await Promise.all([
      page.waitForURL(/\/me\/receipts\/\d+#receipt$/),
      page.click('button:has-text("Create receipt")'),
    ]);

    const checks: [string, string, number][] = [
      // Every day of the 7-day window, and the total under them.
      ['/me?view=aggregate', 'Cost (THB)', 8],
      ['/me?view=billed', 'Cost (THB)', 6],
      ['/me/receipts', 'Total', 1],
      ['/me/receipts', 'Status', 1],
    ];
    for (const [path, label, count] of checks) {
      await page.goto(`${base}${path}`);
      const seen = await offScreen(page, label);
      expect(seen.cells, `${path} ${label}`).toBe(count);
      expect(seen.outside, `${path} ${label}`).toEqual([]);
      expect(seen.scrollsBy, path).toBe(0);
    }
    // The totals under Per day keep their labels when stacked, each figure on a line of its own.
    await page.goto(`${base}/me?view=aggregate`);
    const footLabels = await page.evaluate(
      `[...document.querySelectorAll('tfoot :is(th, td)')].map((cell) => getComputedStyle(cell, '::before').content)`,
    );
    expect(footLabels).toEqual(['none', '"Jobs"', '"CPU h"', '"GPU h"', '"Mem GB·h"', '"Cost (THB)"']);
    expect((await page.locator('tfoot').innerText()).split('\n')).toHaveLength(6);
    await context.close();
  });

  it("labels each card's cost with its currency, as the desktop header does", async () => {
    // The header said "Cost (THB)", the cards on a phone only "Cost".
    const { context, page } = await signedInAsPia({ viewport: PHONE });
    for (const path of ['/me', '/me?view=billed', '/me?view=aggregate']) {
      await page.goto(`${base}${path}`);
      const labels = (await page.evaluate(
        `[...document.querySelectorAll('main tbody td')]
          .map((cell) => getComputedStyle(cell, '::before').content)
          .filter((label) => label.startsWith('"Cost'))`,
      )) as string[];
      expect(labels.length, path).toBeGreaterThan(0);
      expect(new Set(labels), path).toEqual(new Set(['"Cost (THB)"']));
    }
    await context.close();
  });

  it("puts a billed job's receipt number beside its status, at the right of the card", async () => {
    // Spread across the card, the number sat alone in the middle of the line, away from its status.
    const { context, page } = await signedInAsPia({ viewport: PHONE });
    await page.goto(`${base}/me`);
    const cell = page.locator('main td[data-label="Billed"]').first();
    const number = await cell.locator('a').boundingBox();
    const status = await cell.locator('.badge').boundingBox();
    const box = await cell.boundingBox();
    if (!number || !status || !box) throw new Error('no billed job on /me');
    expect(status.x - (number.x + number.width)).toBeLessThanOrEqual(12);
    expect(box.x + box.width - (status.x + status.width)).toBeLessThanOrEqual(12);
    await context.close();
  });

  it("rules off a receipt's total, and Billed's, across the whole card", async () => {
    // The total and its label sat on one line as two boxes, each with its own rule above and below
    // as wide as its text: the rule over the figure most read on the page was broken in the middle.
    const { context, page } = await signedInAsPia({ viewport: PHONE });
    await page.goto(`${base}/me/receipts`);
    const receipt = await page.locator('main a[href^="/me/receipts/"]').first().getAttribute('href');
    for (const path of [receipt, '/me?view=billed']) {
      await page.goto(`${base}${path}`);
      const foot = (await page.evaluate(`(() => {
        const row = document.querySelector('main tfoot tr');
        const style = getComputedStyle(row);
        return {
          row: [style.borderTopWidth, style.borderTopStyle],
          cells: [...row.children].map((cell) => [getComputedStyle(cell).borderTopWidth, getComputedStyle(cell).borderBottomWidth]),
        };
      })()`)) as { row: string[]; cells: string[][] };
      expect(foot.row, `${path}`).toEqual(['2px', 'solid']);
      expect(foot.cells, `${path}`).toEqual([
        ['0px', '0px'],
        ['0px', '0px'],
      ]);
    }
    await context.close();
  });

  it('keeps a receipt\'s total in the millions on a 375 px screen, under its "Total (3 jobs)"', async () => {
    const { context, page } = await signedInPage(rig, 'ula', 'ula-password', {
      viewport: { width: 375, height: 740 },
      landing: /\/me$/,
    });
    await page.fill('#before', toLocalDate(new Date(), TIME_ZONE));
    await Promise.all([
      page.waitForURL(/\/me\/receipts\/\d+#receipt$/),
      page.click('button:has-text("Create receipt")'),
    ]);
    const foot = (await page.evaluate(`(() => {
      const wrap = document.querySelector('main .table-wrap');
      return {
        cells: [...document.querySelectorAll('main tfoot :is(th, td)')].map((cell) => cell.textContent.trim()),
        right: Math.max(...[...document.querySelectorAll('main tfoot :is(th, td)')].map((cell) => cell.getBoundingClientRect().right)),
        wrapRight: wrap.getBoundingClientRect().right,
        scrollsBy: wrap.scrollWidth - wrap.clientWidth,
      };
    })()`)) as { cells: string[]; right: number; wrapRight: number; scrollsBy: number };
    expect(foot.cells[0]).toBe('Total (3 jobs)');
    expect(foot.cells[1]).toMatch(/^\d{2},\d{3},\d{3}\.\d\d THB$/);
    // On one line with its label the figure was wider than the card: the jobs' cards scrolled sideways
    // and the total was cut at the screen's edge.
    expect(foot.scrollsBy).toBe(0);
    expect(foot.right).toBeLessThanOrEqual(foot.wrapRight);
    await context.close();
  });

  it("makes the header's links and Sign out at least 24 px tall, as they wrap onto lines of their own on a phone", async () => {
    const { context, page } = await signedInAsPia({ viewport: { width: 375, height: 740 } });
    await page.goto(`${base}/me`);
    const targets =
      (await page.evaluate(`[...document.querySelectorAll('nav[aria-label="Main"] a, nav[aria-label="Main"] button')]
      .map((target) => { const box = target.getBoundingClientRect(); return { name: target.textContent.trim(), top: Math.round(box.top), height: box.height }; })`)) as {
        name: string;
        top: number;
        height: number;
      }[];
    // They do wrap: Sign out has a line of its own, under My usage.
    expect(new Set(targets.map((target) => target.top)).size).toBeGreaterThan(1);
    // 19 px tall on lines 23 px apart: a thumb aiming at My usage could land on Sign out below it
    // (WCAG 2.2's least target size is 24 by 24 px, or that much room around a smaller one).
    expect(targets.filter((target) => target.height < 24).map((target) => target.name)).toEqual([]);
    await context.close();
  });

  it("keeps a long login name within the screen: the header's Sign out and the Account page", async () => {
    const { context, page } = await signedInPage(rig, LONG_NAME, 'long-name-password', {
      viewport: PHONE,
      landing: /\/me$/,
    });
    for (const path of ['/me', '/account']) {
      await page.goto(`${base}${path}`);
      // In one piece the name ran past the right edge, and the whole page scrolled sideways.
      const scrollsBy = await page.evaluate('document.documentElement.scrollWidth - window.innerWidth');
      expect(scrollsBy, path).toBe(0);
      const signOut = await page.locator('.nav button:has-text("Sign out")').boundingBox();
      expect((signOut?.x ?? Number.POSITIVE_INFINITY) + (signOut?.width ?? 0), path).toBeLessThanOrEqual(PHONE.width);
    }
    await context.close();
  });
});
