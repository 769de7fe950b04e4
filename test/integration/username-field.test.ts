import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The Username field of Create a user on /admin/users, as a browser judges it. A user admin's walk pasted
 * a name from the centre's spreadsheet with a space after it: the browser held the form back ("Please
 * match the requested format."), though the server reads the name trimmed, as it reads every field, and
 * as Add a tier's Name field lets such a name through.
 */
let db: TestDatabase;
let ops: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'uf-ops', role: 'admin', password: 'uf-ops-password' });
  ops = await signInAs(buildTestApp(db), 'uf-ops', 'uf-ops-password');
});
afterAll(() => db?.drop());

async function usernameField() {
  const page = (await ops.get('/admin/users').set('Accept', 'text/html').expect(200)).text;
  const field = /<input id="new-username"[^>]*>/.exec(page)?.[0];
  if (!field) throw new Error('no Username field on /admin/users');
  return field;
}

/** Whether a browser lets the field's value through: HTML compiles pattern as ^(?:…)$ with the v flag. */
function isAcceptedByPattern(field: string, value: string): boolean {
  const pattern = /pattern="([^"]*)"/.exec(field)?.[1];
  if (pattern === undefined) return true;
  return new RegExp(`^(?:${pattern.replaceAll('&amp;', '&')})$`, 'v').test(value);
}

describe('the Username field of Create a user in the browser', () => {
  it('lets a name with spaces around it through, as the server creates it trimmed', async () => {
    const field = await usernameField();
    for (const value of [' zoe', 'zoe ', '\tZoe.Smith\t', ' _svc-1 ']) {
      expect(isAcceptedByPattern(field, value), value).toBe(true);
    }
    const created = await ops
      .post('/admin/users')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(ops))
      .send({ username: ' pasted ', role: 'user', password: 'pasted-password-1' });
    expect(created.status, created.text.slice(0, 300)).toBe(201);
    expect(created.body.user.username).toBe('pasted');
  });

  it('still holds back what the server refuses: a space inside, a bad first character, more than 64', async () => {
    const field = await usernameField();
    for (const value of ['zoe smith', '-zoe', '1zoe', 'zoë', 'a'.repeat(65), ` ${'a'.repeat(65)} `, ' ']) {
      expect(isAcceptedByPattern(field, value), value).toBe(false);
    }
    expect(isAcceptedByPattern(field, 'a'.repeat(64)), '64 characters').toBe(true);
  });
});
