import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { type BrowserRig, closeRigAndDatabase, hasChromium, keptSignIns, startBrowserRig } from '../support/browser.js';
import { buildUser } from '../support/factories.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/** The app used with the keyboard only, and read as a screen reader reads it. */
describe.skipIf(!hasChromium)('the app with a keyboard and a screen reader', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    await buildUser(db.prisma, { username: 'kim', password: 'kim-password' });
    await buildUser(db.prisma, { username: 'root', role: 'admin', password: 'root-password' });
    const now = Date.now();
    await buildJobs(
      db,
      Array.from({ length: 3 }, (_, index) => ({
        user: 'kim',
        jobId: String(7_100 + index),
        end: new Date(now - (index + 1) * 3_600_000),
        elapsedSec: 3_600,
        allocCpus: 4,
        allocMemMb: 8_000,
      })),
    );
    rig = await startBrowserRig(buildTestApp(db));
    ({ browser, base } = rig);
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  // Each test opens the page it checks, and none checks signing in (the refused sign-in's test goes
  // through the form on its own): each user signs in once, and later tests start with that session.
  let signedInContext: ReturnType<typeof keptSignIns>;
  async function signedIn(username: string): Promise<Page> {
    signedInContext ??= keptSignIns(rig);
    const { page } = await signedInContext(username, `${username}-password`);
    return page;
  }

  /** What the element holding the keyboard's focus is, as tag#id and its text. */
  function focused(page: Page): Promise<string> {
    return page.evaluate(`(() => {
      const el = document.activeElement;
      return el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + ' ' + (el.textContent ?? '').trim().slice(0, 40);
    })()`) as Promise<string>;
  }

  it('the first Tab reaches a visible skip link, and Enter moves the focus into the main content', async () => {
    const page = await signedIn('kim');
    await page.goto(`${base}/me`);
    await page.keyboard.press('Tab');
    expect(await focused(page)).toBe('a Skip to main content');
    const box = await page.locator('a.skip-link').boundingBox();
    expect(box && box.y >= 0 && box.height > 0).toBe(true);
    await page.keyboard.press('Enter');
    expect(await focused(page)).toMatch(/^main#main /);
    // The next Tab goes on inside main, past the header's links.
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.querySelector("main").contains(document.activeElement)')).toBe(true);
    await page.context().close();
  });

  it("the main nav tells a screen reader which page, or which page's section, is being read", async () => {
    const page = await signedIn('root');
    /** The nav's links a screen reader announces as current, by their text. */
    const currentLinks = () =>
      page
        .locator('nav[aria-label="Main"] a[aria-current]')
        .evaluateAll((links) => links.map((link) => `${link.textContent} (${link.getAttribute('aria-current')})`));
    await page.goto(`${base}/me`);
    expect(await currentLinks()).toEqual(['My usage (page)']);
    await page.goto(`${base}/me/receipts`);
    expect(await currentLinks()).toEqual(['Receipts (page)']);
    await page.goto(`${base}/admin/users`);
    expect(await currentLinks()).toEqual(['Admin (true)']);
    await page.goto(`${base}/account`);
    expect(await currentLinks()).toEqual(['Account (page)']);
    await page.context().close();
  });

  it('a refused password change marks the field it is about, tied to the reason, and starts the focus at the first field to type again', async () => {
    const page = await signedIn('kim');
    await page.goto(`${base}/account`);
    // A wrong current password: the reason is about the first field.
    await page.fill('#current', 'not-my-password');
    await page.fill('#password', 'a-new-long-password');
    await page.fill('#confirm', 'a-new-long-password');
    await Promise.all([page.waitForURL(/\/account\/password$/), page.click('button:has-text("Change password")')]);
    const current = page.getByLabel('Current password');
    expect(await current.getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#password').getAttribute('aria-invalid')).toBeNull();
    expect(await focused(page)).toBe('input#current ');
    // The reason is what a screen reader reads out with the field: its description.
    const describedBy = await current.getAttribute('aria-describedby');
    expect(await page.locator(`#${describedBy}`).textContent()).toContain('The current password is not right.');
    expect(await page.locator(`#${describedBy}`).getAttribute('role')).toBe('alert');

    // The new password typed twice two ways: the second field is marked, not the first. The focus starts
    // at Current password, described by the reason: every field comes back empty, and on New password
    // again its user typed that one alone and was stopped by the browser at the empty Current password.
    await page.fill('#current', 'kim-password');
    await page.fill('#password', 'a-new-long-password');
    await page.fill('#confirm', 'another-long-password');
    await Promise.all([page.waitForURL(/\/account\/password$/), page.click('button:has-text("Change password")')]);
    expect(
      await page.locator('[aria-invalid="true"]').evaluateAll((fields) => fields.map((field) => field.id)),
    ).toEqual(['confirm']);
    expect(await focused(page)).toBe('input#current ');
    expect(await current.getAttribute('aria-describedby')).toBe('password-error');
    expect(await page.locator('#password-error').textContent()).toContain('does not match the new password');
    await page.context().close();
  });

  it("My usage's refused date window and refused receipt mark their date field, tied to the reason, and focus it", async () => {
    const page = await signedIn('kim');
    // A window the wrong way round: the reason is about both dates (either may be the one to fix),
    // and the focus goes to From.
    await page.goto(`${base}/me?start=2026-03-10&end=2026-03-01`);
    const from = page.getByLabel('Ended from', { exact: true });
    expect(await from.getAttribute('aria-invalid')).toBe('true');
    const to = page.getByLabel('Ended to', { exact: true });
    expect(await to.getAttribute('aria-invalid')).toBe('true');
    expect(await to.getAttribute('aria-describedby')).toBe(await from.getAttribute('aria-describedby'));
    expect(await page.locator(`#${await from.getAttribute('aria-describedby')}`).textContent()).toContain(
      'Ended from (2026-03-10) is after Ended to (2026-03-01).',
    );
    expect(await focused(page)).toBe('input#start ');

    // A receipt of a day before any job: nothing to bill.
    await page.goto(`${base}/me`);
    await page.fill('#before', '2020-01-01');
    await Promise.all([page.waitForURL(/\/me\/receipt/), page.click('button:has-text("Create receipt")')]);
    const before = page.getByLabel('Jobs ended up to and including');
    expect(await before.getAttribute('aria-invalid')).toBe('true');
    const reason = page.locator(`#${await before.getAttribute('aria-describedby')}`);
    expect(await reason.textContent()).toContain('No receipt created.');
    expect(await reason.getAttribute('role')).toBe('alert');
    expect(await focused(page)).toBe('input#before ');
    await page.context().close();
  });

  it("My usage's sortable columns say which one sorts the jobs, and which way, in words", async () => {
    const page = await signedIn('kim');
    await page.goto(`${base}/me`);
    const sorted = () =>
      page
        .locator('main table thead th[aria-sort]')
        .evaluateAll((headers) => headers.map((th) => `${th.textContent?.trim()} ${th.getAttribute('aria-sort')}`));
    // Newest first by default.
    expect(await sorted()).toEqual(['Ended ▼ descending']);
    // The link is named by its column, not "Ended black down-pointing triangle".
    const ended = page.getByRole('link', { name: 'Ended', exact: true });
    expect(await ended.count()).toBe(1);
    await Promise.all([page.waitForURL(/sort=end&dir=asc/), ended.press('Enter')]);
    expect(await sorted()).toEqual(['Ended ▲ ascending']);
    await Promise.all([
      page.waitForURL(/sort=cost&dir=desc/),
      page.getByRole('link', { name: 'Cost (THB)', exact: true }).press('Enter'),
    ]);
    expect(await sorted()).toEqual(['Cost (THB) ▼ descending']);
    await page.context().close();
  });

  it('names the pages links by where they lead, "Previous page" and "Next page", without reading out their arrows', async () => {
    const page = await signedIn('kim');
    // 90 days a day a row, 50 days a page: two pages.
    await page.goto(`${base}/me?view=aggregate&start=2026-01-01&end=2026-03-31`);
    const pages = page.getByRole('navigation', { name: 'Pages' });
    /** Where the links of the pages nav lead, by their rel. */
    const pageLinks = () =>
      pages.getByRole('link').evaluateAll((links) => links.map((link) => link.getAttribute('rel')));
    expect(await pageLinks()).toEqual(['next']);
    // "Next →" was read "Next right arrow", and "Next" alone in a links list says not next what.
    expect(await pages.getByRole('link', { name: 'Next page', exact: true }).count()).toBe(1);
    await Promise.all([page.waitForURL(/page=2/), pages.getByRole('link', { name: 'Next page' }).press('Enter')]);
    expect(await pageLinks()).toEqual(['prev']);
    expect(await pages.getByRole('link', { name: 'Previous page', exact: true }).count()).toBe(1);
    // The arrows are still drawn.
    expect(await pages.getByRole('link').textContent()).toBe('← Previous page');
    await page.context().close();
  });

  it("names every table and scopes its column headers, on a researcher's and an admin's pages", async () => {
    /** Each table of the page: its accessible name, and its column headers without a scope. */
    const tablesOf = (page: Page) =>
      page.locator('main table').evaluateAll((tables) =>
        tables.map((table) => ({
          name: table.querySelector('caption')?.textContent?.trim() ?? table.getAttribute('aria-label') ?? '',
          unscoped: [...table.querySelectorAll('thead th:not([scope])')].map((th) => th.textContent?.trim()),
        })),
      );
    const researcher = await signedIn('kim');
    const admin = await signedIn('root');
    const pages: [Page, string, string[]][] = [
      [researcher, '/me', ['Jobs']],
      [researcher, '/me?view=aggregate', ['Usage per day, newest first']],
      [researcher, '/me/receipts', ['Receipts']],
      [researcher, '/rates', ['Rates by tier']],
      [admin, '/admin/usage', ['Usage by user']],
      [admin, '/admin/tiers', ['Users and their tiers']],
      [admin, '/admin/users', ['Users']],
      [admin, '/admin/audit', ['Audit log entries']],
      [admin, '/admin/receipts', ['Receipts, newest first']],
      [admin, '/admin/month-end', ['Month-end runs, newest first']],
    ];
    for (const [page, path, names] of pages) {
      await page.goto(`${base}${path}`);
      const tables = await tablesOf(page);
      expect(tables, path).toEqual(names.map((name) => ({ name, unscoped: [] })));
      // The name is read, not shown: the page's own heading says it to the eye.
      const box = await page.locator('main table caption').first().boundingBox();
      expect(box && box.width <= 1 && box.height <= 1, path).toBe(true);
      expect((await page.getByRole('table', { name: names[0] }).count()) > 0, path).toBe(true);
    }
    await researcher.context().close();
    await admin.context().close();
  });

  it('draws a focus ring around every control the Tab key reaches, date fields too', async () => {
    const page = await signedIn('kim');
    await page.goto(`${base}/me`);
    const missing: string[] = [];
    for (let stop = 0; stop < 60; stop += 1) {
      await page.keyboard.press('Tab');
      const seen = (await page.evaluate(`(() => {
        const el = document.activeElement;
        if (el === document.body) return null;
        const style = getComputedStyle(el);
        return { what: el.tagName.toLowerCase() + (el.id ? '#' + el.id : ''), ring: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2 };
      })()`)) as { what: string; ring: boolean } | null;
      if (seen === null) break;
      if (!seen.ring && !missing.includes(seen.what)) missing.push(seen.what);
    }
    expect(missing).toEqual([]);
    await page.context().close();
  });

  it('a refused sign-in ties its reason to the fields and puts the focus on the password to type again', async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${base}/login`);
    expect(await focused(page)).toBe('input#username ');
    await page.keyboard.type('kim');
    await page.keyboard.press('Tab');
    await page.keyboard.type('not-her-password');
    await Promise.all([page.waitForURL(/\/login$/), page.keyboard.press('Enter')]);
    await page.waitForSelector('[role="alert"]');
    expect(await focused(page)).toBe('input#password ');
    const password = page.getByLabel('Password');
    const reason = page.locator(`#${await password.getAttribute('aria-describedby')}`);
    expect(await reason.getAttribute('role')).toBe('alert');
    expect(await reason.textContent()).toBe(await page.locator('main [role="alert"]').textContent());
    expect(await page.getByLabel('Username').getAttribute('aria-describedby')).toBe(
      await password.getAttribute('aria-describedby'),
    );
    await page.context().close();
  });

  it('a refused rate on Admin → Rates marks that rate, tied to the reason, and puts the focus on it', async () => {
    const page = await signedIn('root');
    await page.goto(`${base}/admin/rates`);
    await page.fill('#gpu-gov', 'twelve');
    await Promise.all([
      page.waitForURL(/\/admin\/rates#tier-gov$/),
      page.locator('#tier-gov button:has-text("Set new rates")').click(),
    ]);
    await page.waitForSelector('#tier-gov [role="alert"]');
    await page.waitForFunction('document.readyState === "complete"');
    const gpu = page.locator('#gpu-gov');
    expect(await gpu.getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#cpu-gov').getAttribute('aria-invalid')).toBeNull();
    const reason = page.locator(`#${await gpu.getAttribute('aria-describedby')}`);
    expect(await reason.textContent()).toContain('Rates of gov not changed. GPU-hour:');
    expect(await focused(page)).toBe('input#gpu-gov ');
    await page.context().close();
  });

  it('a refused new user on Admin → Users marks the username, tied to the reason, and puts the focus on it', async () => {
    const page = await signedIn('root');
    await page.goto(`${base}/admin/users`);
    // A name already taken.
    await page.fill('#new-username', 'kim');
    await Promise.all([page.waitForURL(/\/admin\/users$/), page.click('button:has-text("Create")')]);
    await page.waitForSelector('main [role="alert"]');
    const username = page.locator('#new-username');
    expect(await username.getAttribute('aria-invalid')).toBe('true');
    const reason = page.locator(`#${await username.getAttribute('aria-describedby')}`);
    expect(await reason.textContent()).toBe('A user named "kim" already exists.');
    expect(await focused(page)).toBe('input#new-username ');
    // A name the browser itself refuses (a space, an e-mail's "@") is not sent, and its bubble says
    // what a name may be made of (the field's title, under "Please match the requested format.",
    // which alone sent the admin guessing). Capitals are sent: the app reads them in lower case.
    for (const typed of ['Kim Lee', 'kim@lab.example.org']) {
      await page.fill('#new-username', typed);
      await page.click('button:has-text("Create")');
      const isRefused = await username.evaluate(
        (field) => (field as unknown as { validity: { patternMismatch: boolean } }).validity.patternMismatch,
      );
      expect(isRefused, typed).toBe(true);
    }
    // Capitals are not the browser's to refuse: the app reads Kim.Lee as kim.lee, as sign-in does. Nor
    // spaces around a name pasted from a spreadsheet: the app reads it trimmed.
    for (const typed of ['Kim.Lee', ' kim.lee\t']) {
      await page.fill('#new-username', typed);
      const isRefused = await username.evaluate(
        (field) => (field as unknown as { validity: { patternMismatch: boolean } }).validity.patternMismatch,
      );
      expect(isRefused, typed).toBe(false);
    }
    expect(await username.getAttribute('title')).toBe(
      'letters, digits, . _ or -, starting with a letter or _, at most 64 characters (read in lower case)',
    );
    await page.context().close();
  });

  it('a refused rename or new tier on Admin → Rates marks the field, tied to the reason, and puts the focus on it', async () => {
    const page = await signedIn('root');
    await page.goto(`${base}/admin/rates`);
    // A name another tier has: the rename form comes back open at its fragment.
    await page.locator('#rename-gov summary').click();
    await page.fill('#edit-name-gov', 'private');
    await Promise.all([
      page.waitForURL(/\/admin\/rates\/tiers\/edit#rename-gov$/),
      page.locator('#rename-gov button:has-text("Save name and description")').click(),
    ]);
    await page.waitForSelector('#rename-gov [role="alert"]');
    await page.waitForFunction('document.readyState === "complete"');
    const name = page.locator('#edit-name-gov');
    expect(await name.getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#edit-description-gov').getAttribute('aria-invalid')).toBeNull();
    expect(await page.locator(`#${await name.getAttribute('aria-describedby')}`).textContent()).toContain(
      'A tier named "private" already exists',
    );
    expect(await focused(page)).toBe('input#edit-name-gov ');

    // A new tier with a rate that is not a number: that rate, not the name.
    await page.goto(`${base}/admin/rates`);
    await page.fill('#new-tier-name', 'lab');
    await page.fill('#new-tier-cpu', '1');
    await page.fill('#new-tier-gpu', 'twelve');
    await page.fill('#new-tier-mem', '1');
    await Promise.all([page.waitForURL(/\/admin\/rates\/tiers#new-tier$/), page.click('button:has-text("Add tier")')]);
    await page.waitForSelector('#new-tier [role="alert"]');
    await page.waitForFunction('document.readyState === "complete"');
    const gpu = page.locator('#new-tier-gpu');
    expect(await gpu.getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator(`#${await gpu.getAttribute('aria-describedby')}`).textContent()).toContain(
      'Tier not added. GPU-hour:',
    );
    expect(await focused(page)).toBe('input#new-tier-gpu ');
    await page.context().close();
  });

  it('a refused void on a receipt marks the reason to void, tied to the refusal, and puts the focus on it', async () => {
    const receipt = await db.prisma.receipt.create({
      data: {
        username: 'kim',
        billedThrough: new Date('2026-01-15'),
        total: '1.00',
        currency: 'THB',
        tierName: 'mu',
        ratesSnapshot: { tier: 'mu', cpu: '1', gpu: '1', mem: '1', currency: 'THB' },
        ratesLockedAt: new Date(),
        createdBy: 'kim',
      },
    });
    const page = await signedIn('root');
    await page.goto(`${base}/admin/receipts/${receipt.id}`);
    // Past the browser's own minlength check, as a script or an older browser sends it: two characters.
    await page.locator('#reason').evaluate((field) => field.removeAttribute('minlength'));
    await page.fill('#reason', 'ab');
    page.once('dialog', (dialog) => void dialog.accept());
    await Promise.all([
      page.waitForURL(new RegExp(`/admin/receipts/${receipt.id}/void$`)),
      page.click('button:has-text("Void receipt")'),
    ]);
    await page.waitForSelector('main [role="alert"]');
    const reasonField = page.getByLabel('Reason to void');
    expect(await reasonField.getAttribute('aria-invalid')).toBe('true');
    expect(await reasonField.inputValue()).toBe('ab');
    const refusal = page.locator(`#${await reasonField.getAttribute('aria-describedby')}`);
    expect(await refusal.textContent()).toContain('Not voided. Reason to void:');
    expect(await refusal.getAttribute('role')).toBe('alert');
    expect(await focused(page)).toBe('input#reason ');
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receipt.id } })).status).toBe('pending');
    await page.context().close();
  });

  it('the filters of Usage across users and the audit log mark the date to fix, tied to the reason, and focus it', async () => {
    const page = await signedIn('root');
    await page.goto(`${base}/admin/usage?start=2026-03-10&end=2026-03-01&user=kim`);
    const from = page.getByLabel('Ended from', { exact: true });
    expect(await from.getAttribute('aria-invalid')).toBe('true');
    expect(await page.getByLabel('User (part of a name, any case)', { exact: true }).inputValue()).toBe('kim');
    expect(await page.locator(`#${await from.getAttribute('aria-describedby')}`).textContent()).toContain(
      'Ended from (2026-03-10) is after Ended to (2026-03-01).',
    );
    expect(await focused(page)).toBe('input#start ');

    await page.goto(`${base}/admin/audit?from=2026-03-10&to=2026-03-01`);
    expect(await page.getByLabel('Logged from', { exact: true }).getAttribute('aria-invalid')).toBe('true');
    expect(await focused(page)).toBe('input#from ');
    await page.context().close();
  });
});
