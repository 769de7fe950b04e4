import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { sessionsWaitingForLocks } from '../support/lock-waits.js';
import { type Agent, csrfTokenOf, postLogin, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A request of a session that was already signed out (Sign out all sessions, a password change or
// reset) still writes that session as it answers: the sign-in page, /rates or any page takes the
// one-time message from it. One that read the session before an admin disabled the user, and
// answered after, wrote its copy over what the disable had written: the session went back to the
// earlier reason, its holder was told to sign in again, and was then told "Wrong username or password."
const DISABLED = 'Your account has been disabled. Ask an administrator.';
const ADMIN_SIGN_OUT =
  'An administrator signed out every session of your account, so this one was signed out. Sign in again.';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
});
afterAll(() => db?.drop());

/**
 * A fresh app (its rates not read yet: /rates reads the pricing version, which a test can hold),
 * an admin signed in to it, and `username` signed in to it.
 */
async function signedInWithAdmin(username: string, now?: () => Date) {
  const app = buildTestApp(db, now ? { now } : {});
  await buildUser(db.prisma, { username: `${username}-admin`, role: 'admin', password: `${username}-admin-pw` });
  const admin = await signInAs(app, `${username}-admin`, `${username}-admin-pw`);
  const user = await buildUser(db.prisma, { username });
  const agent = await signInAs(app, username, user.password);
  return { app, user, agent, adminPost: (path: string) => adminPost(admin, path) };
}

async function adminPost(admin: Agent, path: string) {
  return admin
    .post(path)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin))
    .send({})
    .expect(200);
}

/** The session rows of a user's signed-out sessions, as a disable or a sign-out left them. */
async function signedOutRowsOf(user: { id: number; username: string }) {
  const { rows } = await db.pool.query<{ sess: Record<string, unknown> }>(
    `SELECT sess FROM "session"
      WHERE sess ->> 'signedOutUserId' = $1 OR sess ->> 'disabledUsername' = $2`,
    [String(user.id), user.username],
  );
  return rows.map((row) => row.sess);
}

/**
 * Sends `GET /rates` from `agent` with the pricing version locked (a fresh app reads it first), so the
 * request holds its session, read before `meanwhile`, until `meanwhile` is done; then it answers.
 */
async function answeringAfter(agent: Agent, meanwhile: () => Promise<unknown>) {
  const blocker = await db.pool.connect();
  try {
    await blocker.query('BEGIN; LOCK TABLE pricing_versions IN ACCESS EXCLUSIVE MODE');
    const rates = agent
      .get('/rates')
      .set('Accept', 'text/html')
      .then((response) => response);
    expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
    await meanwhile();
    await blocker.query('COMMIT');
    return await rates;
  } finally {
    await blocker.query('ROLLBACK').catch(() => undefined);
    blocker.release();
  }
}

describe('a request of a signed-out session that answers after the user is disabled', () => {
  it('leaves the session saying the account is disabled, in its row and to the browser', async () => {
    const { app, user, agent: lab, adminPost } = await signedInWithAdmin('lsd-leaver');
    await adminPost(`/admin/users/${user.id}/sign-out-all`);

    // The lab computer opens the price list; it read its session (the admin's sign-out, its message
    // waiting) before the disable and shows that message as it answers, after the disable.
    const rates = await answeringAfter(lab, () => adminPost(`/admin/users/${user.id}/disable`));
    expect(rates.status).toBe(200);
    expect(rates.text).toContain(ADMIN_SIGN_OUT);

    const [row, ...others] = await signedOutRowsOf(user);
    expect(others).toEqual([]);
    expect(row).toMatchObject({ isAccountDisabled: true, disabledUsername: 'lsd-leaver' });
    expect(row).not.toHaveProperty('signedOutBy');

    // The browser is told at its next request, and its sign-in for that username says so too.
    const account = await lab.get('/account').set('Accept', 'application/json');
    expect(account.status).toBe(401);
    expect(account.body).toEqual({ error: DISABLED, code: 401 });
    const signInPage = await lab.get('/login').set('Accept', 'text/html');
    expect(signInPage.text).toContain(DISABLED);
    const { response: retry } = await postLogin(app, 'lsd-leaver', user.password, { agent: lab });
    expect(retry.status).toBe(401);
    expect(retry.text).toContain(DISABLED);
  });
});

