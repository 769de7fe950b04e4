import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { csrfTokenIn } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A script signing in (Accept: application/json, the X-CSRFToken header) with a wrong password
 * got the whole HTML sign-in form back, where every other refusal a JSON client meets is
 * {error, code}: it had to scrape the page to learn why.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'carol', password: 'carol-password' });
});
afterAll(() => db?.drop());

/** A script's agent with the sign-in form's token, and a sign-in it posts as JSON. */
async function scriptAgent() {
  const agent = request.agent(buildTestApp(db));
  const token = csrfTokenIn((await agent.get('/login').set('Accept', 'text/html')).text);
  const signIn = (username: string, password: string) =>
    agent.post('/login').set('Accept', 'application/json').set('X-CSRFToken', token).send({ username, password });
  return { agent, signIn };
}

const signedInSessions = async () =>
  (await db.pool.query(`SELECT count(*)::int AS n FROM "session" WHERE sess ? 'passport'`)).rows[0].n as number;

describe('signing in as a JSON client', () => {
  it('a wrong password is 401 {error, code}, and no one is signed in', async () => {
    const { signIn } = await scriptAgent();
    const answer = await signIn('carol', 'not-her-password').expect(401);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(answer.body).toEqual({ error: 'Wrong username or password.', code: 401 });
    expect(await signedInSessions()).toBe(0);
  });

  it('a locked sign-in is 429 {error, code} with Retry-After', async () => {
    const { signIn } = await scriptAgent();
    let answer = await signIn('carol', 'wrong-again');
    for (let attempt = 0; attempt < 6 && answer.status !== 429; attempt += 1) answer = await signIn('carol', 'wrong');
    expect(answer.status).toBe(429);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(answer.body).toMatchObject({ code: 429, error: expect.stringMatching(/^Too many failed sign-ins/) });
    expect(Number(answer.headers['retry-after'])).toBeGreaterThan(0);
    expect(await signedInSessions()).toBe(0);
  });

  it('a browser still gets the form back with the message', async () => {
    const agent = request.agent(buildTestApp(db));
    const token = csrfTokenIn((await agent.get('/login').set('Accept', 'text/html')).text);
    const page = await agent
      .post('/login')
      .set('Accept', 'text/html')
      .type('form')
      .send({ username: 'nobody', password: 'x', csrf_token: token })
      .expect(401);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toContain('Wrong username or password.');
  });
});

