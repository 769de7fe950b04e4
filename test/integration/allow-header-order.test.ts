import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * An address's methods, in Allow and in the 405's sentence, were listed in the order its routes were
 * registered: /admin/tiers said `GET, HEAD, POST` but /admin/month-end and /logout `POST, GET, HEAD`.
 * They are now in one order everywhere (GET, HEAD, POST, ...), as `OPTIONS *` lists them.
 */
let db: TestDatabase;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'chief', role: 'admin', password: 'chief-password' });
  admin = await signInAs(buildTestApp(db), 'chief', 'chief-password');
});
afterAll(() => db?.drop());

describe('the methods of an address, in one order', () => {
  it.each([['/admin/month-end'], ['/logout'], ['/admin/tiers']])('%s lists GET, HEAD, POST', async (path) => {
    const refused = await admin.put(path).set('Accept', 'application/json').expect(405);
    expect(refused.headers.allow).toBe('GET, HEAD, POST');
    expect(refused.body.error).toBe(`${path} answers GET, HEAD and POST only, not PUT.`);
    const options = await admin.options(path).expect(204);
    expect(options.headers.allow).toBe('GET, HEAD, POST');
  });
});
