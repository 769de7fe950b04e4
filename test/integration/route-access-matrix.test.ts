import type express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { DUMMY_PAYMENTS_ENV } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { billJobs, startCheckout } from '../support/receipt-steps.js';
import { type Agent, csrfTokenIn, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * Who may do what, for every route the app registers: the review of docs/security.md ("Roles") as a
 * table. The routes are read from the app's own router, and a route that is not in the table fails
 * the first test, so a new route cannot go out without someone deciding who may use it.
 *
 * - public: anyone, signed in or not (never a 5xx).
 * - user: any signed-in user, on their own data; a visitor is sent to /login (a page) or gets 401/403
 *   (JSON, a form); another user's receipt, payment or checkout is 404 (or 403), never 200.
 * - admin: admins only; a researcher is sent to /me (a page) or gets 403, never 200.
 * - webhook: a payment provider's signed POST; an unsigned one is refused, whoever sends it.
 * - operator: /metrics, with METRICS_TOKEN set: only with `Authorization: Bearer <token>`.
 * - session: POST /login and POST /logout, which start and end the session itself (visitors only here).
 * - middleware: mounted at a path before the routes without answering a request itself (body parsers).
 */
type Access = 'public' | 'user' | 'admin' | 'webhook' | 'operator' | 'session' | 'middleware';

const EXPECTED_ACCESS: Record<string, Access> = {
  'USE /static': 'public',
  'GET /favicon.ico': 'public',
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  'GET /metrics': 'operator',
  'POST /payments/webhook': 'webhook',
  'POST /payments/webhook/:provider': 'webhook',
  // Answers only another method at an address of no provider here, with the 404 a POST there gets.
  'USE /payments/webhook': 'middleware',
  'USE /payments/webhook/:provider': 'middleware',
  'GET /formula': 'public',
  'USE /formula': 'middleware',
  'USE /admin/rates': 'middleware',
  'USE /admin/rates/tiers': 'middleware',
  'USE /admin/receipts/:id/paid': 'middleware',
  'USE /login': 'middleware',
  'GET /': 'public',
  'GET /login': 'public',
  'POST /login': 'session',
  'GET /logout': 'public',
  'POST /logout': 'session',
  'GET /rates': 'public',

  'GET /account': 'user',
  'POST /account/password': 'user',
  'POST /account/sign-out-others': 'user',
  'GET /me': 'user',
  'GET /me.csv': 'user',
  'POST /me/receipt': 'user',
  'GET /me/receipts': 'user',
  'GET /me/receipts/:id': 'user',
  'GET /me/receipts/:id/print': 'user',
  'GET /me/receipts/:id/items.csv': 'user',
  'GET /payments/receipt/:id/start': 'user',
  'POST /payments/receipt/:id/start': 'user',
  'GET /payments/thanks': 'user',
  'GET /payments/receipt/:id/status': 'user',
  'GET /payments/dummy/checkout/:externalId': 'user',
  'POST /payments/dummy/checkout/:externalId': 'user',

  'GET /admin': 'admin',
  'GET /admin/users': 'admin',
  'POST /admin/users': 'admin',
  'POST /admin/users/:id/password': 'admin',
  'POST /admin/users/:id/role': 'admin',
  'POST /admin/users/:id/sign-out-all': 'admin',
  'POST /admin/users/:id/unlock': 'admin',
  'POST /admin/users/:id/disable': 'admin',
  'POST /admin/users/:id/enable': 'admin',
  'GET /admin/audit': 'admin',
  'GET /admin/audit.csv': 'admin',
  'GET /admin/audit/verify': 'admin',
  'POST /admin/audit/verify': 'admin',
  'POST /formula': 'admin',
  'GET /admin/rates': 'admin',
  'POST /admin/rates': 'admin',
  'POST /admin/rates/tiers': 'admin',
  'POST /admin/rates/tiers/edit': 'admin',
  'POST /admin/rates/tiers/delete': 'admin',
  'POST /admin/rates/default': 'admin',
  'GET /admin/tiers': 'admin',
  'POST /admin/tiers': 'admin',
  'GET /admin/payments': 'admin',
  'POST /admin/payments/:id/resolve': 'admin',
  'POST /admin/payments/refused-claims/:id/settle': 'admin',
  'GET /admin/usage': 'admin',
  'GET /admin/usage.csv': 'admin',
  'GET /admin/my.csv': 'admin',
  'GET /admin/receipts': 'admin',
  'GET /admin/receipts/:id': 'admin',
  'GET /admin/receipts/:id/print': 'admin',
  'GET /admin/receipts/:id/items.csv': 'admin',
  'POST /admin/receipts/:id/paid': 'admin',
  'POST /admin/receipts/:id/void': 'admin',
  'GET /admin/month-end': 'admin',
  'POST /admin/month-end': 'admin',
  'GET /admin/month-end/:id': 'admin',
  'GET /admin/paid.csv': 'admin',
  'GET /admin/receipts.csv': 'admin',
  'GET /admin/ingestion': 'admin',
  'POST /admin/ingestion/run': 'admin',
};

const METRICS_TOKEN = 'route-access-matrix-metrics-token';

/** The parts of Express 5's router read here (as src/http/method-not-allowed.ts reads them). */
interface RouterLayer {
  rawPath?: unknown;
  route?: { path: string; _methods(includeAll?: boolean): string[] };
  handle?: { stack?: RouterLayer[] };
}

/**
 * "METHOD /path" for every route of the app (HEAD is answered as GET, so it goes with it), and
 * "USE /path" for middleware mounted at a path of its own.
 */
function registeredRoutes(app: express.Express): string[] {
  const found = new Set<string>();
  const walk = (stack: readonly RouterLayer[], prefix: string) => {
    for (const layer of stack) {
      const mountPath = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
      if (layer.route) {
        for (const method of layer.route._methods(true)) {
          if (method !== 'HEAD') found.add(`${method} ${prefix}${layer.route.path}`);
        }
      } else if (Array.isArray(layer.handle?.stack)) {
        walk(layer.handle.stack, prefix + mountPath);
      } else if (mountPath) {
        found.add(`USE ${prefix}${mountPath}`);
      } else if (layer.rawPath !== '/' && layer.rawPath !== undefined) {
        // A path that is not text (a list, a pattern) is a mount this walk cannot name: review it by hand.
        found.add(`USE ${String(layer.rawPath)}`);
      }
    }
  };
  walk((app as unknown as { router: { stack: RouterLayer[] } }).router.stack, '');
  return [...found].sort();
}

let db: TestDatabase;
let app: express.Express;
let alice: Agent;
let bob: Agent;
let admin: Agent;
/** Bob's: his receipt, his user, his payment and its dummy checkout; carol is the one admins act on. */
const ids = { receipt: 0, bobUser: 0, carolUser: 0, payment: 0, externalId: '', bobJob: '' };

/** A route's address with its parameters filled with bob's ids (carol's user for an admin's actions). */
function addressOf(route: string, userId = ids.bobUser, of: { receipt: number; externalId: string } = ids): string {
  const path = route
    .replace(':provider', 'dummy')
    .replace(':externalId', of.externalId)
    .replace(/^\/admin\/users\/:id/, `/admin/users/${userId}`)
    .replace(/^\/admin\/payments\/:id/, `/admin/payments/${ids.payment}`)
    .replace(/^\/admin\/payments\/refused-claims\/:id/, '/admin/payments/refused-claims/1')
    .replace(/^\/admin\/month-end\/:id/, '/admin/month-end/1')
    .replace(':id', String(of.receipt));
  return path === '/payments/thanks' ? `/payments/thanks?rid=${of.receipt}` : path;
}

/** A receipt and a checkout that are nobody's: another user's must be answered as these are. */
const MISSING = { receipt: 999_999, externalId: 'dummy_999999_deadbeef' };

const routesOf = (access: Access) =>
  Object.entries(EXPECTED_ACCESS)
    .filter(([, expected]) => expected === access)
    .map(([route]) => {
      const [method, path] = route.split(' ') as [string, string];
      return { route, method, path };
    });

/** The rows of every table a request could change (not the sessions), as one digest per table. */
async function dataDigest(options: { withAuditAndThrottles?: boolean } = {}): Promise<Record<string, string>> {
  const skipped = ['session', '_prisma_migrations'];
  if (!options.withAuditAndThrottles) skipped.push('audit_log', 'auth_throttle', 'auth_network_throttle');
  const { rows: tables } = await db.pool.query<{ name: string }>(
    `SELECT table_name AS name FROM information_schema.tables
      WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND NOT (table_name = ANY($1)) ORDER BY 1`,
    [skipped],
  );
  const columns = tables.map(
    ({ name }) => `(SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM "${name}" t) AS "${name}"`,
  );
  const { rows } = await db.pool.query<Record<string, string>>(`SELECT ${columns.join(', ')}`);
  return rows[0] as Record<string, string>;
}

type Caller = { name: string; agent: ReturnType<typeof request.agent> | Agent };

/** Sends `method` to `address` as `caller`; `as` JSON or a browser's page; `token` a CSRF token for a POST. */
function send(caller: Caller, method: string, address: string, as: 'html' | 'json', token?: string) {
  const verb = method.toLowerCase() as 'get' | 'head' | 'post';
  let pending = caller.agent[verb](address).set('Accept', as === 'json' ? 'application/json' : 'text/html');
  if (token) pending = pending.set('X-CSRFToken', token);
  if (verb === 'post') pending = pending.type(as === 'json' ? 'json' : 'form').send({});
  return pending;
}

/** What went wrong, one line a request, so that one failure lists every route that broke its expectation. */
const defects: string[] = [];
function expectThat(isAsExpected: boolean, line: string) {
  if (!isAsExpected) defects.push(line);
}
const statusLine = (caller: Caller, method: string, address: string, as: string, response: request.Response) =>
  `${caller.name} ${method} ${address} (${as}): ${response.status} ${response.headers.location ?? ''} ${response.text?.slice(0, 120) ?? ''}`;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  app = buildTestApp(db, { env: { ...DUMMY_PAYMENTS_ENV, METRICS_TOKEN } });
  const users = {
    alice: await buildUser(db.prisma, { username: 'alice' }),
    bob: await buildUser(db.prisma, { username: 'bob' }),
    carol: await buildUser(db.prisma, { username: 'carol' }),
    admin: await buildUser(db.prisma, { username: 'root', role: 'admin' }),
  };
  ids.bobUser = users.bob.id;
  ids.carolUser = users.carol.id;
  [ids.bobJob] = (await buildJobs(db, [
    { user: 'bob', end: '2026-01-10T10:00:00Z', totalCpuSec: '72000', stepMemGbHours: '0' },
    { user: 'alice', end: '2026-01-12T10:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' },
  ])) as [string];
  [alice, bob, admin] = await Promise.all([
    signInAs(app, 'alice', users.alice.password),
    signInAs(app, 'bob', users.bob.password),
    signInAs(app, 'root', users.admin.password),
  ]);
  ids.receipt = await billJobs(bob);
  const checkout = await startCheckout(bob, ids.receipt);
  ids.externalId = decodeURIComponent(checkout.split('/').pop() ?? '');
  ids.payment = (await db.prisma.payment.findFirstOrThrow({ where: { receiptId: ids.receipt } })).id;
}, 60_000);
afterAll(() => db?.drop());
beforeEach(() => {
  defects.length = 0;
});

