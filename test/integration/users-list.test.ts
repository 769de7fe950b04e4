import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let agent: Agent;

// chief, user000..user119, zed, a-zed-00..a-zed-59 (names containing "zed" that sort before it),
// a_b and axb: 184 users, 4 pages of 50.
const USER_COUNT = 184;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'chief', role: 'admin', password: 'chief-password' });
  const names = [
    ...Array.from({ length: 120 }, (_, index) => `user${String(index).padStart(3, '0')}`),
    'zed',
    ...Array.from({ length: 60 }, (_, index) => `a-zed-${String(index).padStart(2, '0')}`),
    'a_b',
    'axb',
  ];
  // Nobody signs in as them: a placeholder hash spares 183 password hashings.
  await db.prisma.user.createMany({ data: names.map((username) => ({ username, passwordHash: 'x' })) });
  agent = await signInAs(buildTestApp(db), 'chief', 'chief-password');
});
afterAll(() => db?.drop());

const rowsOf = (html: string) =>
  [...html.matchAll(/<tr>\s*<td(?: data-label="Username")?>([^<]+)<\/td>/g)].map((match) => match[1]);
const flashOf = (html: string) => /<div class="alert (\w+)" role="status">([^<]*)<\/div>/.exec(html)?.slice(1, 3);
const page = (path: string) => agent.get(path).set('Accept', 'text/html');

describe('/admin/users paging', () => {
  it('lists 50 users a page, says how many there are, and links the pages', async () => {
    const first = await page('/admin/users').expect(200);
    expect(rowsOf(first.text)).toHaveLength(50);
    expect(rowsOf(first.text)[0]).toBe('a-zed-00');
    expect(first.text).toContain(`${USER_COUNT} users, 50 on this page.`);
    expect(first.text).toContain('Page 1 of 4');
    expect(first.text).toContain('<a href="/admin/users?page=2" rel="next">');
    expect(first.text).not.toContain('rel="prev"');

    const last = await page('/admin/users?page=4').expect(200);
    expect(rowsOf(last.text)).toHaveLength(USER_COUNT - 150);
    expect(last.text).toContain('<a href="/admin/users?page=3" rel="prev">');
    expect(last.text).not.toContain('rel="next"');
    expect(rowsOf(last.text).at(-1)).toBe('zed');
  });

  it('answers a page past the last with a 404 saying what there is', async () => {
    const past = await page('/admin/users?page=5').expect(404);
    expect(past.text).toContain(`There are ${USER_COUNT} users on 4 pages; there is no page 5.`);
    const json = await agent.get('/admin/users?q=zed&page=3').set('Accept', 'application/json').expect(404);
    expect(json.body).toEqual({ error: '61 users match “zed” on 2 pages; there is no page 3.', code: 404 });
  });

  it('leads the error page of a page past the last, or of a refused query, back to the list', async () => {
    // Only "Back to the start page" was offered: the admin lost the list and their search.
    const past = (await page('/admin/users?q=zed&page=3').expect(404)).text;
    expect(past).toContain('<a href="/admin/users?q=zed">Go to page 1</a>');
    const refused = (await page('/admin/users?page=0').expect(400)).text;
    expect(refused).toContain('<a href="/admin/users">Open the list of users</a>');
  });

  it.each([
    ['page 0', '/admin/users?page=0', /^page: must be at least 1/],
    ['a page that is not a number', '/admin/users?page=two', /^page: must be a whole number/],
    ['a search longer than a username', `/admin/users?q=${'a'.repeat(65)}`, /^q: must be at most 64 characters/],
    ['a NUL in the search', '/admin/users?q=ze%00d', /NUL character/],
  ])('refuses %s with a 400', async (_name, path, message) => {
    const refused = await agent.get(path).set('Accept', 'application/json').expect(400);
    expect(refused.body.code).toBe(400);
    expect(refused.body.error).toMatch(message);
  });
});

describe('/admin/users search', () => {
  it('finds the users whose name contains the text, in any case, and omits the others', async () => {
    const found = await page('/admin/users?q=USER01').expect(200);
    expect(rowsOf(found.text)).toEqual(Array.from({ length: 10 }, (_, index) => `user01${index}`));
    expect(found.text).toContain('10 users match “USER01”.');
    expect(found.text).not.toContain('rel="next"');
    expect(found.text).toContain('value="USER01"');
  });

  it('takes _ and % literally, not as LIKE wildcards', async () => {
    expect(rowsOf((await page('/admin/users?q=a_b').expect(200)).text)).toEqual(['a_b']);
    const none = await page('/admin/users?q=%25').expect(200);
    expect(rowsOf(none.text)).toEqual([]);
    expect(none.text).toContain('No users match.');
  });

  it('keeps the search in the page links and lists the exact name first', async () => {
    const searched = await page('/admin/users?q=zed').expect(200);
    expect(rowsOf(searched.text)[0]).toBe('zed');
    expect(searched.text).toContain('61 users match “zed”, 50 on this page.');
    expect(searched.text).toContain('<a href="/admin/users?q=zed&amp;page=2" rel="next">');
  });
});

describe('an action on a user far down the list', () => {
  it('lands the admin on a page that lists them, with the confirmation', async () => {
    const zed = await db.prisma.user.findUniqueOrThrow({ where: { username: 'zed' } });
    const disabled = await agent
      .post(`/admin/users/${zed.id}/disable`)
      .type('form')
      .send({ csrf_token: await csrfTokenOf(agent) })
      .expect(303);
    expect(disabled.headers.location).toBe('/admin/users?q=zed');
    const landed = await page('/admin/users?q=zed').expect(200);
    expect(flashOf(landed.text)).toEqual(['success', 'zed is disabled.']);
    expect(rowsOf(landed.text)[0]).toBe('zed');

    const created = await agent
      .post('/admin/users')
      .type('form')
      .send({ username: 'zz-newcomer', password: 'long-enough-password', csrf_token: await csrfTokenOf(agent) })
      .expect(303);
    expect(created.headers.location).toBe('/admin/users?q=zz-newcomer');
    const shown = await page('/admin/users?q=zz-newcomer').expect(200);
    expect(flashOf(shown.text)).toEqual(['success', 'Created zz-newcomer.']);
    expect(rowsOf(shown.text)).toEqual(['zz-newcomer']);
  });

  it('shows a generated password with the user it belongs to listed', async () => {
    const user077 = await db.prisma.user.findUniqueOrThrow({ where: { username: 'user077' } });
    const reset = await agent
      .post(`/admin/users/${user077.id}/password`)
      .type('form')
      .send({ csrf_token: await csrfTokenOf(agent) })
      .expect(200);
    expect(reset.text).toContain('New password for user077:');
    expect(rowsOf(reset.text)).toEqual(['user077']);
  });
});
