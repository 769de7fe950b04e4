import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  answerFormsLate,
  type BrowserRig,
  closeRigAndDatabase,
  doubleClickButton,
  hasChromium,
  sendAndSettle,
  startBrowserRig,
} from '../support/browser.js';
import { buildUser } from '../support/factories.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A double click on Sign in sent the form twice: with a wrong password both sends counted toward
 * the lock (two failures for one try), and with the right one the first signed in and the second
 * answered with "You are already signed in as alice." over the sign-in that had worked. The form is
 * sent once now, as every form that changes data is (public/js/submit-once.js).
 */
describe.skipIf(!hasChromium)('Sign in clicked twice', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
    rig = await startBrowserRig(buildTestApp(db));
    ({ browser, base } = rig);
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  /** In a new browser, alice's password typed and Sign in double-clicked, its first answer late: the page it ends on. */
  const doubleClickSignIn = async (password: string) => {
    const context = await browser.newContext();
    onTestFinished(() => context.close());
    const page = await context.newPage();
    await page.goto(`${base}/login`);
    await page.fill('#username', 'alice');
    await page.fill('#password', password);
    await answerFormsLate(page, '**/login');
    await sendAndSettle(page, () => doubleClickButton(page, 'Sign in'));
    return page;
  };

  const auditCounts = async () => {
    const { rows } = await db.pool.query(
      "SELECT action, count(*)::int AS n FROM audit_log WHERE action LIKE 'login.%' GROUP BY action ORDER BY action",
    );
    return Object.fromEntries(rows.map((row) => [row.action, row.n]));
  };

  it('with a wrong password counts one failure toward the lock, not two', async () => {
    const page = await doubleClickSignIn('wrong-password');
    expect(page.url()).toBe(`${base}/login`);
    expect(await page.getByText('Wrong username or password.').count()).toBe(1);
    const { rows } = await db.pool.query(
      "SELECT ip, failure_count FROM auth_throttle WHERE username = 'alice' ORDER BY ip",
    );
    expect(rows).toEqual([
      { ip: '*', failure_count: 1 },
      { ip: '127.0.0.1', failure_count: 1 },
    ]);
    expect(await auditCounts()).toEqual({ 'login.failure': 1 });
  });

  it('with the right password signs in, without "already signed in" or a failure', async () => {
    await db.pool.query('DELETE FROM auth_throttle');
    const before = await auditCounts();
    const page = await doubleClickSignIn('alice-password');
    expect(page.url()).toBe(`${base}/me`);
    expect(await page.getByText('already signed in').count()).toBe(0);
    // The audit log is append-only: what this sign-in added is counted.
    expect(await auditCounts()).toEqual({ ...before, 'login.success': 1 });
  });
});
