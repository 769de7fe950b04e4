import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postAuditVerify } from '../support/audit-verify.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

/** The details of an account's entries of `action`, oldest first, as recorded. */
async function detailsOf(target: string, action: string) {
  const entries = await db.prisma.auditLog.findMany({ where: { target, action }, orderBy: { id: 'asc' } });
  return entries.map((entry) => entry.details);
}

/** The Details cells of /admin/audit filtered by target and action, as a reader sees them (newest first). */
async function detailsCellsOf(agent: Agent, target: string, action: string) {
  const query = new URLSearchParams({ target, action });
  const page = await agent.get(`/admin/audit?${query}`).set('Accept', 'text/html');
  expect(page.status).toBe(200);
  return [...page.text.matchAll(/data-label="Details"[^>]*>([\s\S]*?)<\/td>/g)].map((match) =>
    (match[1] as string).replace(/<[^>]+>/g, '').replace(/&#34;/g, '"'),
  );
}

/** The details column of /admin/audit.csv filtered by target and action, as JSON text (oldest first). */
async function csvDetailsOf(agent: Agent, target: string, action: string) {
  const csv = await agent.get(`/admin/audit.csv?${new URLSearchParams({ target, action })}`).expect(200);
  const [header, ...rows] = csv.text.trimEnd().split('\n');
  const column = header?.split(',').indexOf('details') ?? -1;
  expect(column).toBeGreaterThan(0);
  // A quoted JSON field, its quotes doubled: the only quoted field these rows have.
  return rows.map((row) => /,"(\{.*\})",/.exec(row)?.[1]?.replace(/""/g, '"'));
}

describe("the audit entries of an admin's user actions say what they did", () => {
  it('records whether a reset password was generated or chosen, and how many sessions it ended', async () => {
    const app = buildTestApp(db);
    await buildUser(db.prisma, { username: 'resetchief', role: 'admin', password: 'resetchief-password' });
    const admin = await signInAs(app, 'resetchief', 'resetchief-password');
    const target = await buildUser(db.prisma, { username: 'resetme' });
    await signInAs(app, 'resetme', target.password);
    await signInAs(app, 'resetme', target.password);

    await admin
      .post(`/admin/users/${target.id}/password`)
      .type('form')
      .send({ csrf_token: await csrfTokenOf(admin) })
      .expect(200);
    const chosen = 'chosen-by-the-admin-42';
    await admin
      .post(`/admin/users/${target.id}/password`)
      .type('form')
      .send({ password: chosen, csrf_token: await csrfTokenOf(admin) })
      .expect(303);
    await signInAs(app, 'resetme', chosen);
    await admin
      .post(`/admin/users/${target.id}/password`)
      .type('form')
      .send({ password: 'chosen-once-again-43', csrf_token: await csrfTokenOf(admin) })
      .expect(303);

    const details = await detailsOf('user:resetme', 'user.password_reset');
    expect(details).toEqual([
      { isPasswordGenerated: true, endedSessions: 2 },
      { isPasswordGenerated: false, endedSessions: 0 },
      { isPasswordGenerated: false, endedSessions: 1 },
    ]);
    // Never the password itself.
    expect(JSON.stringify(details)).not.toContain('chosen-');

    // An admin resetting their own: the session they reset it from stays, and is not counted.
    const chief = await db.prisma.user.findUniqueOrThrow({ where: { username: 'resetchief' } });
    await signInAs(app, 'resetchief', 'resetchief-password');
    await admin
      .post(`/admin/users/${chief.id}/password`)
      .type('form')
      .send({ password: 'resetchief-password-2', csrf_token: await csrfTokenOf(admin) })
      .expect(303);
    expect(await detailsOf('user:resetchief', 'user.password_reset')).toEqual([
      { isPasswordGenerated: false, endedSessions: 1 },
    ]);

    // The audit page and audit.csv show them as recorded, and the chain still verifies.
    const cells = await detailsCellsOf(admin, 'user:resetme', 'user.password_reset');
    expect(cells).toContain('{"endedSessions":2,"isPasswordGenerated":true}');
    expect(cells).toContain('{"endedSessions":1,"isPasswordGenerated":false}');
    expect(await csvDetailsOf(admin, 'user:resetme', 'user.password_reset')).toEqual(
      expect.arrayContaining([
        '{"endedSessions":2,"isPasswordGenerated":true}',
        '{"endedSessions":0,"isPasswordGenerated":false}',
      ]),
    );
    const verdict = await postAuditVerify(admin, 'application/json');
    expect(verdict.body.status).toBe('ok');
  });

  it('keeps the lock a reset lifted beside the new facts', async () => {
    const app = buildTestApp(db);
    await buildUser(db.prisma, { username: 'lockchief', role: 'admin', password: 'lockchief-password' });
    const admin = await signInAs(app, 'lockchief', 'lockchief-password');
    const target = await buildUser(db.prisma, { username: 'lockedout' });
    const lockedUntil = new Date(Date.now() + 10 * 60_000);
    await db.prisma.authThrottle.create({
      data: { username: 'lockedout', ip: '*', windowStart: new Date(), failureCount: 10, lockedUntil },
    });
    await admin
      .post(`/admin/users/${target.id}/password`)
      .type('form')
      .send({ csrf_token: await csrfTokenOf(admin) })
      .expect(200);
    expect(await detailsOf('user:lockedout', 'user.password_reset')).toEqual([
      { isPasswordGenerated: true, endedSessions: 0, lockedUntil: lockedUntil.toISOString() },
    ]);
  });

  it('records how many sessions a disable ended, and that an enable ended none', async () => {
    const app = buildTestApp(db);
    await buildUser(db.prisma, { username: 'offchief', role: 'admin', password: 'offchief-password' });
    const admin = await signInAs(app, 'offchief', 'offchief-password');
    const target = await buildUser(db.prisma, { username: 'switched' });
    for (let i = 0; i < 3; i++) await signInAs(app, 'switched', target.password);

    await admin
      .post(`/admin/users/${target.id}/disable`)
      .type('form')
      .send({ csrf_token: await csrfTokenOf(admin) })
      .expect(303);
    await admin
      .post(`/admin/users/${target.id}/enable`)
      .type('form')
      .send({ csrf_token: await csrfTokenOf(admin) })
      .expect(303);
    // A second disable, with no session of theirs since: it ended none.
    await admin
      .post(`/admin/users/${target.id}/disable`)
      .type('form')
      .send({ csrf_token: await csrfTokenOf(admin) })
      .expect(303);

    expect(await detailsOf('user:switched', 'user.disable')).toEqual([{ endedSessions: 3 }, { endedSessions: 0 }]);
    expect(await detailsOf('user:switched', 'user.enable')).toEqual([{ endedSessions: 0 }]);
    const cells = await detailsCellsOf(admin, 'user:switched', 'user.disable');
    expect(cells).toContain('{"endedSessions":3}');
    expect(await csvDetailsOf(admin, 'user:switched', 'user.disable')).toEqual([
      '{"endedSessions":3}',
      '{"endedSessions":0}',
    ]);
    const verdict = await postAuditVerify(admin, 'application/json');
    expect(verdict.body.status).toBe('ok');
  });
});
