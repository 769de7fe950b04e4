import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { REPEATED_SIGNAL_MS } from '../../src/shared/distinct-signals.js';
import { spawnCollecting } from '../support/run-to-exit.js';
import { PROJECT_ROOT } from '../support/spawn-server.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

/** True while something accepts HTTP on the port. */
async function isAnswering(port: number): Promise<boolean> {
  try {
    await fetch(`http://127.0.0.1:${port}/healthz`);
    return true;
  } catch {
    return false;
  }
}

/** `npm start` in production mode on `port`, once it says it listens. */
async function startWithNpm(port: number, env: Record<string, string> = {}, hasOwnProcessGroup = false) {
  const npm = spawnCollecting('npm', ['run', '--silent', 'start'], {
    cwd: PROJECT_ROOT,
    env: {
      APP_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: db.url,
      SESSION_SECRET: 's'.repeat(40),
      AUDIT_CHAIN_KEY: 'k'.repeat(40),
      INGEST_ENABLED: '0',
      ...env,
    },
    hasOwnProcessGroup,
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${npm.output()}`)), 90_000);
    npm.child.stdout.on('data', () => {
      if (npm.output().includes('is listening on http')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return npm;
}

// A service manager (systemd, supervisord, a container runtime) that starts `npm start` sends
// SIGTERM to npm. npm forwards it to the shell that runs the script; a shell that did not
// exec the server then dies and leaves the server running, orphaned, still holding its port.
describe('npm start stops the server when npm gets SIGTERM', () => {
  it('the server shuts down gracefully and frees its port', async () => {
    const port = await findFreePort();
    const npm = await startWithNpm(port);
    const { child, output } = npm;
    const serverPid = Number(/"pid":(\d+)[^\n]*is listening on http/.exec(output())?.[1]);

    child.kill('SIGTERM');
    await npm.exited;
    try {
      expect(output()).toContain('"msg":"shutting down"');
      expect(await isAnswering(port)).toBe(false);
    } finally {
      // Before the fix the server outlived npm: stop it so that it does not outlive the test.
      try {
        process.kill(serverPid, 'SIGKILL');
      } catch {
        // already gone, as it should be
      }
    }
  }, 120_000);
});

const DEV_ENV = { HOST: '127.0.0.1', DEMO_SEED: '0', INGEST_ENABLED: '0' };

/** Resolves once `output()` says the server listens; rejects after 90 s with what it said. */
function listening(output: () => string, child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output()}`)), 90_000);
    child.stdout?.on('data', () => {
      if (output().includes('is listening on http')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

/** True while the embedded PostgreSQL under `dataDir` runs. */
const isPostgresRunning = (dataDir: string) => existsSync(path.join(dataDir, 'postgres', 'postmaster.pid'));

/** Stops an embedded PostgreSQL a start left running (a process group of its own), then removes `dataDir`. */
async function removeDataDir(dataDir: string) {
  if (isPostgresRunning(dataDir)) {
    const pid = Number((await readFile(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8')).split('\n')[0]);
    try {
      process.kill(pid, 'SIGINT');
    } catch {
      // already gone
    }
    await expect.poll(() => isPostgresRunning(dataDir), { timeout: 15_000 }).toBe(false);
  }
  await rm(dataDir, { recursive: true, force: true });
}

// `npm run dev` (README's Development table) runs the demo's embedded PostgreSQL as `npm start` does.
describe('npm run dev stops the server and its embedded PostgreSQL', () => {
  // An editor's or a supervisor's stop button, or `kill` of the npm it started, is a SIGTERM to npm:
  // its shell died and left tsx watch, the server and the PostgreSQL running, orphaned, with the port
  // and DATA_DIR, so the next `npm start` failed "port 8000 of 127.0.0.1 is already in use".
  it('on SIGTERM to npm', async () => {
    const port = await findFreePort();
    const dataDir = await mkdtemp(path.join(tmpdir(), 'npm-dev-'));
    // A process group of its own, only so that the test can end whatever outlived npm.
    const npm = spawnCollecting('npm', ['run', '--silent', 'dev'], {
      cwd: PROJECT_ROOT,
      env: { ...DEV_ENV, PORT: String(port), DATA_DIR: dataDir },
      hasOwnProcessGroup: true,
    });
    try {
      await listening(npm.output, npm.child);
      npm.child.kill('SIGTERM');
      await npm.exited;
      await expect.poll(() => isAnswering(port), { timeout: 15_000 }).toBe(false);
      await expect.poll(() => isPostgresRunning(dataDir), { timeout: 15_000 }).toBe(false);
      expect(npm.output()).toContain('"msg":"stopped"');
    } finally {
      try {
        process.kill(-(npm.child.pid as number), 'SIGKILL');
      } catch {
        // already gone, as it should be
      }
      await removeDataDir(dataDir);
    }
  }, 150_000);

  // A Ctrl-C typed in a terminal (here script(1)'s, a real pseudo-terminal) reaches npm and the watcher
  // alike, and npm passes it on: `exec tsx watch`, given it twice, SIGKILLed the server mid-shutdown
  // ("Previous process hasn't exited yet. Force killing..."), which left the PostgreSQL running.
  it.skipIf(!existsSync('/usr/bin/script'))(
    'on a Ctrl-C in its terminal',
    async () => {
      const port = await findFreePort();
      const dataDir = await mkdtemp(path.join(tmpdir(), 'npm-dev-'));
      const terminal = spawn('/usr/bin/script', ['-qfec', 'npm run --silent dev', '/dev/null'], {
        cwd: PROJECT_ROOT,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '',
          TERM: 'dumb',
          ...DEV_ENV,
          PORT: String(port),
          DATA_DIR: dataDir,
        },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let output = '';
      terminal.stdout.on('data', (chunk) => {
        output += chunk;
      });
      const exited = new Promise((resolve) => terminal.once('exit', resolve));
      try {
        await listening(() => output, terminal);
        terminal.stdin.write('\x03');
        await exited;
        await expect.poll(() => isAnswering(port), { timeout: 15_000 }).toBe(false);
        await expect.poll(() => isPostgresRunning(dataDir), { timeout: 15_000 }).toBe(false);
        expect(output).toContain('"msg":"stopped"');
        expect(output).not.toContain('Force killing');
      } finally {
        terminal.kill('SIGKILL');
        await removeDataDir(dataDir);
      }
    },
    150_000,
  );
});

/** The status of a GET, or the error's message when nothing answered. */
async function statusOf(port: number, path: string): Promise<number | string> {
  try {
    return (await fetch(`http://127.0.0.1:${port}${path}`)).status;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

// A terminal's Ctrl-C goes to the whole foreground group: npm, and the server it runs. npm passes it
// on to its script as well, so the server got the one keypress twice and took the second as an
// operator's second Ctrl-C: the drain delay was skipped on the first.
describe('npm start in a terminal stopped with Ctrl-C', () => {
  it('waits out the drain delay on the first Ctrl-C and ends it on a second', async () => {
    const port = await findFreePort();
    const npm = await startWithNpm(
      port,
      // Far longer than the test: only a second Ctrl-C can end it in time.
      { WEB_CONCURRENCY: '1', SHUTDOWN_DRAIN_DELAY_MS: '600000' },
      true,
    );
    const { child, output } = npm;
    const group = -(child.pid as number);
    try {
      process.kill(group, 'SIGINT');
      await expect.poll(() => statusOf(port, '/readyz')).toBe(503);
      // Past the time any passed-on copy of the signal takes: the server still drains.
      await new Promise((resolve) => setTimeout(resolve, REPEATED_SIGNAL_MS));
      expect(await statusOf(port, '/healthz'), output()).toBe(200);
      expect(output()).not.toContain('second signal');

      process.kill(group, 'SIGINT');
      await npm.exited;
      expect(output()).toContain('"msg":"second signal: ending the drain delay now"');
      expect(await statusOf(port, '/healthz')).not.toBe(200);
    } finally {
      try {
        process.kill(group, 'SIGKILL');
      } catch {
        // already gone, as it should be
      }
    }
  }, 120_000);
});
