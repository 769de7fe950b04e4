import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, postLogin, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A penetration test: the session id is renewed at sign-in, but not at a change of privilege. A user
// made an admin went on as an admin in the session, under the session id and CSRF secret, they had
// signed in with as a user: a copy of that cookie (a shared lab computer, a stolen browser profile)
// gained the admin pages with it. A promotion now signs every session of the user out, saying why,
// so the admin pages are reached only from a sign-in made as an admin, under a new id.
const PROMOTED_NOTICE =
  'An administrator made your account an admin, so you were signed out. Sign in again to use the admin pages.';

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'rp-chief', role: 'admin', password: 'rp-chief-password' });
  app = buildTestApp(db);
  admin = await signInAs(app, 'rp-chief', 'rp-chief-password');
});
afterAll(() => db?.drop());

function sessionCookieOf(response: request.Response): string {
  const cookies = ([] as string[]).concat(response.headers['set-cookie'] ?? []);
  const cookie = cookies.find((line) => /^(__Host-)?hb\.sid=/.test(line));
  if (!cookie) throw new Error(`no session cookie in ${cookies.join(' | ')}`);
  return cookie.split(';')[0] as string;
}

/** Who GET /account's JSON says is signed in, without the session's CSRF token beside it. */
const whoOf = (body: { csrfToken?: unknown }): unknown => {
  const { csrfToken: _csrfToken, ...who } = body;
  return who;
};

const whoIs = async (cookie: string) => {
  const response = await request(app).get('/account').set('Accept', 'application/json').set('Cookie', cookie);
  return { status: response.status, body: whoOf(response.body) };
};

const promote = async (id: number, role: 'admin' | 'user') =>
  admin
    .post(`/admin/users/${id}/role`)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin))
    .send({ role });

describe('a change of role and the sessions of the user it changes', () => {
  it('signs a promoted user out everywhere, saying why; the admin pages need a new sign-in', async () => {
    const user = await buildUser(db.prisma, { username: 'rp-promoted' });
    const signedIn = await postLogin(app, 'rp-promoted', user.password);
    expect(signedIn.response.status).toBe(302);
    const cookie = sessionCookieOf(signedIn.response);
    expect(await whoIs(cookie)).toEqual({ status: 200, body: { username: 'rp-promoted', role: 'user' } });

    const response = await promote(user.id, 'admin');
    expect(response.status, response.text.slice(0, 300)).toBe(200);
    expect(response.body).toMatchObject({
      ok: true,
      isChanged: true,
      endedSessions: 1,
      message:
        'rp-promoted is now an admin. 1 signed-in session was signed out: the admin pages open at their next sign-in.',
    });

    // The session signed in as a user does not become an admin's: it is signed out, and told why.
    expect(await whoIs(cookie)).toEqual({ status: 401, body: { error: PROMOTED_NOTICE, code: 401 } });
    const adminPage = await request(app).get('/admin/users').set('Cookie', cookie);
    expect(adminPage.status).not.toBe(200);

    // A new sign-in is an admin's, under another session id.
    const again = await postLogin(app, 'rp-promoted', user.password);
    expect(again.response.status).toBe(302);
    expect(again.response.headers.location).toBe('/admin');
    const newCookie = sessionCookieOf(again.response);
    expect(newCookie).not.toBe(cookie);
    expect(await whoIs(newCookie)).toEqual({ status: 200, body: { username: 'rp-promoted', role: 'admin' } });

    const entries = await db.prisma.auditLog.findMany({
      where: { target: 'user:rp-promoted', action: 'user.role_change' },
      select: { details: true },
    });
    expect(entries.map((entry) => entry.details)).toEqual([{ from: 'user', to: 'admin', endedSessions: 1 }]);
  });

  it('leaves a demoted user signed in: the session loses the admin pages at its next request', async () => {
    const user = await buildUser(db.prisma, { username: 'rp-demoted', role: 'admin' });
    const agent = await signInAs(app, 'rp-demoted', user.password);
    const response = await promote(user.id, 'user');
    expect(response.status, response.text.slice(0, 300)).toBe(200);
    expect(response.body).toMatchObject({ ok: true, isChanged: true });
    const account = await agent.get('/account').set('Accept', 'application/json');
    expect(whoOf(account.body)).toEqual({ username: 'rp-demoted', role: 'user' });
    expect((await agent.get('/admin/users').set('Accept', 'application/json')).status).toBe(403);
  });

  it('ends nothing when the role was already the one asked for', async () => {
    const user = await buildUser(db.prisma, { username: 'rp-already', role: 'admin' });
    const agent = await signInAs(app, 'rp-already', user.password);
    const response = await promote(user.id, 'admin');
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ ok: true, isChanged: false });
    expect(whoOf((await agent.get('/account').set('Accept', 'application/json')).body)).toEqual({
      username: 'rp-already',
      role: 'admin',
    });
  });
});
