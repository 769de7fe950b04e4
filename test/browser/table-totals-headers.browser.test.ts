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
 * The totals row under the usage and receipt tables, as a screen reader reads it: each total was
 * a header cell (th) of its own, so the accessibility tree had "1,200" and "8,574.25 THB" as
 * column headers, and a screen reader read a total without the column it totals ("CPU h" or
 * "GPU h"?), nor as the Total row's (WCAG 1.3.1; found by the accessibility review). Now "Total"
 * heads its row (th scope="row") and each total is a td of its column: a th given role="cell", as
 * the totals were first, was still a header cell for software that reads the element, not the role.
 */
describe.skipIf(!hasChromium)("the tables' totals row, read by a screen reader", { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    await buildUser(db.prisma, { username: 'kim', password: 'kim-password' });
    await buildUser(db.prisma, { username: 'root', role: 'admin', password: 'root-password' });
    const now = Date.now();
    await buildJobs(
      db,
      Array.from({ length: 3 }, (_, index) => ({
        user: 'kim',
        jobId: String(7_300 + index),
        end: new Date(now - (index + 1) * 3_600_000),
        elapsedSec: 3_600,
        allocCpus: 4,
        allocMemMb: 8_000,
      })),
    );
    rig = await startBrowserRig(buildTestApp(db));
    ({ base } = rig);
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  /**
   * The roles of the main table's footer cells, as the accessibility tree has them, and its elements:
   * one th (the row's header, scope="row") and the totals as td, no role given to change what an
   * element is. A total as <th role="cell"> read as a cell in Chromium's tree, yet stayed a header
   * cell for what reads the element (the table's headers algorithm, a screen reader's table mode).
   */
  async function footRoles(page: Page): Promise<{
    rowheaders: string[];
    columnheaders: number;
    cells: number;
    ths: string[];
    tds: number;
    roles: number;
  }> {
    const foot = page.locator('main table tfoot').first();
    return {
      rowheaders: (await foot.getByRole('rowheader').allTextContents()).map((text) => text.trim()),
      columnheaders: await foot.getByRole('columnheader').count(),
      cells: await foot.getByRole('cell').count(),
      ths: await foot.locator('th').evaluateAll((ths) => ths.map((th) => th.getAttribute('scope') ?? 'no scope')),
      tds: await foot.locator('td').count(),
      roles: await foot.locator('[role]').count(),
    };
  }

  /** A footer of `cells` totals (td) in a row headed by `header` (th scope="row"). */
  const totalsRow = (header: string, cells: number) => ({
    rowheaders: [header],
    columnheaders: 0,
    cells,
    ths: ['row'],
    tds: cells,
    roles: 0,
  });

  it("My usage's Per day and Billed totals and a receipt's total are cells of their columns, in a Total row", async () => {
    const { page } = await signedInPage(rig, 'kim', 'kim-password');
    await page.goto(`${base}/me?view=aggregate`);
    expect(await footRoles(page)).toEqual(totalsRow('Total', 5));

    // A receipt of the three jobs, then its page and the Billed view.
    await page.goto(`${base}/me`);
    await Promise.all([page.waitForURL(/\/me\/receipts\/\d+/), page.click('button:has-text("Create receipt")')]);
    expect(await footRoles(page)).toEqual(totalsRow('Total (3 jobs)', 1));
    await page.goto(`${page.url().replace(/#.*$/, '')}/print`);
    expect(await footRoles(page)).toEqual(totalsRow('Total (3 jobs)', 1));
    await page.goto(`${base}/me?view=billed`);
    expect(await footRoles(page)).toEqual(totalsRow('Total (3 jobs)', 1));
    await page.context().close();
  });

  it("the admin's Usage across users totals are cells of their columns, in a Total row", async () => {
    const { page } = await signedInPage(rig, 'root', 'root-password');
    await page.goto(`${base}/admin/usage`);
    expect(await footRoles(page)).toEqual(totalsRow('Total', 6));
    await page.context().close();
  });
});
