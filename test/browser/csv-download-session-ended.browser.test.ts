import { readFile } from 'node:fs/promises';
import type { Download } from 'playwright-core';
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
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * Download CSV pressed after the session ended (an hour away from the desk): the link carried the
 * `download` attribute, so the browser saved the sign-in page it was sent to as a file,
 * "login.html", and stayed on My usage as if still signed in; signed in again through that address,
 * the CSV came down under a sign-in form. Now the sign-in page opens, and signing in returns to
 * the page the download was asked from, whose link then downloads the CSV.
 */
const WINDOW = '/me?start=2026-11-01&end=2026-11-30';

describe.skipIf(!hasChromium)('Download CSV after the session ended', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;
  let clock = new Date('2026-12-01T08:00:00Z');

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    await buildUser(db.prisma, { username: 'desk', password: 'desk-password' });
    await buildUser(db.prisma, { username: 'office', role: 'admin', password: 'office-password' });
    await buildJobs(db, [{ user: 'desk', name: 'md-run', end: new Date('2026-11-20T10:00:00Z') }]);
    rig = await startBrowserRig(buildTestApp(db, { now: () => clock, env: { SESSION_IDLE_SEC: '600' } }));
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  it('opens the sign-in page, not a file of it, and signing in comes back to the window', async () => {
    const context = await rig.browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    const page = await context.newPage();
    const downloads: Download[] = [];
    page.on('download', (download) => downloads.push(download));
    await signInThroughPage(page, rig.base, 'desk', 'desk-password', /\/me$/);
    await page.goto(`${rig.base}${WINDOW}`);

    clock = new Date(clock.getTime() + 3_600_000);
    await Promise.all([page.waitForURL(/\/login/), page.click('a:has-text("Download CSV")')]);
    expect(await page.locator('main').innerText()).toContain('Your session ended. Please sign in again.');
    expect(downloads.map((download) => download.suggestedFilename())).toEqual([]);

    await page.fill('#username', 'desk');
    await page.fill('#password', 'desk-password');
    await Promise.all([page.waitForURL(/\/me\?/), page.click('button[type=submit]')]);
    expect(new URL(page.url()).search).toBe(new URL(`${rig.base}${WINDOW}`).search);

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('a:has-text("Download CSV")')]);
    expect(download.suggestedFilename()).toBe('usage-desk-2026-11-01-2026-11-30.csv');
    const csv = await readFile((await download.path()) as string, 'utf8');
    expect(csv.split('\n')[0]).toMatch(/^job_id,/);
    expect(csv).toContain('md-run');
    await context.close();
  });

  it('a CSV link opened signed out from no page (a bookmark, an e-mail) signs in to the page offering it', async () => {
    // Sent on to the CSV itself, the browser downloaded it and stayed on the sign-in form, which
    // read as a sign-in that had not worked.
    const context = await rig.browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    const page = await context.newPage();
    const downloads: Download[] = [];
    page.on('download', (download) => downloads.push(download));
    await page.goto(`${rig.base}/me.csv?start=2026-11-01&end=2026-11-30&bom=1`);
    expect(await page.locator('main').innerText()).toContain(
      'Sign in to see /me: you will be taken there once signed in.',
    );

    await page.fill('#username', 'desk');
    await page.fill('#password', 'desk-password');
    await Promise.all([page.waitForURL(/\/me\?/), page.click('button[type=submit]')]);
    expect(new URL(page.url()).search).toBe(new URL(`${rig.base}${WINDOW}`).search);
    expect(await page.locator('h1').innerText()).toBe('My usage');
    expect(downloads).toEqual([]);

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('a:has-text("Download CSV")')]);
    expect(download.suggestedFilename()).toBe('usage-desk-2026-11-01-2026-11-30.csv');
    await context.close();
  });

  it("does the same for the admin's CSV across users", async () => {
    const context = await rig.browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    const page = await context.newPage();
    const downloads: Download[] = [];
    page.on('download', (download) => downloads.push(download));
    await signInThroughPage(page, rig.base, 'office', 'office-password', /\/admin$/);
    const adminWindow = '/admin/usage?start=2026-11-01&end=2026-11-30';
    await page.goto(`${rig.base}${adminWindow}`);

    clock = new Date(clock.getTime() + 3_600_000);
    await Promise.all([page.waitForURL(/\/login/), page.click('a:has-text("Download all jobs (CSV)")')]);
    expect(await page.locator('main').innerText()).toContain('Your session ended. Please sign in again.');
    expect(downloads.map((download) => download.suggestedFilename())).toEqual([]);

    await page.fill('#username', 'office');
    await page.fill('#password', 'office-password');
    await Promise.all([page.waitForURL(/\/admin\/usage\?/), page.click('button[type=submit]')]);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.click('a:has-text("Download all jobs (CSV)")'),
    ]);
    const csv = await readFile((await download.path()) as string, 'utf8');
    expect(csv).toContain('md-run');
    await context.close();
  });
});
