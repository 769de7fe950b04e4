import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ADVISORY_LOCK_KEYS } from '../../src/db/advisory-locks.js';
import { builtFile } from '../support/built-app.js';
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

// Advisory locks belong to a database; other test files take theirs in the same cluster.
const IN_THIS_DATABASE = 'database = (SELECT oid FROM pg_database WHERE datname = current_database())';

beforeAll(() => withAdmin((client) => client.query(`CREATE DATABASE ${name}`)));
afterAll(() => withAdmin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)));

/**
 * Runs the tool compiled once for the run (test/support/built-app.ts), or, `isFromSource`, as
 * `npm run db:migrate` does: the TypeScript source through tsx. A test of words that name a command
 * runs the source: a build names the :prod scripts (src/shared/tool-commands.ts).
 */
function runMigrate(
  args: string[] = [],
  env: Record<string, string> = {},
  isFromSource = false,
  whileRunning?: (child: ChildProcess) => void,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const entry = isFromSource ? ['--import', 'tsx', 'src/cli/migrate.cli.ts'] : [builtFile('src/cli/migrate.cli.ts')];
  const child = spawn(process.execPath, [...entry, ...args], {
    cwd: PROJECT_ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      APP_ENV: 'production',
      DATABASE_URL: withDatabase(inject('adminUrl'), name),
      SESSION_SECRET: 's'.repeat(40),
      AUDIT_CHAIN_KEY: 'k'.repeat(40),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    // A run that hangs is killed (code null) rather than left behind the test.
    timeout: 30_000,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  whileRunning?.(child);
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

describe('npm run db:migrate', () => {
  // It takes no arguments: `db:migrate -- --dry-run` applied every migration and exited 0. Run first,
  // so the next test's "Applied every migration" shows it applied none.
  it('refuses an argument as a usage error (exit 64), applying nothing', async () => {
    expect(await runMigrate(['--dry-run'], {}, true)).toEqual({
      code: 64,
      stdout: '',
      stderr:
        "npm run db:migrate takes no arguments (got '--dry-run'): it applies every pending migration in prisma/migrations to DATABASE_URL.\n",
    });
  }, 60_000);

  it('answers --help with what it does, exit 0, applying nothing', async () => {
    expect(await runMigrate(['--help'], {}, true)).toEqual({
      code: 0,
      stdout:
        'Usage: npm run db:migrate\n  Takes no arguments: it applies every pending migration in prisma/migrations to DATABASE_URL.\n',
      stderr: '',
    });
  }, 60_000);

  it('says what it applied in one line, without a JSON log line per migration (from source, through tsx)', async () => {
    const migrations = readdirSync(path.join(PROJECT_ROOT, 'prisma/migrations'), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();

    const first = await runMigrate([], {}, true);
    expect(first).toEqual({
      code: 0,
      stdout: `Applied ${migrations.length} migration(s): ${migrations.join(', ')}\n`,
      stderr: '',
    });

    const again = await runMigrate();
    expect(again).toEqual({ code: 0, stdout: 'Database is up to date.\n', stderr: '' });
  }, 120_000);

  // Stopped while another host migrates (a Compose or Kubernetes job replaced, a deploy script's
  // timeout, Ctrl-C): db:migrate took Node's default action and died without a word (exit 143, or
  // nothing at all as a container's PID 1), while its session stayed queued for the migration lock
  // until the other host let it go (PostgreSQL does not see a client gone while its query waits).
  // It stops as a start does: the wait is cancelled, and it says what it applied.
  it('stops on SIGTERM while another host holds the migration lock, saying so (exit 143), and takes no lock', async () => {
    await runMigrate();
    const holder = new pg.Client({ connectionString: withDatabase(inject('adminUrl'), name) });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEYS.migrations]);
      const waitingForLock = async () => {
        const { rows } = await holder.query<{ waiting: number }>(
          `SELECT count(*)::int AS waiting FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND ${IN_THIS_DATABASE}`,
        );
        return rows[0]?.waiting ?? 0;
      };
      const result = await runMigrate([], {}, true, (child) => {
        void (async () => {
          while ((await waitingForLock()) === 0) await new Promise((resolve) => setTimeout(resolve, 100));
          child.kill('SIGTERM');
        })();
      });
      expect(result).toEqual({
        code: 143,
        stdout: '',
        stderr:
          'npm run db:migrate stopped by SIGTERM before it applied any migration (it was waiting for another host that migrates this database, or for a lock). Nothing was applied; run it again to apply the pending migrations.\n',
      });
      expect(await waitingForLock()).toBe(0);
      await holder.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCK_KEYS.migrations]);
      const { rows } = await holder.query<{ held: number }>(
        `SELECT count(*)::int AS held FROM pg_locks WHERE locktype = 'advisory' AND granted AND ${IN_THIS_DATABASE}`,
      );
      expect(rows[0]?.held).toBe(0);
    } finally {
      await holder.end();
    }
  }, 120_000);

  // A host that takes the connection and never answers (a firewall dropping the handshake, a frozen
  // PostgreSQL, another service on the port): db:migrate opened its connection with no timeout and
  // hung for as long as the socket stayed open (minutes, in an upgrade's script), where every other
  // tool gives up after DB_CONNECT_TIMEOUT_MS saying the database cannot be reached.
  it('gives up on a database that never answers after DB_CONNECT_TIMEOUT_MS, saying so (exit 1)', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    try {
      const result = await runMigrate([], {
        DATABASE_URL: `postgresql://billing:secret@127.0.0.1:${port}/billing`,
        DB_CONNECT_TIMEOUT_MS: '500',
      });
      expect(result).toEqual({
        code: 1,
        stdout: '',
        stderr: 'The database cannot be reached (DATABASE_URL): timeout expired\n',
      });
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  }, 60_000);
});
