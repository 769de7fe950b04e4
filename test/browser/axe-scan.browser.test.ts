import { createRequire } from 'node:module';
import path from 'node:path';
import type express from 'express';
import type { Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs } from '../support/billing-factories.js';
import {
  type BrowserRig,
  closeRigAndDatabase,
  hasChromium,
  keptSignIns,
  startDummyPaymentsRig,
} from '../support/browser.js';
import { createPayingResearchers } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { voidReceiptAsJson } from '../support/receipt-steps.js';
import { signInAs } from '../support/sign-in.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * Every page a researcher and an admin can reach, scanned by axe-core (Deque's rule engine) for what
 * WCAG 2.1 A and AA ask: the same few hundred checks on each page (names, labels, contrast, landmarks,
 * headings, table headers, ids, ARIA), where the other browser tests check one thing by hand. A page
 * fails listing each violation as rule id, impact and the element it is on.
 */
const AXE_SOURCE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const WCAG_21_AA = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[]; html: string }[];
}

/** The page's WCAG 2.1 A and AA violations, one line each element: rule (impact) target, its HTML: what the rule asks. */
async function violationsOn(page: Page): Promise<string[]> {
  // A table's scroll shadows (.table-wrap's gradients, app.css) left axe-core unable to tell the colour
  // behind any text in a table: every cell's contrast came back "needs review", none checked. The
  // shadows are at the edges only; under them, the cells are on the card's white, as here.
  await page.addStyleTag({ content: '.table-wrap { background: var(--card) !important; }' });
  await page.addScriptTag({ path: AXE_SOURCE });
  // A string, run in the page: the tests are type-checked without the DOM's types.
  const violations = (await page.evaluate(
    `axe.run(document, { runOnly: { type: 'tag', values: ${JSON.stringify(WCAG_21_AA)} }, resultTypes: ['violations'] })
      .then((results) => results.violations.map(({ id, impact, help, nodes }) => ({ id, impact, help, nodes: nodes.map(({ target, html }) => ({ target, html })) })))`,
  )) as AxeViolation[];
  return violations.flatMap(({ id, impact, help, nodes }) =>
    nodes.map(({ target, html }) => `${id} (${impact}) ${target.join(' ')} ${html.slice(0, 100)}: ${help}`),
  );
}

