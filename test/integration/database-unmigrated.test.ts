import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { type Database, openDatabase } from '../../src/db/database.js';
import { applyMigrations } from '../../src/db/migrations.js';
import { startIngestionScheduler } from '../../src/modules/ingestion/ingestion.scheduler.js';
import { createIngestionService } from '../../src/modules/ingestion/ingestion.service.js';
import { createSacctFileSource } from '../../src/modules/ingestion/sacct-file.source.js';
import { createMetrics, type Metrics } from '../../src/modules/metrics/metrics.js';
import { createLogger } from '../../src/shared/logger.js';
import { signInNewAdmin } from '../support/sign-in.js';
import { buildTestConfig, metricValue } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A database restored empty (a restore that failed, or a new database nobody migrated) that the
// running app can still connect to: /readyz said ready, hpc_ready read 1 and AppNotReady never
// fired, while every page was an "unhandled error" with a stack and a 500 (Prisma's P2021, the
// table does not exist).

const NO_SCHEMA = 'the database has no schema: run npm run db:migrate';

const opened: Database[] = [];
const databases: TestDatabase[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((database) => database.close()));
});
afterAll(async () => {
  await Promise.all(databases.splice(0).map((database) => database.drop()));
});

/** The app over `url`, with what it logs at info and above and its metrics. */
function appOver(url: string) {
  const logged: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _encoding, done) {
        logged.push(JSON.parse(String(chunk)) as Record<string, unknown>);
        done();
      },
    }),
  );
  const config = buildTestConfig(url, { READY_TIMEOUT_MS: '2000' });
  const database = openDatabase(url, { poolMax: 2, queryTimeoutMs: config.dbQueryTimeoutMs, logger });
  opened.push(database);
  const metrics: Metrics = createMetrics();
  return { app: createApp({ config, db: database, logger, metrics }), database, logged, metrics };
}

/** Empties `db` as a restore that failed after dropping everything leaves it. */
async function emptySchema(db: TestDatabase) {
  await db.pool.query('DROP SCHEMA public CASCADE');
  await db.pool.query('CREATE SCHEMA public');
}

const CAPTURE = path.resolve(import.meta.dirname, '../fixtures/slurm/22.05/final/sacct-steps-extra.psv');

/**
 * One scheduled ingestion run over `db` from the lab's capture, as the app's scheduler makes it: what
 * it logged, its "ingestion run …" lines, and its metrics. `initialLookbackSec` far enough back
 * (400 days) reaches the capture's jobs (November 2026), so that the run has a batch to write.
 */
async function runScheduledIngestionOnce(db: TestDatabase, initialLookbackSec: number) {
  const lines: Array<{ level: number; msg: string; err?: unknown }> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  const metrics = createMetrics();
  const service = createIngestionService({
    db,
    sources: [createSacctFileSource({ path: CAPTURE, timeZone: 'UTC', defaultCluster: 'lab' })],
    unconfigured: {},
    logger,
    metrics,
    overlapSec: 900,
    initialLookbackSec,
  });
  const stop = startIngestionScheduler({ service, intervalSec: 3600, logger, initialDelayMs: 0 });
  await expect.poll(() => lines.some((line) => line.msg.startsWith('ingestion run ')), { timeout: 30_000 }).toBe(true);
  await stop();
  const runLines = lines.filter((line) => line.msg.startsWith('ingestion run '));
  return { lines, runLines, metrics };
}

async function expectNotReadyForNoSchema(served: ReturnType<typeof appOver>) {
  const answer = await request(served.app).get('/readyz').expect(503);
  expect(answer.headers['cache-control']).toBe('no-store');
  expect(answer.body).toEqual({ status: 'error', error: NO_SCHEMA });
  expect(await metricValue(served.metrics, 'hpc_ready')).toBe(0);
  expect(served.logged.find((entry) => entry.msg === 'not ready')).toMatchObject({
    level: 40,
    err: expect.stringMatching(/^database at [^ ]+ has no schema \(no users table\): run npm run db:migrate$/),
  });
}

async function expectPagesUnavailable(served: ReturnType<typeof appOver>) {
  const json = await request(served.app).get('/formula').set('Accept', 'application/json');
  expect(json.status).toBe(503);
  expect(json.headers['retry-after']).toBe('5');
  expect(json.body).toMatchObject({ error: 'The database is unavailable right now. Try again in a moment.' });
  const page = await request(served.app).get('/rates').set('Accept', 'text/html');
  expect(page.status).toBe(503);
  expect(page.text).toContain('The database is unavailable right now. Try again in a moment.');
  const line = served.logged.find((entry) => entry.route === '/formula');
  expect(line).toMatchObject({ level: 50, msg: `database unavailable: ${NO_SCHEMA}` });
  expect(served.logged.map((entry) => entry.msg)).not.toContain('unhandled error');
}

