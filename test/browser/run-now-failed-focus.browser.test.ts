import path from 'node:path';
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
 * A Run now whose sources all failed came back (after its redirect) with "The run failed: …" as a
 * polite status at the top of the page, and the focus nowhere: a screen reader user heard the page
 * load and, maybe, the status after it, and a keyboard user started again from the top. A refused
 * form elsewhere puts its reason in an alert beside the form and focuses it; Run now does too.
 */
describe.skipIf(!hasChromium)('a failed Run now on /admin/ingestion', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-1' });
    const missing = path.join(import.meta.dirname, 'no-such-sacct-file.psv');
    rig = await startBrowserRig(
      buildTestApp(db, { env: { FALLBACK_CSV: missing, INGEST_LOOKBACK_DAYS: '1', APP_TZ: 'UTC' } }),
    );
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  it('puts the reason in an alert beside the button and gives it the focus', async () => {
    const { context, page } = await signedInPage(rig, 'ops', 'ops-password-1', {
      viewport: { width: 375, height: 700 },
    });
    await page.goto(`${rig.base}/admin/ingestion`);
    await page.focus('button:has-text("Run now")');
    await Promise.all([page.waitForEvent('load'), page.keyboard.press('Enter')]);
    expect(await page.title()).toBe('Error: Ingestion · HPC Billing');
    const focused = (await page.evaluate(`(() => {
      const element = document.activeElement;
      const box = element.getBoundingClientRect();
      return { role: element.getAttribute('role'), text: element.textContent.trim().slice(0, 16),
        isBesideRunNow: element.closest('section') === document.querySelector('form[action="/admin/ingestion/run"]').closest('section'),
        isOnScreen: box.top >= 0 && box.bottom <= innerHeight,
        statuses: [...document.querySelectorAll('[role="status"]')].map((status) => status.textContent.trim().slice(0, 16)) };
    })()`)) as Record<string, unknown>;
    expect(focused).toEqual({
      role: 'alert',
      text: 'The run failed: ',
      isBesideRunNow: true,
      isOnScreen: true,
      statuses: [],
    });
    await context.close();
    expect(await db.prisma.ingestionRun.count({ where: { outcome: 'failed' } })).toBe(1);
  });
});
