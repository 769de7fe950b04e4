import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADVISORY_LOCK_KEYS } from '../../src/db/advisory-locks.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import * as usersService from '../../src/modules/users/users.service.js';
import { buildUser } from '../support/factories.js';
import { sessionsWaitingForLocks } from '../support/lock-waits.js';
import { type Agent, csrfTokenIn, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp, buildTestConfig } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const DISABLED = 'Your account has been disabled. Ask an administrator.';
const flashOf = (html: string) =>
  /<div class="alert (\w+)" role="status"(?: id="login-flash")?>([^<]*)<\/div>/.exec(html)?.slice(1, 3);

/**
 * Holds the audit chain's lock, so that every audited step waits for it: a sign-in whose password
 * was already checked, and a disable whose sessions were already signed out (its row stays locked).
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

async function signInAdmin(app: ReturnType<typeof buildTestApp>, username: string) {
  await buildUser(db.prisma, { username, role: 'admin', password: `${username}-password` });
  const agent = await signInAs(app, username, `${username}-password`);
  return { agent, token: await csrfTokenOf(agent, '/admin/users') };
}

function setDisabled(admin: { agent: Agent; token: string }, id: number, action: 'disable' | 'enable') {
  return admin.agent
    .post(`/admin/users/${id}/${action}`)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', admin.token)
    .send({})
    .then((response) => response);
}

describe('a session signed in racing an admin disabling the account', () => {
  it('is not signed in again when the account is enabled, however the sign-in and the disable interleave', async () => {
    const app = buildTestApp(db);
    const admin = await signInAdmin(app, 'warden');
    const user = await buildUser(db.prisma, { username: 'leaver' });
    const intruder = request.agent(app);
    const form = await intruder.get('/login').set('Accept', 'text/html');

    const release = await holdAuditLock();
    let signIn: Promise<request.Response>;
    let disable: Promise<request.Response>;
    try {
      // The password is checked and right (the account was enabled); the sign-in waits to audit it.
      signIn = intruder
        .post('/login')
        .set('Accept', 'text/html')
        .type('form')
        .send({ username: 'leaver', password: user.password, csrf_token: csrfTokenIn(form.text) })
        .then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
      // The disable has signed out the sessions there are and waits to audit, the user's row locked.
      disable = setDisabled(admin, user.id, 'disable');
      expect(await sessionsWaitingForLocks(db.pool, 10_000, 2)).toBe(2);
    } finally {
      await release();
    }
    // The sign-in's session row is written around the disable's commit, after its sign-out.
    expect((await signIn).status).toBe(302);
    expect((await disable).status).toBe(200);

    expect((await setDisabled(admin, user.id, 'enable')).status).toBe(200);
    const page = await intruder.get('/account').set('Accept', 'text/html');
    expect(page.status).toBe(302);
    expect(page.headers.location).toBe('/login?next=%2Faccount');
    expect((await intruder.get('/me').set('Accept', 'application/json')).status).toBe(401);
    // The user signs in again as anyone would once enabled.
    await signInAs(app, 'leaver', user.password);
  });

  it('tells whoever holds such a session that the account is disabled while it is', async () => {
    const app = buildTestApp(db);
    const admin = await signInAdmin(app, 'warden2');
    const user = await buildUser(db.prisma, { username: 'leaver2' });
    const intruder = request.agent(app);
    const form = await intruder.get('/login').set('Accept', 'text/html');

    const release = await holdAuditLock();
    let signIn: Promise<request.Response>;
    let disable: Promise<request.Response>;
    try {
      signIn = intruder
        .post('/login')
        .set('Accept', 'text/html')
        .type('form')
        .send({ username: 'leaver2', password: user.password, csrf_token: csrfTokenIn(form.text) })
        .then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
      disable = setDisabled(admin, user.id, 'disable');
      expect(await sessionsWaitingForLocks(db.pool, 10_000, 2)).toBe(2);
    } finally {
      await release();
    }
    expect((await signIn).status).toBe(302);
    expect((await disable).status).toBe(200);

    const json = await intruder.get('/me').set('Accept', 'application/json');
    expect(json.body).toEqual({ error: DISABLED, code: 401 });
    const page = await intruder.get('/account').set('Accept', 'text/html');
    expect(page.status).toBe(302);
    const login = await intruder.get(page.headers.location as string).set('Accept', 'text/html');
    expect(flashOf(login.text)).toEqual(['error', DISABLED]);
    const again = await intruder
      .post('/login')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', csrfTokenIn(login.text))
      .send({ username: 'leaver2', password: user.password });
    expect(again.body).toEqual({ error: DISABLED, code: 401 });

    expect((await setDisabled(admin, user.id, 'enable')).status).toBe(200);
    expect((await intruder.get('/me').set('Accept', 'application/json')).status).toBe(401);
  });

  it('is not signed in again by a password change that proved the password as the disable committed', async () => {
    const app = buildTestApp(db);
    const admin = await signInAdmin(app, 'warden3');
    const user = await buildUser(db.prisma, { username: 'changer' });
    const owner = await signInAs(app, 'changer', user.password);
    const ownerToken = await csrfTokenOf(owner);

    const release = await holdAuditLock();
    let disable: Promise<request.Response>;
    let change: Promise<request.Response>;
    try {
      // The disable has signed out the owner's session and waits to audit, the user's row locked.
      disable = setDisabled(admin, user.id, 'disable');
      expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
      // The change read its session and the account before the disable committed, proved the
      // password, and waits on the user's row to store the new one.
      change = owner
        .post('/account/password')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', ownerToken)
        .send({ current: user.password, password: 'changed-password-1', confirm: 'changed-password-1' })
        .then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool, 10_000, 2)).toBe(2);
    } finally {
      await release();
    }
    expect((await disable).status).toBe(200);
    expect((await change).status).toBe(200);

    expect((await setDisabled(admin, user.id, 'enable')).status).toBe(200);
    expect((await owner.get('/account').set('Accept', 'application/json')).status).toBe(401);
    await signInAs(app, 'changer', 'changed-password-1');
  });

  it('refuses a password change of an account disabled after its session was read, changing nothing', async () => {
    const config = buildTestConfig(db.url);
    const auth = {
      db,
      metrics: createMetrics({ hasProcessMetrics: false }),
      lockout: config.auth,
      now: () => new Date(),
    };
    const user = await buildUser(db.prisma, { username: 'latecomer' });
    const before = await db.prisma.user.findUniqueOrThrow({ where: { id: user.id } });
    // The request read its session while the account was enabled; the disable committed since.
    await db.prisma.user.update({ where: { id: user.id }, data: { isDisabled: true } });

    const change = usersService.changeOwnPassword(
      auth,
      { id: user.id, username: user.username, role: 'user' },
      { current: user.password, password: 'changed-password-2', sessionId: 'the-session' },
      { actor: user.username, ip: '127.0.0.1', userAgent: null },
    );
    await expect(change).rejects.toThrow(DISABLED);
    const after = await db.prisma.user.findUniqueOrThrow({ where: { id: user.id } });
    expect(after.passwordHash).toBe(before.passwordHash);
    const audited = await db.prisma.auditLog.findMany({
      where: { action: 'user.password_change', target: 'user:latecomer' },
    });
    expect(audited.map((entry) => [entry.status, entry.details])).toEqual([['denied', { reason: 'disabled' }]]);
  });
});
