import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { REPEATED_SIGNAL_MS } from '../../src/shared/distinct-signals.js';
import { spawnCollecting } from '../support/run-to-exit.js';
import { PROJECT_ROOT } from '../support/spawn-server.js';
import { createTestDatabase } from '../support/test-database.js';

const directories: string[] = [];
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

/** Processes whose command line names `databaseDir` (a postmaster serving it, its backends). */
async function processesServing(databaseDir: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((name) => /^\d+$/.test(name))) {
    const commandLine = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (commandLine.split('\0').includes(databaseDir)) found.push(`${pid}: ${commandLine.replaceAll('\0', ' ')}`);
  }
  return found;
}

/**
 * The cluster state in pg_control: 1 (DB_SHUTDOWNED) once PostgreSQL has shut down cleanly, 6
 * (DB_IN_PRODUCTION) while it runs or after it was killed (the next start then recovers). The
 * state is the int32 after the system identifier and two version numbers.
 */
async function clusterState(databaseDir: string): Promise<number> {
  return (await readFile(path.join(databaseDir, 'global', 'pg_control'))).readInt32LE(16);
}

// The demo's default (WEB_CONCURRENCY=1, the embedded PostgreSQL): a start that has started its
// PostgreSQL and then cannot listen, because the port was taken after its check that it was free
// (a second start at the same moment). The process exited while PostgreSQL was left to the 'exit'
// hook's signal: still shutting down, or running, when the exit was seen, and DATA_DIR still named
// the dead process as the owner of its server.
it('on a port taken as it starts listening, stops its embedded PostgreSQL before it exits 1 naming PORT', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'hb-embedded-start-failure-'));
  directories.push(dataDir);
  const databaseDir = path.join(dataDir, 'postgres');
  const portTaken = path.join(dataDir, 'port-taken');
  const port = await findFreePort();
  const preload = pathToFileURL(path.join(PROJECT_ROOT, 'test/support/wait-before-listen.mjs')).href;
  const start = spawnCollecting(process.execPath, ['--import', 'tsx', '--import', preload, 'src/server.ts'], {
    cwd: PROJECT_ROOT,
    env: {
      PORT: String(port),
      DATA_DIR: dataDir,
      DEMO_SEED: '0',
      INGEST_ENABLED: '0',
      WAIT_BEFORE_LISTEN_FOR: portTaken,
    },
  });
  const squatter = net.createServer();
  try {
    const isWaiting = () => start.stderr().includes('about to listen');
    await expect.poll(isWaiting, { timeout: 110_000, interval: 100 }).toBe(true);
    expect(existsSync(path.join(databaseDir, 'postmaster.pid')), start.output()).toBe(true);
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
    await writeFile(portTaken, '');

    const code = await start.exited;
    // Looked at the moment the exit is seen: nothing may still be on its way down.
    const left = await processesServing(databaseDir);
    const hasPidFile = existsSync(path.join(databaseDir, 'postmaster.pid'));
    const hasOwnerFile = existsSync(path.join(dataDir, 'postgres.owner'));
    const state = await clusterState(databaseDir);

    expect(code, start.output()).toBe(1);
    expect(
      start
        .stderr()
        .split('\n')
        .filter((line) => line.startsWith('HPC Billing failed to start')),
    ).toEqual([
      `HPC Billing failed to start: port ${port} of 127.0.0.1 is already in use by another process (EADDRINUSE), another instance of the app perhaps: stop it, or set PORT to a free port`,
    ]);
    expect(left, start.output()).toEqual([]);
    expect(hasPidFile, 'postmaster.pid still there: PostgreSQL had not finished shutting down').toBe(false);
    expect(hasOwnerFile, 'DATA_DIR still names the exited process the owner of its PostgreSQL').toBe(false);
    expect(state, 'pg_control does not say the cluster was shut down cleanly').toBe(1);
  } finally {
    start.child.kill('SIGKILL');
    await new Promise((resolve) => squatter.close(resolve));
  }
}, 150_000);

