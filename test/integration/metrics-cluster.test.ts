import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { PROJECT_ROOT } from '../../src/shared/paths.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

const REQUESTS = 12;

let db: TestDatabase;
let server: ChildProcess;
let port: number;
let output = '';

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

function sampleOf(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

beforeAll(async () => {
  db = await createTestDatabase();
  port = await findFreePort();
  server = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: PROJECT_ROOT,
    env: {
      ...process.env,
      APP_ENV: 'development',
      DATABASE_URL: db.url,
      PORT: String(port),
      HOST: '127.0.0.1',
      WEB_CONCURRENCY: '2',
      DEMO_SEED: '0',
      LOG_LEVEL: 'info',
      METRICS_ENABLED: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  server.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 60_000);
    const poll = setInterval(() => {
      if (output.includes('is listening on')) {
        clearInterval(poll);
        clearTimeout(timer);
        resolve();
      }
    }, 100);
    server.once('exit', (code) => {
      clearInterval(poll);
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${output}`));
    });
  });
}, 90_000);

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  }
  await db?.drop();
}, 30_000);

describe('GET /metrics with WEB_CONCURRENCY=2', () => {
  it('returns the sum over both workers, whichever worker answers the scrape', async () => {
    for (let index = 0; index < REQUESTS; index++) expect((await get('/healthz')).status).toBe(200);

    // Both workers served some of them (pino writes each worker's pid on its log lines).
    const servedBy = new Set(
      output
        .split('\n')
        .filter((line) => line.includes('"route":"/healthz"'))
        .map((line) => (JSON.parse(line) as { pid: number }).pid),
    );
    expect(servedBy.size).toBe(2);

    for (let scrape = 0; scrape < 4; scrape++) {
      const response = await get('/metrics');
      expect(response.status).toBe(200);
      const text = response.body;
      expect(sampleOf(text, 'http_requests_total{method="GET",endpoint="/healthz",status="200"}')).toBe(REQUESTS);
      expect(sampleOf(text, 'http_request_duration_seconds_count{endpoint="/healthz",method="GET"}')).toBe(REQUESTS);
      // Gauges: pool connections add up (from the second scrape on, each worker holds the
      // idle connection its previous scrape-time probe opened), readiness and the audit flag take the minimum.
      if (scrape > 0) expect(sampleOf(text, 'db_pool_connections')).toBeGreaterThanOrEqual(2);
      expect(sampleOf(text, 'hpc_ready')).toBe(1);
      expect(sampleOf(text, 'audit_chain_ok')).toBe(1);
      // The provider is named once, not once per worker (development's default, dummy).
      expect(sampleOf(text, 'payments_provider_info{provider="dummy"}')).toBe(1);
      // Pre-warmed counters are summed too, and stay at 0.
      expect(sampleOf(text, 'auth_login_failure_total{reason="bad_credentials"}')).toBe(0);
    }
  });
});

describe('GET /metrics after a worker dies and is replaced', () => {
  it('keeps what the dead worker counted: a counter never goes down, so Prometheus sees no reset (no phantom spike)', async () => {
    const series = 'http_requests_total{method="GET",endpoint="unmatched",status="404"}';
    const before = output.length;
    for (let index = 0; index < REQUESTS; index++) expect((await get('/no-such-page')).status).toBe(404);
    const servedBy = [
      ...new Set(
        output
          .slice(before)
          .split('\n')
          .filter((line) => line.includes('"route":"unmatched"'))
          .map((line) => (JSON.parse(line) as { pid: number }).pid),
      ),
    ];
    expect(servedBy.length).toBe(2);
    const scraped = await get('/metrics');
    const counted = sampleOf(scraped.body, series) ?? 0;
    expect(counted).toBeGreaterThanOrEqual(REQUESTS);

    // A worker that dies (out of memory, a crash) is replaced by the primary with a fresh registry.
    process.kill(servedBy[0] as number, 'SIGKILL');
    await expect.poll(() => output.includes('worker died; starting another'), { timeout: 10_000 }).toBe(true);
    await expect
      .poll(
        async () => {
          const response = await get('/healthz');
          return response.status;
        },
        { timeout: 20_000 },
      )
      .toBe(200);

    for (let scrape = 0; scrape < 3; scrape++) {
      const response = await get('/metrics');
      expect(response.status, `${response.body}\n${output.slice(-3000)}`).toBe(200);
      // Summed over the workers alive, the total fell by what the dead worker had counted: Prometheus
      // reads a fall as a counter reset and the survivors' whole count as new requests.
      expect(sampleOf(response.body, series)).toBe(counted);
    }
  }, 60_000);
});
