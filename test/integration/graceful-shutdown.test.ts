import { execFileSync } from 'node:child_process';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import express from 'express';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { errorHandler } from '../../src/http/error-handler.js';
import { closeGracefully, listen } from '../../src/http/lifecycle.js';
import { requestContext } from '../../src/http/request-context.js';
import { REPEATED_SIGNAL_MS } from '../../src/shared/distinct-signals.js';
import { spawnServer } from '../support/spawn-server.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/** An app whose GET /slow answers after `answered` (ms, or once the promise settles). */
function buildSlowApp(answered: number | Promise<unknown>) {
  const app = express();
  let arrived = 0;
  app.get('/slow', async (_req, res) => {
    arrived += 1;
    await (typeof answered === 'number' ? new Promise((resolve) => setTimeout(resolve, answered)) : answered);
    res.json({ finished: true });
  });
  return { app, reached: () => reached(() => arrived) };
}

/**
 * Resolves once `arrived()` counts `count` requests in their handlers. The tests slept 100-200 ms
 * for their requests to get there instead: on a loaded machine one had not yet when the close
 * began, so it was no request in flight (cut as idle, or refused), and the test failed.
 */
async function reached(arrived: () => number, count = 1) {
  await expect.poll(arrived, { timeout: 30_000 }).toBeGreaterThanOrEqual(count);
}

// A spawned server may take up to spawnServer's 90 s to start on a loaded machine; these tests had 60 s
// in all. With two suites running at once the 2-worker Ctrl-C test timed out at 60 s twice, and
// passed in 11-12 s four times on its own.
const SPAWNED_TEST_TIMEOUT_MS = 150_000;

describe('closeGracefully', () => {
  it('lets an in-flight request finish, then refuses new connections', async () => {
    const slow = buildSlowApp(400);
    const server = await listen(slow.app, 0, '127.0.0.1');
    const { port } = server.address() as AddressInfo;
    const inFlight = fetch(`http://127.0.0.1:${port}/slow`);
    await slow.reached();

    const closing = closeGracefully(server, 5_000);
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ finished: true });
    expect(await closing).toBe(true);
    await expect(fetch(`http://127.0.0.1:${port}/slow`)).rejects.toThrow();
  });

  it('answers 503 to a request that outlives the timeout with nothing sent yet, and reports it', async () => {
    const slow = buildSlowApp(5_000);
    const server = await listen(slow.app, 0, '127.0.0.1');
    const { port } = server.address() as AddressInfo;
    const inFlight = fetch(`http://127.0.0.1:${port}/slow`, { headers: { Accept: 'application/json' } });
    await slow.reached();
    expect(await closeGracefully(server, 200)).toBe(false);
    // Before: the connection was cut with nothing on it, and the client (or the proxy in front,
    // as a 502) saw an empty reply instead of the 503 the log recorded.
    const response = await inFlight;
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('5');
    expect(response.headers.get('connection')).toBe('close');
    expect(await response.json()).toEqual({ error: 'The server is restarting. Try again in a moment.', code: 503 });
  });

  // Node's own sweep of idle connections (server.close() runs it too) took a connection whose
  // answer had been ended, its bytes still waiting for a slow reader, for idle and cut it at once:
  // the client got the first few MB of a download and a truncated file. More than the sockets'
  // buffers take while the client does not read, so most of it is still in the server's memory.
  it('lets an answer already ended go out whole to a client that reads slowly, then closes', async () => {
    const size = 32 * 1024 * 1024;
    let hasEnded: () => void = () => undefined;
    const ended = new Promise<void>((resolve) => {
      hasEnded = resolve;
    });
    const app = express();
    app.get('/large', (_req, res) => {
      res.type('text/csv').end(Buffer.alloc(size, 'a'));
      hasEnded();
    });
    const server = await listen(app, 0, '127.0.0.1');
    const { port } = server.address() as AddressInfo;
    const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/large', agent: false }, resolve).once('error', reject);
    });
    response.pause();
    await ended;

    const closing = closeGracefully(server, 60_000);
    // A few sweeps go by before the client reads on.
    await new Promise((resolve) => setTimeout(resolve, 300));
    let received = 0;
    const outcome = new Promise<string>((resolve) => {
      response.on('data', (chunk: Buffer) => {
        received += chunk.length;
      });
      response.once('end', () => resolve('end'));
      response.once('aborted', () => resolve('aborted'));
      response.once('error', (error) => resolve(`error: ${error.message}`));
    });
    response.resume();
    expect(await outcome).toBe('end');
    expect(received).toBe(size);
    expect(await closing).toBe(true);
  });

  it('answers a page its 503 in HTML', async () => {
    const slow = buildSlowApp(5_000);
    const server = await listen(slow.app, 0, '127.0.0.1');
    const { port } = server.address() as AddressInfo;
    const inFlight = fetch(`http://127.0.0.1:${port}/slow`, { headers: { Accept: 'text/html' } });
    await slow.reached();
    expect(await closeGracefully(server, 200)).toBe(false);
    const response = await inFlight;
    expect(response.status).toBe(503);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    const page = await response.text();
    expect(page).toContain('<p class="lead">The server is restarting. Try again in a moment.</p>');
    // The app's error page with its style in it (it was bare HTML), which the policy allows by its hash.
    expect(page).toContain('<h1>Service Unavailable (503)</h1>');
    expect(page).toMatch(/<style>:root \{/);
    expect(response.headers.get('content-security-policy')).toMatch(/style-src 'sha256-[A-Za-z0-9+/=]+'/);
  });
});

