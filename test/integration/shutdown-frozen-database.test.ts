import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { errorHandler } from '../../src/http/error-handler.js';
import { createHotRoutes, takeFastPathFailure } from '../../src/http/hot-routes.js';
import { httpMetrics } from '../../src/http/http-metrics.js';
import { closeGracefully, listen } from '../../src/http/lifecycle.js';
import { requestContext } from '../../src/http/request-context.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import type { RatesService } from '../../src/modules/pricing/rates.service.js';
import { isDatabaseUnavailable } from '../../src/shared/errors.js';
import { PROJECT_ROOT } from '../../src/shared/paths.js';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { signInOverHttp } from '../support/sign-in.js';
import { spawnServer } from '../support/spawn-server.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A database that stops answering (a frozen host, a SIGSTOPped server) while a request waits on it:
// SIGTERM took SHUTDOWN_TIMEOUT_MS and then, closing the pool, the whole query timeout (30 s by
// default) for the query in flight and the idle connections' goodbyes, longer than Kubernetes' or
// the compose file's grace period: the process was SIGKILLed mid-shutdown. After SHUTDOWN_TIMEOUT_MS
// the pool gets a few seconds, then its connections are destroyed and the process exits.

const SHUTDOWN_TIMEOUT_MS = 1_000;
/** The query timeout left at its default: what the shutdown must not wait out. */
const QUERY_TIMEOUT_MS = 30_000;

let db: TestDatabase;
let proxy: TcpProxy;
let proxyUrl: string;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildTiers(db);
  const target = new URL(db.url);
  proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
  const viaProxy = new URL(db.url);
  viaProxy.hostname = '127.0.0.1';
  viaProxy.port = String(proxy.port);
  proxyUrl = viaProxy.toString();
}, 60_000);
afterAll(async () => {
  proxy?.thaw();
  await proxy?.close();
  await db?.drop();
});

