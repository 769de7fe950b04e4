import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { sessionsWaitingForLocks } from '../support/lock-waits.js';
import { csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A request that finds its session past the idle or absolute limit, or signed in with a password
// changed since, ends it: the first deletes the row and starts a new session saying "Your session
// ended", the second signs the row out saying the password was changed. An admin's disable of the
// user that commits between the request's read of the row and that write rewrote the row to say the
// account is disabled; the delete removed that row, and the sign-out answered with its own reason.
const DISABLED = 'Your account has been disabled. Ask an administrator.';
const IDLE_SEC = 3600;

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

/** An admin signed in to an app of their own (another worker: its clock is not the user's). */
async function adminOf(name: string) {
  const app = buildTestApp(db);
  await buildUser(db.prisma, { username: `${name}-admin`, role: 'admin', password: `${name}-admin-pw` });
  const admin = await signInAs(app, `${name}-admin`, `${name}-admin-pw`);
  const token = await csrfTokenOf(admin);
  return (path: string) => admin.post(path).set('Accept', 'application/json').set('X-CSRFToken', token).send({});
}

/**
 * Sends `request` while an admin's disable of `userId` is held with the user's session rows signed
 * out but not committed (the audit log, which it writes next, is locked): the request reads its row
 * as it was, and its write of the row waits for the disable's. Then the disable commits.
 */
async function racingDisable<T>(disable: () => PromiseLike<unknown>, request: () => PromiseLike<T>): Promise<T> {
  const blocker = await db.pool.connect();
  try {
    await blocker.query('BEGIN; LOCK TABLE audit_log IN SHARE MODE');
    const disabled = Promise.resolve(disable());
    expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
    const answered = Promise.resolve(request());
    expect(await sessionsWaitingForLocks(db.pool, 5_000, 2)).toBe(2);
    await blocker.query('COMMIT');
    expect(((await disabled) as { status: number }).status).toBe(200);
    return await answered;
  } finally {
    await blocker.query('ROLLBACK').catch(() => undefined);
    blocker.release();
  }
}

async function rowsOf(user: { id: number; username: string }) {
  const { rows } = await db.pool.query<{ sess: Record<string, unknown> }>(
    `SELECT sess FROM "session" WHERE sess #>> '{passport,user}' = $1 OR sess ->> 'disabledUsername' = $2`,
    [String(user.id), user.username],
  );
  return rows.map((row) => row.sess);
}

describe('a session past its idle limit whose request races a disable of its user', () => {
  it('keeps the row the disable wrote and tells the browser the account is disabled', async () => {
    const adminPost = await adminOf('sad-idle');
    let clock = new Date();
    const app = buildTestApp(db, { now: () => clock, env: { SESSION_IDLE_SEC: String(IDLE_SEC) } });
    const user = await buildUser(db.prisma, { username: 'sad-idle' });
    const lab = await signInAs(app, 'sad-idle', user.password);
    clock = new Date(clock.getTime() + (IDLE_SEC + 120) * 1000);

    const account = await racingDisable(
      () => adminPost(`/admin/users/${user.id}/disable`),
      () => lab.get('/account').set('Accept', 'application/json'),
    );
    expect(account.status).toBe(401);
    expect(account.body).toEqual({ error: DISABLED, code: 401 });
    expect(await rowsOf(user)).toEqual([
      expect.objectContaining({ isAccountDisabled: true, disabledUsername: 'sad-idle' }),
    ]);

    // Its next request, a page this time, is sent to sign in and told the same.
    const page = await lab.get('/account').set('Accept', 'text/html');
    expect(page.status).toBe(302);
    const signInPage = await lab.get('/login').set('Accept', 'text/html');
    expect(signInPage.text).toContain(DISABLED);
    expect(signInPage.text).not.toContain('Your session ended');
  });

  it('still ends the session as before when nothing raced it', async () => {
    let clock = new Date();
    const app = buildTestApp(db, { now: () => clock, env: { SESSION_IDLE_SEC: String(IDLE_SEC) } });
    const user = await buildUser(db.prisma, { username: 'sad-quiet' });
    const lab = await signInAs(app, 'sad-quiet', user.password);
    clock = new Date(clock.getTime() + (IDLE_SEC + 120) * 1000);

    const page = await lab.get('/account').set('Accept', 'text/html');
    expect(page.status).toBe(302);
    expect(await rowsOf(user)).toEqual([]);
    const signInPage = await lab.get('/login').set('Accept', 'text/html');
    expect(signInPage.text).toContain('Your session ended. Please sign in again.');
  });
});

describe('a session signed in with a since-changed password whose request races a disable of its user', () => {
  it('answers with the disable, which the row says, not the password change', async () => {
    const adminPost = await adminOf('sad-stale');
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: 'sad-stale' });
    const lab = await signInAs(app, 'sad-stale', user.password);
    // As a change of the password leaves a sign-in whose check read the password before the change
    // and whose row was written after the change signed the user's sessions out.
    await db.pool.query(`UPDATE users SET password_changed_at = now() WHERE id = $1`, [user.id]);

    const account = await racingDisable(
      () => adminPost(`/admin/users/${user.id}/disable`),
      () => lab.get('/account').set('Accept', 'application/json'),
    );
    expect(account.status).toBe(401);
    expect(account.body).toEqual({ error: DISABLED, code: 401 });
    expect(await rowsOf(user)).toEqual([
      expect.objectContaining({ isAccountDisabled: true, disabledUsername: 'sad-stale' }),
    ]);
    const again = await lab.get('/account').set('Accept', 'application/json');
    expect(again.body).toEqual({ error: DISABLED, code: 401 });
  });
});
