import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordAudit, verifyAuditChain } from '../../src/modules/audit/audit.service.js';
import { hashAuditRecord } from '../../src/modules/audit/audit-hash.js';
import { postAuditVerify } from '../support/audit-verify.js';
import { buildUser } from '../support/factories.js';
import { spawnCollecting } from '../support/run-to-exit.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { PROJECT_ROOT } from '../support/spawn-server.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * An entry rewritten with its own hash recomputed (no key, or before AUDIT_CHAIN_UNSEALED_UNTIL:
 * anyone who can write the table can do it) is seen at the next entry, which no longer follows it:
 * "Broken at entry #4: … #3 was replaced, or it was deleted and another entry given its id". The
 * page and `npm run audit:verify` went on "Entries before #4 are intact.", #3 included, the entry
 * they had just said was replaced: the reader took #3 for intact and looked for the change elsewhere.
 */

let db: TestDatabase;
let admin: Agent;

/** Rewrites entry `id`'s details and recomputes its plain hash, as someone without the key can. */
async function replaceEntry(id: bigint) {
  const row = await db.prisma.auditLog.findUniqueOrThrow({ where: { id } });
  const { ts, actor, ip, userAgent, action, target, status } = row;
  const details = { forged: true };
  const hash = hashAuditRecord(row.prevHash, { ts, actor, ip, userAgent, action, target, status, details });
  const client = await db.pool.connect();
  try {
    await client.query("SET session_replication_role = 'replica'");
    await client.query('UPDATE audit_log SET details = $2, hash = $3 WHERE id = $1', [
      id,
      JSON.stringify(details),
      hash,
    ]);
  } finally {
    await client.query("SET session_replication_role = 'origin'");
    client.release();
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'auditor', role: 'admin', password: 'auditor-password' });
  admin = await signInAs(buildTestApp(db), 'auditor', 'auditor-password');
  for (let index = 0; index < 3; index++) {
    await recordAudit(db, { actor: 'ops', action: 'test.replaced', status: 'ok', details: { index } });
  }
});
afterAll(() => db?.drop());

describe('an entry replaced with its hash recomputed', { timeout: 120_000 }, () => {
  it('is named by the entry after it, and the entries said intact stop before the replaced one', async () => {
    const ids = (await db.prisma.auditLog.findMany({ orderBy: { id: 'asc' }, select: { id: true } })).map(
      (entry) => entry.id,
    );
    const [replaced, next] = ids.slice(-2) as [bigint, bigint];
    await replaceEntry(replaced);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({
      isIntact: false,
      brokenAt: next,
      reason: expect.stringContaining(`#${replaced} was replaced`),
    });

    const page = await postAuditVerify(admin, 'text/html', 409);
    expect(page.text).toContain(`Broken at entry #${next}: `);
    expect(page.text).toContain(`Entries before #${replaced} are intact.`);
    expect(page.text).not.toContain(`Entries before #${next} are intact.`);
    const json = await postAuditVerify(admin, 'application/json', 409);
    expect(json.body).toMatchObject({ status: 'broken', brokenAt: String(next), intactBefore: String(replaced) });

    // `npm run audit:verify` says it in the same words (an npm and tsx start-up: the describe's limit).
    const tool = spawnCollecting('npm', ['run', '--silent', 'audit:verify'], {
      cwd: PROJECT_ROOT,
      env: { DATABASE_URL: db.url },
    });
    expect(await tool.exited).toBe(2);
    expect(tool.stdout()).toContain(`Entries before #${replaced} are intact.`);
    expect(tool.stdout()).not.toContain(`Entries before #${next} are intact.`);
  });

  it('claims no entry intact when the replaced one is the first', async () => {
    const [first] = (await db.prisma.auditLog.findMany({ orderBy: { id: 'asc' }, select: { id: true } })).map(
      (entry) => entry.id,
    ) as [bigint];
    await replaceEntry(first);
    const page = await postAuditVerify(admin, 'text/html', 409);
    expect(page.text).toContain(`#${first} was replaced`);
    expect(page.text).not.toContain('are intact');
    const json = await postAuditVerify(admin, 'application/json', 409);
    expect(json.body).toMatchObject({ status: 'broken', intactBefore: null });
  });
});