describe('a database restored empty under a running app', () => {
  it('is not ready (503 naming the cause, hpc_ready 0) and pages answer 503, until it is migrated again', async () => {
    const db = await createTestDatabase();
    databases.push(db);
    const served = appOver(db.url);
    expect((await request(served.app).get('/readyz').expect(200)).body).toEqual({ status: 'ok' });
    expect(await metricValue(served.metrics, 'hpc_ready')).toBe(1);

    await emptySchema(db);

    await expectNotReadyForNoSchema(served);
    await expectPagesUnavailable(served);

    await applyMigrations(db.url, createLogger('silent'));
    expect((await request(served.app).get('/readyz').expect(200)).body).toEqual({ status: 'ok' });
    expect(await metricValue(served.metrics, 'hpc_ready')).toBe(1);
    // The database answered throughout: what came back is its schema, which the line names.
    expect(served.logged.find((entry) => entry.msg === 'ready again')).toMatchObject({
      level: 30,
      lastError: expect.stringContaining('npm run db:migrate'),
    });
    expect(served.logged.some((entry) => String(entry.msg).includes('the database answers'))).toBe(false);
    await request(served.app).get('/rates').set('Accept', 'text/html').expect(200);
  });
});

describe('a new database nobody migrated', () => {
  it('is not ready, and a page is the 503 database-unavailable answer rather than a 500', async () => {
    const db = await createTestDatabase();
    databases.push(db);
    await emptySchema(db);
    const served = appOver(db.url);

    await expectNotReadyForNoSchema(served);
    await expectPagesUnavailable(served);
  });
});

// It logged the warning "ingestion run not started: the database has no schema" and counted nowhere,
// though the run had started (the lock taken) and failed: slurm_ingest_runs_total never saw it, as
// it had not seen a database missing a column (dcb186ec).
describe('the scheduled ingestion over a database with no schema', () => {
  it('says in one line that the database is behind and to run npm run db:migrate, and counts the run as failed', async () => {
    const db = await createTestDatabase();
    databases.push(db);
    await emptySchema(db);
    const { lines, runLines, metrics } = await runScheduledIngestionOnce(db, 86_400);

    expect(runLines).toEqual([
      expect.objectContaining({
        level: 50,
        msg: `ingestion run failed: ${BEHIND}; the next interval tries again`,
        err: expect.stringMatching(/ingestion_runs.*does not exist/),
      }),
    ]);
    expect(typeof runLines[0]?.err).toBe('string');
    expect(lines.some((line) => line.msg.includes('crashed') || line.msg.startsWith('ingestion source'))).toBe(false);
    expect(await metricValue(metrics, 'slurm_ingest_runs_total', { source: 'none', outcome: 'failed' })).toBe(1);
    expect(await metricValue(metrics, 'slurm_ingest_source_failures_total', { source: 'file' })).toBe(0);
  });
});

// The jobs table alone missing (dropped by hand, a restore of some tables only): the run was recorded
// failed, but the scheduler said "ingestion run not started: the database has no schema", which was
// neither, and slurm_ingest_runs_total did not count it.
describe('the scheduled ingestion over a database without its jobs table', () => {
  it('says the database is behind and to run npm run db:migrate, counts the run failed and no source failure', async () => {
    const db = await createTestDatabase();
    databases.push(db);
    await db.pool.query('DROP TABLE "slurm_jobs" CASCADE');
    const { lines, runLines, metrics } = await runScheduledIngestionOnce(db, 400 * 86_400);

    expect(runLines).toEqual([
      expect.objectContaining({
        level: 50,
        msg: `ingestion run failed: ${BEHIND}; the next interval tries again`,
        err: expect.stringMatching(/slurm_jobs.*does not exist/),
      }),
    ]);
    expect(lines.some((line) => line.msg.startsWith('ingestion source'))).toBe(false);
    expect(await metricValue(metrics, 'slurm_ingest_source_failures_total', { source: 'file' })).toBe(0);
    expect(await metricValue(metrics, 'slurm_ingest_runs_total', { source: 'none', outcome: 'failed' })).toBe(1);
    const runs = await db.pool.query('SELECT outcome, error, source_notes FROM ingestion_runs');
    expect(runs.rows).toEqual([expect.objectContaining({ outcome: 'failed', error: expect.stringContaining(BEHIND) })]);
    expect(JSON.stringify(runs.rows[0].source_notes)).not.toContain('failed');
  });
});

