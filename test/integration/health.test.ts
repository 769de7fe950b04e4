import { Writable } from 'node:stream';
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { openDatabase } from '../../src/db/database.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { createLogger } from '../../src/shared/logger.js';
import { buildUser } from '../support/factories.js';
import { csrfTokenIn, signInAs } from '../support/sign-in.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { buildTestApp, buildTestConfig } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

describe('GET /healthz', () => {
  it('answers ok while the process runs', async () => {
    const response = await request(buildTestApp(db)).get('/healthz').expect(200);
    expect(response.body).toEqual({ status: 'ok' });
    expect(response.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});

// The embedded PostgreSQL (npm test without DATABASE_URL) checks its password; a server with trust auth ignores one.
const databasePasswordOf = (url: string) => decodeURIComponent(new URL(url).password) || 'not-for-the-log';

describe('GET /readyz, and requests while the database is gone', () => {
  let proxy: TcpProxy;
  let app: ReturnType<typeof createApp>;
  let closeDatabase: () => Promise<void>;
  const logged: Record<string, unknown>[] = [];

  beforeAll(async () => {
    const target = new URL(db.url);
    proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
    const viaProxy = new URL(db.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    // The log must not show it.
    viaProxy.password = databasePasswordOf(db.url);
    const config = buildTestConfig(viaProxy.toString(), { READY_TIMEOUT_MS: '500' });
    const logger = pino(
      { level: 'warn' },
      new Writable({
        write(chunk, _encoding, done) {
          logged.push(JSON.parse(String(chunk)) as Record<string, unknown>);
          done();
        },
      }),
    );
    const database = openDatabase(viaProxy.toString(), { poolMax: 2, queryTimeoutMs: config.dbQueryTimeoutMs, logger });
    closeDatabase = database.close;
    app = createApp({ config, db: database, logger, metrics: createMetrics() });
  });
  afterAll(async () => {
    await closeDatabase?.();
    await proxy?.close();
  });

  it('is ready when the database answers, 503 while it is gone, and ready again when it returns', async () => {
    expect((await request(app).get('/readyz').expect(200)).body).toEqual({ status: 'ok' });

    proxy.cut();
    const down = await request(app).get('/readyz').expect(503);
    expect(down.body.status).toBe('error');
    // Nothing about where the database is: the detail goes to the log.
    expect(down.body).toEqual({ status: 'error', error: 'database unavailable' });
    expect(logged.at(-1)).toMatchObject({
      level: 40,
      msg: 'not ready',
      err: expect.stringMatching(new RegExp(`^database at 127\\.0\\.0\\.1:${proxy.port} unavailable: `)),
    });
    // Liveness does not depend on the database.
    await request(app).get('/healthz').expect(200);

    proxy.restore();
    expect((await request(app).get('/readyz').expect(200)).body).toEqual({ status: 'ok' });
  });

  it('logs the address of a database that does not answer, as of one that refuses, never its password', async () => {
    expect((await request(app).get('/readyz').expect(200)).body).toEqual({ status: 'ok' });
    proxy.freeze();
    try {
      const silent = await request(app).get('/readyz').expect(503);
      expect(silent.body).toEqual({ status: 'error', error: 'database unavailable' });
      const entry = logged.at(-1);
      expect(entry).toMatchObject({ level: 40, msg: 'not ready' });
      // READY_TIMEOUT_MS is 500: the probe's own limit or the query's, whichever came first.
      expect(entry?.err).toMatch(
        new RegExp(
          `^database at 127\\.0\\.0\\.1:${proxy.port} unavailable: .*(did not answer|no answer) within 500 ms`,
        ),
      );
      expect(JSON.stringify(logged)).not.toContain(databasePasswordOf(db.url));
    } finally {
      proxy.thaw();
    }
    proxy.cut();
    proxy.restore();
    expect((await request(app).get('/readyz').expect(200)).body).toEqual({ status: 'ok' });
  });

  it('answers GET /formula 503 after one attempt at the database, not one in the fast path and one again in Express', async () => {
    proxy.cut();
    try {
      const before = proxy.connectionCount;
      const response = await request(app).get('/formula').set('Accept', 'application/json');
      expect(response.status).toBe(503);
      expect(response.headers['retry-after']).toBe('5');
      expect(proxy.connectionCount - before).toBe(1);
    } finally {
      proxy.restore();
    }
  });

  it('answers other requests 503 with a retry hint, as a page or as JSON, and serves them again when it returns', async () => {
    await buildUser(db.prisma, { username: 'outage', password: 'outage-password' });
    const agent = await signInAs(app, 'outage', 'outage-password');
    await agent.get('/account').set('Accept', 'text/html').expect(200);

    proxy.cut();
    // A signed-in page (its session is read from the database) and a sign-in (the lockout is).
    const page = await agent.get('/account').set('Accept', 'text/html');
    expect(page.status).toBe(503);
    expect(page.headers['retry-after']).toBe('5');
    expect(page.text).toContain('The database is unavailable right now. Try again in a moment.');
    const visitor = request.agent(app);
    const form = await visitor.get('/login').set('Accept', 'text/html').expect(200);
    const signIn = await visitor
      .post('/login')
      .set('Accept', 'application/json')
      .send({ username: 'outage', password: 'outage-password', csrf_token: csrfTokenIn(form.text) });
    expect(signIn.status).toBe(503);
    expect(signIn.body).toMatchObject({
      error: 'The database is unavailable right now. Try again in a moment.',
      code: 503,
    });

    proxy.restore();
    await agent.get('/account').set('Accept', 'text/html').expect(200);
  });
});

describe('the readiness log while the database is gone', () => {
  // A load balancer probing /readyz every 2 s wrote a `not ready` warning at each probe: 1,800 an
  // hour per instance, for as long as the database was away, burying every other line.
  let proxy: TcpProxy;
  let app: ReturnType<typeof createApp>;
  let closeDatabase: () => Promise<void>;
  let clock = new Date('2026-12-04T10:00:00Z');
  const logged: Record<string, unknown>[] = [];
  const readinessLines = () => logged.filter((line) => /^(not ready|ready again)/.test(String(line.msg)));

  beforeAll(async () => {
    const target = new URL(db.url);
    proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
    const viaProxy = new URL(db.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const config = buildTestConfig(viaProxy.toString(), { READY_TIMEOUT_MS: '500', INGEST_ENABLED: '0' });
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk, _encoding, done) {
          logged.push(JSON.parse(String(chunk)) as Record<string, unknown>);
          done();
        },
      }),
    );
    const database = openDatabase(viaProxy.toString(), { poolMax: 2, queryTimeoutMs: config.dbQueryTimeoutMs, logger });
    closeDatabase = database.close;
    app = createApp({ config, db: database, logger, metrics: createMetrics(), now: () => clock });
  });
  afterAll(async () => {
    await closeDatabase?.();
    await proxy?.close();
  });

  const advance = (ms: number) => {
    clock = new Date(clock.getTime() + ms);
  };

  it('says it once when readiness is lost, reminds every 5 minutes, and says once when it is back, while every probe still answers', async () => {
    await request(app).get('/readyz').expect(200);
    expect(readinessLines()).toEqual([]);

    proxy.cut();
    try {
      // A load balancer's probes every 2 s, and Prometheus's scrapes, for a minute.
      for (let probe = 0; probe < 30; probe++) {
        await request(app).get('/readyz').expect(503);
        if (probe % 8 === 0) expect((await request(app).get('/metrics').expect(200)).text).toMatch(/^hpc_ready 0$/m);
        advance(2_000);
      }
      expect(readinessLines()).toEqual([
        expect.objectContaining({
          level: 40,
          msg: 'not ready',
          err: expect.stringMatching(new RegExp(`^database at 127\\.0\\.0\\.1:${proxy.port} unavailable: `)),
        }),
      ]);

      // Still away 5 minutes after the first warning: one reminder, with how long and how many checks.
      advance(4 * 60_000);
      await request(app).get('/readyz').expect(503);
      await request(app).get('/readyz').expect(503);
      expect(readinessLines()).toHaveLength(2);
      expect(readinessLines()[1]).toMatchObject({
        level: 40,
        msg: 'not ready',
        notReadyForMs: 5 * 60_000,
        failedChecks: 30 + 4 + 1,
        err: expect.stringContaining('unavailable: '),
      });
    } finally {
      proxy.restore();
    }

    advance(30_000);
    await request(app).get('/readyz').expect(200);
    await request(app).get('/readyz').expect(200);
    expect((await request(app).get('/metrics').expect(200)).text).toMatch(/^hpc_ready 1$/m);
    expect(readinessLines()).toHaveLength(3);
    expect(readinessLines()[2]).toMatchObject({
      level: 30,
      msg: 'ready again',
      notReadyForMs: 5 * 60_000 + 30_000,
      failedChecks: 30 + 4 + 2,
    });
  });

  it('is told by the scrapes too, so an instance no load balancer probes still says why AppNotReady fires', async () => {
    logged.length = 0;
    proxy.cut();
    try {
      expect((await request(app).get('/metrics').expect(200)).text).toMatch(/^hpc_ready 0$/m);
      expect((await request(app).get('/metrics').expect(200)).text).toMatch(/^hpc_ready 0$/m);
      expect(readinessLines()).toEqual([expect.objectContaining({ level: 40, msg: 'not ready' })]);
    } finally {
      proxy.restore();
    }
    expect((await request(app).get('/metrics').expect(200)).text).toMatch(/^hpc_ready 1$/m);
    expect(readinessLines().map((line) => line.msg)).toEqual(['not ready', 'ready again']);
  });
});

describe('GET /metrics while the database does not answer', () => {
  // READY_TIMEOUT_MS may be up to 60 s for /readyz; a scrape waited as long for hpc_ready, past
  // Prometheus's scrape_timeout (10 s): up read 0 and AppDown paged, while AppNotReady never fired.
  it('answers within Prometheus scrape timeout, with hpc_ready 0, even with a long READY_TIMEOUT_MS', async () => {
    const target = new URL(db.url);
    const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
    const viaProxy = new URL(db.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const config = buildTestConfig(viaProxy.toString(), { READY_TIMEOUT_MS: '20000', INGEST_ENABLED: '0' });
    const logger = createLogger('silent');
    const database = openDatabase(viaProxy.toString(), { poolMax: 4, queryTimeoutMs: config.dbQueryTimeoutMs, logger });
    try {
      const app = createApp({ config, db: database, logger, metrics: createMetrics() });
      expect((await request(app).get('/metrics').expect(200)).text).toMatch(/^hpc_ready 1$/m);
      proxy.freeze();
      const startedAt = Date.now();
      const scrape = await request(app).get('/metrics').expect(200);
      expect(Date.now() - startedAt).toBeLessThan(8_000);
      expect(scrape.text).toMatch(/^hpc_ready 0$/m);
    } finally {
      proxy.thaw();
      await database.close();
      await proxy.close();
    }
  }, 40_000);
});
