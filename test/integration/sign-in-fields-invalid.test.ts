import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { refusedFormStateOf } from '../support/html.js';
import { postLogin } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A refused sign-in described both fields by its reason, but a screen reader announced neither as
 * invalid, as every other refused form of the app marks its fields (aria-invalid). A wrong username or
 * password marks both, either being the one to correct; a lock does not: what was typed may be right.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const app = () => buildTestApp(db, { env: { TRUST_PROXY: 'loopback' } });

describe('the sign-in form refused', () => {
  it('marks the username and the password invalid, described by the reason, after a wrong password', async () => {
    await buildUser(db.prisma, { username: 'mistyped' });
    const { response } = await postLogin(app(), 'mistyped', 'not-the-password', { ip: '198.51.100.40' });
    expect(response.status).toBe(401);
    expect(response.text).toContain(
      '<div class="alert error" role="alert" id="login-error">Wrong username or password.',
    );
    expect(refusedFormStateOf(response.text)).toEqual({
      invalid: ['username', 'password'],
      describedBy: { username: 'login-error', password: 'login-error' },
      // The username is kept: the password is the one to type again.
      autofocus: ['password'],
    });
  });

  it('marks no field invalid while the sign-in is locked, the reason still describing both', async () => {
    const user = await buildUser(db.prisma, { username: 'locked-fields' });
    const server = app();
    for (let attempt = 1; attempt <= 5; attempt++) {
      await postLogin(server, 'locked-fields', 'guess', { ip: '198.51.100.41' });
    }
    const { response } = await postLogin(server, 'locked-fields', user.password, { ip: '198.51.100.41' });
    expect(response.status).toBe(429);
    expect(refusedFormStateOf(response.text).invalid).toEqual([]);
    expect(response.text).toMatch(/<input id="password"[^>]* aria-describedby="login-error"/);
  });
});
