import { pbkdf2Sync } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADVISORY_LOCK_KEYS } from '../../src/db/advisory-locks.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { sessionsWaitingForLocks } from '../support/lock-waits.js';
import { type Agent, csrfTokenIn, csrfTokenOf, postLogin, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/** What every session a password change signed out is told (PASSWORD_SIGN_OUTS.password_change). */
const CHANGED =
  'Your password was changed in another session, so this one was signed out. Sign in with the new password.';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

/** A sign-in form of a browser of its own: the agent and the token it will post. */
async function openSignInForm(app: ReturnType<typeof buildTestApp>): Promise<{ agent: Agent; token: string }> {
  const agent = request.agent(app);
  const form = await agent.get('/login').set('Accept', 'text/html');
  return { agent, token: csrfTokenIn(form.text) };
}

async function postLoginWith(app: ReturnType<typeof buildTestApp>, username: string, password: string) {
  const { agent, token } = await openSignInForm(app);
  return agent.post('/login').set('Accept', 'text/html').type('form').send({ username, password, csrf_token: token });
}

/**
 * Holds the audit chain's lock, so that every audited step waits for it: a sign-in whose password
 * was already checked, and a password change whose sessions were already deleted.
 */
async function holdAuditLock() {
  const client = await db.pool.connect();
  await client.query('BEGIN');
  await client.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCK_KEYS.auditAppend]);
  return async () => {
    await client.query('COMMIT');
    client.release();
  };
}