describe('the scheduled ingestion over a database missing a column (behind the code)', () => {
  it('says in one line that the database is behind and to run npm run db:migrate, and counts the run as failed', async () => {
    const db = await createTestDatabase();
    databases.push(db);
    // A column this release writes at the end of every run, as an older dump restored lacks a newer one.
    await db.pool.query('ALTER TABLE "ingestion_runs" DROP COLUMN "duration_ms"');
    const { lines, runLines, metrics } = await runScheduledIngestionOnce(db, 86_400);

    expect(runLines).toEqual([
      expect.objectContaining({
        level: 50,
        msg: `ingestion run failed: ${BEHIND}; the next interval tries again`,
        err: expect.stringMatching(/duration_ms/),
      }),
    ]);
    // A message, not a stack.
    expect(typeof runLines[0]?.err).toBe('string');
    expect(lines.some((line) => line.msg.includes('crashed'))).toBe(false);
    expect(await metricValue(metrics, 'slurm_ingest_runs_total', { source: 'none', outcome: 'failed' })).toBe(1);
  });
});

// A column missing from slurm_jobs failed the write of the first batch inside the source's read: the
// run said the source failed, and slurm_ingest_source_failures_total counted a failure of a healthy
// Slurm, enough for IngestionSourceFailing to page someone about slurmrestd.
describe('the scheduled ingestion over a jobs table missing a column (behind the code)', () => {
  it('says the database is behind, counts the run failed and no source failure, and records the run failed', async () => {
    const db = await createTestDatabase();
    databases.push(db);
    await db.pool.query('ALTER TABLE "slurm_jobs" DROP COLUMN "node_list"');
    const { lines, runLines, metrics } = await runScheduledIngestionOnce(db, 400 * 86_400);

    expect(runLines).toEqual([
      expect.objectContaining({
        level: 50,
        msg: `ingestion run failed: ${BEHIND}; the next interval tries again`,
        err: expect.stringMatching(/node_list/),
      }),
    ]);
    expect(lines.some((line) => line.msg.startsWith('ingestion source'))).toBe(false);
    expect(await metricValue(metrics, 'slurm_ingest_source_failures_total', { source: 'file' })).toBe(0);
    expect(await metricValue(metrics, 'slurm_ingest_runs_total', { source: 'none', outcome: 'failed' })).toBe(1);
    // Recorded failed, saying why, rather than left running until the next run marks it abandoned.
    const runs = await db.pool.query('SELECT outcome, error, source_notes FROM ingestion_runs');
    expect(runs.rows).toEqual([expect.objectContaining({ outcome: 'failed', error: expect.stringContaining(BEHIND) })]);
    expect(JSON.stringify(runs.rows[0].source_notes)).not.toContain('failed');
  });
});

// A database whose migrations are behind the code (an upgrade deployed without `npm run db:migrate`,
// an older dump restored under running instances): /readyz checked only that the users table
// existed, so it said ready while every page reading a newer column failed with a 500.

const NEWEST_MIGRATION = '20261205100000_failed_refund_in_reported_total';
const BEHIND = 'the database is behind this release (migrations not applied): run npm run db:migrate';

/** Undoes the newest migration, as a dump taken before it and restored leaves the database. */
async function undoNewestMigration(db: TestDatabase) {
  await db.pool.query('ALTER TABLE "payment_failed_refunds" DROP COLUMN "is_in_reported_total"');
  await db.pool.query('DELETE FROM "_prisma_migrations" WHERE migration_name = $1', [NEWEST_MIGRATION]);
}

