import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { sessionsWaitingForLocks } from '../support/lock-waits.js';
import { csrfTokenOf, postLogin } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
});
afterAll(() => db?.drop());

const cookieOf = (setCookies: string[] | string | undefined, name: string) =>
  ([] as string[])
    .concat(setCookies ?? [])
    .map((cookie) => cookie.split(';')[0] as string)
    .find((pair) => pair.startsWith(`${name}=`));

describe('signing out while another tab of the same session is busy', () => {
  it('stays signed out when that tab answers after the sign-out (its session is not written back)', async () => {
    let clock = new Date();
    const app = buildTestApp(db, { now: () => clock });
    const user = await buildUser(db.prisma, { username: 'twotabs' });
    await buildJobs(db, [{ user: 'twotabs', end: '2026-01-10T10:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const { agent, response: signedIn } = await postLogin(app, 'twotabs', user.password);
    expect(signedIn.status).toBe(302);
    const token = await csrfTokenOf(agent);
    const signedInCookie = cookieOf(signedIn.headers['set-cookie'], 'hb.sid');
    expect(signedInCookie).toBeDefined();

    // A minute later: the next request writes the session's last-seen time as it answers.
    clock = new Date(clock.getTime() + 61_000);
    // A receipt of a busy month takes seconds: here it waits on a lock the test holds.
    const blocker = await db.pool.connect();
    let receipt: Promise<{ status: number; headers: Record<string, string> }>;
    try {
      await blocker.query('BEGIN; LOCK TABLE receipts IN SHARE MODE');
      receipt = agent
        .post('/me/receipt')
        .set('Accept', 'text/html')
        .type('form')
        .send({ before: '2026-01-31', csrf_token: token })
        .then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
      // Meanwhile the other tab signs out: the session's row goes.
      const signOut = await agent.post('/logout').type('form').send({ csrf_token: token });
      expect(signOut.status).toBe(302);
      expect(signOut.headers.location).toBe('/login');
    } finally {
      await blocker.query('COMMIT');
      blocker.release();
    }
    // The receipt is made; its answer comes after the sign-out.
    expect((await receipt).status).toBe(303);
    expect(await db.prisma.receipt.count({ where: { username: 'twotabs' } })).toBe(1);

    // Whoever holds the signed-in cookie (the browser, were the late answer to set it again) is signed out.
    const withOldCookie = await request(app)
      .get('/account')
      .set('Accept', 'text/html')
      .set('Cookie', signedInCookie as string);
    expect(withOldCookie.status).toBe(302);
    expect(withOldCookie.headers.location).toBe('/login?next=%2Faccount');
  });

  it('keeps a session an admin signed out by disabling the user signed out, when a request of it answers later', async () => {
    let clock = new Date();
    const app = buildTestApp(db, { now: () => clock });
    await buildUser(db.prisma, { username: 'disabler', role: 'admin', password: 'disabler-password' });
    const user = await buildUser(db.prisma, { username: 'busyone' });
    await buildJobs(db, [{ user: 'busyone', end: '2026-01-10T10:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    const { agent, response: signedIn } = await postLogin(app, 'busyone', user.password);
    expect(signedIn.status).toBe(302);
    const token = await csrfTokenOf(agent);
    const { agent: admin } = await postLogin(app, 'disabler', 'disabler-password');
    const adminToken = await csrfTokenOf(admin);

    clock = new Date(clock.getTime() + 61_000);
    const blocker = await db.pool.connect();
    let receipt: Promise<{ status: number }>;
    try {
      await blocker.query('BEGIN; LOCK TABLE receipts IN SHARE MODE');
      receipt = agent
        .post('/me/receipt')
        .set('Accept', 'text/html')
        .type('form')
        .send({ before: '2026-01-31', csrf_token: token })
        .then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
      await admin
        .post(`/admin/users/${user.id}/disable`)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', adminToken)
        .expect(200);
    } finally {
      await blocker.query('COMMIT');
      blocker.release();
    }
    await receipt;

    // Signed out by the disable, and told why.
    const page = await agent.get('/account').set('Accept', 'text/html');
    expect(page.status).toBe(302);
    const signInPage = await agent.get(page.headers.location as string).set('Accept', 'text/html');
    expect(signInPage.text).toContain('Your account has been disabled. Ask an administrator.');

    // Not signed in again by the enable; no longer told the account is disabled (users-admin.test.ts).
    await admin
      .post(`/admin/users/${user.id}/enable`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', adminToken)
      .expect(200);
    const afterEnable = await agent.get('/account').set('Accept', 'text/html');
    expect(afterEnable.status).toBe(302);
    expect(afterEnable.headers.location).toBe('/login?next=%2Faccount');
    const signInAfterEnable = await agent.get('/login').set('Accept', 'text/html');
    expect(signInAfterEnable.text).not.toContain('has been disabled');
  });
});
