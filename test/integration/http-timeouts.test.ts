import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { closeGracefully, listen } from '../../src/http/lifecycle.js';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { signInOverHttp } from '../support/sign-in.js';
import { spawnServer } from '../support/spawn-server.js';
import { buildTestApp, buildTestConfig } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Slow partial requests (slowloris) against the server as server.ts starts it, with limits short
// enough for a test. Real sockets; what is checked is what the client gets, never how long it took.
const HEADERS_TIMEOUT_MS = 300;
const REQUEST_TIMEOUT_MS = 800;
// Enough rows (~10 MB of CSV) that the export cannot fit in the sockets' buffers.
const JOBS = 50_000;

let db: TestDatabase;
let server: http.Server;
let port: number;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await db.pool.query(
    `INSERT INTO slurm_jobs (cluster, job_id, job_key, name, "user", account, partition, state, is_terminal,
       start_at, end_at, elapsed_sec, alloc_cpus, alloc_mem_mb, alloc_gpus, req_gpus, cpu_time_sec, source)
     SELECT 'test', 'a-' || n, 'a-' || n, 'job-' || n, 'alice', 'physics', 'compute', 'COMPLETED', true,
       e - interval '1 hour', e, 3600, 2, 4096, 0, 0, 7200, 'test'
     FROM generate_series(1, $1::int) AS n,
       LATERAL (SELECT timestamptz '2025-01-02 00:00Z' + n * interval '5 minutes') AS t(e)`,
    [JOBS],
  );
  const env = {
    HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
    HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
  };
  const config = buildTestConfig(db.url, env);
  server = await listen(buildTestApp(db, { env }), 0, '127.0.0.1', config.http);
  port = (server.address() as AddressInfo).port;
}, 60_000);
afterAll(async () => {
  if (server) await closeGracefully(server, 1_000);
  await db?.drop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A raw connection: everything the server sent, and a promise that resolves when it closes. */
function connect(to = port) {
  const socket = net.connect(to, '127.0.0.1');
  let received = '';
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
  });
  // Writing to a connection the server has just closed may fail: what it sent first is kept.
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, closed, received: () => received };
}

