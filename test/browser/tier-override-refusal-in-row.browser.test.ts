import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import {
  type BrowserRig,
  closeRigAndDatabase,
  hasChromium,
  signedInPage,
  startBrowserRig,
} from '../support/browser.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A refused move on Tier overrides (another admin moved the user since the page was opened) came back
 * with the user's tier focused in their row, and the reason at the top of the page, above the search
 * and every row before theirs: for a user down the list, off the screen at 1280 px as on a phone, so a
 * keyboard user saw the tier focused and nothing saying why. The reason is in the user's row now, where
 * a move that worked shows its message.
 */
describe.skipIf(!hasChromium)('a refused move on Tier overrides', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;
  let carol: Agent;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
    await buildUser(db.prisma, { username: 'carol', role: 'admin', password: 'carol-password-123' });
    for (let index = 1; index <= 20; index += 1) {
      await buildUser(db.prisma, { username: `user${String(index).padStart(2, '0')}` });
    }
    await buildUser(db.prisma, { username: 'zoe' });
    const app = buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0' } });
    carol = await signInAs(app, 'carol', 'carol-password-123');
    rig = await startBrowserRig(app);
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  /** The focused element's id, and whether it and the reason describing it are wholly on the screen. */
  const focusAndReason = async (page: Page) =>
    (await page.evaluate(`(() => {
      const field = document.activeElement;
      const reason = document.getElementById(field.getAttribute('aria-describedby') || '');
      const isOnScreen = (el) => { const box = el.getBoundingClientRect(); return box.top >= 0 && box.bottom <= innerHeight; };
      return { focused: field.id, reason: reason ? reason.textContent.trim().split('. ')[0] : null,
        isFieldOnScreen: isOnScreen(field), isReasonOnScreen: reason ? isOnScreen(reason) : false };
    })()`)) as { focused: string; reason: string | null; isFieldOnScreen: boolean; isReasonOnScreen: boolean };

  it("shows the reason in the user's row, on the screen beside the focused tier, at 1280 and 375 px", async () => {
    for (const [width, tier] of [
      [1280, 'gov'],
      [375, 'mu'],
    ] as const) {
      const { context, page } = await signedInPage(rig, 'ops', 'ops-password-123', {
        viewport: { width, height: 800 },
      });
      await page.goto(`${rig.base}/admin/tiers`);
      // Meanwhile carol moves zoe.
      await carol
        .post('/admin/tiers')
        .type('form')
        .send({
          username: 'zoe',
          tier: tier === 'gov' ? 'gov' : 'private',
          csrf_token: await csrfTokenOf(carol, '/admin/tiers'),
        })
        .expect(303);

      await page.focus('#tier-for-zoe');
      await page.selectOption('#tier-for-zoe', tier === 'gov' ? 'private' : 'mu');
      await page.keyboard.press('Tab');
      await Promise.all([page.waitForEvent('load'), page.keyboard.press('Enter')]);
      expect(await page.title()).toBe('Error: Tier overrides · HPC Billing');
      expect(await focusAndReason(page), `at ${width} px`).toEqual({
        focused: 'tier-for-zoe',
        reason: `zoe not moved to ${tier === 'gov' ? 'private' : 'mu'}`,
        isFieldOnScreen: true,
        isReasonOnScreen: true,
      });
      await context.close();
    }
  });
});
