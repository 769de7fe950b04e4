import { Writable } from 'node:stream';
import express from 'express';
import pg from 'pg';
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VIEWS_DIR } from '../../src/app.js';
import { errorHandler, notFoundHandler } from '../../src/http/error-handler.js';
import { requestContext } from '../../src/http/request-context.js';
import { createViewEngine } from '../../src/http/view-engine.js';
import { ConflictError, NotFoundError } from '../../src/shared/errors.js';
import { createLogger } from '../../src/shared/logger.js';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

/** A small app with routes that fail in each way, behind the app's real error path. */
function buildFailingApp() {
  const app = express();
  // The app's own view engine: views include their partials by absolute path under the views folder.
  app.engine('ejs', createViewEngine({ isProduction: false }));
  app.set('view engine', 'ejs');
  app.set('views', VIEWS_DIR);
  app.locals.appName = 'HPC Billing';
  app.locals.currency = 'THB';
  app.use(requestContext(createLogger('silent')));
  app.use(express.json({ limit: '1kb' }));
  app.get('/conflict', () => {
    throw new ConflictError('This receipt was already paid.');
  });
  app.get('/conflict-with-link', () => {
    throw new ConflictError(
      'Run #7 is already running.',
      { holder: 'internal detail' },
      { publicFields: { runId: 7, statusUrl: '/runs/7', error: 'not this', code: 500 } },
    );
  });
  app.get('/missing', async () => {
    throw new NotFoundError('No such receipt.');
  });
  app.get('/crash', async () => {
    throw new Error('secret internal detail');
  });
  app.get('/duplicate-user', async () => {
    await db.prisma.user.create({ data: { username: 'twice', passwordHash: 'x' } });
    await db.prisma.user.create({ data: { username: 'twice', passwordHash: 'x' } });
  });
  app.post('/echo', (req, res) => res.json(req.body));
  // A transaction that outlives its time limit (Prisma's default is 5 s; here 200 ms): PostgreSQL
  // rolled it back, and Prisma's next query in it fails with P2028.
  app.post('/slow-transaction', async (_req, res) => {
    await db.prisma.$transaction(
      async (tx) => {
        await tx.user.create({ data: { username: 'slow-transaction', passwordHash: 'x' } });
        await new Promise((resolve) => setTimeout(resolve, 600));
        await tx.user.create({ data: { username: 'slow-transaction-2', passwordHash: 'x' } });
      },
      { timeout: 200 },
    );
    res.json({ ok: true });
  });
  app.use(notFoundHandler);
  app.use(errorHandler(createLogger('silent')));
  return app;
}

