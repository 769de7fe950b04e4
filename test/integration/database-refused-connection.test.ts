import { Writable } from 'node:stream';
import pg from 'pg';
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { describeToolError } from '../../src/cli/run-tool.js';
import { type Database, openDatabase } from '../../src/db/database.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { isDatabaseUnavailable } from '../../src/shared/errors.js';
import { createLogger } from '../../src/shared/logger.js';
import { buildTestConfig } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// PostgreSQL refuses a connection for more than being down: a database that was dropped or is
// misspelt in DATABASE_URL (3D000), a role it does not know or a wrong password (class 28). An
// operator meets them after a restore under another name or a password rotated on one side only.
// They were "unhandled error"s with a stack and a 500 at every request, and every scheduled
// ingestion an "ingestion run crashed" error, while /readyz already said "database unavailable".

const opened: Database[] = [];
const databases: TestDatabase[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((database) => database.close()));
});
afterAll(async () => {
  await Promise.all(databases.splice(0).map((database) => database.drop()));
});

/** The app over `url`, with what it logs at warn and above. */
function appOver(url: string) {
  const logged: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'warn' },
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
  return { app: createApp({ config, db: database, logger, metrics: createMetrics() }), database, logged };
}

function withUser(url: string, user: string): string {
  const changed = new URL(url);
  changed.username = user;
  changed.password = 'not-a-password-of-this-role';
  return changed.toString();
}

/**
 * The error a raw query and a model query through Prisma, and one through the pool, meet on
 * `database`. The user tools make model queries, which Prisma words in its own terms: a role refused
 * was "User was denied access on the database `(not available)`", naming neither the role nor why.
 */
async function errorsOf(database: Database): Promise<unknown[]> {
  const errors: unknown[] = [];
  await database.prisma.$queryRaw`SELECT 1`.catch((error: unknown) => errors.push(error));
  await database.prisma.user.findFirst().catch((error: unknown) => errors.push(error));
  await database.pool.query('SELECT 1').catch((error: unknown) => errors.push(error));
  expect(errors).toHaveLength(3);
  return errors;
}

async function expectServedAsUnavailable(app: ReturnType<typeof appOver>, cause: RegExp) {
  const response = await request(app.app).get('/formula').set('Accept', 'application/json');
  expect(response.status).toBe(503);
  expect(response.headers['retry-after']).toBe('5');
  expect(response.body).toMatchObject({ error: 'The database is unavailable right now. Try again in a moment.' });
  const line = app.logged.find((entry) => entry.route === '/formula');
  expect(line).toMatchObject({ level: 50, msg: 'database unavailable' });
  expect(JSON.stringify(line?.err)).toMatch(cause);
  expect(app.logged.map((entry) => entry.msg)).not.toContain('unhandled error');
  // /readyz said so already, and still does.
  expect((await request(app.app).get('/readyz').expect(503)).body).toEqual({
    status: 'error',
    error: 'database unavailable',
  });
}

describe('a database that was dropped under a running app', () => {
  it('is unavailable (503, "database unavailable"), as /readyz says, not an unhandled error', async () => {
    const doomed = await createTestDatabase();
    databases.push(doomed);
    const app = appOver(doomed.url);
    await request(app.app).get('/readyz').expect(200);

    await doomed.drop();

    for (const error of await errorsOf(app.database)) {
      expect(isDatabaseUnavailable(error)).toBe(true);
      expect(describeToolError(error as Error)).toMatch(
        /^The database server refused DATABASE_URL: database "hb_test_\w+" does not exist$/,
      );
    }
    await expectServedAsUnavailable(app, /does not exist/);
  });
});

describe('a role PostgreSQL refuses', () => {
  it('is unavailable (503, "database unavailable"), as /readyz says, not an unhandled error', async () => {
    const db = await createTestDatabase();
    databases.push(db);
    // Trust authentication says the role does not exist (28000); password authentication that the
    // password is wrong (28P01). Both are class 28, invalid authorization.
    const url = withUser(db.url, 'hb_no_such_role');
    const app = appOver(url);

    for (const error of await errorsOf(app.database)) {
      expect(isDatabaseUnavailable(error)).toBe(true);
      expect(describeToolError(error as Error)).toMatch(
        /^The database server refused DATABASE_URL: (role "hb_no_such_role" does not exist|password authentication failed)/,
      );
    }
    await expectServedAsUnavailable(app, /hb_no_such_role/);
    expect(JSON.stringify(app.logged)).not.toContain('not-a-password-of-this-role');
  });
});

/** Runs `sql` as the suite's administrator (the role that created the test databases). */
async function asAdmin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: inject('adminUrl') });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

describe('a database that takes no connections (ALLOW_CONNECTIONS false, as for maintenance)', () => {
  // PostgreSQL refuses the connection with 55000, "database … is not currently accepting
  // connections": a DBA's maintenance or a restore that closes the database first. Each request
  // was an "unhandled error" with a stack and a 500, while /readyz already said "database unavailable".
  it('is unavailable (503, "database unavailable"), as /readyz says, not an unhandled error', async () => {
    const closed = await createTestDatabase();
    databases.push(closed);
    const app = appOver(closed.url);
    await request(app.app).get('/readyz').expect(200);

    await asAdmin(`ALTER DATABASE ${closed.name} ALLOW_CONNECTIONS false`);
    await asAdmin(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${closed.name}'`);
    try {
      for (const error of await errorsOf(app.database)) {
        expect(isDatabaseUnavailable(error)).toBe(true);
        expect(describeToolError(error as Error)).toMatch(
          /^The database cannot be reached \(DATABASE_URL\): .*is not currently accepting connections/,
        );
      }
      await expectServedAsUnavailable(app, /is not currently accepting connections/);
    } finally {
      await asAdmin(`ALTER DATABASE ${closed.name} ALLOW_CONNECTIONS true`);
    }
  });
});

describe('a database that answers', () => {
  it('is not unavailable: a query it refuses stays the error it is', async () => {
    const db = await createTestDatabase();
    databases.push(db);
    const database = openDatabase(db.url, { poolMax: 1, queryTimeoutMs: 5000, logger: createLogger('silent') });
    opened.push(database);
    const error = await database.pool.query('SELECT * FROM no_such_table').catch((caught: unknown) => caught);
    expect(isDatabaseUnavailable(error)).toBe(false);
    // The SQLSTATE of a database that takes no connections (55000) is also a query's mistake.
    await database.pool.query('CREATE SEQUENCE never_used');
    const misuse = await database.pool.query("SELECT currval('never_used')").catch((caught: unknown) => caught);
    expect(misuse).toMatchObject({ code: '55000' });
    expect(isDatabaseUnavailable(misuse)).toBe(false);
  });
});
