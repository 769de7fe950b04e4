import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenIn, csrfTokenOf, postLogin, signInAs, signInNewAdmin } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A newcomer who opened a page that needs a user while signed out (a bookmark, a link in an email)
 * landed on a bare Sign in page with no line saying why, and could take it for the page they asked
 * for being broken. The sign-in page says why, and where signing in will take them.
 */
const noticeFor = (path: string) => `Sign in to see ${path}: you will be taken there once signed in.`;

/** The sign-in page's alerts, in order: [class, text]. */
const alertsIn = (html: string) =>
  [...html.matchAll(/<div class="alert (\w+)" role="(?:alert|status)"[^>]*>([^<]*)<\/div>/g)].map((m) => [m[1], m[2]]);

const nextFieldIn = (html: string) => /<input type="hidden" name="next" value="([^"]*)">/.exec(html)?.[1];

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  app = buildTestApp(db);
});
afterAll(() => db?.drop());

/** Opens `path` signed out as a browser does, follows the redirect; the sign-in page. */
async function openSignedOut(agent: Agent, path: string) {
  const sent = await agent.get(path).set('Accept', 'text/html');
  expect(sent.status, sent.text.slice(0, 200)).toBe(302);
  const location = sent.headers.location as string;
  expect(location).toMatch(/^\/login(\?|$)/);
  const page = await agent.get(location).set('Accept', 'text/html').expect(200);
  return { location, page };
}

