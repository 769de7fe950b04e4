import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * Pressing "Sign out" landed on the bare sign-in page, the same page as before signing in: nothing
 * said it had worked, which someone leaving a shared lab computer wants to know.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const signedInSessions = async () =>
  (await db.pool.query(`SELECT count(*)::int AS n FROM "session" WHERE sess ? 'passport'`)).rows[0].n as number;

describe('signing out', () => {
  it('says so once on the sign-in page, and the signed-in session is gone', async () => {
    const user = await buildUser(db.prisma, { username: 'dana' });
    const agent = await signInAs(buildTestApp(db), 'dana', user.password);
    expect(await signedInSessions()).toBe(1);
    await agent
      .post('/logout')
      .set('Accept', 'text/html')
      .type('form')
      .send({ csrf_token: await csrfTokenOf(agent) })
      .expect(302)
      .expect('Location', '/login');
    const page = await agent.get('/login').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('You are signed out.');
    expect(await signedInSessions()).toBe(0);
    await agent.get('/account').set('Accept', 'text/html').expect(302).expect('Location', '/login?next=%2Faccount');
    // Said once: the next visit of the page is the plain form.
    const again = await agent.get('/login').set('Accept', 'text/html').expect(200);
    expect(again.text).not.toContain('You are signed out.');
  });

  it('a sign-out posted without its token changes nothing and keeps the session', async () => {
    const user = await buildUser(db.prisma, { username: 'eli' });
    const agent = await signInAs(buildTestApp(db), 'eli', user.password);
    const before = await signedInSessions();
    await agent.post('/logout').set('Accept', 'text/html').type('form').send({ csrf_token: 'forged' }).expect(403);
    expect(await signedInSessions()).toBe(before);
    await agent.get('/account').set('Accept', 'text/html').expect(200);
  });

  it('answers a JSON client {ok, message}, leaving no session row behind for a page it never opens', async () => {
    const user = await buildUser(db.prisma, { username: 'fynn' });
    const agent = await signInAs(buildTestApp(db), 'fynn', user.password);
    const rowsBefore = (await db.pool.query(`SELECT count(*)::int AS n FROM "session"`)).rows[0].n as number;
    const answer = await agent
      .post('/logout')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({});
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ ok: true, message: 'You are signed out.' });
    const rowsAfter = (await db.pool.query(`SELECT count(*)::int AS n FROM "session"`)).rows[0].n as number;
    expect(rowsAfter).toBe(rowsBefore - 1);
    await agent.get('/me').set('Accept', 'application/json').expect(401);
    // Sent again (no session now), it is answered the same.
    const again = await agent.post('/logout').set('Accept', 'application/json').send({});
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ ok: true, message: 'You are signed out.' });
  });
});
