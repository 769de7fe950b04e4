import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { openDatabase } from '../../src/db/database.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { createLogger } from '../../src/shared/logger.js';
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

describe('GET /readyz', () => {
  let proxy: TcpProxy;
  let app: ReturnType<typeof createApp>;
  let closeDatabase: () => Promise<void>;

  beforeAll(async () => {
    const target = new URL(db.url);
    proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
    const viaProxy = new URL(db.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const config = buildTestConfig(viaProxy.toString(), { READY_TIMEOUT_MS: '500' });
    const logger = createLogger('silent');
    const database = openDatabase(viaProxy.toString(), { poolMax: 2, logger });
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
    expect(down.body.error).toMatch(/^database unavailable/);
    // Liveness does not depend on the database.
    await request(app).get('/healthz').expect(200);

    proxy.restore();
    expect((await request(app).get('/readyz').expect(200)).body).toEqual({ status: 'ok' });
  });
});