describe('the sign-in page a protected page sent a signed-out visitor to', () => {
  it.each([
    ['/me', '/me'],
    ['/account', '/account'],
    ['/admin/receipts', '/admin/receipts'],
    ['/me/receipts/3', '/me/receipts/3'],
    // The page, without its query: the query is kept for the return, not read out.
    ['/me?start=2026-11-01&end=2026-11-30', '/me'],
  ])('%s: says why, as the page notice, and where signing in returns', async (path, shown) => {
    const { location, page } = await openSignedOut(request.agent(app), path);
    expect(location).toBe(`/login?next=${encodeURIComponent(path)}`);
    expect(alertsIn(page.text)).toEqual([['warning', noticeFor(shown)]]);
    expect(nextFieldIn(page.text)).toBe(path.replaceAll('&', '&amp;'));
  });

  it.each([
    ['/me.csv?start=2026-11-01&end=2026-11-30', '/me', '/me?start=2026-11-01&end=2026-11-30'],
    ['/me/receipts/3/items.csv', '/me/receipts/3', '/me/receipts/3'],
  ])('%s typed as next: names the page signing in goes to, not the download', async (next, shown, destination) => {
    // Signing in goes to a download's page (its link is there), not to the download: the notice said
    // "Sign in to see /me.csv: you will be taken there once signed in." and signing in opened /me.
    const user = await buildUser(db.prisma, { username: `why-download-${shown.length}` });
    const agent = request.agent(app);
    const page = await agent
      .get(`/login?next=${encodeURIComponent(next)}`)
      .set('Accept', 'text/html')
      .expect(200);
    expect(alertsIn(page.text)).toEqual([['warning', noticeFor(shown)]]);
    const signedIn = await agent
      .post('/login')
      .set('Accept', 'text/html')
      .type('form')
      .send({ username: user.username, password: user.password, csrf_token: csrfTokenIn(page.text), next })
      .expect(302);
    expect(signedIn.headers.location).toBe(destination);
  });

  it('is where signing in returns, and the page after it has no notice left', async () => {
    const user = await buildUser(db.prisma, { username: 'why-returner' });
    const agent = request.agent(app);
    const { page } = await openSignedOut(agent, '/account');
    const signedIn = await agent
      .post('/login')
      .set('Accept', 'text/html')
      .type('form')
      .send({ username: 'why-returner', password: user.password, csrf_token: csrfTokenIn(page.text), next: '/account' })
      .expect(302);
    expect(signedIn.headers.location).toBe('/account');
    const account = await agent.get('/account').set('Accept', 'text/html').expect(200);
    expect(account.text).not.toContain('Sign in to see');
  });

  it('a refused sign-in says only why it was refused, keeping where it returns', async () => {
    const agent = request.agent(app);
    const { page } = await openSignedOut(agent, '/me');
    const refused = await agent
      .post('/login')
      .set('Accept', 'text/html')
      .type('form')
      .send({ username: 'nobody-here', password: 'wrong', csrf_token: csrfTokenIn(page.text), next: '/me' })
      .expect(401);
    expect(alertsIn(refused.text)).toEqual([['error', 'Wrong username or password.']]);
    expect(nextFieldIn(refused.text)).toBe('/me');
  });

  // The page is named only when a page of the app is at that address: /login?next=/Your-account-is-locked,-call-...
  // (a link anyone can send) printed up to 80 characters of the sender's text in the site's own warning.
  const GENERIC_NOTICE = 'Sign in to see the page you opened: you will be taken there once signed in.';

  it('an address no page is at is not read out, yet is where signing in returns', async () => {
    const path = '/Your-account-is-locked.-Call-the-helpdesk-at-555-0100-to-unlock-it';
    const { page } = await openSignedOut(request.agent(app), '/me');
    expect(alertsIn(page.text)).toEqual([['warning', noticeFor('/me')]]);
    const spoofed = await request(app)
      .get(`/login?next=${encodeURIComponent(path)}`)
      .set('Accept', 'text/html')
      .expect(200);
    expect(alertsIn(spoofed.text)).toEqual([['warning', GENERIC_NOTICE]]);
    expect(nextFieldIn(spoofed.text)).toBe(path);
  });

  it("text in a page's id is not read out: only an id is", async () => {
    const spoofed = '/admin/receipts/Call-the-helpdesk-at-555-0100';
    const { page } = await openSignedOut(request.agent(app), spoofed);
    expect(alertsIn(page.text)).toEqual([['warning', GENERIC_NOTICE]]);
    expect(nextFieldIn(page.text)).toBe(spoofed);
    const long = `/me/receipts/${'9'.repeat(120)}`;
    const { page: longPage } = await openSignedOut(request.agent(app), long);
    expect(alertsIn(longPage.text)).toEqual([['warning', GENERIC_NOTICE]]);
    expect(nextFieldIn(longPage.text)).toBe(long);
  });

  it('markup in the address is not read out', async () => {
    const page = await request(app).get('/login?next=%2Fme%2F%3Cb%3E"x').set('Accept', 'text/html').expect(200);
    expect(page.text).not.toContain('<b>');
    expect(alertsIn(page.text)).toEqual([['warning', GENERIC_NOTICE]]);
  });
});

