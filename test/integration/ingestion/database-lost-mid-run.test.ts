import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ADVISORY_LOCK_CLASSES } from '../../../src/db/advisory-locks.js';
import { type Database, openDatabase } from '../../../src/db/database.js';
import { startIngestionScheduler } from '../../../src/modules/ingestion/ingestion.scheduler.js';
import { createIngestionService, getIngestionOverview } from '../../../src/modules/ingestion/ingestion.service.js';
import { createSacctFileSource } from '../../../src/modules/ingestion/sacct-file.source.js';
import { createMetrics } from '../../../src/modules/metrics/metrics.js';
import { builtFile } from '../../support/built-app.js';
import { spawnCollecting } from '../../support/run-to-exit.js';
import { PROJECT_ROOT } from '../../support/spawn-server.js';
import { startTcpProxy, type TcpProxy } from '../../support/tcp-proxy.js';
import { metricValue } from '../../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

// A PostgreSQL that went away in the middle of a run (restarted, killed, its port closed) failed the
// write of a batch inside the source's read: the run said "file: Connection terminated unexpectedly",
// logged "ingestion source failed" and counted slurm_ingest_source_failures_total, so
// IngestionSourceFailing could fire against a healthy Slurm, and the scheduler said the run was
// "not started". The store's failure is now told from the source's where it is raised
// (JobStoreError, ingestion.repository.ts): the run fails as the database's. A run that succeeded met
// the same restart just before its end was written: that write failed on an idle connection PostgreSQL had
// ended unseen, and the run threw and read running, its batch committed; it is now tried again past them.

const CAPTURE = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05/final/sacct-steps-extra.psv');
/** The capture's jobs, as a run stores them once the database is back. */
const CAPTURED_JOBS = 12;
const UNAVAILABLE_LINE = 'ingestion run failed: the database is unavailable; the next interval tries again';
/** The application_name of the connections of the service under test: the ones PostgreSQL terminates. */
const SERVICE_APP = 'ingest_lost_mid_run';

const databases: TestDatabase[] = [];
const opened: Database[] = [];
const holders: pg.Client[] = [];
const proxies: TcpProxy[] = [];
afterEach(async () => {
  await Promise.all(holders.splice(0).map((client) => client.end().catch(() => undefined)));
  await Promise.all(opened.splice(0).map((database) => database.close()));
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
});
afterAll(async () => {
  await Promise.all(databases.splice(0).map((database) => database.drop()));
});

type LogLine = { level: number; msg: string; err?: unknown };

/** An ingestion service over `url` reading the capture, with what it logs and its metrics. */
function serviceOver(url: string) {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  const withName = new URL(url);
  withName.searchParams.set('application_name', SERVICE_APP);
  const database = openDatabase(withName.toString(), { poolMax: 4, queryTimeoutMs: 30_000, logger });
  opened.push(database);
  const metrics = createMetrics();
  const service = createIngestionService({
    db: database,
    sources: [createSacctFileSource({ path: CAPTURE, timeZone: 'UTC', defaultCluster: 'lab' })],
    unconfigured: {},
    logger,
    metrics,
    overlapSec: 900,
    initialLookbackSec: 86_400,
  });
  return { service, lines, metrics, logger, database };
}

/**
 * Holds alice's job lock (as a receipt being made for her does), so that the run's batch, which
 * takes it shared before its upsert, waits inside its transaction until PostgreSQL says it does.
 */
async function holdAlicesJobs(db: TestDatabase): Promise<{ release: () => Promise<void> }> {
  const holder = new pg.Client({ connectionString: db.url });
  await holder.connect();
  holders.push(holder);
  await holder.query(`SELECT pg_advisory_lock($1, hashtext('alice'))`, [ADVISORY_LOCK_CLASSES.userJobs]);
  return {
    release: async () => {
      await holder.query(`SELECT pg_advisory_unlock($1, hashtext('alice'))`, [ADVISORY_LOCK_CLASSES.userJobs]);
    },
  };
}