describe('SIGTERM while the database is frozen with a request in flight', () => {
  it('exits 0 well before SHUTDOWN_TIMEOUT_MS + the query timeout, saying what it abandoned', async () => {
    const port = await findFreePort();
    const server = await spawnServer({
      DATABASE_URL: proxyUrl,
      PORT: String(port),
      WEB_CONCURRENCY: '1',
      DEMO_SEED: '0',
      INGEST_ENABLED: '0',
      LOG_LEVEL: 'info',
      DB_QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS),
      SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
    });
    try {
      const base = `http://127.0.0.1:${port}`;
      const alice = await signInOverHttp(base, 'alice');
      // Several connections open, so idle ones meet the freeze too.
      await Promise.all(
        [1, 2, 3].map(() => fetch(`${base}/account`, { headers: { cookie: alice } }).then((r) => r.text())),
      );
      proxy.freeze();
      const inFlight = fetch(`${base}/account`, { headers: { cookie: alice, accept: 'application/json' } }).catch(
        (error: unknown) => error,
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      const stoppedAt = performance.now();
      server.process.kill('SIGTERM');
      const code = await server.exited;
      const tookMs = performance.now() - stoppedAt;
      expect(code, server.output()).toBe(0);
      // A generous bound: the point is not waiting out the 30 s query timeout.
      expect(tookMs, server.output()).toBeLessThan(SHUTDOWN_TIMEOUT_MS + 10_000);
      expect(server.output()).toMatch(/database connections? .*destroyed|destroyed .*database connection/i);
      expect(server.output()).toMatch(/stopped/);
      // The request it cut is logged as cut ("cutByShutdown":true), not a second time as the database unavailable.
      expect(server.output()).toMatch(/"status":503,"cutByShutdown":true/);
      expect(server.output()).not.toMatch(/"msg":"database unavailable"/);
      await inFlight;
    } finally {
      proxy.thaw();
      server.process.kill('SIGKILL');
    }
  }, 90_000);

  // With WEB_CONCURRENCY=2, 4 requests to /formula in flight on the frozen database and SIGTERM to the
  // primary: no line said "cutByShutdown":true, and "database unavailable" (level 50) came after
  // "stopped", what the guide promises not to (docs/operations.md, "cutByShutdown"). Not the cluster's
  // doing (one worker failed alike): plain /formula is served before Express (hot-routes.ts), where
  // requestContext never saw it, so the shutdown's cut had nothing to log it from.
  it.each(['info', 'warn'] as const)(
    'with two workers at LOG_LEVEL=%s, logs each /formula request it cut as cut, and none as the database unavailable',
    async (level) => {
      const port = await findFreePort();
      const server = await spawnServer({
        DATABASE_URL: proxyUrl,
        PORT: String(port),
        WEB_CONCURRENCY: '2',
        DEMO_SEED: '0',
        INGEST_ENABLED: '0',
        LOG_LEVEL: level,
        // Every /formula asks the database whether the rates changed.
        PRICING_CACHE_CHECK_MS: '0',
        DB_QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS),
        SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      });
      try {
        const base = `http://127.0.0.1:${port}`;
        const json = { accept: 'application/json' };
        // Connections open in both workers' pools (the primary deals connections to them in turn).
        for (let round = 0; round < 3; round++) {
          const statuses = await Promise.all(
            [1, 2, 3, 4].map(() => fetch(`${base}/formula`, { headers: json }).then((r) => r.status)),
          );
          expect(statuses).toEqual([200, 200, 200, 200]);
        }
        proxy.freeze();
        const inFlight = [1, 2, 3, 4].map((index) =>
          fetch(`${base}/formula`, { headers: { ...json, 'x-request-id': `cut-${index}` } })
            .then((response) => response.status)
            .catch((error: unknown) => String(error)),
        );
        await new Promise((resolve) => setTimeout(resolve, 300));
        server.process.kill('SIGTERM');
        const code = await server.exited;
        const output = server.output();
        expect(code, output).toBe(0);
        const lines = output
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as Record<string, unknown>);
        const cut = lines.filter((line) => String(line.reqId).startsWith('cut-'));
        expect(
          cut.map((line) => [line.reqId, line.level, line.msg, line.route, line.status, line.cutByShutdown]).sort(),
          output,
        ).toEqual([1, 2, 3, 4].map((index) => [`cut-${index}`, 40, 'request', '/formula', 503, true]));
        expect(output).not.toMatch(/"msg":"database unavailable"/);
        expect(await Promise.all(inFlight)).toEqual([503, 503, 503, 503]);
      } finally {
        proxy.thaw();
        server.process.kill('SIGKILL');
      }
    },
    90_000,
  );

  // A scheduled ingestion run waiting on the frozen database: the stop awaited it, so the pool (and its
  // 3 s grace) was closed only once the run's query had met DB_QUERY_TIMEOUT_MS. Seen live with
  // WEB_CONCURRENCY=2: the worker running ingestion stopped 28 s after SIGTERM with
  // SHUTDOWN_TIMEOUT_MS=10000, past Kubernetes' default 30 s grace once a drain delay is added.
  it('does not wait out the query timeout for a scheduled ingestion run stuck on the database', async () => {
    const port = await findFreePort();
    const server = await spawnServer({
      DATABASE_URL: proxyUrl,
      PORT: String(port),
      WEB_CONCURRENCY: '1',
      DEMO_SEED: '0',
      INGEST_ENABLED: '1',
      INGEST_INTERVAL_SEC: '5',
      FALLBACK_CSV: path.join(PROJECT_ROOT, 'test/fixtures/slurm/22.05/shapes/sacct.psv'),
      LOG_LEVEL: 'info',
      DB_QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS),
      SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
    });
    try {
      const base = `http://127.0.0.1:${port}`;
      const alice = await signInOverHttp(base, 'alice');
      // Connections left idle in the pool, which the next run takes and meets the freeze on (a new
      // connection would fail at once, after DB_CONNECT_TIMEOUT_MS).
      await Promise.all(
        [1, 2, 3, 4].map(() => fetch(`${base}/account`, { headers: { cookie: alice } }).then((r) => r.text())),
      );
      proxy.freeze();
      // Past the next tick (every 5 s): a run is waiting on the frozen database now.
      await new Promise((resolve) => setTimeout(resolve, 6_500));
      const stoppedAt = performance.now();
      server.process.kill('SIGTERM');
      const code = await server.exited;
      const tookMs = performance.now() - stoppedAt;
      expect(code, server.output()).toBe(0);
      expect(tookMs, server.output()).toBeLessThan(SHUTDOWN_TIMEOUT_MS + 10_000);
      expect(server.output()).toMatch(/shutdown timed out waiting for the ingestion run on the database/);
      expect(server.output()).toMatch(/"msg":"stopped"/);
    } finally {
      proxy.thaw();
      server.process.kill('SIGKILL');
    }
  }, 90_000);

  // The request cut by the shutdown logged its cut line, then, as the pool's destroyed connections
  // failed its query, "database unavailable" at error level: two causes for one request, the second
  // one an alert paging someone over a deploy. In process, with the server's own pieces (the pool
  // through the frozen proxy, closeGracefully, the pool's close with a grace), to be quick.
  // At LOG_LEVEL=warn (production's) the cut request had no line at all, and its query's failure was
  // logged as `database unavailable`: the shutdown's cut now writes its line, at warn.
  it.each(['info', 'warn'] as const)(
    'at LOG_LEVEL=%s logs the request it cut as one line that says it was cut by the shutdown',
    async (level) => {
      const lines: Record<string, unknown>[] = [];
      const logger = pino({ level }, { write: (line: string) => lines.push(JSON.parse(line)) });
      const database = openDatabase(proxyUrl, { poolMax: 2, queryTimeoutMs: QUERY_TIMEOUT_MS, logger });
      let errorHandled: (error: unknown) => void = () => undefined;
      const handledError = new Promise<unknown>((resolve) => {
        errorHandled = resolve;
      });
      const app = express();
      app.use(requestContext(logger));
      app.get('/account', async (_req, res) => {
        res.json((await database.pool.query('SELECT 1 AS one')).rows);
      });
      const handleError = errorHandler(logger);
      app.use((error: unknown, req: Request, res: Response, next: NextFunction) => {
        handleError(error, req, res, next);
        errorHandled(error);
      });
      const server = await listen(app, 0, '127.0.0.1');
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      try {
        // A request answered before the freeze: its line stays as it was.
        const before = await fetch(`${base}/account`, { headers: { 'x-request-id': 'before-the-freeze' } });
        expect(before.status).toBe(200);
        proxy.freeze();
        const inFlight = fetch(`${base}/account`, {
          headers: { accept: 'application/json', 'x-request-id': 'cut-by-shutdown' },
        });
        await new Promise((resolve) => setTimeout(resolve, 200));
        expect(await closeGracefully(server, 200, logger)).toBe(false);
        expect((await inFlight).status).toBe(503);
        database.markStopping();
        await database.close({ graceMs: 200 });
        // The handler's query failed as the database being unreachable does, after its cut line.
        const error = await handledError;
        expect(isDatabaseUnavailable(error), String(error)).toBe(true);

        expect(lines.filter((line) => line.reqId === 'cut-by-shutdown')).toEqual([
          expect.objectContaining({ level: 40, msg: 'request', route: '/account', status: 503, cutByShutdown: true }),
        ]);
        expect(lines.filter((line) => line.reqId === 'before-the-freeze')).toEqual(
          level === 'info'
            ? [expect.objectContaining({ level: 30, msg: 'request', route: '/account', status: 200 })]
            : [],
        );
        // The pool's own line is still there.
        expect(lines).toContainEqual(
          expect.objectContaining({ level: 40, msg: expect.stringMatching(/destroyed \d+ database connection/) }),
        );
      } finally {
        proxy.thaw();
        server.close();
      }
    },
  );
});