describe('the sign-in page says nothing more', () => {
  it('opened by itself', async () => {
    const page = await request(app).get('/login').set('Accept', 'text/html').expect(200);
    expect(alertsIn(page.text)).toEqual([]);
    expect(nextFieldIn(page.text)).toBeUndefined();
  });

  it.each([
    '//evil.example/x',
    'https://evil.example/',
    '/\\evil.example',
    'javascript:alert(1)',
    '/.//evil.example/x',
    '/%2e//evil.example/x',
  ])('for a return address that is not a page of this site (%s), nor carries it', async (next) => {
    const page = await request(app)
      .get(`/login?next=${encodeURIComponent(next)}`)
      .set('Accept', 'text/html')
      .expect(200);
    expect(alertsIn(page.text)).toEqual([]);
    expect(nextFieldIn(page.text)).toBeUndefined();
    expect(page.text).not.toContain('evil.example');
  });

  it('over plain HTTP where signing in needs HTTPS: that says more', async () => {
    const production = buildTestApp(db, {
      env: { APP_ENV: 'production', SESSION_SECRET: 'p'.repeat(40), AUDIT_CHAIN_KEY: 'k'.repeat(40) },
    });
    const sent = await request(production).get('/me').set('Accept', 'text/html').expect(302);
    const page = await request(production)
      .get(sent.headers.location as string)
      .set('Accept', 'text/html');
    const alerts = alertsIn(page.text);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]?.[1]).toContain('Signing in needs HTTPS, and this request came over plain HTTP');
  });

  it('when the session ended: that says more', async () => {
    let clock = new Date('2026-06-01T08:00:00Z');
    const idleApp = buildTestApp(db, { now: () => clock, env: { SESSION_IDLE_SEC: '600' } });
    const user = await buildUser(db.prisma, { username: 'why-idler' });
    const agent = await signInAs(idleApp, 'why-idler', user.password);
    clock = new Date(clock.getTime() + 3_600_000);
    const { location, page } = await openSignedOut(agent, '/account');
    expect(location).toBe('/login?next=%2Faccount');
    expect(alertsIn(page.text)).toEqual([['warning', 'Your session ended. Please sign in again.']]);
    expect(nextFieldIn(page.text)).toBe('/account');
  });

  it('when a password change elsewhere signed the session out: that says more', async () => {
    const user = await buildUser(db.prisma, { username: 'why-changed' });
    const office = await signInAs(app, 'why-changed', user.password);
    const lab = await signInAs(app, 'why-changed', user.password);
    await office
      .post('/account/password')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(office))
      .send({ current: user.password, password: 'fresh-password-2', confirm: 'fresh-password-2' })
      .expect(200);
    const { page } = await openSignedOut(lab, '/me');
    expect(alertsIn(page.text)).toEqual([
      [
        'warning',
        'Your password was changed in another session, so this one was signed out. Sign in with the new password.',
      ],
    ]);
    expect(nextFieldIn(page.text)).toBe('/me');
  });

  it('when an admin disabled the account: that says more', async () => {
    const admin = await signInNewAdmin(app, db, 'why-admin');
    const user = await buildUser(db.prisma, { username: 'why-disabled' });
    const agent = await signInAs(app, 'why-disabled', user.password);
    await admin
      .post(`/admin/users/${user.id}/disable`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin, '/admin/users'))
      .send({})
      .expect(200);
    const { page } = await openSignedOut(agent, '/me');
    expect(alertsIn(page.text)).toEqual([['error', 'Your account has been disabled. Ask an administrator.']]);
    // Reloaded, the form promises no page a sign-in of a disabled account would not reach.
    const reloaded = await agent.get('/login?next=%2Fme').set('Accept', 'text/html').expect(200);
    expect(alertsIn(reloaded.text)).toEqual([]);
  });

  it('after signing out: that says it', async () => {
    const user = await buildUser(db.prisma, { username: 'why-leaver' });
    const agent = await signInAs(app, 'why-leaver', user.password);
    const out = await agent
      .post('/logout')
      .set('Accept', 'text/html')
      .type('form')
      .send({ csrf_token: await csrfTokenOf(agent) })
      .expect(302);
    const page = await agent
      .get(out.headers.location as string)
      .set('Accept', 'text/html')
      .expect(200);
    expect(alertsIn(page.text)).toEqual([['success', 'You are signed out.']]);
  });
});

describe('a JSON client', () => {
  it('still gets 401 with a message, not the sign-in page', async () => {
    for (const path of ['/me', '/admin/receipts', '/me/receipts/3']) {
      const response = await request(app).get(path).set('Accept', 'application/json');
      expect(response.status).toBe(401);
      expect(response.body).toEqual({ error: 'Sign in to continue.', code: 401 });
    }
  });

  it('signing in with a return address is answered as before', async () => {
    const user = await buildUser(db.prisma, { username: 'why-script' });
    const { response } = await postLogin(app, 'why-script', user.password, { next: '/account' });
    expect(response.status).toBe(302);
    expect(response.headers.location).toBe('/account');
  });
});