/** One keep-alive connection, as a reverse proxy keeps to its upstream: requests one after another on it. */
function keepAliveConnection(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    received += chunk;
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => undefined);
  return {
    /** Sends GET `path` and resolves with the answer's head, or undefined when the connection closed first. */
    async get(path: string): Promise<string | undefined> {
      received = '';
      socket.write(`GET ${path} HTTP/1.1\r\nHost: app\r\n\r\n`);
      for (;;) {
        const end = received.indexOf('\r\n\r\n');
        if (end >= 0 && /\r\n\r\n[\s\S]*\}$/.test(received)) return received.slice(0, end);
        const isClosed = await Promise.race([
          closed.then(() => true),
          new Promise<false>((resolve) => setTimeout(() => resolve(false), 10)),
        ]);
        if (isClosed)
          return /\r\n\r\n[\s\S]*\}$/.test(received) ? received.slice(0, received.indexOf('\r\n\r\n')) : undefined;
      }
    },
    closed,
  };
}

describe('keep-alive connections during a shutdown', () => {
  it('answers requests that come on them with Connection: close, so no client sends another on a connection about to close', async () => {
    // Answered once the close has begun (a fixed 600 ms could run out first on a loaded machine).
    let release: () => void = () => undefined;
    const slow = buildSlowApp(
      new Promise<void>((resolve) => {
        release = resolve;
      }),
    );
    const { app } = slow;
    app.get('/fast', (_req, res) => {
      res.json({ fast: true });
    });
    const server = await listen(app, 0, '127.0.0.1');
    const { port } = server.address() as AddressInfo;
    // A proxy's connection: one answer before the deploy, one in flight when SIGTERM comes, one during the drain.
    const proxy = keepAliveConnection(port);
    expect(await proxy.get('/fast')).toMatch(/^HTTP\/1\.1 200[\s\S]*Connection: keep-alive/i);
    const inFlight = proxy.get('/slow');
    await slow.reached();
    // Another proxy connection, idle between two requests when the shutdown starts.
    const other = keepAliveConnection(port);
    expect(await other.get('/fast')).toMatch(/^HTTP\/1\.1 200/);

    const closing = closeGracefully(server, 5_000);
    release();
    // Before: the slow answer said keep-alive and its connection was closed as idle just after,
    // so the proxy's next request on it failed (nginx: 502) during every deploy.
    expect(await inFlight).toMatch(/^HTTP\/1\.1 200[\s\S]*Connection: close/i);
    await proxy.closed;
    expect(await closing).toBe(true);
    await other.closed;
  });
});

