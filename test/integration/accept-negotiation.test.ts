import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * How a script asks for JSON: `Accept: application/json` without `text/html`, read the same way on every
 * route. Media types are case-insensitive (RFC 9110, 8.3.1), so `APPLICATION/JSON` is that too; and
 * the audit chain's verification, which negotiated with express's `req.accepts`, answered a JSON
 * request body with HTML and `application/json, text/html` with JSON, the reverse of every other route.
 */
let db: TestDatabase;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'chief', role: 'admin', password: 'chief-password' });
  admin = await signInAs(buildTestApp(db), 'chief', 'chief-password');
});
afterAll(() => db?.drop());

describe('Accept, read case-insensitively', () => {
  it.each([['APPLICATION/JSON'], ['Application/Json; charset=utf-8']])(
    '%s gets the JSON of a page, as application/json does',
    async (accept) => {
      const answer = await admin.get('/admin/receipts').set('Accept', accept).expect(200);
      expect(answer.type).toBe('application/json');
      expect(answer.body).toMatchObject({ page: 1, receipts: [] });
    },
  );

  it('application/json beside TEXT/HTML is a browser, as beside text/html', async () => {
    const answer = await admin.get('/admin/receipts').set('Accept', 'TEXT/HTML, application/json').expect(200);
    expect(answer.type).toBe('text/html');
  });
});

describe('/admin/audit/verify negotiates as every other route', () => {
  it('a POST with a JSON body and no Accept gets JSON', async () => {
    const token = await csrfTokenOf(admin);
    const answer = await admin
      .post('/admin/audit/verify')
      .set('X-CSRFToken', token)
      .set('Content-Type', 'application/json')
      .send('{}')
      .expect(200);
    expect(answer.type).toBe('application/json');
    expect(answer.body).toMatchObject({ status: 'ok' });
  });

  it('application/json beside text/html gets the page, as on /admin/audit', async () => {
    const answer = await admin.get('/admin/audit/verify').set('Accept', 'application/json, text/html').expect(200);
    expect(answer.type).toBe('text/html');
  });

  it('APPLICATION/JSON gets the JSON verdict', async () => {
    const answer = await admin.get('/admin/audit/verify').set('Accept', 'APPLICATION/JSON').expect(200);
    expect(answer.type).toBe('application/json');
  });
});
