import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// "N sessions were signed out" counts the sessions someone could still use: a session that expired
// and waits for the prune (session.pruner.ts) was over already, and counting it told the researcher
// (and the audit log) that a device was still signed in that was not.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'livechief', role: 'admin', password: 'livechief-password' });
  app = buildTestApp(db);
  admin = await signInAs(app, 'livechief', 'livechief-password');
});
afterAll(() => db?.drop());

/** Expires every session row of the user now in the table, as a day's idleness would, not yet pruned. */
async function expireSessionsOf(userId: number) {
  await db.prisma.$executeRaw`UPDATE "session" SET expire = now() - interval '2 days'
    WHERE sess -> 'passport' ->> 'user' = ${String(userId)}`;
}

/** The user's signed-in session rows, expired ones included. */
const sessionRowsOf = (userId: number) =>
  db.prisma.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n FROM "session"
    WHERE sess -> 'passport' ->> 'user' = ${String(userId)}`;

const detailsOf = async (target: string, action: string) =>
  (await db.prisma.auditLog.findMany({ where: { target, action }, orderBy: { id: 'asc' } })).map((e) => e.details);

describe('the sessions a change signs out are counted only while they were live', () => {
  it('a password change says 1 other session, not 2, when the other one had expired', async () => {
    const me = await buildUser(db.prisma, { username: 'twolaptops' });
    await signInAs(app, 'twolaptops', me.password);
    await expireSessionsOf(me.id);
    await signInAs(app, 'twolaptops', me.password);
    const agent = await signInAs(app, 'twolaptops', me.password);
    expect((await sessionRowsOf(me.id))[0]?.n).toBe(3);

    const response = await agent
      .post('/account/password')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({ current: me.password, password: 'a new one for both', confirm: 'a new one for both' });
    expect(response.status, response.text.slice(0, 300)).toBe(200);
    expect(response.body).toEqual({
      ok: true,
      endedSessions: 1,
      message: 'Your password was changed. 1 other session was signed out.',
    });
    expect(await detailsOf('user:twolaptops', 'user.password_change')).toEqual([{ endedSessions: 1 }]);
  });

  it('an admin reset counts none when every session of the user had expired', async () => {
    const target = await buildUser(db.prisma, { username: 'longgone' });
    await signInAs(app, 'longgone', target.password);
    await signInAs(app, 'longgone', target.password);
    await expireSessionsOf(target.id);

    await admin
      .post(`/admin/users/${target.id}/password`)
      .type('form')
      .send({ password: 'reset-while-away-44', csrf_token: await csrfTokenOf(admin) })
      .expect(303);
    expect(await detailsOf('user:longgone', 'user.password_reset')).toEqual([
      { isPasswordGenerated: false, endedSessions: 0 },
    ]);
  });

  it('a disable counts the live sessions only', async () => {
    const target = await buildUser(db.prisma, { username: 'halfaway' });
    await signInAs(app, 'halfaway', target.password);
    await signInAs(app, 'halfaway', target.password);
    await expireSessionsOf(target.id);
    const live = await signInAs(app, 'halfaway', target.password);

    await admin
      .post(`/admin/users/${target.id}/disable`)
      .type('form')
      .send({ csrf_token: await csrfTokenOf(admin) })
      .expect(303);
    expect(await detailsOf('user:halfaway', 'user.disable')).toEqual([{ endedSessions: 1 }]);
    // The expired rows are signed out too, uncounted: none of the user's rows is signed in any more.
    expect((await sessionRowsOf(target.id))[0]?.n).toBe(0);
    // The live one is signed out as before, saying why.
    const page = await live.get('/login').set('Accept', 'text/html');
    expect(page.text).toContain('Your account has been disabled');
  });
});
