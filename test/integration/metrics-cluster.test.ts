import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { PROJECT_ROOT } from '../../src/shared/paths.js';
import { builtFile } from '../support/built-app.js';
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
  server = spawn(process.execPath, [builtFile('src/server.ts')], {
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
      METRICS_PROCESS: '1',
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

    // The worker that runs the periodic tasks verifies the chain at start-up; the other has no
    // verdict and exports no audit_chain_ok: the primary's minimum is over the workers that have one.
    const deadline = Date.now() + 30_000;
    while (!output.includes('the audit log hash chain is intact') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(output).toContain('the audit log hash chain is intact');
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

/** The `worker` labels of a per-process series, with their values. */
function perWorker(text: string, name: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = new RegExp(`^${name}\\{worker="(\\d+)"\\} (\\S+)$`).exec(line);
    if (match) samples.set(match[1] as string, Number(match[2]));
  }
  return samples;
}

/** The cluster ids of the workers alive, as their log lines name them. */
function workerIdsOf(pids: number[]): string[] {
  return pids.map((pid) => {
    const line = output
      .split('\n')
      .find((candidate) => candidate.includes(`"pid":${pid},`) && candidate.includes('"worker":'));
    return String((JSON.parse(line as string) as { worker: number }).worker);
  });
}

describe('METRICS_PROCESS with WEB_CONCURRENCY=2', () => {
  it('gives each worker its own process series, labelled with its number, instead of their sum', async () => {
    const text = (await get('/metrics')).body;
    // A sum of the workers' fd limits is no process's limit: open/max then hid the one worker near it.
    const maxFds = perWorker(text, 'process_max_fds');
    expect([...maxFds.keys()].sort()).toEqual(workerIdsOf([...workerPids()]).sort());
    expect(new Set(maxFds.values()).size).toBe(1);
    expect(text).not.toMatch(/^process_max_fds /m);
    expect(perWorker(text, 'process_resident_memory_bytes').size).toBe(2);
  });
});

/** The pids of the workers serving, from their request log lines. */
function workerPids(): Set<number> {
  return new Set(
    output
      .split('\n')
      .filter((line) => line.includes('"route":'))
      .map((line) => (JSON.parse(line) as { pid: number }).pid),
  );
}

describe('GET /metrics after a worker dies and is replaced', () => {
  it('keeps what the dead worker counted: a counter never goes down, so Prometheus sees no reset (no phantom spike)', async () => {
    const series = 'http_requests_total{method="GET",endpoint="unmatched",status="404"}';
    const before = output.length;
    for (let index = 0; index < REQUESTS; index++) expect((await get('/no-such-page')).status).toBe(404);
    const servedByNow = () => [
      ...new Set(
        output
          .slice(before)
          .split('\n')
          .filter((line) => line.includes('"route":"unmatched"'))
          .map((line) => (JSON.parse(line) as { pid: number }).pid),
      ),
    ];
    // The workers' request logs reach the primary's stdout through a pipe, after their answers: under the
    // full npm test's load none had arrived when read at once (0 workers, on ea53c0eb).
    await expect.poll(() => servedByNow().length, { timeout: 10_000 }).toBe(2);
    const servedBy = servedByNow();
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
    // The dead worker's process series end with it (a series that ends is no reset); its
    // replacement has its own.
    const deadWorker = workerIdsOf([servedBy[0] as number])[0] as string;
    // The replacement joins the scrapes once it has started.
    await expect
      .poll(async () => perWorker((await get('/metrics')).body, 'process_max_fds').size, { timeout: 20_000 })
      .toBe(2);
    const after = (await get('/metrics')).body;
    for (const name of ['process_cpu_seconds_total', 'process_max_fds']) {
      const workers = perWorker(after, name);
      expect(workers.has(deadWorker), `${name} of worker ${deadWorker}:\n${after}`).toBe(false);
      expect(workers.size).toBe(2);
    }
  }, 60_000);
});
