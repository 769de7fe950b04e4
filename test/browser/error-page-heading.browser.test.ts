import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
 * The error page's heading, as a screen reader's list of headings reads it: a bare "404" or "403"
 * said nothing of what went wrong to someone who does not know HTTP's codes (WCAG 2.4.6; found by
 * the accessibility review). It now names the status in words, with its code, and so does the page's title.
 */
describe.skipIf(!hasChromium)("the error page's heading", { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildUser(db.prisma, { username: 'kim', password: 'kim-password' });
    rig = await startBrowserRig(buildTestApp(db));
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  it('says in words what went wrong, with the code, in the only h1', async () => {
    const { page } = await signedInPage(rig, 'kim', 'kim-password');
    const missing = await page.goto(`${rig.base}/me/receipts/999999`);
    expect(missing?.status()).toBe(404);
    expect(await page.getByRole('heading', { level: 1 }).allInnerTexts()).toEqual(['Not Found (404)']);
    // The title, which a screen reader announces first as the page loads, says the same in words: "Error 404" did
    // not, and did not start "Error: " as every other page showing what went wrong does.
    expect(await page.title()).toBe('Error: Not Found (404) · HPC Billing');
    // A refused download (a window whose From is after its To) opens this page too.
    expect((await page.goto(`${rig.base}/me.csv?start=2026-03-10&end=2026-03-01`))?.status()).toBe(400);
    expect(await page.title()).toBe('Error: Bad Request (400) · HPC Billing');
    // A form sent without its CSRF token: refused as forbidden.
    const forbidden = await page.request.post(`${rig.base}/account/password`, {
      form: {},
      maxRedirects: 0,
      headers: { Accept: 'text/html' },
    });
    expect(forbidden.status()).toBe(403);
    expect(await forbidden.text()).toContain('<h1>Forbidden (403)</h1>');
    expect(await forbidden.text()).toContain('<title>Error: Forbidden (403) · HPC Billing</title>');
    await page.context().close();
  });
});
