import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isUnstorableText, sqlStateOf } from '../../src/shared/errors.js';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { DUMMY_PAYMENTS_ENV, deliverDummy } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenIn, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let alice: Agent;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  await buildJobs(db, [{ user: 'alice', end: '2026-01-10T10:00:00Z', jobId: '4242' }]);
  app = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV });
  alice = await signInAs(app, 'alice', 'alice-password');
  admin = await signInAs(app, 'boss', 'boss-password');
});
afterAll(() => db?.drop());

/** Rows a refused request must not have added to. */
async function countWrites() {
  const [audit, throttle, receipts, events, sessions] = await Promise.all([
    db.prisma.auditLog.count(),
    db.prisma.authThrottle.count(),
    db.prisma.receipt.count(),
    db.prisma.paymentEvent.count(),
    db.prisma.session.count(),
  ]);
  return { audit, throttle, receipts, events, sessions };
}

describe('dates beyond any job', () => {
  // 9999-12-31 is what people type for "forever"; the day after it is in the year 10000.
  it.each([
    ['/me.csv?start=2000-01-01&end=9999-12-31', 'Ended to: must be between 1900-01-01 and 2999-12-31'],
    ['/me?start=9999-12-01&end=9999-12-31&view=aggregate', 'Ended from: must be between 1900-01-01 and 2999-12-31'],
    ['/me?start=9999-12-28', 'Ended from: must be between 1900-01-01 and 2999-12-31'],
    ['/me?start=1899-12-31', 'Ended from: must be between 1900-01-01 and 2999-12-31'],
  ])('a researcher asking for %s gets a 400 naming the range', async (path, message) => {
    const response = await alice.get(path).set('Accept', 'text/html');
    expect(response.status, response.text.slice(0, 300)).toBe(400);
    expect(response.text).toContain(message);
  });

  it.each([
    '/admin/usage.csv?start=2000-01-01&end=9999-12-31',
    '/admin/usage?start=9999-12-01&end=9999-12-31',
    '/admin/receipts?end=9999-12-31',
    '/admin/audit?to=9999-12-31',
    '/admin/audit.csv?to=9999-12-31',
  ])('an admin asking for %s gets a 400, not a 500', async (path) => {
    const response = await admin.get(path).set('Accept', 'text/html');
    expect(response.status, response.text.slice(0, 300)).toBe(400);
    expect(response.text).toContain('must be between 1900-01-01 and 2999-12-31');
  });

  it('refuses a window given only its start at the last date it accepts, which is after today, saying so', async () => {
    // From alone runs up to today: it used to end at From + 6 days, which had to be kept within the range.
    const response = await alice.get('/me?start=2999-12-31').set('Accept', 'text/html').expect(400);
    expect(response.text).toContain('Ended from (2999-12-31) is after today');
  });

  it('starts a window given only its end near the first date it accepts at that date, so its links work', async () => {
    // To alone is the 7 days up to it: To 1900-01-01 showed 1899-12-26 to 1900-01-01, and its Show,
    // tabs and Download CSV all sent that From back, each refused as outside the range.
    const page = await alice.get('/me?end=1900-01-03').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('<input id="start" name="start" type="date" value="1900-01-01"');
    expect(page.text).toContain('href="/me.csv?start=1900-01-01&amp;end=1900-01-03"');
    expect(page.text).not.toContain('1899-');
    const json = await alice.get('/me?end=1900-01-01').set('Accept', 'application/json').expect(200);
    expect(json.body.window).toMatchObject({ start: '1900-01-01', end: '1900-01-01' });
    const csv = await alice.get('/me.csv?end=1900-01-02').expect(200);
    expect(csv.headers['content-disposition']).toContain('usage-alice-1900-01-01-1900-01-02.csv');
    await admin.get('/admin/usage?end=1900-01-01').set('Accept', 'text/html').expect(200);
  });

  it('still serves the widest window the range allows', async () => {
    const response = await alice.get('/me.csv?start=1900-01-01&end=2999-12-31').expect(200);
    expect(response.text).toContain('4242');
  });

  it('refuses a receipt "before" 9999-12-31 and bills nothing', async () => {
    const before = await countWrites();
    const page = await alice.get('/me').set('Accept', 'text/html');
    const response = await alice
      .post('/me/receipt')
      .set('Accept', 'application/json')
      .type('form')
      .send({ before: '9999-12-31', csrf_token: csrfTokenIn(page.text) });
    expect(response.status).toBe(400);
    expect(response.body.error).toContain('before: must be between');
    expect(await countWrites()).toEqual(before);
  });

  it('says once what is wrong with a malformed date', async () => {
    const response = await alice.get('/me?start=abc').set('Accept', 'text/html').expect(400);
    expect(response.text.split('must be a date as YYYY-MM-DD')).toHaveLength(2);
    expect(response.text).not.toContain('is not a real calendar date');
  });
});

