import { Writable } from 'node:stream';
import express from 'express';
import { pino } from 'pino';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { requestContext } from '../../src/http/request-context.js';

function appLoggingAt(level: string) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  const app = express();
  app.use(requestContext(pino({ level }, sink)));
  app.get('/things/:id', (_req, res) => {
    res.send('ok');
  });
  return { app, lines };
}

describe('requestContext', () => {
  it('logs one line per request at info, with the route template and no raw path', async () => {
    const { app, lines } = appLoggingAt('info');
    const response = await request(app).get('/things/42?token=secret').set('X-Request-Id', 'abc-1').expect(200);
    expect(response.headers['x-request-id']).toBe('abc-1');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines).toMatchObject([{ msg: 'request', reqId: 'abc-1', route: '/things/:id', status: 200 }]);
    expect(JSON.stringify(lines)).not.toContain('secret');
  });

  it('logs the method as the metrics label it: by name for the methods the app answers, other for the rest', async () => {
    // The line logged the raw method while http_requests_total said `other`: a PROPFIND in the logs
    // matched no series, and the two could not be read against each other.
    const { app, lines } = appLoggingAt('info');
    await request(app).get('/things/1').expect(200);
    await request(app).head('/things/1').expect(200);
    await request(app).post('/things/1').expect(404);
    await request(app).options('/things/1').expect(200);
    await request(app).patch('/things/1').expect(404);
    await request(app).delete('/things/1').expect(404);
    await request(app).propfind('/things/1').expect(404);
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.map((line) => line.method)).toEqual(['GET', 'HEAD', 'POST', 'OPTIONS', 'other', 'other', 'other']);
  });

  it('writes nothing at warn (production) but still gives the request an id', async () => {
    const { app, lines } = appLoggingAt('warn');
    const response = await request(app).get('/things/42').expect(200);
    expect(response.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines).toEqual([]);
  });
});