describe('a database behind the code (an older dump restored, or an upgrade nobody migrated)', () => {
  it('is not ready (503 naming what to run, hpc_ready 0) until it is migrated', async () => {
    const db = await createTestDatabase();
    databases.push(db);
    const served = appOver(db.url);
    expect((await request(served.app).get('/readyz').expect(200)).body).toEqual({ status: 'ok' });

    await undoNewestMigration(db);

    const answer = await request(served.app).get('/readyz').expect(503);
    expect(answer.headers['cache-control']).toBe('no-store');
    expect(answer.body).toEqual({ status: 'error', error: BEHIND });
    expect(await metricValue(served.metrics, 'hpc_ready')).toBe(0);
    expect(served.logged.find((entry) => entry.msg === 'not ready')).toMatchObject({
      level: 40,
      err: `database at ${new URL(db.url).host} is behind this release: 1 migration(s) not applied (${NEWEST_MIGRATION}): run npm run db:migrate`,
    });

    await applyMigrations(db.url, createLogger('silent'));
    expect((await request(served.app).get('/readyz').expect(200)).body).toEqual({ status: 'ok' });
    expect(await metricValue(served.metrics, 'hpc_ready')).toBe(1);
  });

  it('names a migration recorded as failed (as `prisma migrate deploy` leaves one) apart from the pending ones', async () => {
    const db = await createTestDatabase();
    databases.push(db);
    const served = appOver(db.url);
    await undoNewestMigration(db);
    await db.pool.query(
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, logs, started_at, applied_steps_count)
       VALUES (gen_random_uuid(), 'x', $1, 'ERROR: deadlock detected', now(), 0)`,
      [NEWEST_MIGRATION],
    );

    const answer = await request(served.app).get('/readyz').expect(503);
    expect(answer.body).toEqual({
      status: 'error',
      error: 'a migration of this release failed: fix its cause, then run npm run db:migrate',
    });
    expect(served.logged.find((entry) => entry.msg === 'not ready')).toMatchObject({
      err: `database at ${new URL(db.url).host} has a failed migration (${NEWEST_MIGRATION}, recorded in _prisma_migrations): fix its cause, then run npm run db:migrate`,
    });

    await applyMigrations(db.url, createLogger('silent'));
    await request(served.app).get('/readyz').expect(200);
  });
});

describe('pages over a database behind the code', () => {
  // Every signed-in page failed as "Something went wrong on our side." (500), logged as an
  // "unhandled error" with Prisma's "column does not exist" (P2022) read like a bug in the page.
  it('answer 503 "database unavailable", logged as the database being behind, not an unhandled error', async () => {
    const db = await createTestDatabase();
    databases.push(db);
    const served = appOver(db.url);
    const admin = await signInNewAdmin(served.app, db, 'behind-admin');
    await admin.get('/account').set('Accept', 'text/html').expect(200);

    // A dump from before users.session_epoch (2026-12-04), restored under the running app.
    await db.pool.query('ALTER TABLE "users" DROP COLUMN "session_epoch"');
    await db.pool.query('DELETE FROM "_prisma_migrations" WHERE migration_name = $1', [
      '20261204000000_user_session_epoch',
    ]);

    const page = await admin.get('/account').set('Accept', 'text/html');
    expect(page.status).toBe(503);
    expect(page.text).toContain('The database is unavailable right now. Try again in a moment.');
    // Met while the session was read, before any route: the request's line names no route.
    expect(served.logged.find((entry) => entry.level === 50)).toMatchObject({
      msg: `database unavailable: ${BEHIND}`,
      err: expect.objectContaining({ message: expect.stringMatching(/session_epoch/) }),
    });
    expect(served.logged.map((entry) => entry.msg)).not.toContain('unhandled error');
  });
});

describe('a database ahead of the code (the code rolled back, the database not)', () => {
  it('stays ready, says so in the answer, and warns once in the log', async () => {
    const db = await createTestDatabase();
    databases.push(db);
    const served = appOver(db.url);
    await request(served.app).get('/readyz').expect(200);
    expect(await metricValue(served.metrics, 'hpc_schema_unknown_migrations')).toBe(0);
    await db.pool.query(
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, finished_at, applied_steps_count)
       VALUES (gen_random_uuid(), 'x', '29990101000000_from_a_newer_release', now(), 1)`,
    );

    for (let probe = 0; probe < 3; probe++) {
      const answer = await request(served.app).get('/readyz').expect(200);
      expect(answer.body).toEqual({ status: 'ok', warning: 'the database was migrated by a newer release' });
    }
    expect(await metricValue(served.metrics, 'hpc_ready')).toBe(1);
    // Ready by design, so AppNotReady stays quiet: this gauge is what SchemaAheadOfCode alerts on.
    expect(await metricValue(served.metrics, 'hpc_schema_unknown_migrations')).toBe(1);
    const scraped = await request(served.app).get('/metrics').expect(200);
    expect(scraped.text).toMatch(/^hpc_schema_unknown_migrations 1$/m);
    const warnings = served.logged.filter(
      (entry) => entry.msg === 'ready, but the database was migrated by a newer release',
    );
    expect(warnings).toEqual([
      expect.objectContaining({
        level: 40,
        unknownMigrations: ['29990101000000_from_a_newer_release'],
      }),
    ]);
  });
});
