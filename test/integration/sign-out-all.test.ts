import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, postLogin, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A security review: someone who thinks they left a session signed in on a shared machine (a lab PC)
// could end it only by changing their password. /account now signs out every other session, and an
// admin every session of a user, from /admin/users.
const OWN_NOTICE =
  'Every other session of your account was signed out from another session, so this one was signed out. Sign in again.';
const ADMIN_NOTICE =
  'An administrator signed out every session of your account, so this one was signed out. Sign in again.';

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;
let adminId: number;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  const built = await buildUser(db.prisma, { username: 'soa-chief', role: 'admin', password: 'soa-chief-password' });
  adminId = built.id;
  app = buildTestApp(db);
  admin = await signInAs(app, 'soa-chief', 'soa-chief-password');
});
afterAll(() => db?.drop());

/** A new user signed in twice: the office computer and the lab computer left signed in. */
async function twoSessionsOf(username: string) {
  const user = await buildUser(db.prisma, { username });
  const office = await postLogin(app, username, user.password);
  expect(office.response.status).toBe(302);
  const lab = await signInAs(app, username, user.password);
  return { user, office: office.agent, officeCookie: sessionCookieOf(office.response), lab };
}

/** The session cookie a response set (`hb.sid=…`), to send again from outside the agent. */
function sessionCookieOf(response: request.Response): string {
  const cookies = ([] as string[]).concat(response.headers['set-cookie'] ?? []);
  const cookie = cookies.find((line) => /^(__Host-)?hb\.sid=/.test(line));
  if (!cookie) throw new Error(`no session cookie in ${cookies.join(' | ')}`);
  return cookie.split(';')[0] as string;
}

const entriesOf = (target: string) =>
  db.prisma.auditLog.findMany({
    where: { target, action: 'user.sessions_end' },
    orderBy: { id: 'asc' },
    select: { actor: true, status: true, details: true },
  });

/** Whether `agent` is still signed in, as a script asks (`GET /account` as JSON). */
async function whoIs(agent: Agent) {
  const response = await agent.get('/account').set('Accept', 'application/json');
  // The session's CSRF token beside who it is: not what these tests compare.
  const { csrfToken: _csrfToken, ...body } = response.body as { csrfToken?: unknown };
  return { status: response.status, body: body as unknown };
}

