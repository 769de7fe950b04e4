import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * An operator who sent POST /healthz (a load balancer's check set to the wrong method, a typo in a
 * script) was told "You are not signed in (you signed out, perhaps in another tab, or your session
 * ended), so this form was not sent. Sign in, then send it again." with a 403: the session section's
 * CSRF refusal, about a form and a sign-in that /healthz has nothing to do with.
 */
const WEBHOOK_ADDRESS_TAKES =
  'It takes the signed webhooks a payment provider posts, so it cannot be opened as a page.';

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  app = buildTestApp(db);
});
afterAll(() => db?.drop());

describe('a method the operators’ addresses do not answer', () => {
  it.each([
    ['post', '/healthz', 'GET, HEAD'],
    ['put', '/healthz', 'GET, HEAD'],
    ['delete', '/readyz', 'GET, HEAD'],
    ['post', '/readyz', 'GET, HEAD'],
    ['post', '/metrics', 'GET, HEAD'],
    ['put', '/formula', 'GET, HEAD, POST'],
    ['delete', '/formula', 'GET, HEAD, POST'],
  ] as const)(
    '%s %s is 405 naming the methods it answers, not a sign-in or form refusal',
    async (method, path, allow) => {
      const response = await request(app)[method](path).set('Accept', 'application/json');
      expect(response.status).toBe(405);
      expect(response.headers.allow).toBe(allow);
      expect(response.body).toEqual({
        error: `${path} answers ${allow.replace(/, (\w+)$/, ' and $1')} only, not ${method.toUpperCase()}.`,
        code: 405,
      });
      expect(response.text).not.toMatch(/signed|this form/i);
    },
  );

  it.each([
    ['/healthz', 'GET, HEAD'],
    ['/formula', 'GET, HEAD, POST'],
    ['/me', 'GET, HEAD'],
    ['/me/receipt', 'POST'],
  ] as const)('OPTIONS %s names the same methods as its 405 does', async (path, allow) => {
    // The formula's own router answered OPTIONS /formula with GET, HEAD: not the admins' POST.
    const response = await request(app).options(path);
    expect(response.status).toBe(204);
    expect(response.headers.allow).toBe(allow);
    expect(response.headers['set-cookie']).toBeUndefined();
  });

  it('OPTIONS of an address nothing is at is 404', async () => {
    const response = await request(app).options('/nope').set('Accept', 'application/json');
    expect(response.status).toBe(404);
  });

  it('leaves the methods they answer as they were', async () => {
    await request(app).get('/healthz').expect(200);
    await request(app).head('/readyz').expect(200);
    await request(app).get('/formula').expect(200);
    // POST /formula is the admins' rate change: still a session-backed, CSRF-checked request.
    const post = await request(app).post('/formula').set('Accept', 'application/json').send({});
    expect(post.status).toBe(403);
  });
});

/**
 * Any address behind the sessions had the same problem: POST /nope, or POST to a page that only
 * shows (/me), was refused by the CSRF check with "You are not signed in ... this form was not
 * sent", though no form could be sent there. The CSRF check still refuses every such request first;
 * only its answer now says that nothing is there (404) or which methods are (405).
 */
describe('a method no page answers', () => {
  it.each([
    ['post', '/nope'],
    ['put', '/admin/nothing-here'],
  ] as const)('%s %s is 404, not a sign-in or form refusal', async (method, path) => {
    const response = await request(app)[method](path).set('Accept', 'application/json');
    expect(response.status).toBe(404);
    expect(response.body).toEqual({ error: 'Page not found.', code: 404 });
  });

  it.each([
    ['post', '/me', 'GET, HEAD'],
    ['delete', '/account', 'GET, HEAD'],
    ['put', '/me/receipt', 'POST'],
  ] as const)('%s %s is 405 naming the methods it answers', async (method, path, allow) => {
    const response = await request(app)[method](path).set('Accept', 'application/json');
    expect(response.status).toBe(405);
    expect(response.headers.allow).toBe(allow);
    expect(response.body.error).toBe(
      `${path} answers ${allow.replace(/, (\w+)$/, ' and $1')} only, not ${method.toUpperCase()}.`,
    );
  });

  it('is 405 for a signed-in user whose token is good too, and a real form is still CSRF-checked', async () => {
    const user = await buildUser(db.prisma, { username: 'wrongmethod' });
    const agent = await signInAs(app, 'wrongmethod', user.password);
    const token = await csrfTokenOf(agent);
    const posted = await agent.post('/me').set('Accept', 'text/html').type('form').send({ csrf_token: token });
    expect(posted.status).toBe(405);
    expect(posted.headers.allow).toBe('GET, HEAD');
    expect(posted.text).toContain('/me answers GET and HEAD only, not POST.');
    const forged = await agent.post('/me/receipt').set('Accept', 'application/json').send({ before: '2026-01-01' });
    expect(forged.status).toBe(403);
    expect(await db.prisma.receipt.count()).toBe(0);
  });
});

/**
 * A form refused with its page shown again (a receipt for a day in the future) leaves the browser at
 * the form's address, /me/receipt. Opening that address again later (Enter in the address bar, a
 * restored tab, a bookmark) answered "404 Page not found." for an address the app itself had put
 * there. A browser is now sent to the page the form is on; other clients are told which methods the
 * address answers.
 */
