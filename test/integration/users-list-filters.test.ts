import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * /admin/users searched by name alone: on a centre of 3,000 users, the admins, or the accounts
 * disabled at offboarding, were found only by reading its 61 pages. It now filters by role and by
 * status, as the billing page filters receipts by status, and its page links keep the filters.
 */
let db: TestDatabase;
let agent: Agent;

// chief (admin), ops (admin), user000..user119 (user000..user009 disabled), ex-ops (admin, disabled).
const USERS = Array.from({ length: 120 }, (_, index) => `user${String(index).padStart(3, '0')}`);

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'chief', role: 'admin', password: 'chief-password' });
  // Nobody signs in as them: a placeholder hash spares the hashings.
  await db.prisma.user.createMany({
    data: [
      { username: 'ops', passwordHash: 'x', role: 'admin' },
      { username: 'ex-ops', passwordHash: 'x', role: 'admin', isDisabled: true },
      ...USERS.map((username, index) => ({ username, passwordHash: 'x', isDisabled: index < 10 })),
    ],
  });
  agent = await signInAs(buildTestApp(db), 'chief', 'chief-password');
});
afterAll(() => db?.drop());

const rowsOf = (html: string) =>
  [...html.matchAll(/<tr>\s*<td(?: data-label="Username")?>([^<]+)<\/td>/g)].map((match) => match[1]);
const page = (path: string) => agent.get(path).set('Accept', 'text/html');
const json = async (path: string) => (await agent.get(path).set('Accept', 'application/json').expect(200)).body;

describe('/admin/users filters', () => {
  it('lists the admins alone', async () => {
    const admins = await page('/admin/users?role=admin').expect(200);
    expect(rowsOf(admins.text)).toEqual(['chief', 'ex-ops', 'ops']);
    expect(admins.text).toContain('3 users match role admin.');
    expect(admins.text).toMatch(/<option value="admin" selected>admin<\/option>/);
  });

  it('lists the disabled accounts alone, and with a role those of that role', async () => {
    expect(rowsOf((await page('/admin/users?status=disabled').expect(200)).text)).toEqual([
      'ex-ops',
      ...USERS.slice(0, 10),
    ]);
    expect(rowsOf((await page('/admin/users?status=disabled&role=admin').expect(200)).text)).toEqual(['ex-ops']);
    expect(rowsOf((await page('/admin/users?status=active&role=admin').expect(200)).text)).toEqual(['chief', 'ops']);
  });

  it('keeps the search and the filters in its page links', async () => {
    // 110 active users: 3 pages.
    const first = await page('/admin/users?q=user&status=active').expect(200);
    expect(rowsOf(first.text)).toEqual(USERS.slice(10, 60));
    expect(first.text).toContain('<a href="/admin/users?q=user&amp;status=active&amp;page=2" rel="next">');
    const last = await page('/admin/users?q=user&status=active&page=3').expect(200);
    expect(rowsOf(last.text)).toEqual(USERS.slice(110));
  });

  it('answers a script with the filters and the users they match', async () => {
    const answer = await json('/admin/users?role=admin&status=active');
    expect(answer).toMatchObject({ q: null, role: 'admin', status: 'active', count: 2, pageCount: 1 });
    expect(answer.users.map((user: { username: string }) => user.username)).toEqual(['chief', 'ops']);
    expect((await json('/admin/users')).count).toBe(123);
  });

  it('answers a page past the last with what the filters match', async () => {
    const past = await page('/admin/users?role=admin&page=2').expect(404);
    expect(past.text).toContain('3 users match role admin on 1 page; there is no page 2.');
    await agent.head('/admin/users?role=admin&page=2').set('Accept', 'text/html').expect(404);
  });

  // The create and role-change forms read a role in any case (`"role": "Admin"`); the filter refused it.
  it('reads the role in any case, as the forms do', async () => {
    for (const role of ['Admin', 'ADMIN']) {
      const answer = await json(`/admin/users?role=${role}&status=active`);
      expect(answer).toMatchObject({ role: 'admin', count: 2 });
      expect(answer.users.map((user: { username: string }) => user.username)).toEqual(['chief', 'ops']);
    }
    const admins = await page('/admin/users?role=Admin').expect(200);
    expect(rowsOf(admins.text)).toEqual(['chief', 'ex-ops', 'ops']);
    expect(admins.text).toMatch(/<option value="admin" selected>admin<\/option>/);
    const refused = await agent.get('/admin/users?role=Owner').set('Accept', 'application/json').expect(400);
    expect(refused.body.error).toBe('role: must be one of admin, user');
  });

  it('refuses a role or a status that is none, naming the ones there are, and lists no one', async () => {
    const refused = await agent.get('/admin/users?role=owner').set('Accept', 'application/json').expect(400);
    expect(refused.body.error).toBe('role: must be one of admin, user');
    const status = await agent.get('/admin/users?status=locked').set('Accept', 'application/json').expect(400);
    expect(status.body.error).toBe('status: must be one of active, disabled');
  });
});
