import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { flashMessageOf, hiddenFieldsIn, postFormIn, visibleTextOf } from '../support/html.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A user admin's walk, two admins in two tabs: one disabled dana while the other's page still showed
 * her active. Its Make admin then answered "dana is now an admin. The admin pages open at their next
 * sign-in.", and its Reset password "New password for dana: … — it is shown only once.": the admin
 * handed the password over, or told dana to sign in, and dana met "Your account has been disabled".
 * The change is still made (an admin may prepare an account before enabling it); its answer says the
 * account is disabled, so whoever made it knows dana cannot sign in yet.
 */
let db: TestDatabase;
let ops: Agent;
let chief: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'da-ops', role: 'admin', password: 'da-ops-password' });
  await buildUser(db.prisma, { username: 'da-chief', role: 'admin', password: 'da-chief-password' });
  const app = buildTestApp(db);
  ops = await signInAs(app, 'da-ops', 'da-ops-password');
  chief = await signInAs(app, 'da-chief', 'da-chief-password');
});
afterAll(() => db?.drop());

const DISABLED_PASSWORD_NOTE = 'Their account is disabled: they cannot sign in with it until an admin enables it.';

/** The users page searched for `username`, as the admin's tab holds it. */
const usersPageFor = async (agent: Agent, username: string) =>
  (await agent.get(`/admin/users?q=${username}`).set('Accept', 'text/html').expect(200)).text;

/** Sends the form of `page` whose action is `action`, as the browser holding the page sends it. */
async function sendStaleForm(agent: Agent, page: string, action: string) {
  const form = postFormIn(page, action);
  if (!form) throw new Error(`no form ${action} on the page`);
  return agent.post(action).set('Accept', 'text/html').type('form').send(hiddenFieldsIn(form));
}

async function disableAs(agent: Agent, id: number) {
  const response = await agent
    .post(`/admin/users/${id}/disable`)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(agent))
    .send({});
  expect(response.status, response.text.slice(0, 300)).toBe(200);
}

describe('a change to an account disabled since the page was opened', () => {
  it('Make admin says the account is disabled instead of promising the admin pages at the next sign-in', async () => {
    const dana = await buildUser(db.prisma, { username: 'da-dana' });
    const stalePage = await usersPageFor(ops, 'da-dana');
    await disableAs(chief, dana.id);

    const promoted = await sendStaleForm(ops, stalePage, `/admin/users/${dana.id}/role`);
    expect(promoted.status).toBe(303);
    const flash = flashMessageOf(await usersPageFor(ops, 'da-dana'));
    expect(flash).toBe(
      'da-dana is now an admin. Their account is disabled: the admin pages open once an admin enables it and they sign in.',
    );

    // A script reads the same sentence, beside isDisabled.
    const user = await buildUser(db.prisma, { username: 'da-erin', isDisabled: true });
    const json = await ops
      .post(`/admin/users/${user.id}/role`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(ops))
      .send({ role: 'admin' });
    expect(json.body).toMatchObject({
      ok: true,
      isChanged: true,
      user: { role: 'admin', isDisabled: true },
      message:
        'da-erin is now an admin. Their account is disabled: the admin pages open once an admin enables it and they sign in.',
    });
  });

  it('Reset password shows the new password with the note that the account is disabled', async () => {
    const dana = await buildUser(db.prisma, { username: 'da-fay' });
    const stalePage = await usersPageFor(ops, 'da-fay');
    await disableAs(chief, dana.id);

    const reset = await sendStaleForm(ops, stalePage, `/admin/users/${dana.id}/password`);
    expect(reset.status).toBe(200);
    expect(visibleTextOf(reset.text)).toMatch(
      new RegExp(`New password for da-fay: \\S+ — it is shown only once\\. ${DISABLED_PASSWORD_NOTE}`),
    );
  });

  it('a chosen password, and a generated one sent as JSON, say so in their message', async () => {
    const gil = await buildUser(db.prisma, { username: 'da-gil', isDisabled: true });
    const send = async (body: Record<string, string>) =>
      ops
        .post(`/admin/users/${gil.id}/password`)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(ops))
        .send(body);
    const chosen = await send({ password: 'a-chosen-password-1' });
    expect(chosen.status).toBe(200);
    expect(chosen.body.message).toBe(`Password of da-gil changed. ${DISABLED_PASSWORD_NOTE}`);
    const generated = await send({});
    expect(generated.status).toBe(200);
    expect(generated.body.message).toBe(`Password of da-gil changed. ${DISABLED_PASSWORD_NOTE}`);
  });

  it('an active account is answered as before', async () => {
    const hal = await buildUser(db.prisma, { username: 'da-hal' });
    const promoted = await ops
      .post(`/admin/users/${hal.id}/role`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(ops))
      .send({ role: 'admin' });
    expect(promoted.body.message).toBe('da-hal is now an admin. The admin pages open at their next sign-in.');
    const reset = await ops
      .post(`/admin/users/${hal.id}/password`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(ops))
      .send({ password: 'a-chosen-password-2' });
    expect(reset.body.message).toBe('Password of da-hal changed.');
  });
});