describe('Sign out of all other sessions, on /account', () => {
  it('ends the other session (it is told why) and keeps this one, under a new session id', async () => {
    const { office, officeCookie, lab } = await twoSessionsOf('soa-json');
    const response = await office
      .post('/account/sign-out-others')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(office));
    expect(response.status, response.text.slice(0, 300)).toBe(200);
    expect(response.body).toEqual({
      ok: true,
      endedSessions: 1,
      message: '1 other session was signed out. This one stays signed in.',
    });

    // The acting session still works; the other gets the signed-out answer, saying why.
    expect(await whoIs(office)).toEqual({ status: 200, body: { username: 'soa-json', role: 'user' } });
    expect(await whoIs(lab)).toEqual({ status: 401, body: { error: OWN_NOTICE, code: 401 } });
    // The old id of the acting session is no session any more: a copy of that cookie is out too.
    const old = await request(app).get('/account').set('Accept', 'application/json').set('Cookie', officeCookie);
    expect(old.status).toBe(401);
    expect(await entriesOf('user:soa-json')).toEqual([
      { actor: 'soa-json', status: 'ok', details: { endedSessions: 1 } },
    ]);
  });

  it('from the page: the confirmation on /account, and the other browser sent to sign in with the reason', async () => {
    const { office, lab } = await twoSessionsOf('soa-form');
    const labToken = await csrfTokenOf(lab);
    const account = await office.get('/account').set('Accept', 'text/html').expect(200);
    expect(account.text).toContain('<form method="post" action="/account/sign-out-others" data-submit-once>');

    const response = await office
      .post('/account/sign-out-others')
      .set('Accept', 'text/html')
      .type('form')
      .send({ csrf_token: await csrfTokenOf(office) });
    expect(response.status).toBe(303);
    expect(response.headers.location).toBe('/account');
    const page = await office.get('/account').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('1 other session was signed out. This one stays signed in.');

    // A form the lab computer sends with the token it had is refused, saying why; a page sends it to sign in.
    const refused = await lab
      .post('/account/sign-out-others')
      .set('Accept', 'text/html')
      .type('form')
      .send({ csrf_token: labToken });
    expect(refused.status).toBe(403);
    expect(refused.text).toContain('so this one was signed out and this form was not sent');
    const visit = await lab.get('/me').set('Accept', 'text/html');
    expect(visit.status).toBe(302);
    expect(visit.headers.location).toMatch(/^\/login/);
    const signIn = await lab.get('/login').set('Accept', 'text/html');
    expect(signIn.text).toContain('Every other session of your account was signed out from another session');
    // Only the sign-out the office made is audited: the lab's refused form ended nothing.
    expect(await entriesOf('user:soa-form')).toEqual([
      { actor: 'soa-form', status: 'ok', details: { endedSessions: 1 } },
    ]);
  });

  it('counts only live sessions, as a password change does, and says so when there was none', async () => {
    const user = await buildUser(db.prisma, { username: 'soa-count' });
    await signInAs(app, 'soa-count', user.password);
    await db.prisma.$executeRaw`UPDATE "session" SET expire = now() - interval '2 days'
      WHERE sess -> 'passport' ->> 'user' = ${String(user.id)}`;
    const alone = await signInAs(app, 'soa-count', user.password);
    const response = await alone
      .post('/account/sign-out-others')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(alone))
      .expect(200);
    expect(response.body).toEqual({
      ok: true,
      endedSessions: 0,
      message: 'No other session of yours was signed in. This one stays signed in.',
    });
    expect(await entriesOf('user:soa-count')).toEqual([
      { actor: 'soa-count', status: 'ok', details: { endedSessions: 0 } },
    ]);
    expect((await whoIs(alone)).status).toBe(200);
  });

  it('audits one that ended none once an hour: a script repeating it appended an entry each time', async () => {
    // It needs no password and has no rate limit, and the audit log keeps every entry for good: a
    // researcher's loop of it (about 20 a second with curl) wrote that many entries nobody may delete.
    const user = await buildUser(db.prisma, { username: 'soa-repeat' });
    const alone = await signInAs(app, 'soa-repeat', user.password);
    for (let press = 0; press < 5; press += 1) {
      const response = await alone
        .post('/account/sign-out-others')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(alone))
        .expect(200);
      expect(response.body).toMatchObject({ ok: true, endedSessions: 0 });
    }
    expect(await entriesOf('user:soa-repeat')).toEqual([
      { actor: 'soa-repeat', status: 'ok', details: { endedSessions: 0 } },
    ]);
    // One that ends a session is audited whenever it comes.
    const lab = await signInAs(app, 'soa-repeat', user.password);
    await alone
      .post('/account/sign-out-others')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(alone))
      .expect(200, {
        ok: true,
        endedSessions: 1,
        message: '1 other session was signed out. This one stays signed in.',
      });
    expect((await whoIs(lab)).status).toBe(401);
    expect(await entriesOf('user:soa-repeat')).toEqual([
      { actor: 'soa-repeat', status: 'ok', details: { endedSessions: 0 } },
      { actor: 'soa-repeat', status: 'ok', details: { endedSessions: 1 } },
    ]);
  });

  it.each([
    ['no CSRF token', undefined],
    ['a CSRF token of another session', 'other'],
  ])('with %s is refused (403) and ends nothing', async (_, token) => {
    const username = `soa-csrf-${token ?? 'none'}`;
    const { office, lab } = await twoSessionsOf(username);
    const post = office.post('/account/sign-out-others').set('Accept', 'application/json');
    const response = await (token ? post.set('X-CSRFToken', await csrfTokenOf(lab)) : post);
    expect(response.status).toBe(403);
    expect(response.body.code).toBe(403);
    expect((await whoIs(lab)).status).toBe(200);
    expect((await whoIs(office)).status).toBe(200);
    expect(await entriesOf(`user:${username}`)).toEqual([]);
  });

  it('a visitor is refused and nothing is audited', async () => {
    const response = await request(app).post('/account/sign-out-others').set('Accept', 'application/json');
    expect(response.status).toBe(403);
    expect(await db.prisma.auditLog.count({ where: { action: 'user.sessions_end', actor: 'anonymous' } })).toBe(0);
  });
});

