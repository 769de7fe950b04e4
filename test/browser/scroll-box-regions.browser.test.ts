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
 * The boxes of My usage, admin usage, the month-end runs, tiers, rates, users, ingestion, the public
 * rates and the printable receipt had none of it after the first pages got it: every box is now
 * opened by one partial (views/partials/scroll-box.ejs).
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
    await db.prisma.monthEndRun.create({
      data: {
        billedThrough: new Date('2026-10-31T00:00:00Z'),
        startedBy: 'root',
        finishedAt: new Date(),
        outcome: 'succeeded',
        usersTotal: 1,
        usersDone: 1,
        skipped: [{ username: 'lee', kind: 'nothing_left', reason: 'Nothing to bill: no finished, unbilled jobs.' }],
      },
    });
    await db.prisma.ingestionRun.create({
      data: {
        trigger: 'manual',
        windowStart: new Date(Date.now() - 3_600_000),
        windowEnd: new Date(),
        outcome: 'success',
        finishedAt: new Date(),
        durationMs: 1_000,
      },
    });
    rig = await startBrowserRig(buildTestApp(db));
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  it.each([
    ['/admin/audit', 'root', ['Audit log entries']],
    ['/admin/receipts', 'root', ['Receipts, newest first']],
    ['/admin/payments', 'root', ['All payments', 'Webhook deliveries']],
    ['/admin/receipts/1', 'root', ['Jobs on receipt #1']],
    ['/me/receipts', 'kim', ['Receipts']],
    ['/me/receipts/1/print', 'kim', ['Jobs on receipt #1']],
    ['/me', 'kim', ['Jobs']],
    ['/me?view=aggregate', 'kim', ['Usage per day, newest first']],
    ['/me?view=billed', 'kim', ["Billed jobs, the newest receipt first and each receipt's jobs newest first"]],
    ['/admin/rates', 'root', ['Rate history of mu', 'Rate history of gov', 'Rate history of private']],
    ['/admin/usage', 'root', ['Usage by user']],
    ['/admin/month-end', 'root', ['Month-end runs, newest first']],
    ['/admin/month-end/1', 'root', ['Users skipped by this run']],
    ['/admin/tiers', 'root', ['Users and their tiers']],
    ['/admin/users', 'root', ['Users']],
    ['/admin/ingestion', 'root', ['Recent ingestion runs']],
    ['/rates', 'kim', ['Rates by tier']],
  ])('%s: each scroll box is a named region the Tab key reaches, with a ring', async (path, username, names) => {
    const { context, page } = await signedInPage(rig, username, `${username}-password`, {
      viewport: { width: 900, height: 800 },
    });
    await page.goto(`${rig.base}${path}`);
    const boxes = page.locator('main .table-wrap');
    // Named as its table's caption says, whatever the page.
    expect(
      await boxes.evaluateAll((wraps) =>
        wraps.map((wrap) => [
          wrap.getAttribute('role'),
          wrap.getAttribute('aria-label'),
          wrap.getAttribute('tabindex'),
          wrap.querySelector('caption')?.textContent,
        ]),
      ),
    ).toEqual(names.map((name) => ['region', name, '0', name]));
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
