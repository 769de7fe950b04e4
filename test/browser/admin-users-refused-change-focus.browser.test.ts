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
 * A refused change to a listed user (the last active admin making themselves a user, a password reset
 * of a password changed meanwhile) came back as the users page with the reason at its top, but the
 * keyboard's focus was on nothing: a screen reader heard "Error: Users" and then the page from its
 * start, and Tab went into the header, the reason never read. The reason takes the focus now, as a
 * refusal about no field does on every other admin page.
 */
describe.skipIf(!hasChromium)("the users page's refused change", { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildUser(db.prisma, { username: 'onlyadmin', role: 'admin', password: 'onlyadmin-password' });
    await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
    rig = await startBrowserRig(buildTestApp(db));
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  it('moves the focus to the reason after the last admin tries to become a user, by keyboard', async () => {
    const { context, page } = await signedInPage(rig, 'onlyadmin', 'onlyadmin-password', {
      viewport: { width: 1280, height: 800 },
    });
    page.on('dialog', (dialog) => dialog.accept());
    for (const width of [1280, 375]) {
      await page.setViewportSize({ width, height: 800 });
      await page.goto(`${rig.base}/admin/users`);
      await page.getByRole('button', { name: 'Make user your own account' }).focus();
      await Promise.all([page.waitForEvent('load'), page.keyboard.press('Enter')]);

      expect(await page.title()).toBe('Error: Users · HPC Billing');
      const focused = (await page.evaluate(
        `(() => { const el = document.activeElement; const box = el.getBoundingClientRect();
          return { role: el.getAttribute('role'), text: el.textContent.trim(), isOnScreen: box.top >= 0 && box.bottom <= innerHeight }; })()`,
      )) as { role: string | null; text: string; isOnScreen: boolean };
      expect(focused).toEqual({
        role: 'alert',
        text: 'Not changed. This is the last active admin; make another admin first.',
        isOnScreen: true,
      });
      // The next Tab goes on from the reason into the page, not back to the header.
      await page.keyboard.press('Tab');
      expect(await page.evaluate('document.activeElement.id')).toBe('new-username');
    }
    await context.close();
    expect((await db.prisma.user.findUniqueOrThrow({ where: { username: 'onlyadmin' } })).role).toBe('admin');
  });
});