/** Whether a connection of the service waits on an advisory lock (the batch's, inside its transaction). */
async function isBatchWaiting(db: TestDatabase): Promise<boolean> {
  const result = await db.pool.query(
    `SELECT count(*)::int AS waiting FROM pg_stat_activity
      WHERE datname = $1 AND application_name = $2 AND wait_event_type = 'Lock' AND wait_event = 'advisory'`,
    [db.name, SERVICE_APP],
  );
  return result.rows[0].waiting > 0;
}

/**
 * A completed run whose window ends before the capture's jobs, the window the next runs start from,
 * finished an interval ago (else the scheduled run is skipped as another process's this interval).
 */
async function completeRunBefore(db: TestDatabase, service: ReturnType<typeof serviceOver>['service']) {
  const result = await service.runOnce({
    trigger: 'manual',
    window: { start: new Date('2026-11-01T00:00:00Z'), end: new Date('2026-11-20T00:00:00Z') },
  });
  expect(result).toMatchObject({ status: 'finished', run: { outcome: 'success', seen: 0 } });
  await db.pool.query(
    `UPDATE ingestion_runs SET started_at = started_at - interval '2 hours', finished_at = finished_at - interval '2 hours'`,
  );
}

async function runLinesOnce(lines: LogLine[]) {
  await expect
    .poll(() => lines.some((line) => line.msg.startsWith('ingestion run ') && line.msg !== 'ingestion run success'), {
      timeout: 30_000,
    })
    .toBe(true);
  return lines.filter((line) => line.msg.startsWith('ingestion run ') && line.msg !== 'ingestion run success');
}

/** What the database holds of the runs and jobs. */
async function stored(db: TestDatabase) {
  const runs = await db.pool.query(`SELECT outcome, error, source_notes, window_start FROM ingestion_runs ORDER BY id`);
  const jobs = await db.pool.query('SELECT count(*)::int AS count FROM slurm_jobs');
  return { runs: runs.rows, jobs: jobs.rows[0].count as number };
}

