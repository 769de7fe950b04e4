import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ADVISORY_LOCK_KEYS } from '../../src/db/advisory-locks.js';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { builtFile } from '../support/built-app.js';
import { spawnCollecting } from '../support/run-to-exit.js';
import { PROJECT_ROOT } from '../support/spawn-server.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// SIGTERM (a deploy replaced the pod, `systemctl stop`) or Ctrl-C while the start-up migrations
// ran took Node's default action: the process died mid-start-up with no log line, and what a
// supervisor read was an exit by signal.

const NEWEST_MIGRATION = '20261205120000_failed_refund_occurred_at';

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** Undoes the newest migration, as a database the previous release migrated is before an upgrade. */
async function undoNewestMigration(db: TestDatabase) {
  await db.pool.query('ALTER TABLE "payment_failed_refunds" DROP COLUMN "failure_occurred_at"');
  await db.pool.query('DELETE FROM "_prisma_migrations" WHERE migration_name = $1', [NEWEST_MIGRATION]);
}

async function waitFor(condition: () => boolean, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  return condition();
}

describe('SIGTERM while the start-up migrations run', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    'on %s logs that it was asked to stop, rolls the migration back, closes its connections and exits 0 without listening',
    async (signal) => {
      const db = await createTestDatabase();
      cleanups.push(() => db.drop());
      await undoNewestMigration(db);
      // A long export of the release still serving holds the table the migration changes: the
      // migration waits for it, trying again every few seconds.
      const holder = new pg.Client({ connectionString: db.url });
      await holder.connect();
      cleanups.push(() => holder.end());
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE "payment_failed_refunds" IN ACCESS SHARE MODE');

      const dataDir = await mkdtemp(path.join(os.tmpdir(), 'hb-startup-interrupt-'));
      cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
      const server = spawnCollecting(process.execPath, [builtFile('src/server.ts')], {
        cwd: PROJECT_ROOT,
        env: {
          DATABASE_URL: db.url,
          DATA_DIR: dataDir,
          PORT: String(await findFreePort()),
          LOG_LEVEL: 'info',
          DEMO_SEED: '0',
        },
      });
      cleanups.push(async () => {
        if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
      });
      expect(
        await waitFor(() => server.output().includes(`migration ${NEWEST_MIGRATION} waited`)),
        server.output(),
      ).toBe(true);

      server.child.kill(signal);
      expect(await server.exited, server.output()).toBe(0);
      await holder.query('ROLLBACK');

      expect(server.output()).toContain(
        `"signal":"${signal}","msg":"asked to stop during start-up: the migration or demo seed in progress finishes or rolls back, then the process exits without serving"`,
      );
      expect(server.output()).toMatch(/"msg":"stopped during start-up: nothing was served"/);
      expect(server.output()).not.toContain('is listening');
      // Nothing of the migration was applied, and it is not recorded: the next start applies it whole.
      const recorded = await db.pool.query('SELECT 1 FROM "_prisma_migrations" WHERE migration_name = $1', [
        NEWEST_MIGRATION,
      ]);
      expect(recorded.rowCount).toBe(0);
      const column = await db.pool.query(
        `SELECT 1 FROM information_schema.columns WHERE table_name = 'payment_failed_refunds' AND column_name = 'failure_occurred_at'`,
      );
      expect(column.rowCount).toBe(0);
    },
    150_000,
  );

  it('while it waits for another instance to finish migrating, ends the wait, and exits 0', async () => {
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    // Another instance (or `npm run db:migrate`) holds the migration lock for a long migration.
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    cleanups.push(() => other.end());
    await other.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEYS.migrations]);

    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'hb-startup-interrupt-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const server = spawnCollecting(process.execPath, [builtFile('src/server.ts')], {
      cwd: PROJECT_ROOT,
      env: {
        DATABASE_URL: db.url,
        DATA_DIR: dataDir,
        PORT: String(await findFreePort()),
        LOG_LEVEL: 'info',
        DEMO_SEED: '0',
      },
    });
    cleanups.push(async () => {
      if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
    });
    const waiters = async () =>
      (
        await other.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'SELECT pg_advisory_lock%'`,
        )
      ).rows[0].n as number;
    await expect.poll(waiters, { timeout: 60_000 }).toBe(1);

    server.child.kill('SIGTERM');
    expect(await server.exited, server.output()).toBe(0);
    expect(server.output()).toMatch(/"msg":"stopped during start-up: nothing was served"/);
    expect(server.output()).not.toContain('is listening');
    // Its wait ended with it: the lock never goes to a process that is gone.
    await expect.poll(waiters).toBe(0);
  }, 150_000);
});

// With one worker, the start-up's signal handlers went away once the database was prepared, and the
// shutdown's were set only after runWorker had set up hashing, opened the pool and listened: a
// SIGTERM in between took Node's default action, an exit by signal with no log line.
describe('SIGTERM after the database is prepared, before the server listens (one worker)', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    'on %s stops gracefully and exits 0',
    async (signal) => {
      const db = await createTestDatabase();
      cleanups.push(() => db.drop());
      const dataDir = await mkdtemp(path.join(os.tmpdir(), 'hb-startup-interrupt-'));
      cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
      const signalBeforeListen = path.join(PROJECT_ROOT, 'test/support/signal-before-listen.mjs');
      const server = spawnCollecting(
        process.execPath,
        ['--import', pathToFileURL(signalBeforeListen).href, builtFile('src/server.ts')],
        {
          cwd: PROJECT_ROOT,
          env: {
            DATABASE_URL: db.url,
            DATA_DIR: dataDir,
            PORT: String(await findFreePort()),
            LOG_LEVEL: 'info',
            DEMO_SEED: '0',
            WEB_CONCURRENCY: '1',
            SIGNAL_BEFORE_LISTEN: signal,
          },
        },
      );
      cleanups.push(async () => {
        if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
      });

      expect({ code: await server.exited, signal: server.child.signalCode }, server.output()).toEqual({
        code: 0,
        signal: null,
      });
      expect(server.output()).toContain(`sending ${signal} to itself before the HTTP server listens`);
      expect(server.output()).toContain(`"signal":"${signal}","msg":"shutting down"`);
      expect(server.output()).toMatch(/"msg":"stopped"/);
    },
    150_000,
  );
});
