import { Writable } from 'node:stream';
import { pino } from 'pino';
import type request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { type Database, openDatabase } from '../../src/db/database.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { sessionsWaitingForLocks } from '../support/lock-waits.js';
import { csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestConfig } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A database that works but refuses one statement: its statement_timeout (docs/operations.md advises one
// for the app's role) or an operator's pg_cancel_backend cancels it (57014), a lock_timeout or a deadlock
// ends it, or it runs out of disk or memory (class 53). The transaction is rolled back whole, yet the
// request was a 500 "Something went wrong on our side." logged as an 'unhandled error', as if a bug.

const TOO_BUSY = 'The database was too busy to finish this in time, and nothing was changed. Try again in a moment.';
const UNAVAILABLE = 'The database is unavailable right now. Try again in a moment.';

let db: TestDatabase;
let database: Database;
const logged: Record<string, unknown>[] = [];
let app: ReturnType<typeof createApp>;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _encoding, done) {
        logged.push(JSON.parse(String(chunk)) as Record<string, unknown>);
        done();
      },
    }),
  );
  const config = buildTestConfig(db.url, {});
  database = openDatabase(db.url, { poolMax: 4, queryTimeoutMs: config.dbQueryTimeoutMs, logger });
  app = createApp({ config, db: database, logger, metrics: createMetrics() });
});
afterAll(async () => {
  await database?.close();
  await db?.drop();
});

async function researcherWithAJob(username: string) {
  const user = await buildUser(db.prisma, { username });
  await buildJobs(db, [{ user: username, end: '2026-01-10T10:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
  return signInAs(app, user.username, user.password);
}

async function receiptsOf(username: string): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM receipts WHERE username = $1', [
    username,
  ]);
  return rows[0]?.n ?? -1;
}

describe('a statement the database refuses in the middle of a receipt', () => {
  it('canceled (statement_timeout, pg_cancel_backend): a 503 saying nothing was changed, and the receipt can be made again', async () => {
    const agent = await researcherWithAJob('canceled');
    const token = await csrfTokenOf(agent);
    const holder = await db.pool.connect();
    let answer: request.Response;
    try {
      // A session holding receipts, as a long statement would: the receipt's insert waits behind it.
      await holder.query('BEGIN; LOCK TABLE receipts IN SHARE MODE');
      const creating = agent
        .post('/me/receipt')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', token)
        .send({ before: '2026-01-31' })
        .then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool)).toBeGreaterThan(0);
      // What statement_timeout does to it when its time is up, and an operator's cancel at once.
      await holder.query(
        `SELECT pg_cancel_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`,
      );
      answer = await creating;
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
    expect(answer.status, answer.text).toBe(503);
    expect(answer.body.error).toBe(TOO_BUSY);
    expect(answer.headers['retry-after']).toBe('5');
    expect(logged.map((entry) => entry.msg)).not.toContain('unhandled error');
    expect(logged.find((entry) => entry.level === 50)).toMatchObject({
      msg: 'statement canceled by the database and rolled back',
    });
    expect(await receiptsOf('canceled')).toBe(0);

    const again = await agent
      .post('/me/receipt')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ before: '2026-01-31' });
    expect(again.status, again.text).toBe(201);
    expect(await receiptsOf('canceled')).toBe(1);
  });

  it('out of disk (53100) mid-transaction: a 503 that the database is unavailable, logged as such, and nothing stored', async () => {
    const agent = await researcherWithAJob('diskfull');
    logged.length = 0;
    // PostgreSQL's own disk_full, raised where the receipt's items are written, as a full disk raises it.
    await db.pool.query(`
      CREATE FUNCTION chaos_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'could not extend file "base/1/2": No space left on device' USING ERRCODE = 'disk_full'; END $$;
      CREATE TRIGGER chaos_disk_full BEFORE INSERT ON receipt_items FOR EACH STATEMENT EXECUTE FUNCTION chaos_disk_full();`);
    let answer: request.Response;
    try {
      answer = await agent
        .post('/me/receipt')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(agent))
        .send({ before: '2026-01-31' });
    } finally {
      await db.pool.query('DROP TRIGGER chaos_disk_full ON receipt_items; DROP FUNCTION chaos_disk_full()');
    }
    expect(answer.status, answer.text).toBe(503);
    expect(answer.body.error).toBe(UNAVAILABLE);
    expect(logged.map((entry) => entry.msg)).not.toContain('unhandled error');
    expect(logged.find((entry) => entry.level === 50)).toMatchObject({
      msg: 'database unavailable: it is out of resources (disk space, memory, or a limit such as temp_file_limit)',
    });
    expect(await receiptsOf('diskfull')).toBe(0);
  });
});
