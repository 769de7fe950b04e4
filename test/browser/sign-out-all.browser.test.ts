import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
 * A researcher who left a lab computer signed in could end that session only by changing their
 * password. From their office browser, Sign out of all other sessions on the Account page now ends it:
 * the lab browser's next page is the sign-in form saying why, and the office browser stays signed in.
 */
describe.skipIf(!hasChromium)('Sign out of all other sessions, in two browsers', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildUser(db.prisma, { username: 'sam', password: 'sam-password-1' });
    rig = await startBrowserRig(buildTestApp(db));
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  it('signs the lab browser out, saying why, and keeps the office browser signed in', async () => {
    const lab = await signedInPage(rig, 'sam', 'sam-password-1', { landing: /\/me$/ });
    const office = await signedInPage(rig, 'sam', 'sam-password-1', { landing: /\/me$/ });

    await office.page.goto(`${rig.base}/account`);
    await Promise.all([
      office.page.waitForURL(/\/account$/),
      office.page.getByRole('button', { name: 'Sign out of all other sessions', exact: true }).click(),
    ]);
    expect(await office.page.locator('.alert').innerText()).toBe(
      '1 other session was signed out. This one stays signed in.',
    );
    // Still signed in: the next page is the page, not the sign-in form.
    await office.page.goto(`${rig.base}/me`);
    expect(new URL(office.page.url()).pathname).toBe('/me');

    await lab.page.goto(`${rig.base}/me`);
    expect(new URL(lab.page.url()).pathname).toBe('/login');
    expect(await lab.page.locator('.alert').innerText()).toBe(
      'Every other session of your account was signed out from another session, so this one was signed out. Sign in again.',
    );
    await lab.context.close();
    await office.context.close();
  });
});
