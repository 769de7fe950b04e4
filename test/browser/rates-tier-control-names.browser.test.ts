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
 * Admin → Rates as a screen reader reads its forms (Tab from one field to the next, or its list of
 * form fields and buttons): each tier's card had fields read "CPU core-hour", "GPU-hour",
 * "Memory GB-hour" and a button "Set new rates", the same in every card, so nothing said which
 * tier's rates a field held or a press changed; the tier's name is only in the card's heading,
 * which moving through the fields does not read (WCAG 2.4.6, 1.3.1).
 */
describe.skipIf(!hasChromium)("Admin → Rates's controls, read out of their tier's card", { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    await buildUser(db.prisma, { username: 'root', role: 'admin', password: 'root-password' });
    rig = await startBrowserRig(buildTestApp(db));
    ({ base } = rig);
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  /** The accessible names of the page's controls of `role`, as the accessibility tree has them. */
  async function namesOf(page: Page, role: 'textbox' | 'button'): Promise<string[]> {
    const snapshot = await page.locator('main').ariaSnapshot();
    return [...snapshot.matchAll(new RegExp(`- ${role} "([^"]*)"`, 'g'))].map((match) => match[1] ?? '');
  }

  /** The words the eye reads in the element `selector`: its text less what is drawn in a pixel or less. */
  async function shownWords(page: Page, selector: string): Promise<string> {
    const element = page.locator(selector);
    let text = (await element.textContent()) ?? '';
    for (const part of await element.locator('*').all()) {
      const box = await part.boundingBox();
      if (box && box.width <= 1) text = text.replace((await part.textContent()) ?? '', '');
    }
    return text.trim();
  }

  it("names each tier's rate fields, its Set new rates and its History with the tier", async () => {
    const { page } = await signedInPage(rig, 'root', 'root-password');
    await page.goto(`${base}/admin/rates`);
    for (const tier of ['mu', 'gov', 'private']) {
      for (const name of [`CPU core-hour of ${tier}`, `GPU-hour of ${tier}`, `Memory GB-hour of ${tier}`]) {
        expect(await page.getByRole('textbox', { name, exact: true }).count(), name).toBe(1);
      }
      const setRates = `Set new rates of ${tier}`;
      expect(await page.getByRole('button', { name: setRates, exact: true }).count(), setRates).toBe(1);
      // The rate history's disclosure: "History (1)" in each card.
      const history = page.locator(`#tier-${tier} details summary`).last();
      expect(await history.textContent(), tier).toMatch(new RegExp(`^History of ${tier} \\(1\\)$`));
    }
    // Opened, the rename form's fields name the tier they rename.
    await page.locator('#rename-gov summary').press('Enter');
    expect(await page.getByRole('textbox', { name: 'Name of gov', exact: true }).count()).toBe(1);
    expect(await page.getByRole('textbox', { name: 'Description of gov (optional)', exact: true }).count()).toBe(1);
    // No two fields, and no two buttons, of the page read the same.
    for (const role of ['textbox', 'button'] as const) {
      const names = await namesOf(page, role);
      expect(
        names.filter((name, index) => names.indexOf(name) !== index),
        role,
      ).toEqual([]);
    }
    // To the eye they read as before.
    expect(await shownWords(page, 'label[for="cpu-gov"]')).toBe('CPU core-hour');
    expect(await shownWords(page, '#tier-gov > form.form-row button')).toBe('Set new rates');
    expect(await shownWords(page, '#tier-gov > details:last-of-type > summary')).toBe('History (1)');
    expect(await shownWords(page, 'label[for="edit-name-gov"]')).toBe('Name');
    await page.context().close();
  });
});
