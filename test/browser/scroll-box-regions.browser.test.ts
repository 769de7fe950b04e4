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
 * A table scrolls sideways inside its own box on a tablet or at 200% zoom: the box had no name and,
 * holding no link (the webhook deliveries, a receipt's jobs), could not be reached with the keyboard to
 * scroll it. Each box is now a region named after its table, in the Tab order, with a focus ring.
 */
describe.skipIf(!hasChromium)('the boxes tables scroll in', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    await buildUser(db.prisma, { username: 'kim', password: 'kim-password' });
    await buildUser(db.prisma, { username: 'root', role: 'admin', password: 'root-password' });
    await buildReceiptRow(db, 'kim');
    rig = await startBrowserRig(buildTestApp(db));
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  it.each([
    ['/admin/audit', 'root', ['Audit log entries']],
    ['/admin/receipts', 'root', ['Receipts, newest first']],
    ['/admin/payments', 'root', ['All payments', 'Webhook deliveries']],
    ['/admin/receipts/1', 'root', ['Jobs on receipt #1']],
    ['/me/receipts', 'kim', ['Receipts']],
  ])('%s: each scroll box is a named region the Tab key reaches, with a ring', async (path, username, names) => {
    const { context, page } = await signedInPage(rig, username, `${username}-password`, {
      viewport: { width: 900, height: 800 },
    });
    await page.goto(`${rig.base}${path}`);
    const boxes = page.locator('main .table-wrap');
    expect(
      await boxes.evaluateAll((wraps) =>
        wraps.map((wrap) => [
          wrap.getAttribute('role'),
          wrap.getAttribute('aria-label'),
          wrap.getAttribute('tabindex'),
        ]),
      ),
    ).toEqual(names.map((name) => ['region', name, '0']));
    // The keyboard gets there: Tab from a button put just before it.
    await page.evaluate(
      `document.querySelector('main .table-wrap').insertAdjacentHTML('beforebegin', '<button id="before-box">x</button>')`,
    );
    await page.focus('#before-box');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(`document.activeElement === document.querySelector('main .table-wrap')`)).toBe(true);
    expect(await page.evaluate(`getComputedStyle(document.activeElement).outlineStyle`)).toBe('solid');
    await context.close();
  });
});
