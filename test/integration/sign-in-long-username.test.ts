import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { postLogin } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * Sign-in cut a typed username to 64 characters, a username's longest, before looking it up: a
 * name typed longer, whose first 64 characters were an account's name, signed in to that account
 * with its password. No account has a name that long, so such a sign-in is a wrong username or
 * password like any unknown name's, and counted by the lockout under that name, not the account's.
 */
let db: TestDatabase;
// The longest username an account can have: 64 characters.
const LONGEST = `l${'o'.repeat(62)}g`;
const TYPED = `${LONGEST}-and-more`;
// The typed name as the throttle and the audit log keep it (64 characters at most): cut, and marked
// as cut with a character no username has, so that it is never an account's row or name.
const KEPT = `${TYPED.slice(0, 63)}…`;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: LONGEST, password: 'the-right-password' });
});
afterAll(() => db?.drop());

describe('a sign-in with a username longer than any account can have', () => {
  const app = () => buildTestApp(db, { env: { TRUST_PROXY: 'loopback' } });

  it('fails as a wrong username or password, even with the password of the account its first 64 characters name', async () => {
    expect(LONGEST).toHaveLength(64);
    const { agent, response } = await postLogin(app(), TYPED, 'the-right-password', { ip: '198.51.100.20' });
    expect(response.status).toBe(401);
    expect(response.text).toContain('Wrong username or password.');
    // Not signed in.
    await agent.get('/me').set('Accept', 'text/html').expect(302);
    // Upper case and spaces around it change nothing: it is still longer than a username can be.
    const shouted = await postLogin(app(), `  ${TYPED.toUpperCase()} `, 'the-right-password', { ip: '198.51.100.20' });
    expect(shouted.response.status).toBe(401);
    // The account itself, typed as it is, still signs in.
    const right = await postLogin(app(), LONGEST, 'the-right-password', { ip: '198.51.100.21' });
    expect(right.response.status).toBe(302);
  });

  it('is counted and audited under the name as typed, cut and marked, never as the account', async () => {
    await postLogin(app(), TYPED, 'a-guess', { ip: '198.51.100.30' });
    const rows = await db.pool.query<{ username: string; failure_count: number }>(
      "SELECT username, failure_count FROM auth_throttle WHERE ip = '198.51.100.30' ORDER BY username",
    );
    expect(rows.rows).toEqual([{ username: KEPT, failure_count: 1 }]);
    const audited = await db.prisma.auditLog.findMany({
      where: { action: 'login.failure', ip: '198.51.100.30' },
      select: { actor: true, details: true },
    });
    expect(audited).toEqual([{ actor: KEPT, details: { reason: 'bad_credentials' } }]);
  });

  it("locks that name from that address after as many failures as any name, and leaves the account's sign-in alone", async () => {
    const ip = '198.51.100.40';
    const answers: number[] = [];
    for (let attempt = 1; attempt <= 5; attempt++) {
      answers.push((await postLogin(app(), TYPED, 'a-guess', { ip })).response.status);
    }
    expect(answers).toEqual([401, 401, 401, 401, 429]);
    expect((await postLogin(app(), TYPED, 'the-right-password', { ip })).response.status).toBe(429);
    // The account was not the one guessed at: it signs in from that address.
    expect((await postLogin(app(), LONGEST, 'the-right-password', { ip })).response.status).toBe(302);
  });
});