describe('a request of a signed-in session that answers after Sign out all sessions', () => {
  it('does not sign the session in again with its last-seen time, and a disable after it still says so', async () => {
    let clock = new Date();
    const { user, agent: lab, adminPost } = await signedInWithAdmin('lsd-busy', () => clock);
    // A minute on, the next request of the session writes its last-seen time as it answers.
    clock = new Date(clock.getTime() + 61_000);
    const rates = await answeringAfter(lab, () => adminPost(`/admin/users/${user.id}/sign-out-all`));
    expect(rates.status).toBe(200);

    const [row, ...others] = await signedOutRowsOf(user);
    expect(others).toEqual([]);
    expect(row).toMatchObject({ signedOutBy: 'sessions_end_by_admin', signedOutUserId: String(user.id) });
    expect(row).not.toHaveProperty('passport');
    const account = await lab.get('/account').set('Accept', 'application/json');
    expect(account.body).toEqual({ error: ADMIN_SIGN_OUT, code: 401 });

    await adminPost(`/admin/users/${user.id}/disable`);
    const afterDisable = await lab.get('/account').set('Accept', 'application/json');
    expect(afterDisable.body).toEqual({ error: DISABLED, code: 401 });
  });
});

describe('a session signed out before the sign-out kept its user id (signedOutUserId, bf5f925b)', () => {
  it('keeps its own reason through a disable, shown once, and signs in again once enabled', async () => {
    const { app, user, agent: office, adminPost } = await signedInWithAdmin('lsd-legacy');
    // The row as Sign out all sessions left it before the user id was kept: nothing says whose it was.
    const flash = { type: 'warning', message: ADMIN_SIGN_OUT };
    const legacy = await db.pool.query<{ sid: string }>(
      `UPDATE "session"
          SET sess = jsonb_build_object('cookie', sess -> 'cookie', 'flash', $2::jsonb,
                                        'signedOutBy', 'sessions_end_by_admin')
        WHERE sess #>> '{passport,user}' = $1
        RETURNING sid`,
      [String(user.id), JSON.stringify(flash)],
    );
    expect(legacy.rowCount).toBe(1);

    // The disable cannot find it: it keeps the reason it was given, which is still true, and
    // nothing fails for the missing id.
    await adminPost(`/admin/users/${user.id}/disable`);
    const { rows } = await db.pool.query<{ sess: Record<string, unknown> }>(
      `SELECT sess FROM "session" WHERE sid = $1`,
      [legacy.rows[0]?.sid],
    );
    expect(rows.map((row) => row.sess)).toEqual([
      expect.objectContaining({ flash, signedOutBy: 'sessions_end_by_admin' }),
    ]);
    const account = await office.get('/account').set('Accept', 'application/json');
    expect(account.body).toEqual({ error: ADMIN_SIGN_OUT, code: 401 });

    // Its message is taken once as a session signed out since is (the write of its row is not refused).
    const signInPage = await office.get('/login').set('Accept', 'text/html');
    expect(signInPage.text).toContain(ADMIN_SIGN_OUT);
    const again = await office.get('/login').set('Accept', 'text/html');
    expect(again.text).not.toContain(ADMIN_SIGN_OUT);
    expect(again.text).not.toContain(DISABLED);

    // Nothing ties the session to the account, so its sign-in is answered as anyone's would be.
    const { response: refused } = await postLogin(app, 'lsd-legacy', user.password, { agent: office });
    expect(refused.status).toBe(401);
    expect(refused.text).toContain('Wrong username or password.');
    expect(refused.text).not.toContain(DISABLED);

    await adminPost(`/admin/users/${user.id}/enable`);
    const { response: signedIn } = await postLogin(app, 'lsd-legacy', user.password, { agent: office });
    expect(signedIn.status).toBe(302);
  });
});
