import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
});
afterAll(() => db?.drop());

describe('GET /account for a JSON client', () => {
  it('answers who is signed in', async () => {
    const user = await buildUser(db.prisma, { username: 'fern' });
    const agent = await signInAs(buildTestApp(db), 'fern', user.password);
    const answer = await agent.get('/account').set('Accept', 'application/json').expect(200);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(answer.body).toEqual({ username: 'fern', role: 'user' });
    const page = await agent.get('/account').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('Change your password');
  });

  it('without a session is 401 {error, code}, not the sign-in redirect', async () => {
    const answer = await request(buildTestApp(db)).get('/account').set('Accept', 'application/json').expect(401);
    expect(answer.body).toMatchObject({ code: 401 });
  });
});
