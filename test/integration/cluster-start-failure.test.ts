import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { builtFile } from '../support/built-app.js';
import { runToExit, spawnCollecting } from '../support/run-to-exit.js';
import { PROJECT_ROOT } from '../support/spawn-server.js';
import { startFailedOnTakenPort, takePort } from '../support/taken-port.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const productionEnv = (port: number) => ({
  APP_ENV: 'production',
  HOST: '127.0.0.1',
  PORT: String(port),
  DATABASE_URL: db.url,
  SESSION_SECRET: 's'.repeat(40),
  AUDIT_CHAIN_KEY: 'k'.repeat(40),
  INGEST_ENABLED: '0',
  WEB_CONCURRENCY: '2',
});

/** The JSON lines of a production start's output. */
function logLines(output: string): { level: number; msg: string; pid: number; [field: string]: unknown }[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line));
}

/** The fatal lines of a production start's output (JSON lines). */
function fatalMessages(output: string): string[] {
  return logLines(output)
    .filter((line) => line.level === 60 && line.msg.startsWith('HPC Billing failed to start'))
    .map((line) => line.msg);
}

// Production with WEB_CONCURRENCY > 1 whose workers fail before they listen (a taken port did,
// before the primary checked it). The primary used to start another, for ever ("worker died;
// starting another"), so the process stayed up serving nothing, and a service manager never saw
// the start fail.
describe('a cluster whose workers cannot start', () => {
  it('stops with one fatal line saying why and exits 1, instead of restarting workers for ever', async () => {
    const failInWorker = path.join(PROJECT_ROOT, 'test/support/fail-in-cluster-worker.mjs');
    const result = await runToExit(
      process.execPath,
      ['--import', pathToFileURL(failInWorker).href, builtFile('src/server.ts')],
      { cwd: PROJECT_ROOT, giveUpMs: 60_000, env: productionEnv(await findFreePort()) },
    );
    expect(result.hasExitedItself).toBe(true);
    expect(result.code).toBe(1);
    expect(fatalMessages(result.output)).toContain(
      'HPC Billing failed to start: a worker exited (code 1) before it listened; its error is logged above',
    );
    expect(result.output).toContain('this worker fails on purpose before it listens');
  }, 120_000);

  it('on a port another process holds stops before it starts any worker, naming PORT', async () => {
    const port = await findFreePort();
    const taken = await takePort(port);
    try {
      const result = await runToExit(process.execPath, [builtFile('src/server.ts')], {
        cwd: PROJECT_ROOT,
        giveUpMs: 60_000,
        env: productionEnv(port),
      });
      expect(result.hasExitedItself).toBe(true);
      expect(result.code).toBe(1);
      expect(fatalMessages(result.output)).toEqual([startFailedOnTakenPort(port)]);
      expect(result.output).not.toContain('worker');
    } finally {
      await taken.release();
    }
  }, 120_000);
});

// A worker that dies after it listened, while another is still starting (the OOM killer, a kill -9),
// is a worker that died, not a start that failed: it used to take the whole instance down, exit 1,
// with "a worker exited (signal SIGKILL) before it listened; its error is logged above", neither of
// which was so, and the start-up banner was logged while it stopped.
describe('a cluster worker that dies after it listened, while another still starts', () => {
  it('is replaced as any worker that dies, and the instance starts and serves', async () => {
    const dieAfterListening = path.join(PROJECT_ROOT, 'test/support/first-worker-dies-after-listening.mjs');
    const port = await findFreePort();
    const running = spawnCollecting(
      process.execPath,
      ['--import', pathToFileURL(dieAfterListening).href, builtFile('src/server.ts')],
      { cwd: PROJECT_ROOT, env: { ...productionEnv(port), LOG_LEVEL: 'info' } },
    );
    try {
      await expect
        .poll(() => running.output(), { timeout: 90_000, interval: 200 })
        .toMatch(/"msg":"HPC Billing is listening on /);
      const killedPid = Number(running.output().match(/killed on purpose \(pid (\d+)\)/)?.[1]);
      expect(killedPid).toBeGreaterThan(0);
      // Named by its number (cluster.worker.id, the `worker` of its own lines: the fixture kills
      // worker 1) as well as its pid, which no line of its own carried; and its replacement's number.
      expect(logLines(running.output()).filter((line) => line.msg === 'worker died; starting another')).toEqual([
        expect.objectContaining({ worker: 1, workerPid: killedPid, signal: 'SIGKILL', replacement: 3 }),
      ]);
      expect(fatalMessages(running.output())).toEqual([]);
      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(health.status).toBe(200);
    } finally {
      running.child.kill('SIGTERM');
      await running.exited;
    }
  }, 150_000);
});
