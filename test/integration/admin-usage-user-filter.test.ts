import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * /admin/usage's User filter, and its CSV's, matched a whole username, case and all: an admin who typed
 * "ali" for alice was told "No jobs match.", where the billing page finds part of a name in any case.
 * Both now follow the billing page's rule: part of a name in any case lists every owner containing it;
 * a whole name (in any case) is that owner alone, the others containing it offered, so a link to one
 * user's usage stays exact.
 */
let db: TestDatabase;
let admin: Agent;
// 2025-09-20 12:00 in Bangkok.
const now = () => new Date('2025-09-20T05:00:00Z');
const WINDOW = 'start=2025-09-14&end=2025-09-20';

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'finance', role: 'admin', password: 'finance-password' });
  // Job owners need no account: usage lists Slurm's users.
  await buildJobs(db, [
    { user: 'alice', jobId: '101', end: '2025-09-18T03:00:00Z' },
    { user: 'alice', jobId: '102', end: '2025-09-19T03:00:00Z' },
    { user: 'malice', jobId: '201', end: '2025-09-19T04:00:00Z' },
    { user: 'bob', jobId: '301', end: '2025-09-19T05:00:00Z' },
    { user: 'a_b', jobId: '401', end: '2025-09-19T06:00:00Z' },
    { user: 'axb', jobId: '501', end: '2025-09-19T07:00:00Z' },
    // dan ran jobs, none in the window; danny did.
    { user: 'dan', jobId: '601', end: '2025-06-01T03:00:00Z' },
    { user: 'danny', jobId: '701', end: '2025-09-19T08:00:00Z' },
  ]);
  admin = await signInAs(buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now }), 'finance', 'finance-password');
});
afterAll(() => db?.drop());

const html = async (path: string) => (await admin.get(path).set('Accept', 'text/html').expect(200)).text;
const json = async (path: string) => (await admin.get(path).set('Accept', 'application/json').expect(200)).body;
/** The usernames of the page's rows, in order. */
const usersListed = (page: string) =>
  [...page.matchAll(/<td data-label="User"><a href="[^"]*">([^<]*)<\/a><\/td>/g)].map((match) => match[1]);
/** The user column of each line of the CSV (after its header). */
const csvUsers = async (path: string) => {
  const answer = await admin.get(path).expect(200);
  return answer.text
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.split(',')[3]);
};

describe('the usage page’s User filter', () => {
  it('lists every username containing the text, in any case, and names them', async () => {
    const page = await html(`/admin/usage?${WINDOW}&user=ALI`);
    expect(usersListed(page)).toEqual(['alice', 'malice']);
    expect(page).toContain('<p class="muted" id="user-matches">“ALI” is part of 2 usernames: alice, malice.</p>');
    expect(await json(`/admin/usage?${WINDOW}&user=ALI`)).toMatchObject({
      filters: { user: 'ALI' },
      matchedUsers: ['alice', 'malice'],
      alsoContaining: [],
      totals: { jobs: 3 },
    });
  });

  it('lists a whole name alone, as a link to one user means, and offers the names containing it', async () => {
    const page = await html(`/admin/usage?${WINDOW}&user=Alice`);
    expect(usersListed(page)).toEqual(['alice']);
    expect(page).toContain(
      '<p class="muted" id="user-also">Only alice. Usernames also containing “Alice”: <a href="/admin/usage?start=2025-09-14&amp;end=2025-09-20&amp;user=malice">malice</a>.</p>',
    );
    expect(page).not.toContain('id="user-matches"');
    expect(await json(`/admin/usage?${WINDOW}&user=alice`)).toMatchObject({
      matchedUsers: ['alice'],
      alsoContaining: ['malice'],
      totals: { jobs: 2 },
    });
    expect(await json(`/admin/usage?${WINDOW}&user=bob`)).toMatchObject({ matchedUsers: ['bob'], alsoContaining: [] });
    expect(await json(`/admin/usage?${WINDOW}`)).toMatchObject({ matchedUsers: null, alsoContaining: [] });
  });

  it('names at most 10 of the users it matched when none ran a job in the window, counting the rest', async () => {
    // A large centre: part of a name matched 1,100 users, and the empty answer named every one in one sentence.
    await buildJobs(
      db,
      Array.from({ length: 120 }, (_, i) => ({
        user: `crew${String(i + 1).padStart(3, '0')}`,
        jobId: String(9000 + i),
        end: '2025-06-01T03:00:00Z',
      })),
    );
    const page = await html(`/admin/usage?${WINDOW}&user=crew`);
    const first10 = Array.from({ length: 10 }, (_, i) => `crew${String(i + 1).padStart(3, '0')}`).join(', ');
    expect(page).toContain(`No jobs match. ${first10} and 110 more ran no job in this window under these filters.`);
    expect(page).not.toContain('crew011 ran');
    // Its JSON still names them all.
    expect((await json(`/admin/usage?${WINDOW}&user=crew`)).matchedUsers).toHaveLength(120);
  });

  it('keeps a whole name exact when that user ran nothing in the window', async () => {
    // dan's jobs ended before the window: dan's usage there is none, not danny's.
    const page = await html(`/admin/usage?${WINDOW}&user=dan`);
    expect(usersListed(page)).toEqual([]);
    expect(page).toContain('Usernames also containing “dan”: <a href=');
    expect(page).toContain('No jobs match. dan ran no job in this window under these filters.');
    expect(await json(`/admin/usage?${WINDOW}&user=dan`)).toMatchObject({
      matchedUsers: ['dan'],
      alsoContaining: ['danny'],
      totals: { jobs: 0 },
    });
  });

  it('reads _ and % as themselves, and says what it looked for when nothing matches', async () => {
    expect(usersListed(await html(`/admin/usage?${WINDOW}&user=a_b`))).toEqual(['a_b']);
    expect(usersListed(await html(`/admin/usage?${WINDOW}&user=%25`))).toEqual([]);
    const page = await html(`/admin/usage?${WINDOW}&user=zed`);
    expect(page).toContain('<label for="user">User <span class="muted">(part of a name, any case)</span></label>');
    expect(page).toContain('No jobs match. No job is for a username containing “zed” (in any case).');
  });

  it('exports the same users in its CSV', async () => {
    expect(await csvUsers(`/admin/usage.csv?${WINDOW}&user=ALI`)).toEqual(['alice', 'alice', 'malice']);
    expect(await csvUsers(`/admin/usage.csv?${WINDOW}&user=Alice`)).toEqual(['alice', 'alice']);
    expect(await csvUsers(`/admin/usage.csv?${WINDOW}&user=a_b`)).toEqual(['a_b']);
    expect(await csvUsers(`/admin/usage.csv?${WINDOW}&user=dan`)).toEqual([]);
    expect(await csvUsers(`/admin/usage.csv?${WINDOW}&user=zed`)).toEqual([]);
  });
});
