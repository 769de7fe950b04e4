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

/**
 * PUT, POST or DELETE of a static file that is there (/static/css/app.css) answered "404 Page not
 * found.", and OPTIONS of it 404 too: a file the pages load every time, said not to exist. It is a
 * 405 naming the methods it answers, as every route's wrong method is; OPTIONS names them too.
 */
describe('a method the static files do not answer', () => {
  it.each([
    ['put', '/static/css/app.css'],
    ['post', '/static/js/confirm.js'],
    ['delete', '/static/css/app.css'],
    ['patch', '/static/css/app.css'],
  ] as const)('%s %s is 405 with Allow: GET, HEAD', async (method, path) => {
    const response = await request(app)[method](path).set('Accept', 'application/json');
    expect(response.status).toBe(405);
    expect(response.headers.allow).toBe('GET, HEAD');
    expect(response.body).toEqual({
      error: `${path} answers GET and HEAD only, not ${method.toUpperCase()}.`,
      code: 405,
    });
    expect(response.headers['set-cookie']).toBeUndefined();
  });

  it('OPTIONS of a static file names GET and HEAD', async () => {
    const response = await request(app).options('/static/css/app.css');
    expect(response.status).toBe(204);
    expect(response.headers.allow).toBe('GET, HEAD');
  });

  it.each(['/static/css/nope.css', '/static', '/static/css', '/static/css/../../package.json'])(
    'POST %s, where no file is, stays a 404',
    async (path) => {
      const response = await request(app).post(path).set('Accept', 'application/json');
      expect(response.status).toBe(404);
      expect(response.body).toEqual({ error: 'Page not found.', code: 404 });
    },
  );

  it('a browser is shown the 405 page', async () => {
    const response = await request(app).post('/static/css/app.css').set('Accept', 'text/html');
    expect(response.status).toBe(405);
    expect(response.text).toContain('/static/css/app.css answers GET and HEAD only, not POST.');
  });
});
