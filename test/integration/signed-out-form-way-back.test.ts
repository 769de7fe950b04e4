import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { csrfTokenIn, postLogin, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A form refused because its session ended (idle, or signed out in another tab) says "Sign in
 * again, then send it again". The page offered only "Back to the start page": signing in from
 * there, or from the header, landed on the home page, not back on the page the form was on (the
 * window of My usage the receipt was to come from, the Account page).
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
});
afterAll(() => db?.drop());

// The site as the browser addresses it: a Referer names the page by the same host.
const HOST = 'billing.example';
const BASE = `https://${HOST}`;
const signInLinkIn = (html: string) =>
  /<a href="(\/login[^"]*)">Sign in again<\/a>/.exec(html)?.[1]?.replaceAll('&amp;', '&');

describe('a form refused because its session ended', () => {
  it('links to the sign-in page, which sends the researcher back to the page the form was on', async () => {
    let clock = new Date('2026-11-20T08:00:00Z');
    const app = buildTestApp(db, { now: () => clock, env: { SESSION_IDLE_SEC: '600' } });
    const user = await buildUser(db.prisma, { username: 'idler' });
    await buildJobs(db, [{ user: 'idler', end: new Date('2026-11-10T10:00:00Z') }]);
    const agent = await signInAs(app, 'idler', user.password);
    const formPage = '/me?start=2026-11-01&end=2026-11-19&view=aggregate';
    const page = await agent.get(formPage).set('Accept', 'text/html').expect(200);

    clock = new Date(clock.getTime() + 3_600_000);
    const sent = await agent
      .post('/me/receipt?start=2026-11-01&end=2026-11-19&view=aggregate')
      .set('Accept', 'text/html')
      .set('Host', HOST)
      .set('Referer', `${BASE}${formPage}`)
      .type('form')
      .send({ before: '2026-11-19', csrf_token: csrfTokenIn(page.text) });
    expect(sent.status).toBe(403);
    expect(sent.text).toContain('Your session ended, so this form was not sent.');
    const signIn = signInLinkIn(sent.text);
    expect(signIn).toBe(`/login?next=${encodeURIComponent(formPage)}`);
    expect(await db.prisma.receipt.count()).toBe(0);

    // Signing in through that link comes back to the same window.
    const { response } = await postLogin(app, 'idler', user.password, {
      next: new URLSearchParams(signIn?.split('?')[1]).get('next') ?? '',
    });
    expect(response.status).toBe(302);
    expect(response.headers.location).toBe(formPage);
  });

  it('offers the sign-in page alone when the form came from another site or said nothing of where it was', async () => {
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: 'leaver' });
    const agent = await signInAs(app, 'leaver', user.password);
    const page = await agent.get('/account').set('Accept', 'text/html').expect(200);
    const token = csrfTokenIn(page.text);
    await agent.post('/logout').type('form').send({ csrf_token: token }).expect(302);

    for (const referer of [undefined, 'https://elsewhere.example/account', `${BASE}//elsewhere.example/x`]) {
      const sending = agent.post('/account/password').set('Accept', 'text/html').type('form');
      if (referer) sending.set('Host', HOST).set('Referer', referer);
      const sent = await sending.send({
        current: 'x',
        password: 'never-applied-1',
        confirm: 'never-applied-1',
        csrf_token: token,
      });
      expect(sent.status).toBe(403);
      expect(sent.text).toContain('You are not signed in');
      expect(signInLinkIn(sent.text)).toBe('/login');
    }

    const sent = await agent
      .post('/account/password')
      .set('Accept', 'text/html')
      .set('Host', HOST)
      .set('Referer', `${BASE}/account`)
      .type('form')
      .send({ current: 'x', password: 'never-applied-1', confirm: 'never-applied-1', csrf_token: token });
    expect(signInLinkIn(sent.text)).toBe('/login?next=%2Faccount');
  });
});
