import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureAuditChain, recordAudit, verifyAuditChain } from '../../../src/modules/audit/audit.service.js';
import { builtFile } from '../../support/built-app.js';
import { runToExit } from '../../support/run-to-exit.js';
import { sealedWhileAppendWaits } from '../../support/sealed-meanwhile.js';
import { PROJECT_ROOT } from '../../support/spawn-server.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

// `npm run ingest` wrote no audit entry, where the admin's Run now (ingestion.run_now) and the user
// tools (actor `cli`, `osUser`) do: a run from a shell or cron left only its ingestion_runs row.
let db: TestDatabase;
let dir: string;
beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(path.join(os.tmpdir(), 'ingest-cli-audit-'));
});
afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

function runIngestCli(args: string[], env: Record<string, string>) {
  return runToExit(process.execPath, [builtFile('src/cli/ingest.cli.ts'), ...args], {
    cwd: PROJECT_ROOT,
    env: { DATABASE_URL: db.url, APP_TZ: 'UTC', LOG_LEVEL: 'error', DEMO_SEED: 'false', ...env },
  });
}

const cliEntries = () =>
  db.prisma.auditLog.findMany({ where: { action: 'ingestion.cli_run' }, orderBy: { id: 'asc' } });

const HEADER = 'JobID|JobIDRaw|User|State|ElapsedRaw|Start|End|AllocTRES\n';

