import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ADVISORY_LOCK_CLASSES } from '../../src/db/advisory-locks.js';
import { type Database, openDatabase } from '../../src/db/database.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { createRatesService } from '../../src/modules/pricing/rates.service.js';
import { createReceiptsService } from '../../src/modules/receipts/receipts.service.js';
import { type BackgroundWork, createBackgroundWork } from '../../src/shared/background-work.js';
import { createLogger } from '../../src/shared/logger.js';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { buildTestConfig } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A month-end run that PostgreSQL failed by ending every connection (a restart) records itself failed,
// saying why. Its end was written once, and when the pool handed that write a connection PostgreSQL had
// ended unseen (a restart under load, a failover), it failed and was only logged: the row read running,
// and then "Interrupted: the process running it stopped before it finished", which it had not.
// The write of a run abandoned by the shutdown (abandonMonthEnd) met the same connections and left it so too.

const NOW = new Date('2025-09-20T05:00:00Z');
const ADMIN = { actor: 'admin', ip: '127.0.0.1', userAgent: 'test' };
const POOL_MAX = 4;
/** The application_name of the service's connections: the ones PostgreSQL ends. */
const APP = 'month_end_database_lost';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
});
afterAll(() => db?.drop());

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The receipts service over a proxy to the test database, with a pool of POOL_MAX. */
async function servicesOverProxy() {
  const target = new URL(db.url);
  const proxy: TcpProxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
  cleanups.push(() => proxy.close());
  const url = new URL(db.url);
  url.host = `127.0.0.1:${proxy.port}`;
  url.searchParams.set('application_name', APP);
  const database: Database = openDatabase(url.toString(), {
    poolMax: POOL_MAX,
    queryTimeoutMs: 30_000,
    logger: createLogger('silent'),
  });
  cleanups.push(() => database.close({ graceMs: 1_000 }));
  const config = buildTestConfig(db.url, { APP_TZ: 'UTC' });
  const now = () => NOW;
  const rates = createRatesService({ db: database, config, now });
  const backgroundWork: BackgroundWork = createBackgroundWork();
  const receipts = createReceiptsService({
    db: database,
    config,
    rates,
    metrics: createMetrics(),
    now,
    backgroundWork,
  });
  return { receipts, database, proxy, backgroundWork };
}

/** Holds alice's job lock (as a receipt being made for her by hand does): the run's receipt for her waits for it. */
async function holdAlicesJobs() {
  const holder = new pg.Client({ connectionString: db.url });
  await holder.connect();
  cleanups.push(() => holder.end().catch(() => undefined));
  await holder.query(`SELECT pg_advisory_lock($1, hashtext('alice'))`, [ADVISORY_LOCK_CLASSES.userJobs]);
}

/** The service's connections PostgreSQL knows, and which of them waits on an advisory lock. */
async function serviceBackends() {
  const { rows } = await db.pool.query<{ pid: number; client_port: number; wait_event: string | null }>(
    'SELECT pid, client_port, wait_event FROM pg_stat_activity WHERE datname = $1 AND application_name = $2',
    [db.name, APP],
  );
  return rows;
}

describe('a month-end run whose connections PostgreSQL ends mid-run, some unseen by the pool', () => {
  it('is recorded failed with the database error, not left running (then read as interrupted)', async () => {
    await buildJobs(db, [{ user: 'alice', end: '2025-08-20T00:00:00Z' }]);
    const { receipts, database, proxy } = await servicesOverProxy();
    // The pool keeps idle connections besides the two the run holds (its lock's, the receipt's).
    await Promise.all(Array.from({ length: POOL_MAX }, () => database.pool.query('SELECT pg_sleep(0.05)')));
    await holdAlicesJobs();
    const run = receipts.runMonthEnd(ADMIN, '2025-08-31').catch((error: unknown) => error);
    await expect
      .poll(async () => (await serviceBackends()).filter((backend) => backend.wait_event === 'advisory').length, {
        timeout: 30_000,
      })
      .toBe(1);
    expect(database.pool.idleCount).toBe(POOL_MAX - 2);
    const backends = await serviceBackends();
    const receipt = backends.find((backend) => backend.wait_event === 'advisory');
    const others = backends.filter((backend) => backend !== receipt);
    // As a restart ends them all: the idle ones and the run's lock's unseen, the receipt's with 57P01.
    expect(proxy.endUnseen(others.map((backend) => backend.client_port))).toBe(others.length);
    await db.pool.query('SELECT pg_terminate_backend($1)', [receipt?.pid]);

    expect(await run).toMatchObject({
      message: expect.stringContaining('terminating connection due to administrator command'),
    });
    const row = await db.prisma.monthEndRun.findFirstOrThrow();
    expect(row).toMatchObject({ outcome: 'failed', usersTotal: 1, usersDone: 0, finishedAt: NOW });
    expect(row.error).toMatch(
      /^Stopped by an unexpected error after 0 of 1 users: .*terminating connection due to administrator command.*What it billed stays billed/,
    );
    expect(await db.prisma.receipt.count()).toBe(0);
  });
});

describe('a month-end run abandoned by a shutdown after PostgreSQL ended its connections unseen by the pool', () => {
  it('is recorded interrupted past the idle connections PostgreSQL ended, not left running', async () => {
    await buildJobs(db, [{ user: 'alice', end: '2025-08-20T00:00:00Z' }]);
    const { receipts, database, proxy, backgroundWork } = await servicesOverProxy();
    await Promise.all(Array.from({ length: POOL_MAX }, () => database.pool.query('SELECT pg_sleep(0.05)')));
    await holdAlicesJobs();
    const { runId, finished } = await receipts.startMonthEnd(ADMIN, '2025-08-31');
    await expect
      .poll(async () => (await serviceBackends()).filter((backend) => backend.wait_event === 'advisory').length, {
        timeout: 30_000,
      })
      .toBe(1);
    expect(database.pool.idleCount).toBe(POOL_MAX - 2);
    // A restart under load: PostgreSQL ends every connection, and the pool sees none of them end (the
    // run's receipt and lock wait on theirs for an answer that never comes).
    const backends = await serviceBackends();
    expect(proxy.endUnseen(backends.map((backend) => backend.client_port))).toBe(backends.length);

    // The shutdown stops waiting: the run's end is written as it is abandoned, on the idle connections first.
    expect(await backgroundWork.stop(100)).toEqual([`month-end run #${runId}`]);
    const row = await db.prisma.monthEndRun.findUniqueOrThrow({ where: { id: runId } });
    expect(row).toMatchObject({ outcome: 'interrupted', usersTotal: 1, usersDone: 0, finishedAt: NOW });
    expect(row.error).toMatch(
      /^Interrupted: the app was stopped during the run, after 0 of 1 users; the users still in flight when its shutdown timeout ran out were left unbilled\. What it billed stays billed/,
    );
    // As the shutdown does next: the run's connections closed, its receipt for alice fails and rolls back.
    database.closeConnectionsInUse();
    expect((await finished).result).toMatchObject({ runId, outcome: 'interrupted' });
    expect(await db.prisma.receipt.count()).toBe(0);
  });
});