describe('the table of who may do what', () => {
  it('names every route the app registers, and no route it does not', () => {
    expect(registeredRoutes(app), 'add the new route to EXPECTED_ACCESS, deciding who may use it').toEqual(
      Object.keys(EXPECTED_ACCESS).sort(),
    );
  });
});

describe('route access', () => {
  it('bob opens his own receipt, checkout and payment status (the ids the other checks use are his)', async () => {
    const own = { name: 'bob (owner)', agent: bob };
    for (const { method, path } of routesOf('user').filter(
      ({ method, path }) => method === 'GET' && /:|thanks/.test(path),
    )) {
      const address = addressOf(path);
      const response = await send(own, method, address, 'html');
      expectThat(response.status === 200, statusLine(own, method, address, 'html', response));
    }
    expect(defects).toEqual([]);
  });

  it('a visitor is sent to sign in, or refused, on every route that needs a user; never given data or a 5xx', async () => {
    const visitor = { name: 'visitor', agent: request.agent(app) };
    const visitorToken = csrfTokenIn((await visitor.agent.get('/login').set('Accept', 'text/html')).text);
    for (const { method, path } of [...routesOf('user'), ...routesOf('admin')]) {
      const address = addressOf(path);
      if (method === 'GET') {
        for (const verb of ['GET', 'HEAD']) {
          const page = await send(visitor, verb, address, 'html');
          expectThat(
            page.status === 302 && /^\/login(\?|$)/.test(page.headers.location ?? ''),
            statusLine(visitor, verb, address, 'html', page),
          );
        }
        const json = await send(visitor, method, address, 'json');
        expectThat([401, 403].includes(json.status), statusLine(visitor, method, address, 'json', json));
        continue;
      }
      const before = await dataDigest({ withAuditAndThrottles: true });
      const withoutToken = await send(visitor, method, address, 'json');
      expectThat(withoutToken.status === 403, statusLine(visitor, method, address, 'json, no token', withoutToken));
      const withToken = await send(visitor, method, address, 'json', visitorToken);
      expectThat([401, 403].includes(withToken.status), statusLine(visitor, method, address, 'json', withToken));
      const page = await send(visitor, method, address, 'html', visitorToken);
      expectThat([401, 403].includes(page.status), statusLine(visitor, method, address, 'html', page));
      expectThat(
        JSON.stringify(await dataDigest({ withAuditAndThrottles: true })) === JSON.stringify(before),
        `visitor ${method} ${address}: changed data`,
      );
    }
    expect(defects).toEqual([]);
  });

  it('a researcher is sent to My usage, or refused, on every admin route; nothing is changed', async () => {
    const researcher = { name: 'alice', agent: alice };
    for (const { method, path } of routesOf('admin')) {
      const address = addressOf(path);
      if (method === 'GET') {
        for (const verb of ['GET', 'HEAD']) {
          const page = await send(researcher, verb, address, 'html');
          expectThat(
            page.status === 302 && page.headers.location === '/me',
            statusLine(researcher, verb, address, 'html', page),
          );
        }
        const json = await send(researcher, method, address, 'json');
        expectThat(json.status === 403, statusLine(researcher, method, address, 'json', json));
        continue;
      }
      const before = await dataDigest({ withAuditAndThrottles: true });
      const dataBefore = await dataDigest();
      const withoutToken = await send(researcher, method, address, 'json');
      expectThat(withoutToken.status === 403, statusLine(researcher, method, address, 'json, no token', withoutToken));
      expectThat(
        JSON.stringify(await dataDigest({ withAuditAndThrottles: true })) === JSON.stringify(before),
        `alice ${method} ${address} without a token: changed data`,
      );
      const token = await csrfTokenOf(alice);
      for (const as of ['json', 'html'] as const) {
        const response = await send(researcher, method, address, as, token);
        expectThat(response.status === 403, statusLine(researcher, method, address, as, response));
      }
      // The refusal itself is audited (admin.forbidden): only the business data must stay as it was.
      expectThat(
        JSON.stringify(await dataDigest()) === JSON.stringify(dataBefore),
        `alice ${method} ${address}: changed data`,
      );
    }
    expect(defects).toEqual([]);
  });

  it("another user's receipt, payment and checkout are not found, for a researcher and an admin alike; nothing is changed", async () => {
    for (const caller of [
      { name: 'alice', agent: alice },
      { name: 'admin', agent: admin },
    ]) {
      for (const { method, path } of routesOf('user').filter(({ path }) => /:|thanks/.test(path))) {
        const address = addressOf(path);
        const before = await dataDigest();
        if (method === 'POST') {
          const withoutToken = await send(caller, method, address, 'json');
          expectThat(withoutToken.status === 403, statusLine(caller, method, address, 'json, no token', withoutToken));
        }
        const token = method === 'POST' ? await csrfTokenOf(caller.agent as Agent) : undefined;
        if (method === 'GET') {
          // A HEAD answered 200 would still tell that the receipt or checkout is there, and whose it is not.
          const head = await send(caller, 'HEAD', address, 'html');
          expectThat([403, 404].includes(head.status), statusLine(caller, 'HEAD', address, 'html', head));
        }
        const ask = (at: string, as: 'html' | 'json') =>
          method === 'POST' && path.includes('checkout')
            ? caller.agent
                .post(at)
                .set('Accept', as === 'json' ? 'application/json' : 'text/html')
                .set('X-CSRFToken', token ?? '')
                .type('form')
                .send({ choice: 'pay' })
            : send(caller, method, at, as, token);
        for (const as of ['html', 'json'] as const) {
          const response = await ask(address, as);
          expectThat([403, 404].includes(response.status), statusLine(caller, method, address, as, response));
        }
        // Answered as a receipt or checkout that is nobody's: a different answer tells that it is there.
        const missing = await ask(addressOf(path, ids.bobUser, MISSING), 'json');
        const asIfBobs = missing.text
          .replaceAll(MISSING.externalId, ids.externalId)
          .replaceAll(String(MISSING.receipt), String(ids.receipt));
        const others = await ask(address, 'json');
        expectThat(
          others.status === missing.status && others.text === asIfBobs,
          `${statusLine(caller, method, address, 'json', others)}; nobody's: ${missing.status} ${missing.text}`,
        );
        expectThat(
          JSON.stringify(await dataDigest()) === JSON.stringify(before),
          `${caller.name} ${method} ${address}: changed data`,
        );
      }
    }
    expect(defects).toEqual([]);
  });

  it("a researcher's own forms sent without the session's token are refused, and change nothing", async () => {
    const researcher = { name: 'alice', agent: alice };
    // Each form as it would succeed with its token: alice has a job of January 2026 to bill.
    const forms: Record<string, Record<string, string>> = {
      '/me/receipt': { before: '2026-01-31' },
      '/account/password': { current: 'alice-password', password: 'a-new-password-1', confirm: 'a-new-password-1' },
      '/account/sign-out-others': {},
    };
    expect(Object.keys(forms).sort()).toEqual(
      routesOf('user')
        .filter(({ method, path }) => method === 'POST' && !path.includes(':'))
        .map(({ path }) => path)
        .sort(),
    );
    const aliceElsewhere = await signInAs(app, 'alice', 'alice-password');
    for (const [path, form] of Object.entries(forms)) {
      const before = await dataDigest({ withAuditAndThrottles: true });
      for (const as of ['json', 'html'] as const) {
        const response = await alice
          .post(path)
          .set('Accept', as === 'json' ? 'application/json' : 'text/html')
          .type(as === 'json' ? 'json' : 'form')
          .send(form);
        expectThat(response.status === 403, statusLine(researcher, 'POST', path, `${as}, no token`, response));
      }
      expectThat(
        JSON.stringify(await dataDigest({ withAuditAndThrottles: true })) === JSON.stringify(before),
        `alice POST ${path} without a token: changed data`,
      );
    }
    // Her session elsewhere was not signed out.
    expect((await aliceElsewhere.get('/me').set('Accept', 'application/json')).status).toBe(200);
    expect(defects).toEqual([]);
  });

  it('a researcher reaches the routes of their own data; no 5xx', async () => {
    const researcher = { name: 'alice', agent: alice };
    // Bob's job ended in January 2026: the usage pages at that month.
    const addressAtBobsJob = (path: string) =>
      path.startsWith('/me') ? `${path}?start=2026-01-01&end=2026-01-31` : path;
    const bobsOwn = await bob.get(addressAtBobsJob('/me.csv'));
    expect(bobsOwn.text).toContain(ids.bobJob);
    for (const { method, path: route } of routesOf('user').filter(({ path }) => !/:|thanks/.test(path))) {
      const path = method === 'GET' ? addressAtBobsJob(route) : route;
      const token = method === 'POST' ? await csrfTokenOf(alice) : undefined;
      const response = await send(researcher, method, path, 'json', token);
      expectThat(
        ![401, 403].includes(response.status) && response.status < 500,
        statusLine(researcher, method, path, 'json', response),
      );
      expectThat(
        !response.text.includes(ids.bobJob) && !/\bbob\b/.test(response.text),
        `alice ${method} ${path}: shows bob or his job ${ids.bobJob}`,
      );
    }
    expect(defects).toEqual([]);
  });

  it('public routes answer anyone without a 5xx; sign-in and sign-out refuse a form without its token', async () => {
    const visitor = { name: 'visitor', agent: request.agent(app) };
    for (const caller of [visitor, { name: 'alice', agent: alice }]) {
      for (const { method, path } of routesOf('public')) {
        const address = path === 'USE /static' || path === '/static' ? '/static/css/app.css' : path;
        for (const as of ['html', 'json'] as const) {
          const response = await send(caller, method === 'USE' ? 'GET' : method, address, as);
          expectThat(response.status < 500, statusLine(caller, method, address, as, response));
        }
      }
    }
    const before = await dataDigest({ withAuditAndThrottles: true });
    const signIn = await visitor.agent.post('/login').type('form').send({ username: 'bob', password: 'bob-password' });
    expectThat(signIn.status === 403, statusLine(visitor, 'POST', '/login', 'html, no token', signIn));
    expectThat(
      JSON.stringify(await dataDigest({ withAuditAndThrottles: true })) === JSON.stringify(before),
      'visitor POST /login without a token: changed data',
    );
    const signOut = await visitor.agent.post('/logout').type('form').send({});
    expectThat(signOut.status < 500 && signOut.status !== 200, statusLine(visitor, 'POST', '/logout', 'html', signOut));
    expect(defects).toEqual([]);
  });

  it("a sign-out posted without the session's token is refused, and the session stays signed in", async () => {
    const carol = await signInAs(app, 'carol', 'carol-password');
    const signOut = await carol.post('/logout').set('Accept', 'application/json').send({});
    expect(signOut.status).toBe(403);
    expect((await carol.get('/me').set('Accept', 'application/json')).status).toBe(200);
  });

  it('an unsigned webhook is refused whoever sends it, and changes nothing', async () => {
    for (const caller of [
      { name: 'visitor', agent: request.agent(app) },
      { name: 'alice', agent: alice },
      { name: 'admin', agent: admin },
    ]) {
      for (const { method, path } of routesOf('webhook')) {
        const address = addressOf(path);
        const before = await dataDigest();
        const response = await caller.agent
          .post(address)
          .set('Content-Type', 'application/json')
          .send(JSON.stringify({ type: 'payment.succeeded', externalId: ids.externalId }));
        expectThat(
          response.status >= 400 && response.status < 500,
          statusLine(caller, method, address, 'json', response),
        );
        expectThat(
          JSON.stringify(await dataDigest()) === JSON.stringify(before),
          `${caller.name} POST ${address}: changed data`,
        );
      }
    }
    expect(defects).toEqual([]);
  });

  it('/metrics, with METRICS_TOKEN set, answers only its bearer, not a session', async () => {
    for (const caller of [
      { name: 'visitor', agent: request.agent(app) },
      { name: 'alice', agent: alice },
      { name: 'admin', agent: admin },
    ]) {
      for (const { method, path } of routesOf('operator')) {
        const response = await send(caller, method, path, 'json');
        expectThat(response.status === 401, statusLine(caller, method, path, 'json', response));
      }
    }
    const scrape = await request(app).get('/metrics').set('Authorization', `Bearer ${METRICS_TOKEN}`);
    expect(scrape.status).toBe(200);
    expect(defects).toEqual([]);
  });

  // Last: an admin's forms change data (carol's account, which the other checks do not use).
  it('an admin passes the guard of every admin route; no 5xx', async () => {
    const caller = { name: 'admin', agent: admin };
    for (const { method, path } of routesOf('admin')) {
      const address = addressOf(path, ids.carolUser);
      const token = method === 'POST' ? await csrfTokenOf(admin) : undefined;
      const response = await send(caller, method, address, 'json', token);
      // Run now answers 502 when the run itself fails: this app has no Slurm source to read (past the guard).
      const isFailedRun = path === '/admin/ingestion/run' && response.status === 502;
      expectThat(
        ![401, 403].includes(response.status) && (response.status < 500 || isFailedRun),
        statusLine(caller, method, address, 'json', response),
      );
      // Not even an admin is shown a password's hash.
      expectThat(
        !/\$argon2|passwordHash|password_hash/.test(response.text),
        `admin ${method} ${address}: shows a password hash`,
      );
    }
    expect(defects).toEqual([]);
  });
});
