import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { recordAudit, verifyAuditChain } from '../../src/modules/audit/audit.service.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, postLogin, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A user's History on /admin/users (the audit log filtered by `user:<name>`) showed what admins did
 * to the account but none of its sign-ins, failures, locks or sign-outs: those entries had no
 * target. An entry about an account now targets it; an attempt at a name no account has keeps
 * no target, as before, so the log holds nothing more of what a stranger typed than its actor.
 */
let db: TestDatabase;
let clock: Date;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'historian', role: 'admin', password: 'historian-password' });
  admin = await signInAs(buildTestApp(db), 'historian', 'historian-password');
});
afterAll(() => db?.drop());
beforeEach(() => {
  clock = new Date('2026-06-01T08:00:00Z');
});

const app = () => buildTestApp(db, { now: () => clock, env: { TRUST_PROXY: 'loopback' } });

/** The entries from `ip`, oldest first, as the audit log keeps them. */
const entriesFrom = (ip: string) =>
  db.prisma.auditLog.findMany({
    where: { ip },
    orderBy: { id: 'asc' },
    select: { actor: true, action: true, target: true, status: true },
  });

/** A user's History as /admin/users links it, oldest first. */
async function historyOf(username: string) {
  const answer = await admin
    .get(`/admin/audit?target=${encodeURIComponent(`user:${username}`)}`)
    .set('Accept', 'application/json')
    .expect(200);
  return (answer.body.entries as { action: string; status: string }[])
    .map(({ action, status }) => `${action} ${status}`)
    .reverse();
}

describe("a sign-in's audit entries", () => {
  it('target the account: success, wrong password, lockout, refusal while locked, sign-out', async () => {
    const user = await buildUser(db.prisma, { username: 'signer' });
    const ip = '198.51.100.11';
    for (let attempt = 1; attempt <= 5; attempt++) await postLogin(app(), 'signer', 'a-wrong-guess', { ip });
    await postLogin(app(), 'signer', user.password, { ip });
    clock = new Date(clock.getTime() + 301_000);
    const { agent, response } = await postLogin(app(), ' Signer ', user.password, { ip });
    expect(response.status).toBe(302);
    await agent
      .post('/logout')
      .set('X-Forwarded-For', ip)
      .type('form')
      .send({ csrf_token: await csrfTokenOf(agent) })
      .expect(302);

    const entries = await entriesFrom(ip);
    expect(entries.map((entry) => `${entry.action} ${entry.status}`)).toEqual([
      ...Array.from({ length: 5 }, () => 'login.failure failed'),
      'login.lockout_start denied',
      'login.failure denied',
      'login.success ok',
      'logout ok',
    ]);
    expect(entries.every((entry) => entry.actor === 'signer' && entry.target === 'user:signer')).toBe(true);
    expect(await historyOf('signer')).toEqual(entries.map((entry) => `${entry.action} ${entry.status}`));
  });

  it("target a disabled account's refused sign-in", async () => {
    const user = await buildUser(db.prisma, { username: 'benchwarmer' });
    await db.prisma.user.update({ where: { id: user.id }, data: { isDisabled: true } });
    await postLogin(app(), 'benchwarmer', user.password, { ip: '198.51.100.12' });
    expect(await entriesFrom('198.51.100.12')).toEqual([
      { actor: 'benchwarmer', action: 'login.failure', target: 'user:benchwarmer', status: 'failed' },
    ]);
  });

  it('keep no target for a name no account has, nor for one longer than any username', async () => {
    const ip = '198.51.100.13';
    for (let attempt = 1; attempt <= 6; attempt++) await postLogin(app(), ' NewComer', 'a-guess', { ip });
    await postLogin(app(), `${'x'.repeat(70)}`, 'a-guess', { ip: '198.51.100.14' });
    const entries = [...(await entriesFrom(ip)), ...(await entriesFrom('198.51.100.14'))];
    expect(entries.map((entry) => `${entry.action} ${entry.status}`)).toEqual([
      ...Array.from({ length: 5 }, () => 'login.failure failed'),
      'login.lockout_start denied',
      'login.failure denied',
      'login.failure failed',
    ]);
    expect(entries.map((entry) => entry.target)).toEqual(entries.map(() => null));
    // The actor is what it was: the name as typed, trimmed and in lower case (cut and marked when too long).
    expect(entries.slice(0, 7).every((entry) => entry.actor === 'newcomer')).toBe(true);
    // Whoever later gets an account of that name finds no stranger's attempts in their History.
    await buildUser(db.prisma, { username: 'newcomer' });
    expect(await historyOf('newcomer')).toEqual([]);
  });

  it("target the account on the change-password form's lockout too", async () => {
    const user = await buildUser(db.prisma, { username: 'changer' });
    const agent = await signInAs(app(), 'changer', user.password);
    for (let attempt = 1; attempt <= 5; attempt++) {
      await agent
        .post('/account/password')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(agent))
        .send({ current: 'not-the-password', password: 'a-new-password-1', confirm: 'a-new-password-1' });
    }
    const start = await db.prisma.auditLog.findFirstOrThrow({
      where: { actor: 'changer', action: 'login.lockout_start' },
    });
    expect(start.target).toBe('user:changer');
  });

  it('chain with older entries written without a target, and the chain verifies', async () => {
    // A sign-in entry as written before: no target. It stays so (the log is never rewritten).
    await recordAudit(db, { actor: 'veteran', ip: '198.51.100.15', action: 'login.success', status: 'ok' });
    const user = await buildUser(db.prisma, { username: 'veteran' });
    await signInAs(app(), 'veteran', user.password);
    expect(await db.prisma.auditLog.findMany({ where: { actor: 'veteran' }, select: { target: true } })).toEqual([
      { target: null },
      { target: 'user:veteran' },
    ]);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true });
  });
});
