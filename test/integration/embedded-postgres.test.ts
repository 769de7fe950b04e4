import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { runToExit } from '../support/run-to-exit.js';
import { PROJECT_ROOT } from '../support/spawn-server.js';

const directories: string[] = [];
afterAll(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

// The app stops its embedded PostgreSQL on SIGTERM/SIGINT itself; this is the net under
// that: a process that dies of an uncaught exception must not leave the server running.
it('asks its embedded PostgreSQL to stop when the process dies without stopping it', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'hb-embedded-crash-'));
  directories.push(dataDir);
  const script = `
    import { startEmbeddedPostgres } from './src/db/embedded-postgres.ts';
    import { createLogger } from './src/shared/logger.ts';
    await startEmbeddedPostgres(${JSON.stringify(dataDir)}, createLogger('silent'));
    console.log('started');
    setTimeout(() => { throw new Error('crash on purpose'); }, 10);
  `;
  const { code, output } = await runToExit(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: PROJECT_ROOT,
  });
  expect(output).toContain('started');
  expect(output).toContain('crash on purpose');
  expect(code).not.toBe(0);

  const pidFile = path.join(dataDir, 'postgres', 'postmaster.pid');
  const deadline = Date.now() + 20_000;
  while (existsSync(pidFile) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  expect(existsSync(pidFile), 'PostgreSQL still running after its parent died').toBe(false);
}, 120_000);
