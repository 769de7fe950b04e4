import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { postLogin, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * `/login?next=/logout` led, once signed in, to the Sign out page: a link anyone can send made a
 * sign-in look as if it had not worked, one click from signing out again. A `next` at the sign-in or
 * sign-out page (in any case, with a trailing slash or a query) is ignored, as an off-site one is:
 * signing in goes home, and the sign-in page neither names it nor carries it.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let password: string;
beforeAll(async () => {
  db = await createTestDatabase();
  app = buildTestApp(db);
  password = (await buildUser(db.prisma, { username: 'nexted' })).password;
});
afterAll(() => db?.drop());

const nextFieldIn = (html: string) => /<input type="hidden" name="next" value="([^"]*)">/.exec(html)?.[1];

const SIGN_IN_OUT_NEXTS = [
  '/logout',
  '/LogOut',
  '/logout/',
  '/logout?now=1',
  '/logout#out',
  '/login',
  '/login?next=%2Fme',
  '/./logout',
  '/me/../logout',
];

describe('a next at the sign-in or sign-out page', () => {
  it.each(SIGN_IN_OUT_NEXTS)('%s: signing in goes home', async (next) => {
    const { response } = await postLogin(app, 'nexted', password, { next });
    expect(response.status).toBe(302);
    expect(response.headers.location).toBe('/me');
  });

  it.each(SIGN_IN_OUT_NEXTS)('%s: the sign-in page neither names nor carries it', async (next) => {
    const page = await request(app)
      .get(`/login?next=${encodeURIComponent(next)}`)
      .set('Accept', 'text/html')
      .expect(200);
    expect(page.text).not.toContain('Sign in to see');
    expect(nextFieldIn(page.text)).toBeUndefined();
  });

  it('someone already signed in is sent home, not to the Sign out page', async () => {
    const agent = await signInAs(app, 'nexted', password);
    const onward = await agent.get('/login?next=%2Flogout').set('Accept', 'text/html').expect(302);
    expect(onward.headers.location).toBe('/me');
  });

  it('a page whose path only starts so is still followed', async () => {
    for (const next of ['/logouts', '/me?next=/logout', '/login-help']) {
      const { response } = await postLogin(app, 'nexted', password, { next });
      expect(response.headers.location).toBe(next);
    }
  });
});
