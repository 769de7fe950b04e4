import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADVISORY_LOCK_KEYS } from '../../src/db/advisory-locks.js';
import { builtFile } from '../support/built-app.js';
import { spawnCollecting } from '../support/run-to-exit.js';
import { PROJECT_ROOT } from '../support/spawn-server.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// `npm run db:seed`, given an argument it cannot take, as `db:migrate` and `audit:verify` are.
let db: TestDatabase;
let dataDir: string;
beforeAll(async () => {
  db = await createTestDatabase();
  dataDir = await mkdtemp(path.join(tmpdir(), 'seed-cli-'));
});
afterAll(async () => {
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('npm run db:seed', () => {
  // It takes no arguments: `db:seed -- --force` (or a mistyped `db:seed -- --dry-run`) seeded the
  // demo into an empty database and exited 0, which a script took for what it had asked.
  it('refuses an argument as a usage error (exit 64), seeding nothing', async () => {
    const tool = spawnCollecting('npm', ['run', '--silent', 'db:seed', '--', '--dry-run'], {
      cwd: PROJECT_ROOT,
      env: { DATABASE_URL: db.url, DATA_DIR: dataDir },
    });
    const code = await tool.exited;
    expect({ code, stdout: tool.stdout(), stderr: tool.stderr() }).toEqual({
      code: 64,
      stdout: '',
      stderr:
        "npm run db:seed takes no arguments (got '--dry-run'): it seeds the demo data into DATABASE_URL " +
        'when the database has no users yet (never with APP_ENV=production).\n',
    });
    expect(await db.prisma.user.count()).toBe(0);
    expect(await db.prisma.pricingTier.count()).toBe(0);
    expect(await readdir(dataDir)).toEqual([]);
  }, 120_000);

  // Stopped (a script's timeout, Ctrl-C) as db:migrate was until it took its stops: it died without a
  // word (exit 143), and its session stayed queued for the seed lock until the other seeder let it go.
  it('stops on SIGTERM while another process seeds, saying nothing was seeded (exit 143), and leaves no wait behind', async () => {
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    // Advisory locks belong to a database; other test files take theirs in the same cluster.
    const waitingForSeedLock = async () => {
      const { rows } = await holder.query<{ waiting: number }>(
        `SELECT count(*)::int AS waiting FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      );
      return rows[0]?.waiting ?? 0;
    };
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEYS.demoSeed]);
      const tool = spawnCollecting(process.execPath, [builtFile('src/cli/seed.cli.ts')], {
        cwd: PROJECT_ROOT,
        env: { DATABASE_URL: db.url, DATA_DIR: dataDir },
      });
      while ((await waitingForSeedLock()) === 0) await new Promise((resolve) => setTimeout(resolve, 100));
      tool.child.kill('SIGTERM');
      const code = await tool.exited;
      expect({ code, stdout: tool.stdout(), stderr: tool.stderr() }).toEqual({
        code: 143,
        stdout: '',
        stderr:
          'npm run db:seed stopped by SIGTERM before it seeded anything. Nothing was seeded; run it again to seed the demo.\n',
      });
      expect(await waitingForSeedLock()).toBe(0);
      expect(await db.prisma.user.count()).toBe(0);
      expect(await db.prisma.pricingTier.count()).toBe(0);
    } finally {
      await holder.end();
    }
  }, 120_000);

  // Its stdout line is the result; at LOG_LEVEL=info it also wrote the JSON line `demo data seeded`
  // to stderr, which only repeated it, where db:migrate and ingest read `info` as `warn`.
  it('says what it seeded in one line, without a JSON log line repeating it (as db:migrate)', async () => {
    const tool = spawnCollecting('npm', ['run', '--silent', 'db:seed'], {
      cwd: PROJECT_ROOT,
      env: { DATABASE_URL: db.url, DATA_DIR: dataDir, LOG_LEVEL: 'info' },
    });
    const code = await tool.exited;
    // It says what a newcomer needs next, as npm start's banner does: the logins it made and the sacct
    // file it wrote, which a later \`npm run ingest\` finds only with this DATA_DIR. It said only
    // "Seeded 3000 demo jobs.", so who could sign in, and as what, was left to README.
    expect({ code, stdout: tool.stdout(), stderr: tool.stderr() }).toEqual({
      code: 0,
      stdout:
        `Seeded 3000 demo jobs (their sacct file: ${path.join(dataDir, 'demo', 'sacct-demo.psv')}, ` +
        'which npm run ingest reads with this DATA_DIR). Demo logins: admin/admin, alice/alice, bob/bob.\n',
      stderr: '',
    });
    expect(await db.prisma.user.count()).toBeGreaterThan(0);

    // LOG_LEVEL=debug still shows everything, as it does for db:migrate.
    const again = spawnCollecting('npm', ['run', '--silent', 'db:seed'], {
      cwd: PROJECT_ROOT,
      env: { DATABASE_URL: db.url, DATA_DIR: dataDir, LOG_LEVEL: 'debug' },
    });
    expect(await again.exited).toBe(0);
    expect(again.stdout()).toBe('The database already has users; nothing seeded.\n');
  }, 180_000);
});
