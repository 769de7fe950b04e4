import { spawn } from 'node:child_process';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { builtFile } from '../support/built-app.js';
import { PRODUCTION_ENV, PROJECT_ROOT } from '../support/spawn-server.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A production start with PostgreSQL down exited 1 at once. Under docker-compose without the
// healthcheck, systemd (whose default start limit gives up after 5 quick failures) or a host reboot
// where the app comes up before its database, the app stayed down, or crash-looped, although the
// database came up seconds later. It now waits for it, saying so once per attempt, for
// DB_START_WAIT_SEC, then fails with a message that says how long it tried.

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

interface Started {
  lines: Record<string, unknown>[];
  exited: Promise<number | null>;
  kill: () => void;
  /** Resolves once a line matching `test` was logged. */
  logged: (test: (line: Record<string, unknown>) => boolean) => Promise<Record<string, unknown>>;
}

function startServer(env: Record<string, string>): Started {
  const child = spawn(process.execPath, [builtFile('src/server.ts')], {
    cwd: PROJECT_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  const waiters: Array<() => void> = [];
  let partial = '';
  child.stdout.on('data', (chunk) => {
    partial += chunk;
    const complete = partial.split('\n');
    partial = complete.pop() ?? '';
    for (const line of complete) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
    for (const waiter of waiters.splice(0)) waiter();
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const logged = (test: (line: Record<string, unknown>) => boolean) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const found = lines.find(test);
        if (found) return resolve(found);
        if (child.exitCode !== null) return reject(new Error(`exited: ${JSON.stringify(lines)} ${stderr}`));
        waiters.push(check);
      };
      void exited.then(() => waiters.push(check) && check());
      check();
    });
  return { lines, exited, kill: () => child.kill('SIGTERM'), logged };
}

const isWaiting = (line: Record<string, unknown>) => String(line.msg).startsWith('waiting for the database');

describe('a production start with its database not up yet', () => {
  it('tries again for DB_START_WAIT_SEC, a line per attempt, then fails saying how long it tried', async () => {
    const port = await findFreePort();
    const server = startServer({
      ...PRODUCTION_ENV,
      DATABASE_URL: `postgresql://billing:not-this-password@127.0.0.1:${port}/billing`,
      PORT: String(await findFreePort()),
      DB_START_WAIT_SEC: '2',
    });
    expect(await server.exited).toBe(1);
    const waits = server.lines.filter(isWaiting);
    expect(waits.length).toBeGreaterThanOrEqual(2);
    expect(waits[0]).toMatchObject({
      level: 40,
      attempt: 1,
      err: `connect ECONNREFUSED 127.0.0.1:${port}`,
      msg: expect.stringMatching(
        new RegExp(
          `^waiting for the database \\(DATABASE_URL\\): connect ECONNREFUSED 127\\.0\\.0\\.1:${port}; trying again in `,
        ),
      ),
    });
    expect(server.lines.find((line) => line.level === 60)).toMatchObject({
      msg:
        `HPC Billing failed to start: the database cannot be reached (DATABASE_URL): connect ECONNREFUSED 127.0.0.1:${port}` +
        `, still after ${waits.length + 1} attempts in DB_START_WAIT_SEC (2 s)`,
    });
    expect(JSON.stringify(server.lines)).not.toContain('not-this-password');
  }, 120_000);

  // A host that takes the connection and never answers (a firewall that drops the handshake, a
  // PostgreSQL frozen mid-start, another service on the port) fails each attempt after
  // DB_CONNECT_TIMEOUT_MS with pg's "timeout expired". That start used to fail at once, with
  // "HPC Billing failed to start: timeout expired" alone: no wait, and no word of the database.
  it('waits for a database that takes the connection and never answers, naming DATABASE_URL', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    try {
      const server = startServer({
        ...PRODUCTION_ENV,
        DATABASE_URL: `postgresql://billing:secret@127.0.0.1:${port}/billing`,
        PORT: String(await findFreePort()),
        DB_START_WAIT_SEC: '2',
        DB_CONNECT_TIMEOUT_MS: '300',
      });
      expect(await server.exited).toBe(1);
      const waits = server.lines.filter(isWaiting);
      expect(waits.length).toBeGreaterThanOrEqual(1);
      expect(waits[0]).toMatchObject({ level: 40, attempt: 1, err: 'timeout expired' });
      expect(server.lines.find((line) => line.level === 60)).toMatchObject({
        msg:
          'HPC Billing failed to start: the database cannot be reached (DATABASE_URL): timeout expired' +
          `, still after ${waits.length + 1} attempts in DB_START_WAIT_SEC (2 s)`,
      });
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  }, 120_000);

  it('fails at once, without waiting, for a server that answers but refuses the database', async () => {
    const missing = new URL(db.url);
    missing.pathname = '/no_such_database_here';
    const server = startServer({
      ...PRODUCTION_ENV,
      DATABASE_URL: missing.toString(),
      PORT: String(await findFreePort()),
    });
    expect(await server.exited).toBe(1);
    expect(server.lines.filter(isWaiting)).toEqual([]);
    expect(server.lines.find((line) => line.level === 60)).toMatchObject({
      // It was reached, and answered: "cannot be reached" sent an operator to the network and pg_isready.
      msg: 'HPC Billing failed to start: the database server refused DATABASE_URL: database "no_such_database_here" does not exist',
    });
  }, 120_000);

  // Docker runs the app as PID 1, which the kernel gives no default action for SIGTERM: with no
  // handler during the wait, `docker stop` waited out its grace period and killed it.
  it('stops at once on SIGTERM while it waits, saying so', async () => {
    const server = startServer({
      ...PRODUCTION_ENV,
      DATABASE_URL: `postgresql://billing:secret@127.0.0.1:${await findFreePort()}/billing`,
      PORT: String(await findFreePort()),
    });
    await server.logged(isWaiting);
    server.kill();
    expect(await server.exited).toBe(0);
    expect(server.lines.at(-1)).toMatchObject({
      level: 30,
      signal: 'SIGTERM',
      msg: 'stopped while waiting for the database',
    });
  }, 120_000);

  // The start migrates: on a standby it failed with PostgreSQL's words alone, naming no setting.
  it('fails at once on a database that only reads, saying so and what to point DATABASE_URL at', async () => {
    const readOnly = await createTestDatabase();
    try {
      await readOnly.pool.query(`ALTER DATABASE ${readOnly.name} SET default_transaction_read_only = on`);
      const server = startServer({ ...PRODUCTION_ENV, DATABASE_URL: readOnly.url, PORT: String(await findFreePort()) });
      expect(await server.exited).toBe(1);
      expect(server.lines.filter(isWaiting)).toEqual([]);
      expect(server.lines.find((line) => line.level === 60)).toMatchObject({
        msg: expect.stringMatching(
          /^HPC Billing failed to start: the database only reads \(a standby, or set read-only\): point DATABASE_URL at the primary: .*read-only transaction$/,
        ),
      });
    } finally {
      await readOnly.drop();
    }
  }, 120_000);

  it('starts once the database comes up, and is ready', async () => {
    const port = await findFreePort();
    const target = new URL(db.url);
    const late = new URL(db.url);
    late.port = String(port);
    const appPort = await findFreePort();
    const server = startServer({ ...PRODUCTION_ENV, DATABASE_URL: late.toString(), PORT: String(appPort) });
    // Nothing listens on `port` yet: the database is "down". Once the app says it waits, it comes up
    // there (a TCP proxy to the test PostgreSQL, opened late).
    await server.logged(isWaiting);
    const proxy = net.createServer((socket) => {
      const upstream = net.connect(Number(target.port || 5432), target.hostname);
      socket.pipe(upstream).pipe(socket);
      socket.on('error', () => upstream.destroy());
      upstream.on('error', () => socket.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', resolve));
    try {
      await server.logged((line) => String(line.msg).includes('is listening'));
      const ready = await fetch(`http://127.0.0.1:${appPort}/readyz`);
      expect(ready.status).toBe(200);
      server.kill();
      expect(await server.exited).toBe(0);
    } finally {
      server.kill();
      proxy.close();
    }
    expect(server.lines.find((line) => line.level === 60)).toBeUndefined();
    // The wait's end is said, so that the warnings before it do not read as a start still failing.
    expect(server.lines.find((line) => line.msg === 'the database answers: starting')).toMatchObject({
      level: 30,
      attempt: expect.any(Number),
      waitedMs: expect.any(Number),
    });
  }, 120_000);
});
