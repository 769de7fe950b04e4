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
