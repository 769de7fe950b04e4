import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BrowserRig,
  closeRigAndDatabase,
  datesSplitAcrossLines,
  hasChromium,
  signedInPage,
  startBrowserRig,
} from '../support/browser.js';
import { buildUser } from '../support/factories.js';
import { PROJECT_ROOT } from '../support/spawn-server.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * /admin/ingestion as the operator reads it when runs fail: why each run failed (its error and
 * the sources' notes) must be on the screen, not off to the right of a 1280 px window in a
 * column a few words wide that makes every failed run hundreds of pixels tall. On a 390 px phone
 * the table scrolled sideways, so each run's Outcome and Duration (its last two columns) started
 * off the screen: whether ingestion failed could not be seen without scrolling.
 */
const ARTIFACTS = path.join(PROJECT_ROOT, 'test-artifacts', 'browser');

// What real runs wrote against the lab's slurmrestd (docs/ingestion.md) with sacct configured too.
const NOTES = {
  slurmrestd:
    'slurmrestd does not serve /slurmdb/v0.0.40/jobs (HTTP 404), the version SLURMRESTD_API_VERSION names: set it to one this slurmrestd offers (v0.0.36, v0.0.37, v0.0.38), or to auto',
  sacct: 'sacct exited with code 1: sacct: error: Problem talking to the database: Connection refused',
  file: 'not configured (FALLBACK_CSV unset)',
};

/**
 * Run in the page (a string: the tests are type-checked without the DOM's types). Where the
 * failed runs' reasons are drawn (their words, not the cell's box, which is as wide as the
 * table), how tall the tallest run's row is, and whether the table is wider than its card.
 */
const MEASURE_RUNS = `(() => {
  const wrap = document.querySelector('.table-wrap');
  const reasons = [...document.querySelectorAll('tbody tr')]
    .filter((row) => row.textContent.includes('does not serve'))
    .map((row) => {
      const texts = document.createTreeWalker(row, NodeFilter.SHOW_TEXT);
      const boxes = [];
      for (let text = texts.nextNode(); text; text = texts.nextNode()) {
        if (!text.textContent.trim()) continue;
        const range = document.createRange();
        range.selectNodeContents(text);
        boxes.push(range.getBoundingClientRect());
      }
      return {
        left: Math.min(...boxes.map((box) => box.left)),
        right: Math.max(...boxes.map((box) => box.right)),
        height: Math.max(...boxes.map((box) => box.bottom)) - Math.min(...boxes.map((box) => box.top)),
      };
    });
  const runs = [...document.querySelectorAll('tbody tr[class^="outcome-"]')].map(
    (row) => row.getBoundingClientRect().height,
  );
  // Each run's outcome (10th column) and duration (11th) as drawn, and where the run's other
  // figures are, to tell which is read first.
  const box = (cell) => {
    const rect = cell.getBoundingClientRect();
    return { left: rect.left, right: rect.right, middle: (rect.top + rect.bottom) / 2 };
  };
  const cells = [...document.querySelectorAll('tbody tr[class^="outcome-"]')].map((row) => {
    const [outcome, duration] = [row.children[9], row.children[10]];
    return {
      outcome: { text: outcome.innerText.trim(), ...box(outcome) },
      duration: { text: duration.innerText.trim(), ...box(duration) },
      others: [...row.children].filter((cell) => cell !== outcome).map(box),
    };
  });
  return {
    isWiderThanItsCard: wrap.scrollWidth > wrap.clientWidth,
    cells,
    visibleRight: wrap.getBoundingClientRect().right,
    reasons,
    tallestRun: Math.max(...runs),
  };
})()`;

