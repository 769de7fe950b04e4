import { createHmac, pbkdf2Sync } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createMetrics, type Metrics } from '../../src/modules/metrics/metrics.js';
import { buildUser } from '../support/factories.js';
import { sessionsWaitingForLocks } from '../support/lock-waits.js';
import { csrfTokenIn, csrfTokenOf, postLogin, signInAs } from '../support/sign-in.js';
import { buildTestApp, metricValue } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/** A refused sign-in's status says why: 429 while locked, 401 for a wrong username or password. */
function isRefusedWithItsStatus(response: { status: number; text: string }): boolean {
  return response.status === (response.text.includes('Too many failed sign-ins') ? 429 : 401);
}

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const KNOWN_SECRET = 'a-session-secret-the-test-knows-0123456789';

const setCookies = (response: request.Response): string[] =>
  ([] as string[]).concat(response.headers['set-cookie'] ?? []);

const sessionCookie = (response: request.Response) =>
  setCookies(response)
    .find((cookie) => cookie.startsWith('hb.sid='))
    ?.split(';')[0];

describe('the sign-in form', () => {
  it('carries the CSRF token in exactly the field load scripts extract', async () => {
    const page = await request(buildTestApp(db)).get('/login').set('Accept', 'text/html').expect(200);
    expect(page.text).toMatch(/<input type="hidden" name="csrf_token" value="[A-Za-z0-9_-]{20,}">/);
    expect(page.headers['cache-control']).toBe('no-store');
  });
});

