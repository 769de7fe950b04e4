import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAudit } from '../../src/modules/audit/audit.service.js';
import {
  type BrowserRig,
  closeRigAndDatabase,
  datesSplitAcrossLines,
  hasChromium,
  signedInPage,
  startBrowserRig,
} from '../support/browser.js';
import { buildUser } from '../support/factories.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The audit log on a 1280 px desktop: the Details column was a third of the table, and its JSON,
 * with nowhere to break, wrapped in the middle of keys and values ("…"scope":"ad / min","total":…",
 * "before":"202 / 6-12- / 03"), five lines for a receipt's eight fields.
 */
const RECEIPT_DETAILS = {
  tier: 'mu',
  items: 60,
  scope: 'admin',
  total: '620.09',
  before: '2026-12-03',
  currency: 'THB',
  username: 'zoe',
  monthEndRunId: 1,
};

/** How the receipt entry's details lie on the page: lines in all, and its fields cut across two lines. */
async function layoutOfDetails(page: Page, entryId: number, members: string[]) {
  // A string, run in the page: the project's TypeScript has no DOM types.
  return (await page.evaluate(`(() => {
    const row = [...document.querySelectorAll('tbody tr')].find(
      (tr) => tr.querySelector('td[data-label="#"]')?.textContent.trim() === ${JSON.stringify(String(entryId))},
    );
    const code = row?.querySelector('td[data-label="Details"] code');
    if (!code) throw new Error('no details for the entry');
    // The text may be in several nodes, with break opportunities between them.
    const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
    const nodes = [];
    let text = '';
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      nodes.push({ node, start: text.length });
      text += node.textContent;
    }
    const at = (offset) => {
      const found = [...nodes].reverse().find((entry) => entry.start <= offset);
      return [found.node, offset - found.start];
    };
    const linesOf = (start, end) => {
      const range = document.createRange();
      range.setStart(...at(start));
      range.setEnd(...at(end));
      return new Set([...range.getClientRects()].filter((rect) => rect.width > 0).map((rect) => Math.round(rect.top))).size;
    };
    const cut = ${JSON.stringify(members)}.filter((member) => {
      const start = text.indexOf(member);
      if (start < 0) throw new Error(member + ' is not in ' + text);
      return linesOf(start, start + member.length) > 1;
    });
    return { lines: linesOf(0, text.length), cut };
  })()`)) as { lines: number; cut: string[] };
}

describe.skipIf(!hasChromium)("the audit log's details", { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildUser(db.prisma, { username: 'auditor', role: 'admin', password: 'auditor-password' });
    rig = await startBrowserRig(buildTestApp(db));
    ({ base } = rig);
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  it('wrap between fields, in a column wide enough to read, without a sideways scroll', async () => {
    await db.prisma.$transaction(async (tx) => {
      await appendAudit(tx, {
        actor: 'admin',
        ip: '2001:db8:85a3::8a2e:370:7334',
        action: 'receipt.create',
        target: 'receipt:32',
        status: 'ok',
        details: RECEIPT_DETAILS,
      });
      await appendAudit(tx, {
        actor: 'provider:dummy',
        action: 'payment.review',
        target: 'payment:7',
        status: 'ok',
        details: {
          reason: 'receipt #12 was voided after it was paid online: refund the payment or apply it elsewhere',
          receiptId: 12,
          externalPaymentId: 'dummy_pay_4f9c2a7e1b3d5f8a0c6e2b4d7f9a1c3e5b7d9f0a2c4e6b8d',
          amountMinor: '62009',
          currency: 'THB',
        },
      });
    });
    const receiptEntry = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'receipt.create' },
      select: { id: true },
    });
    const members = Object.entries(RECEIPT_DETAILS).map(
      ([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`,
    );

    const { context, page } = await signedInPage(rig, 'auditor', 'auditor-password', {
      viewport: { width: 1280, height: 900 },
    });
    for (const width of [1280, 390]) {
      await page.setViewportSize({ width, height: 900 });
      await page.goto(`${base}/admin/audit`);
      const layout = await layoutOfDetails(page, Number(receiptEntry.id), members);
      expect(layout.cut, `fields cut across two lines at ${width} px`).toEqual([]);
      // At 1280 px the eight fields take three lines at most: the column is wide enough to read them.
      if (width === 1280) expect(layout.lines, 'lines of details at 1280 px').toBeLessThanOrEqual(3);
      const overflow = await page.evaluate(`(() => ({
        page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
        table: Math.max(...[...document.querySelectorAll('.table-wrap')].map((wrap) => wrap.scrollWidth - wrap.clientWidth)),
      }))()`);
      expect(overflow, `sideways scroll at ${width} px`).toEqual({ page: 0, table: 0 });
    }
    await context.close();
  });

  it('keep each date whole, at any width', async () => {
    // As a void of a receipt paid by hand records it: "paidOn":"2026-12-" ended a line at 1280 px.
    await db.prisma.$transaction(async (tx) => {
      await appendAudit(tx, {
        actor: 'admin',
        action: 'receipt.void',
        target: 'receipt:4',
        status: 'ok',
        details: {
          total: '1160.12',
          reason: 'duplicate billing test',
          currency: 'THB',
          paidByHand: {
            txRef: 'BANK-2026-0001',
            amount: '1160.12',
            method: 'cash',
            paidOn: '2026-12-04',
            currency: 'THB',
          },
          releasedJobs: 52,
          previousStatus: 'paid',
          voidedAt: '2026-12-04T03:45:12.345Z',
        },
      });
    });
    const { context, page } = await signedInPage(rig, 'auditor', 'auditor-password', {
      viewport: { width: 1280, height: 900 },
    });
    await page.goto(`${base}/admin/audit`);
    const split: string[] = [];
    for (const width of [
      ...Array.from({ length: 31 }, (_, index) => 320 + index * 4),
      ...Array.from({ length: 40 }, (_, index) => 768 + index * 16),
    ]) {
      await page.setViewportSize({ width, height: 900 });
      if ((await datesSplitAcrossLines(page, 'td.audit-details')).length > 0) split.push(`${width}`);
    }
    expect(split, 'widths with a date on two lines').toEqual([]);
    await context.close();
  });
});
