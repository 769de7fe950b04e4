import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { postLogin } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A researcher locked out after five wrong passwords read only "Too many failed sign-ins. Try again
 * in 5 min 00 s.": not that the password they then remembered would be refused as well until then,
 * nor that an administrator can lift the lock sooner. A network's lock, which no administrator
 * lifts, does not promise that.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const app = (env: Record<string, string> = {}) => buildTestApp(db, { env: { TRUST_PROXY: 'loopback', ...env } });

describe('the sign-in lock message', () => {
  it('says the right password is refused too until then, and that an administrator can lift the lock', async () => {
    const user = await buildUser(db.prisma, { username: 'locked-out' });
    const server = app();
    for (let attempt = 1; attempt <= 5; attempt++) {
      await postLogin(server, 'locked-out', 'guess', { ip: '198.51.100.20' });
    }
    const { response } = await postLogin(server, 'locked-out', user.password, { ip: '198.51.100.20' });
    expect(response.status).toBe(429);
    expect(visibleTextOf(response.text)).toMatch(
      /Too many failed sign-ins\. Try again in (5 min 00|4 min 5\d) s\. Until then even the right password is refused; an administrator can lift the lock sooner\./,
    );
  });

  it("does not promise an administrator for a network's lock", async () => {
    await buildUser(db.prisma, { username: 'sprayed' });
    const server = app({ AUTH_ADDRESS_MAX_FAILS: '3' });
    let text = '';
    for (let attempt = 1; attempt <= 4; attempt++) {
      text = visibleTextOf(
        (await postLogin(server, `nobody${attempt}`, 'guess', { ip: '198.51.100.30' })).response.text,
      );
    }
    expect(text).toMatch(
      /Too many failed sign-ins from your network\. Try again in .*\. Until then even the right password is refused\./,
    );
    expect(text).not.toContain('administrator');
  });
});
