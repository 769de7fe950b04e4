import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
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
 * The buttons of each row of the users and tier-overrides tables, as a screen reader lists them
 * (its list of buttons, or Tab from one to the next): every row's read "Make admin", "Disable",
 * "Reset password", "Save", the same for each user, with nothing to say whose account a press
 * changes (WCAG 2.4.6; found by the accessibility review). The History link beside them already
 * named its user.
 */
describe.skipIf(!hasChromium)(
  'the buttons of the admin tables of users, read out of their row',
  { timeout: 120_000 },
  () => {
    let db: TestDatabase;
    let rig: BrowserRig;
    let base: string;

    beforeAll(async () => {
      db = await createTestDatabase();
      await buildTiers(db);
      await buildUser(db.prisma, { username: 'root', role: 'admin', password: 'root-password' });
      await buildUser(db.prisma, { username: 'kim', password: 'kim-password' });
      await buildUser(db.prisma, { username: 'lee', password: 'lee-password' });
      rig = await startBrowserRig(buildTestApp(db));
      ({ base } = rig);
    });

    afterAll(() => closeRigAndDatabase(rig, db));

    /** The accessible names of the buttons in the main table's rows, as the accessibility tree has them. */
    async function rowButtonNames(page: Page): Promise<string[]> {
      const names: string[] = [];
      for (const button of await page.locator('main table tbody').getByRole('button').all()) {
        names.push(((await button.textContent()) ?? '').replace(/\s+/g, ' ').trim());
      }
      return names;
    }

    /** The words of the button named `name` that the eye reads: its text less what is drawn in a pixel or less. */
    async function shownWords(page: Page, name: string): Promise<string> {
      const button = page.getByRole('button', { name, exact: true });
      let text = (await button.textContent()) ?? '';
      for (const part of await button.locator('*').all()) {
        const box = await part.boundingBox();
        if (box && box.width <= 1) text = text.replace((await part.textContent()) ?? '', '');
      }
      return text.trim();
    }

    it("names each user's buttons on the users page with the user, and shows the same words as before", async () => {
      const { page } = await signedInPage(rig, 'root', 'root-password');
      await page.goto(`${base}/admin/users`);
      for (const name of [
        'Make admin kim',
        'Disable kim',
        'Reset password of kim',
        'Sign out all sessions of kim',
        'Make admin lee',
        'Disable lee',
      ]) {
        expect(await page.getByRole('button', { name, exact: true }).count(), name).toBe(1);
      }
      // Your own row names you as the confirmation does.
      expect(await page.getByRole('button', { name: 'Make user your own account', exact: true }).count()).toBe(1);
      // No two buttons in the table read the same.
      const names = await rowButtonNames(page);
      expect(new Set(names).size).toBe(names.length);
      // To the eye the buttons read as they did.
      expect(await shownWords(page, 'Disable kim')).toBe('Disable');
      expect(await shownWords(page, 'Reset password of kim')).toBe('Reset password');
      expect(await shownWords(page, 'Sign out all sessions of kim')).toBe('Sign out all sessions');
      await page.context().close();
    });

    it("names each row's Save on the tier overrides page with its user", async () => {
      const { page } = await signedInPage(rig, 'root', 'root-password');
      await page.goto(`${base}/admin/tiers`);
      for (const username of ['kim', 'lee', 'root']) {
        const name = `Save tier of ${username}`;
        expect(await page.getByRole('button', { name, exact: true }).count(), name).toBe(1);
      }
      expect(await shownWords(page, 'Save tier of kim')).toBe('Save');
      await page.context().close();
    });
  },
);
