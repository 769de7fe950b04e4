import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * "This is the last active admin; make another admin first." was all the refusal said, also while a
 * disabled admin account was there to be enabled instead: an admin leaving made a new account when
 * the colleague's, disabled on a holiday, needed only Enable.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());
beforeEach(async () => {
  await db.pool.query(`UPDATE users SET role = 'user' WHERE role = 'admin' AND NOT is_disabled`);
});

let counter = 0;
async function soleAdmin() {
  counter += 1;
  const app = buildTestApp(db);
  const solo = await buildUser(db.prisma, { username: `solo${counter}`, role: 'admin' });
  return { solo, agent: await signInAs(app, solo.username, solo.password) };
}

const disabledAdmin = (username: string) => buildUser(db.prisma, { username, role: 'admin', isDisabled: true });

describe('the last active admin refused a demotion or a disable', () => {
  it('says only to make another admin when no disabled admin exists', async () => {
    const { solo, agent } = await soleAdmin();
    await buildUser(db.prisma, { username: 'plainuser', isDisabled: true });
    const demote = await agent
      .post(`/admin/users/${solo.id}/role`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({ role: 'user' });
    expect(demote.body).toEqual({ error: 'This is the last active admin; make another admin first.', code: 409 });
  });

  it('names the disabled admin that can be enabled instead, in JSON and on the users page', async () => {
    const { solo, agent } = await soleAdmin();
    await disabledAdmin('dormant');
    const said = 'This is the last active admin; make another admin first, or enable the disabled admin dormant.';
    const demote = await agent
      .post(`/admin/users/${solo.id}/role`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({ role: 'user' });
    expect(demote.body).toEqual({ error: said, code: 409 });
    const disable = await agent
      .post(`/admin/users/${solo.id}/disable`)
      .set('Accept', 'text/html')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .type('form')
      .send({})
      .expect(409);
    expect(disable.text).toContain(said);
    const admin = await db.prisma.user.findUniqueOrThrow({ where: { id: solo.id } });
    expect({ role: admin.role, isDisabled: admin.isDisabled }).toEqual({ role: 'admin', isDisabled: false });
  });

  it('names three of several disabled admins and counts the others', async () => {
    const { solo, agent } = await soleAdmin();
    for (const name of ['zz-dormant', 'dormant-b', 'dormant-c', 'dormant-d']) await disabledAdmin(name);
    const demote = await agent
      .post(`/admin/users/${solo.id}/role`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({ role: 'user' });
    // dormant (the test before) and these four.
    expect(demote.body.error).toBe(
      'This is the last active admin; make another admin first, or enable one of the disabled admins: ' +
        'dormant, dormant-b, dormant-c and 2 more.',
    );
  });
});