describe('a plain GET /formula (served before Express) cut while it waits on the frozen database', () => {
  // Its fast path (hot-routes.ts) logs its own line when it answers, and none when a shutdown cut it:
  // the cut had no line at all, and once the pool's connections were destroyed the query's failure,
  // handed to Express, was logged as "database unavailable" at error level, after "stopped".
  it.each(['info', 'warn'] as const)('at LOG_LEVEL=%s is logged once, as cut by the shutdown', async (level) => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const database = openDatabase(proxyUrl, { poolMax: 2, queryTimeoutMs: QUERY_TIMEOUT_MS, logger });
    let errorHandled: (error: unknown) => void = () => undefined;
    const handledError = new Promise<unknown>((resolve) => {
      errorHandled = resolve;
    });
    const metrics = createMetrics();
    const app = express();
    app.use(requestContext(logger));
    app.use(httpMetrics(metrics));
    app.get('/formula', (req) => {
      throw takeFastPathFailure(req);
    });
    const handleError = errorHandler(logger);
    app.use((error: unknown, req: Request, res: Response, next: NextFunction) => {
      handleError(error, req, res, next);
      errorHandled(error);
    });
    const serveHotRoute = createHotRoutes({
      securityHeaders: [],
      rates: {
        // The rates' check, a query on the pool as the rates service makes it.
        getFormula: async () => {
          await database.pool.query('SELECT 1 AS one');
          return { etag: '"1"', body: '{}', tier: 'mu' } as Awaited<ReturnType<RatesService['getFormula']>>;
        },
      },
      metrics,
      logger,
    });
    const server = await listen(
      (req, res) => {
        if (!serveHotRoute(req, res, (again) => app(again as Request, res as Response)))
          app(req as Request, res as Response);
      },
      0,
      '127.0.0.1',
    );
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const before = await fetch(`${base}/formula`, { headers: { 'x-request-id': 'before-the-freeze' } });
      expect(before.status).toBe(200);
      proxy.freeze();
      const inFlight = fetch(`${base}/formula`, {
        headers: { accept: 'application/json', 'x-request-id': 'cut-by-shutdown' },
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await closeGracefully(server, 200, logger)).toBe(false);
      expect((await inFlight).status).toBe(503);
      database.markStopping();
      await database.close({ graceMs: 200 });
      // The query failed as the database being unreachable does, and went to Express's error handler.
      const error = await handledError;
      expect(isDatabaseUnavailable(error), String(error)).toBe(true);

      expect(lines.filter((line) => line.reqId === 'cut-by-shutdown')).toEqual([
        expect.objectContaining({ level: 40, msg: 'request', route: '/formula', status: 503, cutByShutdown: true }),
      ]);
      expect(lines.filter((line) => line.msg === 'database unavailable')).toEqual([]);
      // Counted as an Express request cut is (http-metrics.ts), once: its line said 503 while
      // http_requests_total had no 503 for /formula (nor its latency a second observation).
      const [counted] = (await metrics.registry.getMetricsAsJSON()).filter(
        (metric) => metric.name === 'http_requests_total',
      );
      expect(
        (counted?.values ?? [])
          .filter((value) => value.labels.endpoint === '/formula')
          .map((value) => [value.labels.method, value.labels.status, value.value])
          .sort(),
      ).toEqual([
        ['GET', '200', 1],
        ['GET', '503', 1],
      ]);
      expect(await metrics.registry.metrics()).toContain(
        'http_request_duration_seconds_count{endpoint="/formula",method="GET"} 2',
      );
      expect(lines.filter((line) => line.reqId === 'before-the-freeze')).toEqual(
        level === 'info'
          ? [expect.objectContaining({ level: 30, msg: 'request', route: '/formula', status: 200 })]
          : [],
      );
    } finally {
      proxy.thaw();
      server.close();
    }
  });
});