describe('NUL characters', () => {
  it('refuses a sign-in whose username holds one, and records nothing', async () => {
    const before = await countWrites();
    const agent = request.agent(app);
    const form = await agent.get('/login').set('Accept', 'text/html');
    const response = await agent
      .post('/login')
      .set('Accept', 'text/html')
      .type('form')
      .send({ username: 'ali\u0000ce', password: 'alice-password', csrf_token: csrfTokenIn(form.text) });
    expect(response.status).toBe(400);
    expect(response.text).toContain('NUL character');
    expect(await countWrites()).toEqual(before);
  });

  it.each([
    '/admin/usage?account=a%00b',
    '/admin/usage?user=a%00b',
    '/admin/usage.csv?partition=a%00b',
    '/admin/audit?actor=a%00b',
    '/admin/audit?action=a%00b',
    '/admin/receipts?user=a%00b',
  ])('answers %s with a 400', async (path) => {
    const response = await admin.get(path).set('Accept', 'application/json');
    expect(response.status, response.text.slice(0, 300)).toBe(400);
    expect(response.body).toEqual({ error: expect.stringContaining('NUL character'), code: 400 });
  });

  it('refuses one nested in a JSON body', async () => {
    const page = await admin.get('/admin/rates').set('Accept', 'text/html');
    const response = await admin
      .post('/formula')
      .set('X-CSRF-Token', csrfTokenIn(page.text))
      .send({ type: 'mu', rates: { cpu: 1, gpu: 1, mem: 1 }, note: ['fine', { deeper: 'x\u0000' }] });
    expect(response.status).toBe(400);
    expect(response.body.error).toContain('NUL character');
  });

  it('answers a signed webhook carrying one with a 400 and stores no event', async () => {
    const before = await countWrites();
    const response = await deliverDummy(app, {
      event_id: 'evt\u00001',
      event_type: 'payment.succeeded',
      external_payment_id: 'dummy_missing',
      amount_cents: 100,
      currency: 'THB',
    });
    expect(response.status, response.text).toBe(400);
    expect(response.body.error).toContain('NUL character');
    expect(await countWrites()).toEqual(before);
  });
});

describe('malformed %-escapes in the path', () => {
  it.each([
    ['a researcher', '/me/receipts/%ff'],
    ['a researcher', '/me/receipts/%E0%A4%A'],
    ['an admin', '/admin/receipts/%zz'],
  ])('%s asking for %s gets a 400, not a 500', async (who, path) => {
    const agent = who === 'an admin' ? admin : alice;
    const response = await agent.get(path).set('Accept', 'application/json');
    expect(response.status).toBe(400);
    expect(response.body).toEqual({ error: 'The address contains a malformed %-escape.', code: 400 });
  });

  it('answers a webhook to a malformed provider name with a 400, signed in or not', async () => {
    const before = await countWrites();
    const response = await request(app)
      .post('/payments/webhook/%ff')
      .set('Content-Type', 'application/json')
      .send('{}');
    expect(response.status).toBe(400);
    expect(await countWrites()).toEqual(before);
  });
});

