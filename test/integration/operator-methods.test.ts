import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * An operator who sent POST /healthz (a load balancer's check set to the wrong method, a typo in a
 * script) was told "You are not signed in (you signed out, perhaps in another tab, or your session
 * ended), so this form was not sent. Sign in, then send it again." with a 403: the session section's
 * CSRF refusal, about a form and a sign-in that /healthz has nothing to do with.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  app = buildTestApp(db);
});
afterAll(() => db?.drop());

describe('a method the operators’ addresses do not answer', () => {
  it.each([
    ['post', '/healthz', 'GET, HEAD'],
    ['put', '/healthz', 'GET, HEAD'],
    ['delete', '/readyz', 'GET, HEAD'],
    ['post', '/readyz', 'GET, HEAD'],
    ['post', '/metrics', 'GET, HEAD'],
    ['put', '/formula', 'GET, HEAD, POST'],
    ['delete', '/formula', 'GET, HEAD, POST'],
  ] as const)(
    '%s %s is 405 naming the methods it answers, not a sign-in or form refusal',
    async (method, path, allow) => {
      const response = await request(app)[method](path).set('Accept', 'application/json');
      expect(response.status).toBe(405);
      expect(response.headers.allow).toBe(allow);
      expect(response.body).toEqual({
        error: `${path} answers ${allow.replace(/, (\w+)$/, ' and $1')} only, not ${method.toUpperCase()}.`,
        code: 405,
      });
      expect(response.text).not.toMatch(/signed|this form/i);
    },
  );

  it('leaves the methods they answer as they were', async () => {
    await request(app).get('/healthz').expect(200);
    await request(app).head('/readyz').expect(200);
    await request(app).get('/formula').expect(200);
    // POST /formula is the admins' rate change: still a session-backed, CSRF-checked request.
    const post = await request(app).post('/formula').set('Accept', 'application/json').send({});
    expect(post.status).toBe(403);
  });
});