describe('the one error path', () => {
  const app = buildFailingApp();

  it('answers JSON {error, code} to API clients', async () => {
    const response = await request(app).get('/conflict').expect(409);
    expect(response.body).toEqual({ error: 'This receipt was already paid.', code: 409 });
  });

  it('adds the public fields an error carries to its JSON, never its details, and never over error and code', async () => {
    const response = await request(app).get('/conflict-with-link').expect(409);
    expect(response.body).toEqual({ error: 'Run #7 is already running.', code: 409, runId: 7, statusUrl: '/runs/7' });
    const page = await request(app).get('/conflict-with-link').set('Accept', 'text/html').expect(409);
    expect(page.text).toContain('Run #7 is already running.');
    expect(page.text).not.toContain('internal detail');
  });

  // A transaction that ran out of time (a lock held elsewhere, a database too busy) was a bare 500
  // "Something went wrong on our side.", logged as an unhandled error: a month-end start under load
  // answered so. Prisma rolled it back whole, so the honest answer is a retry.
  it('answers 503 to a transaction that ran out of time, and nothing of it is stored', async () => {
    const response = await request(app).post('/slow-transaction').expect(503);
    expect(response.body).toEqual({
      error: 'The database was too busy to finish this in time, and nothing was changed. Try again in a moment.',
      code: 503,
      // Logged as an error, so the answer names the request's line for whoever reports it.
      requestId: expect.any(String),
    });
    expect(response.headers['retry-after']).toBe('5');
    const { rows } = await db.pool.query("SELECT 1 FROM users WHERE username LIKE 'slow-transaction%'");
    expect(rows).toEqual([]);
  });

  it('renders an HTML page for browsers', async () => {
    const response = await request(app).get('/missing').set('Accept', 'text/html').expect(404);
    expect(response.headers['content-type']).toMatch(/text\/html/);
    expect(response.text).toContain('No such receipt.');
    expect(response.text).toContain('<h1>Not Found (404)</h1>');
  });

  it('hides unknown errors behind a generic 500 that carries the request id', async () => {
    const response = await request(app).get('/crash').set('X-Request-Id', 'trace-me-123').expect(500);
    expect(response.body).toEqual({ error: 'Something went wrong on our side.', code: 500, requestId: 'trace-me-123' });
    expect(JSON.stringify(response.body)).not.toContain('secret internal detail');
    const page = await request(app).get('/crash').set('Accept', 'text/html').expect(500);
    expect(page.text).toContain(page.headers['x-request-id']);
  });

  it('maps a real Postgres unique violation (Prisma P2002) to 409', async () => {
    const response = await request(app).get('/duplicate-user').expect(409);
    expect(response.body.code).toBe(409);
    expect(await db.prisma.user.count({ where: { username: 'twice' } })).toBe(1);
  });

  it('answers malformed and oversized JSON with 400 and 413, not 500', async () => {
    const malformed = await request(app)
      .post('/echo')
      .set('Content-Type', 'application/json')
      .send('{"a":')
      .expect(400);
    expect(malformed.body).toEqual({ error: 'The request body is not valid JSON.', code: 400 });
    const large = await request(app)
      .post('/echo')
      .send({ blob: 'x'.repeat(5000) })
      .expect(413);
    expect(large.body.code).toBe(413);
  });

  // A form of more fields than the body parser takes was told only "The request could not be read.".
  it('answers a form of too many fields with 413 that says so', async () => {
    const realApp = buildTestApp(db);
    const fields = Array.from({ length: 1500 }, (_, index) => `f${index}=x`).join('&');
    const response = await request(realApp).post('/account/password').type('form').send(fields).expect(413);
    expect(response.body).toEqual({ error: 'The form has too many fields: at most 1000.', code: 413 });
  });

  // A script sending its JSON in another charset, or compressed in a way the app does not read, was
  // told only "The request could not be read.", with nothing about what to change.
  it('says which charset or content encoding of a body it cannot read, and what it reads', async () => {
    const realApp = buildTestApp(db);
    const charset = await request(realApp)
      .post('/me/receipt')
      .set('Content-Type', 'application/json; charset=latin1')
      .send('{"before":"2026-11-01"}')
      .expect(415);
    expect(charset.body).toEqual({
      error: 'The request body is in the charset latin1, which is not read here: send it as UTF-8.',
      code: 415,
    });
    const form = await request(realApp)
      .post('/me/receipt')
      .set('Content-Type', 'application/x-www-form-urlencoded; charset=utf-16')
      .send('before=2026-11-01')
      .expect(415);
    expect(form.body.error).toBe(
      'The request body is in the charset utf-16, which is not read here: send it as UTF-8.',
    );
    const encoding = await request(realApp)
      .post('/me/receipt')
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'x-compress')
      .send('{"before":"2026-11-01"}')
      .expect(415);
    expect(encoding.body).toEqual({
      error:
        'The request body is sent with Content-Encoding x-compress, which is not read here: send it uncompressed, or as gzip, deflate or br.',
      code: 415,
    });
    const corrupt = await request(realApp)
      .post('/me/receipt')
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'gzip')
      .send('{"before":"2026-11-01"}')
      .expect(400);
    expect(corrupt.body).toEqual({
      error: 'The request body could not be decompressed as its Content-Encoding, gzip, says it is compressed.',
      code: 400,
    });
  });

  it('keeps serving after a request failed', async () => {
    await request(app).get('/crash').expect(500);
    await request(app).post('/echo').send({ ok: true }).expect(200, { ok: true });
  });

  it('answers unknown paths of the real app with 404 in both forms', async () => {
    const realApp = buildTestApp(db);
    expect((await request(realApp).get('/no/such/page').expect(404)).body).toEqual({
      error: 'Page not found.',
      code: 404,
    });
    const page = await request(realApp).get('/no/such/page').set('Accept', 'text/html').expect(404);
    expect(page.text).toContain('Page not found.');
  });

  // The refusals made before routing (a NUL, a malformed %-escape, a body too large or of a type
  // not read) go through this one path as a page not found does, so each answers in the form a 404
  // does: the page only to a client that asks for text/html (a browser), JSON to curl's */*, to a
  // client that sends no Accept and to one asking for JSON, signed in or not.
  it('answers the refusals before routing in the form it answers a page not found, signed in or not', async () => {
    const realApp = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: 'refused-before-routing' });
    const clients = {
      'signed out': request(realApp),
      'signed in': await signInAs(realApp, user.username, user.password),
    };
    const refusals: Array<[string, number, (client: Agent) => request.Test]> = [
      ['a NUL in the query', 400, (client) => client.get('/me?start=%00')],
      ['a malformed %-escape in the path', 400, (client) => client.get('/me/receipts/%E0%A4%A')],
      [
        'a form body too large',
        413,
        (client) =>
          client
            .post('/me/receipt')
            .type('form')
            .send(`before=${'9'.repeat(200_000)}`),
      ],
      [
        'a body of a type not read',
        415,
        (client) => client.post('/me/receipt').type('text/plain').send('before=2026-12-01'),
      ],
    ];
    for (const accept of ['*/*', undefined, 'text/html', 'application/json']) {
      const withAccept = (call: request.Test) => (accept === undefined ? call : call.set('Accept', accept));
      const notFound = await withAccept(request(realApp).get('/no/such/page')).expect(404);
      const form = notFound.headers['content-type'];
      for (const [clientName, client] of Object.entries(clients)) {
        for (const [name, status, send] of refusals) {
          const response = await withAccept(send(client as Agent));
          const label = `${name}, ${clientName}, Accept: ${accept ?? '(none)'}`;
          expect(response.status, label).toBe(status);
          expect(response.headers['content-type'], label).toBe(form);
        }
      }
    }
  });
});

