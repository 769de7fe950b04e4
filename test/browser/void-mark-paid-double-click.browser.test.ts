import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { buildReceiptRow, buildTiers } from '../support/billing-factories.js';
import {
  answerFormsLate,
  type BrowserRig,
  closeRigAndDatabase,
  doubleClickButton,
  formsSentTo,
  hasChromium,
  sendAndSettle,
  signInThroughPage,
  startBrowserRig,
} from '../support/browser.js';
import { buildUser } from '../support/factories.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A double click on Void (its question accepted) or Mark paid sent the form twice: the first send
 * voided the receipt or marked it paid, the browser dropped that answer and showed the second's red
 * "Not voided. ..." or "Not marked paid. ...", so an admin whose click had worked was told it had
 * not. Every form that changes data is sent once now (public/js/submit-once.js).
 */
describe.skipIf(!hasChromium)('Void and Mark paid clicked twice', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    await buildUser(db.prisma, { username: 'boss', password: 'boss-password', role: 'admin' });
    await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
    rig = await startBrowserRig(buildTestApp(db));
    ({ browser, base } = rig);
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  /** The admin's page, signed in; every POST it sends is counted, and its first answer comes late. */
  const openReceipt = async (receiptId: number) => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    onTestFinished(() => context.close());
    const page = await context.newPage();
    const posts = formsSentTo(page, '/admin/receipts/');
    await signInThroughPage(page, base, 'boss', 'boss-password');
    await page.goto(`${base}/admin/receipts/${receiptId}`);
    await answerFormsLate(page, `**/admin/receipts/${receiptId}/*`);
    return { page, posts };
  };

  const auditCount = async (action: string, receiptId: number) => {
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM audit_log WHERE action = $1 AND target = $2', [
      action,
      `receipt:${receiptId}`,
    ]);
    return rows[0].n as number;
  };

  it('Mark paid: shows the receipt marked paid, not "Not marked paid"', async () => {
    const receipt = await buildReceiptRow(db, 'alice');
    const { page, posts } = await openReceipt(receipt.id);
    await page.getByLabel('Amount received (THB)').fill('0.50');
    await sendAndSettle(page, () => doubleClickButton(page, 'Mark paid'));

    expect(await page.getByText('Not marked paid').count()).toBe(0);
    expect(await page.locator('.alert.error').count()).toBe(0);
    expect(await page.locator('.badge.big').textContent()).toBe('Status: paid');
    expect(posts).toHaveLength(1);
    expect(await auditCount('receipt.mark_paid', receipt.id)).toBe(1);
  });

  it('Void, its question accepted: shows the receipt voided, not "Not voided"', async () => {
    const receipt = await buildReceiptRow(db, 'alice');
    const { page, posts } = await openReceipt(receipt.id);
    const questions: string[] = [];
    page.on('dialog', (dialog) => {
      questions.push(dialog.message());
      void dialog.accept();
    });
    await page.getByLabel('Reason to void').fill('wrong tier');
    await sendAndSettle(page, () => doubleClickButton(page, 'Void receipt'));

    expect(await page.getByText('Not voided').count()).toBe(0);
    expect(await page.locator('.alert.error').count()).toBe(0);
    expect(await page.locator('.badge.big').textContent()).toBe('Status: void');
    expect(posts).toHaveLength(1);
    // Asked once: the second click of the double click is not asked about a send that will not happen.
    expect(questions).toHaveLength(1);
    expect(await auditCount('receipt.void', receipt.id)).toBe(1);
  });

  it('Void: a question answered no leaves the next click free to send', async () => {
    const receipt = await buildReceiptRow(db, 'alice');
    const { page, posts } = await openReceipt(receipt.id);
    await page.getByLabel('Reason to void').fill('wrong tier');
    page.once('dialog', (dialog) => void dialog.dismiss());
    await page.getByRole('button', { name: 'Void receipt', exact: true }).click();
    expect(posts).toHaveLength(0);
    expect(await auditCount('receipt.void', receipt.id)).toBe(0);

    // At once, well inside the 10 s a sent form waits: the send told no was never sent.
    page.once('dialog', (dialog) => void dialog.accept());
    await sendAndSettle(page, () => page.getByRole('button', { name: 'Void receipt', exact: true }).click());
    expect(await page.locator('.badge.big').textContent()).toBe('Status: void');
    expect(posts).toHaveLength(1);
    expect(await auditCount('receipt.void', receipt.id)).toBe(1);
  });
});
