import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BrowserRig,
  closeRigAndDatabase,
  hasChromium,
  signInThroughPage,
  startBrowserRig,
} from '../support/browser.js';
import { buildUser } from '../support/factories.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The users page on a 1280 px desktop, with a user's sign-in locked (its badge widens the Status
 * column): the table scrolls in its card, but the whole page scrolled sideways too, by the width
 * the actions stood past the card. Each History link's hidden "of <user>" (position: absolute) was
 * placed against the page, not the scrolling card, so the card could not clip it (found by the
 * newcomer's walk).
 */
describe.skipIf(!hasChromium)('the users page on a desktop', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildUser(db.prisma, { username: 'admin', role: 'admin', password: 'admin-password' });
    for (const username of ['alice', 'bob', 'carol']) {
      await buildUser(db.prisma, { username, password: `${username}-password` });
    }
    rig = await startBrowserRig(buildTestApp(db));
    ({ browser, base } = rig);
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  async function failSignIns(page: Page, username: string, times: number) {
    for (let attempt = 0; attempt < times; attempt += 1) {
      await page.goto(`${base}/login`);
      await page.fill('#username', username);
      await page.fill('#password', 'not-the-password');
      await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    }
    expect(await page.locator('#login-error').innerText()).toMatch(/^Too many failed sign-ins/);
  }

  it('does not scroll sideways: the table scrolls in its card', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await failSignIns(page, 'alice', 5);
    await signInThroughPage(page, base, 'admin', 'admin-password');
    await page.goto(`${base}/admin/users`);
    expect(await page.getByText(/sign-in locked until/).count()).toBe(1);

    const widths = (await page.evaluate(
      `(() => ({ page: document.documentElement.scrollWidth, screen: document.documentElement.clientWidth }))()`,
    )) as { page: number; screen: number };
    expect(widths.page).toBe(widths.screen);
    await context.close();
  });
});
