import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareDatabase } from '../../src/bootstrap.js';
import { buildUser } from '../support/factories.js';
import { buildTestConfig } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let maxConnections: number;
let reservedConnections: number;
beforeAll(async () => {
  db = await createTestDatabase();
  // An admin, so that the start's only warning is the one under test.
  await buildUser(db.prisma, { username: 'ops', role: 'admin' });
  const { rows } = await db.pool.query<{ max: number; reserved: number }>(
    `SELECT current_setting('max_connections')::int AS max,
            current_setting('superuser_reserved_connections')::int
              + coalesce(nullif(current_setting('reserved_connections', true), ''), '0')::int AS reserved`,
  );
  maxConnections = rows[0]?.max ?? 0;
  reservedConnections = rows[0]?.reserved ?? 0;
});
afterAll(() => db?.drop());

async function startUpWarnings(env: Record<string, string>): Promise<string[]> {
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino(
    { level: 'warn' },
    new Writable({
      write(chunk, _encoding, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    }),
  );
  await (await prepareDatabase(buildTestConfig(db.url, env), logger)).stop();
  return lines.filter((line) => line.level === 40).map((line) => line.msg);
}

describe('WEB_CONCURRENCY x DB_POOL_MAX against PostgreSQL max_connections', () => {
  it('is a warning at start-up when one instance alone may open more connections than PostgreSQL allows', async () => {
    // README's production recipe said WEB_CONCURRENCY=$(nproc): 16 cores x 10 connections is 160, past the
    // default max_connections of 100. PostgreSQL then refused connections only under load, as "sorry, too
    // many clients already", and the requests answered 503 "database unavailable" with nothing at start to
    // say why.
    const workers = 64;
    const poolMax = Math.ceil(maxConnections / workers) + 1;
    const needed = workers * poolMax;
    const warnings = await startUpWarnings({ WEB_CONCURRENCY: String(workers), DB_POOL_MAX: String(poolMax) });
    expect(warnings).toEqual([
      `WEB_CONCURRENCY x DB_POOL_MAX (${workers} x ${poolMax}) is ${needed} database connections for this instance alone, more than the ${maxConnections - reservedConnections} PostgreSQL lets the app's role open (max_connections ${maxConnections}, ${reservedConnections} of them kept in reserve): under load it refuses the rest ("sorry, too many clients already") and the requests that need them fail with 503 while /readyz reads not ready. Lower WEB_CONCURRENCY or DB_POOL_MAX, raise max_connections, or put PgBouncer in front (docs/operations.md, "Tuning knobs")`,
    ]);
  });

  it('says nothing when they fit', async () => {
    expect(await startUpWarnings({ WEB_CONCURRENCY: '2', DB_POOL_MAX: '10' })).toEqual([]);
  });
});
