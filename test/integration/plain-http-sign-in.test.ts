import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { buildUser } from '../support/factories.js';
import { csrfTokenIn } from '../support/sign-in.js';
import { buildTestApp, metricValue } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Production as `npm start` or `docker run -p 8000:8000` serve it: plain HTTP, no TLS proxy. The
// session cookie is Secure, and express-session does not set a Secure cookie on a request it sees
// as plain HTTP, so a sign-in there used to answer 302 to /admin with no session cookie and land
// back on the form, saying nothing.
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
});
afterAll(() => db?.drop());

const PRODUCTION = { APP_ENV: 'production', SESSION_SECRET: 'p'.repeat(40), AUDIT_CHAIN_KEY: 'k'.repeat(40) };
const PLAIN_HTTP_WORDS = 'Signing in needs HTTPS, and this request came over plain HTTP';
const PROXY_HINT = 'Operators: behind a TLS proxy, set TRUST_PROXY so the app sees https';
const TRUSTED_PROXY_HINT =
  'Operators: the proxy in front, which TRUST_PROXY trusts, did not send X-Forwarded-Proto: https; make it send that header';

/** The `name=value` pairs a response sets, as a client would send them back (Secure or not). */
const cookiesSetBy = (response: request.Response): string[] =>
  ([] as string[]).concat(response.headers['set-cookie'] ?? []).map((cookie) => cookie.split(';')[0] as string);

const setCookieOf = (response: request.Response, name: string): string | undefined =>
  ([] as string[]).concat(response.headers['set-cookie'] ?? []).find((cookie) => cookie.startsWith(`${name}=`));

async function countRows() {
  const { rows } = await db.pool.query<Record<string, number>>(
    `SELECT (SELECT count(*) FROM session)::int AS sessions,
            (SELECT count(*) FROM audit_log WHERE action LIKE 'login.%')::int AS sign_in_audits,
            (SELECT count(*) FROM auth_throttle)::int AS throttle_rows,
            (SELECT count(*) FROM auth_network_throttle)::int AS network_rows`,
  );
  return rows[0];
}

/**
 * GET /login, then POST it with the visitor's cookie sent back, as Chromium and curl do on
 * http://localhost (they keep Secure cookies for it); `headers` go on both requests.
 */
async function signIn(app: ReturnType<typeof buildTestApp>, headers: Record<string, string> = {}) {
  const form = await request(app).get('/login').set('Accept', 'text/html').set(headers);
  const response = await request(app)
    .post('/login')
    .set('Accept', 'text/html')
    .set(headers)
    .set('Cookie', cookiesSetBy(form).join('; '))
    .type('form')
    .send({ username: 'ops', password: 'ops-password-123', csrf_token: csrfTokenIn(form.text) });
  return { form, response };
}

beforeEach(async () => {
  await db.pool.query('DELETE FROM session');
  await db.pool.query('DELETE FROM auth_throttle');
  await db.pool.query('DELETE FROM auth_network_throttle');
});

