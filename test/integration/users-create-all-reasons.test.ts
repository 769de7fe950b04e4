import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Creating a user whose name is taken, with a password the rules refuse: the page said only that
// the password was too short; once the admin had typed a longer one, it said the name was taken.
// Two rounds (and a password typed twice) for what one refusal could have said.
let db: TestDatabase;
let chief: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'chief', role: 'admin', password: 'chief-password' });
  await buildUser(db.prisma, { username: 'bob', password: 'bob-password-123' });
  chief = await signInAs(buildTestApp(db), 'chief', 'chief-password');
});
afterAll(() => db?.drop());

describe('a new user refused for its password, with a name that is taken', () => {
  it('is told both at once, on the page and in JSON, and nothing is created', async () => {
    const users = await db.prisma.user.count();
    const page = await chief
      .post('/admin/users')
      .set('Accept', 'text/html')
      .type('form')
      .send({ username: 'bob', role: 'user', password: 'short', csrf_token: await csrfTokenOf(chief) });
    expect(page.status).toBe(400);
    expect(page.text).toContain(
      'Username: a user named &#34;bob&#34; already exists; Password: must be at least 12 characters',
    );
    // Both fields marked, the name first.
    expect(page.text).toMatch(/id="new-username"[^>]*aria-invalid="true"[^>]*autofocus/);
    expect(page.text).toMatch(/id="new-password"[^>]*aria-invalid="true"/);

    const json = await chief
      .post('/admin/users')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(chief))
      .send({ username: 'bob', password: 'short' });
    expect(json.status).toBe(400);
    expect(json.body.error).toBe(
      'username: a user named "bob" already exists; password: must be at least 12 characters',
    );
    expect(await db.prisma.user.count()).toBe(users);
  });

  it('still says only what is wrong with a free name', async () => {
    const json = await chief
      .post('/admin/users')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(chief))
      .send({ username: 'newbie', password: 'short' });
    expect(json.status).toBe(400);
    expect(json.body.error).toBe('password: must be at least 12 characters');
  });
});