describe('a request sent on a keep-alive connection as a shutdown begins, not yet read', () => {
  // On a busy server a request can wait in the socket's buffer, sent but not yet read, while its
  // keep-alive connection reads as idle (no request on it). The shutdown's sweep of idle connections
  // cut those: under load (30 clients, one worker) a SIGTERM reset a third of the clients' requests
  // (ECONNRESET; behind nginx, 502s). Here the request is written and the close begins in the same
  // tick, before the server reads it.
  it('answers one sent on a keep-alive connection, with Connection: close', async () => {
    const app = express();
    app.get('/fast', (_req, res) => {
      res.json({ fast: true });
    });
    const server = await listen(app, 0, '127.0.0.1');
    const { port } = server.address() as AddressInfo;
    const proxy = keepAliveConnection(port);
    expect(await proxy.get('/fast')).toMatch(/^HTTP\/1\.1 200[\s\S]*Connection: keep-alive/i);

    const next = proxy.get('/fast');
    const closing = closeGracefully(server, 5_000);
    expect(await next).toMatch(/^HTTP\/1\.1 200[\s\S]*Connection: close/i);
    expect(await closing).toBe(true);
    await proxy.closed;
  });

  it('still closes a keep-alive connection that stays idle, well within the timeout', async () => {
    const app = express();
    app.get('/fast', (_req, res) => {
      res.json({ fast: true });
    });
    const server = await listen(app, 0, '127.0.0.1');
    const { port } = server.address() as AddressInfo;
    const idle = keepAliveConnection(port);
    expect(await idle.get('/fast')).toMatch(/^HTTP\/1\.1 200/);
    const startedAt = Date.now();
    expect(await closeGracefully(server, 5_000)).toBe(true);
    await idle.closed;
    expect(Date.now() - startedAt).toBeLessThan(2_000);
  });
});

describe('the request log of a shutdown that cuts what is left', () => {
  it('says the shutdown cut a download midway (its status as sent), not that the client closed it', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const app = express();
    app.use(requestContext(logger));
    // A CSV export whose client reads slowly: headers and a first part sent, the rest to come.
    let arrived = 0;
    app.get('/export.csv', (_req, res) => {
      arrived += 1;
      res.type('text/csv').write('job_id,cost\n');
    });
    // A page still waiting for its database when the time is up: nothing sent yet.
    app.get('/slow', () => {
      arrived += 1;
    });
    const server = await listen(app, 0, '127.0.0.1');
    const { port } = server.address() as AddressInfo;
    const download = fetch(`http://127.0.0.1:${port}/export.csv`).then((response) =>
      response.text().catch((error: Error) => error),
    );
    const page = fetch(`http://127.0.0.1:${port}/slow`).catch((error: Error) => error);
    await reached(() => arrived, 2);

    expect(await closeGracefully(server, 200)).toBe(false);
    await Promise.all([download, page]);
    await expect.poll(() => lines.length).toBe(2);
    const logged = Object.fromEntries(lines.map((line) => [line.route, line]));
    expect(logged['/export.csv']).toMatchObject({ msg: 'request', status: 200, cutByShutdown: true });
    expect(logged['/slow']).toMatchObject({ msg: 'request', status: 503, cutByShutdown: true });
    for (const line of lines) expect(line).not.toHaveProperty('clientClosed');
    // At warn, as at LOG_LEVEL=warn where they are the only request lines.
    for (const line of lines) expect(line).toMatchObject({ level: 40 });
  });

  // A big CSV export to a client that stopped reading: its answer fills the socket's buffers, so the
  // cut destroys the socket with writes pending and its 'close' comes a loop turn or more later. The
  // close resolved at once (a destroyed socket reads as closed before its 'close'), so the server
  // logged "shutdown timed out" before the download's line, which docs/operations.md ("Logs") puts
  // before it, and could exit without it (seen on a 2-worker production start).
  it("resolves only once a cut download's connection has closed, so its line comes before the timeout's warning", async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line).route) });
    const app = express();
    app.use(requestContext(logger));
    let arrived = 0;
    app.get('/export.csv', (_req, res) => {
      arrived += 1;
      res.type('text/csv');
      const chunk = `${'x'.repeat(65_535)}\n`;
      const fill = () => {
        while (res.write(chunk));
        res.once('drain', fill);
      };
      fill();
    });
    const server = await listen(app, 0, '127.0.0.1');
    const { port } = server.address() as AddressInfo;
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => undefined);
    client.write('GET /export.csv HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    client.pause();
    await reached(() => arrived);

    expect(await closeGracefully(server, 200, logger)).toBe(false);
    lines.push('closeGracefully resolved');
    await new Promise((resolve) => setTimeout(resolve, 500));
    client.destroy();
    expect(lines).toEqual(['/export.csv', 'closeGracefully resolved']);
  });

  // Production runs at LOG_LEVEL=warn, where request lines (info) are not written: the requests a
  // shutdown cut left no line at all, and an operator could not tell which they were.
  it("at LOG_LEVEL=warn logs each request it cuts, once, at warn, with the request line's fields", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const app = express();
    app.use(requestContext(logger));
    app.get('/export.csv', (_req, res) => {
      res.type('text/csv').write('job_id,cost\n');
    });
    app.get('/slow/:id', () => undefined);
    app.get('/quick', (_req, res) => {
      res.json({ finished: true });
    });
    app.use(errorHandler(logger));
    const server = await listen(app, 0, '127.0.0.1');
    const { port } = server.address() as AddressInfo;
    expect((await fetch(`http://127.0.0.1:${port}/quick`)).status).toBe(200);
    const download = fetch(`http://127.0.0.1:${port}/export.csv`).then((response) =>
      response.text().catch((error: Error) => error),
    );
    const page = fetch(`http://127.0.0.1:${port}/slow/7`, { headers: { 'X-Request-Id': 'cut-page-1' } });
    await new Promise((resolve) => setTimeout(resolve, 200));

    expect(await closeGracefully(server, 200, logger)).toBe(false);
    expect((await page).status).toBe(503);
    await download;
    await new Promise((resolve) => setImmediate(resolve));
    const logged = Object.fromEntries(lines.map((line) => [line.route, line]));
    expect(lines).toHaveLength(2);
    expect(logged['/slow/:id']).toEqual({
      level: 40,
      time: expect.any(Number),
      pid: expect.any(Number),
      hostname: expect.any(String),
      msg: 'request',
      reqId: 'cut-page-1',
      method: 'GET',
      route: '/slow/:id',
      status: 503,
      cutByShutdown: true,
      latencyMs: expect.any(Number),
    });
    expect(logged['/export.csv']).toMatchObject({ level: 40, msg: 'request', status: 200, cutByShutdown: true });
  });

  it('logs a handler that answers after the shutdown answered 503 for it once, as cut, with no error', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    let finishLate: () => void = () => undefined;
    const answeredLate = new Promise<void>((resolve) => {
      finishLate = resolve;
    });
    let handlerDone: () => void = () => undefined;
    const handled = new Promise<void>((resolve) => {
      handlerDone = resolve;
    });
    const app = express();
    app.use(requestContext(logger));
    // Its database answers just after the shutdown's time is up, before the pool is closed.
    let arrived = 0;
    app.get('/slow', async (_req, res) => {
      arrived += 1;
      try {
        await answeredLate;
        res.json({ finished: true });
      } finally {
        handlerDone();
      }
    });
    app.use(errorHandler(logger));
    const server = await listen(app, 0, '127.0.0.1');
    const { port } = server.address() as AddressInfo;
    const page = fetch(`http://127.0.0.1:${port}/slow`);
    await reached(() => arrived);

    expect(await closeGracefully(server, 200)).toBe(false);
    expect((await page).status).toBe(503);
    await expect.poll(() => lines.length).toBe(1);
    finishLate();
    await handled;
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines).toEqual([
      expect.objectContaining({ msg: 'request', route: '/slow', status: 503, cutByShutdown: true }),
    ]);
  });
});