describe('signing in', () => {
  const app = () => buildTestApp(db);

  it('sends users to /me and admins to /admin, on a new session id (no fixation)', async () => {
    const alice = await buildUser(db.prisma, { username: 'alice' });
    await buildUser(db.prisma, { username: 'root', role: 'admin', password: 'root-password' });
    // An attacker plants a session id of their own (a stored anonymous session) in the victim's browser.
    const planted = 'planted-session-id-0123456789';
    await db.pool.query(`INSERT INTO "session" (sid, sess, expire) VALUES ($1, $2, now() + interval '1 hour')`, [
      planted,
      { cookie: { originalMaxAge: 3_600_000, httpOnly: true, path: '/' } },
    ]);
    const signature = createHmac('sha256', KNOWN_SECRET).update(planted).digest('base64').replace(/=+$/, '');
    const plantedCookie = `hb.sid=${encodeURIComponent(`s:${planted}.${signature}`)}`;
    const knownSecretApp = buildTestApp(db, { env: { SESSION_SECRET: KNOWN_SECRET } });
    const form = await request(knownSecretApp).get('/login').set('Cookie', plantedCookie).expect(200);
    const visitorCookies = setCookies(form).map((c) => c.split(';')[0]);
    const response = await request(knownSecretApp)
      .post('/login')
      .set('Cookie', [plantedCookie, ...visitorCookies].join('; '))
      .type('form')
      .send({ username: 'alice', password: alice.password, csrf_token: csrfTokenIn(form.text) });
    expect(response.status).toBe(302);
    expect(response.headers.location).toBe('/me');
    const after = sessionCookie(response);
    expect(after).toBeDefined();
    expect(after).not.toContain(planted);
    expect((await db.pool.query('SELECT 1 FROM "session" WHERE sid = $1', [planted])).rowCount).toBe(0);
    expect(setCookies(response).find((c) => c.startsWith('hb.sid='))).toMatch(/HttpOnly/);
    expect(setCookies(response).find((c) => c.startsWith('hb.sid='))).toMatch(/SameSite=Lax/);

    const admin = await postLogin(app(), 'root', 'root-password');
    expect(admin.response.headers.location).toBe('/admin');
  });

  it('writes nothing for the form and the signed-in session before its redirect, with a CSRF secret of its own; the first page leaves it alone', async () => {
    const user = await buildUser(db.prisma, { username: 'written-once' });
    // Every write to the session table, in order, by a trigger in this test's database.
    await db.pool.query(`
      CREATE TABLE session_writes (seq serial, op text, sid text, sess jsonb);
      CREATE FUNCTION record_session_write() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO session_writes (op, sid, sess)
          VALUES (TG_OP, COALESCE(NEW.sid, OLD.sid), COALESCE(NEW.sess, OLD.sess));
          RETURN NULL;
        END $$;
      CREATE TRIGGER session_writes AFTER INSERT OR UPDATE OR DELETE ON "session"
        FOR EACH ROW EXECUTE FUNCTION record_session_write();
      -- A DELETE that finds no row fires no row trigger; this one sees every DELETE sent.
      CREATE FUNCTION record_session_delete_statement() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO session_writes (op) VALUES ('DELETE statement');
          RETURN NULL;
        END $$;
      CREATE TRIGGER session_delete_statements AFTER DELETE ON "session"
        FOR EACH STATEMENT EXECUTE FUNCTION record_session_delete_statement();`);
    const takeWrites = async () =>
      (
        await db.pool.query<{ seq: number; op: string; sid: string; sess: Record<string, unknown> }>(
          'DELETE FROM session_writes RETURNING seq, op, sid, sess',
        )
      ).rows.sort((a, b) => a.seq - b.seq);
    try {
      const agent = request.agent(app());
      const form = await agent.get('/login').set('Accept', 'text/html').expect(200);
      expect(await takeWrites()).toEqual([]);

      const signedIn = await agent
        .post('/login')
        .type('form')
        .send({ username: 'written-once', password: user.password, csrf_token: csrfTokenIn(form.text) })
        .expect(302);
      const signIn = await takeWrites();
      // Written once, before the redirect is sent (a browser following it must find the session);
      // express-session's own save as the response ends, which it makes after any regenerate, is skipped.
      // The visitor's session was never stored, so no DELETE is sent for it either.
      expect(signIn.map((write) => write.op)).toEqual(['INSERT']);
      const session = signIn[0]?.sess;
      expect(session).toMatchObject({ passport: { user: user.id } });
      expect(session?.signedInAt).toEqual(expect.any(Number));
      expect(session?.lastSeenAt).toBe(session?.signedInAt);
      expect(session?.csrfSecret).toEqual(expect.stringMatching(/^[A-Za-z0-9_-]{24}$/));
      // The visitor's cookie secret ends with the visit.
      expect(setCookies(signedIn)).toContainEqual(expect.stringMatching(/^hb\.csrf=;.*Expires=Thu, 01 Jan 1970/));

      const page = await agent.get('/account').set('Accept', 'text/html').expect(200);
      expect(await takeWrites()).toEqual([]);
      // The token on that page is good for the session's secret: signing out with it works.
      await agent
        .post('/logout')
        .type('form')
        .send({ csrf_token: csrfTokenIn(page.text) })
        .expect(302, /login/);
    } finally {
      await db.pool.query(`
        DROP TRIGGER session_writes ON "session";
        DROP TRIGGER session_delete_statements ON "session";
        DROP FUNCTION record_session_write();
        DROP FUNCTION record_session_delete_statement();
        DROP TABLE session_writes;`);
    }
  });

  it('gives one neutral message for an unknown user, a wrong password and a disabled account', async () => {
    await buildUser(db.prisma, { username: 'neutral', password: 'right-password' });
    await buildUser(db.prisma, { username: 'sleeping', password: 'right-password', isDisabled: true });
    const unknown = await postLogin(app(), 'nobody-here', 'whatever');
    const wrong = await postLogin(app(), 'neutral', 'wrong-password');
    const disabled = await postLogin(app(), 'sleeping', 'right-password');
    for (const { response } of [unknown, wrong, disabled]) {
      // The form again, as a refused sign-in: 401, not a 200 that a script or a monitor takes for success.
      expect(response.status).toBe(401);
      expect(response.headers['content-type']).toMatch(/^text\/html/);
      expect(response.text).toContain('name="password"');
      expect(response.text).toContain('Wrong username or password.');
      expect(response.text).not.toMatch(/no such user|unknown user|disabled/i);
    }
  });

  it('follows a safe local next path and ignores every off-site one', async () => {
    await buildUser(db.prisma, { username: 'nexter', password: 'nexter-password' });
    const local = await postLogin(app(), 'nexter', 'nexter-password', { next: '/account?tab=1' });
    expect(local.response.headers.location).toBe('/account?tab=1');
    for (const next of [
      '//evil.example/x',
      'https://evil.example/',
      '/\\evil.example',
      'javascript:alert(1)',
      '/%2F%2Fevil',
      // Each parses to //evil.example/x once its dot segment, tab or newline is removed.
      '/.//evil.example/x',
      '/..//evil.example/x',
      '/%2e//evil.example/x',
      '/%2E%2E//evil.example/x',
      '/\t/evil.example/x',
      '/\n/evil.example/x',
      '/./\\evil.example/x',
    ]) {
      const { response } = await postLogin(app(), 'nexter', 'nexter-password', { next });
      expect(response.status).toBe(302);
      expect(['/me', '/%2F%2Fevil']).toContain(response.headers.location);
      expect(response.headers.location).not.toMatch(/^\/\/|^https?:|evil\.example/);
    }
    // Someone already signed in is sent on at once: the same rule.
    const signedIn = await signInAs(app(), 'nexter', 'nexter-password');
    const onward = await signedIn.get('/login?next=%2F.%2F%2Fevil.example%2Fx').set('Accept', 'text/html');
    expect(onward.status).toBe(302);
    expect(onward.headers.location).toBe('/me');
  });

  it('upgrades a hash from the old werkzeug system to argon2id on the next sign-in', async () => {
    const salt = 'abcdefgh';
    const legacy = `pbkdf2:sha256:1000$${salt}$${pbkdf2Sync('old-password', salt, 1000, 32, 'sha256').toString('hex')}`;
    await db.prisma.user.create({ data: { username: 'legacy', passwordHash: legacy, passwordChangedAt: new Date() } });
    const agent = await signInAs(app(), 'legacy', 'old-password');
    // The same password under a new hash is no change of password: the session it signed in stays.
    await agent.get('/account').set('Accept', 'text/html').expect(200);
    const stored = await db.prisma.user.findUniqueOrThrow({ where: { username: 'legacy' } });
    expect(stored.passwordHash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    await signInAs(app(), 'legacy', 'old-password');
  });

  it('signs out on POST /logout and the old session stops working', async () => {
    const user = await buildUser(db.prisma, { username: 'leaver' });
    const agent = await signInAs(app(), 'leaver', user.password);
    await agent.get('/account').set('Accept', 'text/html').expect(200);
    const token = await csrfTokenOf(agent);
    await agent.post('/logout').type('form').send({ csrf_token: token }).expect(302).expect('Location', '/login');
    await agent.get('/account').set('Accept', 'text/html').expect(302).expect('Location', '/login?next=%2Faccount');
  });

  it('sends a sign-out from a second tab, after the first signed out, to the sign-in page', async () => {
    const user = await buildUser(db.prisma, { username: 'twotabsout' });
    const agent = await signInAs(app(), 'twotabsout', user.password);
    const tabA = await agent.get('/me/receipts').set('Accept', 'text/html').expect(200);
    const tabB = await agent.get('/account').set('Accept', 'text/html').expect(200);
    await agent
      .post('/logout')
      .type('form')
      .send({ csrf_token: csrfTokenIn(tabA.text) })
      .expect(302);
    // Its token ended with the session; the page is not a 403 whose reload would post it again.
    const second = await agent
      .post('/logout')
      .set('Accept', 'text/html')
      .type('form')
      .send({ csrf_token: csrfTokenIn(tabB.text) });
    expect(second.status).toBe(302);
    expect(second.headers.location).toBe('/login');
    expect(await db.prisma.auditLog.count({ where: { action: 'logout', actor: 'twotabsout' } })).toBe(1);
  });

  it('says that a form sent from a tab left open after signing out was not sent because of that', async () => {
    const user = await buildUser(db.prisma, { username: 'leftopen' });
    const agent = await signInAs(app(), 'leftopen', user.password);
    const usage = await agent.get('/me/receipts').set('Accept', 'text/html').expect(200);
    const account = await agent.get('/account').set('Accept', 'text/html').expect(200);
    await agent
      .post('/logout')
      .type('form')
      .send({ csrf_token: csrfTokenIn(account.text) })
      .expect(302);
    const sent = await agent
      .post('/me/receipt')
      .set('Accept', 'text/html')
      .type('form')
      .send({ before: '2026-01-01', csrf_token: csrfTokenIn(usage.text) });
    expect(sent.status).toBe(403);
    expect(sent.text).toContain(
      'You are not signed in (you signed out, perhaps in another tab, or your session ended)',
    );
    expect(sent.text).not.toContain('Reload the page');
    const json = await agent
      .post('/me/receipt')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', csrfTokenIn(usage.text))
      .send({ before: '2026-01-01' });
    expect(json.status).toBe(403);
    expect(json.body.error).toMatch(/^You are not signed in/);
  });

  it('sends a sign-in from a second tab, whose token died with the first sign-in, where it was going', async () => {
    const user = await buildUser(db.prisma, { username: 'twotabs' });
    const agent = request.agent(app());
    const tabA = await agent.get('/login').set('Accept', 'text/html').expect(200);
    const tabB = await agent.get('/login?next=%2Faccount').set('Accept', 'text/html').expect(200);
    const send = (form: request.Response, extra: Record<string, string> = {}) =>
      agent
        .post('/login')
        .set('Accept', 'text/html')
        .type('form')
        .send({ username: 'twotabs', password: user.password, csrf_token: csrfTokenIn(form.text), ...extra });
    await send(tabA).expect(302).expect('Location', '/me');
    const sessionsBefore = await db.prisma.session.count();
    const second = await send(tabB, { next: '/account' });
    expect(second.status).toBe(303);
    expect(second.headers.location).toBe('/account');
    const page = await agent.get('/account').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('You are already signed in as twotabs.');
    expect(await db.prisma.session.count()).toBe(sessionsBefore);
    const audits = await db.prisma.auditLog.count({ where: { action: 'login.success', actor: 'twotabs' } });
    expect(audits).toBe(1);
  });

  it('sends a JSON client signing in again on too, without a message waiting in its session', async () => {
    const user = await buildUser(db.prisma, { username: 'scriptagain' });
    const agent = await signInAs(app(), 'scriptagain', user.password);
    const again = await agent
      .post('/login')
      .set('Accept', 'application/json')
      .send({ username: 'scriptagain', password: user.password, next: '/account' });
    expect(again.status).toBe(303);
    expect(again.headers.location).toBe('/account');
    const page = await agent.get('/account').set('Accept', 'text/html').expect(200);
    expect(page.text).not.toContain('You are already signed in');
  });

  it('refuses a JSON client signing in as someone else while signed in (409), rather than redirect it as if it had', async () => {
    // The redirect is a sign-in's success to a script: posting alice's name (or a wrong password) with a
    // cookie jar still holding scriptadmin's session answered 303 /admin, and the script went on as
    // alice while every change it made was scriptadmin's.
    const admin = await buildUser(db.prisma, { username: 'scriptadmin', role: 'admin' });
    const other = await buildUser(db.prisma, { username: 'scriptother' });
    const agent = await signInAs(app(), 'scriptadmin', admin.password);
    for (const password of [other.password, 'wrong-password']) {
      const refused = await agent
        .post('/login')
        .set('Accept', 'application/json')
        .send({ username: ' ScriptOther ', password });
      expect(refused.status).toBe(409);
      expect(refused.headers.location).toBeUndefined();
      expect(refused.body).toEqual({
        error:
          'You are already signed in as scriptadmin, so scriptother was not signed in and no password was checked. ' +
          'Sign out first (POST /logout, with the X-CSRFToken header), then sign in as scriptother.',
        code: 409,
        username: 'scriptadmin',
      });
    }
    const account = await agent.get('/account').set('Accept', 'application/json').expect(200);
    expect(account.body.username).toBe('scriptadmin');
    expect(await db.prisma.auditLog.count({ where: { action: 'login.success', actor: 'scriptother' } })).toBe(0);
    // A browser's second tab is still sent on, as before.
    const tab = await agent
      .post('/login')
      .set('Accept', 'text/html')
      .type('form')
      .send({ username: 'scriptother', password: other.password });
    expect(tab.status).toBe(303);
  });

  it("gives a sign-in form whose token ended with another tab's visit back fresh, with the username kept", async () => {
    const user = await buildUser(db.prisma, { username: 'stale' });
    const server = app();
    const browser = request.agent(server);
    const tabC = await browser.get('/login?next=%2Faccount').set('Accept', 'text/html').expect(200);
    // Another tab signs in and out, which ends the visit tab C's token belonged to.
    const tabA = await browser.get('/login').set('Accept', 'text/html').expect(200);
    await browser
      .post('/login')
      .type('form')
      .send({ username: 'stale', password: user.password, csrf_token: csrfTokenIn(tabA.text) })
      .expect(302);
    await browser
      .post('/logout')
      .type('form')
      .send({ csrf_token: await csrfTokenOf(browser) })
      .expect(302);
    const sessionsBefore = await db.prisma.session.count();
    const stale = await browser
      .post('/login')
      .set('Accept', 'text/html')
      .type('form')
      .send({ username: 'stale', password: user.password, next: '/account', csrf_token: csrfTokenIn(tabC.text) });
    expect(stale.status).toBe(403);
    expect(stale.text).toContain('The security token of this sign-in form had expired. Sign in again.');
    expect(stale.text).toContain('value="stale"');
    expect(await db.prisma.session.count()).toBe(sessionsBefore);
    // The form it gives back works.
    await browser
      .post('/login')
      .set('Accept', 'text/html')
      .type('form')
      .send({ username: 'stale', password: user.password, next: '/account', csrf_token: csrfTokenIn(stale.text) })
      .expect(302)
      .expect('Location', '/account');
  });

  it("shows a signed-in user's own navigation on an error page raised before the page's own data", async () => {
    const user = await buildUser(db.prisma, { username: 'navkeeper' });
    const agent = await signInAs(app(), 'navkeeper', user.password);
    const nul = await agent.get('/me?start=%00').set('Accept', 'text/html').expect(400);
    expect(nul.text).toContain('Sign out (navkeeper)');
    const staleForm = await agent.post('/account/password').set('Accept', 'text/html').type('form').send({});
    expect(staleForm.status).toBe(403);
    expect(staleForm.text).toContain('Sign out (navkeeper)');
  });

  it('stops a disabled user at once, even mid-session', async () => {
    const user = await buildUser(db.prisma, { username: 'tobedisabled' });
    const agent = await signInAs(app(), 'tobedisabled', user.password);
    await agent.get('/account').set('Accept', 'text/html').expect(200);
    await db.prisma.user.update({ where: { username: 'tobedisabled' }, data: { isDisabled: true } });
    await agent.get('/account').set('Accept', 'text/html').expect(302);
  });
});

describe('GET /logout', () => {
  it('offers a sign-out button to someone signed in, and changes nothing until it is pressed', async () => {
    const user = await buildUser(db.prisma, { username: 'typedlogout' });
    const agent = await signInAs(buildTestApp(db), 'typedlogout', user.password);
    const page = await agent.get('/logout').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('<h1>Sign out</h1>');
    await agent.get('/account').set('Accept', 'text/html').expect(200);
    await agent
      .post('/logout')
      .type('form')
      .send({ csrf_token: csrfTokenIn(page.text) })
      .expect(302, /login/);
    await agent.get('/account').set('Accept', 'text/html').expect(302);
    // Signed out already: on to the sign-in page.
    await agent.get('/logout').set('Accept', 'text/html').expect(302).expect('Location', '/login');
  });
});

describe('session lifetimes', () => {
  it('sets a cookie that ends with the browser, while the session row still expires by the absolute limit', async () => {
    const app = buildTestApp(db, { env: { SESSION_ABSOLUTE_SEC: '3600' } });
    const user = await buildUser(db.prisma, { username: 'shared-pc' });
    const { response } = await postLogin(app, 'shared-pc', user.password);
    expect(response.status).toBe(302);
    const cookie = setCookies(response).find((c) => c.startsWith('hb.sid='));
    // A browser keeps a cookie with an expiry after it is closed: on a shared computer the next
    // person to open it would find the session signed in.
    expect(cookie).toBeDefined();
    expect(cookie).not.toMatch(/;\s*(Expires|Max-Age)=/i);

    const sid = decodeURIComponent(sessionCookie(response)?.slice('hb.sid='.length) ?? '').replace(
      /^s:([^.]+)\..*$/,
      '$1',
    );
    const { rows } = await db.pool.query<{ seconds: number }>(
      `SELECT extract(epoch FROM expire - now())::float AS seconds FROM "session" WHERE sid = $1`,
      [sid],
    );
    expect(rows[0]?.seconds).toBeGreaterThan(3500);
    expect(rows[0]?.seconds).toBeLessThanOrEqual(3601);
  });

  it('ends a session after the idle limit and after the absolute limit', async () => {
    let clock = new Date('2026-06-01T08:00:00Z');
    const app = buildTestApp(db, { now: () => clock, env: { SESSION_IDLE_SEC: '600', SESSION_ABSOLUTE_SEC: '3600' } });
    const user = await buildUser(db.prisma, { username: 'idler' });
    const agent = await signInAs(app, 'idler', user.password);
    clock = new Date(clock.getTime() + 590_000);
    await agent.get('/account').set('Accept', 'text/html').expect(200);
    clock = new Date(clock.getTime() + 590_000); // 590 s after the last request: still inside 10 min
    await agent.get('/account').set('Accept', 'text/html').expect(200);
    // lastSeenAt is written once a minute, so a session ends up to a minute late, never early.
    clock = new Date(clock.getTime() + 661_000);
    await agent.get('/account').set('Accept', 'text/html').expect(302);

    const steady = await signInAs(app, 'idler', user.password);
    for (let minute = 0; minute < 6; minute++) {
      clock = new Date(clock.getTime() + 590_000);
      await steady.get('/account').set('Accept', 'text/html').expect(200);
    }
    clock = new Date(clock.getTime() + 590_000); // past an hour since sign-in
    await steady.get('/account').set('Accept', 'text/html').expect(302);
  });
});

describe('an ended session', () => {
  it('is not ended early by requests closer together than lastSeenAt is written', async () => {
    let clock = new Date('2026-06-01T08:00:00Z');
    const app = buildTestApp(db, { now: () => clock, env: { SESSION_IDLE_SEC: '60' } });
    const user = await buildUser(db.prisma, { username: 'quickclicker' });
    const agent = await signInAs(app, 'quickclicker', user.password);
    for (const gapMs of [40_000, 45_000, 50_000, 59_000]) {
      clock = new Date(clock.getTime() + gapMs);
      await agent.get('/account').set('Accept', 'text/html').expect(200);
    }
    clock = new Date(clock.getTime() + 67_000);
    await agent.get('/account').set('Accept', 'text/html').expect(302);
  });

  it('says so on the sign-in page it sends you to, and on a form it refuses', async () => {
    let clock = new Date('2026-06-01T08:00:00Z');
    const app = buildTestApp(db, { now: () => clock, env: { SESSION_IDLE_SEC: '600' } });
    const user = await buildUser(db.prisma, { username: 'wanderer' });
    const agent = await signInAs(app, 'wanderer', user.password);
    const account = await agent.get('/account').set('Accept', 'text/html').expect(200);
    expect(account.headers['cache-control']).toBe('no-store');

    clock = new Date(clock.getTime() + 3_600_000);
    const expired = await agent.get('/account').set('Accept', 'text/html').expect(302);
    expect(expired.headers.location).toBe('/login?next=%2Faccount');
    const login = await agent.get('/login?next=%2Faccount').set('Accept', 'text/html').expect(200);
    expect(login.text).toContain('Your session ended. Please sign in again.');
    // Shown once.
    expect((await agent.get('/login').set('Accept', 'text/html')).text).not.toContain('Your session ended');

    const again = await signInAs(app, 'wanderer', user.password);
    const form = await again.get('/account').set('Accept', 'text/html').expect(200);
    clock = new Date(clock.getTime() + 3_600_000);
    const sent = await again
      .post('/account/password')
      .set('Accept', 'text/html')
      .type('form')
      .send({
        current: user.password,
        password: 'never-applied-1',
        confirm: 'never-applied-1',
        csrf_token: csrfTokenIn(form.text),
      });
    expect(sent.status).toBe(403);
    expect(sent.text).toContain('Your session ended, so this form was not sent.');
    await signInAs(app, 'wanderer', user.password);
  });
});

describe('lockout', () => {
  let clock: Date;
  let metrics: Metrics;
  beforeEach(() => {
    clock = new Date('2026-06-01T08:00:00Z');
    metrics = createMetrics();
  });
  const lockoutApp = (env: Record<string, string> = {}) =>
    buildTestApp(db, { now: () => clock, metrics, env: { TRUST_PROXY: 'loopback', ...env } });

  it('locks a username and address after 5 failures in 60 s, refuses even the right password, then lets it in', async () => {
    const user = await buildUser(db.prisma, { username: 'target' });
    const app = lockoutApp();
    for (let attempt = 1; attempt <= 4; attempt++) {
      const { response } = await postLogin(app, 'target', 'guess', { ip: '198.51.100.7' });
      expect(response.status).toBe(401);
      expect(response.text).toContain('Wrong username or password.');
    }
    const fifth = await postLogin(app, 'target', 'guess', { ip: '198.51.100.7' });
    expect(fifth.response.status).toBe(429);
    expect(fifth.response.headers['retry-after']).toBe('300');
    expect(fifth.response.text).toContain('Too many failed sign-ins. Try again in 5 min 00 s.');

    clock = new Date(clock.getTime() + 120_000);
    const locked = await postLogin(app, 'target', user.password, { ip: '198.51.100.7' });
    expect(locked.response.status).toBe(429);
    expect(locked.response.headers['retry-after']).toBe('180');
    expect(locked.response.text).toContain('Try again in 3 min 00 s.');
    expect(locked.response.text).toContain('name="password"');
    // Another address is not locked by the per-address rule.
    const elsewhere = await postLogin(app, 'target', user.password, { ip: '203.0.113.9' });
    expect(elsewhere.response.status).toBe(302);

    clock = new Date(clock.getTime() + 181_000);
    const afterLock = await postLogin(app, 'target', user.password, { ip: '198.51.100.7' });
    expect(afterLock.response.status).toBe(302);

    // The fifth failure starts the lock and counts as what it was, a wrong password; only the
    // sign-in refused during the lock counts as refused while locked.
    expect(await metricValue(metrics, 'auth_lockout_start_total')).toBe(1);
    expect(await metricValue(metrics, 'auth_lockout_active_total')).toBe(1);
    expect(await metricValue(metrics, 'auth_login_failure_total', { reason: 'bad_credentials' })).toBe(5);
    expect(await metricValue(metrics, 'auth_login_failure_total', { reason: 'locked' })).toBe(1);
    expect(await metricValue(metrics, 'auth_login_success_total')).toBe(2);
    const starts = await db.prisma.auditLog.count({ where: { action: 'login.lockout_start', actor: 'target' } });
    expect(starts).toBe(1);
  });

  it('forgets failures older than the window, and a success resets the count', async () => {
    const user = await buildUser(db.prisma, { username: 'slowguess' });
    const app = lockoutApp();
    for (let attempt = 0; attempt < 4; attempt++) await postLogin(app, 'slowguess', 'nope', { ip: '198.51.100.8' });
    clock = new Date(clock.getTime() + 61_000);
    for (let attempt = 0; attempt < 4; attempt++) await postLogin(app, 'slowguess', 'nope', { ip: '198.51.100.8' });
    await signInAs(app, 'slowguess', user.password);
    for (let attempt = 0; attempt < 4; attempt++) await postLogin(app, 'slowguess', 'nope', { ip: '198.51.100.8' });
    const { response } = await postLogin(app, 'slowguess', user.password, { ip: '198.51.100.8' });
    expect(response.status).toBe(302);
  });

  it('locks a username across all addresses at the slower per-user threshold', async () => {
    const user = await buildUser(db.prisma, { username: 'distributed' });
    const app = lockoutApp({ AUTH_USER_MAX_FAILS: '6', AUTH_USER_WINDOW_SEC: '900', AUTH_USER_LOCK_SEC: '900' });
    for (let attempt = 0; attempt < 6; attempt++) {
      await postLogin(app, 'distributed', 'guess', { ip: `192.0.2.${attempt + 1}` });
    }
    const fresh = await postLogin(app, 'distributed', user.password, { ip: '192.0.2.200' });
    expect(fresh.response.status).toBe(429);
    expect(fresh.response.headers['retry-after']).toBe('900');
    expect(fresh.response.text).toContain('Try again in 15 min 00 s.');
  });

  it('ignores X-Forwarded-For unless TRUST_PROXY trusts the sender', async () => {
    await buildUser(db.prisma, { username: 'spoofer' });
    const app = lockoutApp({ TRUST_PROXY: 'false' });
    for (let attempt = 0; attempt < 5; attempt++) await postLogin(app, 'spoofer', 'guess', { ip: `10.9.9.${attempt}` });
    const rows = await db.prisma.authThrottle.findMany({ where: { username: 'spoofer', NOT: { ip: '*' } } });
    expect(rows).toHaveLength(1);
    expect(rows[0]?.failureCount).toBe(5);
  });

  it('counts 50 concurrent wrong passwords exactly', async () => {
    await buildUser(db.prisma, { username: 'hammered' });
    const app = lockoutApp({ AUTH_MAX_FAILS: '1000', AUTH_USER_MAX_FAILS: '1000' });
    const form = await request.agent(app).get('/login');
    const agents = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const agent = request.agent(app);
        const page = await agent.get('/login').set('Accept', 'text/html');
        return { agent, token: csrfTokenIn(page.text) };
      }),
    );
    expect(form.status).toBe(200);
    const responses = await Promise.all(
      agents.map(({ agent, token }) =>
        agent
          .post('/login')
          .set('X-Forwarded-For', '198.51.100.50')
          .type('form')
          .send({ username: 'hammered', password: 'wrong', csrf_token: token }),
      ),
    );
    expect(responses.every(isRefusedWithItsStatus)).toBe(true);
    const perAddress = await db.prisma.authThrottle.findUniqueOrThrow({
      where: { username_ip: { username: 'hammered', ip: '198.51.100.50' } },
    });
    const perUser = await db.prisma.authThrottle.findUniqueOrThrow({
      where: { username_ip: { username: 'hammered', ip: '*' } },
    });
    expect(perAddress.failureCount).toBe(50);
    expect(perUser.failureCount).toBe(50);
    expect(await metricValue(metrics, 'auth_login_failure_total', { reason: 'bad_credentials' })).toBe(50);
  });

  /** Sends one wrong sign-in per address, all at once (forms fetched first); the answers' texts. */
  async function wrongSignInsAtOnce(app: ReturnType<typeof lockoutApp>, username: string, ips: string[]) {
    const agents = await Promise.all(
      ips.map(async (ip) => {
        const agent = request.agent(app);
        const page = await agent.get('/login').set('Accept', 'text/html');
        return { agent, ip, token: csrfTokenIn(page.text) };
      }),
    );
    const responses = await Promise.all(
      agents.map(({ agent, ip, token }) =>
        agent
          .post('/login')
          .set('Accept', 'text/html')
          .set('X-Forwarded-For', ip)
          .type('form')
          .send({ username, password: 'wrong', csrf_token: token }),
      ),
    );
    expect(responses.every(isRefusedWithItsStatus)).toBe(true);
    const count = (text: string) => responses.filter((response) => response.text.includes(text)).length;
    return { wrong: count('Wrong username or password.'), locked: count('Too many failed sign-ins.') };
  }

  /** Password checks that failed: every one is audited as login.failure, bad_credentials. */
  const verifiedFailures = (username: string) =>
    db.prisma.auditLog.count({
      where: { action: 'login.failure', actor: username, details: { path: ['reason'], equals: 'bad_credentials' } },
    });

  it('checks no more than AUTH_MAX_FAILS passwords of 30 wrong sign-ins sent at once from one address', async () => {
    const user = await buildUser(db.prisma, { username: 'parallel' });
    const app = lockoutApp();
    const answers = await wrongSignInsAtOnce(app, 'parallel', Array(30).fill('198.51.100.60'));
    // Five checked (the fifth starts the lock and says so), every other one refused unchecked.
    expect(await verifiedFailures('parallel')).toBe(5);
    expect(answers).toEqual({ wrong: 4, locked: 26 });
    expect(await metricValue(metrics, 'auth_login_failure_total', { reason: 'bad_credentials' })).toBe(5);
    expect(await metricValue(metrics, 'auth_login_failure_total', { reason: 'locked' })).toBe(25);
    expect(await metricValue(metrics, 'auth_lockout_start_total')).toBe(1);
    expect(await db.prisma.auditLog.count({ where: { action: 'login.lockout_start', actor: 'parallel' } })).toBe(1);
    const row = await db.prisma.authThrottle.findUniqueOrThrow({
      where: { username_ip: { username: 'parallel', ip: '198.51.100.60' } },
    });
    expect(row.failureCount).toBe(5);

    // The budget is spent: even the right password waits for the lock to end.
    clock = new Date(clock.getTime() + 299_000);
    const locked = await postLogin(app, 'parallel', user.password, { ip: '198.51.100.60' });
    expect(locked.response.status).toBe(429);
    expect(locked.response.headers['retry-after']).toBe('1');
    expect(locked.response.text).toContain('Too many failed sign-ins. Try again in 1 s.');
    clock = new Date(clock.getTime() + 1_000);
    const afterLock = await postLogin(app, 'parallel', user.password, { ip: '198.51.100.60' });
    expect(afterLock.response.status).toBe(302);
    expect(await db.prisma.authThrottle.count({ where: { username: 'parallel' } })).toBe(0);
  });

  it('checks no more than AUTH_USER_MAX_FAILS passwords of 30 wrong sign-ins sent at once from 30 addresses', async () => {
    const user = await buildUser(db.prisma, { username: 'botnet' });
    const app = lockoutApp({ AUTH_USER_MAX_FAILS: '6', AUTH_USER_WINDOW_SEC: '900', AUTH_USER_LOCK_SEC: '900' });
    const ips = Array.from({ length: 30 }, (_, index) => `192.0.2.${index + 1}`);
    const answers = await wrongSignInsAtOnce(app, 'botnet', ips);
    expect(await verifiedFailures('botnet')).toBe(6);
    expect(answers).toEqual({ wrong: 5, locked: 25 });
    expect(await metricValue(metrics, 'auth_lockout_start_total')).toBe(1);
    // Counted exactly: an address is charged only for a password that was checked.
    const rows = await db.prisma.authThrottle.findMany({ where: { username: 'botnet' } });
    const perUser = rows.find((row) => row.ip === '*');
    expect(perUser?.failureCount).toBe(6);
    const perAddress = rows.filter((row) => row.ip !== '*').reduce((sum, row) => sum + row.failureCount, 0);
    expect(perAddress).toBe(6);

    clock = new Date(clock.getTime() + 899_000);
    const locked = await postLogin(app, 'botnet', user.password, { ip: '203.0.113.60' });
    expect(locked.response.text).toContain('Too many failed sign-ins. Try again in 1 s.');
    clock = new Date(clock.getTime() + 1_000);
    expect((await postLogin(app, 'botnet', user.password, { ip: '203.0.113.60' })).response.status).toBe(302);
  });

  it('refuses, unchecked and uncharged, an attempt that meets a lock started after it began', async () => {
    const user = await buildUser(db.prisma, { username: 'racer' });
    const app = lockoutApp();
    await db.prisma.authThrottle.create({ data: { username: 'racer', ip: '*', windowStart: clock, failureCount: 19 } });
    // Another attempt's count locks the per-user row, and has not committed yet.
    const locker = await db.pool.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(
        `UPDATE auth_throttle SET failure_count = 20, locked_until = $1 WHERE username = 'racer' AND ip = '*'`,
        [new Date(clock.getTime() + 900_000)],
      );
      const attempt = postLogin(app, 'racer', user.password, { ip: '198.51.100.62' });
      // Its address row is counted; its '*' upsert waits for the row lock.
      expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
      await locker.query('COMMIT');
      const { response } = await attempt;
      expect(response.text).toContain('Too many failed sign-ins. Try again in 15 min 00 s.');
    } finally {
      locker.release();
    }
    const address = await db.prisma.authThrottle.findUniqueOrThrow({
      where: { username_ip: { username: 'racer', ip: '198.51.100.62' } },
    });
    expect(address).toMatchObject({ failureCount: 0, lockedUntil: null });
    // Its count in the network's row is given back too: no password was checked.
    const network = await db.prisma.authNetworkThrottle.findUniqueOrThrow({ where: { network: '198.51.100.62' } });
    expect(network).toMatchObject({ failureCount: 0, lockedUntil: null });
    const audit = await db.prisma.auditLog.findMany({
      where: { actor: 'racer' },
      select: { action: true, details: true },
    });
    expect(audit).toEqual([{ action: 'login.failure', details: { reason: 'locked', scope: ['user'] } }]);
  });

  /** Password checks that failed from `ip`, whatever the username: each is audited as bad_credentials. */
  const verifiedFailuresFrom = (ip: string) =>
    db.prisma.auditLog.count({
      where: { action: 'login.failure', ip, details: { path: ['reason'], equals: 'bad_credentials' } },
    });
  const NETWORK_LOCKED = 'Too many failed sign-ins from your network.';

  it('locks an address after AUTH_ADDRESS_MAX_FAILS failures across usernames (a password spray), and only that address', async () => {
    const user = await buildUser(db.prisma, { username: 'spray07' });
    const app = lockoutApp({ AUTH_ADDRESS_MAX_FAILS: '50' });
    const texts: string[] = [];
    // One common password against 60 usernames, known (spray07) and unknown: each username
    // only once, far below its own limits.
    for (let index = 0; index < 60; index++) {
      const username = `spray${String(index).padStart(2, '0')}`;
      const { response } = await postLogin(app, username, 'Winter2026!', { ip: '198.51.100.70' });
      expect(isRefusedWithItsStatus(response)).toBe(true);
      texts.push(response.text);
    }
    expect(texts.slice(0, 49).every((text) => text.includes('Wrong username or password.'))).toBe(true);
    // The fiftieth is checked and starts the lock; the ten after it are refused unchecked.
    expect(texts.slice(49).every((text) => text.includes(`${NETWORK_LOCKED} Try again in 15 min 00 s.`))).toBe(true);
    expect(await verifiedFailuresFrom('198.51.100.70')).toBe(50);
    const starts = await db.prisma.auditLog.findMany({
      where: { action: 'login.lockout_start', ip: '198.51.100.70' },
      select: { actor: true, details: true },
    });
    expect(starts).toEqual([{ actor: 'spray49', details: { scope: ['network'], until: '2026-06-01T08:15:00.000Z' } }]);
    const refused = await db.prisma.auditLog.count({
      where: {
        action: 'login.failure',
        ip: '198.51.100.70',
        status: 'denied',
        details: { equals: { reason: 'locked', scope: ['network'] } },
      },
    });
    // The first of the ten refused unchecked is audited; the metrics count all ten.
    expect(refused).toBe(1);
    expect(await metricValue(metrics, 'auth_lockout_start_total')).toBe(1);
    // The ten refused unchecked; the fiftieth, which started the lock, was a wrong password.
    expect(await metricValue(metrics, 'auth_lockout_active_total')).toBe(10);
    expect(await metricValue(metrics, 'auth_login_failure_total', { reason: 'locked' })).toBe(10);
    expect(await metricValue(metrics, 'auth_login_failure_total', { reason: 'bad_credentials' })).toBe(50);

    // Another address is not touched: a wrong password is checked, the right one signs in.
    const elsewhereWrong = await postLogin(app, 'spray30', 'Winter2026!', { ip: '203.0.113.70' });
    expect(elsewhereWrong.response.text).toContain('Wrong username or password.');
    expect((await postLogin(app, 'spray07', user.password, { ip: '203.0.113.70' })).response.status).toBe(302);

    // From the locked address even the right password waits for the lock to end.
    clock = new Date(clock.getTime() + 899_000);
    const locked = await postLogin(app, 'spray07', user.password, { ip: '198.51.100.70' });
    expect(locked.response.status).toBe(429);
    expect(locked.response.headers['retry-after']).toBe('1');
    expect(locked.response.text).toContain(`${NETWORK_LOCKED} Try again in 1 s.`);
    clock = new Date(clock.getTime() + 1_000);
    expect((await postLogin(app, 'spray07', user.password, { ip: '198.51.100.70' })).response.status).toBe(302);
    expect(await verifiedFailuresFrom('198.51.100.70')).toBe(50);
    expect(await metricValue(metrics, 'auth_lockout_end_total')).toBe(1);
  });

  // Refused unchecked, an attempt costs the client nothing, and each wrote an audit entry: one client,
  // signed in to nothing, could append to the log (which nothing may delete) as fast as it could send.
  it('audits the first attempt a lock refuses, and counts the rest only in the metrics', async () => {
    await buildUser(db.prisma, { username: 'refusedagain' });
    const app = lockoutApp({ AUTH_ADDRESS_MAX_FAILS: '3' });
    const refusedFrom = (ip: string) =>
      db.prisma.auditLog.count({
        where: { action: 'login.failure', ip, status: 'denied', details: { path: ['reason'], equals: 'locked' } },
      });
    for (let index = 0; index < 3; index++) await postLogin(app, `flood${index}`, 'guess', { ip: '198.51.100.80' });
    // Every username from the locked network, each one new.
    for (let index = 3; index < 23; index++) {
      const { response } = await postLogin(app, `flood${index}`, 'guess', { ip: '198.51.100.80' });
      expect(response.status).toBe(429);
    }
    expect(await refusedFrom('198.51.100.80')).toBe(1);
    expect(await metricValue(metrics, 'auth_login_failure_total', { reason: 'locked' })).toBe(20);

    // One username from one address, again and again (an address's own limit is not reached).
    const pairApp = lockoutApp();
    for (let index = 0; index < 5; index++) await postLogin(pairApp, 'refusedagain', 'guess', { ip: '198.51.100.81' });
    for (let index = 0; index < 10; index++) {
      expect((await postLogin(pairApp, 'refusedagain', 'guess', { ip: '198.51.100.81' })).response.status).toBe(429);
    }
    expect(await refusedFrom('198.51.100.81')).toBe(1);

    // The next lock's first refusal is audited again.
    clock = new Date(clock.getTime() + 901_000);
    for (let index = 0; index < 5; index++) await postLogin(pairApp, 'refusedagain', 'guess', { ip: '198.51.100.81' });
    expect((await postLogin(pairApp, 'refusedagain', 'guess', { ip: '198.51.100.81' })).response.status).toBe(429);
    expect(await refusedFrom('198.51.100.81')).toBe(2);
  });

  it('checks no more than AUTH_ADDRESS_MAX_FAILS passwords of 60 usernames sprayed at once from one address', async () => {
    const app = lockoutApp({ AUTH_ADDRESS_MAX_FAILS: '50' });
    const usernames = Array.from({ length: 60 }, (_, index) => `burst${index}`);
    const agents = await Promise.all(
      usernames.map(async (username) => {
        const agent = request.agent(app);
        const page = await agent.get('/login').set('Accept', 'text/html');
        return { agent, username, token: csrfTokenIn(page.text) };
      }),
    );
    const responses = await Promise.all(
      agents.map(({ agent, username, token }) =>
        agent
          .post('/login')
          .set('Accept', 'text/html')
          .set('X-Forwarded-For', '198.51.100.71')
          .type('form')
          .send({ username, password: 'Winter2026!', csrf_token: token }),
      ),
    );
    expect(responses.every(isRefusedWithItsStatus)).toBe(true);
    const count = (text: string) => responses.filter((response) => response.text.includes(text)).length;
    expect({ wrong: count('Wrong username or password.'), locked: count(NETWORK_LOCKED) }).toEqual({
      wrong: 49,
      locked: 11,
    });
    expect(await verifiedFailuresFrom('198.51.100.71')).toBe(50);
    expect(await metricValue(metrics, 'auth_lockout_start_total')).toBe(1);
    const network = await db.prisma.authNetworkThrottle.findUniqueOrThrow({ where: { network: '198.51.100.71' } });
    expect(network.failureCount).toBe(50);
    // A refused attempt is charged nowhere: the pairs' counts are the passwords checked.
    const pairs = await db.prisma.authThrottle.findMany({ where: { ip: '198.51.100.71' } });
    expect(pairs.reduce((sum, row) => sum + row.failureCount, 0)).toBe(50);
  });

  it('refuses, unchecked and uncharged, an attempt that meets an address lock started after it began', async () => {
    const user = await buildUser(db.prisma, { username: 'latecomer' });
    const app = lockoutApp();
    await db.prisma.authNetworkThrottle.create({
      data: { network: '198.51.100.73', windowStart: clock, failureCount: 99 },
    });
    // Another attempt's count locks the address, and has not committed yet.
    const locker = await db.pool.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(
        `UPDATE auth_network_throttle SET failure_count = 100, locked_until = $1 WHERE network = '198.51.100.73'`,
        [new Date(clock.getTime() + 900_000)],
      );
      const attempt = postLogin(app, 'latecomer', user.password, { ip: '198.51.100.73' });
      // Its network upsert waits for the row lock, before anything else is counted.
      expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
      await locker.query('COMMIT');
      const { response } = await attempt;
      expect(response.text).toContain(`${NETWORK_LOCKED} Try again in 15 min 00 s.`);
    } finally {
      locker.release();
    }
    expect(await db.prisma.authThrottle.count({ where: { username: 'latecomer' } })).toBe(0);
    const network = await db.prisma.authNetworkThrottle.findUniqueOrThrow({ where: { network: '198.51.100.73' } });
    expect(network.failureCount).toBe(100);
    const audit = await db.prisma.auditLog.findMany({
      where: { actor: 'latecomer' },
      select: { action: true, details: true },
    });
    expect(audit).toEqual([{ action: 'login.failure', details: { reason: 'locked', scope: ['network'] } }]);
  });

  it('keeps one budget for an IPv6 /64, whichever of its addresses a guess comes from', async () => {
    const app = lockoutApp({ AUTH_ADDRESS_MAX_FAILS: '4' });
    for (let index = 0; index < 4; index++) {
      await postLogin(app, `roamer${index}`, 'guess', { ip: `2001:db8:0:7::${index + 1}` });
    }
    const sameLine = await postLogin(app, 'roamer9', 'guess', { ip: '2001:db8:0:7:ffff::9' });
    expect(sameLine.response.text).toContain(NETWORK_LOCKED);
    const nextLine = await postLogin(app, 'roamer9', 'guess', { ip: '2001:db8:0:8::1' });
    expect(nextLine.response.text).toContain('Wrong username or password.');
    const network = await db.prisma.authNetworkThrottle.findUniqueOrThrow({ where: { network: '2001:db8:0:7::/64' } });
    expect(network).toMatchObject({ failureCount: 4 });
  });

  it('leaves the change-password form out of the address budget: neither counted nor refused by it', async () => {
    const user = await buildUser(db.prisma, { username: 'behindnat' });
    const app = lockoutApp({ AUTH_ADDRESS_MAX_FAILS: '3' });
    const { agent, response } = await postLogin(app, 'behindnat', user.password, { ip: '198.51.100.74' });
    expect(response.status).toBe(302);
    for (let index = 0; index < 3; index++) await postLogin(app, `nobody${index}`, 'guess', { ip: '198.51.100.74' });
    const change = async (current: string) =>
      agent
        .post('/account/password')
        .set('Accept', 'text/html')
        .set('X-Forwarded-For', '198.51.100.74')
        .type('form')
        .send({
          current,
          password: 'a-new-password-1',
          confirm: 'a-new-password-1',
          csrf_token: await csrfTokenOf(agent),
        });
    expect((await change('wrong')).status).toBe(400);
    const network = await db.prisma.authNetworkThrottle.findUniqueOrThrow({ where: { network: '198.51.100.74' } });
    expect(network.failureCount).toBe(3);
    expect((await change(user.password)).status).toBe(303);
  });

  it('does not reset an address budget on a successful sign-in, and gives back only its own count', async () => {
    const user = await buildUser(db.prisma, { username: 'insider' });
    const app = lockoutApp({ AUTH_ADDRESS_MAX_FAILS: '10' });
    // Successes alone never spend it: each gives its own count back.
    for (let attempt = 0; attempt < 15; attempt++) {
      expect((await postLogin(app, 'insider', user.password, { ip: '198.51.100.72' })).response.status).toBe(302);
    }
    for (let index = 0; index < 9; index++) await postLogin(app, `outsider${index}`, 'guess', { ip: '198.51.100.72' });
    // An attacker's own account signs in between guesses...
    expect((await postLogin(app, 'insider', user.password, { ip: '198.51.100.72' })).response.status).toBe(302);
    const network = await db.prisma.authNetworkThrottle.findUniqueOrThrow({ where: { network: '198.51.100.72' } });
    expect(network.failureCount).toBe(9);
    // ...and the next guess still spends the tenth failure.
    const tenth = await postLogin(app, 'outsider9', 'guess', { ip: '198.51.100.72' });
    expect(tenth.response.text).toContain(`${NETWORK_LOCKED} Try again in 15 min 00 s.`);
    const locked = await postLogin(app, 'insider', user.password, { ip: '198.51.100.72' });
    expect(locked.response.text).toContain(NETWORK_LOCKED);
    expect(await verifiedFailuresFrom('198.51.100.72')).toBe(10);
  });
});

