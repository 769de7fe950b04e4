import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordAudit, verifyAuditChain } from '../../src/modules/audit/audit.service.js';
import { CLI_ACTOR } from '../../src/modules/audit/audit-actors.js';
import { buildUser } from '../support/factories.js';
import { type Agent, postLogin, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A failed sign-in at a name no account has is written under the name as typed. Typed as `cli`,
 * `system` or `provider:stripe`, the audit log's own actors (the user tools, the start-up, a payment
 * provider), it was written under that actor: /admin/audit?actor=cli listed a stranger's attempt among
 * the user tools' entries, so anyone at the sign-in form could add entries under the tools' name. Such
 * an attempt is now written under the actor `(reserved name)`, the name typed in its details, and the
 * lockout still counts it under the name typed.
 */
let db: TestDatabase;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'keeper', role: 'admin', password: 'keeper-password' });
  admin = await signInAs(buildTestApp(db), 'keeper', 'keeper-password');
  // One entry of the user tools' own, as `npm run user:*` writes it.
  await recordAudit(db, {
    actor: CLI_ACTOR,
    ip: null,
    userAgent: 'user.cli',
    action: 'user.disable',
    status: 'ok',
    target: 'user:keeper',
  });
});
afterAll(() => db?.drop());

const app = () => buildTestApp(db, { env: { TRUST_PROXY: 'loopback' } });

/** The entries from `ip`, oldest first, as the audit log keeps them. */
const entriesFrom = (ip: string) =>
  db.prisma.auditLog.findMany({
    where: { ip },
    orderBy: { id: 'asc' },
    select: { actor: true, action: true, target: true, status: true, details: true },
  });

/** The actions /admin/audit lists for the Actor filter `actor`, and the actors it says it matched. */
async function auditPageFor(actor: string) {
  const answer = await admin
    .get(`/admin/audit?actor=${encodeURIComponent(actor)}`)
    .set('Accept', 'application/json')
    .expect(200);
  return {
    actions: (answer.body.entries as { action: string }[]).map((entry) => entry.action),
    matchedActors: answer.body.matchedActors as string[],
  };
}

describe('a failed sign-in typed as one of the audit log’s own actors', () => {
  it.each([
    ['cli', 'cli', '203.0.113.21'],
    [' CLI ', 'cli', '203.0.113.22'],
    ['system', 'system', '203.0.113.23'],
    ['Provider:Stripe', 'provider:stripe', '203.0.113.24'],
  ])(
    'typed %j is not written under that actor, but as (reserved name) with the name typed',
    async (typed, name, ip) => {
      await postLogin(app(), typed, 'a-guess', { ip });
      expect(await entriesFrom(ip)).toEqual([
        {
          actor: '(reserved name)',
          action: 'login.failure',
          target: null,
          status: 'failed',
          details: { reason: 'bad_credentials', typedUsername: name },
        },
      ]);
    },
  );

  it('leaves the Actor filter cli with the user tools’ entries alone, system and provider:stripe with none', async () => {
    await postLogin(app(), 'cli', 'a-guess', { ip: '203.0.113.25' });
    await postLogin(app(), 'system', 'a-guess', { ip: '203.0.113.25' });
    await postLogin(app(), 'provider:stripe', 'a-guess', { ip: '203.0.113.25' });
    expect(await auditPageFor('cli')).toEqual({ actions: ['user.disable'], matchedActors: ['cli'] });
    expect(await auditPageFor('system')).toEqual({ actions: [], matchedActors: [] });
    expect(await auditPageFor('provider:stripe')).toEqual({ actions: [], matchedActors: [] });
    // The attempts are found together under their own actor.
    const reserved = await auditPageFor('(reserved name)');
    expect(reserved.matchedActors).toEqual(['(reserved name)']);
    expect(reserved.actions.every((action) => action === 'login.failure')).toBe(true);
  });

  it('still locks the name typed, and writes the lock and its first refusal the same way', async () => {
    const ip = '203.0.113.26';
    for (let attempt = 1; attempt <= 6; attempt++) await postLogin(app(), 'system', 'a-guess', { ip });
    const entries = await entriesFrom(ip);
    expect(entries.map((entry) => `${entry.action} ${entry.status}`)).toEqual([
      ...Array.from({ length: 5 }, () => 'login.failure failed'),
      'login.lockout_start denied',
      'login.failure denied',
    ]);
    expect(entries.every((entry) => entry.actor === '(reserved name)' && entry.target === null)).toBe(true);
    expect(entries.map((entry) => (entry.details as { typedUsername?: string }).typedUsername)).toEqual(
      entries.map(() => 'system'),
    );
    expect(entries[6]?.details).toMatchObject({ reason: 'locked' });
    // Counted under the name typed: the lock is system's, not every reserved name's.
    const throttled = await db.prisma.$queryRaw<{ username: string }[]>`
      SELECT DISTINCT username FROM auth_throttle WHERE ip = ${ip} AND locked_until > now()`;
    expect(throttled).toEqual([{ username: 'system' }]);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true });
  });

  it('typed as the marker itself is written the same way, so every entry under it has the name typed', async () => {
    await postLogin(app(), '(Reserved Name)', 'a-guess', { ip: '203.0.113.27' });
    expect(await entriesFrom('203.0.113.27')).toMatchObject([
      { actor: '(reserved name)', details: { reason: 'bad_credentials', typedUsername: '(reserved name)' } },
    ]);
  });

  it('leaves any other name no account has as it was: its actor is the name typed', async () => {
    await postLogin(app(), 'Clive', 'a-guess', { ip: '203.0.113.28' });
    expect(await entriesFrom('203.0.113.28')).toEqual([
      {
        actor: 'clive',
        action: 'login.failure',
        target: null,
        status: 'failed',
        details: { reason: 'bad_credentials' },
      },
    ]);
  });
});