describe.skipIf(!hasChromium)('/admin/ingestion in a real browser', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-1' });
    const day = (hour: number) => new Date(Date.UTC(2026, 11, 3, hour));
    for (let hour = 0; hour < 6; hour++) {
      const isFailed = hour % 2 === 1;
      await db.prisma.ingestionRun.create({
        data: {
          trigger: 'schedule',
          source: isFailed ? null : 'slurmrestd',
          sourceNotes: isFailed ? NOTES : { file: NOTES.file, sacct: 'not tried', slurmrestd: 'answered' },
          windowStart: day(hour),
          windowEnd: day(hour + 1),
          seen: isFailed ? 0 : 120,
          inserted: isFailed ? 0 : 12,
          outcome: isFailed ? 'failed' : 'success',
          error: isFailed ? `slurmrestd: ${NOTES.slurmrestd}; sacct: ${NOTES.sacct}` : null,
          startedAt: day(hour + 1),
          finishedAt: day(hour + 1),
          durationMs: 412,
        },
      });
    }
    await mkdir(ARTIFACTS, { recursive: true });
    rig = await startBrowserRig(buildTestApp(db));
    ({ base } = rig);
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  it.each([
    ['desktop', 1280, 900],
    ['phone', 390, 844],
  ])('on a %s, each run reads in a few lines and its reason is on the screen', async (name, width, height) => {
    const { context, page } = await signedInPage(rig, 'ops', 'ops-password-1', {
      viewport: { width, height },
      landing: /\/admin$/,
    });
    await page.goto(`${base}/admin/ingestion`);
    await page.screenshot({ path: path.join(ARTIFACTS, `ingestion-${name}.png`), fullPage: true });

    const layout = (await page.evaluate(MEASURE_RUNS)) as {
      isWiderThanItsCard: boolean;
      visibleRight: number;
      reasons: { left: number; right: number; height: number }[];
      tallestRun: number;
      cells: {
        outcome: { text: string; left: number; right: number; middle: number };
        duration: { text: string; left: number; right: number; middle: number };
        others: { left: number; right: number; middle: number }[];
      }[];
    };
    expect(layout.reasons).toHaveLength(3);
    // A run is a row of figures, not a column of words one under another.
    expect(layout.tallestRun).toBeLessThan(80);
    for (const reason of layout.reasons) {
      // Its reason is on the screen, within the card, and, wrapped, a few lines long.
      expect(reason.left).toBeGreaterThanOrEqual(0);
      expect(reason.left).toBeLessThan(width / 2);
      expect(reason.right).toBeLessThanOrEqual(layout.visibleRight);
      expect(reason.height).toBeLessThan(width < 600 ? 320 : 120);
    }
    // Whether each run failed, and how long it took, is on the screen, readable.
    expect(layout.cells.map((run) => run.outcome.text)).toEqual([
      'failed',
      'success',
      'failed',
      'success',
      'failed',
      'success',
    ]);
    for (const run of layout.cells) {
      for (const [name, cell] of Object.entries({ outcome: run.outcome, duration: run.duration })) {
        expect(cell.left, `${name} "${cell.text}" starts on the screen`).toBeGreaterThanOrEqual(0);
        expect(cell.right, `${name} "${cell.text}" ends on the screen`).toBeLessThanOrEqual(layout.visibleRight);
      }
      expect(run.duration.text).toBe('0.4 s');
      // On a phone the outcome is what a run's card says first: on its top line, leftmost.
      if (width < 600) {
        const top = Math.min(...run.others.map((cell) => cell.middle));
        expect(run.outcome.middle).toBeLessThanOrEqual(top + 2);
        for (const cell of run.others.filter((other) => Math.abs(other.middle - run.outcome.middle) < 4)) {
          expect(cell.left).toBeGreaterThanOrEqual(run.outcome.right);
        }
      }
    }
    // Nothing to scroll sideways for: on a desktop the whole table fits its card, on a phone each
    // run is a compact card.
    expect(layout.isWiderThanItsCard).toBe(false);
    // A desktop keeps the table, its columns named in its header.
    if (width >= 1280) expect(await page.locator('main table thead').isVisible()).toBe(true);
    await context.close();
  });

  it('never breaks the day the data is complete through across two lines, on any phone', async () => {
    const { context, page } = await signedInPage(rig, 'ops', 'ops-password-1', {
      viewport: { width: 320, height: 700 },
      landing: /\/admin$/,
    });
    await page.goto(`${base}/admin/ingestion`);
    // On a 375 px phone "2026-12-" ended one line and "04 03:17" began the next.
    const daySplitAt: number[] = [];
    for (let width = 320; width <= 480; width += 4) {
      await page.setViewportSize({ width, height: 700 });
      if ((await datesSplitAcrossLines(page, 'p.lead')).length > 0) daySplitAt.push(width);
    }
    expect(daySplitAt).toEqual([]);
    await context.close();
  });
});
