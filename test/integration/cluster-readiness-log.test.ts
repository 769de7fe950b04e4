import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { type RunningServer, spawnServer } from '../support/spawn-server.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let proxy: TcpProxy;
let server: RunningServer;
let port: number;

/** A GET on a fresh connection: the primary deals connections to workers round-robin. */
function get(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

type LogLine = { msg?: string; pid?: number; worker?: number; level?: number };

function logLines(): LogLine[] {
  return server
    .stdout()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

const readinessLines = () => logLines().filter((line) => /^(not ready|ready again)/.test(String(line.msg)));

/** Scrapes until `done` holds: every scrape asks every worker, each worker's check logs on its own. */
async function scrapeUntil(done: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 50 && !done(); attempt++) {
    await get('/metrics');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
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
    PORT: String(port),
    HOST: '127.0.0.1',
    WEB_CONCURRENCY: '2',
    DEMO_SEED: '0',
    INGEST_ENABLED: '0',
    LOG_LEVEL: 'info',
    READY_TIMEOUT_MS: '500',
  });
}, 90_000);

afterAll(async () => {
  proxy?.restore();
  await server?.stop();
  await proxy?.close();
  await db?.drop();
}, 30_000);

describe('the readiness log of an instance with WEB_CONCURRENCY=2', () => {
  it("names the worker of each line, so one outage seen by both workers reads as that, not as two instances' outages", async () => {
    expect((await get('/metrics')).status).toBe(200);
    proxy.cut();
    try {
      await scrapeUntil(() => readinessLines().filter((line) => line.msg === 'not ready').length >= 2);
    } finally {
      proxy.restore();
    }
    await scrapeUntil(() => readinessLines().filter((line) => line.msg?.startsWith('ready again')).length >= 2);

    const lines = readinessLines();
    const workersOf = (msg: string) =>
      lines
        .filter((line) => line.msg === msg)
        .map((line) => line.worker)
        .sort();
    // Each worker has its own connections and checks them itself: one line each, named.
    expect(workersOf('not ready')).toEqual([1, 2]);
    expect(workersOf('ready again')).toEqual([1, 2]);
    // The primary's lines (the banner's facts, a worker that died) carry no worker.
    const primaryPid = server.process.pid;
    expect(logLines().filter((line) => line.pid === primaryPid && line.worker !== undefined)).toEqual([]);
  });
});
