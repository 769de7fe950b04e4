import type express from 'express';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildReceiptRow } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs, signInNewAdmin } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The lists a finance officer reconciles page by page (/admin/receipts, My receipts, the month-end
 * runs) paged by OFFSET: a receipt made (or one voided out of a status filter) between two page loads
 * moved every later row, so the next page repeated rows of the one before or skipped some; a skipped
 * receipt is one nobody reconciles. The Older link now carries the last row's place in the list.
 */

let db: TestDatabase;
let app: express.Express;
let admin: Agent;
let alice: Agent;

const BASE = Date.parse('2026-10-01T00:00:00Z');

beforeAll(async () => {
  db = await createTestDatabase();
  app = buildTestApp(db);
  admin = await signInNewAdmin(app, db, 'boss');
  await buildUser(db.prisma, { username: 'alice' });
  alice = await signInAs(app, 'alice', 'alice-password');
});
afterAll(() => db?.drop());

beforeEach(async () => {
  await db.prisma.receipt.deleteMany();
  await db.prisma.monthEndRun.deleteMany();
});

/**
 * `count` receipts of `username`, oldest first, two at a time made in the same millisecond, so that
 * the list's order between them is by id alone; their ids newest first, as the lists show them.
 */
async function buildReceipts(username: string, count: number, firstMinute = 0): Promise<number[]> {
  const ids: number[] = [];
  for (let n = 0; n < count; n += 1) {
    const createdAt = new Date(BASE + (firstMinute + Math.floor(n / 2)) * 60_000);
    ids.push((await buildReceiptRow(db, username, { createdAt })).id);
  }
  return ids.reverse();
}

const json = (agent: Agent, path: string) => agent.get(path).set('Accept', 'application/json');
const html = (agent: Agent, path: string) => agent.get(path).set('Accept', 'text/html');

/** The ids a list page shows, in its order, from each row's link (Receipt #7, Month-end run #3). */
function idsOnPage(text: string, rowName: string): number[] {
  return [...text.matchAll(new RegExp(`aria-label="${rowName} #(\\d+)"`, 'g'))].map((match) => Number(match[1]));
}

/** The address of the page's link to the next (older) page. */
function olderLinkOf(text: string): string | undefined {
  const href = /<a href="([^"]+)" rel="next"/.exec(text)?.[1];
  return href?.replaceAll('&amp;', '&');
}

