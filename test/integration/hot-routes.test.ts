import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { buildTiers } from '../support/billing-factories.js';
import { buildTestApp, metricValue } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// /healthz and plain /formula are answered before Express (src/http/hot-routes.ts); a
// client must not be able to tell: same headers, same bodies, same metrics.
let db: TestDatabase;
const metrics = createMetrics();
let app: ReturnType<typeof buildTestApp>;

beforeAll(async () => {
  db = await createTestDatabase();
  app = buildTestApp(db, {
    env: { APP_ENV: 'production', SESSION_SECRET: 'x'.repeat(32), AUDIT_CHAIN_KEY: 'k'.repeat(32) },
    metrics,
  });
});
afterAll(() => db?.drop());

const SECURITY_HEADERS = [
  'content-security-policy',
  'cross-origin-opener-policy',
  'cross-origin-resource-policy',
  'origin-agent-cluster',
  'permissions-policy',
  'referrer-policy',
  'strict-transport-security',
  'x-content-type-options',
  'x-dns-prefetch-control',
  'x-download-options',
  'x-frame-options',
  'x-permitted-cross-domain-policies',
  'x-xss-protection',
];

function securityHeadersOf(headers: Record<string, string>) {
  return Object.fromEntries(SECURITY_HEADERS.map((name) => [name, headers[name]]));
}

describe('hot routes answered before Express', () => {
  it('GET /healthz carries the same security headers as a page served by Express', async () => {
    const health = await request(app).get('/healthz').expect(200);
    const page = await request(app).get('/login').set('X-Forwarded-Proto', 'https').expect(200);
    expect(health.body).toEqual({ status: 'ok' });
    expect(health.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(health.headers['cache-control']).toBe('no-store');
    expect(health.headers['strict-transport-security']).toMatch(/^max-age=/);
    expect(health.headers['permissions-policy']).toContain('camera=()');
    expect(securityHeadersOf(health.headers)).toEqual(securityHeadersOf(page.headers));
    expect(health.headers['x-powered-by']).toBeUndefined();
  });

  it('echoes a safe X-Request-Id and replaces an unsafe one', async () => {
    const safe = await request(app).get('/healthz').set('X-Request-Id', 'lb-check.42').expect(200);
    expect(safe.headers['x-request-id']).toBe('lb-check.42');
    const unsafe = await request(app).get('/healthz').set('X-Request-Id', 'evil\tline').expect(200);
    expect(unsafe.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('HEAD /healthz still goes through Express', async () => {
    const head = await request(app).head('/healthz').expect(200);
    expect(head.headers['cache-control']).toBe('no-store');
  });

  it('GET /formula: refuses to answer before there are rates, through Express, then serves 200 and 304', async () => {
    const empty = await request(app).get('/formula').set('Accept', 'application/json');
    expect(empty.status).toBeGreaterThanOrEqual(400);
    expect(empty.body.code).toBe(empty.status);

    await buildTiers(db);
    // The rates service caches per process; a fresh app reads the new tiers.
    const withRates = buildTestApp(db, { metrics: createMetrics() });
    const first = await request(withRates).get('/formula').expect(200);
    expect(first.body).toEqual({
      type: 'mu',
      unit: 'per-hour',
      rates: { cpu: '0.50', gpu: '12.00', mem: '0.05' },
      currency: 'THB',
    });
    expect(first.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(first.headers['cache-control']).toBe('no-cache');
    expect(first.headers['content-security-policy']).toContain("default-src 'self'");
    const etag = first.headers.etag as string;
    const viaExpress = await request(withRates).get('/formula?type=mu').expect(200);
    expect(viaExpress.headers.etag).toBe(etag);
    expect(viaExpress.text).toBe(first.text);

    const notModified = await request(withRates).get('/formula').set('If-None-Match', `W/${etag}`).expect(304);
    expect(notModified.text).toBe('');
    expect(notModified.headers.etag).toBe(etag);
    expect(notModified.headers['cache-control']).toBe('no-cache');
    expect(notModified.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(securityHeadersOf(notModified.headers)).toEqual(securityHeadersOf(first.headers));
    expect(securityHeadersOf(first.headers)).toEqual(securityHeadersOf(viaExpress.headers));
    await request(withRates).get('/formula').set('If-None-Match', '"stale", *').expect(304);
    await request(withRates).get('/formula').set('If-None-Match', '"stale"').expect(200);
  });

  it('counts hot requests in the http metrics under their route templates', async () => {
    const before = await metricValue(metrics, 'http_requests_total', {
      method: 'GET',
      endpoint: '/healthz',
      status: '200',
    });
    await request(app).get('/healthz').expect(200);
    await request(app).get('/healthz').expect(200);
    expect(
      await metricValue(metrics, 'http_requests_total', { method: 'GET', endpoint: '/healthz', status: '200' }),
    ).toBe(before + 2);
  });
});

describe('view cache', () => {
  // Express turns it on only for NODE_ENV=production, which the app never sets (APP_ENV).
  it('keeps compiled templates in production and recompiles them in development', () => {
    expect(app.enabled('view cache')).toBe(true);
    expect(buildTestApp(db).enabled('view cache')).toBe(false);
  });
});
