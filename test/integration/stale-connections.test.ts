import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../src/db/database.js';
import { retryOnStaleConnection } from '../../src/db/stale-connections.js';
import { isDatabaseUnavailable } from '../../src/shared/errors.js';
import { createLogger } from '../../src/shared/logger.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// retryOnStaleConnection (src/db/stale-connections.ts), the write that records how work ended after
// PostgreSQL dropped every connection: it passes the pool's idle connections PostgreSQL ended unseen,
// and stops at the database's own answer.

const POOL_MAX = 4;
const APP = 'stale_connections_test';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const opened: { database: Database; proxy: TcpProxy }[] = [];
afterEach(async () => {
  for (const { database, proxy } of opened.splice(0)) {
    await database.close({ graceMs: 1_000 });
    await proxy.close();
  }
});

/** A pool of POOL_MAX over a proxy to the test database, holding `idle` idle connections. */
async function poolWithIdle(idle: number) {
  const target = new URL(db.url);
  const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
  const url = new URL(db.url);
  url.host = `127.0.0.1:${proxy.port}`;
  url.searchParams.set('application_name', APP);
  const database = openDatabase(url.toString(), {
    poolMax: POOL_MAX,
    queryTimeoutMs: 10_000,
    logger: createLogger('silent'),
  });
  opened.push({ database, proxy });
  await Promise.all(Array.from({ length: idle }, () => database.pool.query('SELECT pg_sleep(0.05)')));
  expect(database.pool.idleCount).toBe(idle);
  return { database, proxy };
}

/** Ends PostgreSQL's side of every connection of the pool, unseen by it (a restart under load, a failover). */
async function endAllUnseen(proxy: TcpProxy) {
  const { rows } = await db.pool.query<{ client_port: number }>(
    'SELECT client_port FROM pg_stat_activity WHERE datname = $1 AND application_name = $2',
    [db.name, APP],
  );
  return proxy.endUnseen(rows.map((row) => row.client_port));
}

describe('a write after PostgreSQL dropped every connection', () => {
  it('passes every idle connection PostgreSQL ended unseen and is written on a new one', async () => {
    const { database, proxy } = await poolWithIdle(POOL_MAX);
    expect(await endAllUnseen(proxy)).toBe(POOL_MAX);
    let attempts = 0;
    const written = await retryOnStaleConnection(database.pool, async () => {
      attempts += 1;
      return (await database.prisma.$queryRaw<{ one: number }[]>`SELECT 1 AS one`)[0]?.one;
    });
    expect({ written, attempts }).toEqual({ written: 1, attempts: POOL_MAX + 1 });
  });

  it('is tried once when the pool had no idle connection: a database still down stays so', async () => {
    const { database, proxy } = await poolWithIdle(2);
    proxy.cut();
    await expect.poll(() => database.pool.idleCount).toBe(0);
    let attempts = 0;
    const failed = await retryOnStaleConnection(database.pool, () => {
      attempts += 1;
      return database.pool.query('SELECT 1');
    }).catch((error: unknown) => error);
    expect(isDatabaseUnavailable(failed)).toBe(true);
    expect(attempts).toBe(1);
  });

  it('is tried once when the database answers with a refusal', async () => {
    const { database } = await poolWithIdle(2);
    let attempts = 0;
    await expect(
      retryOnStaleConnection(database.pool, () => {
        attempts += 1;
        return database.pool.query('SELECT 1 / 0');
      }),
    ).rejects.toThrow('division by zero');
    expect(attempts).toBe(1);
  });
});
