import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectPageForBrowsersAndNoJsonForResearchers } from '../support/admin-json.js';
import { buildUser } from '../support/factories.js';
import { type Agent, postLogin, signInAs, signInNewAdmin } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * /admin/users for a script: it answered a JSON client with the HTML page, while the other admin
 * lists (usage, receipts, payments, the audit log) answer JSON. Now the page's list comes as JSON,
 * with what the page shows of each user and never a password hash.
 */

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  app = buildTestApp(db);
  admin = await signInNewAdmin(app, db, 'ops');
  await buildUser(db.prisma, { username: 'zed' });
  await buildUser(db.prisma, { username: 'zedda', isDisabled: true });
  await buildUser(db.prisma, { username: 'alice' });
  // Five wrong passwords lock zed's sign-in from this address.
  for (let attempt = 0; attempt < 5; attempt += 1) await postLogin(app, 'zed', 'not-zeds-password');
});
afterAll(() => db?.drop());

function getJson(agent: Agent, path: string) {
  return agent.get(path).set('Accept', 'application/json');
}

describe('GET /admin/users for a JSON client', () => {
  it('answers the page’s list as JSON, each user as the page shows them, without password hashes', async () => {
    const answer = await getJson(admin, '/admin/users').expect(200);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(answer.body).toMatchObject({ q: null, page: 1, pageCount: 1, count: 4 });
    expect(answer.body.users.map((user: { username: string }) => user.username)).toEqual([
      'alice',
      'ops',
      'zed',
      'zedda',
    ]);
    const zed = await db.prisma.user.findUniqueOrThrow({ where: { username: 'zed' } });
    expect(answer.body.users[2]).toEqual({
      id: zed.id,
      username: 'zed',
      role: 'user',
      isDisabled: false,
      createdAt: zed.createdAt.toISOString(),
      lockedUntil: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
    });
    expect(answer.body.users[3]).toMatchObject({ username: 'zedda', isDisabled: true, lockedUntil: null });
    expect(answer.body.users[1]).toMatchObject({ username: 'ops', role: 'admin' });
    expect(answer.text).not.toMatch(/password|hash|\$argon|\$2[aby]\$|scrypt/i);
  });

  it('searches and pages as the page does', async () => {
    const found = await getJson(admin, '/admin/users?q=ZED').expect(200);
    expect(found.body).toMatchObject({ q: 'ZED', page: 1, pageCount: 1, count: 2 });
    expect(found.body.users.map((user: { username: string }) => user.username)).toEqual(['zed', 'zedda']);
  });

  it('refuses a page past the last, a bad page or a long search with {error, code}', async () => {
    for (const [path, code] of [
      ['/admin/users?page=2', 404],
      ['/admin/users?page=x', 400],
      [`/admin/users?q=${'z'.repeat(65)}`, 400],
    ] as const) {
      const refused = await getJson(admin, path).expect(code);
      expect(refused.headers['content-type']).toMatch(/^application\/json/);
      expect(refused.body).toEqual({ error: expect.any(String), code });
    }
  });

  it('still gives a browser the page, and refuses a researcher asking for JSON', async () => {
    await expectPageForBrowsersAndNoJsonForResearchers(
      admin,
      await signInAs(app, 'alice', 'alice-password'),
      '/admin/users',
    );
  });
});
