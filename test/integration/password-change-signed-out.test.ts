import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, postLogin, signInAs, signInNewAdmin } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

const CHANGED =
  'Your password was changed in another session, so this one was signed out. Sign in with the new password.';
const RESET = 'An administrator reset your password, so you were signed out. Sign in with the new password.';

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  app = buildTestApp(db);
  admin = await signInNewAdmin(app, db, 'pwended-admin');
});
afterAll(() => db?.drop());

/** Two sessions of a new user; the first changes the password, which signs the second out. */
async function sessionEndedByChange(username: string) {
  const user = await buildUser(db.prisma, { username });
  const office = await signInAs(app, username, user.password);
  const lab = await signInAs(app, username, user.password);
  const labToken = await csrfTokenOf(lab);
  const changed = await office
    .post('/account/password')
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(office))
    .send({ current: user.password, password: 'fresh-password-2', confirm: 'fresh-password-2' });
  expect(changed.status, changed.text).toBe(200);
  return { lab, labToken };
}

// The session's holder was told only "Sign in to continue." (JSON) or that they were not signed in
// (a form), as if they had signed out themselves or the session had timed out.
describe('a session signed out by a password change elsewhere says so', () => {
  it('to a JSON client, on every request until it signs in again', async () => {
    const { lab } = await sessionEndedByChange('pwended-json');
    for (const path of ['/me', '/account']) {
      const response = await lab.get(path).set('Accept', 'application/json');
      expect(response.status).toBe(401);
      expect(response.body).toEqual({ error: CHANGED, code: 401 });
    }
    const { response } = await postLogin(app, 'pwended-json', 'fresh-password-2', { agent: lab });
    expect(response.status).toBe(302);
    const account = await lab.get('/account').set('Accept', 'application/json').expect(200);
    expect(account.body).toEqual({ username: 'pwended-json', role: 'user', csrfToken: expect.any(String) });
  });

  it('to a JSON client sending a change with the token it had, writing nothing', async () => {
    const { lab, labToken } = await sessionEndedByChange('pwended-post');
    const receiptsBefore = await db.prisma.receipt.count();
    const response = await lab
      .post('/me/receipt')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', labToken)
      .send({ before: '2026-01-31' });
    expect(response.status).toBe(403);
    expect(response.body).toEqual({
      error:
        'Your password was changed in another session, so this one was signed out and this form was not sent. ' +
        'Sign in with the new password, then send it again.',
      code: 403,
    });
    expect(await db.prisma.receipt.count()).toBe(receiptsBefore);
  });

  it('to a browser whose form was refused', async () => {
    const { lab, labToken } = await sessionEndedByChange('pwended-form');
    const response = await lab
      .post('/me/receipt')
      .set('Accept', 'text/html')
      .type('form')
      .send({ before: '2026-01-31', csrf_token: labToken });
    expect(response.status).toBe(403);
    expect(response.text).toContain('Your password was changed in another session');
  });

  it("to a JSON client after an admin's reset", async () => {
    const user = await buildUser(db.prisma, { username: 'pwended-reset' });
    const session = await signInAs(app, 'pwended-reset', user.password);
    await admin
      .post(`/admin/users/${user.id}/password`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ password: 'given-by-admin-1' })
      .expect(200);
    const response = await session.get('/me').set('Accept', 'application/json');
    expect(response.status).toBe(401);
    expect(response.body).toEqual({ error: RESET, code: 401 });
  });
});