describe('production over plain HTTP', () => {
  it('warns on the sign-in page, and refuses the sign-in with that message before checking the password', async () => {
    const metrics = createMetrics();
    const app = buildTestApp(db, { env: PRODUCTION, metrics });
    const before = await countRows();

    const { form, response } = await signIn(app);
    expect(form.status).toBe(200);
    expect(form.text).toContain(PLAIN_HTTP_WORDS);
    expect(form.text).toContain(PROXY_HINT);
    expect(response.status).toBe(403);
    expect(response.text).toContain(PLAIN_HTTP_WORDS);
    expect(response.text).toContain('value="ops"');
    expect(setCookieOf(response, '__Host-hb.sid')).toBeUndefined();
    expect(setCookieOf(response, 'hb.sid')).toBeUndefined();

    // Nothing half-happened: no session row, no sign-in audited, not counted as a failure.
    expect(await countRows()).toEqual(before);
    expect(await metricValue(metrics, 'auth_login_success_total')).toBe(0);
    expect(await metricValue(metrics, 'auth_login_failure_total', { reason: 'bad_credentials' })).toBe(0);
  });

  it('explains the refusal the same way to a client that kept the Secure CSRF cookie to itself', async () => {
    // curl, or a browser on any host but localhost, never sends a Secure cookie over plain HTTP.
    const app = buildTestApp(db, { env: PRODUCTION });
    const form = await request(app).get('/login').set('Accept', 'text/html');
    const response = await request(app)
      .post('/login')
      .set('Accept', 'text/html')
      .type('form')
      .send({ username: 'ops', password: 'ops-password-123', csrf_token: csrfTokenIn(form.text) });
    expect(response.status).toBe(403);
    expect(response.text).toContain(PLAIN_HTTP_WORDS);
    expect((await countRows())?.sign_in_audits).toBe(0);
  });

  it('does not believe X-Forwarded-Proto from a client when TRUST_PROXY is off', async () => {
    const app = buildTestApp(db, { env: PRODUCTION });
    const { response } = await signIn(app, { 'X-Forwarded-Proto': 'https' });
    expect(response.status).toBe(403);
    expect(response.text).toContain(PLAIN_HTTP_WORDS);
  });

  it('refuses behind a trusted proxy that does not say the request was https', async () => {
    const app = buildTestApp(db, { env: { ...PRODUCTION, TRUST_PROXY: 'loopback' } });
    const before = await countRows();
    const { form, response } = await signIn(app);
    expect(form.text).toContain(PLAIN_HTTP_WORDS);
    expect(response.status).toBe(403);
    expect(await countRows()).toEqual(before);
  });

  it.each([
    ['no X-Forwarded-Proto', {}],
    ['X-Forwarded-Proto: http', { 'X-Forwarded-Proto': 'http' }],
  ])(
    'behind a trusted proxy that sends %s, says the proxy must send the header, not to set TRUST_PROXY (already set)',
    async (_what, headers) => {
      const app = buildTestApp(db, { env: { ...PRODUCTION, TRUST_PROXY: 'loopback' } });
      const { form, response } = await signIn(app, headers);
      expect(form.text).toContain(TRUSTED_PROXY_HINT);
      expect(form.text).not.toContain(PROXY_HINT);
      expect(response.status).toBe(403);
      expect(response.text).toContain(TRUSTED_PROXY_HINT);
    },
  );
});

describe('production behind a TLS proxy named in TRUST_PROXY', () => {
  // A URI scheme is case-insensitive (RFC 3986 3.1), and a proxy that wrote HTTPS was read as plain
  // HTTP by Express, which compares the header to 'https' as sent: nobody could sign in, each told
  // the request had come over plain HTTP.
  it.each(['HTTPS', 'Https'])('reads X-Forwarded-Proto: %s as https', async (proto) => {
    const app = buildTestApp(db, { env: { ...PRODUCTION, TRUST_PROXY: 'loopback' } });
    const { form, response } = await signIn(app, { 'X-Forwarded-Proto': proto });
    expect(form.text).not.toContain(PLAIN_HTTP_WORDS);
    expect(response.status).toBe(302);
    expect(response.headers.location).toBe('/admin');
    expect(setCookieOf(response, '__Host-hb.sid')).toMatch(/; Secure/);
  });

  it('signs in over X-Forwarded-Proto: https with a Secure session cookie that opens /admin', async () => {
    const app = buildTestApp(db, { env: { ...PRODUCTION, TRUST_PROXY: 'loopback' } });
    const https = { 'X-Forwarded-Proto': 'https' };
    const { form, response } = await signIn(app, https);
    expect(form.text).not.toContain(PLAIN_HTTP_WORDS);
    expect(response.status).toBe(302);
    expect(response.headers.location).toBe('/admin');
    expect(setCookieOf(response, '__Host-hb.sid')).toMatch(/; Secure/);
    const admin = await request(app)
      .get('/admin')
      .set('Accept', 'text/html')
      .set(https)
      .set('Cookie', cookiesSetBy(response).join('; '));
    expect(admin.status).toBe(200);
    expect(await countRows()).toMatchObject({ sessions: 1 });
  });

  // The visitor's CSRF cookie ends at sign-in. It was cleared with a bare `hb.csrf=; Path=/; Expires=…`:
  // a cookie audit (ZAP, a pen-tester's proxy) of a production sign-in flagged that Set-Cookie as lacking
  // Secure, HttpOnly and SameSite, the only one of the app's cookies without them.
  it("clears the visitor's CSRF cookie at sign-in with the flags it was set with", async () => {
    const app = buildTestApp(db, { env: { ...PRODUCTION, TRUST_PROXY: 'loopback' } });
    const { response } = await signIn(app, { 'X-Forwarded-Proto': 'https' });
    expect(response.status).toBe(302);
    // Over https it is `__Host-hb.csrf` (docs/security.md), cleared under that name.
    const cleared = setCookieOf(response, '__Host-hb.csrf');
    expect(cleared).toMatch(/^__Host-hb\.csrf=; Path=\/; Expires=Thu, 01 Jan 1970 00:00:00 GMT/);
    expect(cleared).toMatch(/; HttpOnly/);
    expect(cleared).toMatch(/; Secure/);
    expect(cleared).toMatch(/; SameSite=Lax/);
  });
});

