import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../src/modules/audit/audit.service.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { buildUser } from '../support/factories.js';
import { csrfTokenOf, postLogin, signInAs } from '../support/sign-in.js';
import { buildTestApp, metricValue } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

let clock: Date;
beforeEach(() => {
  clock = new Date('2026-06-01T08:00:00Z');
});
// Per address and per username alike: five failures lock both rows of the account (the username's
// for AUTH_USER_LOCK_SEC, 15 minutes, the one the page shows).
const lockoutApp = (metrics = createMetrics({ hasProcessMetrics: false })) =>
  buildTestApp(db, { now: () => clock, env: { AUTH_USER_MAX_FAILS: '5' }, metrics });

async function lockOut(app: ReturnType<typeof lockoutApp>, username: string) {
  for (let attempt = 1; attempt <= 5; attempt++) await postLogin(app, username, `wrong-guess-${attempt}`);
  const locked = await postLogin(app, username, `${username}-password`);
  expect(locked.response.text).toContain('Too many failed sign-ins.');
}

async function adminOf(app: ReturnType<typeof lockoutApp>, username: string) {
  await buildUser(db.prisma, { username, role: 'admin', password: `${username}-password` });
  return signInAs(app, username, `${username}-password`);
}

const throttleRows = (username: string) => db.prisma.authThrottle.count({ where: { username } });

