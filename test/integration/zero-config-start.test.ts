import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { runToExit } from '../support/run-to-exit.js';
import { PROJECT_ROOT, spawnServer } from '../support/spawn-server.js';
import { startFailedOnTakenPort, takePort } from '../support/taken-port.js';

// Starts the real server with no DATABASE_URL, as `npm start` on a fresh machine: from source, through
// tsx, as README's first command runs it (not the build the other tests spawn).
describe('zero-configuration start', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('starts an embedded Postgres, seeds the demo once, serves pages, and stops cleanly', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'hpc-billing-zero-config-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const port = await findFreePort();
    const env = { DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'info' };

    const first = await spawnServer(env, 90_000, { isFromSource: true });
    cleanups.push(() => first.stop());
    expect(first.output()).toContain(`HPC Billing is listening on http://127.0.0.1:${port}`);
    expect(first.output()).toContain('demo logins: admin/admin, alice/alice, bob/bob');
    expect(first.output()).toMatch(/demo data: seeded now \(3000 Slurm jobs from /);
    // On 127.0.0.1 (the development default) only this machine reaches the demo's logins.
    expect(first.output()).not.toContain("the demo's logins");

    // The banner's URL is what the CLIs need to reach the demo while it runs.
    const databaseUrl = /export DATABASE_URL=(postgresql:\/\/\S+)/.exec(first.output())?.[1];
    expect(databaseUrl).toMatch(/^postgresql:\/\/postgres:[^@]+@127\.0\.0\.1:\d+\/hpc_billing$/);
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    const backfill = await runToExit(
      process.execPath,
      ['--import', 'tsx', 'src/cli/ingest.cli.ts', '--from', yesterday, '--to', yesterday, '--force'],
      { cwd: PROJECT_ROOT, env: { DATABASE_URL: databaseUrl as string, DATA_DIR: dataDir, LOG_LEVEL: 'error' } },
    );
    expect(backfill.output).toMatch(/ success via file: \d+ jobs/);
    expect(backfill.code).toBe(0);

    const home = await fetch(`http://127.0.0.1:${port}/`, { headers: { Accept: 'text/html' } });
    expect(home.status).toBe(200);
    expect(await home.text()).toContain('What your jobs cost');
    expect(await (await fetch(`http://127.0.0.1:${port}/readyz`)).json()).toEqual({ status: 'ok' });
    const css = await fetch(`http://127.0.0.1:${port}/static/css/app.css`);
    expect(css.status).toBe(200);

    expect(await first.stop()).toBe(0);
    expect(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false);
    expect(existsSync(path.join(dataDir, 'demo', 'sacct-demo.psv'))).toBe(true);

    // HOST=0.0.0.0 (copied from a production env file) served admin/admin on every interface without a word.
    const second = await spawnServer({ ...env, HOST: '0.0.0.0' }, 90_000, { isFromSource: true });
    cleanups.push(() => second.stop());
    expect(second.output()).toContain(
      `the demo's logins (admin/admin, alice/alice, bob/bob) are served on HOST=0.0.0.0, every interface of this machine: anyone who can reach port ${port} can sign in as admin`,
    );
    expect(second.output()).not.toContain('creating the embedded PostgreSQL cluster');
    expect(second.output()).toContain('demo data: kept from an earlier start');
    expect(second.output()).toContain('demo logins as first seeded (unless changed since): admin/admin, alice/alice');
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    expect(await second.stop()).toBe(0);
  }, 180_000);

  // A second `npm start` with its own DATA_DIR but the first one's PORT started an embedded
  // PostgreSQL and seeded the demo (most of a minute) before it found the port taken, and left
  // that seeded data directory behind.
  it('on a port another process holds stops at once, naming PORT, and writes nothing to DATA_DIR', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'hpc-billing-zero-config-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const port = await findFreePort();
    const taken = await takePort(port);
    cleanups.push(() => taken.release());

    const result = await runToExit(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: PROJECT_ROOT,
      env: { DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'info' },
      giveUpMs: 60_000,
    });
    expect(result.hasExitedItself, result.output).toBe(true);
    expect(result.code, result.output).toBe(1);
    expect(result.output).toContain(startFailedOnTakenPort(port));
    expect(result.output).not.toContain('embedded PostgreSQL');
    expect(readdirSync(dataDir)).toEqual([]);
  }, 90_000);

  it('refuses to start with a readable list when the configuration is bad', async () => {
    const bad = spawnServer({ PORT: 'eighty', APP_TZ: 'Nowhere/Town' }, 30_000, { isFromSource: true });
    const error = await bad.then(
      () => new Error('started'),
      (failure: Error) => failure,
    );
    expect(error.message).toContain('exited with 78');
    expect(error.message).toContain('Invalid configuration:');
    expect(error.message).toContain('PORT:');
    expect(error.message).toContain('APP_TZ: not an IANA time zone');
  });
});