describe('opening an address that only takes a form', () => {
  it.each([
    ['/me/receipt', '/me'],
    ['/account/password', '/account'],
    ['/account/sign-out-others', '/account'],
    ['/admin/receipts/12/paid', '/admin/receipts/12'],
    ['/admin/receipts/12/void', '/admin/receipts/12'],
    ['/admin/ingestion/run', '/admin/ingestion'],
    ['/admin/users/3/unlock', '/admin/users'],
    ['/admin/users/3/sign-out-all', '/admin/users'],
    ['/admin/rates/tiers/edit', '/admin/rates'],
  ])('a browser opening %s is sent to %s, the page its form is on', async (path, page) => {
    // With the query, which a form's action carries for its page (below); a page ignores a field it does not take.
    const response = await request(app).get(`${path}?before=2026-01-01`).set('Accept', 'text/html');
    expect(response.status).toBe(303);
    expect(response.headers.location).toBe(`${page}?before=2026-01-01`);
    const head = await request(app).head(path).set('Accept', 'text/html');
    expect(head.status).toBe(303);
    expect(head.headers.location).toBe(page);
  });

  it('sends a browser back to My usage at the window the refused receipt was sent from', async () => {
    const user = await buildUser(db.prisma, { username: 'novemberview' });
    const agent = await signInAs(app, 'novemberview', user.password);
    // The form's action carries the window, so the refusal is shown on My usage at November's days.
    const formAddress = '/me/receipt?start=2026-11-01&end=2026-11-30&view=aggregate';
    const refused = await agent
      .post(formAddress)
      .set('Accept', 'text/html')
      .type('form')
      .send({ before: '2999-01-01', csrf_token: await csrfTokenOf(agent, '/me') });
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('id="start" name="start" type="date" value="2026-11-01"');
    // The browser stays at that address: opened again (a restored tab), it led to the last 7 days.
    const reopened = await agent.get(formAddress).set('Accept', 'text/html');
    expect(reopened.status).toBe(303);
    expect(reopened.headers.location).toBe('/me?start=2026-11-01&end=2026-11-30&view=aggregate');
    const page = await agent
      .get(reopened.headers.location as string)
      .set('Accept', 'text/html')
      .expect(200);
    expect(page.text).toContain('2026-11-01 to 2026-11-30');
    expect(await db.prisma.receipt.count()).toBe(0);
  });

  it('tells a client asking for JSON that the address answers POST only', async () => {
    const response = await request(app).get('/me/receipt').set('Accept', 'application/json');
    expect(response.status).toBe(405);
    expect(response.headers.allow).toBe('POST');
    expect(response.body.error).toMatch(/^\/me\/receipt answers POST only, not GET\./);
  });

  it.each(['/payments/webhook/dummy', '/payments/webhook'])(
    "tells whoever opens the webhook address %s what it takes: a provider's signed deliveries, not a form",
    async (path) => {
      // A provider's engineer checking the endpoint in a browser was told it takes a form sent from a page.
      const page = await request(app).get(path).set('Accept', 'text/html');
      expect(page.status).toBe(405);
      expect(page.headers.allow).toBe('POST');
      expect(page.text).toContain(`${path} answers POST only, not GET. ${WEBHOOK_ADDRESS_TAKES}`);
      expect(page.text).not.toContain('form sent from a page');
      const json = await request(app).get(path).set('Accept', 'application/json');
      expect(json.status).toBe(405);
      expect(json.body).toEqual({ error: `${path} answers POST only, not GET. ${WEBHOOK_ADDRESS_TAKES}`, code: 405 });
    },
  );

  it('still answers 404 for an address nothing is at', async () => {
    await request(app).get('/me/nothing-here').set('Accept', 'text/html').expect(404);
    await request(app).get('/admin/receipts/12/nothing').set('Accept', 'text/html').expect(404);
  });
});

/**
 * `OPTIONS * HTTP/1.1` (RFC 9110 9.3.7: the server as a whole, sent by some load balancers and
 * scanners as a ping) was a 500 "Something went wrong on our side." logged as an unhandled error
 * with a stack: express-session leaves a target that is not a path alone, and passport then threw
 * "Login sessions require session support". Any other method with that target did the same.
 */
describe('the asterisk request target', () => {
  async function sendAsterisk(
    method: string,
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      return await new Promise((resolve, reject) => {
        const sent = http.request(
          { host: '127.0.0.1', port, method, path: '*', headers: { accept: 'application/json', connection: 'close' } },
          (response) => {
            let body = '';
            response.setEncoding('utf8');
            response.on('data', (chunk: string) => {
              body += chunk;
            });
            response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
          },
        );
        sent.on('error', reject);
        sent.end();
      });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  }

  it('OPTIONS * is 204 naming the methods the server answers', async () => {
    const response = await sendAsterisk('OPTIONS');
    expect(response.status).toBe(204);
    expect(response.headers.allow).toBe('GET, HEAD, POST, OPTIONS');
    expect(response.headers['set-cookie']).toBeUndefined();
  });

  it.each(['GET', 'POST', 'HEAD'])('%s * is 400 saying the target is for OPTIONS only', async (method) => {
    const response = await sendAsterisk(method);
    expect(response.status).toBe(400);
    if (method !== 'HEAD') {
      expect(JSON.parse(response.body)).toEqual({
        error: `The request target * (the server as a whole) is for OPTIONS only; ${method} needs a path, such as /.`,
        code: 400,
      });
    }
  });
});
