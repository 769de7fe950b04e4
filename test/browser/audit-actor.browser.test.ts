import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAudit } from '../../src/modules/audit/audit.service.js';
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
 * The audit log's Actor column at 1280 px and on a 390 px phone: its cells broke in the middle of
 * a word ("provider:stri / pe", "anonymo / us"), since the column could be squeezed to a letter.
 * An actor may break after "provider:" or a separator of its name (_ - . @), never inside a word;
 * only a word longer than any login name, typed at a failed sign-in, breaks where it must rather
 * than widen the table.
 */
const ACTORS = [
  'provider:stripe',
  'provider:dummy',
  'anonymous',
  'system',
  'cli',
  'alice',
  'xenobiologylab2026',
  'climate-modelling-group',
  // useradd's longest login name, 32 characters.
  'bioinformatics_core_facility_svc',
  // An e-mail address typed at a failed sign-in: wider than a phone's card, it breaks at its dots.
  'firstname.lastname@department.university.example.org',
];
/** What someone typed at a failed sign-in, longer than any login name: it may break, not push the table wide. */
const TYPED = 'x'.repeat(64);

/** Each actor's words (between "provider:" and a name's separators _ - . @) that its cell shows across two lines. */
async function cutActors(page: Page): Promise<string[]> {
  // A string, run in the page: the project's TypeScript has no DOM types.
  return (await page.evaluate(`(() => [...document.querySelectorAll('tbody td[data-label="Actor"]')].flatMap((cell) => {
    const text = cell.textContent.trim();
    const nodes = [];
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    let all = '';
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      nodes.push({ node, start: all.length });
      all += node.textContent;
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
    const offset = all.indexOf(text);
    return text.split(/(?<=[:_.@-])/).filter((part, index, parts) => {
      const start = offset + parts.slice(0, index).join('').length;
      return linesOf(start, start + part.length) > 1;
    }).map((part) => text + ': ' + part);
  }))()`)) as string[];
}

describe.skipIf(!hasChromium)("the audit log's actors", { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let rig: BrowserRig;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    await buildUser(db.prisma, { username: 'auditor', role: 'admin', password: 'auditor-password' });
    await db.prisma.$transaction(async (tx) => {
      for (const [index, actor] of [TYPED, ...ACTORS].entries()) {
        await appendAudit(tx, {
          actor,
          ip: '2001:db8:85a3::8a2e:370:7334',
          action: 'payment.review',
          target: `payment:${index + 7}`,
          status: 'ok',
          details: {
            reason: 'receipt #12 was voided after it was paid online: refund the payment or apply it elsewhere',
            receiptId: 12,
            externalPaymentId: 'dummy_pay_4f9c2a7e1b3d5f8a0c6e2b4d7f9a1c3e5b7d9f0a2c4e6b8d',
            amountMinor: '62009',
            currency: 'THB',
          },
        });
      }
    });
    rig = await startBrowserRig(buildTestApp(db));
    ({ base } = rig);
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  it.each([1280, 390])(
    'break only after "provider:" or a separator, never mid-word, at %d px, without a sideways scroll',
    async (width) => {
      const { context, page } = await signedInPage(rig, 'auditor', 'auditor-password', {
        viewport: { width, height: 900 },
      });
      await page.goto(`${base}/admin/audit`);
      const shown = await page.locator('tbody td[data-label="Actor"]').allTextContents();
      expect(shown.map((text) => text.trim())).toEqual(expect.arrayContaining(ACTORS));
      expect(
        (await cutActors(page)).filter((cut) => !cut.startsWith(TYPED)),
        `actors cut mid-word at ${width} px`,
      ).toEqual([]);
      const overflow = await page.evaluate(`(() => ({
      page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
      table: Math.max(...[...document.querySelectorAll('.table-wrap')].map((wrap) => wrap.scrollWidth - wrap.clientWidth)),
    }))()`);
      expect(overflow, `sideways scroll at ${width} px`).toEqual({ page: 0, table: 0 });
      await context.close();
    },
  );
});