describe('CSRF', () => {
  it('refuses a form POST with a missing or wrong token, and accepts the right one', async () => {
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: 'csrfuser' });
    const agent = await signInAs(app, 'csrfuser', user.password);
    const missing = await agent.post('/logout').set('Accept', 'text/html').type('form').send({});
    expect(missing.status).toBe(403);
    expect(missing.text).toContain('security token');
    await agent.post('/logout').type('form').send({ csrf_token: 'forged-token' }).expect(403);
    await agent.get('/account').set('Accept', 'text/html').expect(200);
    await agent
      .post('/logout')
      .type('form')
      .send({ csrf_token: await csrfTokenOf(agent) })
      .expect(302);
  });

  it("keeps a visitor's secret in a signed HttpOnly cookie, so anonymous pages write no session row", async () => {
    const app = buildTestApp(db);
    const count = async () => Number((await db.pool.query('SELECT count(*) FROM "session"')).rows[0].count);
    const before = await count();
    for (const path of ['/login', '/', '/no-such-page', '/login?next=%2Fme']) {
      for (let visitor = 0; visitor < 5; visitor++) {
        const page = await request(app).get(path).set('Accept', 'text/html');
        expect(setCookies(page).some((cookie) => cookie.startsWith('hb.sid='))).toBe(false);
        if (path.startsWith('/login')) {
          const visitorCookie = setCookies(page).find((cookie) => cookie.startsWith('hb.csrf='));
          expect(visitorCookie).toMatch(/^hb\.csrf=s%3A[^;]+; Path=\/; HttpOnly; SameSite=Lax$/);
        }
      }
    }
    expect(await count()).toBe(before);
  });

  it("refuses a sign-in whose token does not match the visitor's own signed cookie, and records no attempt", async () => {
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: 'visitorcsrf' });
    const formOf = async () => {
      const page = await request(app).get('/login').set('Accept', 'text/html').expect(200);
      const cookie = setCookies(page)
        .find((c) => c.startsWith('hb.csrf='))
        ?.split(';')[0];
      return { token: csrfTokenIn(page.text), cookie: cookie as string };
    };
    const mine = await formOf();
    const theirs = await formOf();
    const throttleRows = await db.prisma.authThrottle.count();
    const tampered = mine.cookie.replace(/.(;|$)/, (last) => (last[0] === 'A' ? 'B' : 'A') + last.slice(1));
    const attempts = [
      { cookie: undefined, token: mine.token },
      { cookie: theirs.cookie, token: mine.token },
      { cookie: tampered, token: mine.token },
      { cookie: mine.cookie, token: 'forged-token' },
    ];
    for (const attempt of attempts) {
      const post = request(app).post('/login').set('Accept', 'text/html').type('form');
      if (attempt.cookie) post.set('Cookie', attempt.cookie);
      // A wrong password: were the token taken, the failure would be counted.
      const refused = await post.send({
        username: 'visitorcsrf',
        password: 'wrong-password',
        csrf_token: attempt.token,
      });
      expect(refused.status).toBe(403);
      expect(refused.text).toContain('security token');
    }
    expect(await db.prisma.authThrottle.count()).toBe(throttleRows);
    await request(app)
      .post('/login')
      .set('Cookie', mine.cookie)
      .type('form')
      .send({ username: 'visitorcsrf', password: user.password, csrf_token: mine.token })
      .expect(302);
  });

  it("does not take the sign-in form's token once signed in: that one is bound to the session", async () => {
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: 'boundcsrf' });
    const agent = request.agent(app);
    const form = await agent.get('/login').set('Accept', 'text/html').expect(200);
    const visitorToken = csrfTokenIn(form.text);
    await agent
      .post('/login')
      .type('form')
      .send({ username: 'boundcsrf', password: user.password, csrf_token: visitorToken })
      .expect(302);
    await agent.post('/logout').set('Accept', 'text/html').type('form').send({ csrf_token: visitorToken }).expect(403);
    await agent.get('/account').set('Accept', 'text/html').expect(200);
  });

  it('puts a working token on pages rendered by the error handler too (tokens are made at render time)', async () => {
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: 'lazycsrf' });
    const agent = await signInAs(app, 'lazycsrf', user.password);
    const notFound = await agent.get('/no-such-page').set('Accept', 'text/html').expect(404);
    await agent
      .post('/logout')
      .type('form')
      .send({ csrf_token: csrfTokenIn(notFound.text) })
      .expect(302);
  });

  it('takes the token from X-CSRFToken or X-CSRF-Token on a JSON POST, and answers JSON 403 without it', async () => {
    const app = buildTestApp(db);
    await buildUser(db.prisma, { username: 'jsonadmin', role: 'admin', password: 'jsonadmin-password' });
    const agent = await signInAs(app, 'jsonadmin', 'jsonadmin-password');
    const denied = await agent.post('/admin/users').send({ username: 'viajson' });
    expect(denied.status).toBe(403);
    expect(denied.body).toEqual({ error: expect.stringContaining('security token'), code: 403 });
    expect(await db.prisma.user.count({ where: { username: 'viajson' } })).toBe(0);

    const token = await csrfTokenOf(agent);
    const created = await agent
      .post('/admin/users')
      .set('X-CSRFToken', token)
      .send({ username: 'viajson' })
      .expect(201);
    // A JSON client gets the generated password in the answer, the only place it is shown.
    expect(created.body).toEqual({
      ok: true,
      username: 'viajson',
      password: expect.stringMatching(/^[A-HJ-NP-Za-km-np-z2-9]{17}$/),
      message: 'Created viajson.',
    });
    await agent.post('/admin/users').set('X-CSRF-Token', token).send({ username: 'viajson2' }).expect(201);
    expect(await db.prisma.user.count({ where: { username: { in: ['viajson', 'viajson2'] } } })).toBe(2);
  });

  // A script was told to "Open the page the form is on again and send it from there": it has no page,
  // and the header it must send was named nowhere.
  it('tells a JSON client without a token, or with one of no use, to send this session’s token in X-CSRFToken', async () => {
    const app = buildTestApp(db);
    await buildUser(db.prisma, { username: 'tokenless', password: 'tokenless-password' });
    const agent = await signInAs(app, 'tokenless', 'tokenless-password');
    const missing = await agent.post('/me/receipt').set('Accept', 'application/json').send({ before: '2025-09-30' });
    expect(missing.status).toBe(403);
    expect(missing.body).toEqual({
      error:
        'The security token (CSRF token) is missing, so nothing was done: send the token of this session in the ' +
        "X-CSRFToken header (or the csrf_token field): it is csrfToken in GET /account's JSON, and the forms of " +
        'its pages hold it as csrf_token.',
      code: 403,
    });
    const wrong = await agent
      .post('/me/receipt')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', 'forged')
      .send({ before: '2025-09-30' });
    expect(wrong.status).toBe(403);
    expect(wrong.body).toEqual({
      error:
        'The security token (CSRF token) is not one of this session, so nothing was done: it was read before the ' +
        "session last signed in or changed its password, or from another session. Read this session's token again " +
        "(csrfToken in GET /account's JSON; the forms of its pages hold it as csrf_token) and send it in the " +
        'X-CSRFToken header.',
      code: 403,
    });
    expect(await db.prisma.receipt.count({ where: { username: 'tokenless' } })).toBe(0);
  });
});

describe('roles', () => {
  it('sends visitors to sign in, non-admins to /me (counted, audited), and answers API clients with 401/403', async () => {
    const metrics = createMetrics();
    const app = buildTestApp(db, { metrics });
    await request(app).get('/admin').set('Accept', 'text/html').expect(302).expect('Location', '/login?next=%2Fadmin');
    await request(app).get('/admin/users').set('Accept', 'application/json').expect(401);

    const user = await buildUser(db.prisma, { username: 'curious' });
    const agent = await signInAs(app, 'curious', user.password);
    await agent.get('/admin/users').set('Accept', 'text/html').expect(302).expect('Location', '/me');
    const json = await agent.get('/admin/users').set('Accept', 'application/json').expect(403);
    expect(json.body).toEqual({ error: 'Only admins can do this.', code: 403 });
    expect(await metricValue(metrics, 'auth_forbidden_redirect_total')).toBe(2);
    // The same page refused twice within the hour is audited once (forbidden-audit-bound.test.ts).
    expect(await db.prisma.auditLog.count({ where: { actor: 'curious', action: 'admin.forbidden' } })).toBe(1);

    await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
    const admin = await signInAs(app, 'boss', 'boss-password');
    const page = await admin.get('/admin').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('Audit log');
  });
});
