import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DUMMY_PAYMENTS_ENV } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The audit log and the payments page page by a place in the list (`before=`, `older=`/`newer=`),
 * not by number. `?page=N` was ignored as an unknown field, so a script looping page=1..N (as it
 * does on /admin/receipts, /admin/users, /admin/tiers) got the newest page every time at 200, and
 * read the same entries as every page, never the older ones; `page=999` answered 200 too.
 */
let db: TestDatabase;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'pager', role: 'admin', password: 'pager-password' });
  admin = await signInAs(buildTestApp(db, { env: DUMMY_PAYMENTS_ENV }), 'pager', 'pager-password');
});
afterAll(() => db?.drop());

describe('a page number sent to a list paged by place', () => {
  it.each([
    [
      '/admin/audit',
      'page: is not read here: the audit log is paged by its older entries link (before=<id>, nextPageUrl in its JSON); start at the newest entries and follow it',
    ],
    [
      '/admin/payments',
      'page: is not read here: the payments list is paged by its older and newer links (older=<id> and newer=<id>, paging.olderUrl and paging.newerUrl in its JSON); start at the newest payments and follow them',
    ],
  ])('%s refuses it by name, saying which link to follow', async (path, error) => {
    for (const page of ['2', '999', '1']) {
      const json = await admin.get(`${path}?page=${page}`).set('Accept', 'application/json');
      expect(json.status).toBe(400);
      expect(json.body).toEqual({ error, code: 400 });
      await admin.head(`${path}?page=${page}`).set('Accept', 'application/json').expect(400);
    }
    const html = await admin.get(`${path}?page=2`).set('Accept', 'text/html').expect(400);
    expect(visibleTextOf(html.text)).toContain('is not read here');
    // Left empty (a script's unset variable) it is left out, as every optional field is.
    await admin.get(`${path}?page=`).set('Accept', 'application/json').expect(200);
    await admin.get(path).set('Accept', 'application/json').expect(200);
  });

  it('is still ignored by the audit CSV, which exports every entry the filters match, not a page', async () => {
    const whole = await admin.get('/admin/audit.csv?actor=pager').expect(200);
    const paged = await admin.get('/admin/audit.csv?actor=pager&page=2').expect(200);
    expect(paged.text).toBe(whole.text);
  });
});
