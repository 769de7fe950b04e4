import { Writable } from 'node:stream';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareDatabase } from '../../src/bootstrap.js';
import { describeConnectionOverflow } from '../../src/db/connection-budget.js';
import { buildUser } from '../support/factories.js';
import { buildTestConfig } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let maxConnections: number;
/** superuser_reserved_connections plus reserved_connections (PostgreSQL 16): the slots kept from a plain role. */
let keptFromPlainRole: number;
let isSuperuser: boolean;
/** A role without SUPERUSER (nor pg_use_reserved_connections), made for these tests: roles are the server's. */
const PLAIN_ROLE = `budget_plain_${process.pid}_${Date.now()}`;
/** Its password: the embedded PostgreSQL `npm test` starts without DATABASE_URL asks every role for one. */
const PLAIN_ROLE_PASSWORD = `pw-${process.pid}-${Date.now()}`;
beforeAll(async () => {
  db = await createTestDatabase();
  // An admin, so that the start's only warning is the one under test.
  await buildUser(db.prisma, { username: 'ops', role: 'admin' });
  const { rows } = await db.pool.query<{ max: number; reserved: number; superuser: boolean }>(
    `SELECT current_setting('max_connections')::int AS max,
            current_setting('superuser_reserved_connections')::int
              + coalesce(nullif(current_setting('reserved_connections', true), ''), '0')::int AS reserved,
            (SELECT rolsuper FROM pg_roles WHERE rolname = session_user) AS superuser`,
  );
  maxConnections = rows[0]?.max ?? 0;
  keptFromPlainRole = rows[0]?.reserved ?? 0;
  isSuperuser = rows[0]?.superuser ?? false;
  await db.pool.query(`CREATE ROLE ${PLAIN_ROLE} LOGIN PASSWORD '${PLAIN_ROLE_PASSWORD}'`);
});
afterAll(async () => {
  await db?.pool.query(`DROP ROLE IF EXISTS ${PLAIN_ROLE}`);
  await db?.drop();
});

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

function overflowWarning(workers: number, poolMax: number, available: number, limit: string): string {
  return `WEB_CONCURRENCY x DB_POOL_MAX (${workers} x ${poolMax}) is ${workers * poolMax} database connections for this instance alone, more than the ${available} PostgreSQL lets the app's role open (${limit}): under load it refuses the rest ("sorry, too many clients already") and the requests that need them fail with 503 while /readyz reads not ready. Lower WEB_CONCURRENCY or DB_POOL_MAX, raise max_connections, or put PgBouncer in front (docs/operations.md, "Tuning knobs")`;
}

describe('WEB_CONCURRENCY x DB_POOL_MAX against PostgreSQL max_connections, for a superuser role', () => {
  it('is a warning at start-up when one instance alone may open more connections than max_connections', async (context) => {
    // The suite's role, as `npm test` and the machine's PostgreSQL have it; a CREATEDB role is another case.
    if (!isSuperuser) context.skip();
    // README's production recipe said WEB_CONCURRENCY=$(nproc): 16 cores x 10 connections is 160, past the
    // default max_connections of 100. PostgreSQL then refused connections only under load, as "sorry, too
    // many clients already", and the requests answered 503 "database unavailable" with nothing at start to
    // say why.
    const workers = 64;
    const poolMax = Math.ceil(maxConnections / workers) + 1;
    const warnings = await startUpWarnings({ WEB_CONCURRENCY: String(workers), DB_POOL_MAX: String(poolMax) });
    expect(warnings).toEqual([overflowWarning(workers, poolMax, maxConnections, `max_connections ${maxConnections}`)]);
  });

  it('says nothing when they fit in max_connections, superuser_reserved_connections included', async (context) => {
    if (!isSuperuser) context.skip();
    // PostgreSQL keeps the reserved slots from every role but a superuser: for one, they were counted
    // as kept from it, and a pool that fits warned (100 x 1 against max_connections 100, 3 reserved).
    expect(keptFromPlainRole).toBeGreaterThan(0);
    expect(await startUpWarnings({ WEB_CONCURRENCY: '1', DB_POOL_MAX: String(maxConnections) })).toEqual([]);
  });

  it('says nothing when they fit', async () => {
    expect(await startUpWarnings({ WEB_CONCURRENCY: '2', DB_POOL_MAX: '10' })).toEqual([]);
  });
});

describe('WEB_CONCURRENCY x DB_POOL_MAX against PostgreSQL max_connections, for a role without SUPERUSER', () => {
  async function overflowForPlainRole(workers: number, poolMax: number) {
    const url = new URL(db.url);
    url.username = PLAIN_ROLE;
    url.password = PLAIN_ROLE_PASSWORD;
    const pool = new pg.Pool({ connectionString: url.toString(), max: 1 });
    try {
      return await describeConnectionOverflow(pool, { workers, poolMax });
    } finally {
      await pool.end();
    }
  }

  it('counts the slots PostgreSQL keeps in reserve from it', async () => {
    const available = maxConnections - keptFromPlainRole;
    expect(await overflowForPlainRole(1, available + 1)).toBe(
      overflowWarning(
        1,
        available + 1,
        available,
        `max_connections ${maxConnections}, ${keptFromPlainRole} of them kept in reserve`,
      ),
    );
    expect(await overflowForPlainRole(1, available)).toBeUndefined();
  });
});