describe('a password change racing a sign-in with the old password', () => {
  it('leaves no session of that sign-in signed in once the change is made, however the two interleave', async () => {
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: 'racer' });
    const owner = await signInAs(app, 'racer', user.password);
    const ownerToken = await csrfTokenOf(owner);
    const intruder = await openSignInForm(app);

    const release = await holdAuditLock();
    let signIn: Promise<request.Response>;
    let change: Promise<request.Response>;
    try {
      // The old password is checked and right; the sign-in waits to audit its success.
      signIn = intruder.agent
        .post('/login')
        .set('Accept', 'text/html')
        .type('form')
        .send({ username: 'racer', password: user.password, csrf_token: intruder.token })
        .then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
      // The change sets the new password and deletes the other sessions, then waits to audit.
      change = owner
        .post('/account/password')
        .set('Accept', 'text/html')
        .type('form')
        .send({
          current: user.password,
          password: 'brand-new-password-1',
          confirm: 'brand-new-password-1',
          csrf_token: ownerToken,
        })
        .then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool, 10_000, 2)).toBe(2);
    } finally {
      await release();
    }
    // The sign-in was right when its password was checked; its session is written after the change's deletion.
    expect((await signIn).status).toBe(302);
    expect((await change).status).toBe(303);

    const intruderPage = await intruder.agent.get('/account').set('Accept', 'text/html');
    expect(intruderPage.status).toBe(302);
    expect(intruderPage.headers.location).toMatch(/^\/login/);
    // The session that made the change stays signed in, and the new password signs in.
    expect((await owner.get('/account').set('Accept', 'text/html')).status).toBe(200);
    await signInAs(app, 'racer', 'brand-new-password-1');
  });

  // Its session was answered as no session at all: "Sign in to continue." to a script, the sign-in page
  // with no word why to a browser, where every other session the change signed out says why.
  it("signs that sign-in's session out with the change's message, to a script and a browser", async () => {
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: 'racer-told' });
    const owner = await signInAs(app, 'racer-told', user.password);
    const ownerToken = await csrfTokenOf(owner);
    const intruder = await openSignInForm(app);

    const release = await holdAuditLock();
    let signIn: Promise<request.Response>;
    let change: Promise<request.Response>;
    try {
      // The old password is checked and right; the sign-in waits to audit its success.
      signIn = intruder.agent
        .post('/login')
        .set('Accept', 'text/html')
        .type('form')
        .send({ username: 'racer-told', password: user.password, csrf_token: intruder.token })
        .then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
      // The change sets the new password and signs the other sessions out, then waits to audit.
      change = owner
        .post('/account/password')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', ownerToken)
        .send({ current: user.password, password: 'told-new-password-1', confirm: 'told-new-password-1' })
        .then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool, 10_000, 2)).toBe(2);
    } finally {
      await release();
    }
    // The sign-in's session row is written after the change signed the others out.
    expect((await signIn).status).toBe(302);
    expect((await change).status).toBe(200);
    const signedOutRows = async () =>
      (
        await db.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM "session"
            WHERE sess ->> 'signedOutBy' = 'password_change' AND sess -> 'passport' IS NULL`,
        )
      ).rows[0]?.n;
    const signedOutBefore = (await signedOutRows()) ?? 0;

    for (const path of ['/me', '/account']) {
      const json = await intruder.agent.get(path).set('Accept', 'application/json');
      expect([json.status, json.body]).toEqual([401, { error: CHANGED, code: 401 }]);
    }
    const page = await intruder.agent.get('/account').set('Accept', 'text/html');
    expect(page.status).toBe(302);
    const signInPage = await intruder.agent.get(page.headers.location as string).set('Accept', 'text/html');
    expect(visibleTextOf(signInPage.text)).toContain(CHANGED);
    // A form sent from it with the token it had is refused as the change's other sessions' are.
    const form = await intruder.agent
      .post('/me/receipt')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', ownerToken)
      .send({ before: '2026-01-31' });
    expect([form.status, form.body.error]).toEqual([
      403,
      'Your password was changed in another session, so this one was signed out and this form was not sent. ' +
        'Sign in with the new password, then send it again.',
    ]);
    // Its row is signed out as the change's other sessions are, not only answered as if it were.
    expect(await signedOutRows()).toBe(signedOutBefore + 1);
    // The owner's session goes on, and the new password signs in on that browser.
    await owner.get('/account').set('Accept', 'application/json').expect(200);
    const { response } = await postLogin(app, 'racer-told', 'told-new-password-1', { agent: intruder.agent });
    expect(response.status).toBe(302);
    await intruder.agent.get('/account').set('Accept', 'application/json').expect(200);
  });

  it('leaves no session of that sign-in signed in after an admin reset, too', async () => {
    const app = buildTestApp(db);
    await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password-1' });
    const user = await buildUser(db.prisma, { username: 'resetme' });
    const admin = await signInAs(app, 'boss', 'boss-password-1');
    const adminToken = await csrfTokenOf(admin, '/admin/users');
    const intruder = await openSignInForm(app);

    const release = await holdAuditLock();
    let signIn: Promise<request.Response>;
    let reset: Promise<request.Response>;
    try {
      signIn = intruder.agent
        .post('/login')
        .set('Accept', 'text/html')
        .type('form')
        .send({ username: 'resetme', password: user.password, csrf_token: intruder.token })
        .then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
      reset = admin
        .post(`/admin/users/${user.id}/password`)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', adminToken)
        .send({ password: 'reset-password-12' })
        .then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool, 10_000, 2)).toBe(2);
    } finally {
      await release();
    }
    expect((await signIn).status).toBe(302);
    expect((await reset).status).toBe(200);

    const intruderPage = await intruder.agent.get('/account').set('Accept', 'text/html');
    expect(intruderPage.status).toBe(302);
    expect(intruderPage.headers.location).toMatch(/^\/login/);
    await signInAs(app, 'resetme', 'reset-password-12');
  });

  it('keeps the new password when a sign-in upgrading the old hash lands after the change', async () => {
    const app = buildTestApp(db);
    await buildUser(db.prisma, { username: 'boss2', role: 'admin', password: 'boss2-password-1' });
    // Imported from the earlier system: the next sign-in stores it again under argon2id.
    const salt = 'abcdefgh';
    const legacy = `pbkdf2:sha256:1000$${salt}$${pbkdf2Sync('imported-password', salt, 1000, 32, 'sha256').toString('hex')}`;
    const user = await db.prisma.user.create({
      data: { username: 'imported', passwordHash: legacy, passwordChangedAt: new Date() },
    });
    const admin = await signInAs(app, 'boss2', 'boss2-password-1');
    const adminToken = await csrfTokenOf(admin, '/admin/users');
    const intruder = await openSignInForm(app);

    const release = await holdAuditLock();
    let reset: Promise<request.Response>;
    let signIn: Promise<request.Response>;
    try {
      // The reset has set the new password (its row stays locked) and waits to audit it.
      reset = admin
        .post(`/admin/users/${user.id}/password`)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', adminToken)
        .send({ password: 'after-reset-pass-1' })
        .then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
      // The sign-in reads the old hash (the reset is not committed), finds the old password right,
      // and waits on the user's row to store it under argon2id.
      signIn = intruder.agent
        .post('/login')
        .set('Accept', 'text/html')
        .type('form')
        .send({ username: 'imported', password: 'imported-password', csrf_token: intruder.token })
        .then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool, 10_000, 2)).toBe(2);
    } finally {
      await release();
    }
    expect((await reset).status).toBe(200);
    expect((await signIn).status).toBe(302);
    expect((await intruder.agent.get('/account').set('Accept', 'text/html')).status).toBe(302);

    await signInAs(app, 'imported', 'after-reset-pass-1');
    const old = await postLoginWith(app, 'imported', 'imported-password');
    expect(old.status).toBe(401);
  });

  it('of two changes proving the same old password at once, takes only the first', async () => {
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: 'twochanges' });
    const owner = await signInAs(app, 'twochanges', user.password);
    // Someone else holds a session of the account and knows its password, too.
    const intruder = await signInAs(app, 'twochanges', user.password);
    const ownerToken = await csrfTokenOf(owner);
    const intruderToken = await csrfTokenOf(intruder);
    const changeFrom = (agent: Agent, token: string, password: string) =>
      agent
        .post('/account/password')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', token)
        .send({ current: user.password, password, confirm: password })
        .then((response) => response);

    const release = await holdAuditLock();
    let owners: Promise<request.Response>;
    let intruders: Promise<request.Response>;
    try {
      // The owner's change has set the new password (its row stays locked) and waits to audit it.
      owners = changeFrom(owner, ownerToken, 'owners-new-password');
      expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
      // The intruder's proved the old password (the owner's is not committed) and waits on the row.
      intruders = changeFrom(intruder, intruderToken, 'intruders-password');
      expect(await sessionsWaitingForLocks(db.pool, 10_000, 2)).toBe(2);
    } finally {
      await release();
    }
    expect((await owners).status).toBe(200);
    const refused = await intruders;
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('The current password is not right: it was changed while this form was sent.');
    const audited = await db.prisma.auditLog.findMany({
      where: { action: 'user.password_change', target: 'user:twochanges' },
      orderBy: { id: 'asc' },
    });
    expect(audited.map((entry) => [entry.status, entry.details])).toEqual([
      ['ok', { endedSessions: 1 }],
      ['failed', { reason: 'changed_meanwhile' }],
    ]);

    await signInAs(app, 'twochanges', 'owners-new-password');
    expect((await postLoginWith(app, 'twochanges', 'intruders-password')).status).toBe(401);
    expect((await owner.get('/account').set('Accept', 'text/html')).status).toBe(200);
    expect((await intruder.get('/account').set('Accept', 'text/html')).status).toBe(302);
  });
});
