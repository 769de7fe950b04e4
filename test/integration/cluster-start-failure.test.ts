import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { runToExit } from '../support/run-to-exit.js';
import { PROJECT_ROOT } from '../support/spawn-server.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

// Production with WEB_CONCURRENCY > 1 on a port another process holds: every worker fails to
// listen. The primary used to start another, for ever ("worker died; starting another"), so the
// process stayed up serving nothing, and a service manager never saw the start fail.
describe('a cluster whose workers cannot start', () => {
  it('stops with one fatal line saying why and exits 1, instead of restarting workers for ever', async () => {
    const port = await findFreePort();
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
    try {
      const result = await runToExit(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
        cwd: PROJECT_ROOT,
        giveUpMs: 60_000,
        env: {
          APP_ENV: 'production',
          HOST: '127.0.0.1',
          PORT: String(port),
          DATABASE_URL: db.url,
          SESSION_SECRET: 's'.repeat(40),
          AUDIT_CHAIN_KEY: 'k'.repeat(40),
          INGEST_ENABLED: '0',
          WEB_CONCURRENCY: '2',
        },
      });
      expect(result.hasExitedItself).toBe(true);
      expect(result.code).toBe(1);
      const fatal = result.output
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { level: number; msg: string })
        .filter((line) => line.level === 60 && line.msg.startsWith('HPC Billing failed to start'));
      expect(fatal.map((line) => line.msg)).toContain(
        'HPC Billing failed to start: a worker exited (code 1) before it listened; its error is logged above',
      );
      expect(result.output).toContain('EADDRINUSE');
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  }, 120_000);
});
