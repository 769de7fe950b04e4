import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { embeddedDatabaseUrl, findFreePort } from '../../src/db/embedded-postgres.js';
import { builtFile } from '../support/built-app.js';
import { runToExit } from '../support/run-to-exit.js';
import { PROJECT_ROOT } from '../support/spawn-server.js';

// README: while the demo runs, paste its banner's `export DATABASE_URL=… DATA_DIR=…` into another
// shell for the tools. `npm start` run later in that shell, the demo stopped, took the exported URL
// as a configured database and failed with "connect ECONNREFUSED 127.0.0.1:41295" alone: nothing
// said that it was the old demo's URL, nor that without it npm start starts a database of its own.
describe('npm start with DATABASE_URL left from the demo banner of an earlier start', () => {
  const dataDirs: string[] = [];
  afterAll(async () => {
    for (const dataDir of dataDirs) await rm(dataDir, { recursive: true, force: true });
  });

  it('fails saying the URL is a demo start’s, and to unset it', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'hpc-billing-stale-demo-'));
    dataDirs.push(dataDir);
    // A port nothing listens on, as the stopped demo's.
    const deadPort = await findFreePort();
    const result = await runToExit(process.execPath, [builtFile('src/server.ts')], {
      cwd: PROJECT_ROOT,
      env: {
        DATABASE_URL: embeddedDatabaseUrl(deadPort),
        DATA_DIR: dataDir,
        PORT: String(await findFreePort()),
        LOG_LEVEL: 'warn',
      },
    });
    expect(result.code, result.output).toBe(1);
    expect(result.output).toContain(
      `HPC Billing failed to start: the database cannot be reached (DATABASE_URL): connect ECONNREFUSED 127.0.0.1:${deadPort}; ` +
        "this is the URL of the demo's embedded PostgreSQL of an earlier npm start (its banner's line for another shell), " +
        'whose port can change from one start to the next: unset DATABASE_URL, and npm start starts the embedded PostgreSQL of its own under DATA_DIR',
    );
  }, 120_000);
});
