import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { isDatabaseUnavailable } from '../../src/shared/errors.js';
import { createLogger } from '../../src/shared/logger.js';
import { spawnServer } from '../support/spawn-server.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { buildTestConfig } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A database host that accepts a connection and never completes the handshake (a frozen VM, a
// firewall that drops packets once the SYN got through). The pool's connect timeout must fail the
// request, with the database-unavailable 503, after about DB_CONNECT_TIMEOUT_MS.

const CONNECT_TIMEOUT_MS = 300;
// The spawned server opens real connections at start-up and for its first request before the
// proxy freezes; on a loaded machine a backend can take more than 300 ms to start, which failed
// the start rather than what the test is about. 1 s still ends the frozen wait well before 5 s.
const SERVER_CONNECT_TIMEOUT_MS = 1_000;
// Far above the configured timeout, so a slow machine does not fail the test; below the 5 s the
// pool used to wait whatever the setting, so the setting must be what ended the wait.
const UPPER_BOUND_MS = 4_000;

let db: TestDatabase;
let proxy: TcpProxy;
let proxyUrl: string;
beforeAll(async () => {
  db = await createTestDatabase();
  const target = new URL(db.url);
  proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
  const viaProxy = new URL(db.url);
  viaProxy.hostname = '127.0.0.1';
  viaProxy.port = String(proxy.port);
  proxyUrl = viaProxy.toString();
});
afterAll(async () => {
  await proxy?.close();
  await db?.drop();
});

/** A TCP server that accepts every connection and never sends a byte. */
async function startBlackHole(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `postgresql://nobody:secret@127.0.0.1:${port}/nothing`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('DB_CONNECT_TIMEOUT_MS', () => {
  it('is the pool connect timeout, and a connect that never completes fails as database unavailable', async () => {
    const config = buildTestConfig(db.url, { DB_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS) });
    const blackHole = await startBlackHole();
    const database = openDatabase(blackHole.url, {
      poolMax: 1,
      queryTimeoutMs: 60_000,
      connectTimeoutMs: config.dbConnectTimeoutMs,
      logger: createLogger('silent'),
    });
    try {
      expect(database.pool.options.connectionTimeoutMillis).toBe(CONNECT_TIMEOUT_MS);
      const started = Date.now();
      const error = await database.pool.query('SELECT 1').then(
        () => undefined,
        (failure: unknown) => failure,
      );
      expect(Date.now() - started).toBeLessThan(UPPER_BOUND_MS);
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toBe('Connection terminated due to connection timeout');
      expect(isDatabaseUnavailable(error)).toBe(true);
    } finally {
      await database.close();
      await blackHole.close();
    }
  });

  it('the server answers 503 once opening a connection takes longer than the setting', async () => {
    const port = await findFreePort();
    const server = await spawnServer({
      DATABASE_URL: proxyUrl,
      PORT: String(port),
      WEB_CONCURRENCY: '1',
      DEMO_SEED: '0',
      INGEST_ENABLED: '0',
      LOG_LEVEL: 'warn',
      DB_CONNECT_TIMEOUT_MS: String(SERVER_CONNECT_TIMEOUT_MS),
      DB_QUERY_TIMEOUT_MS: '60000',
      // Every /formula reads the database, none is answered from the worker's cache.
      PRICING_CACHE_CHECK_MS: '0',
    });
    try {
      // Served through the proxy (404: no tier yet). A first connection slower than the setting
      // on a loaded machine is a 503 that the next request, on a new connection, need not repeat.
      let firstStatus = 0;
      for (let attempt = 0; attempt < 20 && firstStatus !== 404; attempt++) {
        if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 250));
        firstStatus = (await fetch(`http://127.0.0.1:${port}/formula`)).status;
      }
      expect(firstStatus, server.output()).toBe(404);
      // Drop the connections the worker opened so far: the next request must open a new one,
      // and the frozen proxy accepts it and never forwards the handshake.
      proxy.cut();
      await new Promise((resolve) => setTimeout(resolve, 300));
      proxy.restore();
      proxy.freeze();

      const started = Date.now();
      const response = await fetch(`http://127.0.0.1:${port}/formula`, { headers: { Accept: 'application/json' } });
      expect(Date.now() - started, server.output()).toBeLessThan(UPPER_BOUND_MS);
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe('5');
      // The log line reaches this process on its own pipe, possibly after the response.
      for (let poll = 0; poll < 50 && !server.output().includes('connection timeout'); poll++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(server.output()).toContain('Connection terminated due to connection timeout');
    } finally {
      proxy.thaw();
      expect(await server.stop(), server.output()).toBe(0);
    }
  }, 60_000);
});