describe('the next page after the list changed', () => {
  it('/admin/receipts as JSON: receipts made since page 1 neither repeat nor skip a row of page 2', async () => {
    const before = await buildReceipts('alice', 30);
    const first = await json(admin, '/admin/receipts').expect(200);
    expect(first.body.receipts.map((receipt: { id: number }) => receipt.id)).toEqual(before.slice(0, 25));
    await buildReceipts('alice', 3, 100);

    const older = await json(admin, first.body.olderUrl ?? '/admin/receipts?page=2').expect(200);
    expect(older.body.receipts.map((receipt: { id: number }) => receipt.id)).toEqual(before.slice(25));
    expect(older.body.olderUrl).toBeNull();
    expect(older.body.count).toBe(33);
  });

  it('/admin/receipts as HTML: the Older link keeps the filters, and voids since page 1 skip nothing', async () => {
    const before = await buildReceipts('alice', 30);
    await buildReceipts('bob', 4, 50);
    const first = await html(admin, '/admin/receipts?status=pending&user=alice').expect(200);
    expect(idsOnPage(first.text, 'Receipt')).toEqual(before.slice(0, 25));
    // Three receipts of page 1 voided meanwhile leave the pending ones the filter lists.
    await db.prisma.receipt.updateMany({ where: { id: { in: before.slice(0, 3) } }, data: { status: 'void' } });

    const link = olderLinkOf(first.text) ?? '/admin/receipts?status=pending&user=alice&page=2';
    expect(link).toMatch(/^\/admin\/receipts\?status=pending&user=alice&older=/);
    const older = await html(admin, link).expect(200);
    expect(idsOnPage(older.text, 'Receipt')).toEqual(before.slice(25));
    expect(olderLinkOf(older.text)).toBeUndefined();
    expect(older.text).toContain('href="/admin/receipts?status=pending&amp;user=alice"');
  });

  it("/admin/receipts as JSON: a filter's Older link keeps it, and voids since page 1 skip nothing", async () => {
    const before = await buildReceipts('alice', 30);
    const first = await json(admin, '/admin/receipts?status=pending').expect(200);
    await db.prisma.receipt.updateMany({ where: { id: { in: before.slice(0, 3) } }, data: { status: 'void' } });
    const older = await json(admin, first.body.olderUrl ?? '/admin/receipts?status=pending&page=2').expect(200);
    expect(older.body.filters).toEqual({ status: 'pending' });
    expect(older.body.receipts.map((receipt: { id: number }) => receipt.id)).toEqual(before.slice(25));
  });

  it('My receipts, as HTML and as JSON: receipts made since page 1 neither repeat nor skip a row', async () => {
    const before = await buildReceipts('alice', 30);
    await buildReceipts('bob', 5, 10);
    const firstHtml = await html(alice, '/me/receipts').expect(200);
    const firstJson = await json(alice, '/me/receipts').expect(200);
    expect(idsOnPage(firstHtml.text, 'Receipt')).toEqual(before.slice(0, 25));
    await buildReceipts('alice', 4, 100);

    const olderHtml = await html(alice, olderLinkOf(firstHtml.text) ?? '/me/receipts?page=2').expect(200);
    expect(idsOnPage(olderHtml.text, 'Receipt')).toEqual(before.slice(25));
    const olderJson = await json(alice, firstJson.body.olderUrl ?? '/me/receipts?page=2').expect(200);
    expect(olderJson.body.receipts.map((receipt: { id: number }) => receipt.id)).toEqual(before.slice(25));
    expect(olderJson.body).toMatchObject({ count: 34, olderUrl: null, firstRow: 30, lastRow: 34 });
    // Back to the newer ones: the page before the older page's first row, 25 of them.
    const newer = await json(alice, olderJson.body.newerUrl).expect(200);
    expect(newer.body.receipts.map((receipt: { id: number }) => receipt.id)).toEqual(before.slice(0, 25));
    expect(newer.body).toMatchObject({ firstRow: 5, lastRow: 29 });
  });

  it('month-end runs, as HTML and as JSON: runs started since page 1 neither repeat nor skip a row', async () => {
    const runIds: number[] = [];
    for (let n = 0; n < 53; n += 1) runIds.unshift(await buildRun(n));
    const firstHtml = await html(admin, '/admin/month-end').expect(200);
    const firstJson = await json(admin, '/admin/month-end').expect(200);
    expect(idsOnPage(firstHtml.text, 'Month-end run')).toEqual(runIds.slice(0, 50));
    for (let n = 53; n < 56; n += 1) await buildRun(n);

    const olderHtml = await html(admin, olderLinkOf(firstHtml.text) ?? '/admin/month-end?page=2').expect(200);
    expect(idsOnPage(olderHtml.text, 'Month-end run')).toEqual(runIds.slice(50));
    const olderJson = await json(admin, firstJson.body.olderUrl ?? '/admin/month-end?page=2').expect(200);
    expect(olderJson.body.runs.map((run: { id: number }) => run.id)).toEqual(runIds.slice(50));
    expect(olderJson.body).toMatchObject({ count: 56, olderUrl: null, firstRow: 54, lastRow: 56 });
  });
});

