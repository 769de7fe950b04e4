import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { sessionsWaitingForLocks } from '../support/lock-waits.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

type Change = 'disable' | 'demote';

// Each test starts from two active admins and nobody else: the pair is the whole margin. The earlier
// tests' admins are made users, not disabled: the refusal names a disabled admin to enable instead.
beforeEach(async () => {
  await db.pool.query(`UPDATE users SET role = 'user' WHERE role = 'admin'`);
});

const LAST_ADMIN = 'This is the last active admin; make another admin first.';
/** The refusal while `username`, a disabled admin, could be enabled instead. */
const lastAdminWithDisabled = (username: string) =>
  `This is the last active admin; make another admin first, or enable the disabled admin ${username}.`;

let pairCounter = 0;
async function twoAdmins() {
  pairCounter += 1;
  const app = buildTestApp(db);
  const a = await buildUser(db.prisma, { username: `admina${pairCounter}`, role: 'admin' });
  const b = await buildUser(db.prisma, { username: `adminb${pairCounter}`, role: 'admin' });
  const agentOfA = await signInAs(app, a.username, a.password);
  const agentOfB = await signInAs(app, b.username, b.password);
  return { a, b, agentOfA, agentOfB };
}

async function post(agent: Agent, targetId: number, change: Change, token?: string) {
  const path = change === 'disable' ? `/admin/users/${targetId}/disable` : `/admin/users/${targetId}/role`;
  return agent
    .post(path)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', token ?? (await csrfTokenOf(agent)))
    .send(change === 'disable' ? {} : { role: 'user' });
}

const activeAdmins = async () =>
  (
    await db.pool.query<{ username: string }>(
      `SELECT username FROM users WHERE role = 'admin' AND NOT is_disabled ORDER BY username`,
    )
  ).rows.map((row) => row.username);

const CHANGES: Array<[Change, Change]> = [
  ['disable', 'disable'],
  ['demote', 'demote'],
  ['disable', 'demote'],
  ['demote', 'disable'],
];

describe('two admins changing each other at the same moment', () => {
  it.each(CHANGES)(
    'A may %s B or B %s A, never both: the second waits, counts again and gets 409',
    async (first, second) => {
      const { a, b, agentOfB } = await twoAdmins();
      // A's request, caught after it locked the admins and changed B, before its commit.
      const other = new pg.Client({ connectionString: db.url });
      await other.connect();
      try {
        await other.query('BEGIN');
        await other.query(
          `SELECT id FROM users WHERE id = $1 OR (role = 'admin' AND NOT is_disabled) ORDER BY id FOR NO KEY UPDATE`,
          [b.id],
        );
        await other.query(
          first === 'disable'
            ? 'UPDATE users SET is_disabled = true WHERE id = $1'
            : `UPDATE users SET role = 'user' WHERE id = $1`,
          [b.id],
        );
        // B still passes the admin guard: A's change is not committed yet.
        const requested = post(agentOfB, a.id, second, await csrfTokenOf(agentOfB));
        const waiting = await sessionsWaitingForLocks(db.pool);
        expect(waiting, "B's request never waited for A's").toBe(1);
        await other.query('COMMIT');
        const response = await requested;
        expect(response.status, response.text).toBe(409);
        // A disabled B can be enabled again instead; a demoted B is no admin to name.
        expect(response.body.error).toBe(first === 'disable' ? lastAdminWithDisabled(b.username) : LAST_ADMIN);
      } finally {
        await other.end();
      }
      expect(await activeAdmins()).toEqual([a.username]);
      const refused = await db.prisma.auditLog.count({
        where: { target: `user:${a.username}`, action: { in: ['user.disable', 'user.role_change'] } },
      });
      expect(refused, 'the refused change wrote an audit entry').toBe(0);
    },
  );

  it.each(CHANGES)('A %s B while B %s A, over and over: exactly one of them goes through', async (first, second) => {
    for (let round = 0; round < 5; round++) {
      await db.pool.query(`UPDATE users SET is_disabled = true WHERE role = 'admin'`);
      const { a, b, agentOfA, agentOfB } = await twoAdmins();
      const tokens = [await csrfTokenOf(agentOfA), await csrfTokenOf(agentOfB)];
      const statuses = (
        await Promise.all([post(agentOfA, b.id, first, tokens[0]), post(agentOfB, a.id, second, tokens[1])])
      ).map((response) => response.status);
      // The loser is refused by the last-admin check, or, when it came in after the winner's
      // commit, already by the admin guard (signed out: 401, no longer an admin: 403).
      expect(
        statuses.filter((status) => status === 200),
        `statuses ${statuses}`,
      ).toHaveLength(1);
      expect(
        statuses.filter((status) => [401, 403, 409].includes(status)),
        `statuses ${statuses}`,
      ).toHaveLength(1);
      expect(await activeAdmins()).toHaveLength(1);
    }
  });

  it('still lets the second of three admins go, and refuses the third, one request at a time', async () => {
    const { a, b, agentOfA } = await twoAdmins();
    const c = await buildUser(db.prisma, { username: `adminc${pairCounter}`, role: 'admin' });
    await post(agentOfA, b.id, 'demote').then((response) => expect(response.status).toBe(200));
    await post(agentOfA, c.id, 'disable').then((response) => expect(response.status).toBe(200));
    const self = await post(agentOfA, a.id, 'disable');
    expect(self.status).toBe(409);
    expect(self.body).toEqual({ error: lastAdminWithDisabled(c.username), code: 409 });
    expect(await activeAdmins()).toEqual([a.username]);
    // Disabling or demoting someone already so is no change, and no error.
    await post(agentOfA, b.id, 'demote').then((response) => expect(response.status).toBe(200));
    await post(agentOfA, c.id, 'disable').then((response) => expect(response.status).toBe(200));
  });
});