describe('npm run ingest in the audit log', () => {
  it('an incremental run writes one entry like Run now: actor cli, the OS user, its run, outcome and counts', async () => {
    // Something before it, so that the chain is checked across the CLI's entry.
    await recordAudit(db, { actor: 'ops', action: 'test.before', status: 'ok' });
    const local = (date: Date) => date.toISOString().slice(0, 19);
    const end = new Date(Date.now() - 3_600_000);
    const file = path.join(dir, 'sacct-incremental.psv');
    writeFileSync(
      file,
      `${HEADER}41|41|ann|COMPLETED|600|${local(new Date(end.getTime() - 600_000))}|${local(end)}|cpu=1,mem=1G,node=1\n`,
    );
    const ran = await runIngestCli([], { FALLBACK_CSV: file });
    expect(ran.code, ran.output).toBe(0);
    const run = await db.prisma.ingestionRun.findFirstOrThrow({ orderBy: { id: 'desc' } });
    const entries = await cliEntries();
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      actor: 'cli',
      ip: null,
      userAgent: 'ingest.cli',
      target: `ingestion_run:${run.id}`,
      status: 'ok',
    });
    expect(entries[0]?.details).toMatchObject({
      trigger: 'schedule',
      outcome: 'success',
      source: 'file',
      seen: 1,
      inserted: 1,
      updated: 0,
      skipped: 0,
      osUser: os.userInfo().username,
    });
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true });
  });

  it('a backfill writes one entry per day it ran, `partial` for a day that left records out, as Run now does', async () => {
    const file = path.join(dir, 'sacct-backfill.psv');
    writeFileSync(
      file,
      HEADER +
        '51|51|ann|COMPLETED|600|2026-11-15T10:00:00|2026-11-15T10:10:00|cpu=1,mem=1G,node=1\n' +
        '52|52|ann|COMPLETED|600|2026-11-16T10:00:00|2026-11-16T10:10:00|cpu=1,mem=1G,node=1\n' +
        '53|53|ann|COMPLETED|600|2026-11-16T10:00:00|not a time|cpu=1,mem=1G,node=1\n',
    );
    const before = (await cliEntries()).length;
    const ran = await runIngestCli(['--from', '2026-11-15', '--to', '2026-11-16'], { FALLBACK_CSV: file });
    expect(ran.code, ran.output).toBe(0);
    const runs = await db.prisma.ingestionRun.findMany({ where: { trigger: 'backfill' }, orderBy: { id: 'asc' } });
    // The file's bad record is left out by each day's read of it: both days are partial.
    expect(runs.map((run) => run.outcome)).toEqual(['partial', 'partial']);
    const entries = (await cliEntries()).slice(before);
    expect(entries.map((entry) => [entry.target, entry.status])).toEqual(
      runs.map((run) => [`ingestion_run:${run.id}`, 'partial']),
    );
    expect(entries[0]?.details).toMatchObject({ trigger: 'backfill', day: '2026-11-15', inserted: 1 });
    expect(entries[1]?.details).toMatchObject({
      trigger: 'backfill',
      day: '2026-11-16',
      osUser: os.userInfo().username,
    });
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true });
  });

  it('a backfill of days already done runs nothing and writes nothing', async () => {
    const file = path.join(dir, 'sacct-backfill.psv');
    const before = (await cliEntries()).length;
    const ran = await runIngestCli(['--from', '2026-11-15', '--to', '2026-11-15'], { FALLBACK_CSV: file });
    expect(ran.code, ran.output).toBe(0);
    expect(ran.output).toContain('already done');
    expect(await cliEntries()).toHaveLength(before);
  });

  // A cron line or shell with DATABASE_URL alone (no APP_ENV, so no key required) wrote the run's
  // entry unsealed after the instance's sealed ones: the chain broken for good, AuditChainBroken paged.
  it('without AUDIT_CHAIN_KEY on a sealed log, runs nothing and stops with exit 78, the chain left intact', async () => {
    const sealed = await createTestDatabase();
    const key = 'ingest-audit-key-ingest-audit-key-01';
    try {
      configureAuditChain({ chainKeys: [key], unsealedUntil: 0n });
      await recordAudit(sealed, { actor: 'ops', action: 'test.sealed', status: 'ok' });
      configureAuditChain({ chainKeys: [], unsealedUntil: 0n });
      const file = path.join(dir, 'sacct-sealed.psv');
      writeFileSync(file, HEADER);
      const refused = await runToExit(process.execPath, [builtFile('src/cli/ingest.cli.ts')], {
        cwd: PROJECT_ROOT,
        env: { DATABASE_URL: sealed.url, APP_TZ: 'UTC', LOG_LEVEL: 'error', DEMO_SEED: 'false', FALLBACK_CSV: file },
      });
      expect(refused.code, refused.output).toBe(78);
      expect(refused.output).toContain("AUDIT_CHAIN_KEY: is not set, but the audit log's newest entry (#");
      expect(await sealed.prisma.ingestionRun.count()).toBe(0);
      expect(await sealed.prisma.auditLog.count()).toBe(1);
      configureAuditChain({ chainKeys: [key], unsealedUntil: 0n });
      expect(await verifyAuditChain(sealed.prisma)).toMatchObject({ isIntact: true });
    } finally {
      configureAuditChain({ chainKeys: [], unsealedUntil: 0n });
      await sealed.drop();
    }
  });

  // The check at the start passed; another instance given the key sealed the log before the run's
  // entry (a rolling restart). The run is done and kept; its entry is refused, which exited 1 like a
  // failed run, where what needs fixing is a setting, as at the start (78).
  it("refused the run's entry because the log was sealed meanwhile, exits 78 saying so, the chain left intact", async () => {
    const late = await createTestDatabase();
    const key = 'ingest-audit-key-ingest-audit-key-02';
    try {
      const file = path.join(dir, 'sacct-sealed-meanwhile.psv');
      writeFileSync(file, HEADER);
      const { result: refused, sealedId } = await sealedWhileAppendWaits(late.pool, key, () =>
        runToExit(process.execPath, [builtFile('src/cli/ingest.cli.ts')], {
          cwd: PROJECT_ROOT,
          env: { DATABASE_URL: late.url, APP_TZ: 'UTC', LOG_LEVEL: 'error', DEMO_SEED: 'false', FALLBACK_CSV: file },
        }),
      );
      expect(refused.code, refused.output).toBe(78);
      expect(refused.output).toContain('the ingestion run could not be recorded in the audit log');
      expect(refused.output).toContain(
        `AUDIT_CHAIN_KEY: is not set, but the audit log's newest entry (#${sealedId}) is sealed with a key (or was changed)`,
      );
      expect(await late.prisma.ingestionRun.count()).toBe(1);
      expect(await late.prisma.auditLog.count()).toBe(1);
      configureAuditChain({ chainKeys: [key], unsealedUntil: 0n });
      expect(await verifyAuditChain(late.prisma)).toMatchObject({ isIntact: true });
    } finally {
      configureAuditChain({ chainKeys: [], unsealedUntil: 0n });
      await late.drop();
    }
  });

  it("a backfill whose day's entry is refused so stops there (exit 78): no day after it is run without its entry", async () => {
    const late = await createTestDatabase();
    try {
      const file = path.join(dir, 'sacct-backfill-sealed-meanwhile.psv');
      writeFileSync(file, HEADER);
      const { result: refused } = await sealedWhileAppendWaits(late.pool, 'ingest-audit-key-ingest-audit-key-03', () =>
        runToExit(
          process.execPath,
          [builtFile('src/cli/ingest.cli.ts'), '--from', '2026-11-15', '--to', '2026-11-17'],
          {
            cwd: PROJECT_ROOT,
            env: { DATABASE_URL: late.url, APP_TZ: 'UTC', LOG_LEVEL: 'error', DEMO_SEED: 'false', FALLBACK_CSV: file },
          },
        ),
      );
      expect(refused.code, refused.output).toBe(78);
      expect(refused.output).toContain(
        "Stopped at 2026-11-15: its run's audit entry was refused for want of AUDIT_CHAIN_KEY (above), so the 2 day(s) after it were not tried",
      );
      expect(await late.prisma.ingestionRun.count()).toBe(1);
      expect(await late.prisma.auditLog.count()).toBe(1);
    } finally {
      configureAuditChain({ chainKeys: [], unsealedUntil: 0n });
      await late.drop();
    }
  });
});