describe('a place in the list that is not one the list gave', () => {
  it.each([
    ['not base64 at all', '!!!'],
    ['base64 of something else', Buffer.from('hello').toString('base64url')],
    ['a time and id that no receipt has', Buffer.from(`${BASE + 7}.999999`).toString('base64url')],
    ['a number too large for an id', Buffer.from(`${BASE}.99999999999`).toString('base64url')],
    // A time JavaScript holds but the database is not asked about (Prisma refuses a year past 9999): it was a 500.
    ['a time past the year 9999', Buffer.from('253402300800000.1').toString('base64url')],
  ])('/admin/receipts refuses %s with a 400 that says so, changing nothing', async (_, cursor) => {
    await buildReceipts('alice', 3);
    const reason =
      'older: is not a place in this list: it was edited or cut short. Open the first page and page on from there.';
    const answer = await json(admin, `/admin/receipts?status=pending&older=${encodeURIComponent(cursor)}`);
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({ error: reason, code: 400 });
    const page = await html(admin, `/admin/receipts?older=${encodeURIComponent(cursor)}`).expect(400);
    expect(page.text).toContain(reason.replace(/^older/, 'Older'));
    expect(idsOnPage(page.text, 'Receipt')).toEqual([]);
    expect(await db.prisma.receipt.count()).toBe(3);
  });

  it("My receipts refuses a place of another user's receipt, and page= given with older=", async () => {
    const bobs = await buildReceipts('bob', 2);
    const bobRow = await db.prisma.receipt.findUniqueOrThrow({ where: { id: bobs[0] } });
    const cursor = Buffer.from(`${bobRow.createdAt.getTime()}.${bobRow.id}`).toString('base64url');
    const answer = await json(alice, `/me/receipts?older=${cursor}`).expect(400);
    expect(answer.body.error).toMatch(/^older: is not a place in this list/);
    const page = await html(alice, `/me/receipts?older=${cursor}`).expect(400);
    expect(page.text).toContain('Older: is not a place in this list');

    const both = await json(alice, `/me/receipts?page=2&older=${cursor}`).expect(400);
    expect(both.body.error).toMatch(/older: cannot be given with page/);
    // A HEAD (a link checker) is refused as its GET is, and answered as it is for a place of her own.
    await alice.head(`/me/receipts?older=${cursor}`).expect(400);
    await alice.head('/me/receipts?older=!!!').expect(400);
    const [own] = await buildReceipts('alice', 1);
    const ownRow = await db.prisma.receipt.findUniqueOrThrow({ where: { id: own } });
    await alice
      .head(`/me/receipts?older=${Buffer.from(`${ownRow.createdAt.getTime()}.${own}`).toString('base64url')}`)
      .expect(200);
    await admin.head(`/admin/receipts?older=${cursor}`).expect(200);
    await admin.head(`/admin/receipts?older=${cursor.slice(0, -2)}`).expect(400);
    // A time past the year 9999, in either link and from a HEAD too: the 400 of a place not given, not a 500.
    const farFuture = Buffer.from('8640000000000000.1').toString('base64url');
    for (const field of ['older', 'newer']) {
      const far = await json(alice, `/me/receipts?${field}=${farFuture}`);
      expect(far.status, far.text).toBe(400);
      expect(far.body.error).toMatch(new RegExp(`^${field}: is not a place in this list`));
      await alice.head(`/me/receipts?${field}=${farFuture}`).expect(400);
    }
  });

  it('month-end runs refuse a run that is not there, and newer= with older=', async () => {
    const id = await buildRun(0);
    const missing = Buffer.from(String(id + 1000)).toString('base64url');
    const answer = await json(admin, `/admin/month-end?older=${missing}`).expect(400);
    expect(answer.body.error).toMatch(/^older: is not a place in this list/);
    const both = await json(admin, `/admin/month-end?older=${missing}&newer=${missing}`).expect(400);
    expect(both.body.error).toMatch(/cannot be given with/);
    expect(await db.prisma.monthEndRun.count()).toBe(1);
  });

  it('page= still answers the page at that offset, as bookmarks and scripts ask it', async () => {
    const before = await buildReceipts('alice', 27);
    const second = await json(admin, '/admin/receipts?page=2').expect(200);
    expect(second.body).toMatchObject({ page: 2, pageCount: 2, firstRow: 26, lastRow: 27, olderUrl: null });
    expect(second.body.receipts.map((receipt: { id: number }) => receipt.id)).toEqual(before.slice(25));
  });
});

async function buildRun(n: number): Promise<number> {
  const row = await db.prisma.monthEndRun.create({
    data: {
      billedThrough: new Date(Date.UTC(2020, n, 28)),
      startedBy: 'boss',
      startedAt: new Date(Date.UTC(2020, n, 28, 20)),
      finishedAt: new Date(Date.UTC(2020, n, 28, 20, 1)),
      outcome: 'succeeded',
      usersTotal: 0,
      usersDone: 0,
      receiptCount: 0,
    },
  });
  return row.id;
}