describe('the SQLSTATE behind an error, however the driver wrapped it', () => {
  const nul = 'a\u0000b';
  it.each([
    ['pg', () => db.pool.query('SELECT $1::text', [nul])],
    ['a Prisma model query', () => db.prisma.user.findFirst({ where: { username: nul } })],
    ['a Prisma raw query', () => db.prisma.$queryRaw`SELECT ${nul}::text`],
  ])('finds 22021 in the error of %s', async (_path, run) => {
    const error = await run().then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(sqlStateOf(error)).toBe('22021');
    expect(isUnstorableText(error)).toBe(true);
  });

  it('reads a unique violation as 23505, not as Prisma code', async () => {
    const error = await db.prisma.user.create({ data: { username: 'alice', passwordHash: 'x', role: 'user' } }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(sqlStateOf(error)).toBe('23505');
    expect(isUnstorableText(error)).toBe(false);
  });
});

describe('unpaired UTF-16 surrogates', () => {
  // JSON can spell half of a surrogate pair ("\ud800"); JSON.parse keeps it as a string no
  // UTF-8 can encode. supertest's JSON.stringify writes a lone surrogate back as that escape.
  const LONE_HIGH = '\ud800';
  const LONE_LOW = '\udc00';
  const ILL_FORMED_TEXT_MESSAGE =
    'The request contains an unpaired UTF-16 surrogate (a \\ud800-\\udfff escape without its other half), which no field accepts.';
  let carol: Agent;
  let receiptId: number;
  let heldPaymentId: number;
  let heldExternalId: string;

  beforeAll(async () => {
    await buildUser(db.prisma, { username: 'carol', password: 'carol-password' });
    await buildJobs(db, [{ user: 'carol', end: '2026-01-12T10:00:00Z', jobId: '4343' }]);
    carol = await signInAs(app, 'carol', 'carol-password');
    const created = await carol
      .post('/me/receipt')
      .type('form')
      .send({
        before: '2026-01-31',
        csrf_token: csrfTokenIn((await carol.get('/me').set('Accept', 'text/html')).text),
      });
    expect(created.status, created.text.slice(0, 200)).toBe(303);
    receiptId = Number(/\/me\/receipts\/(\d+)/.exec(created.headers.location ?? '')?.[1]);
    // A payment held for review: started, canceled at the checkout, then reported paid.
    const started = await carol
      .post(`/payments/receipt/${receiptId}/start`)
      .type('form')
      .send({ csrf_token: csrfTokenIn((await carol.get('/me').set('Accept', 'text/html')).text) });
    expect(started.status, started.text.slice(0, 200)).toBe(303);
    const checkout = started.headers.location as string;
    const checkoutPage = await carol.get(checkout).set('Accept', 'text/html');
    await carol
      .post(checkout)
      .type('form')
      .send({ choice: 'cancel', csrf_token: csrfTokenIn(checkoutPage.text) })
      .expect(303);
    const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId } });
    heldPaymentId = payment.id;
    heldExternalId = payment.externalPaymentId as string;
    await deliverDummy(app, {
      event_id: 'evt_late_success',
      event_type: 'payment.succeeded',
      external_payment_id: heldExternalId,
      amount_cents: Number(payment.amountMinor),
      currency: payment.currency,
    }).expect(200);
    expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: heldPaymentId } })).status).toBe('needs_review');
  });

  /** Everything one of the refused requests below could have changed. */
  async function snapshot() {
    const [writes, tiers, rates, receipts, payments] = await Promise.all([
      countWrites(),
      db.prisma.pricingTier.findMany({ select: { name: true, description: true }, orderBy: { id: 'asc' } }),
      db.prisma.pricingRate.count(),
      db.prisma.receipt.findMany({ select: { id: true, status: true, txRef: true }, orderBy: { id: 'asc' } }),
      db.prisma.payment.findMany({ select: { id: true, status: true, reviewNote: true }, orderBy: { id: 'asc' } }),
    ]);
    return { writes, tiers, rates, receipts, payments };
  }

  it.each([
    [
      'a new tier description',
      () => '/admin/rates/tiers',
      { name: 'zz', description: LONE_HIGH, cpu: '1', gpu: '1', mem: '1' },
    ],
    ['a tier description edited', () => '/admin/rates/tiers/edit', { type: 'mu', name: 'mu', description: LONE_LOW }],
    [
      'a review note',
      () => `/admin/payments/${heldPaymentId}/resolve`,
      { outcome: 'dismissed', note: `settled ${LONE_HIGH} outside the app` },
    ],
    ['a reference of a payment', () => `/admin/receipts/${receiptId}/paid`, { method: 'cash', tx_ref: LONE_LOW }],
    ['a reason to void', () => `/admin/receipts/${receiptId}/void`, { reason: `wrong ${LONE_HIGH} month` }],
    ['a tier name to set rates for', () => '/formula', { type: LONE_HIGH, cpu: '1', gpu: '1', mem: '1' }],
  ])('refuses %s holding one with a 400 and writes nothing', async (_case, path, body) => {
    const before = await snapshot();
    const token = await csrfTokenOf(admin, '/admin/rates');
    const response = await admin.post(path()).set('Accept', 'application/json').set('X-CSRF-Token', token).send(body);
    expect(response.status, response.text.slice(0, 300)).toBe(400);
    expect(response.body).toEqual({ error: ILL_FORMED_TEXT_MESSAGE, code: 400 });
    expect(await snapshot()).toEqual(before);
    // Still serving, and the admin still signed in.
    await admin.get('/admin/rates').set('Accept', 'text/html').expect(200);
  });

  it('shows a page with the reason to a browser', async () => {
    const token = await csrfTokenOf(admin, '/admin/rates');
    const response = await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'text/html')
      .set('X-CSRF-Token', token)
      .send({ reason: `wrong ${LONE_LOW} month` });
    expect(response.status).toBe(400);
    expect(response.text).toContain('unpaired UTF-16 surrogate');
  });

  it('answers a signed webhook carrying one with a 400 and stores no event', async () => {
    const before = await snapshot();
    const response = await deliverDummy(app, {
      event_id: 'evt_lone_surrogate',
      event_type: 'payment.succeeded',
      external_payment_id: LONE_HIGH,
      amount_cents: 100,
      currency: 'THB',
    });
    expect(response.status, response.text).toBe(400);
    expect(response.body).toEqual({ error: ILL_FORMED_TEXT_MESSAGE, code: 400 });
    expect(await snapshot()).toEqual(before);
  });

  it('checks the signature first: an unsigned webhook carrying one is a bad signature', async () => {
    const before = await snapshot();
    const response = await deliverDummy(
      app,
      {
        event_id: LONE_LOW,
        event_type: 'payment.succeeded',
        external_payment_id: 'x',
        amount_cents: 1,
        currency: 'THB',
      },
      'not-the-secret',
    );
    expect(response.status).toBe(400);
    expect(response.body.error).toBe('Webhook rejected: signature does not match.');
    expect(await snapshot()).toEqual(before);
  });

  it('cannot be given one through a %-escape in the query or the path', async () => {
    // UTF-8 has no surrogates: %ED%A0%80 (what "\ud800" would be) is not UTF-8 at all, and refused as that.
    const listed = await admin.get('/admin/receipts?user=%ED%A0%80').set('Accept', 'application/json');
    expect(listed.status, listed.text.slice(0, 300)).toBe(400);
    expect(listed.body.error).toMatch(/^The address was not sent as UTF-8: its query field user holds %ED, /);
    const shown = await admin.get('/admin/receipts/%ED%A0%80').set('Accept', 'application/json');
    expect(shown.status).toBe(400);
    expect(shown.body.error).toBe('The address contains a malformed %-escape.');
  });

  it('still takes a well-formed pair, an emoji, as the text it is', async () => {
    const token = await csrfTokenOf(admin, '/admin/rates');
    const response = await admin
      .post('/admin/rates/tiers/edit')
      .set('Accept', 'application/json')
      .set('X-CSRF-Token', token)
      .send({ type: 'gov', name: 'gov', description: 'government \ud83d\ude80' });
    expect(response.status, response.text.slice(0, 300)).toBe(200);
    const gov = await db.prisma.pricingTier.findFirstOrThrow({ where: { name: 'gov' } });
    expect(gov.description).toBe('government 🚀');
  });
});
