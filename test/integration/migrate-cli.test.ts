import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { withDatabase } from '../support/global-setup.js';
import { PROJECT_ROOT } from '../support/spawn-server.js';

// `npm run db:migrate` on a new production database, as the first production start does it.
const name = `migrate_cli_${randomBytes(4).toString('hex')}`;

async function withAdmin(work: (client: pg.Client) => Promise<unknown>): Promise<void> {
  const client = new pg.Client({ connectionString: inject('adminUrl') });
  await client.connect();
  try {
    await work(client);
  } finally {
    await client.end();
  }
}

beforeAll(() => withAdmin((client) => client.query(`CREATE DATABASE ${name}`)));
afterAll(() => withAdmin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)));

function runMigrate(args: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/migrate.cli.ts', ...args], {
    cwd: PROJECT_ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      APP_ENV: 'production',
      DATABASE_URL: withDatabase(inject('adminUrl'), name),
      SESSION_SECRET: 's'.repeat(40),
      AUDIT_CHAIN_KEY: 'k'.repeat(40),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

describe('npm run db:migrate', () => {
  // It takes no arguments: `db:migrate -- --dry-run` applied every migration and exited 0. Run first,
  // so the next test's "Applied every migration" shows it applied none.
  it('refuses an argument as a usage error (exit 64), applying nothing', async () => {
    expect(await runMigrate(['--dry-run'])).toEqual({
      code: 64,
      stdout: '',
      stderr:
        "npm run db:migrate takes no arguments (got '--dry-run'): it applies every pending migration in prisma/migrations to DATABASE_URL.\n",
    });
  }, 60_000);

  it('says what it applied in one line, without a JSON log line per migration', async () => {
    const migrations = readdirSync(path.join(PROJECT_ROOT, 'prisma/migrations'), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();

    const first = await runMigrate();
    expect(first).toEqual({
      code: 0,
      stdout: `Applied ${migrations.length} migration(s): ${migrations.join(', ')}\n`,
      stderr: '',
    });

    const again = await runMigrate();
    expect(again).toEqual({ code: 0, stdout: 'Database is up to date.\n', stderr: '' });
  }, 120_000);
});
