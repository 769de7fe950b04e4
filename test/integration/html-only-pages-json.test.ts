import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs, signInNewAdmin } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;
let alice: Agent;
let receiptId: number;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'htmlonly-alice', password: 'htmlonly-alice-password' });
  await buildJobs(db, [{ user: 'htmlonly-alice', end: '2026-01-10T10:00:00Z', jobId: '5151' }]);
  app = buildTestApp(db);
  admin = await signInNewAdmin(app, db, 'htmlonly-admin');
  alice = await signInAs(app, 'htmlonly-alice', 'htmlonly-alice-password');
  const created = await alice
    .post('/me/receipt')
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(alice))
    .send({ before: '2026-01-31' });
  expect(created.status, created.text).toBe(201);
  receiptId = created.body.receipt.id;
});
afterAll(() => db?.drop());

// These answered a client asking for JSON with the HTML page, where every other page answers JSON.
describe('pages a JSON client asked for', () => {
  it('/admin lists the admin sections as JSON', async () => {
    const response = await admin.get('/admin').set('Accept', 'application/json');
    expect(response.status).toBe(200);
    expect(response.type).toBe('application/json');
    expect(response.body.sections).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          href: '/admin/receipts',
          title: expect.any(String),
          description: expect.any(String),
        }),
      ]),
    );
    // A browser still gets the page.
    const page = await admin.get('/admin').set('Accept', 'text/html');
    expect(page.type).toBe('text/html');
  });

  it('/admin is still 403 {error, code} to a researcher asking for JSON', async () => {
    const response = await alice.get('/admin').set('Accept', 'application/json');
    expect(response.status).toBe(403);
    expect(response.body).toEqual({ error: 'Only admins can do this.', code: 403 });
  });

  it('the home page is 406 {error, code} to a visitor asking for JSON, saying how a script signs in', async () => {
    const response = await request(app).get('/').set('Accept', 'application/json');
    expect(response.status).toBe(406);
    expect(response.body).toEqual({
      error:
        "The home page is for people, HTML only. A script signs in with POST /login (the csrf_token of the form at GET /login in the X-CSRFToken header), then reads its usage as JSON at /me; a change (a receipt, POST /me/receipt) sends the session's token, csrfToken in GET /account's JSON, in the X-CSRFToken header; the rates are JSON at /formula.",
      code: 406,
      jsonUrl: '/formula',
    });
    // A browser still gets the page; a signed-in client is still sent on to its own page.
    expect((await request(app).get('/').set('Accept', 'text/html').expect(200)).type).toBe('text/html');
    await alice.get('/').set('Accept', 'application/json').expect(302).expect('Location', '/me');
  });

  it('GET /logout says it signs no one out and how to sign out, signed in or not, and signs no one out', async () => {
    const expected = {
      error:
        'GET /logout is the page with the Sign out button, for browsers, and signs no one out. To sign out, send POST /logout with the X-CSRFToken header.',
      code: 406,
    };
    const signedIn = await alice.get('/logout').set('Accept', 'application/json');
    expect([signedIn.status, signedIn.body]).toEqual([406, expected]);
    await alice.get('/account').set('Accept', 'application/json').expect(200);
    const signedOut = await request(app).get('/logout').set('Accept', 'application/json');
    expect([signedOut.status, signedOut.body]).toEqual([406, expected]);
    // A browser still gets the page with the button.
    expect((await alice.get('/logout').set('Accept', 'text/html')).text).toContain('action="/logout"');
  });

  it("a receipt's printable page is 406 {error, code} pointing at the receipt's JSON", async () => {
    for (const [agent, base] of [
      [alice, '/me/receipts'],
      [admin, '/admin/receipts'],
    ] as const) {
      const response = await agent.get(`${base}/${receiptId}/print`).set('Accept', 'application/json');
      expect(response.status).toBe(406);
      expect(response.body).toEqual({
        error: `The printable page of receipt #${receiptId} is HTML only. Its JSON is at ${base}/${receiptId}.`,
        code: 406,
        jsonUrl: `${base}/${receiptId}`,
      });
      await agent.get(response.body.jsonUrl).set('Accept', 'application/json').expect(200);
      const page = await agent.get(`${base}/${receiptId}/print`).set('Accept', 'text/html');
      expect(page.status).toBe(200);
      expect(page.type).toBe('text/html');
    }
  });

  it('/rates points a JSON client at /formula, signed in or not', async () => {
    for (const agent of [request(app), alice]) {
      const response = await agent.get('/rates').set('Accept', 'application/json');
      expect(response.status).toBe(406);
      expect(response.body).toEqual({
        error:
          '/rates is the price list for people, HTML only. Programs read the rates as JSON from /formula?type=<tier>.',
        code: 406,
        jsonUrl: '/formula',
      });
    }
    expect((await request(app).get('/rates').set('Accept', 'text/html')).status).toBe(200);
  });

  it("a printable page's other refusals stay as they were", async () => {
    const notANumber = await alice.get('/me/receipts/abc/print').set('Accept', 'application/json');
    expect(notANumber.body).toEqual({ error: 'receipt id: must be a whole number', code: 400 });
    const signedOut = await request(app).get(`/me/receipts/${receiptId}/print`).set('Accept', 'application/json');
    expect(signedOut.status).toBe(401);
  });
});