describe('Sign out all sessions of a user, on /admin/users', () => {
  it('ends every session of the user, each told an administrator did it, audited with the admin as actor', async () => {
    const { user, office, lab } = await twoSessionsOf('soa-target');
    const page = await admin.get('/admin/users?q=soa-target').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain(`action="/admin/users/${user.id}/sign-out-all"`);

    const response = await admin
      .post(`/admin/users/${user.id}/sign-out-all`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin));
    expect(response.status, response.text.slice(0, 300)).toBe(200);
    expect(response.body).toEqual({
      ok: true,
      user: { id: user.id, username: 'soa-target', role: 'user', isDisabled: false },
      endedSessions: 2,
      message: '2 sessions of soa-target were signed out.',
    });
    for (const agent of [office, lab]) {
      expect(await whoIs(agent)).toEqual({ status: 401, body: { error: ADMIN_NOTICE, code: 401 } });
    }
    expect(await entriesOf('user:soa-target')).toEqual([
      { actor: 'soa-chief', status: 'ok', details: { endedSessions: 2 } },
    ]);
    // The admin's own session goes on.
    expect((await whoIs(admin)).status).toBe(200);
  });

  it('from the page: back at the user with the confirmation', async () => {
    const { user } = await twoSessionsOf('soa-target-form');
    const response = await admin
      .post(`/admin/users/${user.id}/sign-out-all`)
      .set('Accept', 'text/html')
      .type('form')
      .send({ csrf_token: await csrfTokenOf(admin) });
    expect(response.status).toBe(303);
    expect(response.headers.location).toBe('/admin/users?q=soa-target-form');
    const page = await admin.get(response.headers.location as string).set('Accept', 'text/html');
    expect(page.text).toContain('2 sessions of soa-target-form were signed out.');
  });

  it('an admin doing it to their own account ends their other sessions only', async () => {
    await buildUser(db.prisma, { username: 'soa-self', role: 'admin', password: 'soa-self-password' });
    const here = await signInAs(app, 'soa-self', 'soa-self-password');
    const elsewhere = await signInAs(app, 'soa-self', 'soa-self-password');
    const self = await db.prisma.user.findUniqueOrThrow({ where: { username: 'soa-self' } });
    const page = await here.get('/admin/users?q=soa-self').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('Sign out your other sessions</button>');

    const response = await here
      .post(`/admin/users/${self.id}/sign-out-all`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(here));
    expect(response.status, response.text.slice(0, 300)).toBe(200);
    expect(response.body).toMatchObject({
      ok: true,
      endedSessions: 1,
      message: '1 other session was signed out. This one stays signed in.',
    });
    expect((await whoIs(here)).status).toBe(200);
    expect(await whoIs(elsewhere)).toEqual({ status: 401, body: { error: OWN_NOTICE, code: 401 } });
    expect(await entriesOf('user:soa-self')).toEqual([
      { actor: 'soa-self', status: 'ok', details: { endedSessions: 1 } },
    ]);
  });

  it('a disabled user: works, 0 sessions (the disable ended them)', async () => {
    const { user } = await twoSessionsOf('soa-disabled');
    await admin
      .post(`/admin/users/${user.id}/disable`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .expect(200);
    const response = await admin
      .post(`/admin/users/${user.id}/sign-out-all`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .expect(200);
    expect(response.body).toMatchObject({
      endedSessions: 0,
      message: 'No session of soa-disabled was signed in, so none was signed out.',
    });
    expect(await entriesOf('user:soa-disabled')).toEqual([
      { actor: 'soa-chief', status: 'ok', details: { endedSessions: 0 } },
    ]);
  });

  it('an unknown user id is a 404 and audits nothing', async () => {
    const before = await db.prisma.auditLog.count({ where: { action: 'user.sessions_end' } });
    const response = await admin
      .post('/admin/users/999999/sign-out-all')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin));
    expect(response.status).toBe(404);
    expect(response.body).toEqual({ error: 'User #999999 was not found.', code: 404 });
    expect(await db.prisma.auditLog.count({ where: { action: 'user.sessions_end' } })).toBe(before);
  });

  it('without the CSRF token (403), or from a user who is not an admin (403), nothing ends', async () => {
    const { user, office, lab } = await twoSessionsOf('soa-untouched');
    const noToken = await admin.post(`/admin/users/${user.id}/sign-out-all`).set('Accept', 'application/json');
    expect(noToken.status).toBe(403);
    const notAdmin = await office
      .post(`/admin/users/${adminId}/sign-out-all`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(office));
    expect(notAdmin.status).toBe(403);
    for (const agent of [office, lab, admin]) expect((await whoIs(agent)).status).toBe(200);
    expect(await entriesOf('user:soa-untouched')).toEqual([]);
    expect(await entriesOf('user:soa-chief')).toEqual([]);
  });
});