describe('production with REQUIRE_HTTPS=0 (a trial over plain HTTP)', () => {
  it('signs in over plain HTTP with a cookie that is not Secure, and sends no HSTS or upgrade', async () => {
    const app = buildTestApp(db, { env: { ...PRODUCTION, REQUIRE_HTTPS: '0' } });
    const { form, response } = await signIn(app);
    expect(form.text).not.toContain(PLAIN_HTTP_WORDS);
    expect(form.headers['strict-transport-security']).toBeUndefined();
    expect(form.headers['content-security-policy']).not.toContain('upgrade-insecure-requests');
    expect(response.status).toBe(302);
    const cookie = setCookieOf(response, 'hb.sid');
    expect(cookie).toBeDefined();
    expect(cookie).not.toMatch(/; Secure/);
    const admin = await request(app)
      .get('/admin')
      .set('Accept', 'text/html')
      .set('Cookie', cookiesSetBy(response).join('; '));
    expect(admin.status).toBe(200);
  });

  // REQUIRE_HTTPS=0 left in .env from the trial once a TLS proxy is in front: a request Express sees
  // as https still gets Secure cookies (named __Host-, docs/security.md), or the browser would send
  // them over any plain-HTTP request to the host (the proxy's own redirect to https included), where
  // anyone on the path reads them.
  it('still marks both cookies Secure on a request that came over https through a trusted proxy', async () => {
    const app = buildTestApp(db, { env: { ...PRODUCTION, REQUIRE_HTTPS: '0', TRUST_PROXY: 'loopback' } });
    const { form, response } = await signIn(app, { 'X-Forwarded-Proto': 'https' });
    expect(setCookieOf(form, '__Host-hb.csrf')).toMatch(/; Secure/);
    expect(setCookieOf(form, 'hb.csrf')).toBeUndefined();
    expect(response.status).toBe(302);
    expect(setCookieOf(response, '__Host-hb.sid')).toMatch(/; Secure/);
    expect(setCookieOf(response, 'hb.sid')).toBeUndefined();
  });

  it("clears the visitor's CSRF cookie over plain HTTP as it was set there: HttpOnly and SameSite, not Secure", async () => {
    const app = buildTestApp(db, { env: { ...PRODUCTION, REQUIRE_HTTPS: '0' } });
    const { response } = await signIn(app);
    expect(response.status).toBe(302);
    const cleared = setCookieOf(response, 'hb.csrf');
    expect(cleared).toMatch(/^hb\.csrf=; Path=\/; Expires=Thu, 01 Jan 1970 00:00:00 GMT/);
    expect(cleared).toMatch(/; HttpOnly/);
    expect(cleared).toMatch(/; SameSite=Lax/);
    expect(cleared).not.toMatch(/; Secure/);
  });

  it('keeps HSTS and upgrade-insecure-requests by default in production', async () => {
    const page = await request(buildTestApp(db, { env: PRODUCTION }))
      .get('/login')
      .set('Accept', 'text/html');
    expect(page.headers['strict-transport-security']).toMatch(/^max-age=/);
    expect(page.headers['content-security-policy']).toContain('upgrade-insecure-requests');
  });
});