describe('a client that sends its request slowly', () => {
  it('is closed when its headers trickle in, one line at a time, past HTTP_HEADERS_TIMEOUT_MS', async () => {
    const client = connect();
    client.socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    let line = 0;
    const trickle = setInterval(() => {
      if (!client.socket.destroyed) client.socket.write(`X-Slow-${line++}: still coming\r\n`);
    }, 50);
    try {
      await client.closed;
    } finally {
      clearInterval(trickle);
    }
    // The server answers 408 as it closes; a write crossing the close may reset the connection
    // before the client reads it, so "closed with nothing" is the other possible outcome.
    expect(['', 'HTTP/1.1 408']).toContain(client.received().slice(0, 12));
    expect(line).toBeGreaterThan(0);
  });

  it('is answered 408 and closed when it connects and sends nothing', async () => {
    const client = connect();
    await client.closed;
    expect(client.received()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
  });

  it('is answered 408 and closed when POST /login declares a body of 100,000 bytes and stalls', async () => {
    const client = connect();
    client.socket.write(
      'POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n' +
        'Content-Length: 100000\r\n\r\nusername=alice&password=',
    );
    await client.closed;
    expect(client.received()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
  });
});

describe('npm start', () => {
  it('applies HTTP_HEADERS_TIMEOUT_MS and HTTP_REQUEST_TIMEOUT_MS from the environment', async () => {
    const serverPort = await findFreePort();
    const started = await spawnServer({
      DATABASE_URL: db.url,
      PORT: String(serverPort),
      DEMO_SEED: '0',
      INGEST_ENABLED: '0',
      LOG_LEVEL: 'warn',
      HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
      HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    });
    try {
      const client = connect(serverPort);
      client.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      await client.closed;
      expect(client.received()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    } finally {
      expect(await started.stop()).toBe(0);
    }
  }, 120_000);
});

describe('requests that are not slow to send', () => {
  it('keep their keep-alive connection: waiting for the next request is not a slow request', async () => {
    const client = connect();
    client.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await sleep(3 * REQUEST_TIMEOUT_MS);
    client.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    await client.closed;
    expect(client.received().match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 200']);
  });

  it('get a CSV export to the end when the client reads it for longer than HTTP_REQUEST_TIMEOUT_MS', async () => {
    const cookie = await signInOverHttp(`http://127.0.0.1:${port}`, 'alice');
    const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http
        .get(
          {
            host: '127.0.0.1',
            port,
            path: '/me.csv?start=2025-01-01&end=2025-12-31',
            headers: { cookie },
            agent: false,
          },
          resolve,
        )
        .on('error', reject);
    });
    expect(response.statusCode).toBe(200);
    response.pause();
    // The client reads nothing for several request limits, while the export waits on it.
    await sleep(3 * REQUEST_TIMEOUT_MS);
    expect(db.pool.totalCount - db.pool.idleCount, 'the export still holds its connection').toBeGreaterThanOrEqual(1);
    // Then it reads slowly: a pause after every chunk.
    let text = '';
    for await (const chunk of response) {
      text += chunk;
      response.pause();
      await sleep(1);
    }
    expect(response.complete).toBe(true);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^job_id,/);
    expect(lines).toHaveLength(1 + JOBS);
  }, 60_000);
});

/**
 * Requests Node refuses before the app sees them were answered with a status line and nothing else:
 * a script whose query string made the headers pass Node's 16 KB was told `431` with an empty body,
 * and a malformed request `400` with an empty body, where every other refusal is `{error, code}`.
 */
/**
 * The headers the app's own pages carry (helmet's, app.ts), on a page written on the socket past
 * them: without them it could be framed or sniffed as another type. Its policy allows its one
 * <style> element, by the hash of its text, and nothing else.
 */
function expectSocketPageHeaders(received: string) {
  const head = received.slice(0, received.indexOf('\r\n\r\n'));
  const page = received.slice(received.indexOf('\r\n\r\n') + 4);
  const styles = [...page.matchAll(/<style>([^<]*)<\/style>/g)].map((match) => match[1] as string);
  expect(styles).toHaveLength(1);
  const hash = createHash('sha256')
    .update(Buffer.from(styles[0] as string, 'latin1'))
    .digest('base64');
  expect(head).toContain(
    `\r\nContent-Security-Policy: default-src 'none'; style-src 'sha256-${hash}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n`,
  );
  expect(head).toMatch(/\r\nX-Content-Type-Options: nosniff(\r\n|$)/);
  expect(head).toMatch(/\r\nX-Frame-Options: DENY(\r\n|$)/);
  expect(head).toMatch(/\r\nCache-Control: no-store(\r\n|$)/);
  expectPolicyHeadersOfEveryAnswer(head);
}

/**
 * The two headers app.ts sets on every answer of its own beside helmet's CSP and frame options:
 * "every response" (docs/security.md, "Roles") left out these, written past Express.
 */
function expectPolicyHeadersOfEveryAnswer(head: string) {
  expect(head).toMatch(
    /\r\nPermissions-Policy: accelerometer=\(\), camera=\(\), display-capture=\(\), geolocation=\(\), gyroscope=\(\), magnetometer=\(\), microphone=\(\), midi=\(\), payment=\(\), usb=\(\)(\r\n|$)/,
  );
  expect(head).toMatch(/\r\nReferrer-Policy: same-origin(\r\n|$)/);
}

describe('a request Node refuses before the app sees it', () => {
  function bodyOf(received: string): unknown {
    return JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4));
  }

  it('is answered 431 with {error, code} when its headers are too large (a long query string)', async () => {
    const client = connect();
    client.socket.write(`GET /me?q=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    await client.closed;
    expect(client.received()).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    expect(client.received()).toMatch(/\r\nContent-Type: application\/json; charset=utf-8\r\n/);
    expect(bodyOf(client.received())).toEqual({
      error:
        "The request's headers are too large: its address with the query string, and its cookies, may take at most 16 KB together.",
      code: 431,
    });
  });

  // A browser opening an address whose query string (or whose cookies) made the headers too large
  // was shown the JSON meant for scripts: it gets a page of its own, as for the app's other errors.
  it('is answered 431 with an HTML page when a browser (Accept: text/html) sent it', async () => {
    const client = connect();
    client.socket.write(
      `GET /me?q=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
        'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\r\n',
    );
    await client.closed;
    const received = client.received();
    expect(received).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    expect(received).toMatch(/\r\nContent-Type: text\/html; charset=utf-8\r\n/);
    const page = received.slice(received.indexOf('\r\n\r\n') + 4);
    expect(page).toMatch(/^<!doctype html>/);
    expect(page).toContain('<h1>Request Header Fields Too Large (431)</h1>');
    expect(page).toContain(
      'The request&#39;s headers are too large: its address with the query string, and its cookies, may take at most 16 KB together.',
    );
    expect(page).toContain('<a href="/">Back to the start page</a>');
    expect(Number(/\r\nContent-Length: (\d+)\r\n/.exec(received)?.[1])).toBe(Buffer.byteLength(page, 'latin1'));
    // The headers the app's own pages carry (helmet's, app.ts): the page is written on the socket,
    // past them, and without them it could be framed or sniffed as another type.
    expectSocketPageHeaders(received);
  });

  // Cookies that made the request too large: the page's stylesheet link sent the same cookies and was
  // refused 431 in turn, so the page showed unstyled. Its style is now in the page, allowed by its hash.
  it('is answered 431 with a page styled from within when the cookies made the request too large', async () => {
    const client = connect();
    client.socket.write(
      'GET /me HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/html,*/*;q=0.8\r\n' +
        `Cookie: hb.sid=abc; tracker=${'x'.repeat(20_000)}\r\n\r\n`,
    );
    await client.closed;
    const received = client.received();
    expect(received).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    const page = received.slice(received.indexOf('\r\n\r\n') + 4);
    expect(page).toContain('<h1>Request Header Fields Too Large (431)</h1>');
    // Nothing the page needs comes from the server: every request there would carry the cookies.
    expect(page).not.toMatch(/<link\b/);
    expect(page).not.toMatch(/\b(href|src)="\/(static|public)\//);
    expect(page).toContain('<header class="topbar"><a class="brand" href="/">HPC Billing</a></header>');
    expect(page).toContain('<section class="card narrow">');
    expectSocketPageHeaders(received);
  });

  it('is answered 431 with {error, code} when the client asks for JSON', async () => {
    const client = connect();
    client.socket.write(
      `GET /me?q=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n`,
    );
    await client.closed;
    expect(client.received()).toMatch(/\r\nContent-Type: application\/json; charset=utf-8\r\n/);
    expect(client.received()).toMatch(/\r\nX-Content-Type-Options: nosniff\r\n/);
    expectPolicyHeadersOfEveryAnswer(client.received().slice(0, client.received().indexOf('\r\n\r\n')));
    expect(bodyOf(client.received())).toMatchObject({ code: 431 });
  });

  it('is answered 400 with {error, code} when it is not HTTP', async () => {
    const client = connect();
    client.socket.write('GET /me HTTP/1.1\r\nHost: 127.0.0.1\r\nBroken header line\r\n\r\n');
    await client.closed;
    expect(client.received()).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(bodyOf(client.received())).toEqual({
      error: 'The request could not be read: it is not a well-formed HTTP request.',
      code: 400,
    });
  });
});
