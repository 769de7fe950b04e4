import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * GET /static (or /static/css) answered 301 to /static/ (or /static/css/), which then answered 404:
 * a redirect that led nowhere, and a way to learn which folders exist. A folder of the static files
 * is now a plain 404, the error middleware's page or JSON, as any other address nothing is at.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let productionApp: ReturnType<typeof buildTestApp>;

beforeAll(async () => {
  db = await createTestDatabase();
  app = buildTestApp(db);
  productionApp = buildTestApp(db, {
    env: { APP_ENV: 'production', SESSION_SECRET: 'x'.repeat(32), AUDIT_CHAIN_KEY: 'k'.repeat(32) },
  });
});
afterAll(() => db?.drop());

describe('a folder of the static files', () => {
  it.each(['/static', '/static/', '/static/css', '/static/css/', '/static/js'])(
    'GET %s is a plain 404 in JSON, not a redirect',
    async (path) => {
      const response = await request(app).get(path).set('Accept', 'application/json');
      expect(response.status).toBe(404);
      expect(response.headers.location).toBeUndefined();
      expect(response.body).toEqual({ error: 'Page not found.', code: 404 });
    },
  );

  it.each(['/static', '/static/css'])('GET %s is the 404 page for a browser', async (path) => {
    const response = await request(app).get(path).set('Accept', 'text/html');
    expect(response.status).toBe(404);
    expect(response.headers.location).toBeUndefined();
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(response.text).toContain('Page not found.');
  });

  it('HEAD /static is 404 too', async () => {
    const response = await request(app).head('/static');
    expect(response.status).toBe(404);
    expect(response.headers.location).toBeUndefined();
  });
});

describe('the static files themselves', () => {
  it.each([
    ['/static/css/app.css', /^text\/css/],
    ['/static/js/confirm.js', /javascript/],
  ])('%s is served, revalidated every time in development', async (path, type) => {
    const response = await request(app).get(path);
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(type);
    expect(response.headers['cache-control']).toBe('public, max-age=0');
    expect(response.headers.etag).toBeDefined();
    const again = await request(app).get(path).set('If-None-Match', String(response.headers.etag));
    expect(again.status).toBe(304);
  });

  it('is cached for a day in production', async () => {
    const response = await request(productionApp).get('/static/css/app.css');
    expect(response.status).toBe(200);
    expect(response.headers['cache-control']).toBe('public, max-age=86400');
  });

  it('a file that is not there is a 404', async () => {
    const response = await request(app).get('/static/css/nope.css').set('Accept', 'application/json');
    expect(response.status).toBe(404);
    expect(response.body).toEqual({ error: 'Page not found.', code: 404 });
  });
});
