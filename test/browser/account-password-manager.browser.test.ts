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
 * The Account page's change-password form had only password fields, so a password manager could not
 * tell whose password it changed: Chromium said so in the console ("Password forms should have
 * (optionally hidden) username fields") and offered to save the new password under no name, leaving
 * the old one it fills into the sign-in page. The form now carries the signed-in user's name, hidden,
 * with autocomplete="username", and still changes the password.
 */
describe.skipIf(!hasChromium)('the Account page for password managers', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildUser(db.prisma, { username: 'pat', password: 'pat-password-1' });
    rig = await startBrowserRig(buildTestApp(db));
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  it('names the account whose password the form changes, and the change still works', async () => {
    const context = await rig.browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const consoleMessages: string[] = [];
    page.on('console', (message) => consoleMessages.push(message.text()));
    await signInThroughPage(page, rig.base, 'pat', 'pat-password-1', /\/me$/);
    await page.goto(`${rig.base}/account`);

    const form = page.locator('form[action="/account/password"]');
    const username = form.locator('input[autocomplete="username"]');
    expect(await username.count()).toBe(1);
    expect(await username.inputValue()).toBe('pat');
    expect(await username.isVisible()).toBe(false);
    expect(consoleMessages.filter((text) => text.includes('username fields'))).toEqual([]);

    await page.fill('#current', 'pat-password-1');
    await page.fill('#password', 'pat-password-2');
    await page.fill('#confirm', 'pat-password-2');
    await Promise.all([page.waitForURL(/\/account$/), page.click('button:has-text("Change password")')]);
    expect(await page.locator('.alert').innerText()).toBe('Your password was changed.');
    await context.close();
  });
});
