import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import express from 'express';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createHotRoutes } from '../../src/http/hot-routes.js';
import { httpMetrics } from '../../src/http/http-metrics.js';
import { requestContext } from '../../src/http/request-context.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';

/**
 * A real server: a client that gives up mid-request (as a browser does after 30 s on a slow
 * month-end run) can only be played with a socket that closes while the handler still works.
 */
async function startServer() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  const metrics = createMetrics();
  let handlerStarted!: () => void;
  const started = new Promise<void>((resolve) => {
    handlerStarted = resolve;
  });
  let releaseHandler!: () => void;
  const released = new Promise<void>((resolve) => {
    releaseHandler = resolve;
  });
  let handlerFinished!: () => void;
  const finished = new Promise<void>((resolve) => {
    handlerFinished = resolve;
  });
  const app = express();
  app.use(requestContext(pino({ level: 'info' }, sink)));
  app.use(httpMetrics(metrics));
  app.post('/slow/:id', async (_req, res) => {
    handlerStarted();
    await released;
    // The work goes on after the client left, and the answer is written into a closed socket.
    res.status(201).send('done');
    handlerFinished();
  });
  app.get('/fast', (_req, res) => {
    res.send('ok');
  });
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, port, lines, metrics, started, releaseHandler, finished };
}

async function counted(metrics: ReturnType<typeof createMetrics>) {
  const [json] = (await metrics.registry.getMetricsAsJSON()).filter((metric) => metric.name === 'http_requests_total');
  return (json?.values ?? []).map((value) => ({ ...value.labels, value: value.value }));
}

const ticks = async (count = 5) => {
  for (let index = 0; index < count; index++) await new Promise((resolve) => setImmediate(resolve));
};

let server: http.Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

describe('a request whose client closed the connection before the answer', () => {
  it('is logged once with 499 and clientClosed, and counted once with status 499', async () => {
    const running = await startServer();
    server = running.server;
    const closedOnServer = new Promise<void>((resolve) =>
      running.server.once('connection', (socket) => socket.once('close', () => resolve())),
    );
    const client = http.request({
      host: '127.0.0.1',
      port: running.port,
      method: 'POST',
      path: '/slow/7?token=secret',
    });
    client.on('error', () => {});
    client.end();
    await running.started;
    client.destroy();
    await closedOnServer;
    await ticks();

    expect(running.lines).toMatchObject([
      { msg: 'request', method: 'POST', route: '/slow/:id', status: 499, clientClosed: true },
    ]);
    expect(typeof running.lines[0]?.latencyMs).toBe('number');
    expect(JSON.stringify(running.lines)).not.toContain('secret');
    expect(await counted(running.metrics)).toEqual([
      { method: 'POST', endpoint: '/slow/:id', status: '499', value: 1 },
    ]);

    // The handler finishing later neither logs nor counts it a second time.
    running.releaseHandler();
    await running.finished;
    await ticks();
    expect(running.lines).toHaveLength(1);
    expect(await counted(running.metrics)).toEqual([
      { method: 'POST', endpoint: '/slow/:id', status: '499', value: 1 },
    ]);
  });

  it('leaves a normal request logged and counted once, with its own status and no flag', async () => {
    const running = await startServer();
    server = running.server;
    const agent = new http.Agent({ keepAlive: true });
    for (let index = 0; index < 2; index++) {
      await new Promise<void>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port: running.port, path: '/fast', agent }, (response) => {
            response.resume();
            response.on('end', resolve);
          })
          .on('error', reject);
      });
    }
    agent.destroy();
    await ticks();
    expect(running.lines).toHaveLength(2);
    expect(running.lines[0]).toMatchObject({ msg: 'request', route: '/fast', status: 200 });
    expect(running.lines[0]).not.toHaveProperty('clientClosed');
    expect(await counted(running.metrics)).toEqual([{ method: 'GET', endpoint: '/fast', status: '200', value: 2 }]);
  });
});

describe('GET /formula on the fast path, whose client left while the rates were read', () => {
  it('is logged and counted once with 499 and clientClosed', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    });
    const metrics = createMetrics();
    let formulaAsked!: () => void;
    const asked = new Promise<void>((resolve) => {
      formulaAsked = resolve;
    });
    let answerFormula!: () => void;
    const answered = new Promise<void>((resolve) => {
      answerFormula = resolve;
    });
    const serveHotRoute = createHotRoutes({
      securityHeaders: [],
      rates: {
        getFormula: async () => {
          formulaAsked();
          await answered;
          return { etag: '"f1"', body: '{}', tier: 'standard' } as never;
        },
      },
      metrics,
      logger: pino({ level: 'info' }, sink),
    });
    server = http.createServer((req, res) => {
      if (!serveHotRoute(req, res, () => res.end())) res.end();
    });
    const listening = server;
    await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
    const { port } = listening.address() as AddressInfo;
    const closedOnServer = new Promise<void>((resolve) =>
      listening.once('connection', (socket) => socket.once('close', () => resolve())),
    );
    const client = http.request({ host: '127.0.0.1', port, path: '/formula' });
    client.on('error', () => {});
    client.end();
    await asked;
    client.destroy();
    await closedOnServer;
    answerFormula();
    await ticks();
    expect(lines).toMatchObject([{ msg: 'request', route: '/formula', status: 499, clientClosed: true }]);
    expect(await counted(metrics)).toEqual([{ method: 'GET', endpoint: '/formula', status: '499', value: 1 }]);
  });
});

describe('a request whose client left while a middleware in front of the routes still worked on it', () => {
  it('is logged and counted under before_route, not under unmatched (the label of 404 scans)', async () => {
    // The session store waiting on a slow database: the request was meant for /me, but no route has
    // taken it yet. As "unmatched" its 499s read as scanners giving up, not as /me being too slow.
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    });
    const metrics = createMetrics();
    let sessionAsked!: () => void;
    const asked = new Promise<void>((resolve) => {
      sessionAsked = resolve;
    });
    const app = express();
    app.use(requestContext(pino({ level: 'info' }, sink)));
    app.use(httpMetrics(metrics));
    app.use((_req, _res, _next) => sessionAsked());
    app.get('/me', (_req, res) => {
      res.send('usage');
    });
    const listening = http.createServer(app);
    server = listening;
    await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
    const { port } = listening.address() as AddressInfo;
    const closedOnServer = new Promise<void>((resolve) =>
      listening.once('connection', (socket) => socket.once('close', () => resolve())),
    );
    const client = http.request({ host: '127.0.0.1', port, path: '/me' });
    client.on('error', () => {});
    client.end();
    await asked;
    client.destroy();
    await closedOnServer;
    await ticks();
    expect(lines).toMatchObject([{ msg: 'request', route: 'before_route', status: 499, clientClosed: true }]);
    expect(await counted(metrics)).toEqual([{ method: 'GET', endpoint: 'before_route', status: '499', value: 1 }]);
  });
});