describe('a plain GET /formula cut by a shutdown is counted once', () => {
  /** The app's hot routes and Express as app.ts joins them, on rates answered when the test says. */
  async function serveFormula(rates: Pick<RatesService, 'getFormula'>, expressFormula: () => Promise<void>) {
    const logger = pino({ level: 'silent' });
    const metrics = createMetrics();
    const app = express();
    app.use(requestContext(logger));
    app.use(httpMetrics(metrics));
    app.get('/formula', async (req, res) => {
      const failure = takeFastPathFailure(req);
      await expressFormula();
      res.status(500).json({ error: String(failure) });
    });
    const serveHotRoute = createHotRoutes({ securityHeaders: [], rates, metrics, logger });
    const server = await listen(
      (req, res) => {
        if (!serveHotRoute(req, res, (again) => app(again as Request, res as Response)))
          app(req as Request, res as Response);
      },
      0,
      '127.0.0.1',
    );
    const countsOfFormula = async () => {
      const [counted] = (await metrics.registry.getMetricsAsJSON()).filter(
        (metric) => metric.name === 'http_requests_total',
      );
      return (counted?.values ?? [])
        .filter((value) => value.labels.endpoint === '/formula')
        .map((value) => [value.labels.method, value.labels.status, value.value])
        .sort();
    };
    const observedOfFormula = async () =>
      /http_request_duration_seconds_count\{endpoint="\/formula",method="GET"\} (\d+)/.exec(
        await metrics.registry.metrics(),
      )?.[1];
    return {
      server,
      base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      countsOfFormula,
      observedOfFormula,
    };
  }

  const FORMULA = { etag: '"1"', body: '{}', tier: 'mu' } as Awaited<ReturnType<RatesService['getFormula']>>;

  // The rates answering after the cut (the database thawed): the fast path's success path must
  // neither answer nor count it again (as 200, or 499 for the socket the cut closed).
  it.each([
    ['with', pino({ level: 'silent' })],
    ['without', undefined],
  ] as const)('as 503, %s a logger for the shutdown, when the rates answer after the cut', async (_, logger) => {
    let answerRates: () => void = () => undefined;
    const ratesAnswered = new Promise<void>((resolve) => {
      answerRates = resolve;
    });
    let asked = 0;
    const { server, base, countsOfFormula, observedOfFormula } = await serveFormula(
      {
        getFormula: async () => {
          asked++;
          await ratesAnswered;
          return FORMULA;
        },
      },
      async () => undefined,
    );
    try {
      const inFlight = fetch(`${base}/formula`, { headers: { accept: 'application/json' } });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(asked).toBe(1);
      expect(await closeGracefully(server, 100, logger)).toBe(false);
      expect((await inFlight).status).toBe(503);
      expect(await countsOfFormula()).toEqual([['GET', '503', 1]]);
      answerRates();
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await countsOfFormula()).toEqual([['GET', '503', 1]]);
      expect(await observedOfFormula()).toBe('1');
    } finally {
      answerRates();
      server.close();
    }
  });

  // Its fast path failed and handed it to Express, which a shutdown then cut: httpMetrics counts it.
  it('as 503 once, by Express, when the cut comes after the fast path handed it over', async () => {
    let endExpress: () => void = () => undefined;
    const expressEnded = new Promise<void>((resolve) => {
      endExpress = resolve;
    });
    let handedOver: () => void = () => undefined;
    const inExpress = new Promise<void>((resolve) => {
      handedOver = resolve;
    });
    const { server, base, countsOfFormula, observedOfFormula } = await serveFormula(
      {
        getFormula: async () => {
          throw new Error('no rates yet');
        },
      },
      () => {
        handedOver();
        return expressEnded;
      },
    );
    try {
      const inFlight = fetch(`${base}/formula`, { headers: { accept: 'application/json' } });
      await inExpress;
      expect(await closeGracefully(server, 100, pino({ level: 'silent' }))).toBe(false);
      expect((await inFlight).status).toBe(503);
      await new Promise((resolve) => setTimeout(resolve, 50));
      endExpress();
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await countsOfFormula()).toEqual([['GET', '503', 1]]);
      expect(await observedOfFormula()).toBe('1');
    } finally {
      endExpress();
      server.close();
    }
  });
});