describe('security headers', () => {
  it('sends a strict CSP, no framing and a same-origin referrer policy', async () => {
    const response = await request(buildTestApp(db)).get('/').set('Accept', 'text/html').expect(200);
    expect(response.headers['content-security-policy']).toContain("script-src 'self'");
    expect(response.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    // Browsers without CSP level 2 read only X-Frame-Options; it says what frame-ancestors says.
    expect(response.headers['x-frame-options']).toBe('DENY');
    expect(response.headers['referrer-policy']).toBe('same-origin');
    expect(response.headers['x-powered-by']).toBeUndefined();
  });

  it('takes no resource from any https origin: fonts too come from this site only', async () => {
    // Helmet's default font-src was kept, `'self' https: data:`: the one directive that let a page
    // load from any https origin, where no page uses a web font.
    const response = await request(buildTestApp(db)).get('/login').set('Accept', 'text/html').expect(200);
    const policy = response.headers['content-security-policy'] ?? '';
    expect(policy).toContain("font-src 'self'");
    expect(policy).not.toMatch(/(^|[\s;])https:(?=[\s;]|$)/);
  });

  it('turns off the browser features no page uses (camera, microphone, geolocation, payment...)', async () => {
    // Without a Permissions-Policy, a script that got past the CSP (or a page that framed
    // ours, were framing ever allowed) could ask for the camera in this origin's name.
    const app = buildTestApp(db);
    for (const path of ['/', '/login', '/no/such/page']) {
      const response = await request(app).get(path).set('Accept', 'text/html');
      const policy = response.headers['permissions-policy'] ?? '';
      for (const feature of ['camera', 'microphone', 'geolocation', 'payment', 'usb'])
        expect(policy, `${path}: ${feature}`).toMatch(new RegExp(`(^|, )${feature}=\\(\\)(,|$)`));
    }
  });
});

describe('page titles', () => {
  it('name the page before the site, and the home page once', async () => {
    const app = buildTestApp(db);
    const home = await request(app).get('/').set('Accept', 'text/html').expect(200);
    expect(home.text).toContain('<title>HPC Billing</title>');
    const signIn = await request(app).get('/login').set('Accept', 'text/html').expect(200);
    expect(signIn.text).toContain('<title>Sign in · HPC Billing</title>');
  });
});

describe('a request still running when a shutdown closed the database pool', () => {
  it('answers 503 and is logged as a warning of the shutdown, not as an unhandled error with a stack', async () => {
    // SHUTDOWN_TIMEOUT_MS ran out: the connections were cut and the pool ended, but a handler that
    // was waiting (for a frozen database, say) goes on, and its next query meets the ended pool.
    const pool = new pg.Pool({ connectionString: db.url });
    await pool.end();
    const lines: { level: number; msg: string; reqId?: string }[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk, _encoding, callback) {
          lines.push(JSON.parse(String(chunk)));
          callback();
        },
      }),
    );
    const app = express();
    app.use(requestContext(createLogger('silent')));
    app.get('/me', async (_req, res) => {
      res.json((await pool.query('SELECT 1 AS one')).rows);
    });
    app.use(errorHandler(logger));

    const response = await request(app).get('/me').set('X-Request-Id', 'cut-by-shutdown-1').expect(503);
    expect(response.headers['retry-after']).toBe('5');
    expect(lines.filter((line) => line.level >= 50)).toEqual([]);
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 40, reqId: 'cut-by-shutdown-1', msg: expect.stringContaining('shutting down') }),
    );
  });
});

