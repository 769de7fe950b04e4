import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { spawnServer } from '../support/spawn-server.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// The primary of a cluster killed (kill -9, the OOM killer, which picks the largest process): each
// worker's 'disconnect' handler was to drain its requests in flight and record its runs, as on SIGTERM.
// It never ran: Node's cluster ends a worker whose primary is gone at once (process.exit(0) before any
// listener of the app's), so a resilience walk saw its in-flight requests cut with no answer and a
// Run now ingestion left `running`, with nothing in the log.

const SPAWNED_TEST_TIMEOUT_MS = 150_000;

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

describe('a worker whose primary was killed', () => {
  it(
    'answers the request in flight, then exits (each of two workers)',
    async () => {
      const port = await findFreePort();
      const server = await spawnServer({
        DATABASE_URL: db.url,
        PORT: String(port),
        WEB_CONCURRENCY: '2',
        DEMO_SEED: '0',
        INGEST_ENABLED: '0',
        LOG_LEVEL: 'warn',
      });
      const primaryPid = server.process.pid as number;
      const workerPids = execFileSync('pgrep', ['-P', String(primaryPid)])
        .toString()
        .trim()
        .split('\n')
        .map(Number);
      expect(workerPids).toHaveLength(2);
      const socket = net.connect(port, '127.0.0.1');
      try {
        await new Promise((resolve) => socket.once('connect', resolve));
        let answer = '';
        socket.setEncoding('latin1');
        socket.on('data', (chunk: string) => {
          answer += chunk;
        });
        socket.on('error', () => {});
        const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
        // A request whose body is still arriving is in flight however fast the machine is.
        const body = 'username=nobody&password=x&csrf_token=none';
        socket.write(
          'POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n' +
            `Content-Length: ${body.length}\r\nConnection: close\r\nExpect: 100-continue\r\n\r\n`,
        );
        await expect.poll(() => answer, { timeout: 30_000 }).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\n/);
        socket.write(body.slice(0, 10));

        server.process.kill('SIGKILL');
        await server.exited;
        // The worker has seen its primary go before the rest of the body is sent.
        await new Promise((resolve) => setTimeout(resolve, 500));
        socket.end(body.slice(10));
        await closed;
        expect(answer).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 403 /);
        await expect.poll(() => workerPids.filter(isAlive), { timeout: 30_000 }).toEqual([]);
      } finally {
        socket.destroy();
        for (const pid of workerPids.filter(isAlive)) process.kill(pid, 'SIGKILL');
      }
    },
    SPAWNED_TEST_TIMEOUT_MS,
  );
});
