/**
 * A month-end run at a large centre billed 312 users disabled at offboarding, and its page listed them
 * all in one table (82 KB). The table now shows 50 a page, paged by `?page=` as /admin/users is, with
 * the count of them all above it; the run's JSON still lists every one (docs/billing.md). Its table of
 * users skipped (3,000 users, hundreds skipped) is paged alike by its own `?skipped_page=`, so that paging
 * one table keeps the other's page and an old `?page=` link still pages the disabled users billed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let admin: Agent;
let path: string;
const BILLED = 120;
const SKIPPED = 130;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  const disabledUsersBilled = Array.from({ length: BILLED }, (_, i) => ({
    username: `leaver${String(i + 1).padStart(3, '0')}`,
    receiptId: 1000 + i,
    total: '7.1',
    currency: 'THB',
    status: 'pending',
  }));
  const skipped = Array.from({ length: SKIPPED }, (_, i) => ({
    username: `skip${String(i + 1).padStart(3, '0')}`,
    kind: 'nothing_left',
    reason: 'Nothing to bill.',
  }));
  const run = await db.prisma.monthEndRun.create({
    data: {
      billedThrough: new Date('2025-08-31T00:00:00Z'),
      startedBy: 'boss',
      startedAt: new Date('2025-09-01T04:00:00Z'),
      finishedAt: new Date('2025-09-01T04:05:00Z'),
      outcome: 'succeeded',
      usersTotal: BILLED,
      usersDone: BILLED,
      receiptCount: BILLED,
      totals: [{ currency: 'THB', total: '852' }],
      disabledUsersBilled,
      skipped,
    },
  });
  path = `/admin/month-end/${run.id}`;
  admin = await signInAs(buildTestApp(db), 'boss', 'boss-password');
});
afterAll(() => db?.drop());

/** The disabled users the run's page shows in its table, in order. */
function disabledShown(html: string): string[] {
  const table = /<caption class="visually-hidden">Disabled users billed by this run<\/caption>([\s\S]*?)<\/table>/.exec(
    html,
  );
  if (!table) return [];
  return [...(table[1] as string).matchAll(/<a href="\/admin\/receipts\?user=(leaver\d+)">/g)].map(
    (m) => m[1] as string,
  );
}

/** The skipped users the run's page shows in its table, in order. */
function skippedShown(html: string): string[] {
  const table = /<caption class="visually-hidden">Users skipped by this run<\/caption>([\s\S]*?)<\/table>/.exec(html);
  if (!table) return [];
  return [...(table[1] as string).matchAll(/<a href="\/admin\/receipts\?user=(skip\d+)">/g)].map((m) => m[1] as string);
}

describe('a month-end run that billed many disabled users', () => {
  it('shows them 50 a page, with the count of all and links to the other pages', async () => {
    const first = await admin.get(path).set('Accept', 'text/html').expect(200);
    const shown = disabledShown(first.text);
    expect(shown).toHaveLength(50);
    expect(shown[0]).toBe('leaver001');
    expect(shown.at(-1)).toBe('leaver050');
    const text = visibleTextOf(first.text);
    expect(text).toContain(`Disabled users billed ${BILLED}`);
    expect(text).toContain('Page 1 of 3');
    expect(first.text).toContain(`href="${path}?page=2" rel="next"`);

    const second = await admin.get(`${path}?page=2`).set('Accept', 'text/html').expect(200);
    expect(disabledShown(second.text)).toEqual(
      Array.from({ length: 50 }, (_, i) => `leaver${String(i + 51).padStart(3, '0')}`),
    );
    const last = await admin.get(`${path}?page=3`).set('Accept', 'text/html').expect(200);
    expect(disabledShown(last.text)).toHaveLength(BILLED - 100);
    expect(disabledShown(last.text).at(-1)).toBe('leaver120');
  });

  it('refuses a page past the last (404, saying how many there are) and a page that is not one (400)', async () => {
    const past = await admin.get(`${path}?page=4`).set('Accept', 'text/html').expect(404);
    expect(visibleTextOf(past.text)).toMatch(
      /Month-end run #\d+ billed 120 disabled users on 3 pages; there is no page 4\./,
    );
    expect(past.text).toContain(`href="${path}"`);
    await admin.get(`${path}?page=abc`).set('Accept', 'text/html').expect(400);
    // A HEAD answers as its GET does, from the run's row.
    await admin.head(`${path}?page=3`).set('Accept', 'text/html').expect(200);
    await admin.head(`${path}?page=4`).set('Accept', 'text/html').expect(404);
  });

  it('keeps every one of them in its JSON', async () => {
    const json = await admin.get(path).set('Accept', 'application/json').expect(200);
    expect(json.body.disabledUsersBilled).toHaveLength(BILLED);
  });
});

describe('a month-end run that skipped many users', () => {
  it('shows them 50 a page by ?skipped_page=, keeping the page of the disabled users billed', async () => {
    const first = await admin.get(path).set('Accept', 'text/html').expect(200);
    expect(skippedShown(first.text)).toEqual(
      Array.from({ length: 50 }, (_, i) => `skip${String(i + 1).padStart(3, '0')}`),
    );
    expect(visibleTextOf(first.text)).toContain(`Users skipped ${SKIPPED}`);
    expect(first.text).toContain(`href="${path}?skipped_page=2" rel="next"`);

    // Each table keeps the other's page: ?page=2 of the disabled users billed with page 3 of the skipped.
    const both = await admin.get(`${path}?page=2&skipped_page=3`).set('Accept', 'text/html').expect(200);
    expect(skippedShown(both.text)).toHaveLength(SKIPPED - 100);
    expect(skippedShown(both.text).at(-1)).toBe('skip130');
    expect(disabledShown(both.text)[0]).toBe('leaver051');
    expect(both.text).toContain(`href="${path}?page=2&amp;skipped_page=2" rel="prev"`);
    expect(both.text).toContain(`href="${path}?page=3&amp;skipped_page=3" rel="next"`);
  });

  it('refuses a page past the last (404, saying how many there are) and one that is not a page (400)', async () => {
    const past = await admin.get(`${path}?skipped_page=4`).set('Accept', 'text/html').expect(404);
    expect(visibleTextOf(past.text)).toMatch(/Month-end run #\d+ skipped 130 users on 3 pages; there is no page 4\./);
    expect(past.text).toContain(`href="${path}"`);
    await admin.get(`${path}?skipped_page=abc`).set('Accept', 'text/html').expect(400);
    await admin.head(`${path}?skipped_page=3`).set('Accept', 'text/html').expect(200);
    await admin.head(`${path}?skipped_page=4`).set('Accept', 'text/html').expect(404);
  });

  it('keeps every one of them in its JSON', async () => {
    const json = await admin.get(`${path}?skipped_page=2`).set('Accept', 'application/json').expect(200);
    expect(json.body.skipped).toHaveLength(SKIPPED);
  });
});
