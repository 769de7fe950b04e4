import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toLocalDate } from '../../src/shared/local-date.js';
import { amountDueOf, buildJobs, buildTiers } from '../support/billing-factories.js';
import {
  type BrowserRig,
  closeRigAndDatabase,
  hasChromium,
  signedInPage,
  signInThroughPage,
  startBrowserRig,
} from '../support/browser.js';
import { buildUser } from '../support/factories.js';
import { PROJECT_ROOT } from '../support/spawn-server.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The researcher's and the admin's paths through a real browser (Debian's chromium driven
 * by playwright-core). Screenshots of every page land in test-artifacts/ (not committed).
 */
const ARTIFACTS = path.join(PROJECT_ROOT, 'test-artifacts', 'browser');
const TIME_ZONE = 'Asia/Bangkok';
const RECEIPT_CREATED = /\/me\/receipts\/\d+#receipt$/;

// A browser path takes about 10 s on a quiet 2-core machine and three times that while the rest
// of the suite runs beside it; the limit is a hang guard, not a timing.
describe.skipIf(!hasChromium)('in a real browser', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
    await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
    await buildUser(db.prisma, { username: 'carol', password: 'carol-password' });
    await buildJobs(db, [{ user: 'carol', end: new Date(Date.now() - 86_400_000), totalCpuSec: '7200' }]);
    // One job more than a receipt's page of 500: frank's receipt is paged.
    await buildUser(db.prisma, { username: 'frank', password: 'frank-password' });
    await buildJobs(
      db,
      Array.from({ length: 501 }, (_, index) => ({
        user: 'frank',
        end: new Date(Date.now() - 86_400_000 - index * 1000),
      })),
    );
    const now = Date.now();
    await buildJobs(
      db,
      Array.from({ length: 30 }, (_, index) => ({
        user: 'alice',
        name: index % 2 ? 'md-run' : 'train',
        end: new Date(now - (index + 1) * 5 * 3_600_000),
        allocGpus: index % 5 === 0 ? 1 : 0,
        totalCpuSec: String(1800 + index * 600),
      })),
    );
    await mkdir(ARTIFACTS, { recursive: true });
    rig = await startBrowserRig(buildTestApp(db, { env: { APP_TZ: TIME_ZONE } }));
    ({ browser, base } = rig);
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  const shot = (page: Page, name: string) =>
    page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

  async function signIn(page: Page, username: string, password: string) {
    await signInThroughPage(page, base, username, password, /\/(me|admin)$/);
  }

  it('alice browses her usage, downloads it, creates and opens a receipt; the admin marks it paid', async () => {
    // A phone-sized window: the pages must read there too.
    const alice = await browser.newContext({ viewport: { width: 390, height: 844 }, acceptDownloads: true });
    const page = await alice.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      // A CSP violation shows up as a console error; there must be none. (A failed load is reported below.)
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
        pageErrors.push(message.text());
      }
    });
    page.on('response', (response) => {
      // /favicon.ico too: the pages name it, and it used to answer 404.
      if (response.status() >= 400) {
        pageErrors.push(`${response.status()} ${response.url()}`);
      }
    });

    await signIn(page, 'alice', 'alice-password');
    expect((await page.locator('h1').innerText()).trim()).toBe('My usage');
    expect(await page.locator('td[data-label="Job"]').count()).toBeGreaterThan(0);
    await shot(page, '01-me-detail');

    await page.click('a.tab:has-text("Per day")');
    await page.waitForURL(/view=aggregate/);
    expect(await page.locator('svg.chart').count()).toBe(3);
    await shot(page, '02-me-aggregate');

    await page.click('a.tab:has-text("Billed")');
    await page.waitForURL(/view=billed/);
    await shot(page, '03-me-billed');

    await page.click('a.tab:has-text("Jobs")');
    await page.waitForURL(/view=detail/);
    const today = toLocalDate(new Date(), TIME_ZONE);
    const threeDaysAgo = toLocalDate(new Date(Date.now() - 3 * 86_400_000), TIME_ZONE);
    await page.fill('#start', threeDaysAgo);
    await page.fill('#end', today);
    await Promise.all([page.waitForURL(new RegExp(`start=${threeDaysAgo}`)), page.click('button:has-text("Show")')]);
    expect(await page.locator('main').innerText()).toContain(`${threeDaysAgo} to ${today}`);
    await shot(page, '04-me-window');

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('a:has-text("Download CSV")')]);
    expect(download.suggestedFilename()).toBe(`usage-alice-${threeDaysAgo}-${today}.csv`);
    const csv = await readFile((await download.path()) as string, 'utf8');
    expect(csv.split('\n')[0]).toMatch(/^job_id,cluster,name,user,/);
    expect(csv.trim().split('\n').length).toBeGreaterThan(1);

    await page.fill('#before', today);
    // The redirect names its own fragment, so the address does not keep the form's #create-receipt.
    await Promise.all([page.waitForURL(RECEIPT_CREATED), page.click('button:has-text("Create receipt")')]);
    expect(await page.locator('article#receipt:target').count()).toBe(1);
    const receiptUrl = page.url().replace(/#.*$/, '');
    expect(await page.locator('h1').innerText()).toContain('Receipt #');
    expect(await page.locator('.badge.big').textContent()).toBe('Status: pending');
    // Its "Status: " is for a screen reader alone: it takes no room in the badge, which shows "pending".
    expect((await page.locator('.badge.big .visually-hidden').boundingBox())?.width).toBeLessThanOrEqual(1);
    expect((await page.locator('.badge.big').innerText()).split('\n').at(-1)).toBe('pending');
    await shot(page, '05-receipt-created');

    await page.click('nav a:has-text("Receipts")');
    await page.waitForURL(/\/me\/receipts$/);
    await shot(page, '06-receipts-list');
    await Promise.all([page.waitForURL(receiptUrl), page.click(`a[href="${new URL(receiptUrl).pathname}"]`)]);
    await shot(page, '07-receipt-opened');

    await Promise.all([page.waitForURL(/\/login$/), page.click('button:has-text("Sign out")')]);
    await shot(page, '08-signed-out');
    expect(pageErrors).toEqual([]);
    await alice.close();

    const { context: bossContext, page: boss } = await signedInPage(rig, 'boss', 'boss-password', {
      viewport: { width: 1280, height: 900 },
    });
    await boss.goto(`${base}/admin/receipts/${receiptUrl.split('/').pop()}`);
    await boss.selectOption('#method', 'bank_transfer');
    // What the bank statement shows: the whole total arrived.
    await boss.fill('#amount_received', await amountDueOf(db, Number(receiptUrl.split('/').pop())));
    await boss.fill('#tx_ref', 'KBANK-0042');
    await Promise.all([boss.waitForLoadState('load'), boss.click('button:has-text("Mark paid")')]);
    expect(await boss.locator('.badge.big').textContent()).toBe('Status: paid');
    expect(await boss.locator('main').innerText()).toContain('KBANK-0042');
    await shot(boss, '09-admin-marked-paid');
    await boss.goto(`${base}/admin/receipts`);
    await shot(boss, '10-admin-billing');
    await bossContext.close();
  });

  it('asks the admin before disabling a user, and does nothing when told no', async () => {
    const dave = await buildUser(db.prisma, { username: 'dave', password: 'dave-password' });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    await signIn(page, 'boss', 'boss-password');
    await page.goto(`${base}/admin/users`);
    const disableDave = page.locator(`form[action="/admin/users/${dave.id}/disable"] button`);
    const isDaveDisabled = async () => (await db.prisma.user.findUniqueOrThrow({ where: { id: dave.id } })).isDisabled;

    const questions: string[] = [];
    page.once('dialog', (dialog) => {
      questions.push(dialog.message());
      void dialog.dismiss();
    });
    // goto waited for 'load', which comes after the deferred confirm.js has run.
    await disableDave.click();
    expect(questions).toEqual(['Disable dave? Their sessions end and they cannot sign in.']);
    expect(page.url()).toBe(`${base}/admin/users`);
    expect(await isDaveDisabled()).toBe(false);

    // Told yes, the form is sent and the redirect lands on the list searched for dave.
    page.once('dialog', (dialog) => void dialog.accept());
    const pageAgain = page.waitForResponse(
      (response) => response.url() === `${base}/admin/users?q=dave` && response.request().method() === 'GET',
      { timeout: 15_000 },
    );
    await disableDave.click();
    await pageAgain;
    await page.waitForLoadState('load');
    expect(await isDaveDisabled()).toBe(true);
    expect(await page.locator('[role="status"]').innerText({ timeout: 15_000 })).toContain('dave is disabled');

    // The admin's own row has no Disable (it signed the admin out mid-click): another admin can.
    await page.goto(`${base}/admin/users?q=boss`);
    expect(await page.locator('form[action$="/disable"]').count()).toBe(0);
    expect(await page.locator('text=Another admin can disable your account').count()).toBe(1);
    expect(problems).toEqual([]);
    await context.close();
  });

  it('opens a refused form far down a page at its reason, on a phone', async () => {
    const { context, page } = await signedInPage(rig, 'boss', 'boss-password', {
      viewport: { width: 390, height: 844 },
    });
    /** The alert is on screen, and the page was scrolled to bring it there. */
    const expectAlertInView = async (selector: string) => {
      const box = await page.locator(selector).boundingBox();
      expect(box, selector).not.toBeNull();
      expect(box?.y ?? -1, selector).toBeGreaterThanOrEqual(0);
      expect((box?.y ?? 0) + (box?.height ?? 0), selector).toBeLessThanOrEqual(844);
      expect(Number(await page.evaluate('window.scrollY')), selector).toBeGreaterThan(0);
    };

    // A name that is taken passes the browser's own checks and is refused by the server (409).
    await page.goto(`${base}/admin/rates`);
    await page.fill('#new-tier-name', 'gov');
    for (const field of ['cpu', 'gpu', 'mem']) await page.fill(`#new-tier-${field}`, '1');
    await Promise.all([page.waitForURL(`${base}/admin/rates/tiers#new-tier`), page.click('#new-tier button')]);
    await expectAlertInView('#new-tier [role="alert"]');
    await shot(page, '13-refused-new-tier');

    // The last tier's rates form, refused for a negative rate.
    await page.goto(`${base}/admin/rates`);
    await page.fill('#cpu-private', '-1');
    await Promise.all([
      page.waitForURL(`${base}/admin/rates#tier-private`),
      page.click('#tier-private button:has-text("Set new rates")'),
    ]);
    await expectAlertInView('#tier-private [role="alert"]');
    await context.close();
  });

  it('shows every column of the price list on a phone and beside the largest rates and a long description', async () => {
    await buildTiers(db, [
      { name: 'partner-institutes', cpu: '999999.999999', gpu: '999999.999999', mem: '999999.999999' },
    ]);
    await db.prisma.pricingTier.update({
      where: { name: 'partner-institutes' },
      data: {
        description:
          'Long-running projects of the partner institutes, billed at cost under the 2024 agreement. '.repeat(2),
      },
    });
    const context = await browser.newContext({ viewport: { width: 390, height: 900 } });
    try {
      const page = await context.newPage();
      for (const width of [390, 1280]) {
        await page.setViewportSize({ width, height: 900 });
        await page.goto(`${base}/rates`);
        // Nothing to scroll sideways to: every column is on screen.
        const [scrollWidth, clientWidth] = (await page.evaluate(
          '[document.querySelector(".table-wrap").scrollWidth, document.querySelector(".table-wrap").clientWidth]',
        )) as number[];
        expect(scrollWidth, `${width} px`).toBeLessThanOrEqual(clientWidth ?? 0);
        await shot(page, `14-price-list-${width}`);
      }
    } finally {
      await context.close();
      await db.prisma.pricingRate.deleteMany({ where: { tier: { name: 'partner-institutes' } } });
      await db.prisma.pricingTier.delete({ where: { name: 'partner-institutes' } });
    }
  });

  it("shows each receipt's total and status on the billing page on a phone, without scrolling sideways", async () => {
    await buildUser(db.prisma, { username: 'gina', password: 'gina-password' });
    await buildJobs(db, [{ user: 'gina', end: new Date(Date.now() - 86_400_000), totalCpuSec: '36000' }]);
    const { context: ginaContext, page: gina } = await signedInPage(rig, 'gina', 'gina-password');
    const token = await gina.locator('input[name="csrf_token"]').first().inputValue();
    const created = await gina.request.post(`${base}/me/receipt`, {
      headers: { Accept: 'application/json', 'X-CSRFToken': token },
      data: { before: toLocalDate(new Date(), TIME_ZONE) },
    });
    expect(created.status()).toBe(201);
    const receipt = (await created.json()).receipt as { id: number; total: string };
    await ginaContext.close();

    const { context, page } = await signedInPage(rig, 'boss', 'boss-password', {
      viewport: { width: 390, height: 900 },
    });
    for (const width of [390, 1280]) {
      await page.setViewportSize({ width, height: 900 });
      await page.goto(`${base}/admin/receipts?user=gina`);
      const [scrollWidth, clientWidth] = (await page.evaluate(
        '[document.querySelector(".table-wrap").scrollWidth, document.querySelector(".table-wrap").clientWidth]',
      )) as number[];
      expect(scrollWidth, `${width} px`).toBeLessThanOrEqual(clientWidth ?? 0);
      // The receipt's total and status are on screen, each named (on a phone the header row is hidden).
      const row = page.locator(`tr:has(a[href="/admin/receipts/${receipt.id}"])`);
      for (const [label, text] of [
        ['Total', `${Number(receipt.total).toFixed(2)} THB`],
        ['Status', 'pending'],
      ]) {
        const cell = row.locator(`td[data-label="${label}"]`);
        expect((await cell.innerText()).trim(), `${label} at ${width} px`).toContain(text);
        const box = await cell.boundingBox();
        expect((box?.x ?? Number.POSITIVE_INFINITY) + (box?.width ?? 0), `${label} at ${width} px`).toBeLessThanOrEqual(
          width,
        );
      }
      await shot(page, `15-admin-billing-${width}`);
    }
    await context.close();
  });

  it("shows each payment's status and amounts on the payments page on a phone, without scrolling sideways", async () => {
    await buildUser(db.prisma, { username: 'ivan', password: 'ivan-password' });
    await buildJobs(db, [{ user: 'ivan', end: new Date(Date.now() - 86_400_000), totalCpuSec: '36000' }]);
    const { context: ivanContext, page: ivan } = await signedInPage(rig, 'ivan', 'ivan-password');
    const headers = {
      Accept: 'application/json',
      'X-CSRFToken': await ivan.locator('input[name="csrf_token"]').first().inputValue(),
    };
    const created = await ivan.request.post(`${base}/me/receipt`, {
      headers,
      data: { before: toLocalDate(new Date(), TIME_ZONE) },
    });
    const receiptId = ((await created.json()).receipt as { id: number }).id;
    const started = await ivan.request.post(`${base}/payments/receipt/${receiptId}/start`, { headers, data: {} });
    expect(started.status()).toBe(200);
    await ivanContext.close();
    const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId } });

    const { context, page } = await signedInPage(rig, 'boss', 'boss-password', {
      viewport: { width: 390, height: 900 },
    });
    for (const width of [390, 1280]) {
      await page.setViewportSize({ width, height: 900 });
      await page.goto(`${base}/admin/payments`);
      const overflows = (await page.evaluate(
        '[...document.querySelectorAll(".table-wrap")].map((wrap) => wrap.scrollWidth - wrap.clientWidth)',
      )) as number[];
      // Nothing scrolls sideways, on a phone or a desktop (admin-payments-desktop.browser.test.ts).
      expect(overflows, `${width} px`).toEqual(overflows.map(() => 0));
      const row = page.locator(`tr:has(a[href="/admin/receipts/${receiptId}"])`);
      for (const [label, text] of [
        ['Status', 'pending'],
        ['Due', `${(Number(payment.amountMinor) / 100).toFixed(2)} THB`],
      ]) {
        const cell = row.locator(`td[data-label="${label}"]`);
        expect((await cell.innerText()).trim(), `${label} at ${width} px`).toContain(text);
        const box = await cell.boundingBox();
        expect((box?.x ?? Number.POSITIVE_INFINITY) + (box?.width ?? 0), `${label} at ${width} px`).toBeLessThanOrEqual(
          width,
        );
      }
      await shot(page, `17-admin-payments-${width}`);
    }
    await context.close();
  });

  it("puts a user's actions and tier form on screen on a phone, without scrolling sideways", async () => {
    await buildUser(db.prisma, { username: 'hanna-with-a-rather-long-username', password: 'hanna-password' });
    // A name with no hyphen for a line to break at: "_" and "." do not break one, and in one piece it
    // pushed the phone's card, with the user's role, status and actions, past the screen's right edge.
    await buildUser(db.prisma, { username: 'srinivasaraghavan_venkatanarayanan', password: 'srini-password' });
    // Paid by hand, with a payment method as long as any: on Billing at 1280 px the name in one piece
    // pushed the Paid column past the right edge.
    await db.prisma.receipt.create({
      data: {
        username: 'srinivasaraghavan_venkatanarayanan',
        billedThrough: new Date('2026-01-15'),
        total: '1234.56',
        currency: 'THB',
        tierName: 'mu',
        ratesSnapshot: { tier: 'mu', cpu: '1', gpu: '1', mem: '1', currency: 'THB' },
        ratesLockedAt: new Date(),
        createdBy: 'srinivasaraghavan_venkatanarayanan',
        status: 'paid',
        paidAt: new Date(),
        paymentMethod: 'internal_transfer',
      },
    });
    const { context, page } = await signedInPage(rig, 'boss', 'boss-password', {
      viewport: { width: 390, height: 900 },
    });
    for (const width of [390, 1280]) {
      await page.setViewportSize({ width, height: 900 });
      for (const [path, controls] of [
        [
          '/admin/users?q=hanna',
          ['button:has-text("Make admin")', 'button:has-text("Disable")', 'button:has-text("Reset password")'],
        ],
        ['/admin/tiers?q=hanna', ['select[name="tier"]', 'button:has-text("Save")']],
        [
          '/admin/users?q=srinivasaraghavan',
          ['button:has-text("Make admin")', 'button:has-text("Disable")', 'button:has-text("Reset password")'],
        ],
        ['/admin/tiers?q=srinivasaraghavan', ['select[name="tier"]', 'button:has-text("Save")']],
      ] as const) {
        await page.goto(`${base}${path}`);
        const [scrollWidth, clientWidth] = (await page.evaluate(
          '[document.querySelector(".table-wrap").scrollWidth, document.querySelector(".table-wrap").clientWidth]',
        )) as number[];
        expect(scrollWidth, `${path} at ${width} px`).toBeLessThanOrEqual(clientWidth ?? 0);
        for (const control of controls) {
          const box = await page.locator(`tbody tr ${control}`).boundingBox();
          expect(
            (box?.x ?? Number.POSITIVE_INFINITY) + (box?.width ?? 0),
            `${control} at ${width} px`,
          ).toBeLessThanOrEqual(width);
        }
        await shot(page, `16-admin-${path.split('?')[0]?.split('/').pop()}-${path.split('=')[1]}-${width}`);
      }
      // Billing: the name breaks after its "_" rather than push the Paid column past the right edge.
      await page.goto(`${base}/admin/receipts?user=srinivasaraghavan_venkatanarayanan`);
      const [billingScroll, billingClient] = (await page.evaluate(
        '[document.querySelector(".table-wrap").scrollWidth, document.querySelector(".table-wrap").clientWidth]',
      )) as number[];
      expect(billingScroll, `/admin/receipts at ${width} px`).toBeLessThanOrEqual(billingClient ?? 0);
      const paid = await page.locator('tbody td[data-label="Paid"]').first().boundingBox();
      expect((paid?.x ?? Number.POSITIVE_INFINITY) + (paid?.width ?? 0), `Paid at ${width} px`).toBeLessThanOrEqual(
        width,
      );
      if (width > 390) {
        // Each of its words on one line: broken, if at all, only after the "_".
        const lines = await page
          .locator('tbody td[data-label="User"] span.nowrap')
          .evaluateAll((words) => words.map((word) => word.getClientRects().length));
        expect(lines).toEqual([1, 1]);
      }
      // The audit log: each entry's action and details on screen, the details wrapped (boss's sign-in is one).
      await page.goto(`${base}/admin/audit?actor=boss`);
      const [logScroll, logClient] = (await page.evaluate(
        '[document.querySelector(".table-wrap").scrollWidth, document.querySelector(".table-wrap").clientWidth]',
      )) as number[];
      expect(logScroll, `/admin/audit at ${width} px`).toBeLessThanOrEqual(logClient ?? 0);
      const action = await page.locator('td[data-label="Action"]').first().boundingBox();
      expect((action?.x ?? Number.POSITIVE_INFINITY) + (action?.width ?? 0)).toBeLessThanOrEqual(width);
      await shot(page, `16-admin-audit-${width}`);
    }
    await context.close();
  });

  it("leaves room between My usage's pages and the receipt form under them", async () => {
    // The pager sat flush on the Create a receipt card, as if it were part of the form.
    const { context, page } = await signedInPage(rig, 'frank', 'frank-password', {
      viewport: { width: 1280, height: 900 },
    });
    for (const width of [1280, 390]) {
      await page.setViewportSize({ width, height: 900 });
      await page.goto(`${base}/me`);
      const pager = await page.locator('main nav.pagination').boundingBox();
      const form = await page.locator('#create-receipt').boundingBox();
      if (!pager || !form) throw new Error('no pager or no receipt form on /me');
      expect(form.y - (pager.y + pager.height), `${width}`).toBeGreaterThanOrEqual(16);
    }
    await context.close();
  });

  it('draws the Per day charts with axis text at least 11 px tall, three to a row or one', async () => {
    // 1280: three charts a row; 940: three at about their narrowest; 390: a phone, one a row.
    const { context, page } = await signedInPage(rig, 'alice', 'alice-password', {
      viewport: { width: 1280, height: 900 },
    });
    for (const width of [1280, 940, 390]) {
      await page.setViewportSize({ width, height: 900 });
      await page.goto(`${base}/me?view=aggregate`);
      // The font size as drawn: the attribute in the chart's units times the chart's scale.
      const sizes = await page.locator('svg.chart text').evaluateAll((texts) =>
        texts.map((text) => {
          const drawn = text as unknown as { getScreenCTM(): { a: number } | null };
          const scale = drawn.getScreenCTM()?.a ?? 0;
          return Number(text.getAttribute('font-size')) * scale;
        }),
      );
      expect(sizes.length, `${width}`).toBeGreaterThan(3);
      expect(Math.min(...sizes), `${width}`).toBeGreaterThanOrEqual(10.9);
      await shot(page, `13-charts-${width}`);
    }
    await context.close();
  });

  it('carol pays a receipt online through the dummy provider and sees it paid', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    await signIn(page, 'carol', 'carol-password');
    await page.fill('#before', toLocalDate(new Date(), TIME_ZONE));
    await Promise.all([page.waitForURL(RECEIPT_CREATED), page.click('button:has-text("Create receipt")')]);
    const receiptId = new URL(page.url()).pathname.split('/').pop();
    await Promise.all([page.waitForURL(/\/payments\/dummy\/checkout\//), page.click('button:has-text("online")')]);
    await shot(page, '11-dummy-checkout');
    await Promise.all([page.waitForURL(/\/payments\/thanks\?rid=\d+$/), page.click('button[value="pay"]')]);
    expect(await page.locator('[role="status"]').innerText()).toContain('Paid. Thank you.');
    await shot(page, '12-paid-online');
    await page.goto(`${base}/me/receipts/${receiptId}`);
    expect(await page.locator('.badge.big').textContent()).toBe('Status: paid');
    expect(await page.locator('main').innerText()).toContain('dummy');
    expect(problems).toEqual([]);
    await context.close();
  });

  it('prints every job of a paged receipt: its Print link opens the full list and the print dialog', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    // The print dialog, recorded instead of opened: headless chromium has none to wait on.
    await context.addInitScript({
      content: 'window.printCalls = 0; window.print = () => { window.printCalls += 1; };',
    });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    await signIn(page, 'frank', 'frank-password');
    await page.fill('#before', toLocalDate(new Date(), TIME_ZONE));
    await Promise.all([page.waitForURL(RECEIPT_CREATED), page.click('button:has-text("Create receipt")')]);
    const receiptPath = new URL(page.url()).pathname;
    expect(await page.locator('td[data-label="Job"]').count()).toBe(500);

    await Promise.all([page.waitForURL(`${base}${receiptPath}/print`), page.click('a:has-text("Print all 501 jobs")')]);
    await page.waitForFunction('window.printCalls === 1');
    expect(await page.locator('td[data-label="Job"]').count()).toBe(501);
    const banner = page.locator('#printable-receipt');
    expect(await banner.innerText()).toContain('Printable full receipt.');
    await shot(page, '13-receipt-printable');
    // On paper the list is the receipt alone: the banner saying what the page is stays on screen.
    await page.emulateMedia({ media: 'print' });
    expect(await banner.isVisible()).toBe(false);
    expect(await page.locator('td[data-label="Job"]').last().isVisible()).toBe(true);
    expect(problems).toEqual([]);
    await context.close();
  });

  it('opens a change made far down a page at its confirmation, on a phone', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const page = await context.newPage();
    // Enough users that the last row of /admin/tiers is below the first screen.
    for (let index = 1; index <= 15; index += 1) await buildUser(db.prisma, { username: `member-${index}` });
    await buildUser(db.prisma, { username: 'zoe' });
    await signIn(page, 'boss', 'boss-password');
    /** The confirmation, wherever the page has it, is on screen where the redirect opened the page. */
    const expectStatusInView = async (text: string) => {
      const status = page.getByRole('status').filter({ hasText: text });
      expect(await status.count(), text).toBe(1);
      const box = await status.boundingBox();
      expect(box, text).not.toBeNull();
      expect(box?.y ?? -1, text).toBeGreaterThanOrEqual(0);
      expect((box?.y ?? 0) + (box?.height ?? 0), text).toBeLessThanOrEqual(844);
      // Nor beside the screen, in a table wider than the phone.
      expect(box?.x ?? -1, text).toBeGreaterThanOrEqual(0);
      expect((box?.x ?? 0) + (box?.width ?? 0), text).toBeLessThanOrEqual(390);
    };
    const setPrivateRates = async (cpu: string) => {
      await page.goto(`${base}/admin/rates`);
      await page.fill('#cpu-private', cpu);
      await Promise.all([
        page.waitForURL(`${base}/admin/rates#tier-private`),
        page.click('#tier-private button:has-text("Set new rates")'),
      ]);
    };

    await setPrivateRates('1.6');
    await expectStatusInView('Rates of private saved');
    expect(Number(await page.evaluate('window.scrollY'))).toBeGreaterThan(0);
    await shot(page, '15-rates-saved');
    await setPrivateRates('1.6');
    await expectStatusInView('Rates of private are already these');

    await page.goto(`${base}/admin/tiers`);
    await page.selectOption('#user-zoe select', 'private');
    await Promise.all([
      page.waitForURL(`${base}/admin/tiers?updated=zoe#user-zoe`),
      page.click('#user-zoe button:has-text("Save")'),
    ]);
    await expectStatusInView('zoe is now on private.');
    expect(Number(await page.evaluate('window.scrollY'))).toBeGreaterThan(0);
    await shot(page, '16-override-saved');
    await context.close();
  });
});
