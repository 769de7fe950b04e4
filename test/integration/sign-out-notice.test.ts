import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { csrfTokenIn, csrfTokenOf, signInAs, signInNewAdmin } from '../support/sign-in.js';
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

  it('says so too when Sign out is pressed in a tab left open after signing out in another', async () => {
    const user = await buildUser(db.prisma, { username: 'gwen' });
    const agent = await signInAs(buildTestApp(db), 'gwen', user.password);
    const labTab = await agent.get('/me/receipts').set('Accept', 'text/html').expect(200);
    await agent
      .post('/logout')
      .type('form')
      .send({ csrf_token: await csrfTokenOf(agent) })
      .expect(302);
    // The other tab's sign-in page has shown its notice; the tab left open knows nothing of it.
    await agent.get('/login').set('Accept', 'text/html').expect(200);
    await agent
      .post('/logout')
      .set('Accept', 'text/html')
      .type('form')
      .send({ csrf_token: csrfTokenIn(labTab.text) })
      .expect(302)
      .expect('Location', '/login');
    // It used to land on the bare form, the page before signing in, at a shared computer's last tab.
    const page = await agent.get('/login').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('You are signed out.');
    const again = await agent.get('/login').set('Accept', 'text/html').expect(200);
    expect(again.text).not.toContain('You are signed out.');
  });

  it('stores nothing for a sign-out posted with no session: a flood of them cannot fill the session table', async () => {
    // POST /logout is answered before the CSRF check, so anyone could send it: each one with no
    // session (no cookie, or one whose row is gone) stored a new session row for "You are signed
    // out.", kept SESSION_ABSOLUTE_SEC, at the rate the requests came in.
    const app = buildTestApp(db);
    const rows = async () => (await db.pool.query(`SELECT count(*)::int AS n FROM "session"`)).rows[0].n as number;
    const before = await rows();
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const answer = await request(app).post('/logout').set('Accept', 'text/html').type('form').send({});
      expect(answer.status).toBe(302);
      // The notice goes in the address, not in a session.
      expect(answer.headers.location).toBe('/login?signed_out=1');
      expect(answer.headers['set-cookie'] ?? []).toEqual([]);
    }
    // A cookie of a session whose row has gone (pruned, or a script's JSON sign-out) is no session either.
    const user = await buildUser(db.prisma, { username: 'ivor' });
    const agent = await signInAs(app, 'ivor', user.password);
    await agent
      .post('/logout')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({});
    await agent
      .post('/logout')
      .set('Accept', 'text/html')
      .type('form')
      .send({})
      .expect(302)
      .expect('Location', '/login?signed_out=1');
    expect(await rows()).toBe(before);
  });

  it('says so too when Sign out is pressed in a tab whose session row was pruned meanwhile, storing nothing', async () => {
    // The prune deletes a session's row once it has expired; the tab left open still posts its
    // cookie. It landed on the bare form, the page before signing in, unlike every other sign-out.
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: 'jude' });
    const agent = await signInAs(app, 'jude', user.password);
    const token = await csrfTokenOf(agent);
    const pruned = await db.pool.query(`DELETE FROM "session" WHERE sess #>> '{passport,user}' = $1`, [
      String(user.id),
    ]);
    expect(pruned.rowCount).toBe(1);
    const rows = async () => (await db.pool.query(`SELECT count(*)::int AS n FROM "session"`)).rows[0].n as number;
    const before = await rows();
    const answer = await agent
      .post('/logout')
      .set('Accept', 'text/html')
      .type('form')
      .send({ csrf_token: token })
      .expect(302);
    expect(answer.headers['set-cookie'] ?? []).toEqual([]);
    const page = await agent.get(String(answer.headers.location)).set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('You are signed out.');
    expect(page.text).toContain('name="username"');
    // Still nothing stored for it: a flood of row-less sign-outs cannot fill the session table.
    expect(await rows()).toBe(before);
  });

  it('keeps the reason a session was ended for when Sign out is pressed after it', async () => {
    const app = buildTestApp(db);
    const admin = await signInNewAdmin(app, db, 'hana-admin');
    const user = await buildUser(db.prisma, { username: 'hana' });
    const agent = await signInAs(app, 'hana', user.password);
    const token = await csrfTokenOf(agent);
    await admin
      .post(`/admin/users/${user.id}/disable`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin, '/admin/users'))
      .send({})
      .expect(200);
    await agent
      .post('/logout')
      .set('Accept', 'text/html')
      .type('form')
      .send({ csrf_token: token })
      .expect(302)
      .expect('Location', '/login');
    const page = await agent.get('/login').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('Your account has been disabled. Ask an administrator.');
    expect(page.text).not.toContain('You are signed out.');
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
