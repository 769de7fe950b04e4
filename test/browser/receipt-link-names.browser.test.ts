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
import { billJobs } from '../support/receipt-steps.js';
import { signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The receipt link of each row of My receipts, of My usage's Billed view and Billed column, and of
 * the billing list read "#1", "#2" to a screen reader listing the page's links: nothing said what
 * they open. Each is named "Receipt #1" now; to the eye it still reads "#1".
 */
describe.skipIf(!hasChromium)('receipt links, read out of their row', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;
  let base: string;
  let receiptId: number;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    const app = buildTestApp(db);
    await buildUser(db.prisma, { username: 'root', role: 'admin', password: 'root-password' });
    await buildUser(db.prisma, { username: 'ana', password: 'ana-password' });
    await buildJobs(db, [{ user: 'ana', end: new Date('2026-01-10T10:00:00Z') }]);
    receiptId = await billJobs(await signInAs(app, 'ana', 'ana-password'), '2026-01-31');
    rig = await startBrowserRig(app);
    ({ base } = rig);
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  async function expectNamedLink(page: Page, href: string) {
    const link = page.getByRole('link', { name: `Receipt #${receiptId}`, exact: true });
    expect(await link.count(), page.url()).toBe(1);
    expect(await link.getAttribute('href')).toBe(href);
    expect(await link.innerText()).toBe(`#${receiptId}`);
  }

  it.each([
    ['/me/receipts', 'My receipts'],
    ['/me?start=2026-01-01&end=2026-01-31&view=billed', 'the Billed view'],
    ['/me?start=2026-01-01&end=2026-01-31', "the Jobs view's Billed column"],
  ])('%s (%s) names it "Receipt #N"', async (path) => {
    const { page } = await signedInPage(rig, 'ana', 'ana-password');
    await page.goto(`${base}${path}`);
    await expectNamedLink(page, `/me/receipts/${receiptId}`);
    await page.context().close();
  });

  it('the billing list names it "Receipt #N"', async () => {
    const { page } = await signedInPage(rig, 'root', 'root-password');
    await page.goto(`${base}/admin/receipts`);
    await expectNamedLink(page, `/admin/receipts/${receiptId}`);
    await page.context().close();
  });
});
