import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres.js';
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

// A service manager (systemd, supervisord, a container runtime) that starts `npm start` sends
// SIGTERM to npm. npm forwards it to the shell that runs the script; a shell that did not
// exec the server then dies and leaves the server running, orphaned, still holding its port.
describe('npm start stops the server when npm gets SIGTERM', () => {
  it('the server shuts down gracefully and frees its port', async () => {
    const port = await findFreePort();
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
      },
    });
    const { child, output } = npm;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start:\n${output()}`)), 90_000);
      child.stdout.on('data', () => {
        if (output().includes('is listening on http')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
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
