import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import {
  createSessionPruner,
  pruneExpiredSessions,
  SESSION_PRUNE_BATCH_SIZE,
} from '../../src/modules/auth/session.pruner.js';
import { prunesWaitingOnLockedTable, sessionsWaitingForLocks } from '../support/lock-waits.js';
import { spawnServer } from '../support/spawn-server.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());
beforeEach(async () => {
  await db.pool.query('DELETE FROM "session"');
});

/** A logger whose lines a test reads back. */
function capturingLogger() {
  const lines: Array<{ level: number; msg: string; [key: string]: unknown }> = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

/** `count` sessions named `prefix1`… that expire `secondsFromNow` from now (negative: expired). */
async function buildSessions(prefix: string, count: number, secondsFromNow: number) {
  await db.pool.query(
    `INSERT INTO "session" (sid, sess, expire)
     SELECT $1 || g, '{"cookie":{}}', now() + make_interval(secs => $3)
       FROM generate_series(1, $2::int) AS g`,
    [prefix, count, secondsFromNow],
  );
}

async function sessionIds(): Promise<string[]> {
  const { rows } = await db.pool.query<{ sid: string }>('SELECT sid FROM "session" ORDER BY sid');
  return rows.map((row) => row.sid);
}

describe('pruning expired sessions', () => {
  it('deletes the sessions that expired and keeps the live ones', async () => {
    await buildSessions('expired-', 3, -60);
    await buildSessions('live-', 2, 3600);
    const { logger, lines } = capturingLogger();
    const pruner = createSessionPruner({ pool: db.pool, logger, now: () => new Date(), intervalSec: 600 });

    await pruner.runOnce();

    expect(await sessionIds()).toEqual(['live-1', 'live-2']);
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'pruned expired sessions', sessions: 3 }));
  });

  it('deletes a backlog larger than a batch, no statement deleting more than a batch', async () => {
    await buildSessions('expired-', 2500, -3600);
    await buildSessions('live-', 1, 3600);
    // How many rows each DELETE statement removed, in order.
    await db.pool.query(`
      CREATE TABLE deletes_per_statement (seq serial, deleted int);
      CREATE FUNCTION record_deletes() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO deletes_per_statement (deleted) SELECT count(*) FROM old_rows;
          RETURN NULL;
        END $$;
      CREATE TRIGGER record_deletes AFTER DELETE ON "session"
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION record_deletes();`);
    try {
      expect(await pruneExpiredSessions(db.pool, new Date(), { batchSize: 1000 })).toBe(2500);

      expect(await sessionIds()).toEqual(['live-1']);
      const { rows } = await db.pool.query<{ deleted: number }>(
        'SELECT deleted FROM deletes_per_statement ORDER BY seq',
      );
      expect(rows.map((row) => row.deleted)).toEqual([1000, 1000, 500]);
    } finally {
      await db.pool.query(`
        DROP TRIGGER record_deletes ON "session";
        DROP FUNCTION record_deletes();
        DROP TABLE deletes_per_statement;`);
    }
  });

  it('batches by default, and a stop ends a prune after its current batch', async () => {
    const backlog = SESSION_PRUNE_BATCH_SIZE + 500;
    await buildSessions('expired-', backlog, -3600);
    const { logger } = capturingLogger();
    const pruner = createSessionPruner({ pool: db.pool, logger, now: () => new Date(), intervalSec: 600 });
    const blocker = await db.pool.connect();
    try {
      await blocker.query('BEGIN; LOCK TABLE "session" IN SHARE MODE');
      const running = pruner.runOnce();
      expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
      const stopped = pruner.stop();
      await blocker.query('COMMIT');
      await stopped;
      await running;
    } finally {
      blocker.release();
    }
    expect(await sessionIds()).toHaveLength(backlog - SESSION_PRUNE_BATCH_SIZE);
  });

  it('reads the expired sessions through the index on their expiry', async () => {
    await buildSessions('expired-', 2000, -3600);
    await buildSessions('live-', 2000, 3600);
    await db.pool.query('ANALYZE "session"');
    const { rows } = await db.pool.query<{ 'QUERY PLAN': string }>(
      `EXPLAIN DELETE FROM "session"
        WHERE sid IN (SELECT sid FROM "session" WHERE expire < to_timestamp($1) ORDER BY expire LIMIT 1000)`,
      [Date.now() / 1000],
    );
    expect(rows.map((row) => row['QUERY PLAN']).join('\n')).toContain('IDX_session_expire');
  });
});

describe('the server', () => {
  it.each([1, 2])(
    'with %i worker(s) prunes expired sessions on its timer from one process only',
    async (workers) => {
      await buildSessions('expired-', 3, -60);
      await buildSessions('live-', 1, 3600);
      const server = await spawnServer({
        DATABASE_URL: db.url,
        PORT: String(await findFreePort()),
        WEB_CONCURRENCY: String(workers),
        DEMO_SEED: '0',
        INGEST_ENABLED: '0',
        LOG_LEVEL: 'warn',
        SESSION_PRUNE_INTERVAL_SEC: '1',
      });
      try {
        for (let poll = 0; poll < 300 && (await sessionIds()).length > 1; poll++) {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        expect(await sessionIds(), server.output()).toEqual(['live-1']);

        // While a prune waits, the timer's next ticks (every second) start no other: in a
        // cluster, only the worker the primary named prunes at all.
        expect(await prunesWaitingOnLockedTable(db.pool, '"session"')).toBe(1);
      } finally {
        expect(await server.stop(), server.output()).toBe(0);
      }
    },
    90_000,
  );
});
