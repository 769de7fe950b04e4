import { Writable } from 'node:stream';
import type pg from 'pg';
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../src/db/database.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { createLogger } from '../../src/shared/logger.js';
import { buildTiers } from '../support/billing-factories.js';
import { DUMMY_PAYMENTS_ENV, deliverDummy } from '../support/dummy-payments.js';
import { buildTestApp, metricValue } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// ~300 signed webhooks at once ran the pool dry: the requests that got no connection within
// DB_CONNECT_TIMEOUT_MS were rightly answered 503 (nothing applied, the provider retries), but
// each was logged at error level with a stack, a flood in the operator's log. Here the pool has
// one connection and the test holds it, so every request that needs the database waits for it
// in vain, as the burst's did.

type LogLine = { level: number; msg: string; reqId?: unknown; err?: unknown; [key: string]: unknown };
const lines: LogLine[] = [];
const logger = pino(
  { level: 'info' },
  new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  }),
);

const WARN = 40;
const ERROR = 50;

let db: TestDatabase;
let onePool: Database;
let held: pg.PoolClient;
const metrics = createMetrics();
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  onePool = openDatabase(db.url, {
    poolMax: 1,
    queryTimeoutMs: 30_000,
    connectTimeoutMs: 200,
    logger: createLogger('silent'),
  });
  app = buildTestApp({ ...onePool, url: db.url }, { env: DUMMY_PAYMENTS_ENV, logger, metrics });
  held = await onePool.pool.connect();
});
afterAll(async () => {
  held?.release();
  await onePool?.close();
  await db?.drop();
});

/** The error handler's lines for one request: every line of its reqId but the request line itself. */
const errorLinesOf = (reqId: string) => lines.filter((line) => line.reqId === reqId && line.msg !== 'request');

describe('a request that gets no database connection in time (the pool is busy)', () => {
  it('a signed webhook is answered 503 with Retry-After, logged once as a one-line warning and counted', async () => {
    const before = await metricValue(metrics, 'db_pool_wait_timeouts_total');
    const response = await deliverDummy(app, {
      event_id: 'evt_pool_busy_1',
      event_type: 'payment.succeeded',
      external_payment_id: 'ext_pool_busy_1',
      amount_cents: 1000,
      currency: 'THB',
    });
    expect(response.status).toBe(503);
    expect(response.headers['retry-after']).toBe('5');
    const reqId = String(response.headers['x-request-id']);
    expect(response.body).toEqual({
      error: 'The server is busy right now. Try again in a moment.',
      code: 503,
      requestId: reqId,
    });
    expect(errorLinesOf(reqId)).toEqual([
      {
        level: WARN,
        time: expect.any(Number),
        pid: expect.any(Number),
        hostname: expect.any(String),
        reqId,
        method: 'POST',
        route: '/payments/webhook/:provider',
        msg: 'database busy: no free connection in the pool within DB_CONNECT_TIMEOUT_MS (all DB_POOL_MAX in use); answered 503',
      },
    ]);
    expect(await metricValue(metrics, 'db_pool_wait_timeouts_total')).toBe(before + 1);
    // Nothing of the event was applied: the provider's retry is processed afresh.
    held.release();
    try {
      expect(await db.prisma.paymentEvent.count({ where: { externalEventId: 'evt_pool_busy_1' } })).toBe(0);
    } finally {
      held = await onePool.pool.connect();
    }
  });

  it('a page asked for by a browser is the 503 error page, logged and counted the same way', async () => {
    const before = await metricValue(metrics, 'db_pool_wait_timeouts_total');
    const response = await request(app).get('/rates').set('Accept', 'text/html');
    expect(response.status).toBe(503);
    expect(response.headers['retry-after']).toBe('5');
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(response.text).toContain('The server is busy right now. Try again in a moment.');
    const reqId = String(response.headers['x-request-id']);
    expect(response.text).toContain(reqId);
    expect(errorLinesOf(reqId).map(({ level, msg, err }) => ({ level, msg, err }))).toEqual([
      {
        level: WARN,
        msg: 'database busy: no free connection in the pool within DB_CONNECT_TIMEOUT_MS (all DB_POOL_MAX in use); answered 503',
        err: undefined,
      },
    ]);
    expect(await metricValue(metrics, 'db_pool_wait_timeouts_total')).toBe(before + 1);
  });

  it('a database that refuses connections is still logged at error level with its cause, and not counted', async () => {
    const refusing = openDatabase('postgresql://nobody@127.0.0.1:1/nothing', {
      poolMax: 1,
      queryTimeoutMs: 30_000,
      connectTimeoutMs: 200,
      logger: createLogger('silent'),
    });
    try {
      const refusingApp = buildTestApp({ ...refusing, url: db.url }, { logger, metrics });
      const before = await metricValue(metrics, 'db_pool_wait_timeouts_total');
      const response = await request(refusingApp).get('/formula').set('Accept', 'application/json');
      expect(response.status).toBe(503);
      expect(response.body.error).toBe('The database is unavailable right now. Try again in a moment.');
      const reqId = String(response.headers['x-request-id']);
      expect(errorLinesOf(reqId)).toEqual([
        expect.objectContaining({
          level: ERROR,
          msg: 'database unavailable',
          err: expect.objectContaining({ stack: expect.any(String) }),
        }),
      ]);
      expect(await metricValue(metrics, 'db_pool_wait_timeouts_total')).toBe(before);
    } finally {
      await refusing.close();
    }
  });
});