describe('a sign-in whose username or password is not text', () => {
  const attempts = async () => {
    const throttle = await db.pool.query(`SELECT count(*)::int AS n FROM auth_throttle WHERE username = 'dave'`);
    const audited = await db.pool.query(`SELECT count(*)::int AS n FROM audit_log WHERE actor = 'dave'`);
    return { throttle: throttle.rows[0].n as number, audited: audited.rows[0].n as number };
  };

  it.each([
    [{ username: 123, password: 'dave-password' }, 'username: must be text'],
    [{ username: ['dave', 'carol'], password: 'dave-password' }, 'username: must be given once'],
    [{ username: 'dave', password: { length: 13 } }, 'password: must be text'],
    [{ username: 'dave' }, 'password: is required'],
    // Other JSON endpoints name a field they do not read; sign-in let `remember` pass without a word,
    // and the script believed its session would last.
    [{ username: 'dave', password: 'dave-password', remember: true }, 'input: has an unknown field: remember'],
  ])('is refused as 400 %j, checking, counting and auditing nothing', async (body, reason) => {
    await buildUser(db.prisma, { username: 'dave', password: 'dave-password' }).catch(() => undefined);
    const agent = request.agent(buildTestApp(db));
    const token = csrfTokenIn((await agent.get('/login').set('Accept', 'text/html')).text);
    const answer = await agent.post('/login').set('Accept', 'application/json').set('X-CSRFToken', token).send(body);
    expect(answer.status).toBe(400);
    expect(answer.body.error).toContain(reason);
    expect(await attempts()).toEqual({ throttle: 0, audited: 0 });
    expect(await signedInSessions()).toBe(0);
  });

  it("a browser's form, with its token and where to go next, still signs in", async () => {
    await buildUser(db.prisma, { username: 'gil', password: 'gil-password' });
    const agent = request.agent(buildTestApp(db));
    const token = csrfTokenIn((await agent.get('/login?next=/account').set('Accept', 'text/html')).text);
    const page = await agent
      .post('/login')
      .set('Accept', 'text/html')
      .type('form')
      .send({ csrf_token: token, next: '/account', username: 'gil', password: 'gil-password' })
      .expect(302);
    expect(page.headers.location).toBe('/account');
    // Signed out again: the cases after this one count signed-in sessions.
    await db.pool.query(`DELETE FROM "session" WHERE sess ? 'passport'`);
  });

  it('a form with a field the sign-in does not read is refused on the page, naming it', async () => {
    const agent = request.agent(buildTestApp(db));
    const token = csrfTokenIn((await agent.get('/login').set('Accept', 'text/html')).text);
    const page = await agent
      .post('/login')
      .set('Accept', 'text/html')
      .type('form')
      .send({ csrf_token: token, username: 'carol', password: 'carol-password', remember: 'on' })
      .expect(400);
    expect(page.text).toContain('has an unknown field: remember');
    expect(await signedInSessions()).toBe(0);
  });

  it('takes no username or password from the query string, where logs and histories keep it', async () => {
    await buildUser(db.prisma, { username: 'erin', password: 'erin-password' });
    const agent = request.agent(buildTestApp(db));
    const token = csrfTokenIn((await agent.get('/login').set('Accept', 'text/html')).text);
    const page = await agent
      .post('/login?username=erin&password=erin-password')
      .set('Accept', 'text/html')
      .type('form')
      .send({ csrf_token: token });
    expect(page.status).toBe(400);
    expect(page.text).toContain('Username: is required');
    expect(await signedInSessions()).toBe(0);
  });
});

/**
 * A script that signed in without the sign-in form's token, or with it but without the cookie the
 * same GET /login set (a client that keeps no cookies), was told "The security token of this sign-in
 * form had expired. Sign in again.": it had no form, nothing had expired, and doing the same again
 * failed the same way. It is told what to send.
 */
describe('a JSON sign-in refused by the CSRF check', () => {
  it('without the token says to send the csrf_token of GET /login in X-CSRFToken, and signs no one in', async () => {
    await buildUser(db.prisma, { username: 'fay', password: 'fay-password' });
    const agent = request.agent(buildTestApp(db));
    await agent.get('/login').set('Accept', 'text/html');
    const answer = await agent
      .post('/login')
      .set('Accept', 'application/json')
      .send({ username: 'fay', password: 'fay-password' })
      .expect(403);
    expect(answer.body).toEqual({
      error:
        'The security token (CSRF token) is missing, so no one was signed in: read the csrf_token field of the ' +
        'form at GET /login and send it in the X-CSRFToken header, with the cookie that GET set.',
      code: 403,
    });
    expect(await signedInSessions()).toBe(0);
  });

  it('with a token but not the cookie its GET /login set says the two go together', async () => {
    const token = csrfTokenIn((await request(buildTestApp(db)).get('/login').set('Accept', 'text/html')).text);
    const answer = await request(buildTestApp(db))
      .post('/login')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ username: 'fay', password: 'fay-password' })
      .expect(403);
    expect(answer.body).toEqual({
      error:
        "The security token (CSRF token) does not go with this client's cookie, so no one was signed in: a token " +
        'is good only with the cookie set by the GET /login that gave it. Keep the cookies of GET /login and send ' +
        'its csrf_token in the X-CSRFToken header.',
      code: 403,
    });
    expect(await signedInSessions()).toBe(0);
  });
});
