import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureAuditChain, recordAudit } from '../../src/modules/audit/audit.service.js';
import { spawnCollecting } from '../support/run-to-exit.js';
import { PROJECT_ROOT } from '../support/spawn-server.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// `npm run audit:verify`: the AuditChainBroken runbook's check for an operator who is no admin of
// the app, or whose app does not start.
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

/** The verdict's line; an intact chain's output goes on with the newest entry to keep (the anchor). */
function firstLine(stdout: string): string {
  return stdout.split('\n')[0] ?? '';
}

async function runVerify(env: Record<string, string>, args: string[] = []) {
  const tool = spawnCollecting('npm', ['run', '--silent', 'audit:verify', '--', ...args], { cwd: PROJECT_ROOT, env });
  const code = await tool.exited;
  return { code, stdout: tool.stdout(), stderr: tool.stderr() };
}

// Every test runs the tool, each run an npm and tsx start-up of several seconds (three runs took 28 s
// alone and passed 30 s under load), so the file's limit is above the suite's 30 s.
describe('npm run audit:verify', { timeout: 120_000 }, () => {
  it('words an empty log and a log of one entry as such, not "all 0 entries" or "all 1 entries"', async () => {
    // A new demo's log is empty, and holds one entry after README's `npm run user:create`.
    const empty = await createTestDatabase();
    try {
      const none = await runVerify({ DATABASE_URL: empty.url });
      expect(none).toMatchObject({ code: 0, stderr: '' });
      expect(none.stdout).toBe('OK: the audit log has no entries yet, so there is nothing to verify.\n');
      await recordAudit(empty, { actor: 'ops', action: 'test.cli', status: 'ok', details: {} });
      const one = await runVerify({ DATABASE_URL: empty.url });
      expect(one).toMatchObject({ code: 0, stderr: '' });
      expect(one.stdout).toMatch(/^OK: the one entry of the audit log is intact\. The newest entries are not sealed/);
    } finally {
      await empty.drop();
    }
  });

  it('says the chain is intact (exit 0), then names a deleted entry (exit 2), as /admin/audit/verify does', async () => {
    for (let index = 0; index < 4; index++) {
      await recordAudit(db, { actor: 'ops', action: 'test.cli', status: 'ok', details: { index } });
    }
    const intact = await runVerify({ DATABASE_URL: db.url });
    expect(intact).toMatchObject({ code: 0, stderr: '' });
    expect(firstLine(intact.stdout)).toBe(
      'OK: all 4 entries of the audit log are intact and chained. The newest entries are not sealed with a key ' +
        '(AUDIT_CHAIN_KEY is not set): whoever can write to the database could rewrite the log so that it still verifies.',
    );

    const [, second, third] = await db.prisma.auditLog.findMany({ orderBy: { id: 'asc' }, select: { id: true } });
    if (!second || !third) throw new Error('too few entries');
    const client = await db.pool.connect();
    try {
      // A superuser with the table's triggers off, as the chain is there to reveal.
      await client.query("SET session_replication_role = 'replica'");
      await client.query('DELETE FROM audit_log WHERE id = $1', [second.id]);
    } finally {
      await client.query("SET session_replication_role = 'origin'");
      client.release();
    }
    const broken = await runVerify({ DATABASE_URL: db.url });
    expect(broken).toMatchObject({ code: 2, stderr: '' });
    expect(broken.stdout).toBe(
      `The audit log's hash chain is broken at entry #${third.id}: the entry is as it was written, but it was not ` +
        `chained after #${second.id - 1n}, the entry now before it: the entry it followed (#${second.id}) was deleted. ` +
        `Entries before #${third.id} are intact. Keep a copy of the database as it is and investigate who changed it ` +
        '(docs/operations.md, AuditChainBroken).\n',
    );
  });

  // Right after a change of key (docs/operations.md, "Changing a secret") the newest entry is still
  // sealed with the old key, and right after a first key the newest entries are unsealed: the tool
  // said "sealed with AUDIT_CHAIN_KEY" of the first and "AUDIT_CHAIN_KEY is not set" of the second.
  it('says which key sealed the newest entry right after a change of key, and that a new key seals what comes', async () => {
    const oldKey = 'o'.repeat(40);
    const newKey = 'n'.repeat(40);
    const log = await createTestDatabase();
    try {
      await recordAudit(log, { actor: 'ops', action: 'test.cli', status: 'ok', details: {} });
      const [unsealed] = await log.prisma.auditLog.findMany({ select: { id: true } });
      const firstKey = await runVerify({
        DATABASE_URL: log.url,
        AUDIT_CHAIN_KEY: oldKey,
        AUDIT_CHAIN_UNSEALED_UNTIL: String(unsealed?.id),
      });
      expect(firstKey).toMatchObject({ code: 0, stderr: '' });
      expect(firstLine(firstKey.stdout)).toBe(
        'OK: the one entry of the audit log is intact. The newest entries were written before AUDIT_CHAIN_KEY was ' +
          'set (AUDIT_CHAIN_UNSEALED_UNTIL) and are not sealed; the entries written from now on are.',
      );

      configureAuditChain({ chainKeys: [oldKey], unsealedUntil: unsealed?.id ?? 0n });
      try {
        await recordAudit(log, { actor: 'ops', action: 'test.cli', status: 'ok', details: {} });
      } finally {
        configureAuditChain({ chainKeys: [], unsealedUntil: 0n });
      }
      const keys = { AUDIT_CHAIN_UNSEALED_UNTIL: String(unsealed?.id) };
      const sameKey = await runVerify({ DATABASE_URL: log.url, AUDIT_CHAIN_KEY: oldKey, ...keys });
      expect(firstLine(sameKey.stdout)).toBe(
        'OK: all 2 entries of the audit log are intact and chained. The newest entry is sealed with AUDIT_CHAIN_KEY.',
      );
      const changed = await runVerify({
        DATABASE_URL: log.url,
        AUDIT_CHAIN_KEY: newKey,
        AUDIT_CHAIN_OLD_KEYS: oldKey,
        ...keys,
      });
      expect(changed).toMatchObject({ code: 0, stderr: '' });
      expect(firstLine(changed.stdout)).toBe(
        'OK: all 2 entries of the audit log are intact and chained. The newest entry is sealed with a key of ' +
          'AUDIT_CHAIN_OLD_KEYS; the entries written from now on are sealed with AUDIT_CHAIN_KEY.',
      );
    } finally {
      await log.drop();
    }
  });

  // Deleting the newest entries leaves a shorter chain whose every hash is right: from the log alone
  // the tool said "OK: all N entries ... intact" and nothing of what it cannot tell, nor how to tell
  // it. It names the newest entry, to be kept outside the database, and checks one given back.
  it('names the newest entry as an anchor, and with --anchor reports the entries after it deleted or it rewritten', async () => {
    const log = await createTestDatabase();
    try {
      for (let index = 0; index < 4; index++) {
        await recordAudit(log, { actor: 'ops', action: 'test.cli', status: 'ok', details: { index } });
      }
      const [, second, , fourth] = await log.prisma.auditLog.findMany({ orderBy: { id: 'asc' } });
      if (!second || !fourth) throw new Error('too few entries');
      const anchor = `${fourth.id}:${fourth.hash}`;
      const intact = await runVerify({ DATABASE_URL: log.url });
      expect(intact).toMatchObject({ code: 0, stderr: '' });
      expect(intact.stdout.split('\n')[1]).toBe(
        `The newest entry is #${fourth.id}, hash ${fourth.hash}. Deleting the newest entries leaves a chain that ` +
          'still verifies: keep this line outside the database, and check a later log against it with ' +
          `npm run audit:verify -- --anchor ${anchor}`,
      );
      expect(await runVerify({ DATABASE_URL: log.url }, ['--anchor', anchor])).toMatchObject({ code: 0, stderr: '' });

      const client = await log.pool.connect();
      try {
        await client.query("SET session_replication_role = 'replica'");
        await client.query('DELETE FROM audit_log WHERE id > $1', [second.id]);
      } finally {
        await client.query("SET session_replication_role = 'origin'");
        client.release();
      }
      // Without the anchor the shorter log verifies, as the line above said it would.
      expect(await runVerify({ DATABASE_URL: log.url })).toMatchObject({ code: 0 });
      const truncated = await runVerify({ DATABASE_URL: log.url }, ['--anchor', anchor]);
      expect(truncated).toMatchObject({ code: 2, stderr: '' });
      expect(truncated.stdout).toBe(
        `The audit log's hash chain is broken at entry #${fourth.id}: the entry, the anchor given (--anchor), is gone: ` +
          `the entries after #${second.id} up to it (#${second.id + 1n} to #${fourth.id}) were deleted. ` +
          `Entries before #${fourth.id} are intact. Keep a copy of the database as it is and investigate who changed it ` +
          '(docs/operations.md, AuditChainBroken).\n',
      );
      const other = await runVerify({ DATABASE_URL: log.url }, ['--anchor', `${second.id}:${'a'.repeat(64)}`]);
      expect(other).toMatchObject({ code: 2, stderr: '' });
      expect(other.stdout).toMatch(
        new RegExp(
          `^The audit log's hash chain is broken at entry #${second.id}: the entry is not the anchor given \\(--anchor\\): it was rewritten since`,
        ),
      );
    } finally {
      await log.drop();
    }
  });

  it('refuses an anchor that is not an entry id and a hash (exit 64), verifying nothing', async () => {
    for (const value of ['4', '4:abc', `x:${'a'.repeat(64)}`, `04:${'a'.repeat(64)}`]) {
      const refused = await runVerify({ DATABASE_URL: 'postgresql://nobody@127.0.0.1:1/none' }, ['--anchor', value]);
      expect(refused, value).toMatchObject({ code: 64, stdout: '' });
      expect(refused.stderr, value).toContain(
        `--anchor must be an entry's id and hash as the tool printed them (ID:HASH, 64 hex digits), got '${value}'`,
      );
    }
  });

  // It takes no argument but --anchor. A mistyped or imagined option (`--from 1200`, `--key ...`) was
  // ignored: the whole chain was verified with the environment's settings and it exited 0, which a
  // script took for the check it meant to run.
  it('refuses another argument as a usage error (exit 64), verifying nothing', async () => {
    const refused = await runVerify({ DATABASE_URL: db.url }, ['--from', '1200']);
    expect(refused).toMatchObject({ code: 64, stdout: '' });
    expect(refused.stderr).toBe(
      "npm run audit:verify takes no arguments but --anchor ID:HASH (got '--from 1200'): it verifies the whole audit log in DATABASE_URL " +
        'with AUDIT_CHAIN_KEY, AUDIT_CHAIN_OLD_KEYS and AUDIT_CHAIN_UNSEALED_UNTIL from the environment; ' +
        '--anchor ID:HASH (the newest entry an earlier run printed) also checks that this entry is still there as it was.\n',
    );
  });

  // parseArgs keeps the last of a repeated option: `--anchor <rewritten> --anchor <intact>` checked the
  // second alone and exited 0, so an operator checking two kept anchors was told the log was intact.
  it('refuses --anchor given twice (exit 64), verifying nothing, rather than checking the last alone', async () => {
    const first = `5:${'a'.repeat(64)}`;
    const second = `6:${'b'.repeat(64)}`;
    const refused = await runVerify({ DATABASE_URL: 'postgresql://nobody@127.0.0.1:1/none' }, [
      '--anchor',
      first,
      `--anchor=${second}`,
    ]);
    expect(refused).toMatchObject({ code: 64, stdout: '' });
    expect(refused.stderr).toContain(
      `npm run audit:verify --anchor: given 2 times (${first}, ${second}); give it once, and run the tool once for each anchor to check:`,
    );
  });
});
