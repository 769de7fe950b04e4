import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildReceiptRow, buildTiers } from '../support/billing-factories.js';
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
 * A change's success ("Password changed.", "Receipt #7 voided", "Rates saved") was told by a status
 * region that was already on the page as it loaded after the redirect, with the keyboard's focus at
 * the page's top: a screen reader announces a status region's changes, not its first content, so it
 * said nothing of it. The flash now takes the focus, as a refused form's reason does, except from a
 * form's own autofocus (the sign-in page).
 */
describe.skipIf(!hasChromium)('a success told after a redirect', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    await buildUser(db.prisma, { username: 'kim', password: 'kim-password' });
    await buildUser(db.prisma, { username: 'root', role: 'admin', password: 'root-password' });
    await buildUser(db.prisma, { username: 'lee', password: 'lee-password' });
    // A job not finished (held for a requeue): the new receipt's page says it left it out with a flash (the receipt alone says the rest).
    await buildJobs(db, [
      {
        user: 'kim',
        jobId: '8100',
        end: new Date(Date.now() - 3_600_000),
        elapsedSec: 3_600,
        allocCpus: 4,
        allocMemMb: 8_000,
      },
      { user: 'kim', jobId: '8101', end: new Date(Date.now() - 1_800_000), state: 'REQUEUE_HOLD', isTerminal: false },
      // Finished jobs alone: the new receipt's page had nothing saying it was just made.
      { user: 'lee', jobId: '8200', end: new Date(Date.now() - 3_600_000), elapsedSec: 3_600, allocCpus: 2 },
      { user: 'lee', jobId: '8201', end: new Date(Date.now() - 1_800_000), elapsedSec: 1_800, allocCpus: 2 },
    ]);
    rig = await startBrowserRig(buildTestApp(db));
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  /** The element holding the focus: its role and the start of its text. */
  const focused = (page: Page) =>
    page.evaluate(
      `(() => { const el = document.activeElement; return (el.getAttribute('role') ?? el.tagName.toLowerCase()) + ' ' + (el.textContent ?? '').trim().slice(0, 30); })()`,
    ) as Promise<string>;

  /** Submits with the button named `name` and waits for the page the redirect opens to load. */
  const send = (page: Page, name: string) =>
    Promise.all([page.waitForEvent('load'), page.getByRole('button', { name, exact: true }).click()]);

  it('a changed password: the status takes the focus', async () => {
    const { context, page } = await signedInPage(rig, 'kim', 'kim-password');
    await page.goto(`${rig.base}/account`);
    await page.fill('#current', 'kim-password');
    await page.fill('#password', 'a-new-long-password');
    await page.fill('#confirm', 'a-new-long-password');
    await send(page, 'Change password');
    expect(await focused(page)).toMatch(/^status Your password was changed/);
    await context.close();
  });

  it('a created receipt that left an unfinished job out: the status takes the focus', async () => {
    const { context, page } = await signedInPage(rig, 'kim', 'a-new-long-password');
    await page.goto(`${rig.base}/me`);
    await send(page, 'Create receipt');
    expect(page.url()).toMatch(/\/me\/receipts\/\d+/);
    expect(await focused(page)).toMatch(/^status Receipt #\d+ created/);
    await context.close();
  });

  it('a created receipt with every job finished: the status says so and takes the focus', async () => {
    const { context, page } = await signedInPage(rig, 'lee', 'lee-password');
    await page.goto(`${rig.base}/me`);
    await send(page, 'Create receipt');
    expect(page.url()).toMatch(/\/me\/receipts\/\d+#receipt$/);
    expect(await focused(page)).toMatch(/^status Receipt #\d+ created: 2 jo/);
    // The receipt's heading follows it, for a screen reader going on from the message.
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toMatch(/^Receipt #\d+$/);
    // Printed there and then (its Print button), the paper has the receipt and not the message.
    const flash = page.locator('.alert[role="status"]', { hasText: 'created' });
    await page.emulateMedia({ media: 'print' });
    expect(await flash.isVisible()).toBe(false);
    await page.emulateMedia({ media: 'screen' });
    expect(await flash.isVisible()).toBe(true);
    // Once: a reload shows the receipt alone, the focus at the page's top.
    await page.reload();
    expect(await page.locator('.alert[role="status"]', { hasText: 'created' }).count()).toBe(0);
    expect(await focused(page)).toMatch(/^body /);
    await context.close();
  });

  it('a receipt marked paid, then one voided: the status takes the focus', async () => {
    const { context, page } = await signedInPage(rig, 'root', 'root-password');
    const paid = await buildReceiptRow(db, 'kim');
    await page.goto(`${rig.base}/admin/receipts/${paid.id}`);
    await page.getByLabel('Amount received (THB)').fill('0.50');
    await send(page, 'Mark paid');
    expect(await focused(page)).toMatch(new RegExp(`^status Receipt #${paid.id} marked paid`));

    const voided = await buildReceiptRow(db, 'kim');
    await page.goto(`${rig.base}/admin/receipts/${voided.id}`);
    page.on('dialog', (dialog) => dialog.accept());
    await page.fill('#reason', 'billed twice');
    await send(page, 'Void receipt');
    expect(await focused(page)).toMatch(new RegExp(`^status Receipt #${voided.id} voided`));
    await context.close();
  });

  it("saved rates: the status in the tier's card takes the focus", async () => {
    const { context, page } = await signedInPage(rig, 'root', 'root-password');
    await page.goto(`${rig.base}/admin/rates`);
    await page.fill('#cpu-gov', '0.90');
    await send(page, 'Set new rates of gov');
    expect(page.url()).toMatch(/#tier-gov$/);
    expect(await focused(page)).toMatch(/^status /);
    expect(await page.evaluate('document.activeElement.closest("section").id')).toBe('tier-gov');
    await context.close();
  });

  // Shown in the answer to the POST itself (not a flash after a redirect), once: with the focus left
  // at the page's top, a screen reader said nothing of the password it had to pass on.
  it('a generated password, for a new user and a reset one: the status with it takes the focus', async () => {
    const { context, page } = await signedInPage(rig, 'root', 'root-password');
    page.on('dialog', (dialog) => dialog.accept());
    await page.goto(`${rig.base}/admin/users`);
    await page.fill('#new-username', 'pat');
    await send(page, 'Create');
    expect(await focused(page)).toMatch(/^status Created pat\. Their password/);

    await page.goto(`${rig.base}/admin/users?q=lee`);
    await send(page, 'Reset password of lee');
    expect(await focused(page)).toMatch(/^status New password for lee: /);
    await context.close();
  });

  // The POST answers with the verdict at the page's top and the focus left there: a screen reader
  // said nothing of what the walk found. The last verdict a GET shows is the page's content, not news.
  it('the audit chain verified now: the verdict takes the focus', async () => {
    const { context, page } = await signedInPage(rig, 'root', 'root-password');
    await page.goto(`${rig.base}/admin/audit/verify`);
    expect(await focused(page)).toMatch(/^body /);
    await send(page, 'Verify the chain now');
    expect(await focused(page)).toMatch(/^div OK: (all \d+ entries are|the one entry is) intact/);
    await page.goto(`${rig.base}/admin/audit/verify`);
    expect(await page.getByText(/^Last verified at /).count()).toBe(1);
    expect(await focused(page)).toMatch(/^body /);
    await context.close();
  });

  it("the sign-in page keeps its field's autofocus, with the signed-out status on it", async () => {
    const { context, page } = await signedInPage(rig, 'root', 'root-password');
    await page.goto(`${rig.base}/me`);
    await send(page, 'Sign out (root)');
    expect(await page.locator('[role="status"]').count()).toBe(1);
    expect(await focused(page)).toBe('input ');
    expect(await page.evaluate('document.activeElement.id')).toBe('username');
    await context.close();
  });
});