describe('an admin lifts a sign-in lockout', () => {
  it('the users page shows the lock and its end; Unlock sign-in clears it, audited with who and whom', async () => {
    const metrics = createMetrics({ hasProcessMetrics: false });
    const app = lockoutApp(metrics);
    const admin = await adminOf(app, 'unlocker');
    const user = await buildUser(db.prisma, { username: 'lockedout' });
    await lockOut(app, 'lockedout');
    const endedBefore = await metricValue(metrics, 'auth_lockout_end_total');

    const page = await admin.get('/admin/users?q=lockedout').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('sign-in locked until 2026-06-01 08:15');
    expect(page.text).toContain(`action="/admin/users/${user.id}/unlock"`);

    const unlocked = await admin
      .post(`/admin/users/${user.id}/unlock`)
      .type('form')
      .send({ csrf_token: await csrfTokenOf(admin) })
      .expect(303);
    expect(unlocked.headers.location).toBe('/admin/users?q=lockedout');
    const after = await admin.get('/admin/users?q=lockedout').set('Accept', 'text/html');
    expect(after.text).toContain('Sign-in of lockedout unlocked.');
    expect(after.text).not.toContain('sign-in locked until');
    expect(after.text).not.toContain(`action="/admin/users/${user.id}/unlock"`);
    expect(await throttleRows('lockedout')).toBe(0);
    // Both locks (from that address, and from every address) ended, as the pruner counts locks
    // that run out; it never sees the rows the unlock deleted.
    expect(await metricValue(metrics, 'auth_lockout_end_total')).toBe(endedBefore + 2);

    // The right password works at once, with no waiting for the lock to end.
    await signInAs(app, 'lockedout', user.password);
    const entry = await db.prisma.auditLog.findFirstOrThrow({ where: { action: 'user.unlock_sign_in' } });
    expect(entry).toMatchObject({ actor: 'unlocker', target: 'user:lockedout', status: 'ok' });
    expect(await db.prisma.auditLog.count({ where: { action: 'user.unlock_sign_in', target: 'user:lockedout' } })).toBe(
      1,
    );
    expect(entry.details).toEqual({ lockedUntil: '2026-06-01T08:15:00.000Z' });
    expect((await verifyAuditChain(db.prisma)).isIntact).toBe(true);
  });

  it('answers a JSON client with the user and whether a lock was lifted', async () => {
    const app = lockoutApp();
    const admin = await adminOf(app, 'jsonunlocker');
    const user = await buildUser(db.prisma, { username: 'jsonlocked' });
    await lockOut(app, 'jsonlocked');
    const answer = await admin
      .post(`/admin/users/${user.id}/unlock`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({})
      .expect(200);
    expect(answer.body).toMatchObject({
      ok: true,
      user: { id: user.id, username: 'jsonlocked' },
      wasLocked: true,
      message: 'Sign-in of jsonlocked unlocked.',
    });
    const again = await admin
      .post(`/admin/users/${user.id}/unlock`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({})
      .expect(200);
    expect(again.body).toMatchObject({ wasLocked: false, message: 'Sign-in of jsonlocked was not locked.' });
  });

  it('on an account with no lock running, says so as a notice and changes and audits nothing', async () => {
    const app = lockoutApp();
    const admin = await adminOf(app, 'idleunlocker');
    const user = await buildUser(db.prisma, { username: 'notlocked' });
    // Two failures: counted, short of a lock. They stay as they were.
    for (let attempt = 1; attempt <= 2; attempt++) await postLogin(app, 'notlocked', `wrong-guess-${attempt}`);
    const counters = await db.prisma.authThrottle.findMany({
      where: { username: 'notlocked' },
      orderBy: { id: 'asc' },
    });
    expect(counters.length).toBeGreaterThan(0);
    const auditBefore = await db.prisma.auditLog.count();

    const answer = await admin
      .post(`/admin/users/${user.id}/unlock`)
      .type('form')
      .send({ csrf_token: await csrfTokenOf(admin) })
      .expect(303);
    expect(answer.headers.location).toBe('/admin/users?q=notlocked');
    const page = await admin.get('/admin/users?q=notlocked').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('<div class="alert warning" role="status">Sign-in of notlocked was not locked.</div>');
    expect(page.text).not.toContain('alert error');

    const json = await admin
      .post(`/admin/users/${user.id}/unlock`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({})
      .expect(200);
    expect(json.body).toMatchObject({ ok: true, wasLocked: false, message: 'Sign-in of notlocked was not locked.' });

    expect(await db.prisma.auditLog.count({ where: { action: 'user.unlock_sign_in', target: 'user:notlocked' } })).toBe(
      0,
    );
    expect(await db.prisma.auditLog.count()).toBe(auditBefore);
    expect(await db.prisma.authThrottle.findMany({ where: { username: 'notlocked' }, orderBy: { id: 'asc' } })).toEqual(
      counters,
    );
  });

  it('is refused without the CSRF token, to a non-admin and for an unknown user, lifting nothing', async () => {
    const app = lockoutApp();
    const admin = await adminOf(app, 'csrfadmin');
    const user = await buildUser(db.prisma, { username: 'stayslocked' });
    const other = await buildUser(db.prisma, { username: 'notanadmin' });
    const researcher = await signInAs(app, 'notanadmin', other.password);
    await lockOut(app, 'stayslocked');
    const rows = await throttleRows('stayslocked');

    await admin.post(`/admin/users/${user.id}/unlock`).type('form').send({}).expect(403);
    const forbidden = await researcher
      .post(`/admin/users/${user.id}/unlock`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(researcher))
      .send({});
    expect(forbidden.status).toBe(403);
    const unknown = await admin
      .post('/admin/users/999999/unlock')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({});
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe(404);

    expect(await throttleRows('stayslocked')).toBe(rows);
    expect(
      await db.prisma.auditLog.count({ where: { action: 'user.unlock_sign_in', target: 'user:stayslocked' } }),
    ).toBe(0);
    const still = await postLogin(app, 'stayslocked', user.password);
    expect(still.response.text).toContain('Too many failed sign-ins.');
  });
});

describe('an admin resetting the password of a locked-out account', () => {
  it('lifts the lock with it, says so, and the new password works at once', async () => {
    const metrics = createMetrics({ hasProcessMetrics: false });
    const app = lockoutApp(metrics);
    const admin = await adminOf(app, 'helpdesk');
    const user = await buildUser(db.prisma, { username: 'forgetful' });
    await lockOut(app, 'forgetful');
    const endedBefore = await metricValue(metrics, 'auth_lockout_end_total');

    const reset = await admin
      .post(`/admin/users/${user.id}/password`)
      .type('form')
      .send({ password: 'forgetful-new-password', csrf_token: await csrfTokenOf(admin) })
      .expect(303);
    const page = await admin.get(reset.headers.location as string).set('Accept', 'text/html');
    expect(page.text).toContain('Password of forgetful changed. Their sign-in lock was lifted.');
    expect(page.text).not.toContain('sign-in locked until');
    expect(await metricValue(metrics, 'auth_lockout_end_total')).toBe(endedBefore + 2);

    await signInAs(app, 'forgetful', 'forgetful-new-password');
    const entry = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'user.password_reset', target: 'user:forgetful' },
    });
    expect(entry.details).toEqual({
      isPasswordGenerated: false,
      endedSessions: 0,
      lockedUntil: '2026-06-01T08:15:00.000Z',
    });
    expect((await verifyAuditChain(db.prisma)).isIntact).toBe(true);
  });

  it('says the lock was lifted to a JSON client whose reset generated the password, in its message', async () => {
    const app = lockoutApp();
    const admin = await adminOf(app, 'helpdesk3');
    const user = await buildUser(db.prisma, { username: 'lockedscript' });
    await lockOut(app, 'lockedscript');
    // Its answer was {username, password}: the lock lifted was said on the page alone.
    const reset = await admin
      .post(`/admin/users/${user.id}/password`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({})
      .expect(200);
    expect(reset.body).toMatchObject({
      ok: true,
      username: 'lockedscript',
      message: 'Password of lockedscript changed. Their sign-in lock was lifted.',
    });
    await signInAs(app, 'lockedscript', reset.body.password);
  });

  it('says nothing of a lock when there was none', async () => {
    const app = lockoutApp();
    const admin = await adminOf(app, 'helpdesk2');
    const user = await buildUser(db.prisma, { username: 'unlockedone' });
    const reset = await admin
      .post(`/admin/users/${user.id}/password`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ password: 'unlockedone-new-pw' })
      .expect(200);
    expect(reset.body).toMatchObject({ ok: true, message: 'Password of unlockedone changed.' });
  });

  // The failures were typed against the old password, as a lock's are: kept, four typos before the
  // call to the help desk and one of the new password locked the user out with the password they were
  // just given ("Too many failed sign-ins"), where a change of one's own password forgets them.
  it('forgets the failures counted against the old password when no lock runs yet, saying nothing of a lock', async () => {
    const app = lockoutApp();
    const admin = await adminOf(app, 'helpdesk4');
    const user = await buildUser(db.prisma, { username: 'almostlocked' });
    for (let attempt = 1; attempt <= 4; attempt++) await postLogin(app, 'almostlocked', `old-guess-${attempt}`);
    expect(await throttleRows('almostlocked')).toBe(2);

    const reset = await admin
      .post(`/admin/users/${user.id}/password`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ password: 'almostlocked-new-pw' })
      .expect(200);
    expect(reset.body).toMatchObject({ ok: true, message: 'Password of almostlocked changed.' });
    expect(await throttleRows('almostlocked')).toBe(0);

    // One typo of the new password is one failure, not the fifth.
    const typo = await postLogin(app, 'almostlocked', 'almostlocked-new-pq');
    expect(typo.response.status).toBe(401);
    expect(typo.response.text).not.toContain('Too many failed sign-ins');
    await signInAs(app, 'almostlocked', 'almostlocked-new-pw');
    const entry = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'user.password_reset', target: 'user:almostlocked' },
    });
    expect(entry.details).toEqual({ isPasswordGenerated: false, endedSessions: 0 });
  });
});
