import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { configureAuditChain } from '../../src/modules/audit/audit.service.js';
import { buildUser } from '../support/factories.js';
import { csrfTokenIn } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Login CSRF from a sibling subdomain (a campus web host beside billing.example.edu): a page there
// can set a cookie for the parent domain, and its form posts are same-site, so SameSite=Lax
// cookies go with them. Planting its own visitor CSRF cookie with the matching token, it signed
// the victim into the attacker's account. A `__Host-` cookie is one a browser takes only when set
// by the host itself, over https, with Secure, Path=/ and no Domain, so a sibling cannot plant one.
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'mallory', role: 'admin', password: 'mallory-password-123' });
});
afterAll(() => db?.drop());

beforeEach(async () => {
  await db.pool.query('DELETE FROM session');
});

const PRODUCTION = {
  APP_ENV: 'production',
  SESSION_SECRET: 'p'.repeat(40),
  AUDIT_CHAIN_KEY: 'k'.repeat(40),
  TRUST_PROXY: 'loopback',
};
const HTTPS = { 'X-Forwarded-Proto': 'https' };

const setCookiesOf = (response: request.Response): string[] =>
  ([] as string[]).concat(response.headers['set-cookie'] ?? []);
const setCookieOf = (response: request.Response, name: string): string | undefined =>
  setCookiesOf(response).find((cookie) => cookie.startsWith(`${name}=`));
/** The value a response set for any of `names`, as a sibling page could copy it into a cookie of its own. */
const valueSetFor = (response: request.Response, names: string[]): string => {
  const cookie = setCookiesOf(response).find((line) => names.some((name) => line.startsWith(`${name}=`)));
  if (!cookie) throw new Error(`none of ${names.join(', ')} was set`);
  return (cookie.split(';')[0] as string).slice(cookie.indexOf('=') + 1);
};

async function countRows() {
  const { rows } = await db.pool.query<Record<string, number>>(
    `SELECT (SELECT count(*) FROM session)::int AS sessions,
            (SELECT count(*) FROM audit_log WHERE action LIKE 'login.%')::int AS sign_in_audits`,
  );
  return rows[0];
}

/** GET /login, then POST it with the form's cookies, as a browser on the app's own host does. */
async function signIn(app: ReturnType<typeof buildTestApp>, headers: Record<string, string>) {
  const form = await request(app).get('/login').set('Accept', 'text/html').set(headers);
  const response = await request(app)
    .post('/login')
    .set('Accept', 'text/html')
    .set(headers)
    .set(
      'Cookie',
      setCookiesOf(form).map((cookie) => cookie.split(';')[0] as string),
    )
    .type('form')
    .send({ username: 'mallory', password: 'mallory-password-123', csrf_token: csrfTokenIn(form.text) });
  return { form, response };
}

describe('production behind https: the visitor CSRF cookie is __Host-hb.csrf', () => {
  const app = () => buildTestApp(db, { env: PRODUCTION });

  it('is set by GET /login with Secure, Path=/ and no Domain, and no hb.csrf beside it', async () => {
    const form = await request(app()).get('/login').set('Accept', 'text/html').set(HTTPS).expect(200);
    expect(setCookieOf(form, '__Host-hb.csrf')).toMatch(
      /^__Host-hb\.csrf=s%3A[^;]+; Path=\/; HttpOnly; Secure; SameSite=Lax$/,
    );
    expect(setCookieOf(form, 'hb.csrf')).toBeUndefined();
    expect(setCookiesOf(form).join('\n')).not.toMatch(/domain=/i);
  });

  it('refuses a sign-in carrying only a planted hb.csrf and its token, and signs nobody in', async () => {
    // The attacker's own visit: a validly signed secret and the token that goes with it.
    const attackers = await request(app()).get('/login').set('Accept', 'text/html').set(HTTPS).expect(200);
    const planted = `hb.csrf=${valueSetFor(attackers, ['__Host-hb.csrf', 'hb.csrf'])}`;
    const before = await countRows();
    // The sibling page's auto-submitted form, in the victim's browser: the planted cookie goes with it.
    const response = await request(app())
      .post('/login')
      .set('Accept', 'text/html')
      .set(HTTPS)
      .set('Cookie', planted)
      .type('form')
      .send({ username: 'mallory', password: 'mallory-password-123', csrf_token: csrfTokenIn(attackers.text) });
    expect(response.status).toBe(403);
    // Read as a form with no secret of its own: given back with a fresh one, as an expired form is.
    expect(response.text).toContain('The security token of this sign-in form had expired. Sign in again.');
    expect(response.headers.location).toBeUndefined();
    expect(setCookiesOf(response).some((cookie) => /^(__Host-)?hb\.sid=/.test(cookie))).toBe(false);
    expect(await countRows()).toEqual(before);
  });

  it('still signs in with the cookie the form set, and clears it at sign-in with the same name and flags', async () => {
    const { response } = await signIn(app(), HTTPS);
    expect(response.status).toBe(302);
    expect(response.headers.location).toBe('/admin');
    expect(setCookieOf(response, '__Host-hb.csrf')).toMatch(
      /^__Host-hb\.csrf=; Path=\/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax$/,
    );
    expect(setCookieOf(response, 'hb.csrf')).toBeUndefined();
    expect(await countRows()).toMatchObject({ sessions: 1 });
  });
});

