import { existsSync } from 'node:fs';
import type { Server } from 'node:http';
import type express from 'express';
import { type Browser, type BrowserContext, type BrowserContextOptions, chromium, type Page } from 'playwright-core';
import { setUpDummyPayments } from './dummy-payments.js';
import { buildUser } from './factories.js';
import type { TestDatabase } from './test-database.js';

/** Debian's chromium (apt-get install -y chromium); browser tests skip without it. */
export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);

if (!hasChromium) {
  console.warn(`browser tests skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`);
}

// Its flags. Without the background-networking flags chromium keeps dialling Google's hosts, which this
// machine's closed network refuses, many connections at a time.
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export interface BrowserRig {
  server: Server;
  browser: Browser;
  /** The app's origin, e.g. http://127.0.0.1:41234. */
  base: string;
  close(): Promise<void>;
}

/** Serves the app on a free loopback port and starts headless chromium to drive it. */
export async function startBrowserRig(app: express.Express): Promise<BrowserRig> {
  // The views do not change while a file runs: each is compiled once, as in production, not again on
  // every page the browser loads (about 7 ms of CPU a page; compileDebug stays on, as in development).
  app.set('view cache', true);
  const server = await new Promise<Server>((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const browser = await workerBrowser();
  return {
    server,
    browser,
    base: `http://127.0.0.1:${port}`,
    async close() {
      // The browser stays for the worker's next file; what this file opened in it goes, and so do its
      // connections to the app, which ending the browser used to cut: a page still waiting on an answer
      // (month-end-run-focus's running run) kept server.close waiting past the hook's timeout.
      await Promise.all(browser.contexts().map((context) => context.close()));
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await closed;
    },
  };
}

let launched: Promise<Browser> | undefined;

/**
 * One chromium for the test files a worker runs one after another (vitest.config.ts keeps a worker's
 * modules, this one with them): starting it was about 2.3 s of CPU a file. Each file still opens its own
 * contexts, closed with its rig. Playwright ends the browser when the worker exits; one that crashed or
 * was closed is started again for the next file.
 */
function workerBrowser(): Promise<Browser> {
  const current = launched;
  if (current) {
    return current.then(
      (browser) => (browser.isConnected() ? browser : relaunch()),
      () => relaunch(),
    );
  }
  return relaunch();
}

function relaunch(): Promise<Browser> {
  launched = chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  return launched;
}

/**
 * A payments browser test file's set-up, for its beforeAll: setUpDummyPayments (a new database with
 * buildTiers' rates, the app on the dummy provider, with `env` besides), admin `admin` (password
 * `<admin>-password`) when named, and a rig serving the app. Its afterAll passes `rig` and `db` to
 * closeRigAndDatabase. The database is dropped here when a later step fails: the file never gets it.
 */
export async function startDummyPaymentsRig(
  options: { env?: Record<string, string>; admin?: string } = {},
): Promise<{ db: TestDatabase; app: express.Express; rig: BrowserRig }> {
  const { db, app } = await setUpDummyPayments({ env: options.env });
  try {
    if (options.admin) await buildUser(db.prisma, { username: options.admin, role: 'admin' });
    return { db, app, rig: await startBrowserRig(app) };
  } catch (error) {
    await db.drop();
    throw error;
  }
}

/**
 * A browser test file's teardown: the rig closed, then the test database dropped, each only if the
 * file's beforeAll got as far as making it. The rig first: the app it serves holds the database's pool.
 */
export async function closeRigAndDatabase(rig: BrowserRig | undefined, db: TestDatabase | undefined): Promise<void> {
  await rig?.close();
  await db?.drop();
}

/** Signs in through the login form as a person would, and waits for the landing page. */
export async function signInThroughPage(
  page: Page,
  base: string,
  username: string,
  password: string,
  landing: RegExp = /\/(me|admin)$/,
): Promise<void> {
  await page.goto(`${base}/login`);
  await page.fill('#username', username);
  await page.fill('#password', password);
  await Promise.all([page.waitForURL(landing), page.click('button[type=submit]')]);
}

/**
 * A new browser context (cookies of its own) made with `options`, and a page in it signed in through
 * the login form (signInThroughPage, waiting for `landing`). The caller closes the context.
 */
export async function signedInPage(
  rig: Pick<BrowserRig, 'browser' | 'base'>,
  username: string,
  password: string,
  { landing, ...options }: BrowserContextOptions & { landing?: RegExp } = {},
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await rig.browser.newContext(options);
  const page = await context.newPage();
  await signInThroughPage(page, rig.base, username, password, landing);
  return { context, page };
}

/**
 * A file's sign-ins, one a user, for tests where signing in is not what they check: each call gives a
 * new browser context made with `options` and a page in it, signed in as `username`. The first call for
 * a user signs in through the login form (signedInPage: its page is on `landing`); later ones
 * start the context with that session's cookies (Playwright's storageState) and their page is blank,
 * which saves two page loads of each test. The session is shared: a test that ends it (Sign out, a
 * password changed) or leaves a flash unread in it signs in on its own with signedInPage.
 */
export function keptSignIns(rig: Pick<BrowserRig, 'browser' | 'base'>) {
  const states = new Map<string, Awaited<ReturnType<BrowserContext['storageState']>>>();
  return async (
    username: string,
    password: string,
    options: BrowserContextOptions & { landing?: RegExp } = {},
  ): Promise<{ context: BrowserContext; page: Page }> => {
    const storageState = states.get(username);
    if (storageState) {
      const { landing: _landing, ...contextOptions } = options;
      const context = await rig.browser.newContext({ ...contextOptions, storageState });
      return { context, page: await context.newPage() };
    }
    const signedIn = await signedInPage(rig, username, password, options);
    states.set(username, await signedIn.context.storageState());
    return signedIn;
  };
}

/**
 * Makes the app's answer to each form sent (POST) to `url`, a Playwright glob, come 500 ms late, as
 * a receipt of many jobs does: the second click of a double click then lands on the same page, as
 * a person's does.
 */
export async function answerFormsLate(page: Page, url: string): Promise<void> {
  await page.route(url, async (route) => {
    if (route.request().method() !== 'POST') return route.continue();
    const response = await route.fetch({ maxRedirects: 0 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    await route.fulfill({ response }).catch(() => undefined);
  });
}

/** The URLs of the forms (POSTs) the page sends to a URL containing `urlPart`, added as they are sent. */
export function formsSentTo(page: Page, urlPart: string): string[] {
  const sent: string[] = [];
  page.on('request', (request) => {
    if (request.method() === 'POST' && request.url().includes(urlPart)) sent.push(request.url());
  });
  return sent;
}

/** Double-clicks the button named `name` as a person does, in its middle, scrolled to it first. */
export async function doubleClickButton(page: Page, name: string): Promise<void> {
  const button = page.getByRole('button', { name, exact: true });
  // The mouse reaches only what is on the screen: a button below the fold took the click nowhere.
  await button.scrollIntoViewIfNeeded();
  const box = await button.boundingBox();
  if (!box) throw new Error(`no ${name} button on the page`);
  await page.mouse.dblclick(box.x + box.width / 2, box.y + box.height / 2, { delay: 100 });
}

/**
 * Runs `act` (a click that sends a form), waits for the page the browser is sent to, and a moment
 * more for a second answer to replace it.
 */
export async function sendAndSettle(page: Page, act: () => Promise<void>): Promise<void> {
  const loaded = page.waitForEvent('load', { timeout: 15_000 });
  await act();
  await loaded;
  await page.waitForTimeout(1_000);
  await page.waitForLoadState('load');
}

/**
 * The dates (2026-12-04) in `selector` that the page draws across two lines, each with its text:
 * Chromium breaks a line after a date's hyphen, and "2026-12-" above "04" reads as no date at all.
 * (A string, run in the page: the tests are type-checked without the DOM's types.)
 */
export async function datesSplitAcrossLines(page: Page, selector: string): Promise<string[]> {
  return (await page.evaluate(`(() => {
    const split = [];
    for (const root of document.querySelectorAll(${JSON.stringify(selector)})) {
      const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        for (const day of node.textContent.matchAll(/\\d{4}-\\d\\d-\\d\\d/g)) {
          const range = document.createRange();
          range.setStart(node, day.index);
          range.setEnd(node, day.index + day[0].length);
          const lines = new Set([...range.getClientRects()].filter((rect) => rect.width > 0).map((rect) => Math.round(rect.top)));
          if (lines.size > 1) split.push(node.parentElement.textContent.trim());
        }
      }
    }
    return split;
  })()`)) as string[];
}
