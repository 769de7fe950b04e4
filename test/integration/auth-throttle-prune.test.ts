import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import {
  createThrottlePruner,
  PRUNE_BATCH_SIZE,
  pruneExpiredThrottles,
} from '../../src/modules/auth/auth-throttle.pruner.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { buildUser } from '../support/factories.js';
import { prunesWaitingOnLockedTable, sessionsWaitingForLocks } from '../support/lock-waits.js';
import { postLogin } from '../support/sign-in.js';
import { spawnServer } from '../support/spawn-server.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { buildTestApp, buildTestConfig, metricValue } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());
beforeEach(async () => {
  await db.pool.query('DELETE FROM auth_throttle; DELETE FROM auth_network_throttle');
});

interface LogLine {
  level: number;
  msg: string;
  err?: { message: string };
  [key: string]: unknown;
}

/** A logger whose lines a test reads back. */
function capturingLogger() {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)) as LogLine);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

// The defaults: a pair's window 60 s (lock 300 s), a username's and a network's 900 s (900 s).
const lockout = () => buildTestConfig(db.url).auth;

let clock: Date;
beforeEach(() => {
  clock = new Date('2026-06-01T08:00:00Z');
});
const secondsAgo = (seconds: number) => new Date(clock.getTime() - seconds * 1000);

async function throttleRows() {
  const rows = await db.prisma.authThrottle.findMany({ select: { username: true, ip: true } });
  return rows.map((row) => `${row.username}@${row.ip}`).sort();
}

async function networkRows() {
  const rows = await db.prisma.authNetworkThrottle.findMany({ select: { network: true } });
  return rows.map((row) => row.network).sort();
}

