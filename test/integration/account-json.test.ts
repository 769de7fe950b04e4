import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A script signed in with /me as JSON had no way to ask whose session it held: GET /account
 * with Accept: application/json answered the HTML page.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
});
afterAll(() => db?.drop());

describe('GET /account for a JSON client', () => {
  it('answers who is signed in', async () => {
    const user = await buildUser(db.prisma, { username: 'fern' });
    const agent = await signInAs(buildTestApp(db), 'fern', user.password);
    const answer = await agent.get('/account').set('Accept', 'application/json').expect(200);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(answer.body).toEqual({ username: 'fern', role: 'user', csrfToken: expect.any(String) });
    const page = await agent.get('/account').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('Change your password');
  });

  /**
   * The token of GET /login is the visit's, refused once signed in ("not one of this session"), and
   * /me's JSON carries none: a script following the docs could create a receipt or start a payment
   * only by reading csrf_token out of a page's HTML.
   */
  it("gives the session's CSRF token, which a JSON change then takes", async () => {
    const user = await buildUser(db.prisma, { username: 'gus' });
    await buildJobs(db, [{ user: 'gus', end: '2026-01-10T10:00:00Z' }]);
    const agent = await signInAs(buildTestApp(db), 'gus', user.password);
    const { csrfToken } = (await agent.get('/account').set('Accept', 'application/json').expect(200)).body;
    expect(csrfToken).toEqual(expect.any(String));
    const created = await agent
      .post('/me/receipt')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', csrfToken)
      .send({ before: '2026-01-31' });
    expect(created.status, created.text.slice(0, 300)).toBe(201);
    expect(created.body.receipt).toMatchObject({ jobCount: 1 });
  });

  it('without a session is 401 {error, code}, not the sign-in redirect', async () => {
    const answer = await request(buildTestApp(db)).get('/account').set('Accept', 'application/json').expect(401);
    expect(answer.body).toMatchObject({ code: 401 });
  });
});
