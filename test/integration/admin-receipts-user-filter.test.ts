import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReceiptRow, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The billing page's User filter matched a whole username, case and all: an admin who typed "ali" or
 * "Alice" for alice was told "No receipts match.". It now finds every username containing the text, in
 * any case; a _ or % in it is a plain character, not a wildcard. A whole name (in any case) is that
 * user alone: links from /admin/usage and month-end runs name one user.
 */
let db: TestDatabase;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'finance', role: 'admin', password: 'finance-password' });
  admin = await signInAs(buildTestApp(db), 'finance', 'finance-password');
  // 26 of alice's (a second page), one each of malice, bob, a_b and axb; none need an account here.
  for (let day = 1; day <= 26; day += 1) {
    await buildReceiptRow(db, 'alice', { createdAt: new Date(`2026-02-${String(day).padStart(2, '0')}T12:00:00Z`) });
  }
  await buildReceiptRow(db, 'malice', { createdAt: new Date('2026-03-01T12:00:00Z'), total: '2.00' });
  await buildReceiptRow(db, 'bob', { createdAt: new Date('2026-03-02T12:00:00Z') });
  await buildReceiptRow(db, 'a_b', { createdAt: new Date('2026-03-03T12:00:00Z') });
  await buildReceiptRow(db, 'axb', { createdAt: new Date('2026-03-04T12:00:00Z') });
});
afterAll(() => db?.drop());

const html = async (path: string) => (await admin.get(path).set('Accept', 'text/html').expect(200)).text;
/** The User cell of each receipt listed, as text (a login name is split into spans to break between). */
const usersListed = (page: string) =>
  [...page.matchAll(/<td data-label="User" class="login-name">(.*?)<\/td>/g)].map((match) =>
    (match[1] as string).replace(/<[^>]*>/g, ''),
  );
const json = async (path: string) => (await admin.get(path).set('Accept', 'application/json').expect(200)).body;