describe('the server process on SIGTERM', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db?.drop());

  // A request whose body is still arriving is in flight however fast the machine is, so the
  // test does not depend on timing: the process must wait for it, answer it, then exit 0.
  it(
    'answers the request in flight before it exits, and exits 0',
    async () => {
      const port = await findFreePort();
      const server = await spawnServer({
        DATABASE_URL: db.url,
        PORT: String(port),
        WEB_CONCURRENCY: '1',
        DEMO_SEED: '0',
        LOG_LEVEL: 'warn',
      });
      const socket = net.connect(port, '127.0.0.1');
      await new Promise((resolve) => socket.once('connect', resolve));
      let answer = '';
      socket.on('data', (chunk) => {
        answer += chunk;
      });
      const body = 'username=nobody&password=x&csrf_token=none';
      socket.write(
        `POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n` +
          `Content-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`,
      );
      // The server's "100 Continue" says it has taken the request. A fixed 200 ms was not always
      // enough on a loaded machine: a connection with no request read yet is idle, and closed.
      await expect.poll(() => answer, { timeout: 30_000 }).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\n/);
      socket.write(body.slice(0, 10));

      server.process.kill('SIGTERM');
      const hasExitedEarly = await Promise.race([
        server.exited.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 500)),
      ]);
      expect(hasExitedEarly, `the process left a request unanswered:\n${server.output()}`).toBe(false);

      socket.end(body.slice(10));
      expect(await server.exited).toBe(0);
      expect(answer).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 403 /);
    },
    SPAWNED_TEST_TIMEOUT_MS,
  );

  // A slow upload (POST /login sent a byte at a time) still arriving when SHUTDOWN_TIMEOUT_MS runs
  // out: there is no request yet to answer, so its connection is closed with nothing on it, and the
  // process goes on to exit 0 as after any timed-out close. `Expect: 100-continue` makes the
  // server say when it has taken the request (its "100 Continue"), so the signal comes only then.
  // At LOG_LEVEL=warn, production's, the cut request's line is written too (by the shutdown's cut).
  it.each(['info', 'warn'] as const)(
    'at LOG_LEVEL=%s cuts a request whose body is still arriving when SHUTDOWN_TIMEOUT_MS runs out, closing its connection, logs it, and exits 0',
    async (logLevel) => {
      const port = await findFreePort();
      const server = await spawnServer({
        DATABASE_URL: db.url,
        PORT: String(port),
        WEB_CONCURRENCY: '1',
        DEMO_SEED: '0',
        INGEST_ENABLED: '0',
        LOG_LEVEL: logLevel,
        SHUTDOWN_TIMEOUT_MS: '1000',
      });
      const socket = net.connect(port, '127.0.0.1');
      let isTrickling = true;
      try {
        await new Promise((resolve) => socket.once('connect', resolve));
        let received = '';
        socket.setEncoding('latin1');
        socket.on('data', (chunk: string) => {
          received += chunk;
        });
        socket.on('error', () => {});
        const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
        closed.then(() => {
          isTrickling = false;
        });
        const body = `username=alice&password=${'x'.repeat(5_000)}&csrf_token=none`;
        socket.write(
          'POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n' +
            `Content-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`,
        );
        await expect.poll(() => received, { timeout: 30_000 }).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\n/);
        // A byte every 50 ms: the whole body would take minutes, far past the timeout.
        void (async () => {
          for (let offset = 0; isTrickling && offset < body.length; offset++) {
            socket.write(body.slice(offset, offset + 1));
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        })();

        server.process.kill('SIGTERM');
        await closed;
        expect(await server.exited, server.output()).toBe(0);

        // Nothing after the "100 Continue": no answer to a request not yet whole.
        expect(received).toBe('HTTP/1.1 100 Continue\r\n\r\n');
        const lines = server
          .stdout()
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as { level: number; msg: string });
        expect(lines.map((line) => line.msg)).toContain('shutdown timed out; open connections were cut');
        expect(
          lines.filter((line) => line.level >= 50),
          server.output(),
        ).toEqual([]);
        // Logged as the shutdown's cut (nothing was sent: 503, as for any cut request that had no
        // answer yet), not as the client's bad request (400) the body parser made of the cut.
        expect(
          lines.filter((line) => line.msg === 'request'),
          server.output(),
        ).toEqual([
          expect.objectContaining({
            level: 40,
            method: 'POST',
            route: 'before_route',
            status: 503,
            cutByShutdown: true,
          }),
        ]);
        if (logLevel === 'info') expect(lines.at(-1)).toMatchObject({ msg: 'stopped', signal: 'SIGTERM' });
      } finally {
        isTrickling = false;
        socket.destroy();
        server.process.kill('SIGKILL');
      }
    },
    SPAWNED_TEST_TIMEOUT_MS,
  );
});

