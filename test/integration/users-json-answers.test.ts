import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A script managing users (or changing its own password) gets its answers as JSON, as it gets its
// refusals, and leaves no flash in the session to show up on its user's next page ("Created
// tester7." on the audit chain page).
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let ops: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  app = buildTestApp(db);
  ops = await signInAs(app, 'ops', 'ops-password-123');
});
afterAll(() => db?.drop());

/** A change sent as a script sends it: a JSON body, asking for JSON. */
async function sendJson(agent: Agent, path: string, body: Record<string, unknown>) {
  const token = await csrfTokenOf(agent);
  return agent.post(path).set('Accept', 'application/json').set('X-CSRFToken', token).send(body);
}

/** The same change sent by the page's form. */
async function sendForm(agent: Agent, path: string, body: Record<string, string>) {
  const token = await csrfTokenOf(agent);
  return agent
    .post(path)
    .set('Accept', 'text/html')
    .type('form')
    .send({ ...body, csrf_token: token });
}

/** The flash the layout shows first thing in <main>, if any. */
const flashOf = (page: string) =>
  /<main class="content"[^>]*>\s*<div class="alert \w+" role="status">([^<]*)<\/div>/.exec(page)?.[1];

/** The next page an agent opens, as a browser opens it. */
async function nextPage(agent: Agent, path: string) {
  return (await agent.get(path).set('Accept', 'text/html').expect(200)).text;
}

const userNamed = (username: string) => db.prisma.user.findUniqueOrThrow({ where: { username } });

describe('user management sent as JSON', () => {
  it('POST /admin/users with a password answers 201 with the user, never the password, and no flash waits', async () => {
    const password = 'correct horse battery';
    const response = await sendJson(ops, '/admin/users', { username: 'tester7', role: 'user', password });
    expect(response.status, response.text.slice(0, 300)).toBe(201);
    const created = await userNamed('tester7');
    expect(response.body).toEqual({
      ok: true,
      user: { id: created.id, username: 'tester7', role: 'user', isDisabled: false },
      message: 'Created tester7.',
    });
    expect(response.text).not.toContain(password);
    expect(flashOf(await nextPage(ops, '/admin/audit/verify'))).toBeUndefined();
    await signInAs(app, 'tester7', password);
  });

  it('POST /admin/users without a password still answers 201 with the generated one, and no flash waits', async () => {
    const response = await sendJson(ops, '/admin/users', { username: 'tester8', role: 'admin' });
    expect(response.status).toBe(201);
    // With `ok` and `message`, as a created user with a chosen password answers (they were missing).
    expect(response.body).toEqual({
      ok: true,
      username: 'tester8',
      password: expect.stringMatching(/^[A-HJ-NP-Za-km-np-z2-9]{17}$/),
      message: 'Created tester8.',
    });
    expect((await userNamed('tester8')).role).toBe('admin');
    expect(flashOf(await nextPage(ops, '/admin/users'))).toBeUndefined();
  });

  it('POST /admin/users answers a form body sent by a client that accepts only JSON in JSON', async () => {
    const response = await ops
      .post('/admin/users')
      .set('Accept', 'application/json')
      .type('form')
      .send({
        username: 'tester9',
        role: 'user',
        password: 'a form body, in JSON',
        csrf_token: await csrfTokenOf(ops),
      });
    expect(response.status, response.text.slice(0, 300)).toBe(201);
    expect(response.body).toMatchObject({ ok: true, user: { username: 'tester9' }, message: 'Created tester9.' });
    expect(flashOf(await nextPage(ops, '/admin/users'))).toBeUndefined();
  });

  it('POST /admin/users/:id/role answers 200 with the user, changed', async () => {
    const { id } = await buildUser(db.prisma, { username: 'promoted' });
    const response = await sendJson(ops, `/admin/users/${id}/role`, { role: 'admin' });
    expect(response.status, response.text.slice(0, 300)).toBe(200);
    expect(response.body).toEqual({
      ok: true,
      user: { id, username: 'promoted', role: 'admin', isDisabled: false },
      isChanged: true,
      // A promotion signs the user's sessions out (role-promotion-sign-out.test.ts): none here.
      endedSessions: 0,
      message: 'promoted is now an admin. The admin pages open at their next sign-in.',
    });
    expect((await userNamed('promoted')).role).toBe('admin');
    expect(flashOf(await nextPage(ops, '/admin/users'))).toBeUndefined();
  });

  it('POST /admin/users/:id/disable and /enable answer 200 with the user, changed', async () => {
    const { id } = await buildUser(db.prisma, { username: 'leaver' });
    const disabled = await sendJson(ops, `/admin/users/${id}/disable`, {});
    expect(disabled.status, disabled.text.slice(0, 300)).toBe(200);
    expect(disabled.body).toEqual({
      ok: true,
      user: { id, username: 'leaver', role: 'user', isDisabled: true },
      isChanged: true,
      message: 'leaver is disabled.',
    });
    expect((await userNamed('leaver')).isDisabled).toBe(true);
    expect(flashOf(await nextPage(ops, '/admin/users'))).toBeUndefined();

    const enabled = await sendJson(ops, `/admin/users/${id}/enable`, {});
    expect(enabled.status).toBe(200);
    expect(enabled.body).toEqual({
      ok: true,
      user: { id, username: 'leaver', role: 'user', isDisabled: false },
      isChanged: true,
      message: 'leaver is enabled.',
    });
    expect((await userNamed('leaver')).isDisabled).toBe(false);
    expect(flashOf(await nextPage(ops, '/admin/users'))).toBeUndefined();
  });

  it('POST /admin/users/:id/password with a password answers 200 without it; without one, with the generated one', async () => {
    const { id } = await buildUser(db.prisma, { username: 'forgetful' });
    const password = 'a chosen new password';
    const chosen = await sendJson(ops, `/admin/users/${id}/password`, { password });
    expect(chosen.status, chosen.text.slice(0, 300)).toBe(200);
    expect(chosen.body).toEqual({
      ok: true,
      user: { id, username: 'forgetful', role: 'user', isDisabled: false },
      message: 'Password of forgetful changed.',
    });
    expect(chosen.text).not.toContain(password);
    expect(flashOf(await nextPage(ops, '/admin/users'))).toBeUndefined();
    await signInAs(app, 'forgetful', password);

    const generated = await sendJson(ops, `/admin/users/${id}/password`, {});
    expect(generated.status).toBe(200);
    // With `ok` and `message`, as every other change to a user answers (it was {username, password} alone).
    expect(generated.body).toEqual({
      ok: true,
      username: 'forgetful',
      password: expect.stringMatching(/^[A-HJ-NP-Za-km-np-z2-9]{17}$/),
      message: 'Password of forgetful changed.',
    });
    // The message is logged and printed more than the password should be: it does not hold it.
    expect(generated.body.message).not.toContain(generated.body.password);
    expect(flashOf(await nextPage(ops, '/admin/users'))).toBeUndefined();
    await signInAs(app, 'forgetful', generated.body.password);
  });
});

