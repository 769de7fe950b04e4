import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenIn, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * An error page refused before the page middleware ran (a form whose token was stale, a query
 * with a NUL) showed a signed-in user "Sign out (name)" with an empty token: pressing it was
 * refused again with "The security token of this form is missing", so someone at a shared
 * computer could not sign out from it. Those pages also went without `Cache-Control: no-store`.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const signedInSessions = async () =>
  (await db.pool.query(`SELECT count(*)::int AS n FROM "session" WHERE sess ? 'passport'`)).rows[0].n as number;

function signOutFrom(agent: Agent, errorPage: string) {
  return agent
    .post('/logout')
    .set('Accept', 'text/html')
    .type('form')
    .send({ csrf_token: csrfTokenIn(errorPage) });
}

describe('the Sign out button of an error page', () => {
  it('signs out from the page of a form refused for its stale token', async () => {
    const user = await buildUser(db.prisma, { username: 'gia' });
    const agent = await signInAs(buildTestApp(db), 'gia', user.password);
    const refused = await agent
      .post('/me/receipt')
      .set('Accept', 'text/html')
      .type('form')
      .send({ before: '2026-11-01', csrf_token: 'stale' })
      .expect(403);
    expect(refused.text).toContain('Sign out (gia)');
    expect(refused.headers['cache-control']).toBe('no-store');
    await signOutFrom(agent, refused.text).expect(302).expect('Location', '/login');
    expect(await signedInSessions()).toBe(0);
  });

  it('signs out from the page of a query refused for a NUL', async () => {
    const user = await buildUser(db.prisma, { username: 'hal' });
    const agent = await signInAs(buildTestApp(db), 'hal', user.password);
    const refused = await agent.get('/me?start=%00').set('Accept', 'text/html').expect(400);
    expect(refused.text).toContain('Sign out (hal)');
    expect(refused.headers['cache-control']).toBe('no-store');
    await signOutFrom(agent, refused.text).expect(302).expect('Location', '/login');
    expect(await signedInSessions()).toBe(0);
  });
});