// The same start, stopped meanwhile by an operator's Ctrl-C and then a second signal (a supervisor's
// SIGTERM): the second signal's "end the drain delay" waited on a start that then failed, and that
// rejection, handled nowhere, was logged as "unhandled promise rejection", which reads as a bug.
it('signalled twice while it waits to listen, then finding the port taken, exits 1 naming PORT with no unhandled rejection', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'hb-embedded-start-failure-'));
  directories.push(dataDir);
  const databaseDir = path.join(dataDir, 'postgres');
  const listenNow = path.join(dataDir, 'listen-now');
  const port = await findFreePort();
  const preload = pathToFileURL(path.join(PROJECT_ROOT, 'test/support/listen-when-told.mjs')).href;
  const start = spawnCollecting(process.execPath, ['--import', 'tsx', '--import', preload, 'src/server.ts'], {
    cwd: PROJECT_ROOT,
    env: {
      PORT: String(port),
      DATA_DIR: dataDir,
      DEMO_SEED: '0',
      INGEST_ENABLED: '0',
      WEB_CONCURRENCY: '1',
      LOG_LEVEL: 'info',
      LISTEN_WHEN_TOLD_BY: listenNow,
    },
  });
  const squatter = net.createServer();
  try {
    const poll = { timeout: 110_000, interval: 100 };
    await expect.poll(() => start.stderr().includes('about to listen'), poll).toBe(true);
    start.child.kill('SIGINT');
    await expect.poll(() => start.output().includes('shutting down'), poll).toBe(true);
    // Past the window in which a signal counts as the first delivered again.
    await new Promise((resolve) => setTimeout(resolve, REPEATED_SIGNAL_MS * 3));
    start.child.kill('SIGTERM');
    await expect.poll(() => start.output().includes('second signal'), poll).toBe(true);
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
    await writeFile(listenNow, '');

    const code = await start.exited;
    const left = await processesServing(databaseDir);
    const hasPidFile = existsSync(path.join(databaseDir, 'postmaster.pid'));

    expect(start.output()).not.toMatch(/unhandled|shutdown failed/i);
    expect(code, start.output()).toBe(1);
    expect(
      start
        .stderr()
        .split('\n')
        .filter((line) => line.startsWith('HPC Billing failed to start')),
      start.output(),
    ).toEqual([
      `HPC Billing failed to start: port ${port} of 127.0.0.1 is already in use by another process (EADDRINUSE), another instance of the app perhaps: stop it, or set PORT to a free port`,
    ]);
    expect(left, start.output()).toEqual([]);
    expect(hasPidFile, 'postmaster.pid still there: PostgreSQL had not finished shutting down').toBe(false);
  } finally {
    start.child.kill('SIGKILL');
    await new Promise((resolve) => squatter.close(resolve));
  }
}, 150_000);

// Production (JSON lines), one SIGTERM (a deploy) while the start waits to listen, then the port
// taken: the stop waited on the failed start and failed with it, so the one failure was told twice,
// the start's fatal line and an error "shutdown failed", which reads as a second fault.
it('in production, a SIGTERM before a listen that finds the port taken leaves one fatal line and exits 1', async () => {
  const db = await createTestDatabase();
  cleanups.push(() => db.drop());
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'hb-embedded-start-failure-'));
  directories.push(dataDir);
  const listenNow = path.join(dataDir, 'listen-now');
  const port = await findFreePort();
  const preload = pathToFileURL(path.join(PROJECT_ROOT, 'test/support/listen-when-told.mjs')).href;
  const start = spawnCollecting(process.execPath, ['--import', 'tsx', '--import', preload, 'src/server.ts'], {
    cwd: PROJECT_ROOT,
    env: {
      APP_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: db.url,
      DATA_DIR: dataDir,
      SESSION_SECRET: 's'.repeat(40),
      AUDIT_CHAIN_KEY: 'k'.repeat(40),
      INGEST_ENABLED: '0',
      WEB_CONCURRENCY: '1',
      LISTEN_WHEN_TOLD_BY: listenNow,
    },
  });
  const squatter = net.createServer();
  try {
    const poll = { timeout: 110_000, interval: 100 };
    await expect.poll(() => start.stderr().includes('about to listen'), poll).toBe(true);
    start.child.kill('SIGTERM');
    await expect.poll(() => start.output().includes('"msg":"shutting down"'), poll).toBe(true);
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
    await writeFile(listenNow, '');

    const code = await start.exited;
    const lines = start
      .stdout()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { level: number; msg: string });

    expect(code, start.output()).toBe(1);
    expect(
      lines.filter((line) => line.level >= 50).map((line) => line.msg),
      start.output(),
    ).toEqual([
      `HPC Billing failed to start: port ${port} of 127.0.0.1 is already in use by another process (EADDRINUSE), another instance of the app perhaps: stop it, or set PORT to a free port`,
    ]);
  } finally {
    start.child.kill('SIGKILL');
    await new Promise((resolve) => squatter.close(resolve));
  }
}, 150_000);