const NO_ANSWER_MS = 20_000;

/** One GET on a connection of its own (as a load balancer's new connection): status, head and body, or the error. */
function getOnNewConnection(
  port: number,
  path: string,
): Promise<{ status: number; head: string; body: string } | Error> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    socket.once('error', (error) => resolve(error));
    // A connection nobody answers is a finding, not a hang: the test fails saying which request it was.
    socket.setTimeout(NO_ANSWER_MS, () => {
      resolve(new Error(`no answer to GET ${path} within ${NO_ANSWER_MS} ms`));
      socket.destroy();
    });
    socket.once('close', () => {
      const end = received.indexOf('\r\n\r\n');
      const head = received.slice(0, end);
      const body = received.slice(end + 4);
      resolve(head === '' ? new Error('closed without an answer') : { status: Number(head.slice(9, 12)), head, body });
    });
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  });
}

const statusOf = (answer: { status: number } | Error) => (answer instanceof Error ? answer.message : answer.status);

/** hpc_ready as a scrape of /metrics reads it (summed over the workers by the primary with several). */
async function scrapeReady(port: number): Promise<number | string> {
  const answer = await getOnNewConnection(port, '/metrics');
  if (answer instanceof Error) return answer.message;
  const line = answer.body.split('\n').find((candidate) => candidate.startsWith('hpc_ready '));
  return line === undefined ? `no hpc_ready in:\n${answer.body}` : Number(line.slice('hpc_ready '.length));
}