describe('the error lines kept', () => {
  it('still logs a bug a request the shutdown cut meets afterwards, as an unhandled error', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    let fail: () => void = () => undefined;
    const failing = new Promise<void>((resolve) => {
      fail = resolve;
    });
    let errorHandled: () => void = () => undefined;
    const handled = new Promise<void>((resolve) => {
      errorHandled = resolve;
    });
    const app = express();
    app.use(requestContext(logger));
    app.get('/slow', async () => {
      await failing;
      throw new Error('a bug');
    });
    const handleError = errorHandler(logger);
    app.use((error: unknown, req: Request, res: Response, next: NextFunction) => {
      handleError(error, req, res, next);
      errorHandled();
    });
    const server = await listen(app, 0, '127.0.0.1');
    const { port } = server.address() as AddressInfo;
    const inFlight = fetch(`http://127.0.0.1:${port}/slow`, { headers: { 'x-request-id': 'cut-then-bug' } });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await closeGracefully(server, 100)).toBe(false);
    expect((await inFlight).status).toBe(503);
    fail();
    await handled;
    expect(lines.filter((line) => line.reqId === 'cut-then-bug').map((line) => [line.level, line.msg])).toEqual([
      [40, 'request'],
      [50, 'unhandled error'],
    ]);
  });

  it('still logs a database error of a request no shutdown cut', async () => {
    // The control: the same error, met while the server is serving, is the database being unreachable.
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const app = express();
    app.use(requestContext(logger));
    app.get('/account', () => {
      throw new Error('Connection terminated unexpectedly');
    });
    app.use(errorHandler(logger));
    const server = await listen(app, 0, '127.0.0.1');
    try {
      const { port } = server.address() as AddressInfo;
      const response = await fetch(`http://127.0.0.1:${port}/account`, { headers: { 'x-request-id': 'serving' } });
      expect(response.status).toBe(503);
      expect(lines.filter((line) => line.reqId === 'serving').map((line) => [line.level, line.msg])).toEqual([
        [50, 'database unavailable'],
        [30, 'request'],
      ]);
    } finally {
      server.close();
    }
  });
});
