import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PROJECT_ROOT } from '../support/spawn-server.js';

// README's "Development" and docs/development.md author a migration with `prisma migrate diff`, which
// connects through prisma.config.ts's driver adapter even to compare two schema files. Without
// DATABASE_URL it tried a made-up URL and failed with "User was denied access on the database
// `(not available)`", which names neither the setting nor the fix.
const PRISMA = path.join(PROJECT_ROOT, 'node_modules/prisma/build/index.js');
let directory: string;

beforeAll(async () => {
  directory = await mkdtemp(path.join(os.tmpdir(), 'migrate-diff-'));
});
afterAll(() => rm(directory, { recursive: true, force: true }));

function migrateDiff(env: NodeJS.ProcessEnv): Promise<{ code: number; output: string }> {
  const schema = path.join(PROJECT_ROOT, 'prisma/schema.prisma');
  const args = ['migrate', 'diff', '--from-schema-datamodel', schema, '--to-schema-datamodel', schema];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [PRISMA, ...args, '--script', '--output', path.join(directory, 'migration.sql')],
      { cwd: PROJECT_ROOT, env, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, output: `${stdout}${stderr}` });
      },
    );
  });
}

describe('prisma migrate diff without DATABASE_URL', () => {
  it('fails saying that it needs DATABASE_URL and where to get one, writing nothing', async () => {
    const { DATABASE_URL: _unset, ...env } = process.env;
    const { code, output } = await migrateDiff(env);
    expect(code).not.toBe(0);
    expect(output).toContain('This prisma command needs DATABASE_URL');
    expect(output).toContain('docs/development.md');
    expect(output).not.toContain('User was denied access');
    await expect(stat(path.join(directory, 'migration.sql'))).rejects.toThrow();
  });
});

describe('prisma migrate diff with DATABASE_URL', () => {
  it('writes the script (empty of changes for a schema against itself)', async () => {
    const { code, output } = await migrateDiff({ ...process.env, DATABASE_URL: inject('adminUrl') });
    expect(output).not.toContain('needs DATABASE_URL');
    expect(code).toBe(0);
    expect(await readFile(path.join(directory, 'migration.sql'), 'utf8')).toContain('empty migration');
  });
});
