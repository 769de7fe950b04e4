import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReceiptRow, buildTiers } from '../support/billing-factories.js';
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
 * On the admin's receipt page the Mark paid and Void forms had no heading and no name: a screen reader
 * jumping by heading went from "Receipt #7" past both, and its list of forms read two unnamed ones.
 * Each now has a heading (read, not shown: the page looks as before) that names its form.
 */
describe.skipIf(!hasChromium)("the admin receipt page's Mark paid and Void forms", { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    await buildUser(db.prisma, { username: 'kim', password: 'kim-password' });
    await buildUser(db.prisma, { username: 'root', role: 'admin', password: 'root-password' });
    rig = await startBrowserRig(buildTestApp(db));
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  it("each has a heading, after the receipt's, that names the form", async () => {
    const receipt = await buildReceiptRow(db, 'kim');
    const { context, page } = await signedInPage(rig, 'root', 'root-password');
    await page.goto(`${rig.base}/admin/receipts/${receipt.id}`);
    const headings = await page
      .locator('main')
      .getByRole('heading')
      .evaluateAll((all) => all.map((heading) => `${heading.tagName} ${heading.textContent?.trim()}`));
    expect(headings).toEqual([
      `H1 Receipt #${receipt.id}`,
      `H2 Mark receipt #${receipt.id} paid`,
      `H2 Void receipt #${receipt.id}`,
    ]);
    expect(await page.getByRole('form', { name: `Mark receipt #${receipt.id} paid` }).getAttribute('action')).toBe(
      `/admin/receipts/${receipt.id}/paid`,
    );
    expect(await page.getByRole('form', { name: `Void receipt #${receipt.id}` }).getAttribute('action')).toBe(
      `/admin/receipts/${receipt.id}/void`,
    );
    await context.close();
  });
});
