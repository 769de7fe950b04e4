import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/shared/paths.js';
import { buildTiers } from '../support/billing-factories.js';
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
 * A month-end run's page lists the users it made no receipt for, with why. Each reason is a
 * sentence, and kept on one line (as every table cell is unless told otherwise) it ran past the
 * screen's right edge, on a phone and beside a long reason at 1280 px, behind a sideways scroll.
 */
const ARTIFACTS = path.join(PROJECT_ROOT, 'test-artifacts', 'browser');
const LONG_NAME = 'srinivasaraghavan_venkatanarayanan';

describe.skipIf(!hasChromium)("a month-end run's skipped users", { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;
  let base: string;
  let runId: number;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
    const run = await db.prisma.monthEndRun.create({
      data: {
        billedThrough: new Date('2026-10-31T00:00:00Z'),
        startedBy: 'boss',
        finishedAt: new Date(),
        outcome: 'succeeded',
        usersTotal: 3,
        usersDone: 3,
        skipped: [
          { username: LONG_NAME, kind: 'billed_meanwhile', reason: 'billed meanwhile' },
          { username: 'alice', kind: 'nothing_left', reason: 'Nothing to bill: no finished, unbilled jobs.' },
          {
            username: 'bob',
            kind: 'conflict',
            reason:
              'Receipt #1234 of bob is being paid online at this moment and cannot be replaced until its checkout ends or is canceled; run the month-end again afterwards to bill the rest of his jobs.',
          },
        ],
      },
    });
    runId = run.id;
    await mkdir(ARTIFACTS, { recursive: true });
    rig = await startBrowserRig(buildTestApp(db));
    ({ base } = rig);
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  it('shows each user and the whole reason on the screen, without scrolling sideways', async () => {
    for (const width of [1280, 375]) {
      const { context, page } = await signedInPage(rig, 'boss', 'boss-password', { viewport: { width, height: 900 } });
      await page.goto(`${base}/admin/month-end/${runId}`);
      await page.screenshot({ path: path.join(ARTIFACTS, `month-end-skips-${width}.png`), fullPage: true });
      // Nor does the page: the run's summary above the list names the skipped users too.
      const pageWidth = (await page.evaluate('document.documentElement.scrollWidth')) as number;
      expect(pageWidth, `the page at ${width} px`).toBeLessThanOrEqual(width);
      const list = page.locator('.table-wrap:has(caption:text-is("Users skipped by this run"))');
      const [scrollWidth, clientWidth] = (await list.evaluate((element) => [
        element.scrollWidth,
        element.clientWidth,
      ])) as number[];
      expect(scrollWidth, `the skipped users at ${width} px`).toBeLessThanOrEqual(clientWidth ?? 0);
      for (const text of [
        LONG_NAME,
        'Their jobs were billed by another receipt made at the same moment, so this run wrote nothing for them.',
        'run the month-end again afterwards to bill the rest of his jobs.',
      ]) {
        const cell = list.locator('td', { hasText: text });
        expect((await cell.innerText()).replace(/\s+/g, ' '), `${text} at ${width} px`).toContain(text);
        const box = await cell.boundingBox();
        expect((box?.x ?? 0) + (box?.width ?? Number.POSITIVE_INFINITY), `${text} at ${width} px`).toBeLessThanOrEqual(
          width,
        );
      }
      await context.close();
    }
  });
});