describe.skipIf(!hasChromium)('an axe-core scan of every page', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let app: express.Express;
  let rig: BrowserRig;
  let receiptId: number;
  let heldReceiptId: number;
  let paidReceiptId: number;
  let voidedReceiptId: number;
  let checkoutPath: string;
  let monthEndRunId: number;
  const researchers = createPayingResearchers(() => ({ db, app }), 'kim');

  beforeAll(async () => {
    // Ingestion reads a file that is not there: Run now fails, and its reason is a page state scanned too.
    const missing = path.join(import.meta.dirname, 'no-such-sacct-file.psv');
    ({ db, app, rig } = await startDummyPaymentsRig({
      env: { APP_TZ: 'Asia/Bangkok', FALLBACK_CSV: missing },
      admin: 'boss',
    }));
    // kim1: a pending receipt, and jobs of the last five days on My usage still to bill, more than its page of 50.
    const kim = await researchers.researcherWithReceipt();
    receiptId = kim.receiptId;
    const now = Date.now();
    await buildJobs(
      db,
      Array.from({ length: 60 }, (_, index) => ({
        user: kim.user.username,
        jobId: String(9_100 + index),
        name: index % 2 ? 'md-run' : 'train',
        end: new Date(now - (index + 1) * 2 * 3_600_000),
        allocGpus: index % 4 === 0 ? 1 : 0,
        totalCpuSec: String(1_800 + index * 600),
      })),
    );
    // kim2: a checkout opened and not yet answered (the dummy provider's page).
    const paying = await researchers.researcherWithReceipt();
    checkoutPath = await researchers.startCheckout(paying.agent, paying.receiptId);
    // kim3: a payment held for an admin's review (the payments page's held row); kim4: paid online.
    heldReceiptId = (await researchers.heldLateSuccess()).receiptId;
    paidReceiptId = (await researchers.paidOnline()).receiptId;
    // kim5: a receipt voided by the admin.
    voidedReceiptId = (await researchers.researcherWithReceipt()).receiptId;
    await voidReceiptAsJson(await signInAs(app, 'boss', 'boss-password'), voidedReceiptId);
    // zoe: given a new password by the admin, shown once.
    await buildUser(db.prisma, { username: 'zoe' });
    const run = await db.prisma.monthEndRun.create({
      data: {
        billedThrough: new Date('2026-10-31T00:00:00Z'),
        startedBy: 'boss',
        finishedAt: new Date(),
        outcome: 'succeeded',
        usersTotal: 2,
        usersDone: 2,
        skipped: [{ username: 'alice', kind: 'nothing_left', reason: 'Nothing to bill: no finished, unbilled jobs.' }],
      },
    });
    monthEndRunId = run.id;
    // More runs than the month-end page's 50: its pager.
    await db.prisma.monthEndRun.createMany({
      data: Array.from({ length: 50 }, (_, index) => ({
        billedThrough: new Date(Date.UTC(2022, index, 0)),
        startedBy: 'boss',
        startedAt: new Date(Date.UTC(2022, index, 1)),
        finishedAt: new Date(Date.UTC(2022, index, 1, 0, 5)),
        outcome: 'succeeded' as const,
        usersTotal: 0,
        usersDone: 0,
      })),
    });
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  // Signing in is not what these check (the sign-in page is scanned on its own): each user signs in once,
  // and one page a user goes from state to state, resized for a phone's (a new context with its page is
  // about half a second of Chromium's CPU). Pages are scanned as they are served: axe-core is added to the
  // page as a script, past its CSP. A form that cannot be undone asks first (confirm.js): yes.
  let signIns: ReturnType<typeof keptSignIns>;
  const pages = new Map<string, Page>();
  async function pageOf(username: string | null, viewport = DESKTOP): Promise<Page> {
    let page = pages.get(username ?? '');
    if (!page) {
      if (username === null) {
        page = await (await rig.browser.newContext({ bypassCSP: true })).newPage();
      } else {
        signIns ??= keptSignIns(rig);
        ({ page } = await signIns(username, `${username}-password`, { bypassCSP: true }));
      }
      page.on('dialog', (dialog) => dialog.accept());
      pages.set(username ?? '', page);
    }
    await page.setViewportSize(viewport);
    await page.emulateMedia({ media: 'screen' });
    return page;
  }

  async function scan(username: string | null, path: () => string, expectedStatus = 200, viewport?: typeof PHONE) {
    const page = await pageOf(username, viewport);
    const response = await page.goto(`${rig.base}${path()}`);
    expect(response?.status(), path()).toBe(expectedStatus);
    expect(await violationsOn(page)).toEqual([]);
  }

  /**
   * Opens `path` as `username`, does `act` there (a form sent), and scans the page it ends on: the
   * states a form's refusal or answer shows, which no address opens.
   */
  async function scanAfter(username: string, path: string, act: (page: Page) => Promise<void>) {
    const page = await pageOf(username);
    await page.goto(`${rig.base}${path}`);
    await act(page);
    expect(await violationsOn(page)).toEqual([]);
  }

  /** Sends the form `button` is in past the browser's own checks (required, min, pattern): the app's refusal is the page scanned. */
  async function sendPastBrowserChecks(page: Page, button: Locator) {
    await page.evaluate(`document.querySelectorAll('form').forEach((form) => { form.noValidate = true; })`);
    await Promise.all([page.waitForEvent('load'), button.click()]);
  }

  describe('signed out', () => {
    it('the sign-in page', () => scan(null, () => '/login'));
    it('the rates', () => scan(null, () => '/rates'));
    it('a page that is not there (404)', () => scan(null, () => '/no-such-page', 404));
    it('the sign-in page refusing a wrong password', async () => {
      const page = await pageOf(null);
      await page.goto(`${rig.base}/login`);
      await page.fill('#username', 'kim1');
      await page.fill('#password', 'not-the-password');
      await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
      await page.waitForSelector('[aria-invalid="true"], [role="alert"]');
      expect(await violationsOn(page)).toEqual([]);
    });
  });

  describe('a researcher', () => {
    it('My usage, with a page of jobs and its pager', async () => {
      const page = await pageOf('kim1');
      await page.goto(`${rig.base}/me`);
      expect(await page.locator('nav.pagination').count()).toBeGreaterThan(0);
      expect(await violationsOn(page)).toEqual([]);
    });
    it('My usage on a phone', () => scan('kim1', () => '/me', 200, PHONE));
    it('My usage refusing a date window the wrong way round', () =>
      scan('kim1', () => '/me?start=2026-03-10&end=2026-03-01', 400));
    it('My receipts', () => scan('kim1', () => '/me/receipts'));
    it('a receipt', () => scan('kim1', () => `/me/receipts/${receiptId}`));
    it('a receipt on a phone', () => scan('kim1', () => `/me/receipts/${receiptId}`, 200, PHONE));
    it("a receipt's printable page", () => scan('kim1', () => `/me/receipts/${receiptId}/print`));
    it("a receipt's printable page, as printed", async () => {
      const page = await pageOf('kim1');
      await page.emulateMedia({ media: 'print' });
      await page.goto(`${rig.base}/me/receipts/${receiptId}/print`);
      expect(await violationsOn(page)).toEqual([]);
    });
    it('a receipt, as printed', async () => {
      const page = await pageOf('kim4');
      await page.emulateMedia({ media: 'print' });
      await page.goto(`${rig.base}/me/receipts/${paidReceiptId}`);
      expect(await violationsOn(page)).toEqual([]);
    });
    it('a receipt that is not there (404)', () => scan('kim1', () => '/me/receipts/999999', 404));
    it('Account', () => scan('kim1', () => '/account'));
    it('Account refusing a wrong current password', async () => {
      const page = await pageOf('kim1');
      await page.goto(`${rig.base}/account`);
      await page.fill('#current', 'not-my-password');
      await page.fill('#password', 'a-new-long-password');
      await page.fill('#confirm', 'a-new-long-password');
      await Promise.all([page.waitForURL(/\/account\/password$/), page.click('button:has-text("Change password")')]);
      expect(await violationsOn(page)).toEqual([]);
    });
    it('the sign-out page', () => scan('kim1', () => '/logout'));
    it("a receipt's Pay page", () => scan('kim1', () => `/payments/receipt/${receiptId}/start`));
    it('the dummy checkout', () => scan('kim2', () => checkoutPath.replace(/^https?:\/\/[^/]+/, '')));
    it('the payment status page, held', () => scan('kim3', () => `/payments/thanks?rid=${heldReceiptId}`));
    it('the payment status page, paid', () => scan('kim4', () => `/payments/thanks?rid=${paidReceiptId}`));
    it('a paid receipt', () => scan('kim4', () => `/me/receipts/${paidReceiptId}`));
    it('a voided receipt', () => scan('kim5', () => `/me/receipts/${voidedReceiptId}`));
    it('My usage refusing a receipt of nothing to bill', () =>
      scanAfter('kim1', '/me', async (page) => {
        await page.fill('#before', '2020-01-01');
        await sendPastBrowserChecks(page, page.getByRole('button', { name: 'Create receipt' }));
      }));
    it('My usage with the warning of an admin page refused', async () => {
      const page = await pageOf('kim1');
      await page.goto(`${rig.base}/admin/users`);
      expect(page.url()).toBe(`${rig.base}/me`);
      expect(await page.getByText('is for administrators only').count()).toBe(1);
      expect(await violationsOn(page)).toEqual([]);
    });
    it('a refused download (400)', () => scan('kim1', () => '/me.csv?start=2026-03-10&end=2026-03-01', 400));
  });

  describe('an admin', () => {
    it.each([
      ['Rates', '/admin/rates'],
      ['Tiers', '/admin/tiers'],
      ['Users', '/admin/users'],
      ['Usage', '/admin/usage'],
      ['Receipts', '/admin/receipts'],
      ['Payments', '/admin/payments'],
      ['the audit log', '/admin/audit'],
      ['the audit chain check', '/admin/audit/verify'],
      ['Ingestion', '/admin/ingestion'],
      ['Users, searched and filtered', '/admin/users?q=kim&role=user&status=active'],
      ['Tiers, searched', '/admin/tiers?q=kim'],
      ['Usage of a user', '/admin/usage?user=kim'],
      ['Billing, filtered', '/admin/receipts?status=paid&user=kim'],
      ['the audit log, filtered', '/admin/audit?actor=boss'],
    ])('%s', (_name, path) => scan('boss', () => path));
    it.each([
      ['Usage', '/admin/usage'],
      ['Billing', '/admin/receipts'],
      ['the audit log', '/admin/audit'],
    ])('%s refusing a window the wrong way round', (_name, path) =>
      scan('boss', () => `${path}?start=2026-03-10&end=2026-03-01&from=2026-03-10&to=2026-03-01`, 400),
    );
    it('a receipt', () => scan('boss', () => `/admin/receipts/${receiptId}`));
    it("a receipt's printable page", () => scan('boss', () => `/admin/receipts/${receiptId}/print`));
    it('Month-end, with a page of runs and its pager', async () => {
      const page = await pageOf('boss');
      await page.goto(`${rig.base}/admin/month-end`);
      expect(await page.getByRole('link', { name: /Older/ }).count()).toBeGreaterThan(0);
      expect(await violationsOn(page)).toEqual([]);
    });
    it('a month-end run', () => scan('boss', () => `/admin/month-end/${monthEndRunId}`));
    it('a paid receipt', () => scan('boss', () => `/admin/receipts/${paidReceiptId}`));
    it('a voided receipt', () => scan('boss', () => `/admin/receipts/${voidedReceiptId}`));
    it("a receipt's Mark paid refusing an amount that is not one", () =>
      scanAfter('boss', `/admin/receipts/${receiptId}`, async (page) => {
        await page.fill('#amount_received', 'ten');
        await sendPastBrowserChecks(page, page.locator('form[action$="/paid"] button[type=submit]'));
      }));
    it('Billing refusing a month-end run of a day to come', () =>
      scanAfter('boss', '/admin/receipts', async (page) => {
        await page.fill('#before', '2099-01-31');
        await sendPastBrowserChecks(page, page.locator('form:has(#before) button[type=submit]'));
      }));
    it('Users refusing a new user without a name', () =>
      scanAfter('boss', '/admin/users', async (page) => {
        await page.fill('#new-username', '9 not a name');
        await sendPastBrowserChecks(page, page.getByRole('button', { name: 'Create', exact: true }));
      }));
    it("Users showing a user's new password once", () =>
      scanAfter('boss', '/admin/users', async (page) => {
        await sendPastBrowserChecks(page, page.getByRole('button', { name: 'Reset password of zoe' }));
        expect(await page.locator('code.secret').count()).toBe(1);
      }));
    it('Users refusing to make the last admin a user', () =>
      scanAfter('boss', '/admin/users', async (page) => {
        await sendPastBrowserChecks(page, page.getByRole('button', { name: 'Make user your own account' }));
      }));
    it('Rates refusing a rate that is not a number', () =>
      scanAfter('boss', '/admin/rates', async (page) => {
        await page.fill('#cpu-gov', 'cheap');
        await sendPastBrowserChecks(page, page.getByRole('button', { name: 'Set new rates of gov' }));
      }));
    it('Payments refusing a resolution without its note', () =>
      scanAfter('boss', '/admin/payments', async (page) => {
        await sendPastBrowserChecks(page, page.locator('form[action$="/resolve"] button[type=submit]').first());
      }));
    it("the audit chain's verdict", () =>
      scanAfter('boss', '/admin/audit/verify', async (page) => {
        await sendPastBrowserChecks(page, page.getByRole('button', { name: 'Verify the chain now' }));
      }));
    it('Ingestion with a failed run', () =>
      scanAfter('boss', '/admin/ingestion', async (page) => {
        await sendPastBrowserChecks(page, page.getByRole('button', { name: 'Run now' }));
      }));
    it('Users on a phone', () => scan('boss', () => '/admin/users', 200, PHONE));
    it('Payments on a phone', () => scan('boss', () => '/admin/payments', 200, PHONE));
  });
});
