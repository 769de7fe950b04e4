import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { withDatabase } from '../support/global-setup.js';
import { spawnCollecting } from '../support/run-to-exit.js';
import { PROJECT_ROOT } from '../support/spawn-server.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A newcomer who points DATABASE_URL at a new database and runs `npm run db:seed` (or any tool)
// before `npm run db:migrate` was told only Prisma's "The table `public.users` does not exist in
// the current database.", with nothing saying what to do about it.
const name = `cli_unmigrated_${randomBytes(4).toString('hex')}`;
let dataDir: string;

async function withAdmin(work: (client: pg.Client) => Promise<unknown>): Promise<void> {
  const client = new pg.Client({ connectionString: inject('adminUrl') });
  await client.connect();
  try {
    await work(client);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  await withAdmin((client) => client.query(`CREATE DATABASE ${name}`));
  dataDir = await mkdtemp(path.join(tmpdir(), 'cli-unmigrated-'));
});
afterAll(async () => {
  await withAdmin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('the command-line tools on a database whose migrations are not applied', () => {
  it.each([
    ['db:seed', 'seed.cli.ts', [], 'users'],
    // The user tools and ingest read the newest audit entry first: may they append without AUDIT_CHAIN_KEY?
    ['user:create', 'user.cli.ts', ['create', '--username', 'ops', '--role', 'admin'], 'audit_log'],
    ['audit:verify', 'audit-verify.cli.ts', [], 'audit_log'],
    ['ingest', 'ingest.cli.ts', [], 'audit_log'],
  ])(
    'npm run %s says to run npm run db:migrate first, and exits 1',
    async (_script, file, args, table) => {
      const tool = spawnCollecting(process.execPath, ['--import', 'tsx', `src/cli/${file}`, ...args], {
        cwd: PROJECT_ROOT,
        env: { DATABASE_URL: withDatabase(inject('adminUrl'), name), DATA_DIR: dataDir, LOG_LEVEL: 'error' },
      });
      const code = await tool.exited;
      expect({ code, stderr: tool.stderr() }).toEqual({
        code: 1,
        stderr:
          `The table \`public.${table}\` does not exist in the current database.\n` +
          'The database is missing tables this version needs: apply its migrations with npm run db:migrate first (npm start applies them itself).\n',
      });
    },
    120_000,
  );
});

// A database behind the code (an older dump restored, an upgrade nobody migrated) has the tables but
// not this release's columns: `npm run ingest` printed PostgreSQL's or Prisma's "column … does not
// exist" alone, with nothing saying what to do about it.
describe('npm run ingest on a database whose newest migrations are not applied', () => {
  const behind: TestDatabase[] = [];
  afterAll(async () => {
    for (const db of behind) await db.drop();
  });

  it.each([
    ['the runs it records', 'ingestion_runs', 'duration_ms'],
    ['the jobs it writes', 'slurm_jobs', 'node_list'],
  ])(
    'with a column of %s missing, says to run npm run db:migrate, and exits 1',
    async (_what, table, column) => {
      const db = await createTestDatabase();
      behind.push(db);
      await db.pool.query(`ALTER TABLE "${table}" DROP COLUMN "${column}"`);
      const capture = path.join(PROJECT_ROOT, 'test/fixtures/slurm/22.05/final/sacct-steps-extra.psv');
      const tool = spawnCollecting(
        process.execPath,
        ['--import', 'tsx', 'src/cli/ingest.cli.ts', '--from', '2026-11-23', '--to', '2026-11-23'],
        {
          cwd: PROJECT_ROOT,
          env: { DATABASE_URL: db.url, APP_TZ: 'UTC', LOG_LEVEL: 'error', DEMO_SEED: 'false', FALLBACK_CSV: capture },
        },
      );
      const code = await tool.exited;
      expect({ code, stderr: tool.stderr() }).toEqual({
        code: 1,
        stderr: expect.stringMatching(
          new RegExp(
            `^[^\\n]*column[^\\n]*${column}[^\\n]*does not exist[^\\n]*\\n` +
              'The database is behind this version \\(migrations not applied\\): apply them with npm run db:migrate first \\(npm start applies them itself\\)\\.\\n$',
          ),
        ),
      });
    },
    120_000,
  );
});

// The jobs table alone missing (dropped by hand, a restore of some tables only): npm run ingest must say
// to migrate, as for a column missing, and record the run failed as the database's, no source's.
describe('npm run ingest on a database without its jobs table', () => {
  const dropped: TestDatabase[] = [];
  afterAll(async () => {
    for (const db of dropped) await db.drop();
  });

  it.each([
    ['a backfill day', ['--from', '2026-11-23', '--to', '2026-11-23']],
    ['an incremental run (cron)', []],
  ])(
    '%s says tables are missing and to run npm run db:migrate, exits 1, and records the run failed as no source failure',
    async (_what, args) => {
      const db = await createTestDatabase();
      dropped.push(db);
      await db.pool.query('DROP TABLE "slurm_jobs" CASCADE');
      const capture = path.join(PROJECT_ROOT, 'test/fixtures/slurm/22.05/final/sacct-steps-extra.psv');
      const tool = spawnCollecting(process.execPath, ['--import', 'tsx', 'src/cli/ingest.cli.ts', ...args], {
        cwd: PROJECT_ROOT,
        env: {
          DATABASE_URL: db.url,
          APP_TZ: 'UTC',
          LOG_LEVEL: 'error',
          DEMO_SEED: 'false',
          FALLBACK_CSV: capture,
          // Back to the capture's jobs (November 2026), so that the incremental run has a batch to write.
          INGEST_LOOKBACK_DAYS: '400',
        },
      });
      const code = await tool.exited;
      expect({ code, stderr: tool.stderr() }).toEqual({
        code: 1,
        stderr:
          'relation "slurm_jobs" does not exist\n' +
          'The database is missing tables this version needs: apply its migrations with npm run db:migrate first (npm start applies them itself).\n',
      });
      const runs = await db.pool.query('SELECT outcome, error, source_notes FROM ingestion_runs');
      expect(runs.rows).toEqual([
        expect.objectContaining({
          outcome: 'failed',
          error:
            'the database is behind this release (migrations not applied): run npm run db:migrate: relation "slurm_jobs" does not exist',
        }),
      ]);
      expect(JSON.stringify(runs.rows[0].source_notes)).not.toContain('failed');
    },
    120_000,
  );
});
