import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { httpMetrics } from '../../src/http/http-metrics.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';

function buildApp() {
  const metrics = createMetrics();
  const app = express();
  app.use(httpMetrics(metrics));
  // In front of the routes, as CSRF is: refuses a post without the token before any route runs.
  app.use((req, res, next) => (req.method === 'POST' && !req.get('x-token') ? res.status(403).end() : next()));
  const receipts = express.Router();
  receipts.get('/receipts/:id', (req, res) => {
    if (req.params.id === 'boom') throw new Error('boom');
    res.json({ id: req.params.id });
  });
  app.use('/me', receipts);
  app.post('/things', (_req, res) => res.status(201).end());
  app.get('/metrics', async (_req, res) => res.send(await metrics.registry.metrics()));
  return { app, metrics };
}

async function valuesOf(metrics: ReturnType<typeof createMetrics>): Promise<Record<string, string | number>[]> {
  const [json] = (await metrics.registry.getMetricsAsJSON()).filter((metric) => metric.name === 'http_requests_total');
  return (json?.values ?? []).map((value) => ({ ...value.labels, value: value.value }));
}

describe('httpMetrics', () => {
  it('records the route template of a nested router, never the raw id', async () => {
    const { app, metrics } = buildApp();
    await request(app).get('/me/receipts/41').expect(200);
    await request(app).get('/me/receipts/42').expect(200);
    await request(app).get('/me/receipts/boom').expect(500);
    await request(app).post('/things').set('x-token', 'yes').expect(201);
    expect(await valuesOf(metrics)).toEqual(
      expect.arrayContaining([
        { method: 'GET', endpoint: '/me/receipts/:id', status: '200', value: 2 },
        { method: 'GET', endpoint: '/me/receipts/:id', status: '500', value: 1 },
        { method: 'POST', endpoint: '/things', status: '201', value: 1 },
      ]),
    );
    const text = await metrics.registry.metrics();
    expect(text).not.toContain('/me/receipts/41');
    expect(text).toContain('http_request_duration_seconds_count{endpoint="/me/receipts/:id",method="GET"} 3');
  });

  it('gives a thousand random paths a single series', async () => {
    const { app, metrics } = buildApp();
    for (let index = 0; index < 1000; index++) await request(app).get(`/scan/${index}/${Math.random()}`).expect(404);
    const unmatched = (await valuesOf(metrics)).filter((value) => value.endpoint === 'unmatched');
    expect(unmatched).toEqual([{ method: 'GET', endpoint: 'unmatched', status: '404', value: 1000 }]);
  });

  it('keeps the methods the app answers and counts every other one as `other`', async () => {
    // Node accepts some 34 methods (PROPFIND, MKCOL, ...): labelled by name, each was a new
    // series any client could add with one request.
    const { app, metrics } = buildApp();
    await request(app).get('/me/receipts/1').expect(200);
    await request(app).head('/me/receipts/1').expect(200);
    await request(app).options('/things').expect(200);
    for (const method of ['propfind', 'mkcol', 'put', 'delete', 'patch'] as const)
      await request(app)[method]('/things');
    const methods = new Set((await valuesOf(metrics)).map((value) => value.method));
    expect([...methods].sort()).toEqual(['GET', 'HEAD', 'OPTIONS', 'other']);
    const text = await metrics.registry.metrics();
    expect(text).not.toMatch(/method="(PROPFIND|MKCOL|PUT|DELETE|PATCH)"/);
    expect(text).toMatch(/http_request_duration_seconds_count\{endpoint="[^"]+",method="other"\} \d+/);
  });

  it('tells a refusal before any route ran from a path no route takes', async () => {
    const { app, metrics } = buildApp();
    await request(app).post('/things').expect(403);
    await request(app).post('/nowhere').set('x-token', 'yes').expect(404);
    expect(await valuesOf(metrics)).toEqual([
      { method: 'POST', endpoint: 'before_route', status: '403', value: 1 },
      { method: 'POST', endpoint: 'unmatched', status: '404', value: 1 },
    ]);
  });

  it('does not record scrapes of /metrics', async () => {
    const { app, metrics } = buildApp();
    await request(app).get('/metrics').expect(200);
    expect((await valuesOf(metrics)).filter((value) => value.endpoint === '/metrics')).toEqual([]);
  });
});
