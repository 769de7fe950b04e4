import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
});
