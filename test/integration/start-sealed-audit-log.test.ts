import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { configureAuditChain, recordAudit, verifyAuditChain } from '../../src/modules/audit/audit.service.js';
import { builtFile } from '../support/built-app.js';
import { runToExit } from '../support/run-to-exit.js';
import { PROJECT_ROOT, spawnServer } from '../support/spawn-server.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

const CHAIN_KEY = 'c'.repeat(40);

let db: TestDatabase;
let port: number;
beforeAll(async () => {
  db = await createTestDatabase();
  port = await findFreePort();
});
afterAll(async () => {
  configureAuditChain({ chainKeys: [], unsealedUntil: 0n });
  await db?.drop();
});

/**
 * A development start on `db` (no APP_ENV, so no AUDIT_CHAIN_KEY is required), which creates the
 * admin `ADMIN_USERNAME` names: that creation is the start's own audit entry.
 */
function startEnv(admin: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: db.url,
    PORT: String(port),
    DEMO_SEED: '0',
    INGEST_ENABLED: '0',
    LOG_LEVEL: 'info',
    ADMIN_USERNAME: admin,
    ADMIN_PASSWORD: `${admin}-password-long`,
    ...extra,
  };
}

async function countEntries(): Promise<number> {
  return db.prisma.auditLog.count();
}

// Started without AUDIT_CHAIN_KEY (allowed outside production) on a database whose log is sealed,
// the server appended unsealed entries after the sealed ones (the bootstrap admin's, every sign-in):
// the chain was broken for good, AuditChainBroken fired, and the runbook forbids repairing it. The
// user tools and npm run ingest refuse this with exit 78 (refuseUnsealedAppend); the
// server now does too, after its migrations (which write no entry), before it seeds, writes or serves anything.
describe('a start without AUDIT_CHAIN_KEY', () => {
  it('on an unsealed log (no key yet, as the demo) starts as before and writes unsealed entries', async () => {
    configureAuditChain({ chainKeys: [], unsealedUntil: 0n });
    await recordAudit(db, { actor: 'ops', action: 'test.unsealed', status: 'ok', details: {} });

    const server = await spawnServer(startEnv('firstadmin'));
    expect(await server.stop()).toBe(0);
    expect(server.output()).toContain('created the admin from ADMIN_USERNAME');
    expect(await countEntries()).toBe(2);
  }, 90_000);

  it('right after a first key (AUDIT_CHAIN_UNSEALED_UNTIL), with the key, starts and seals what it writes', async () => {
    const newest = await db.prisma.auditLog.findFirstOrThrow({ orderBy: { id: 'desc' }, select: { id: true } });
    const server = await spawnServer(
      startEnv('keyedadmin', { AUDIT_CHAIN_KEY: CHAIN_KEY, AUDIT_CHAIN_UNSEALED_UNTIL: String(newest.id) }),
    );
    expect(await server.stop()).toBe(0);
    expect(server.output()).toContain('created the admin from ADMIN_USERNAME');
    expect(await countEntries()).toBe(3);
    configureAuditChain({ chainKeys: [CHAIN_KEY], unsealedUntil: newest.id });
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true, isSealed: true });
  }, 90_000);

  it('on a sealed log stops with exit 78 naming the key, and writes and serves nothing', async () => {
    const before = await countEntries();
    const newest = await db.prisma.auditLog.findFirstOrThrow({ orderBy: { id: 'desc' }, select: { id: true } });
    const result = await runToExit(process.execPath, [builtFile('src/server.ts')], {
      cwd: PROJECT_ROOT,
      env: startEnv('lateadmin'),
      giveUpMs: 30_000,
    });
    expect(result.hasExitedItself, result.output).toBe(true);
    expect(result.code, result.output).toBe(78);
    expect(result.output).toContain(
      `Invalid configuration:\n  - AUDIT_CHAIN_KEY: is not set, but the audit log's newest entry (#${newest.id}) is sealed with a key (or was changed): `,
    );
    expect(result.output).toContain('set AUDIT_CHAIN_KEY (and AUDIT_CHAIN_OLD_KEYS, AUDIT_CHAIN_UNSEALED_UNTIL)');
    expect(result.output).not.toContain('is listening');
    expect(result.output).not.toContain('failed to start');
    expect(await countEntries()).toBe(before);
    expect(await db.prisma.user.count({ where: { username: 'lateadmin' } })).toBe(0);
    // The chain the keyed instance wrote still verifies with its key.
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true, isSealed: true });
  }, 90_000);
});

// The start-up check passes an instance without the key while the log is still unsealed. In a rolling
// restart that brings in the key, another instance with it then writes the first sealed entry, and
// this one, left running, appended unsealed entries after it (every sign-in): the chain broke for good.
// Each append now reads the newest entry under the chain's lock and refuses to follow a sealed one.
describe('an instance started without AUDIT_CHAIN_KEY beside one that has it', () => {
  it('answers a request that would append 503 naming the key, writes nothing, and serves on', async () => {
    const other = await createTestDatabase();
    const otherPort = await findFreePort();
    try {
      configureAuditChain({ chainKeys: [], unsealedUntil: 0n });
      const server = await spawnServer({
        DATABASE_URL: other.url,
        PORT: String(otherPort),
        DEMO_SEED: '0',
        INGEST_ENABLED: '0',
        LOG_LEVEL: 'info',
        ADMIN_USERNAME: 'rollingadmin',
        ADMIN_PASSWORD: 'rollingadmin-password-long',
      });
      try {
        // The instance given the key writes the first sealed entry after this one started.
        const unsealedUntil = (await other.prisma.auditLog.findFirstOrThrow({ orderBy: { id: 'desc' } })).id;
        configureAuditChain({ chainKeys: [CHAIN_KEY], unsealedUntil });
        await recordAudit(other, { actor: 'ops', action: 'test.first_sealed', status: 'ok' });
        const count = await other.prisma.auditLog.count();

        const base = `http://127.0.0.1:${otherPort}`;
        const form = await fetch(`${base}/login`, { headers: { accept: 'text/html' } });
        const cookie = form.headers
          .getSetCookie()
          .map((each) => each.split(';')[0])
          .join('; ');
        const token = /name="csrf_token" value="([^"]+)"/.exec(await form.text())?.[1] ?? '';
        const signIn = await fetch(`${base}/login`, {
          method: 'POST',
          redirect: 'manual',
          headers: { accept: 'application/json', 'content-type': 'application/json', cookie, 'x-csrftoken': token },
          body: JSON.stringify({ username: 'rollingadmin', password: 'rollingadmin-password-long' }),
        });
        const body = (await signIn.json()) as { error: string; code: number };
        expect(signIn.status, `${JSON.stringify(body)}\n${server.output()}`).toBe(503);
        expect(body.error).toMatch(/this instance has no AUDIT_CHAIN_KEY, .* set AUDIT_CHAIN_KEY .* on every instance/);

        // Still serving, and said why in its log.
        expect((await fetch(`${base}/healthz`)).status).toBe(200);
        expect(server.process.exitCode).toBeNull();
        expect(server.output()).toContain('audit entry refused: this instance has no AUDIT_CHAIN_KEY');
        expect(await other.prisma.auditLog.count()).toBe(count);
        expect(await verifyAuditChain(other.prisma)).toMatchObject({ isIntact: true, isSealed: true, count });
      } finally {
        expect(await server.stop()).toBe(0);
      }
    } finally {
      configureAuditChain({ chainKeys: [], unsealedUntil: 0n });
      await other.drop();
    }
  }, 90_000);
});
