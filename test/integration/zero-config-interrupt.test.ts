import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { PROJECT_ROOT, type RunningServer, spawnServer } from '../support/spawn-server.js';

// `npm start` with no configuration, stopped from its terminal: Ctrl-C sends SIGINT to every
// process of the foreground process group, and a hard kill (SIGKILL) to the app alone leaves
// whatever it started behind.

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function newDataDir(): Promise<string> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'hb-zero-config-interrupt-'));
  cleanups.push(async () => {
    // Whatever a failed test left running must not outlive the test run.
    const pid = postmasterPid(dataDir);
    if (pid !== undefined && isAlive(pid)) process.kill(pid, 'SIGQUIT');
    await rm(dataDir, { recursive: true, force: true });
  });
  return dataDir;
}

function postmasterPid(dataDir: string): number | undefined {
  const file = path.join(dataDir, 'postgres', 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  return Number(readFileSync(file, 'utf8').split('\n')[0]);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(condition: () => boolean, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  return condition();
}

async function startInItsOwnGroup(dataDir: string): Promise<{ server: RunningServer; port: number }> {
  const port = await findFreePort();
  const env = { DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'info' };
  const server = await spawnServer(env, 90_000, { hasOwnProcessGroup: true, isFromSource: true });
  cleanups.push(async () => {
    if (server.process.exitCode === null && server.process.signalCode === null) {
      process.kill(-(server.process.pid as number), 'SIGKILL');
    }
  });
  return { server, port };
}

describe('the zero-configuration start, stopped from its terminal', () => {
  it('on Ctrl-C (SIGINT to the whole process group) drains, stops its PostgreSQL last, and exits 0', async () => {
    const dataDir = await newDataDir();
    const { server, port } = await startInItsOwnGroup(dataDir);
    // Connections in the pool, which a PostgreSQL stopping under the app would end.
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/formula`)).status).toBe(200);
    // A request whose body is still arriving keeps the app draining, with its pool open, for as
    // long as the test holds the rest back: whatever stops PostgreSQL meanwhile shows.
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    let answer = '';
    socket.on('data', (chunk) => {
      answer += chunk;
    });
    const body = 'username=nobody&password=x&csrf_token=none';
    socket.write(
      `POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n` +
        `Content-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 200));

    process.kill(-(server.process.pid as number), 'SIGINT');
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    socket.end(body.slice(10));

    expect(await server.exited, server.output()).toBe(0);
    expect(answer).toMatch(/^HTTP\/1\.1 403 /);
    expect(server.output()).toContain('"signal":"SIGINT"');
    expect(server.output()).not.toMatch(/connection ended|terminating connection|connection lost/);
    expect(await waitFor(() => postmasterPid(dataDir) === undefined), 'PostgreSQL still running').toBe(true);
  }, 180_000);

  it('after a hard kill, the next start stops the PostgreSQL the killed one left running, and starts', async () => {
    const dataDir = await newDataDir();
    const first = await startInItsOwnGroup(dataDir);
    const orphan = postmasterPid(dataDir) as number;
    expect(orphan).toBeGreaterThan(0);

    // SIGKILL cannot be handled: the app stops nothing. Its PostgreSQL keeps running, and
    // holding the data directory, until something stops it.
    process.kill(first.server.process.pid as number, 'SIGKILL');
    await first.server.exited;
    expect(isAlive(orphan)).toBe(true);

    const { server: second, port } = await startInItsOwnGroup(dataDir);
    expect(second.output()).toContain('stopping the embedded PostgreSQL a killed start left running');
    // One key per fact: a second "pid" in the line would make a JSON reader keep PostgreSQL's as the app's.
    const line = second
      .output()
      .split('\n')
      .find((text) => text.includes('a killed start left running')) as string;
    expect(line.match(/"pid":/g)).toHaveLength(1);
    expect(JSON.parse(line)).toMatchObject({
      pid: second.process.pid,
      postgresPid: orphan,
      ownerPid: first.server.process.pid,
    });
    expect(postmasterPid(dataDir)).not.toBe(orphan);
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    expect(await second.stop(), second.output()).toBe(0);
    expect(await waitFor(() => postmasterPid(dataDir) === undefined), 'PostgreSQL still running').toBe(true);
  }, 240_000);

  it('a second start on a data directory in use refuses in plain words, and leaves the first running', async () => {
    const dataDir = await newDataDir();
    const { server: first, port } = await startInItsOwnGroup(dataDir);
    const ownerFile = path.join(dataDir, 'postgres.owner');
    const owner = readFileSync(ownerFile, 'utf8');
    const postmaster = postmasterPid(dataDir);

    // As `npm start` typed in a second terminal: another free port, the same DATA_DIR.
    const second = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: PROJECT_ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        DATA_DIR: dataDir,
        PORT: String(await findFreePort()),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    second.stdout?.on('data', (chunk) => {
      output += chunk;
    });
    second.stderr?.on('data', (chunk) => {
      output += chunk;
    });
    const code = await new Promise((resolve) => second.once('exit', resolve));
    expect(code, output).toBe(1);
    expect(output).toContain(
      `is already running (process ${postmaster}, started by process ${first.process.pid}): another instance of the app is using this data directory. Stop it, or set DATA_DIR or DATABASE_URL`,
    );
    expect(output).not.toContain('Cannot read properties');

    // The first instance is untouched, and still named as the owner: a third start must not
    // take its server for a leftover.
    expect(readFileSync(ownerFile, 'utf8')).toBe(owner);
    expect(postmasterPid(dataDir)).toBe(postmaster);
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    expect(await first.stop(), first.output()).toBe(0);
  }, 240_000);
});