describe('a scheduled run whose database connections PostgreSQL terminates mid-write (a restart)', () => {
  it('fails as the database unavailable, counted as a failed run and no source failure, storing nothing of the batch', async () => {
    const db = await createTestDatabase();
    databases.push(db);
    const under = serviceOver(db.url);
    await completeRunBefore(db, under.service);
    const alice = await holdAlicesJobs(db);
    const stop = startIngestionScheduler({
      service: under.service,
      intervalSec: 3600,
      logger: under.logger,
      initialDelayMs: 0,
    });
    await expect.poll(() => isBatchWaiting(db), { timeout: 30_000 }).toBe(true);
    // As a restart (pg_ctl restart -m fast) does to every connection: "terminating connection due to
    // administrator command" (57P01), the run's ingestion lock's and its batch's among them.
    await db.pool.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2`,
      [db.name, SERVICE_APP],
    );
    const runLines = await runLinesOnce(under.lines);
    await stop();
    await alice.release();

    expect(runLines).toEqual([
      expect.objectContaining({
        level: 50,
        msg: UNAVAILABLE_LINE,
        // The driver's error itself, with its SQLSTATE and stack, not its last line alone.
        err: expect.objectContaining({
          message: expect.stringContaining('terminating connection due to administrator command'),
          code: '57P01',
          stack: expect.any(String),
        }),
      }),
    ]);
    expect(under.lines.some((line) => line.msg.startsWith('ingestion source'))).toBe(false);
    expect(await metricValue(under.metrics, 'slurm_ingest_source_failures_total', { source: 'file' })).toBe(0);
    expect(await metricValue(under.metrics, 'slurm_ingest_runs_total', { source: 'none', outcome: 'failed' })).toBe(1);

    // PostgreSQL answered again at once: the run is recorded failed, saying why, and its batch was
    // rolled back whole.
    const after = await stored(db);
    expect(after.jobs).toBe(0);
    expect(after.runs).toEqual([
      expect.objectContaining({ outcome: 'success' }),
      expect.objectContaining({
        outcome: 'failed',
        error: 'the database is unavailable: terminating connection due to administrator command',
      }),
    ]);
    expect(JSON.stringify(after.runs[1].source_notes)).not.toContain('failed');

    // The window did not move: the next run reads it again, from the same start, and stores every job.
    const next = await under.service.runOnce({ trigger: 'schedule' });
    expect(next).toMatchObject({ status: 'finished', run: { outcome: 'success', inserted: CAPTURED_JOBS } });
    expect(next.status === 'finished' && next.run.window.start).toEqual(after.runs[1].window_start);
    expect((await stored(db)).jobs).toBe(CAPTURED_JOBS);
  });
});

/**
 * A run over a proxy whose batch PostgreSQL ends (57P01, as a restart does) while the pool holds `idle`
 * idle connections that PostgreSQL has ended too, unseen by the pool (a restart under load, a failover):
 * it hands them out as if alive, and the run's failure is written first on one of them. What the run
 * threw and what the database holds then.
 */
async function failRunWithIdleEndedUnseen(idle: number) {
  const db = await createTestDatabase();
  databases.push(db);
  const target = new URL(db.url);
  const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
  proxies.push(proxy);
  const viaProxy = new URL(db.url);
  viaProxy.host = `127.0.0.1:${proxy.port}`;
  const under = serviceOver(viaProxy.toString());
  await completeRunBefore(db, under.service);
  // The run holds two connections (its lock's, its batch's): the pool (of 4) keeps `idle` more, opened together.
  const { pool } = under.database;
  await Promise.all(Array.from({ length: idle + 2 }, () => pool.query('SELECT pg_sleep(0.05)')));
  const alice = await holdAlicesJobs(db);
  const run = under.service.runOnce({ trigger: 'schedule' }).catch((error: unknown) => error);
  await expect.poll(() => isBatchWaiting(db), { timeout: 30_000 }).toBe(true);
  expect(pool.idleCount).toBe(idle);
  const backends = await db.pool.query<{ pid: number; client_port: number; wait_event: string | null }>(
    `SELECT pid, client_port, wait_event FROM pg_stat_activity WHERE datname = $1 AND application_name = $2`,
    [db.name, SERVICE_APP],
  );
  const [batch, ...more] = backends.rows.filter((backend) => backend.wait_event === 'advisory');
  expect(batch && more).toEqual([]);
  const others = backends.rows.filter((backend) => backend !== batch);
  expect(proxy.endUnseen(others.map((backend) => backend.client_port))).toBe(idle + 1);
  await db.pool.query('SELECT pg_terminate_backend($1)', [batch?.pid]);
  const error = await run;
  await alice.release();
  return { error, after: await stored(db) };
}

describe('a run whose failure is written on a pooled connection PostgreSQL ended unseen (a restart under load)', () => {
  for (const idle of [1, 2]) {
    it(`records the run failed as the database unavailable, on a new connection (${idle} such idle connection(s))`, async () => {
      const { error, after } = await failRunWithIdleEndedUnseen(idle);

      expect(error).toMatchObject({
        message: expect.stringContaining('terminating connection due to administrator command'),
      });
      expect(after.jobs).toBe(0);
      expect(after.runs).toEqual([
        expect.objectContaining({ outcome: 'success' }),
        expect.objectContaining({
          outcome: 'failed',
          error: 'the database is unavailable: terminating connection due to administrator command',
        }),
      ]);
    });
  }
});

describe('a run that succeeded whose end is written on pooled connections PostgreSQL ended unseen (a restart)', () => {
  it('is recorded a success on a new connection, not thrown and left running with its batch committed', async () => {
    const db = await createTestDatabase();
    databases.push(db);
    const target = new URL(db.url);
    const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
    proxies.push(proxy);
    const viaProxy = new URL(db.url);
    viaProxy.host = `127.0.0.1:${proxy.port}`;
    viaProxy.searchParams.set('application_name', SERVICE_APP);
    const logger = pino({ level: 'silent' });
    const database = openDatabase(viaProxy.toString(), { poolMax: 4, queryTimeoutMs: 30_000, logger });
    opened.push(database);
    const file = createSacctFileSource({ path: CAPTURE, timeZone: 'UTC', defaultCluster: 'lab' });
    let ended = 0;
    const service = createIngestionService({
      db: database,
      sources: [
        {
          ...file,
          // Asked once the source answered and its batches committed, just before the run's end is
          // written: PostgreSQL restarts then, ending every connection of the service unseen by the pool.
          async findAccessWarning() {
            const { rows } = await db.pool.query<{ client_port: number }>(
              'SELECT client_port FROM pg_stat_activity WHERE datname = $1 AND application_name = $2',
              [db.name, SERVICE_APP],
            );
            ended = proxy.endUnseen(rows.map((row) => row.client_port));
            return null;
          },
        },
      ],
      unconfigured: {},
      logger,
      metrics: createMetrics(),
      overlapSec: 900,
      initialLookbackSec: 86_400,
    });
    // The pool keeps idle connections besides the run's lock's.
    await Promise.all(Array.from({ length: 4 }, () => database.pool.query('SELECT pg_sleep(0.05)')));

    const result = await service.runOnce({
      trigger: 'schedule',
      window: { start: new Date('2026-11-01T00:00:00Z'), end: new Date('2026-12-01T00:00:00Z') },
    });

    // The idle ones and the lock's: the run's end was written past the idle ones, on a new connection.
    expect(ended).toBe(4);
    expect(result).toMatchObject({ status: 'finished', run: { outcome: 'success', inserted: CAPTURED_JOBS } });
    const after = await stored(db);
    expect(after.jobs).toBe(CAPTURED_JOBS);
    expect(after.runs).toEqual([expect.objectContaining({ outcome: 'success', error: null })]);
  });
});

/**
 * A TCP relay to PostgreSQL that can be closed as a stopped server's port is: connections cut, new
 * ones refused (ECONNREFUSED), then opened again on the same port.
 */
async function startRelay(to: { host: string; port: number }, port = 0) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(to.port, to.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      const closed = new Promise((resolve) => server.close(resolve));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

describe('a scheduled run whose database stops answering mid-write (its port closed)', () => {
  // Its process lives on and knows why the run failed: whichever of its next run and its next look at
  // /admin/ingestion comes first records the run so, where either said its process had stopped.
  it.each([
    ['the next run', false],
    ['a look at /admin/ingestion before it', true],
  ])(
    'fails as the database unavailable, no source failure; the run is not recorded, and %s records why',
    async (_by, looksFirst) => {
      const db = await createTestDatabase();
      databases.push(db);
      const target = new URL(db.url);
      let relay = await startRelay({ host: target.hostname, port: Number(target.port || 5432) });
      const viaRelay = new URL(db.url);
      viaRelay.host = `127.0.0.1:${relay.port}`;
      const under = serviceOver(viaRelay.toString());
      await completeRunBefore(db, under.service);
      const alice = await holdAlicesJobs(db);
      const stop = startIngestionScheduler({
        service: under.service,
        intervalSec: 3600,
        logger: under.logger,
        initialDelayMs: 0,
      });
      await expect.poll(() => isBatchWaiting(db), { timeout: 30_000 }).toBe(true);
      await relay.close();
      const runLines = await runLinesOnce(under.lines);
      await stop();
      await alice.release();

      expect(runLines).toEqual([
        expect.objectContaining({
          level: 50,
          msg: UNAVAILABLE_LINE,
          err: expect.objectContaining({
            message: expect.stringMatching(/Connection terminated/),
            stack: expect.any(String),
          }),
        }),
      ]);
      expect(under.lines.some((line) => line.msg.startsWith('ingestion source'))).toBe(false);
      expect(await metricValue(under.metrics, 'slurm_ingest_source_failures_total', { source: 'file' })).toBe(0);
      expect(await metricValue(under.metrics, 'slurm_ingest_runs_total', { source: 'none', outcome: 'failed' })).toBe(
        1,
      );
      expect(await metricValue(under.metrics, 'slurm_ingest_runs_total', { source: 'file', outcome: 'success' })).toBe(
        1,
      );

      // Nothing could be written meanwhile: the run is left running (the next marks it abandoned), and
      // the batch's transaction, cut, stored nothing.
      await expect.poll(async () => (await stored(db)).runs.at(-1)?.outcome).toBe('running');
      await expect.poll(async () => isBatchWaiting(db)).toBe(false);
      const during = await stored(db);
      expect(during.jobs).toBe(0);

      relay = await startRelay({ host: target.hostname, port: Number(target.port || 5432) }, relay.port);
      try {
        if (looksFirst) {
          const overview = await getIngestionOverview(under.database, new Date());
          expect(overview.isRunning).toBe(false);
          expect(overview.runs.map((run) => run.outcome)).toEqual(['failed', 'success']);
        }
        const next = await under.service.runOnce({ trigger: 'schedule' });
        expect(next).toMatchObject({ status: 'finished', run: { outcome: 'success', inserted: CAPTURED_JOBS } });
        expect(next.status === 'finished' && next.run.window.start).toEqual(during.runs[1].window_start);
        const after = await stored(db);
        expect(after.runs.map((run) => run.outcome)).toEqual(['success', 'failed', 'success']);
        // Its process lived on and knew why the run failed: the record says so, not that the process stopped.
        expect(after.runs[1]).toMatchObject({
          error: expect.stringMatching(/^the database is unavailable: Connection terminated/),
          source_notes: { counts: expect.stringMatching(/^cut short when its database connection was lost: /) },
        });
        expect(after.jobs).toBe(CAPTURED_JOBS);
      } finally {
        await opened.splice(0).reduce((closing, database) => closing.then(() => database.close()), Promise.resolve());
        await relay.close();
      }
    },
  );
});

describe('a scheduled run whose query the database refuses (a constraint the batch breaks)', () => {
  it('fails naming the SQLSTATE and the message, logs the error with its code and stack, and moves no window', async () => {
    const db = await createTestDatabase();
    databases.push(db);
    const under = serviceOver(db.url);
    await completeRunBefore(db, under.service);
    // Not a lost connection: PostgreSQL answers, and refuses the batch's insert (23514), as it would a
    // query with a bug in it.
    await db.pool.query(`ALTER TABLE slurm_jobs ADD CONSTRAINT no_alice CHECK ("user" <> 'alice')`);
    const stop = startIngestionScheduler({
      service: under.service,
      intervalSec: 3600,
      logger: under.logger,
      initialDelayMs: 0,
    });
    const runLines = await runLinesOnce(under.lines);
    await stop();

    const refusal = 'new row for relation "slurm_jobs" violates check constraint "no_alice"';
    expect(runLines).toEqual([
      expect.objectContaining({
        level: 50,
        msg: 'ingestion run failed: the database refused a query of the run (SQLSTATE 23514); the next interval tries again',
        err: expect.objectContaining({
          message: expect.stringContaining(refusal),
          code: '23514',
          stack: expect.any(String),
        }),
      }),
    ]);
    expect(under.lines.some((line) => line.msg.startsWith('ingestion source'))).toBe(false);
    expect(await metricValue(under.metrics, 'slurm_ingest_source_failures_total', { source: 'file' })).toBe(0);
    expect(await metricValue(under.metrics, 'slurm_ingest_runs_total', { source: 'none', outcome: 'failed' })).toBe(1);

    const after = await stored(db);
    expect(after.jobs).toBe(0);
    expect(after.runs).toEqual([
      expect.objectContaining({ outcome: 'success' }),
      expect.objectContaining({
        outcome: 'failed',
        error: `the database refused a query of the run (SQLSTATE 23514): ${refusal}`,
      }),
    ]);
    expect(JSON.stringify(after.runs[1].source_notes)).not.toContain('failed');

    // The window did not move: with the constraint gone, the next run reads it again from the same start.
    await db.pool.query('ALTER TABLE slurm_jobs DROP CONSTRAINT no_alice');
    const next = await under.service.runOnce({ trigger: 'schedule' });
    expect(next).toMatchObject({ status: 'finished', run: { outcome: 'success', inserted: CAPTURED_JOBS } });
    expect(next.status === 'finished' && next.run.window.start).toEqual(after.runs[1].window_start);
  });
});

describe('npm run ingest whose database connections PostgreSQL terminates mid-write', () => {
  it('says the database cannot be reached, exits 1, and records the day failed as the database unavailable', async () => {
    const db = await createTestDatabase();
    databases.push(db);
    const alice = await holdAlicesJobs(db);
    const withName = new URL(db.url);
    withName.searchParams.set('application_name', SERVICE_APP);
    const tool = spawnCollecting(
      process.execPath,
      [builtFile('src/cli/ingest.cli.ts'), '--from', '2026-11-23', '--to', '2026-11-23'],
      {
        cwd: PROJECT_ROOT,
        env: {
          DATABASE_URL: withName.toString(),
          APP_TZ: 'UTC',
          LOG_LEVEL: 'error',
          DEMO_SEED: 'false',
          FALLBACK_CSV: CAPTURE,
        },
      },
    );
    await expect.poll(() => isBatchWaiting(db), { timeout: 60_000 }).toBe(true);
    await db.pool.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2`,
      [db.name, SERVICE_APP],
    );
    const code = await tool.exited;
    await alice.release();

    expect({ code, stdout: tool.stdout(), stderr: tool.stderr() }).toEqual({
      code: 1,
      stdout: '',
      stderr: 'The database cannot be reached (DATABASE_URL): terminating connection due to administrator command\n',
    });
    const after = await stored(db);
    expect(after.jobs).toBe(0);
    expect(after.runs).toEqual([
      expect.objectContaining({
        outcome: 'failed',
        error: 'the database is unavailable: terminating connection due to administrator command',
      }),
    ]);
    expect(JSON.stringify(after.runs[0].source_notes)).not.toContain('failed');
  }, 120_000);
});

