import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, postLogin, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A user admin's script offboarding someone sent `{"reason": "left the centre"}` to Disable: it was
 * answered 200 "bob is disabled." and the reason went nowhere (the audit entry has none), as a
 * `{"keep_current": true}` sent to Sign out all sessions was ignored and every session ended. Creating a
 * user, resetting a password and changing a role already refused a field they do not read, by name; the
 * actions that read none (disable, enable, unlock sign-in, sign out all sessions, and the Account page's
 * sign out of the other sessions) now refuse any, as Run now does, and change and audit nothing.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let ops: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'uk-ops', role: 'admin', password: 'uk-ops-password' });
  app = buildTestApp(db);
  ops = await signInAs(app, 'uk-ops', 'uk-ops-password');
});
afterAll(() => db?.drop());

async function postJson(agent: Agent, path: string, body: object) {
  return agent
    .post(path)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(agent))
    .send(body);
}

const auditCount = (action: string, target: string) => db.prisma.auditLog.count({ where: { action, target } });
const liveSessionsOf = (id: number) =>
  db.prisma.$queryRaw<{ count: number }[]>`
    SELECT count(*)::int AS count FROM "session" WHERE sess -> 'passport' ->> 'user' = ${String(id)}`.then(
    (rows) => rows[0]?.count ?? 0,
  );

describe('an action on a user sent fields it does not read', () => {
  it('Disable and Enable refuse them by name, and change and audit nothing', async () => {
    const bob = await buildUser(db.prisma, { username: 'uk-bob' });
    const disable = await postJson(ops, `/admin/users/${bob.id}/disable`, { reason: 'left the centre' });
    expect(disable.status, disable.text.slice(0, 300)).toBe(400);
    expect(disable.body).toEqual({ error: 'input: has an unknown field: reason', code: 400 });
    expect((await db.prisma.user.findUniqueOrThrow({ where: { id: bob.id } })).isDisabled).toBe(false);
    expect(await auditCount('user.disable', 'user:uk-bob')).toBe(0);

    await db.prisma.user.update({ where: { id: bob.id }, data: { isDisabled: true } });
    const enable = await postJson(ops, `/admin/users/${bob.id}/enable`, { isDisabled: false, note: 'back' });
    expect(enable.status).toBe(400);
    expect(enable.body).toEqual({ error: 'input: has unknown fields: isDisabled, note', code: 400 });
    expect((await db.prisma.user.findUniqueOrThrow({ where: { id: bob.id } })).isDisabled).toBe(true);
    expect(await auditCount('user.enable', 'user:uk-bob')).toBe(0);
  });

  it('Unlock sign-in refuses them, and the lock stays', async () => {
    const cy = await buildUser(db.prisma, { username: 'uk-cy' });
    const lockedUntil = new Date(Date.now() + 10 * 60_000);
    await db.prisma.authThrottle.create({
      data: { username: 'uk-cy', ip: '*', failureCount: 20, windowStart: new Date(), lockedUntil },
    });
    const unlock = await postJson(ops, `/admin/users/${cy.id}/unlock`, { username: 'uk-cy' });
    expect(unlock.status).toBe(400);
    expect(unlock.body).toEqual({ error: 'input: has an unknown field: username', code: 400 });
    expect(await db.prisma.authThrottle.count({ where: { username: 'uk-cy', lockedUntil: { gt: new Date() } } })).toBe(
      1,
    );
    expect(await auditCount('user.unlock_sign_in', 'user:uk-cy')).toBe(0);
  });

  it("Sign out all sessions, and the Account page's Sign out of all other sessions, refuse them and end none", async () => {
    const di = await buildUser(db.prisma, { username: 'uk-di' });
    const di1 = await signInAs(app, di.username, di.password);
    expect((await postLogin(app, di.username, di.password)).response.status).toBe(302);
    expect(await liveSessionsOf(di.id)).toBe(2);

    const all = await postJson(ops, `/admin/users/${di.id}/sign-out-all`, { keep_current: true });
    expect(all.status).toBe(400);
    expect(all.body).toEqual({ error: 'input: has an unknown field: keep_current', code: 400 });
    const own = await postJson(di1, '/account/sign-out-others', { all: true });
    expect(own.status).toBe(400);
    expect(own.body).toEqual({ error: 'input: has an unknown field: all', code: 400 });
    expect(await liveSessionsOf(di.id)).toBe(2);
    expect(await auditCount('user.sessions_end', 'user:uk-di')).toBe(0);
  });

  it('each still does its work sent no fields, or only the CSRF token as its page form sends it', async () => {
    const eve = await buildUser(db.prisma, { username: 'uk-eve' });
    const token = await csrfTokenOf(ops);
    const form = (path: string) => ops.post(path).set('Accept', 'text/html').type('form').send({ csrf_token: token });
    expect((await form(`/admin/users/${eve.id}/disable`)).status).toBe(303);
    expect((await postJson(ops, `/admin/users/${eve.id}/enable`, {})).body).toMatchObject({
      ok: true,
      isChanged: true,
    });
    expect((await form(`/admin/users/${eve.id}/unlock`)).status).toBe(303);
    expect((await postJson(ops, `/admin/users/${eve.id}/sign-out-all`, {})).status).toBe(200);
    const bare = await ops
      .post(`/admin/users/${eve.id}/disable`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token);
    expect(bare.status, bare.text.slice(0, 300)).toBe(200);
    expect((await form('/account/sign-out-others')).status).toBe(303);
    expect((await db.prisma.user.findUniqueOrThrow({ where: { id: eve.id } })).isDisabled).toBe(true);
  });
});
