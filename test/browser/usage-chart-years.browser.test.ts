import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import {
  type BrowserRig,
  closeRigAndDatabase,
  hasChromium,
  signedInPage,
  startBrowserRig,
} from '../support/browser.js';
import { buildUser } from '../support/factories.js';
import { PROJECT_ROOT } from '../support/spawn-server.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * My usage's per-day charts over a window that spans more than one calendar year. Their date
 * axis read month-day only: across New Year "12-28 ... 01-03" did not say which year either end
 * was in, and over 366 days the first and last day can be the same month-day. The year is
 * written under the first label and the first of the new year, and no label overlaps another,
 * on a phone or a desktop. Over a year the last label was 69 days short of the window's end:
 * the last day is always labelled, within the chart.
 */
const ARTIFACTS = path.join(PROJECT_ROOT, 'test-artifacts', 'browser');

/**
 * Run in the page (a string: the tests are type-checked without the DOM's types). Each chart's
 * date labels as read, a line's text after another's with a space, and where they are drawn.
 */
const MEASURE_AXES = `(() => [...document.querySelectorAll('svg.chart')].map((svg) => {
  const frame = svg.getBoundingClientRect();
  const labels = [...svg.querySelectorAll('text[text-anchor="middle"]')].map((text) => {
    const box = text.getBoundingClientRect();
    return {
      text: [...text.childNodes].map((node) => node.textContent.trim()).filter(Boolean).join(' '),
      left: box.left,
      right: box.right,
      bottom: box.bottom,
    };
  });
  return { left: frame.left, right: frame.right, bottom: frame.bottom, labels };
}))()`;

describe.skipIf(!hasChromium)('per-day charts over a window across years', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildTiers(db);
    await buildUser(db.prisma, { username: 'yuki', password: 'yuki-password' });
    // A few jobs either side of New Year, so the bars are not all empty.
    await buildJobs(
      db,
      ['2025-12-29T10:00:00Z', '2025-12-31T22:00:00Z', '2026-01-02T08:00:00Z', '2026-09-25T12:00:00Z'].map(
        (end, index) => ({ user: 'yuki', end: new Date(end), allocGpus: index % 2, totalCpuSec: '360000' }),
      ),
    );
    await mkdir(ARTIFACTS, { recursive: true });
    rig = await startBrowserRig(buildTestApp(db, { env: { APP_TZ: 'UTC' } }));
    ({ base } = rig);
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  it.each([
    ['phone', 390, 844, '2025-12-28', '2026-01-03', ['12-28 2025', '12-30', '01-01 2026', '01-03']],
    ['desktop', 1280, 900, '2025-12-28', '2026-01-03', ['12-28 2025', '12-30', '01-01 2026', '01-03']],
    // The window's last day is labelled; the year 2026 it is in is named under 02-15.
    ['phone', 390, 844, '2025-12-03', '2026-12-03', ['12-03 2025', '02-15 2026', '04-30', '07-13', '12-03']],
    ['desktop', 1280, 900, '2025-12-03', '2026-12-03', ['12-03 2025', '02-15 2026', '04-30', '07-13', '12-03']],
    ['phone', 390, 844, '2026-01-01', '2026-12-31', ['01-01', '03-15', '05-27', '08-08', '12-31']],
    ['desktop', 1280, 900, '2026-01-01', '2026-12-31', ['01-01', '03-15', '05-27', '08-08', '12-31']],
  ])(
    'on a %s (%d by %d px) from %s to %s names the years on the axis: %j',
    async (name, width, height, start, end, labels) => {
      const { context, page } = await signedInPage(rig, 'yuki', 'yuki-password', {
        viewport: { width, height },
        landing: /\/me$/,
      });
      await page.goto(`${base}/me?view=aggregate&start=${start}&end=${end}`);
      await page
        .locator('.charts')
        .screenshot({ path: path.join(ARTIFACTS, `chart-years-${name}-${start}-${end}.png`) });

      const charts = (await page.evaluate(MEASURE_AXES)) as {
        left: number;
        right: number;
        bottom: number;
        labels: { text: string; left: number; right: number; bottom: number }[];
      }[];
      expect(charts).toHaveLength(3);
      for (const chart of charts) {
        expect(chart.labels.map((label) => label.text)).toEqual(labels);
        // Each label, its year included, within its chart and clear of the next one.
        chart.labels.forEach((label, index) => {
          expect(label.left).toBeGreaterThanOrEqual(chart.left);
          expect(label.right).toBeLessThanOrEqual(chart.right);
          expect(label.bottom).toBeLessThanOrEqual(chart.bottom);
          const next = chart.labels[index + 1];
          if (next) expect(next.left, `${next.text} after ${label.text}`).toBeGreaterThan(label.right);
        });
      }
      await context.close();
    },
  );
});