// The same sibling can plant a session cookie instead: the attacker's own, signed in, copied from
// their own sign-in. Regenerating the session id at sign-in defeats a planted id that waits to be
// signed in (fixation), not one that already is, and with it the victim needs no form at all.
describe('production behind https: the session cookie is __Host-hb.sid', () => {
  const app = () => buildTestApp(db, { env: PRODUCTION });

  it('is set at sign-in with Secure, Path=/ and no Domain, and no hb.sid beside it', async () => {
    const { response } = await signIn(app(), HTTPS);
    expect(response.status).toBe(302);
    expect(setCookieOf(response, '__Host-hb.sid')).toMatch(
      /^__Host-hb\.sid=s%3A[^;]+; Path=\/; HttpOnly; Secure; SameSite=Lax$/,
    );
    expect(setCookieOf(response, 'hb.sid')).toBeUndefined();
  });

  it("does not take a planted hb.sid, the attacker's signed-in session, as anyone's session", async () => {
    const application = app();
    const { response } = await signIn(application, HTTPS);
    const attackersSession = valueSetFor(response, ['__Host-hb.sid', 'hb.sid']);
    const planted = await request(application)
      .get('/admin')
      .set('Accept', 'text/html')
      .set(HTTPS)
      .set('Cookie', `hb.sid=${attackersSession}`);
    expect(planted.status).toBe(302);
    expect(planted.headers.location).toBe('/login?next=%2Fadmin');
    // The host's own cookie still opens the session.
    await request(application)
      .get('/admin')
      .set('Accept', 'text/html')
      .set(HTTPS)
      .set('Cookie', `__Host-hb.sid=${attackersSession}`)
      .expect(200);
  });
});

// After the rename, browsers kept the hb.sid and hb.csrf set before it until they expired (hb.sid
// when the browser closes, which a browser restoring its tabs never does), sent with every request
// beside the new cookies. Where the __Host- names are in use, a request carrying an old one is
// answered with a Set-Cookie that expires it, with the path and flags it was set with.
describe('production behind https: a cookie of the names before the rename is expired', () => {
  const app = () => buildTestApp(db, { env: PRODUCTION });
  const EXPIRED = (name: string) =>
    new RegExp(
      `^${name.replace('.', '\\.')}=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax$`,
    );

  it('expires hb.sid and hb.csrf a request carries, beside the __Host- cookies', async () => {
    const response = await request(app())
      .get('/login')
      .set('Accept', 'text/html')
      .set(HTTPS)
      .set('Cookie', 'hb.sid=s%3Aold-session.sig; hb.csrf=s%3Aold-secret.sig; __Host-hb.csrf=s%3Anew.sig')
      .expect(200);
    expect(setCookieOf(response, 'hb.sid')).toMatch(EXPIRED('hb.sid'));
    expect(setCookieOf(response, 'hb.csrf')).toMatch(EXPIRED('hb.csrf'));
    expect(setCookiesOf(response).join('\n')).not.toMatch(/^__Host-hb\.csrf=;/m);
  });

  it('expires an old hb.sid on a signed-in page, whose session stays open', async () => {
    const application = app();
    const { response: signedIn } = await signIn(application, HTTPS);
    const session = valueSetFor(signedIn, ['__Host-hb.sid']);
    const page = await request(application)
      .get('/admin')
      .set('Accept', 'text/html')
      .set(HTTPS)
      .set('Cookie', `hb.sid=s%3Aold-session.sig; __Host-hb.sid=${session}`)
      .expect(200);
    expect(setCookiesOf(page)).toEqual([expect.stringMatching(EXPIRED('hb.sid'))]);
  });

  it('sets no such cookie for a request that carries none', async () => {
    const response = await request(app()).get('/login').set('Accept', 'text/html').set(HTTPS).expect(200);
    expect(setCookieOf(response, 'hb.sid')).toBeUndefined();
    expect(setCookieOf(response, 'hb.csrf')).toBeUndefined();
  });

  it('leaves hb.sid and hb.csrf alone where they are the names in use (plain-HTTP development)', async () => {
    const response = await request(buildTestApp(db))
      .get('/login')
      .set('Accept', 'text/html')
      .set('Cookie', 'hb.sid=s%3Asome-session.sig')
      .expect(200);
    expect(setCookieOf(response, 'hb.sid')).toBeUndefined();
  });
});

describe('plain-HTTP development keeps hb.csrf and hb.sid', () => {
  it('sets and clears hb.csrf, not Secure, and signs in with it into an hb.sid session', async () => {
    // With the production apps' key: they sealed this database's audit log, and an app without the key
    // is refused the sign-in's entry (docs/security.md, "Audit log").
    const app = buildTestApp(db, { env: { AUDIT_CHAIN_KEY: PRODUCTION.AUDIT_CHAIN_KEY } });
    // The next files in this worker share the module's settings (vitest's isolate: false).
    onTestFinished(() => configureAuditChain({ chainKeys: [], unsealedUntil: 0n }));
    const { form, response } = await signIn(app, {});
    expect(setCookieOf(form, 'hb.csrf')).toMatch(/^hb\.csrf=s%3A[^;]+; Path=\/; HttpOnly; SameSite=Lax$/);
    expect(setCookieOf(form, '__Host-hb.csrf')).toBeUndefined();
    expect(response.status).toBe(302);
    expect(setCookieOf(response, 'hb.csrf')).toMatch(/^hb\.csrf=; Path=\/; Expires=[^;]+; HttpOnly; SameSite=Lax$/);
    expect(setCookieOf(response, 'hb.sid')).toMatch(/^hb\.sid=s%3A[^;]+; Path=\/; HttpOnly; SameSite=Lax$/);
    expect(setCookieOf(response, '__Host-hb.sid')).toBeUndefined();
  });
});