describe('your own password changed as JSON', () => {
  it('POST /account/password answers 200, keeps this session signed in, and no flash waits', async () => {
    const me = await buildUser(db.prisma, { username: 'scripted' });
    const agent = await signInAs(app, 'scripted', me.password);
    const response = await sendJson(agent, '/account/password', {
      current: me.password,
      password: 'changed by a script',
      confirm: 'changed by a script',
    });
    expect(response.status, response.text.slice(0, 300)).toBe(200);
    // No other session was signed in, so none was signed out.
    expect(response.body).toEqual({ ok: true, endedSessions: 0, message: 'Your password was changed.' });
    expect(response.text).not.toContain('changed by a script');
    expect(flashOf(await nextPage(agent, '/account'))).toBeUndefined();
    await signInAs(app, 'scripted', 'changed by a script');
  });

  it('says how many other sessions it signed out, when there were any', async () => {
    const me = await buildUser(db.prisma, { username: 'busy' });
    const agent = await signInAs(app, 'busy', me.password);
    await signInAs(app, 'busy', me.password);
    await signInAs(app, 'busy', me.password);
    const response = await sendJson(agent, '/account/password', {
      current: me.password,
      password: 'one for all devices',
      confirm: 'one for all devices',
    });
    expect(response.status, response.text.slice(0, 300)).toBe(200);
    expect(response.body).toEqual({
      ok: true,
      endedSessions: 2,
      message: 'Your password was changed. 2 other sessions were signed out.',
    });
  });

  it('from the account page still answers 303 to it, where the flash shows once', async () => {
    const me = await buildUser(db.prisma, { username: 'clicked' });
    const agent = await signInAs(app, 'clicked', me.password);
    const response = await sendForm(agent, '/account/password', {
      current: me.password,
      password: 'changed in the form',
      confirm: 'changed in the form',
    });
    expect(response.status).toBe(303);
    expect(response.headers.location).toBe('/account');
    expect(flashOf(await nextPage(agent, '/account'))).toBe('Your password was changed.');
    expect(flashOf(await nextPage(agent, '/account'))).toBeUndefined();
  });
});

describe('the same changes sent by the users page', () => {
  it('still answer 303 to the users page that lists the user, where the flash shows once', async () => {
    const created = await sendForm(ops, '/admin/users', {
      username: 'formuser',
      role: 'user',
      password: 'typed in a form',
    });
    expect(created.status).toBe(303);
    expect(created.headers.location).toBe('/admin/users?q=formuser');
    expect(flashOf(await nextPage(ops, '/admin/users?q=formuser'))).toBe('Created formuser.');
    expect(flashOf(await nextPage(ops, '/admin/users'))).toBeUndefined();

    const { id } = await userNamed('formuser');
    for (const [action, body, message] of [
      ['role', { role: 'admin' }, 'formuser is now an admin. The admin pages open at their next sign-in.'],
      ['disable', {}, 'formuser is disabled.'],
      ['enable', {}, 'formuser is enabled.'],
      ['password', { password: 'another typed one' }, 'Password of formuser changed.'],
    ] as const) {
      const response = await sendForm(ops, `/admin/users/${id}/${action}`, body);
      expect(response.status, action).toBe(303);
      expect(response.headers.location, action).toBe('/admin/users?q=formuser');
      expect(flashOf(await nextPage(ops, '/admin/users?q=formuser')), action).toBe(message);
    }
    expect(await userNamed('formuser')).toMatchObject({ role: 'admin', isDisabled: false });
  });
});
