import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import {
  type BrowserRig,
  closeRigAndDatabase,
  hasChromium,
  signInThroughPage,
  startBrowserRig,
} from '../support/browser.js';
import { buildUser } from '../support/factories.js';
import { sessionsWaitingForLocks } from '../support/lock-waits.js';
import { monthEndRunPathOf } from '../support/month-end.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A month-end run's page follows the run while it goes on. It reloaded itself every 2 s (a meta
 * refresh), and each reload put the keyboard's focus and the scroll position back at the top and
 * made a screen reader read the page again: a keyboard user could not reach "All month-end runs"
 * or "Back to billing" while the run went on. Now a script asks for the run's JSON, writes its
 * counts into the page in place, and loads the page once, when the run has ended. That reload left
 * the focus at the page's top, and a screen reader said nothing of the run's end: the summary of a
 * run the page watched end now takes the focus, as a flash does (not that of a run ended before).
 */
describe.skipIf(!hasChromium)("a running month-end run's page", { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;
  let admin: Agent;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
    await buildJobs(
      db,
      ['mefocus1', 'mefocus2', 'mefocus3'].map((user) => ({ user, end: '2025-08-20T03:00:00Z' })),
    );
    const app = buildTestApp(db);
    admin = await signInAs(app, 'boss', 'boss-password');
    rig = await startBrowserRig(app);
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  /** The element holding the focus: its role (or tag) and the start of its text. */
  const focusOf = (page: Page) =>
    page.evaluate(
      `(() => { const el = document.activeElement; if (!el || el === document.body) return 'body'; return (el.getAttribute('role') ?? el.tagName.toLowerCase()) + ' ' + (el.textContent ?? '').trim().slice(0, 50); })()`,
    ) as Promise<string>;

  it('keeps the focus where the admin put it while the run goes on, then shows its summary and focuses it', async () => {
    // Holds the run at its first users' tiers, after it has listed the users to bill.
    const stall = await db.pool.connect();
    const context = await rig.browser.newContext();
    try {
      await stall.query('BEGIN');
      await stall.query('LOCK TABLE tier_overrides IN ACCESS EXCLUSIVE MODE');
      const started = await admin
        .post('/admin/month-end')
        .set('Accept', 'text/html')
        .type('form')
        .send({ before: '2025-08-31', csrf_token: await csrfTokenOf(admin, '/admin/receipts') });
      const runPath = monthEndRunPathOf(started);
      expect(await sessionsWaitingForLocks(db.pool, 5_000, 2)).toBe(2);

      const page = await context.newPage();
      await signInThroughPage(page, rig.base, 'boss', 'boss-password');
      await page.goto(`${rig.base}${runPath}`);
      await page.waitForSelector('text=0 of 3 users done');
      let loads = 0;
      page.on('load', () => {
        loads += 1;
      });
      await page.focus('a[href="/admin/month-end"]');

      // Two checks of the run's JSON, or the page loading again (the old meta refresh, at 2 s).
      const isStatusCheck = (url: string) => url === `${rig.base}${runPath}`;
      const checks = (async () => {
        await page.waitForResponse(
          (response) => isStatusCheck(response.url()) && response.request().headers().accept === 'application/json',
        );
        await page.waitForResponse(
          (response) => isStatusCheck(response.url()) && response.request().headers().accept === 'application/json',
        );
      })();
      await Promise.race([checks, page.waitForEvent('load')]);
      expect(loads).toBe(0);
      const focused = await page.evaluate('document.activeElement && document.activeElement.textContent');
      expect(focused).toBe('All month-end runs');
      expect(await page.textContent('#month-end-run-status')).toContain('0 of 3 users done');

      // Progress the run records (written here, as the stalled run cannot) shows in place, without a reload.
      const runId = Number(runPath.split('/').pop());
      await db.prisma.monthEndRun.update({
        where: { id: runId },
        data: {
          usersDone: 2,
          receiptCount: 1,
          noChargeCount: 1,
          skipped: [{ username: 'mefocus2', kind: 'nothing_left', reason: 'Nothing to bill.' }],
        },
      });
      await page.waitForSelector('#month-end-run-status:has-text("2 of 3 users done.")');
      expect(await page.textContent('[data-run="users"]')).toContain('2 of 3 done');
      expect(await page.textContent('[data-run="receipts"]')).toBe('1');
      expect(await page.textContent('[data-run="no-charge"]')).toBe(' (1 of 0.00, settled as no charge)');
      expect(await page.textContent('[data-run="skipped"]')).toBe('1');
      expect(loads).toBe(0);
      expect(await page.evaluate('document.activeElement && document.activeElement.textContent')).toBe(
        'All month-end runs',
      );

      await stall.query('COMMIT');
      // Once the run has ended the page is loaded once more, with the run's summary.
      await page.waitForSelector('text=3 receipts created', { timeout: 60_000 });
      expect(page.url()).toBe(`${rig.base}${runPath}`);
      expect(await page.textContent('.badge')).toBe('succeeded');
      // The summary of the run the page watched end takes the focus, as a flash does: that reload
      // left it at the page's top, and a screen reader said nothing of the run's end or what it did.
      await page.waitForLoadState('load');
      expect(await focusOf(page)).toBe('status Month-end run up to 2025-08-31: 3 receipts created');

      // Loaded again (F5), or opened afresh, the page of the ended run is its content, not news.
      await page.reload();
      expect(await focusOf(page)).toBe('body');
      const fresh = await context.newPage();
      await fresh.goto(`${rig.base}${runPath}`);
      expect(await fresh.textContent('.badge')).toBe('succeeded');
      expect(await focusOf(fresh)).toBe('body');
    } finally {
      await stall.query('ROLLBACK').catch(() => undefined);
      stall.release();
      await context.close();
    }
  });

  it('still loads itself again in a browser without JavaScript', async () => {
    const stall = await db.pool.connect();
    const context = await rig.browser.newContext({ javaScriptEnabled: false });
    try {
      await buildJobs(db, [{ user: 'mefocus4', end: '2025-08-22T03:00:00Z' }]);
      await stall.query('BEGIN');
      await stall.query('LOCK TABLE tier_overrides IN ACCESS EXCLUSIVE MODE');
      const started = await admin
        .post('/admin/month-end')
        .set('Accept', 'text/html')
        .type('form')
        .send({ before: '2025-08-31', csrf_token: await csrfTokenOf(admin, '/admin/receipts') });
      const runPath = monthEndRunPathOf(started);
      const page = await context.newPage();
      await signInThroughPage(page, rig.base, 'boss', 'boss-password');
      await page.goto(`${rig.base}${runPath}`);
      await page.waitForSelector('text=users done');
      // The meta refresh inside <noscript> applies when scripts do not run.
      await page.waitForEvent('load');
      expect(page.url()).toBe(`${rig.base}${runPath}`);
      await stall.query('COMMIT');
      // The run ends before the file does: left billing in the background, it held a connection of the
      // app's pool while afterAll closed it, and under CI's load the hook timed out (120 s) waiting.
      await page.waitForSelector('.badge:has-text("succeeded")', { timeout: 60_000 });
    } finally {
      await stall.query('ROLLBACK').catch(() => undefined);
      stall.release();
      await context.close();
    }
  });
});