describe('pruning the sign-in throttle tables', () => {
  it('deletes the rows of both tables whose window and lock have both ended, and counts their locks as ended', async () => {
    await db.prisma.authThrottle.createMany({
      data: [
        // A pair's window (60 s) ended more than a minute ago.
        { username: 'sprayed', ip: '192.0.2.1', windowStart: secondsAgo(60 + 61), failureCount: 1 },
        // A username's window (900 s) ended, on its own rule.
        { username: 'sprayed', ip: '*', windowStart: secondsAgo(900 + 61), failureCount: 1 },
        // A lock that ended, long after its window.
        {
          username: 'was-locked',
          ip: '192.0.2.2',
          windowStart: secondsAgo(3600),
          failureCount: 5,
          lockedUntil: secondsAgo(61),
        },
      ],
    });
    await db.prisma.authNetworkThrottle.createMany({
      data: [
        { network: '192.0.2.1', windowStart: secondsAgo(900 + 61), failureCount: 1 },
        {
          network: '2001:db8:1:2::/64',
          windowStart: secondsAgo(7200),
          failureCount: 100,
          lockedUntil: secondsAgo(600),
        },
      ],
    });
    const metrics = createMetrics();
    const { logger, lines } = capturingLogger();
    const pruner = createThrottlePruner({
      pool: db.pool,
      lockout: lockout(),
      metrics,
      logger,
      now: () => clock,
      intervalSec: 600,
    });

    await pruner.runOnce();

    expect(await throttleRows()).toEqual([]);
    expect(await networkRows()).toEqual([]);
    expect(await metricValue(metrics, 'auth_lockout_end_total')).toBe(2);
    expect(lines).toContainEqual(
      expect.objectContaining({ msg: 'pruned expired sign-in throttle rows', throttleRows: 3, networkRows: 2 }),
    );
  });

  it('keeps every row that still counts toward a lock or still locks, each by its own rule', async () => {
    await db.prisma.authThrottle.createMany({
      data: [
        { username: 'counting', ip: '192.0.2.10', windowStart: secondsAgo(30), failureCount: 4 },
        // Its window ended less than a minute ago: another instance's clock may not be there yet.
        { username: 'just-ended', ip: '192.0.2.11', windowStart: secondsAgo(60 + 30), failureCount: 4 },
        // Older than a pair's window, within a username's (AUTH_USER_WINDOW_SEC).
        { username: 'counting', ip: '*', windowStart: secondsAgo(600), failureCount: 19 },
        // A window long over, a lock still running.
        {
          username: 'locked',
          ip: '192.0.2.12',
          windowStart: secondsAgo(3600),
          failureCount: 5,
          lockedUntil: secondsAgo(-120),
        },
        { username: 'locked', ip: '*', windowStart: secondsAgo(3600), failureCount: 20, lockedUntil: secondsAgo(-1) },
        // A lock that ended less than a minute ago.
        {
          username: 'lock-just-ended',
          ip: '192.0.2.13',
          windowStart: secondsAgo(3600),
          failureCount: 5,
          lockedUntil: secondsAgo(30),
        },
        { username: 'expired', ip: '192.0.2.14', windowStart: secondsAgo(200), failureCount: 1 },
      ],
    });
    await db.prisma.authNetworkThrottle.createMany({
      data: [
        // Older than a pair's window, within a network's (AUTH_ADDRESS_WINDOW_SEC).
        { network: '198.51.100.1', windowStart: secondsAgo(600), failureCount: 99 },
        { network: '198.51.100.2', windowStart: secondsAgo(3600), failureCount: 100, lockedUntil: secondsAgo(-300) },
        { network: '198.51.100.3', windowStart: secondsAgo(2000), failureCount: 3 },
      ],
    });

    const result = await pruneExpiredThrottles(db.pool, lockout(), clock);

    expect(result).toEqual({ throttleRows: 1, networkRows: 1, endedLocks: 0 });
    expect(await throttleRows()).toEqual([
      'counting@*',
      'counting@192.0.2.10',
      'just-ended@192.0.2.11',
      'lock-just-ended@192.0.2.13',
      'locked@*',
      'locked@192.0.2.12',
    ]);
    expect(await networkRows()).toEqual(['198.51.100.1', '198.51.100.2']);
  });

  it('leaves a locked pair, username and network locked, and lets them start afresh once their locks end', async () => {
    const env = {
      TRUST_PROXY: 'loopback',
      AUTH_MAX_FAILS: '2',
      AUTH_USER_MAX_FAILS: '3',
      AUTH_USER_WINDOW_SEC: '60',
      AUTH_ADDRESS_MAX_FAILS: '3',
      AUTH_ADDRESS_WINDOW_SEC: '60',
    };
    const app = buildTestApp(db, { now: () => clock, env });
    const rules = buildTestConfig(db.url, env).auth;
    const pairLocked = await buildUser(db.prisma, { username: 'pair-locked' });
    const userLocked = await buildUser(db.prisma, { username: 'user-locked' });
    const behindSpray = await buildUser(db.prisma, { username: 'behind-spray' });
    for (let attempt = 0; attempt < 2; attempt++) {
      await postLogin(app, 'pair-locked', 'guess', { ip: '198.51.100.21' });
    }
    for (const ip of ['192.0.2.31', '192.0.2.32', '192.0.2.33']) await postLogin(app, 'user-locked', 'guess', { ip });
    for (const username of ['spray-1', 'spray-2', 'spray-3']) {
      await postLogin(app, username, 'guess', { ip: '203.0.113.30' });
    }

    // Every window (60 s) is over; the locks (300 s, 900 s, 900 s) are not.
    clock = new Date(clock.getTime() + 200_000);
    const during = await pruneExpiredThrottles(db.pool, rules, clock);
    const pair = await postLogin(app, 'pair-locked', pairLocked.password, { ip: '198.51.100.21' });
    expect(pair.response.text).toContain('Too many failed sign-ins. Try again in 1 min 40 s.');
    const user = await postLogin(app, 'user-locked', userLocked.password, { ip: '192.0.2.34' });
    expect(user.response.text).toContain('Too many failed sign-ins. Try again in 11 min 40 s.');
    const network = await postLogin(app, 'behind-spray', behindSpray.password, { ip: '203.0.113.30' });
    expect(network.response.text).toContain('Too many failed sign-ins from your network. Try again in 11 min 40 s.');
    expect(during.endedLocks).toBe(0);

    clock = new Date(clock.getTime() + 700_000 + 61_000);
    const after = await pruneExpiredThrottles(db.pool, rules, clock);
    expect(after.endedLocks).toBe(3);
    expect(await throttleRows()).toEqual([]);
    expect(await networkRows()).toEqual([]);
    for (const [who, ip] of [
      [pairLocked, '198.51.100.21'],
      [userLocked, '192.0.2.34'],
      [behindSpray, '203.0.113.30'],
    ] as const) {
      expect((await postLogin(app, who.username, who.password, { ip })).response.status).toBe(302);
    }
  });

  it('deletes a backlog larger than a batch, no statement deleting more than a batch', async () => {
    await db.pool.query(
      `INSERT INTO auth_throttle (username, ip, window_start, failure_count)
       SELECT 'bot' || g, '192.0.2.' || (g % 250), $1, 1 FROM generate_series(1, 2500) AS g`,
      [secondsAgo(3600)],
    );
    await db.pool.query(
      `INSERT INTO auth_network_throttle (network, window_start, failure_count)
       SELECT '10.0.' || (g / 250) || '.' || (g % 250), $1, 1 FROM generate_series(1, 1200) AS g`,
      [secondsAgo(3600)],
    );
    await db.prisma.authThrottle.create({
      data: { username: 'live', ip: '192.0.2.1', windowStart: clock, failureCount: 1 },
    });
    // How many rows each DELETE statement removed, in order.
    await db.pool.query(`
      CREATE TABLE deletes_per_statement (seq serial, tbl text, deleted int);
      CREATE FUNCTION record_deletes() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO deletes_per_statement (tbl, deleted) SELECT TG_TABLE_NAME, count(*) FROM old_rows;
          RETURN NULL;
        END $$;
      CREATE TRIGGER record_deletes AFTER DELETE ON auth_throttle
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION record_deletes();
      CREATE TRIGGER record_deletes AFTER DELETE ON auth_network_throttle
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION record_deletes();`);
    try {
      const result = await pruneExpiredThrottles(db.pool, lockout(), clock, { batchSize: 1000 });

      expect(result).toEqual({ throttleRows: 2500, networkRows: 1200, endedLocks: 0 });
      expect(await throttleRows()).toEqual(['live@192.0.2.1']);
      expect(await networkRows()).toEqual([]);
      const { rows } = await db.pool.query<{ tbl: string; deleted: number }>(
        'SELECT tbl, deleted FROM deletes_per_statement ORDER BY seq',
      );
      expect(rows.filter((row) => row.tbl === 'auth_throttle').map((row) => row.deleted)).toEqual([1000, 1000, 500]);
      expect(rows.filter((row) => row.tbl === 'auth_network_throttle').map((row) => row.deleted)).toEqual([1000, 200]);
    } finally {
      await db.pool.query(`
        DROP TRIGGER record_deletes ON auth_throttle;
        DROP TRIGGER record_deletes ON auth_network_throttle;
        DROP FUNCTION record_deletes();
        DROP TABLE deletes_per_statement;`);
    }
  });

  it('batches by default, and a stop ends a prune after its current batch', async () => {
    const backlog = PRUNE_BATCH_SIZE + 500;
    await db.pool.query(
      `INSERT INTO auth_throttle (username, ip, window_start, failure_count)
       SELECT 'bot' || g, '192.0.2.1', $1, 1 FROM generate_series(1, $2::int) AS g`,
      [secondsAgo(3600), backlog],
    );
    const { logger } = capturingLogger();
    const pruner = createThrottlePruner({
      pool: db.pool,
      lockout: lockout(),
      metrics: createMetrics(),
      logger,
      now: () => clock,
      intervalSec: 600,
    });
    const blocker = await db.pool.connect();
    try {
      await blocker.query('BEGIN; LOCK TABLE auth_throttle IN SHARE MODE');
      const running = pruner.runOnce();
      expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
      const stopped = pruner.stop();
      await blocker.query('COMMIT');
      await stopped;
      await running;
    } finally {
      blocker.release();
    }
    expect(await db.prisma.authThrottle.count()).toBe(backlog - PRUNE_BATCH_SIZE);

    await pruner.runOnce();
    expect(await db.prisma.authThrottle.count()).toBe(backlog - PRUNE_BATCH_SIZE);
  });

  it('logs a warning and resolves when the database cannot be reached, and prunes when it is back', async () => {
    await db.prisma.authThrottle.create({
      data: { username: 'expired', ip: '192.0.2.1', windowStart: secondsAgo(3600), failureCount: 1 },
    });
    const target = new URL(db.url);
    const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
    const viaProxy = new URL(db.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const { logger, lines } = capturingLogger();
    const database = openDatabase(viaProxy.toString(), { poolMax: 1, queryTimeoutMs: 30_000, logger });
    const pruner = createThrottlePruner({
      pool: database.pool,
      lockout: lockout(),
      metrics: createMetrics(),
      logger,
      now: () => clock,
      intervalSec: 600,
    });
    try {
      proxy.cut();
      await expect(pruner.runOnce()).resolves.toBeUndefined();
      const warning = lines.find((line) => line.msg === 'could not prune expired sign-in throttle rows');
      expect(warning?.level).toBe(40);
      expect(warning?.err?.message).toEqual(expect.any(String));
      expect(await throttleRows()).toEqual(['expired@192.0.2.1']);

      proxy.restore();
      await pruner.runOnce();
      expect(await throttleRows()).toEqual([]);
    } finally {
      await pruner.stop();
      await database.close();
      await proxy.close();
    }
  });
});

describe('the server', () => {
  // Expired rows, and a lock running until 2099 that must stay.
  async function seedRows() {
    await db.prisma.authThrottle.createMany({
      data: [
        { username: 'old', ip: '192.0.2.1', windowStart: new Date('2020-01-01T00:00:00Z'), failureCount: 1 },
        { username: 'old', ip: '*', windowStart: new Date('2020-01-01T00:00:00Z'), failureCount: 1 },
        {
          username: 'locked',
          ip: '*',
          windowStart: new Date('2020-01-01T00:00:00Z'),
          failureCount: 20,
          lockedUntil: new Date('2099-01-01T00:00:00Z'),
        },
      ],
    });
    await db.prisma.authNetworkThrottle.create({
      data: { network: '192.0.2.1', windowStart: new Date('2020-01-01T00:00:00Z'), failureCount: 1 },
    });
  }

  it.each([1, 2])(
    'with %i worker(s) prunes on its timer from one process only, and exits 0 on SIGTERM',
    async (workers) => {
      await seedRows();
      const server = await spawnServer({
        DATABASE_URL: db.url,
        PORT: String(await findFreePort()),
        WEB_CONCURRENCY: String(workers),
        DEMO_SEED: '0',
        INGEST_ENABLED: '0',
        LOG_LEVEL: 'warn',
        AUTH_PRUNE_INTERVAL_SEC: '1',
      });
      try {
        for (let poll = 0; poll < 300 && (await networkRows()).length > 0; poll++) {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        expect(await networkRows(), server.output()).toEqual([]);
        for (let poll = 0; poll < 100 && (await throttleRows()).length > 1; poll++) {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        expect(await throttleRows()).toEqual(['locked@*']);

        // While a prune waits, the timer's next ticks (every second) start no other: in a
        // cluster, only the worker the primary named prunes at all.
        expect(await prunesWaitingOnLockedTable(db.pool, 'auth_network_throttle')).toBe(1);
      } finally {
        expect(await server.stop(), server.output()).toBe(0);
      }
    },
    90_000,
  );
});
