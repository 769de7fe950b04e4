import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { type RunningServer, spawnServer } from '../support/spawn-server.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/*
 * With WEB_CONCURRENCY > 1 the primary asks every worker for its registry, and a worker's
 * registry reads the database at each scrape (hpc_ready, the ingestion and checkout gauges), each
 * read given up after min(READY_TIMEOUT_MS, 5000 ms). The primary gave the workers 5000 ms too: with
 * a silent database and a READY_TIMEOUT_MS of 5 s or more (README allows up to 60 s), every worker
 * answered just after the primary had given up, every scrape was a 500, up read 0 and AppDown paged
 * ("cannot scrape"), while AppNotReady, the page meant for it, never fired (seen with the real
 * Prometheus on 2026-12-07: `worker … did not send its metrics within 5000 ms`).
 */

let db: TestDatabase;
let proxy: TcpProxy;
let server: RunningServer;
let port: number;

function scrape(): Promise<{ status: number; body: string; ms: number }> {
  const startedAt = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ms: Date.now() - startedAt }));
    });
    req.on('error', reject);
  });
}

beforeAll(async () => {
  db = await createTestDatabase();
  const target = new URL(db.url);
  proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
  const viaProxy = new URL(db.url);
  viaProxy.hostname = '127.0.0.1';
  viaProxy.port = String(proxy.port);
  port = await findFreePort();
  server = await spawnServer({
    APP_ENV: 'development',
    DATABASE_URL: viaProxy.toString(),
    HOST: '127.0.0.1',
    PORT: String(port),
    WEB_CONCURRENCY: '2',
    DEMO_SEED: '0',
    INGEST_ENABLED: '0',
    LOG_LEVEL: 'info',
    READY_TIMEOUT_MS: '20000',
  });
}, 120_000);

afterAll(async () => {
  proxy?.thaw();
  if (server) await server.stop();
  await proxy?.close();
  await db?.drop();
}, 60_000);

describe('GET /metrics with WEB_CONCURRENCY=2 while the database does not answer', () => {
  it('answers within Prometheus scrape_timeout (10 s) with hpc_ready 0, not a 500 (AppNotReady, not AppDown)', async () => {
    const before = await scrape();
    expect(before.status).toBe(200);
    expect(before.body).toMatch(/^hpc_ready 1$/m);
    proxy.freeze();
    const during = await scrape();
    expect(during.status, `${during.body}\n${server.output().slice(-2000)}`).toBe(200);
    expect(during.body).toMatch(/^hpc_ready 0$/m);
    expect(during.ms).toBeLessThan(10_000);
    expect(server.output()).not.toContain('could not collect metrics from every worker');
  }, 60_000);
});
