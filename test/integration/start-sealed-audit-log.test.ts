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
