import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { signInOverHttp } from '../support/sign-in.js';
import { type RunningServer, spawnServer } from '../support/spawn-server.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A deploy's SIGTERM must not cut what a client is in the middle of: a CSV download half sent to a
// slow reader, a request whose body is still arriving. Real processes, real sockets, a real
// PostgreSQL; the only times are generous bounds, never what the test asserts.

// Enough rows (several MB of CSV) that the download cannot sit whole in the sockets' buffers when
// the signal comes: the server is still writing it.
const JOBS = 40_000;
const YEAR = 'start=2025-01-01&end=2025-12-31';
// A spawned server may take up to spawnServer's 90 s to start on a loaded machine.
const SPAWNED_TEST_TIMEOUT_MS = 180_000;

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice' });
  await db.pool.query(
    `INSERT INTO slurm_jobs (cluster, job_id, job_key, name, "user", account, partition, state, is_terminal,
       start_at, end_at, elapsed_sec, alloc_cpus, alloc_mem_mb, alloc_gpus, req_gpus, cpu_time_sec, source)
     SELECT 'test', 'alice-' || n, 'alice-' || n, 'job-' || n, 'alice', 'physics', 'compute', 'COMPLETED', true,
       e - interval '1 hour', e, 3600, 2, 4096, 0, 0, 7200, 'test'
     FROM generate_series(1, $1::int) AS n,
       LATERAL (SELECT timestamptz '2025-01-02 00:00Z' + n * interval '5 minutes') AS t(e)`,
    [JOBS],
  );
}, 120_000);
afterAll(() => db?.drop());

async function startServer(port: number, workers = 1): Promise<RunningServer> {
  return spawnServer({
    DATABASE_URL: db.url,
    PORT: String(port),
    WEB_CONCURRENCY: String(workers),
    DEMO_SEED: '0',
    INGEST_ENABLED: '0',
    LOG_LEVEL: 'info',
    // Far longer than anything here takes: what the test looks at is what is cut before it.
    SHUTDOWN_TIMEOUT_MS: '120000',
  });
}

/** Resolves once the server has logged that it is shutting down (it got the signal). */
async function shuttingDown(server: RunningServer): Promise<void> {
  await expect.poll(() => server.output(), { timeout: 30_000 }).toContain('"msg":"shutting down"');
}

describe('SIGTERM with requests in flight', () => {
  // With one worker (npm start) and with several (the compose file's 2).
  it.each([1, 2])(
    'with %i worker(s), lets a large CSV download to a slow reader finish whole, then exits 0',
    async (workers) => {
      const port = await findFreePort();
      const server = await startServer(port, workers);
      try {
        const cookie = await signInOverHttp(`http://127.0.0.1:${port}`, 'alice');
        const chunks: Buffer[] = [];
        let isCut = false;
        const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
          http
            .get(
              `http://127.0.0.1:${port}/me.csv?${YEAR}`,
              { headers: { cookie, accept: 'text/csv' }, agent: false },
              resolve,
            )
            .once('error', reject);
        });
        expect(response.statusCode).toBe(200);
        const ended = new Promise<void>((resolve) => {
          response.on('end', () => resolve());
          response.on('aborted', () => {
            isCut = true;
            resolve();
          });
          response.on('error', () => {
            isCut = true;
            resolve();
          });
        });
        // A slow reader: one chunk, then nothing read until the signal has arrived.
        response.once('data', (chunk: Buffer) => {
          chunks.push(chunk);
          response.pause();
        });
        await expect.poll(() => chunks.length, { timeout: 30_000 }).toBe(1);

        server.process.kill('SIGTERM');
        await shuttingDown(server);
        // Then it reads on, slowly: a chunk, a pause.
        response.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          response.pause();
          setTimeout(() => response.resume(), 5);
        });
        response.resume();
        await ended;

        const body = Buffer.concat(chunks).toString('utf8');
        const lines = body.split('\n').filter((line) => line !== '');
        expect(isCut, `the download was cut after ${lines.length} lines:\n${server.output()}`).toBe(false);
        // The header row and every job.
        expect(lines).toHaveLength(JOBS + 1);
        expect(body.endsWith('\n')).toBe(true);
        expect(await server.exited, server.output()).toBe(0);
      } finally {
        server.process.kill('SIGKILL');
      }
    },
    SPAWNED_TEST_TIMEOUT_MS,
  );

  it(
    'answers a request whose body trickles in over the signal, then exits 0',
    async () => {
      const port = await findFreePort();
      const server = await startServer(port);
      try {
        const socket = net.connect(port, '127.0.0.1');
        await new Promise((resolve) => socket.once('connect', resolve));
        let answer = '';
        socket.setEncoding('latin1');
        socket.on('data', (chunk: string) => {
          answer += chunk;
        });
        const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
        socket.on('error', () => {});
        const body = `username=alice&password=${'x'.repeat(200)}&csrf_token=none`;
        socket.write(
          'POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n' +
            `Content-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`,
        );

        server.process.kill('SIGTERM');
        await shuttingDown(server);
        // The rest arrives a few bytes at a time after the signal.
        for (let offset = 10; offset < body.length; offset += 20) {
          socket.write(body.slice(offset, offset + 20));
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await closed;
        // The app's own refusal (no CSRF token), not a cut connection or a 503.
        expect(answer, server.output()).toMatch(/^HTTP\/1\.1 403 /);
        expect(answer).toMatch(/^Connection: close/im);
        expect(await server.exited, server.output()).toBe(0);
      } finally {
        server.process.kill('SIGKILL');
      }
    },
    SPAWNED_TEST_TIMEOUT_MS,
  );
});
