import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { type BrowserRig, closeRigAndDatabase, hasChromium, startBrowserRig } from '../support/browser.js';
import { buildUser } from '../support/factories.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A newcomer opened a page that needs a user (a bookmark of /admin/receipts) while signed out and
 * landed on a bare Sign in page, with no line saying why. It says why, and signing in goes there.
 */
describe.skipIf(!hasChromium)('the sign-in page a protected page sent a browser to', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    await buildUser(db.prisma, { username: 'newcomer', role: 'admin', password: 'newcomer-password' });
    rig = await startBrowserRig(buildTestApp(db));
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  it('says why as its notice, and signing in opens the page asked for', async () => {
    const context = await rig.browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await page.goto(`${rig.base}/admin/receipts`);
    expect(new URL(page.url()).pathname).toBe('/login');
    const notice = page.locator('main .alert.warning');
    expect(await notice.innerText()).toBe('Sign in to see /admin/receipts: you will be taken there once signed in.');

    await page.fill('#username', 'newcomer');
    await page.fill('#password', 'newcomer-password');
    await Promise.all([page.waitForURL(/\/admin\/receipts$/), page.click('button[type=submit]')]);
    expect(await page.locator('main').innerText()).not.toContain('Sign in to see');
    await context.close();
  });

  it('opened by itself, says nothing but the form', async () => {
    const context = await rig.browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await page.goto(`${rig.base}/login`);
    expect(await page.locator('main .alert').count()).toBe(0);
    await context.close();
  });
});