describe('the last admin, refused in the browser', () => {
  it.each<Change>(['disable', 'demote'])(
    '%s of the last active admin comes back as the users page saying why, with nothing changed',
    async (change) => {
      const app = buildTestApp(db);
      const solo = await buildUser(db.prisma, { username: `solo${change}`, role: 'admin' });
      const agent = await signInAs(app, solo.username, solo.password);
      const path = change === 'disable' ? `/admin/users/${solo.id}/disable` : `/admin/users/${solo.id}/role`;
      const refused = await agent
        .post(path)
        .set('Accept', 'text/html')
        .set('X-CSRFToken', await csrfTokenOf(agent))
        .type('form')
        .send(change === 'disable' ? {} : { role: 'user' })
        .expect(409);
      expect(refused.text).toContain('<h1>Users</h1>');
      expect(refused.text).toContain(LAST_ADMIN);
      // The list is searched for the account the admin acted on, as after a change that worked.
      expect(refused.text).toContain(`value="${solo.username}"`);
      expect(refused.text).not.toContain('Back to the start page');
      expect(await activeAdmins()).toEqual([solo.username]);
    },
  );
});

describe('an admin disabling their own account', () => {
  it('is refused while another admin could do it, and nothing changes; another admin still can', async () => {
    const { a, b, agentOfA, agentOfB } = await twoAdmins();
    const self = await post(agentOfA, a.id, 'disable');
    expect(self.status).toBe(409);
    expect(self.body).toEqual({
      error: 'You cannot disable your own account: you would be signed out of this page at once. Another admin can.',
      code: 409,
    });
    expect(await activeAdmins()).toEqual([a.username, b.username]);
    // Still signed in: the admin pages still answer.
    await agentOfA.get('/admin/users').set('Accept', 'application/json').expect(200);
    await post(agentOfB, a.id, 'disable').then((response) => expect(response.status).toBe(200));
    expect(await activeAdmins()).toEqual([b.username]);
  });

  it('comes back as the users page saying why in the browser', async () => {
    const { a, agentOfA } = await twoAdmins();
    const refused = await agentOfA
      .post(`/admin/users/${a.id}/disable`)
      .set('Accept', 'text/html')
      .set('X-CSRFToken', await csrfTokenOf(agentOfA))
      .type('form')
      .send({})
      .expect(409);
    expect(refused.text).toContain('<h1>Users</h1>');
    expect(refused.text).toContain('You cannot disable your own account');
    expect((await db.prisma.user.findUniqueOrThrow({ where: { id: a.id } })).isDisabled).toBe(false);
  });
});

describe('the users page', () => {
  it("offers no Disable button on the admin's own row, and one on another admin's", async () => {
    const { a, b, agentOfA } = await twoAdmins();
    const page = await agentOfA.get(`/admin/users?q=${a.username}`).set('Accept', 'text/html').expect(200);
    expect(page.text).not.toContain(`action="/admin/users/${a.id}/disable"`);
    expect(page.text).toContain('Another admin can disable your account');
    const other = await agentOfA.get(`/admin/users?q=${b.username}`).set('Accept', 'text/html').expect(200);
    expect(other.text).toContain(`action="/admin/users/${b.id}/disable"`);
  });
});
