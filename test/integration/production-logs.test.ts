import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { builtFile } from '../support/built-app.js';
import { PRODUCTION_ENV, PROJECT_ROOT, spawnServer } from '../support/spawn-server.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

/** Every line of `text` as the JSON object it must be; a line that is not fails with itself quoted. */
function jsonLinesOf(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new Error(`not a JSON line on stdout: ${line}`);
      }
    });
}

/** Runs the server to its exit; stdout and stderr apart. */
function runServerToExit(
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [builtFile('src/server.ts')], {
    cwd: PROJECT_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

describe('a production server writes only JSON lines to stdout', () => {
  it('announces that it listens as one log line with the facts as fields', async () => {
    const port = await findFreePort();
    const server = await spawnServer({ ...PRODUCTION_ENV, DATABASE_URL: db.url, PORT: String(port) });
    try {
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    } finally {
      expect(await server.stop()).toBe(0);
    }
    const lines = jsonLinesOf(server.stdout());
    expect(lines.find((line) => String(line.msg).includes('is listening'))).toMatchObject({
      level: 30,
      msg: `HPC Billing is listening on http://127.0.0.1:${port}`,
      host: '127.0.0.1',
      port,
      workers: 1,
      database: 'configured',
      databaseAt: `${db.name} on ${new URL(db.url).hostname}:${new URL(db.url).port || '5432'}`,
    });
    const messages = lines.map((line) => line.msg);
    expect(messages).toContain('shutting down');
    // The last line says the stop finished, so a log that ends earlier tells of a process killed mid-way.
    expect(messages.at(-1)).toBe('stopped');
    expect(lines.at(-1)).toMatchObject({ level: 30, signal: 'SIGTERM', durationMs: expect.any(Number) });
  }, 120_000);

  // PORT=0 lets the system pick a free port: the line said "http://127.0.0.1:0", which is no address
  // anyone can open, in one process and in a cluster (whose workers share the primary's port).
  it.each(['1', '2'])(
    'with PORT=0 and WEB_CONCURRENCY=%s names the port it was given',
    async (workers) => {
      const server = await spawnServer({
        ...PRODUCTION_ENV,
        DATABASE_URL: db.url,
        PORT: '0',
        PUBLIC_BASE_URL: 'https://billing.example.edu',
        WEB_CONCURRENCY: workers,
      });
      let line: Record<string, unknown> | undefined;
      try {
        line = jsonLinesOf(server.stdout()).find((entry) => String(entry.msg).includes('is listening'));
        const port = Number(line?.port);
        expect(port).toBeGreaterThan(0);
        expect(line).toMatchObject({
          msg: `HPC Billing is listening on http://127.0.0.1:${port}`,
          workers: Number(workers),
          publicBaseUrl: 'https://billing.example.edu',
        });
        expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
      } finally {
        expect(await server.stop()).toBe(0);
      }
    },
    120_000,
  );

  it('reports a database it cannot reach as a JSON error line, with its address and not its password', async () => {
    const port = await findFreePort();
    const result = await runServerToExit({
      ...PRODUCTION_ENV,
      DATABASE_URL: `postgresql://billing:not-this-password@127.0.0.1:${port}/billing`,
      PORT: String(await findFreePort()),
      // At once, as an operator who wants no wait sets it (start-waits-for-database.test.ts waits).
      DB_START_WAIT_SEC: '0',
    });
    expect(result.code, result.stdout + result.stderr).toBe(1);
    const lines = jsonLinesOf(result.stdout);
    // Every line is JSON; the start-up warnings may be written before or after the fatal one.
    expect(lines.find((line) => line.level === 60)).toMatchObject({
      level: 60,
      msg: `HPC Billing failed to start: the database cannot be reached (DATABASE_URL): connect ECONNREFUSED 127.0.0.1:${port}`,
    });
    expect(result.stdout + result.stderr).not.toContain('not-this-password');
  }, 120_000);

  // The port check comes before the database, but a HOST that resolves to nothing failed with
  // getaddrinfo's ENOTFOUND, which the start took for the database's: the fatal line named
  // DATABASE_URL, a setting that was right, and not HOST.
  it('reports a HOST that does not resolve as HOST, not as the database', async () => {
    const result = await runServerToExit({
      ...PRODUCTION_ENV,
      HOST: 'no-such-host.invalid',
      DATABASE_URL: db.url,
      PORT: String(await findFreePort()),
    });
    expect(result.code, result.stdout + result.stderr).toBe(1);
    const fatal = jsonLinesOf(result.stdout).find((line) => line.level === 60);
    expect(fatal).toMatchObject({
      level: 60,
      msg: 'HPC Billing failed to start: HOST no-such-host.invalid does not resolve to an address (ENOTFOUND): set HOST to an address of this machine, a name that resolves to one, or 0.0.0.0 for every interface',
    });
    expect(String(fatal?.msg)).not.toContain('DATABASE_URL');
  }, 120_000);
});