// An admin signs a user out everywhere (or resets their password), then disables them: the browsers
// signed out first were told only the first reason, since the sign-out took the user's id off their
// rows and the disable found none of them. The later, weightier reason wins.
describe('A disable after the sessions were signed out', () => {
  const DISABLED = { error: 'Your account has been disabled. Ask an administrator.', code: 401 };

  async function disable(userId: number) {
    return admin
      .post(`/admin/users/${userId}/disable`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .expect(200);
  }

  it('after Sign out all sessions: each signed-out session is told the account is disabled', async () => {
    const { user, office, lab } = await twoSessionsOf('soa-then-disabled');
    await admin
      .post(`/admin/users/${user.id}/sign-out-all`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .expect(200);
    for (const agent of [office, lab]) {
      expect(await whoIs(agent)).toEqual({ status: 401, body: { error: ADMIN_NOTICE, code: 401 } });
    }

    const disabled = await disable(user.id);
    // Counted as sign-outs are, live signed-in sessions only: these two were signed out already.
    expect(disabled.body).toMatchObject({ ok: true, user: { isDisabled: true } });
    const entry = await db.prisma.auditLog.findFirstOrThrow({
      where: { target: 'user:soa-then-disabled', action: 'user.disable' },
      select: { details: true },
    });
    expect(entry.details).toEqual({ endedSessions: 0 });
    for (const agent of [office, lab]) expect(await whoIs(agent)).toEqual({ status: 401, body: DISABLED });
    // The sign-in page says so, and a sign-in for that username from the session is told the same.
    const signIn = await office.get('/login').set('Accept', 'text/html');
    expect(signIn.text).toContain('Your account has been disabled. Ask an administrator.');
    expect(signIn.text).not.toContain('An administrator signed out every session');
    const { response: retry } = await postLogin(app, 'soa-then-disabled', user.password, { agent: lab });
    expect(retry.status).toBe(401);
    expect(retry.text).toContain('Your account has been disabled. Ask an administrator.');

    // Enabled again, such a session is no session at all, as every session a disable signed out.
    await admin
      .post(`/admin/users/${user.id}/enable`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .expect(200);
    for (const agent of [office, lab]) {
      const answer = await whoIs(agent);
      expect(answer.status).toBe(401);
      expect(answer.body).not.toEqual(DISABLED);
      expect(answer.body).not.toEqual({ error: ADMIN_NOTICE, code: 401 });
    }
  });

  it('after a password reset: the session it signed out is told the account is disabled', async () => {
    const { user, office, lab } = await twoSessionsOf('soa-reset-then-disabled');
    await admin
      .post(`/admin/users/${user.id}/password`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ password: 'a-new-long-enough-password' })
      .expect(200);
    expect((await whoIs(office)).body).toMatchObject({ error: expect.stringContaining('reset your password') });

    await disable(user.id);
    for (const agent of [office, lab]) expect(await whoIs(agent)).toEqual({ status: 401, body: DISABLED });
  });

  it('another user signed out the same way keeps their own reason', async () => {
    const { user } = await twoSessionsOf('soa-disabled-alone');
    const { user: bystander, office } = await twoSessionsOf('soa-bystander');
    for (const id of [user.id, bystander.id]) {
      await admin
        .post(`/admin/users/${id}/sign-out-all`)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(admin))
        .expect(200);
    }
    await disable(user.id);
    expect(await whoIs(office)).toEqual({ status: 401, body: { error: ADMIN_NOTICE, code: 401 } });
  });
});
