import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/modules/users/password.js';
import { buildUser } from '../support/factories.js';
import { postFormIn } from '../support/html.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A user admin's first week: a postdoc comes back, and the admin creates their account again. The name
 * belongs to the account disabled when they left, which the docs say to enable, never to replace (its
 * receipts and history are under the name). Create a user answered only "A user named "bob" already
 * exists." above the first page of the whole list, where bob's row (and its Enable button) was not on a
 * centre with more than 50 users. The refusal now says the account is disabled and how to give it back,
 * and the page lists the user whose name is taken, so their row and its buttons are beside it.
 */
let db: TestDatabase;
let ops: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'tk-ops', role: 'admin', password: 'tk-ops-password' });
  // More users than a page holds, all before the taken names: the first page shows none of them.
  const passwordHash = await hashPassword('tk-filler-password');
  await db.prisma.user.createMany({
    data: Array.from({ length: 55 }, (_, index) => ({
      username: `tk-a${String(index).padStart(2, '0')}`,
      passwordHash,
    })),
  });
  ops = await signInAs(buildTestApp(db), 'tk-ops', 'tk-ops-password');
});
afterAll(() => db?.drop());

const DISABLED_TAKEN =
  'A user named "tk-postdoc" already exists and is disabled: enable it to give the account back, with its receipts and history.';

describe('creating a user whose name an existing account has', () => {
  it('says when that account is disabled and how to give it back, and creates nothing', async () => {
    const postdoc = await buildUser(db.prisma, { username: 'tk-postdoc', isDisabled: true });
    const usersBefore = await db.prisma.user.count();
    const response = await ops
      .post('/admin/users')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(ops))
      .send({ username: 'tk-postdoc', role: 'user' });
    expect(response.status).toBe(409);
    expect(response.body).toEqual({ error: DISABLED_TAKEN, code: 409 });
    expect(await db.prisma.user.count()).toBe(usersBefore);
    expect((await db.prisma.user.findUniqueOrThrow({ where: { id: postdoc.id } })).isDisabled).toBe(true);
  });

  it('the page lists the account whose name is taken, with its Enable button, beside the reason', async () => {
    const postdoc = await db.prisma.user.findUniqueOrThrow({ where: { username: 'tk-postdoc' } });
    const page = await ops
      .post('/admin/users')
      .set('Accept', 'text/html')
      .type('form')
      .send({ username: 'TK-Postdoc', role: 'user', password: '', csrf_token: await csrfTokenOf(ops) });
    expect(page.status).toBe(409);
    expect(page.text).toContain(
      `${DISABLED_TAKEN.replaceAll('"', '&#34;')} Username TK-Postdoc read as tk-postdoc: usernames are lower case, as sign-in reads them.`,
    );
    expect(postFormIn(page.text, `/admin/users/${postdoc.id}/enable`)).toBeDefined();
    // What was typed stays in the form, to change it if another name was meant.
    expect(page.text).toMatch(/<input id="new-username" name="username" value="TK-Postdoc"/);
  });

  it('said with another reason (a password too short), the taken name says it is disabled too', async () => {
    const response = await ops
      .post('/admin/users')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(ops))
      .send({ username: 'tk-postdoc', role: 'user', password: 'short' });
    expect(response.status).toBe(400);
    expect(response.body.error).toBe(
      'username: a user named "tk-postdoc" already exists and is disabled (enable it to give the account back); password: must be at least 12 characters',
    );
  });

  it('an active account is refused in the same words as before, and listed too', async () => {
    const active = await buildUser(db.prisma, { username: 'tk-zed' });
    const page = await ops
      .post('/admin/users')
      .set('Accept', 'text/html')
      .type('form')
      .send({ username: 'tk-zed', role: 'user', password: '', csrf_token: await csrfTokenOf(ops) });
    expect(page.status).toBe(409);
    expect(page.text).toContain('id="new-user-error">A user named &#34;tk-zed&#34; already exists.</div>');
    expect(postFormIn(page.text, `/admin/users/${active.id}/disable`)).toBeDefined();
  });
});