describe('the server process on SIGTERM with SHUTDOWN_DRAIN_DELAY_MS', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db?.drop());

  // Behind a Kubernetes Service or a load balancer the endpoint is removed some seconds after
  // SIGTERM: requests sent meanwhile were refused, because the process stopped listening at once.
  it.each([1, 2])(
    'with %i worker(s): /readyz says 503 at once, new connections are still served, and a second signal ends the delay',
    async (workers) => {
      const port = await findFreePort();
      const server = await spawnServer({
        DATABASE_URL: db.url,
        PORT: String(port),
        WEB_CONCURRENCY: String(workers),
        DEMO_SEED: '0',
        INGEST_ENABLED: '0',
        LOG_LEVEL: 'info',
        // Far longer than the test: only the second signal can end it in time.
        SHUTDOWN_DRAIN_DELAY_MS: '600000',
      });
      try {
        expect(statusOf(await getOnNewConnection(port, '/readyz'))).toBe(200);
        expect(await scrapeReady(port)).toBe(1);

        server.process.kill('SIGTERM');
        await expect.poll(async () => statusOf(await getOnNewConnection(port, '/readyz'))).toBe(503);
        for (let index = 0; index < 2 * workers; index++) {
          const ready = await getOnNewConnection(port, '/readyz');
          expect(statusOf(ready), server.output()).toBe(503);
          expect((ready as { head: string }).head).toMatch(/^Connection: close/im);
          // Dashboards and AppNotReady read what /readyz says: the instance is leaving rotation.
          // (hpc_ready stayed 1 through the drain: the scrape asked only the database.)
          expect(await scrapeReady(port), server.output()).toBe(0);
          // Everything else is served as before, on new connections too.
          expect(statusOf(await getOnNewConnection(port, '/healthz'))).toBe(200);
          expect(statusOf(await getOnNewConnection(port, '/login'))).toBe(200);
        }

        // A second signal is a person's or a supervisor's, not the first one delivered again.
        await new Promise((resolve) => setTimeout(resolve, REPEATED_SIGNAL_MS));
        server.process.kill('SIGTERM');
        expect(await server.exited).toBe(0);
        expect(server.output()).toContain('"msg":"second signal: ending the drain delay now"');
      } finally {
        server.process.kill('SIGKILL');
      }
    },
    SPAWNED_TEST_TIMEOUT_MS,
  );

  // A terminal's Ctrl-C reaches the primary and every worker at once. The workers took it as their
  // first signal and the primary's SIGTERM that follows as their second, so `npm start` with
  // several workers skipped the drain delay on the first Ctrl-C, where one worker waited it out.
  // One retry: in 2 of 3 full-suite runs this session (never in 9 runs of this file alone, nor with
  // both cores busy) it hung until its timeout; a connection without an answer or a process that does
  // not exit now fails it saying which, with the server's log. Not understood yet.
  it('with 2 workers, a Ctrl-C to the process group waits out the delay, and a second one ends it', {
    timeout: SPAWNED_TEST_TIMEOUT_MS,
    retry: 1,
  }, async () => {
    const port = await findFreePort();
    const server = await spawnServer(
      {
        DATABASE_URL: db.url,
        PORT: String(port),
        WEB_CONCURRENCY: '2',
        DEMO_SEED: '0',
        INGEST_ENABLED: '0',
        LOG_LEVEL: 'info',
        SHUTDOWN_DRAIN_DELAY_MS: '600000',
      },
      90_000,
      { hasOwnProcessGroup: true },
    );
    const pid = server.process.pid as number;
    try {
      process.kill(-pid, 'SIGINT');
      await expect.poll(async () => statusOf(await getOnNewConnection(port, '/readyz'))).toBe(503);
      // Both workers still drain: several new connections, spread over them, are all served.
      for (let index = 0; index < 6; index++) {
        expect(statusOf(await getOnNewConnection(port, '/readyz')), server.output()).toBe(503);
        expect(statusOf(await getOnNewConnection(port, '/healthz')), server.output()).toBe(200);
      }
      expect(server.output().match(/.*second signal.*/g) ?? [], server.output()).toEqual([]);

      await new Promise((resolve) => setTimeout(resolve, REPEATED_SIGNAL_MS));
      process.kill(-pid, 'SIGINT');
      const exitCode = await Promise.race([
        server.exited,
        new Promise<string>((resolve) => setTimeout(() => resolve('not exited within 30 s'), 30_000)),
      ]);
      expect(exitCode, server.output()).toBe(0);
      expect(server.output()).toContain('"msg":"second signal: ending the drain delay now"');
    } finally {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  });

  // A Ctrl-C reaches the primary and the workers at once, and the primary passed a SIGTERM on, "within
  // milliseconds" on an idle machine. On a loaded one it came more than REPEATED_SIGNAL_MS later, so
  // each worker took it for a second signal and ended the delay on the first Ctrl-C: what the Ctrl-C
  // test above saw in full-suite runs. The primary now tells them by message, which may as well be read
  // before the worker's own signal. Here one of the two comes late on purpose, after the other.
  it.each(['the workers', 'the primary'])(
    'with 2 workers, a Ctrl-C that reaches %s late is the same Ctrl-C, not a second signal',
    async (late) => {
      const port = await findFreePort();
      const server = await spawnServer({
        DATABASE_URL: db.url,
        PORT: String(port),
        WEB_CONCURRENCY: '2',
        DEMO_SEED: '0',
        INGEST_ENABLED: '0',
        LOG_LEVEL: 'info',
        SHUTDOWN_DRAIN_DELAY_MS: '600000',
      });
      try {
        const workerPids = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(server.process.pid)], {
          encoding: 'utf8',
        })
          .split('\n')
          // src/server.js of the run's build (spawnServer), src/server.ts through tsx.
          .filter((line) => /src\/server\.[jt]s\b/.test(line))
          .map((line) => Number.parseInt(line, 10));
        expect(workerPids).toHaveLength(2);
        const toWorkers = () => {
          for (const pid of workerPids) process.kill(pid, 'SIGINT');
        };
        const toPrimary = () => server.process.kill('SIGINT');
        if (late === 'the primary') toWorkers();
        else toPrimary();
        await expect.poll(() => server.output().match(/"msg":"draining/g)?.length ?? 0, { timeout: 30_000 }).toBe(2);

        await new Promise((resolve) => setTimeout(resolve, 2 * REPEATED_SIGNAL_MS));
        if (late === 'the primary') {
          toPrimary();
          // Each worker's line and then the primary's.
          await expect
            .poll(() => server.output().match(/"msg":"shutting down"/g)?.length ?? 0, { timeout: 30_000 })
            .toBe(3);
        } else {
          toWorkers();
        }
        // Time for the late one to be handled and, before, to end the delay.
        await new Promise((resolve) => setTimeout(resolve, 2 * REPEATED_SIGNAL_MS));
        for (let index = 0; index < 4; index++) {
          expect(statusOf(await getOnNewConnection(port, '/readyz')), server.output()).toBe(503);
        }
        expect(server.output().match(/.*second signal.*/g) ?? [], server.output()).toEqual([]);

        // A second Ctrl-C, later, still ends the delay.
        await new Promise((resolve) => setTimeout(resolve, REPEATED_SIGNAL_MS));
        toPrimary();
        expect(await server.exited, server.output()).toBe(0);
        expect(server.output()).toContain('"msg":"second signal: ending the drain delay now"');
      } finally {
        server.process.kill('SIGKILL');
      }
    },
    SPAWNED_TEST_TIMEOUT_MS,
  );

  it(
    'closes by itself once the delay is over, and exits 0',
    async () => {
      const port = await findFreePort();
      const server = await spawnServer({
        DATABASE_URL: db.url,
        PORT: String(port),
        WEB_CONCURRENCY: '1',
        DEMO_SEED: '0',
        INGEST_ENABLED: '0',
        LOG_LEVEL: 'info',
        SHUTDOWN_DRAIN_DELAY_MS: '500',
      });
      server.process.kill('SIGTERM');
      expect(await server.exited).toBe(0);
      expect(server.output()).toContain('"drainDelayMs":500');
      expect(await getOnNewConnection(port, '/healthz')).toBeInstanceOf(Error);
    },
    SPAWNED_TEST_TIMEOUT_MS,
  );
});