describe('the error lines of an unexpected error', () => {
  // The request's own line logs the route template, never the raw path; the error lines logged
  // the raw path, so a token or a name in a URL (a mistyped address, a scan) went to the logs.
  function buildLoggedApp(lines: Record<string, unknown>[]) {
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk, _encoding, callback) {
          lines.push(JSON.parse(String(chunk)));
          callback();
        },
      }),
    );
    const app = express();
    app.use(requestContext(createLogger('silent')));
    app.use('/broken', () => {
      throw new Error('middleware failed');
    });
    app.get('/receipts/:id', () => {
      throw new Error('handler failed');
    });
    app.use(notFoundHandler);
    app.use(errorHandler(logger));
    return app;
  }

  it('name the route template, or before_route when no route had taken the request, never the raw path', async () => {
    const lines: Record<string, unknown>[] = [];
    const app = buildLoggedApp(lines);
    await request(app).get('/receipts/token-a1b2c3?email=alice%40example.org').expect(500);
    await request(app).get('/broken/token-d4e5f6/alice@example.org').expect(500);
    const errors = lines.filter((line) => line.msg === 'unhandled error');
    expect(errors.map((line) => line.route)).toEqual(['/receipts/:id', 'before_route']);
    for (const line of errors) {
      expect(line).not.toHaveProperty('path');
      expect(JSON.stringify(line)).not.toMatch(/token-|alice/);
    }
  });

  it('name the method as the request line and the metrics do: other for a method the app does not answer', async () => {
    const lines: Record<string, unknown>[] = [];
    const app = buildLoggedApp(lines);
    await request(app).get('/broken/x').expect(500);
    await request(app).propfind('/broken/x').expect(500);
    const errors = lines.filter((line) => line.msg === 'unhandled error');
    expect(errors.map((line) => line.method)).toEqual(['GET', 'other']);
  });
});
