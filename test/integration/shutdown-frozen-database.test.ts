import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { buildUser } from '../support/factories.js';
import { signInOverHttp } from '../support/sign-in.js';
import { spawnServer } from '../support/spawn-server.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A database that stops answering (a frozen host, a SIGSTOPped server) while a request waits on it:
// SIGTERM took SHUTDOWN_TIMEOUT_MS and then, closing the pool, the whole query timeout (30 s by
// default) for the query in flight and the idle connections' goodbyes, longer than Kubernetes' or
// the compose file's grace period: the process was SIGKILLed mid-shutdown. After SHUTDOWN_TIMEOUT_MS
// the pool gets a few seconds, then its connections are destroyed and the process exits.

const SHUTDOWN_TIMEOUT_MS = 1_000;
/** The query timeout left at its default: what the shutdown must not wait out. */
const QUERY_TIMEOUT_MS = 30_000;

let db: TestDatabase;
let proxy: TcpProxy;
let proxyUrl: string;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  const target = new URL(db.url);
  proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
  const viaProxy = new URL(db.url);
  viaProxy.hostname = '127.0.0.1';
  viaProxy.port = String(proxy.port);
  proxyUrl = viaProxy.toString();
}, 60_000);
afterAll(async () => {
  proxy?.thaw();
  await proxy?.close();
  await db?.drop();
});

describe('SIGTERM while the database is frozen with a request in flight', () => {
  it('exits 0 well before SHUTDOWN_TIMEOUT_MS + the query timeout, saying what it abandoned', async () => {
    const port = await findFreePort();
    const server = await spawnServer({
      DATABASE_URL: proxyUrl,
      PORT: String(port),
      WEB_CONCURRENCY: '1',
      DEMO_SEED: '0',
      INGEST_ENABLED: '0',
      LOG_LEVEL: 'info',
      DB_QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS),
      SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
    });
    try {
      const base = `http://127.0.0.1:${port}`;
      const alice = await signInOverHttp(base, 'alice');
      // Several connections open, so idle ones meet the freeze too.
      await Promise.all(
        [1, 2, 3].map(() => fetch(`${base}/account`, { headers: { cookie: alice } }).then((r) => r.text())),
      );
      proxy.freeze();
      const inFlight = fetch(`${base}/account`, { headers: { cookie: alice, accept: 'application/json' } }).catch(
        (error: unknown) => error,
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      const stoppedAt = performance.now();
      server.process.kill('SIGTERM');
      const code = await server.exited;
      const tookMs = performance.now() - stoppedAt;
      expect(code, server.output()).toBe(0);
      // A generous bound: the point is not waiting out the 30 s query timeout.
      expect(tookMs, server.output()).toBeLessThan(SHUTDOWN_TIMEOUT_MS + 10_000);
      expect(server.output()).toMatch(/database connections? .*destroyed|destroyed .*database connection/i);
      expect(server.output()).toMatch(/stopped/);
      await inFlight;
    } finally {
      proxy.thaw();
      server.process.kill('SIGKILL');
    }
  }, 90_000);
});
