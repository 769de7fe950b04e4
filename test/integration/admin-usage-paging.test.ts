import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * /admin/usage listed every user of the window on one page: on a centre of 3,000 users a week was
 * 2,290 rows and 1.1 MB of HTML, a year 3,000 rows and 1.6 MB, growing with every user. The page now
 * lists 50 users a page, as /admin/users and /admin/tiers do, with the same pager; the Total row is
 * still every user's under the window and filters, and the JSON keeps every user in one answer.
 */
let db: TestDatabase;
let admin: Agent;
const now = () => new Date('2025-09-20T05:00:00Z');
const WINDOW = 'start=2025-09-14&end=2025-09-20';
/** user001 ... user120, one job each in the window. */
const OWNERS = Array.from({ length: 120 }, (_, index) => `user${String(index + 1).padStart(3, '0')}`);

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'finance', role: 'admin', password: 'finance-password' });
  await buildJobs(
    db,
    OWNERS.map((user, index) => ({ user, jobId: String(1000 + index), end: '2025-09-18T03:00:00Z' })),
  );
  admin = await signInAs(buildTestApp(db, { now }), 'finance', 'finance-password');
});
afterAll(() => db?.drop());

const html = async (path: string, status = 200) =>
  (await admin.get(path).set('Accept', 'text/html').expect(status)).text;
/** The usernames of the page's rows, in order. */
const usersListed = (page: string) =>
  [...page.matchAll(/<td data-label="User"><a href="[^"]*">([^<]*)<\/a><\/td>/g)].map((match) => match[1]);
/** The Jobs cell of the Total row. */
const totalJobs = (page: string) => /<tfoot>.*?<td data-label="Jobs" class="num">([^<]*)<\/td>/s.exec(page)?.[1];

describe('the usage page of a site with more users than a page', () => {
  it('lists the first 50 users, with the total of all of them and a link to the next page', async () => {
    const page = await html(`/admin/usage?${WINDOW}`);
    expect(usersListed(page)).toEqual(OWNERS.slice(0, 50));
    expect(totalJobs(page)).toBe('120');
    expect(page).toContain('<a href="/admin/usage?start=2025-09-14&amp;end=2025-09-20&amp;page=2" rel="next">');
    expect(page).toContain('Page 1 of 3');
  });

  it('lists the last page’s users, the total unchanged, with a link back', async () => {
    const page = await html(`/admin/usage?${WINDOW}&page=3`);
    expect(usersListed(page)).toEqual(OWNERS.slice(100));
    expect(totalJobs(page)).toBe('120');
    expect(page).toContain('<a href="/admin/usage?start=2025-09-14&amp;end=2025-09-20&amp;page=2" rel="prev">');
    expect(page).not.toContain('rel="next"');
  });

  it('keeps the filters in its page links', async () => {
    // user0 is part of user001 ... user099: 99 users on 2 pages.
    const page = await html(`/admin/usage?${WINDOW}&user=user0`);
    expect(usersListed(page)).toHaveLength(50);
    expect(totalJobs(page)).toBe('99');
    expect(page).toContain('<a href="/admin/usage?start=2025-09-14&amp;end=2025-09-20&amp;user=user0&amp;page=2"');
    expect(usersListed(await html(`/admin/usage?${WINDOW}&user=user0&page=2`))).toEqual(OWNERS.slice(50, 99));
  });

  it('answers a page past the last with what there is and the way to page 1, for a GET and a HEAD', async () => {
    const page = await html(`/admin/usage?${WINDOW}&page=4`, 404);
    expect(page).toContain('The window and filters match 120 users on 3 pages; there is no page 4.');
    expect(page).toContain('href="/admin/usage?start=2025-09-14&amp;end=2025-09-20"');
    await admin.head(`/admin/usage?${WINDOW}&page=4`).set('Accept', 'text/html').expect(404);
    await admin.head(`/admin/usage?${WINDOW}&page=3`).set('Accept', 'text/html').expect(200);
  });

  it('refuses a page that is no page number as a filter is refused, on the page', async () => {
    const page = await html(`/admin/usage?${WINDOW}&page=abc`, 400);
    expect(page).toContain('Page');
    expect(usersListed(page)).toEqual([]);
  });

  it('keeps every user in its JSON, one answer as documented', async () => {
    const answer = await admin.get(`/admin/usage?${WINDOW}`).set('Accept', 'application/json').expect(200);
    expect(answer.body.users).toHaveLength(120);
    expect(answer.body.totals.jobs).toBe(120);
  });
});