describe('the billing page’s User filter', () => {
  it('lists the receipts of every username containing the text, in any case, with their totals', async () => {
    const page = await html('/admin/receipts?user=ALI');
    const users = usersListed(page);
    expect(users).toHaveLength(25);
    expect(users).toEqual(['malice', ...Array(24).fill('alice')]);
    // 26 × 0.50 + 2.00: the pending card sums what the filter found.
    expect(page).toContain('15.00 THB');
    expect(page).toContain('27 receipts');
    // The next page keeps the filter as typed.
    const older = /href="(\/admin\/receipts\?user=ALI&amp;older=[A-Za-z0-9_-]+)" rel="next"/.exec(page)?.[1];
    expect(older).toBeDefined();
    const second = usersListed(await html(String(older).replaceAll('&amp;', '&')));
    expect(second).toEqual(['alice', 'alice']);
    // ?page=2, as a bookmark has it, still lists the same.
    expect(usersListed(await html('/admin/receipts?user=ALI&page=2'))).toEqual(['alice', 'alice']);
  });

  it('says on the page that it matches part of a name in any case', async () => {
    const page = await html('/admin/receipts');
    expect(page).toContain('<label for="user">User <span class="muted">(part of a name, any case)</span></label>');
    expect(await html('/admin/receipts?user=zed')).toContain(
      'No receipts match. No receipt is for a username containing “zed” (in any case).',
    );
  });

  it('lists a whole name alone, as links to one user mean, and offers the names containing it', async () => {
    // /admin/usage and a month-end run link a user to ?user=<name>: alice's link summed malice's 2.00 in.
    const page = await html('/admin/receipts?user=Alice');
    expect(new Set(usersListed(page))).toEqual(new Set(['alice']));
    expect(page).toContain('13.00 THB');
    expect(page).toContain('26 receipts');
    expect(page).toContain(
      '<p class="muted" id="user-also">Only alice. Usernames also containing “Alice”: <a href="/admin/receipts?user=malice">malice</a>.</p>',
    );
    expect(page).not.toContain('id="user-matches"');
    expect(await json('/admin/receipts?user=alice')).toMatchObject({
      count: 26,
      matchedUsers: ['alice'],
      alsoContaining: ['malice'],
    });
    expect(await html('/admin/receipts?user=bob')).not.toContain('id="user-also"');
    expect(await json('/admin/receipts?user=bob')).toMatchObject({ matchedUsers: ['bob'], alsoContaining: [] });
    expect(await json('/admin/receipts')).toMatchObject({ matchedUsers: null, alsoContaining: [] });
  });

  it('keeps a whole name exact for an account with no receipt, as a link from /admin/usage to it means', async () => {
    // dan has usage and an account but no receipt yet; danny has one. Usage links dan's row to ?user=dan.
    await buildUser(db.prisma, { username: 'dan' });
    await buildReceiptRow(db, 'danny', { createdAt: new Date('2026-03-05T12:00:00Z'), total: '7.00' });
    const page = await html('/admin/receipts?user=dan');
    expect(usersListed(page)).toEqual([]);
    expect(page).not.toContain('7.00 THB');
    expect(page).toContain('No receipts match. dan has no receipt under these filters.');
    expect(page).toContain(
      'Only dan. Usernames also containing “dan”: <a href="/admin/receipts?user=danny">danny</a>.',
    );
    expect(await json('/admin/receipts?user=DAN')).toMatchObject({
      count: 0,
      matchedUsers: ['dan'],
      alsoContaining: ['danny'],
    });
    // Part of a name still finds the receipts of every name containing it.
    expect(usersListed(await html('/admin/receipts?user=da'))).toEqual(['danny']);
    // A whole name under another filter that leaves nothing says so, not that no username contains it.
    expect(await html('/admin/receipts?user=bob&status=void')).toContain(
      'No receipts match. bob has no receipt under these filters.',
    );
  });

  it('names the users it matched when part of a name matches several', async () => {
    expect(await html('/admin/receipts?user=lic')).toContain(
      '<p class="muted" id="user-matches">“lic” is part of 2 usernames: alice, malice.</p>',
    );
    expect((await json('/admin/receipts?user=lic')).matchedUsers).toEqual(['alice', 'malice']);
  });

  it('names at most 10 of the users it matched when none has a receipt under the filters, counting the rest', async () => {
    // A large centre: part of a name matched 1,100 users, and the empty answer named every one in one sentence.
    for (let i = 1; i <= 120; i += 1) {
      await buildReceiptRow(db, `crew${String(i).padStart(3, '0')}`, {
        createdAt: new Date('2026-03-06T12:00:00Z'),
      });
    }
    const page = await html('/admin/receipts?user=crew&status=void');
    const first10 = Array.from({ length: 10 }, (_, i) => `crew${String(i + 1).padStart(3, '0')}`).join(', ');
    expect(page).toContain(`No receipts match. ${first10} and 110 more have no receipt under these filters.`);
    expect(page).not.toContain('crew011');
    // Its JSON still names them all.
    expect((await json('/admin/receipts?user=crew&status=void')).matchedUsers).toHaveLength(120);
  });

  it('reads _ and % as themselves', async () => {
    expect(usersListed(await html('/admin/receipts?user=a_b'))).toEqual(['a_b']);
    expect(await html('/admin/receipts?user=%25')).toContain('No receipts match.');
  });

  it('answers a JSON client alike, its filters as typed', async () => {
    const body = await json('/admin/receipts?user=Ali');
    expect(body).toMatchObject({ filters: { user: 'Ali' }, page: 1, pageCount: 2, count: 27 });
    expect(new Set(body.receipts.map((receipt: { username: string }) => receipt.username))).toEqual(
      new Set(['alice', 'malice']),
    );
    expect((await json('/admin/receipts?user=B')).receipts.map((r: { username: string }) => r.username)).toEqual([
      'axb',
      'a_b',
      'bob',
    ]);
  });

  it('checks a later page of a HEAD against the same matches', async () => {
    await admin.head('/admin/receipts?user=ali&page=2').expect(200);
    await admin.head('/admin/receipts?user=ali&page=3').expect(404);
  });
});
