import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, expect, it } from 'vitest';
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { createLogger } from '../../src/shared/logger.js';
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

// The OOM killer or a kill -9 of the demo's server: the app starts it again on the same port,
// and its pools reconnect, instead of answering 503 until someone restarts the demo.
it('starts its embedded PostgreSQL again on the same address when the server dies under it', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'hb-embedded-killed-'));
  directories.push(dataDir);
  const lines: { msg: string; level: number }[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  const embedded = await startEmbeddedPostgres(dataDir, logger);
  try {
    const pidFile = path.join(dataDir, 'postgres', 'postmaster.pid');
    const killedPid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
    process.kill(killedPid, 'SIGKILL');

    let answer: string | undefined;
    const deadline = Date.now() + 60_000;
    while (answer === undefined && Date.now() < deadline) {
      const client = new pg.Client({ connectionString: embedded.url, connectionTimeoutMillis: 2_000 });
      try {
        await client.connect();
        answer = (await client.query<{ answer: string }>(`SELECT 'back' AS answer`)).rows[0]?.answer;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 200));
      } finally {
        await client.end().catch(() => undefined);
      }
    }
    expect(answer).toBe('back');
    const restartedPid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
    expect(restartedPid).not.toBe(killedPid);
    const messages = lines.map((line) => line.msg);
    expect(messages).toContain('the embedded PostgreSQL stopped unexpectedly; starting it again');
    expect(messages).toContain('embedded PostgreSQL restarted');
  } finally {
    await embedded.stop();
  }
  // A stop by the app is not a death: the server stays stopped.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  expect(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false);
  expect(lines.filter((line) => line.msg === 'embedded PostgreSQL restarted')).toHaveLength(1);
}, 120_000);

// A server that does not stop (frozen here; a disk that hangs in its checkpoint does the same) kept
// the app's shutdown waiting for ever, past the orchestrator's grace period: it SIGKILLed the app
// with PostgreSQL still running. The fast shutdown gets a few seconds, then the immediate one, then SIGKILL.
it('stops its embedded PostgreSQL within a bound when it does not answer the fast shutdown', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'hb-embedded-frozen-'));
  directories.push(dataDir);
  const lines: { msg: string; level: number }[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  const embedded = await startEmbeddedPostgres(dataDir, logger);
  const pidFile = path.join(dataDir, 'postgres', 'postmaster.pid');
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
  process.kill(pid, 'SIGSTOP');
  const isAlive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    const startedAt = performance.now();
    const stopped = await Promise.race([
      embedded.stop().then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), 20_000);
      }),
    ]);
    expect(stopped, 'stop() still waiting after 20 s').toBe(true);
    expect(performance.now() - startedAt).toBeLessThan(15_000);
    expect(isAlive()).toBe(false);
    expect(lines.some((line) => line.level === 40 && /did not stop within/.test(line.msg))).toBe(true);
  } finally {
    clearTimeout(timer);
    if (isAlive()) {
      process.kill(pid, 'SIGCONT');
      await embedded.stop();
    }
  }
}, 120_000);

// The test suite's server is thrown away after the run, so it skips flushing to disk (a DROP
// DATABASE waited about 2 s for its checkpoint's fsyncs, at every test file's end); the demo's
// server keeps its data safe from a crash of the machine.
it('flushes to disk unless the server is started as disposable', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'hb-embedded-disposable-'));
  directories.push(dataDir);
  const settingsOf = async (options: { isDisposable?: boolean }) => {
    const embedded = await startEmbeddedPostgres(dataDir, createLogger('silent'), options);
    const client = new pg.Client({ connectionString: embedded.url });
    try {
      await client.connect();
      const { rows } = await client.query<{ name: string; setting: string }>(
        `SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes')
          ORDER BY name`,
      );
      return Object.fromEntries(rows.map((row) => [row.name, row.setting]));
    } finally {
      await client.end();
      await embedded.stop();
    }
  };
  expect(await settingsOf({})).toEqual({ fsync: 'on', full_page_writes: 'on', synchronous_commit: 'on' });
  expect(await settingsOf({ isDisposable: true })).toEqual({
    fsync: 'off',
    full_page_writes: 'off',
    synchronous_commit: 'off',
  });
}, 120_000);

/** What the embedded PostgreSQL at `url` answers, or the error it gives. */
async function answerOf(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
    return (await client.query<{ answer: string }>(`SELECT 'here' AS answer`)).rows[0]?.answer ?? 'no row';
  } catch (error) {
    return (error as Error).message;
  } finally {
    await client.end().catch(() => undefined);
  }
}

// `npm run dev` (node --watch) restarts the app on every save, and the app stops its embedded
// PostgreSQL and starts it again with it: the port was the kernel's pick at each start, so the
// banner's export line pasted into another shell went stale on every save.
it('starts its embedded PostgreSQL on the port of the last start of the same DATA_DIR', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'hb-embedded-port-'));
  directories.push(dataDir);
  const first = await startEmbeddedPostgres(dataDir, createLogger('silent'));
  await first.stop();
  const second = await startEmbeddedPostgres(dataDir, createLogger('silent'));
  try {
    expect(second.url).toBe(first.url);
    expect(await answerOf(second.url)).toBe('here');
  } finally {
    await second.stop();
  }
}, 120_000);

// The last start's port taken by something else since, or the remembered port unreadable: the start
// takes a free port as before, rather than failing or reaching another program.
it('takes another free port when the last one is in use or not readable', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'hb-embedded-port-taken-'));
  directories.push(dataDir);
  const first = await startEmbeddedPostgres(dataDir, createLogger('silent'));
  await first.stop();
  const lastPort = Number(new URL(first.url).port);
  const squatter = net.createServer();
  await new Promise<void>((resolve, reject) => {
    squatter.once('error', reject);
    squatter.listen(lastPort, '127.0.0.1', () => resolve());
  });
  try {
    const second = await startEmbeddedPostgres(dataDir, createLogger('silent'));
    try {
      expect(second.url).not.toBe(first.url);
      expect(await answerOf(second.url)).toBe('here');
    } finally {
      await second.stop();
    }
  } finally {
    await new Promise((resolve) => squatter.close(resolve));
  }
  for (const content of ['not a port\n', '0\n', '70000\n', '']) {
    await writeFile(path.join(dataDir, 'postgres.port'), content);
    const again = await startEmbeddedPostgres(dataDir, createLogger('silent'));
    try {
      expect(Number(new URL(again.url).port)).toBeGreaterThan(0);
      expect(await answerOf(again.url)).toBe('here');
    } finally {
      await again.stop();
    }
  }
}, 180_000);
