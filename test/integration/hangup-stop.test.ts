import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { PRODUCTION_ENV, spawnServer } from '../support/spawn-server.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const messagesOf = (stdout: string) =>
  stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg: string; signal?: string });

// SIGHUP, what a closed terminal or SSH session sends to the app started in it (and what
// `docker kill -s HUP` or a reload sends), took Node's default action: the process died on the
// spot, requests in flight cut, with no log line at all (with workers, the primary died and its
// workers after it). It now stops as SIGTERM does: drained, logged, exit 0.
describe('a hangup (SIGHUP)', () => {
  it.each([1, 2])(
    'stops the server gracefully, logged, with %i worker(s)',
    async (workers) => {
      const port = await findFreePort();
      const server = await spawnServer(
        { ...PRODUCTION_ENV, DATABASE_URL: db.url, PORT: String(port), WEB_CONCURRENCY: String(workers) },
        90_000,
        { hasOwnProcessGroup: true },
      );
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
      // A terminal's hangup reaches its whole foreground process group: the primary and its workers.
      process.kill(-(server.process.pid as number), 'SIGHUP');
      const code = await server.exited;
      const lines = messagesOf(server.stdout());
      expect(code, server.output()).toBe(0);
      expect(lines).toContainEqual(expect.objectContaining({ msg: 'shutting down', signal: 'SIGHUP' }));
      expect(lines.at(-1)).toMatchObject({ msg: 'stopped', signal: 'SIGHUP' });
    },
    120_000,
  );
});
