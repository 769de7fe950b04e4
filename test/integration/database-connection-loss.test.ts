import { Writable } from 'node:stream';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../src/db/database.js';
import { isDatabaseUnavailable } from '../../src/shared/errors.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

interface LogLine {
  level: number;
  msg: string;
  lostConnections?: number;
}

let testDb: TestDatabase;
let db: Database;
const lines: LogLine[] = [];

/** A stream that parses each log line it is given into `into`. */
function sinkInto(into: LogLine[]) {
  return new Writable({
    write(chunk, _encoding, done) {
      into.push(JSON.parse(String(chunk)) as LogLine);
      done();
    },
  });
}

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = openDatabase(testDb.url, {
    poolMax: 2,
    queryTimeoutMs: testDb.queryTimeoutMs,
    logger: pino({ level: 'info' }, sinkInto(lines)),
  });
});
afterAll(async () => {
  await db?.close();
  await testDb?.drop();
});

/** Ends every connection the pool holds from another session, as a restart or Ctrl-C would. */
async function terminatePoolConnections() {
  const admin = new pg.Client({ connectionString: testDb.url });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ ended: boolean }>(
      `SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = ''`,
    );
    return rows.length;
  } finally {
    await admin.end();
  }
}

async function nextLogLine(after: number): Promise<LogLine> {
  // Up to 10 s: a loss is logged once its burst's window has passed.
  for (let attempt = 0; attempt < 500 && lines.length <= after; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const line = lines[after];
  if (!line) throw new Error('nothing was logged');
  return line;
}

describe('a connection ended by PostgreSQL in the middle of a transaction', () => {
  // Prisma's transaction gives its connection back only after a ROLLBACK, which a lost
  // connection cannot run: each such loss used to keep one of the pool's connections forever.
  it('goes back to the pool, so the pool does not run out', async () => {
    const admin = new pg.Client({ connectionString: testDb.url });
    await admin.connect();
    try {
      for (let attempt = 0; attempt <= db.pool.options.max; attempt++) {
        const outcome = await db.prisma
          .$transaction(async (tx) => {
            const [session] = await tx.$queryRaw<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
            await admin.query('SELECT pg_terminate_backend($1)', [session?.pid]);
            await tx.$queryRaw`SELECT 1`;
          })
          .catch((error: unknown) => error);
        expect(isDatabaseUnavailable(outcome), String(outcome)).toBe(true);
      }
    } finally {
      await admin.end();
    }
    // The last lost connection leaves when its socket closes, which may come just after its error.
    await expect.poll(() => db.pool.totalCount - db.pool.idleCount).toBe(0);
    expect((await db.pool.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
  });
});

describe('an idle connection ended by PostgreSQL', () => {
  it('is a warning while serving, and the pool goes on with a new connection', async () => {
    await db.pool.query('SELECT 1');
    const before = lines.length;
    expect(await terminatePoolConnections()).toBeGreaterThan(0);
    expect(await nextLogLine(before)).toMatchObject({ level: 40, msg: 'idle database connection lost' });
    expect((await db.pool.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
  });

  // A PostgreSQL restart ends every connection of the pool at once: it wrote one warning per
  // connection (up to DB_POOL_MAX a worker), noise that hid the one event.
  it('lost together with others, is one warning saying how many', async () => {
    // Lines of its own: terminatePoolConnections ends the other pool's connections too.
    const wideLines: LogLine[] = [];
    const wide = openDatabase(testDb.url, {
      poolMax: 5,
      queryTimeoutMs: testDb.queryTimeoutMs,
      logger: pino({ level: 'info' }, sinkInto(wideLines)),
    });
    try {
      // Five at once: the pool holds five idle connections after.
      await Promise.all(Array.from({ length: 5 }, () => wide.pool.query('SELECT pg_sleep(0.2)')));
      expect(wide.pool.idleCount).toBe(5);
      expect(await terminatePoolConnections()).toBeGreaterThanOrEqual(5);
      await expect.poll(() => wide.pool.totalCount, { timeout: 10_000 }).toBe(0);
      const lost = () => wideLines.filter((line) => line.msg === 'idle database connection lost');
      await expect.poll(() => lost().length, { timeout: 10_000 }).toBeGreaterThan(0);
      expect(lost()).toEqual([expect.objectContaining({ level: 40, lostConnections: 5 })]);
      expect((await wide.pool.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
    } finally {
      await wide.close();
    }
  });

  // A worker stopping within the window exits before its timer: the count must not go with it.
  it('lost just before the process stops, is warned about as it stops', async () => {
    const ownLines: LogLine[] = [];
    const own = openDatabase(testDb.url, {
      poolMax: 3,
      queryTimeoutMs: testDb.queryTimeoutMs,
      logger: pino({ level: 'info' }, sinkInto(ownLines)),
    });
    try {
      await Promise.all(Array.from({ length: 3 }, () => own.pool.query('SELECT pg_sleep(0.2)')));
      expect(await terminatePoolConnections()).toBeGreaterThanOrEqual(3);
      // The pool drops a lost idle connection, then reports it: all three are reported by now.
      await expect.poll(() => own.pool.totalCount, { timeout: 10_000 }).toBe(0);
      own.markStopping();
      // Written as it stops, not when the window would have passed.
      expect(ownLines.filter((line) => line.msg === 'idle database connection lost')).toEqual([
        expect.objectContaining({ level: 40, lostConnections: 3 }),
      ]);
    } finally {
      await own.close();
    }
  });

  it('is only information once the process is stopping', async () => {
    await db.pool.query('SELECT 1');
    db.markStopping();
    const before = lines.length;
    expect(await terminatePoolConnections()).toBeGreaterThan(0);
    expect(await nextLogLine(before)).toMatchObject({ level: 30, msg: 'database connection ended while stopping' });
  });
});
