import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeGracefully, listen } from '../../src/http/lifecycle.js';
import { CHROMIUM, CHROMIUM_ARGS, hasChromium } from '../support/browser.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The page a browser is shown when its cookies made the request too large (431, written on the
 * socket by lifecycle.ts, as server.ts serves the app): its stylesheet link sent the same cookies and
 * was refused in turn, so it showed as bare HTML, unlike every other error page. It now carries its
 * style and looks like the app's error page.
 */
describe.skipIf(!hasChromium)('the page of a request whose cookies are too large', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let server: http.Server;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await listen(buildTestApp(db), 0, '127.0.0.1');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });

  afterAll(async () => {
    await browser?.close();
    if (server) await closeGracefully(server, 1_000);
    await db?.drop();
  });

  /** What the eye sees of the error page's parts: the styles that make its look, by part. */
  async function lookOf(page: Page): Promise<Record<string, Record<string, string>>> {
    const properties = [
      'font-family',
      'color',
      'background-color',
      'margin-top',
      'padding-top',
      'padding-left',
      'border-bottom-width',
      'border-bottom-color',
      'border-top-left-radius',
      'max-width',
      'font-size',
      'font-weight',
      'text-decoration-line',
    ];
    const parts = ['body', '.topbar', '.brand', 'main', '.card', 'h1', '.lead', 'main a'];
    // A string, as the other browser tests pass theirs: it runs in the page, whose globals Node's types lack.
    return (await page.evaluate(`(() => Object.fromEntries(${JSON.stringify(parts)}.map((part) => {
      const style = getComputedStyle(document.querySelector(part));
      return [part, Object.fromEntries(${JSON.stringify(properties)}.map((name) => [name, style.getPropertyValue(name)]))];
    })))()`)) as Record<string, Record<string, string>>;
  }

  it('looks like the app’s error page', async () => {
    const plain = await browser.newContext();
    const appPage = await plain.newPage();
    expect((await appPage.goto(`${base}/no-such-page`))?.status()).toBe(404);
    const appLook = await lookOf(appPage);
    await plain.close();

    const crowded = await browser.newContext();
    // Five cookies of 4,000 bytes: 20 KB of headers, past Node's 16 KB, on every request to the site.
    await crowded.addCookies([1, 2, 3, 4, 5].map((n) => ({ name: `big${n}`, value: 'x'.repeat(4_000), url: base })));
    const page = await crowded.newPage();
    const refused: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') refused.push(message.text());
    });
    expect((await page.goto(`${base}/no-such-page`))?.status()).toBe(431);
    expect(await page.getByRole('heading', { level: 1 }).innerText()).toBe('Request Header Fields Too Large (431)');
    expect(await page.title()).toBe('Error: Request Header Fields Too Large (431) · HPC Billing');
    expect(await lookOf(page)).toEqual(appLook);
    // Its style was not refused by its own Content-Security-Policy.
    expect(refused.filter((text) => /Content Security Policy/i.test(text))).toEqual([]);
    await crowded.close();
  });
});
