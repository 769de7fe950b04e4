import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A script fetching its usage as CSV (`curl -H 'Accept: text/csv'`, a cron job) after its session ended
 * was sent (302) to the HTML sign-in page it does not take: it followed the redirect, got 200 and saved
 * the sign-in page as its usage file, with nothing failing. A client that accepts no HTML is answered
 * 401 {error, code}, as a JSON client is; a browser, and a client that takes anything, is still sent
 * to sign in.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

describe('a signed-out request from a client that takes no HTML', () => {
  it.each([
    ['/me.csv?start=2026-11-01&end=2026-11-30', 'text/csv'],
    ['/me/receipts/12/items.csv', 'text/csv'],
    ['/me', 'application/xml'],
  ])('%s with Accept: %s is 401, not a redirect to the sign-in page', async (path, accept) => {
    const response = await request(buildTestApp(db)).get(path).set('Accept', accept);
    expect(response.status).toBe(401);
    expect(response.headers.location).toBeUndefined();
    expect(response.body).toEqual({ error: 'Sign in to continue.', code: 401 });
  });

  it.each([['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'], ['*/*'], ['text/*']])(
    'Accept: %s is still sent to sign in',
    async (accept) => {
      const response = await request(buildTestApp(db)).get('/me.csv').set('Accept', accept);
      expect(response.status).toBe(302);
      expect(response.headers.location).toBe('/login?next=%2Fme');
    },
  );

  it('no Accept at all is still sent to sign in', async () => {
    const response = await request(buildTestApp(db)).get('/me.csv');
    expect(response.status).toBe(302);
  });
});