describe('npm run ingest whose query the database refuses (a constraint the batch breaks)', () => {
  it("prints the run's own words, the SQLSTATE and PostgreSQL's message, exits 1, and records the day failed so", async () => {
    const db = await createTestDatabase();
    databases.push(db);
    await db.pool.query(`ALTER TABLE slurm_jobs ADD CONSTRAINT no_alice CHECK ("user" <> 'alice')`);
    const tool = spawnCollecting(
      process.execPath,
      [builtFile('src/cli/ingest.cli.ts'), '--from', '2026-11-23', '--to', '2026-11-23'],
      {
        cwd: PROJECT_ROOT,
        env: { DATABASE_URL: db.url, APP_TZ: 'UTC', LOG_LEVEL: 'error', DEMO_SEED: 'false', FALLBACK_CSV: CAPTURE },
      },
    );
    const code = await tool.exited;

    // As the run's record says it: PostgreSQL's message alone read like any error of the tool's.
    const error =
      'the database refused a query of the run (SQLSTATE 23514): new row for relation "slurm_jobs" violates check constraint "no_alice"';
    expect({ code, stdout: tool.stdout(), stderr: tool.stderr() }).toEqual({
      code: 1,
      stdout: '',
      stderr: `${error}\n`,
    });
    const after = await stored(db);
    expect(after.jobs).toBe(0);
    expect(after.runs).toEqual([expect.objectContaining({ outcome: 'failed', error })]);
  }, 120_000);
});
