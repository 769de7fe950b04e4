import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildReceiptRow, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenIn, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A form whose %-escapes (or raw bytes) are not UTF-8: `reason=caf%E9` from a Latin-1 client or a
 * hand-written script. The form parser read such an escape as its own text (the field stored as
 * "caf%E9 refund") and such a raw byte as U+FFFD, and the route stored either: a void's reason, a
 * tier's description, a new password other than the one typed. Each is refused with a 400 saying the
 * form was not sent as UTF-8, and nothing is written; a query string (read with U+FFFD) the same.
 */

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;
let alice: Agent;
const ALICE_PASSWORD = 'alice-password-123';

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db, [{ name: 'gov', isDefault: true, cpu: '0.80', gpu: '18.00', mem: '0.08' }]);
  app = buildTestApp(db, { env: { AUTH_MAX_FAILS: '3', AUTH_USER_MAX_FAILS: '3', AUTH_ADDRESS_MAX_FAILS: '3' } });
  await buildUser(db.prisma, { username: 'alice', password: ALICE_PASSWORD });
  alice = await signInAs(app, 'alice', ALICE_PASSWORD);
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password-123' });
  admin = await signInAs(app, 'boss', 'boss-password-123');
});
afterAll(() => db?.drop());

/** POSTs `form` (already encoded, the CSRF token appended) as a browser's form, or as a script's with `accept`. */
async function postForm(agent: Agent, path: string, form: string, accept = 'text/html') {
  const token = await csrfTokenOf(agent);
  return agent
    .post(path)
    .set('Accept', accept)
    .set('Content-Type', 'application/x-www-form-urlencoded')
    .serialize((bytes: Buffer) => bytes as unknown as string)
    .send(Buffer.concat([Buffer.from(form, 'latin1'), Buffer.from(`&csrf_token=${encodeURIComponent(token)}`)]));
}

const NOT_UTF8 = /^The form was not sent as UTF-8: /;

const receiptState = (id: number) =>
  db.prisma.receipt.findUniqueOrThrow({ where: { id }, select: { status: true, voidReason: true } });

describe('a form whose text is not UTF-8', () => {
  let receiptId: number;
  beforeEach(async () => {
    receiptId = (await buildReceiptRow(db, 'alice')).id;
  });

  it('is refused, a void storing nothing, with a page for a browser naming the field', async () => {
    const entries = await db.prisma.auditLog.count();
    const response = await postForm(admin, `/admin/receipts/${receiptId}/void`, 'reason=caf%E9+refund');
    expect(response.status).toBe(400);
    expect(response.type).toBe('text/html');
    expect(response.text).toContain(
      'The form was not sent as UTF-8: its field reason holds %E9, which begins no UTF-8 character. Nothing was done; send the form from its page, or encode its text as UTF-8 (é is %C3%A9).',
    );
    expect(await receiptState(receiptId)).toEqual({ status: 'pending', voidReason: null });
    expect(await db.prisma.auditLog.count()).toBe(entries);
  });

  it('is refused to a script with {error, code}', async () => {
    const response = await postForm(admin, `/admin/receipts/${receiptId}/void`, 'reason=caf%E9', 'application/json');
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      error:
        'The form was not sent as UTF-8: its field reason holds %E9, which begins no UTF-8 character. Nothing was done; send the form from its page, or encode its text as UTF-8 (é is %C3%A9).',
      code: 400,
    });
    expect(await receiptState(receiptId)).toEqual({ status: 'pending', voidReason: null });
  });

  it.each([
    ['a raw byte, not escaped', 'reason=caf\u00e9', 'the byte 0xE9'],
    ['a character cut short', 'reason=caf%C3', '%C3'],
    ['a continuation byte alone', 'reason=%A9t%C3%A9', '%A9'],
    ['an overlong form', 'reason=%C0%AF', '%C0'],
    ['a surrogate written in UTF-8 bytes', 'reason=%ED%A0%80', '%ED'],
    ['a character split over two fields', 'reason=caf%C3&x=%A9', '%C3'],
  ])('is refused for %s', async (_label, form, what) => {
    const response = await postForm(admin, `/admin/receipts/${receiptId}/void`, form, 'application/json');
    expect(response.status).toBe(400);
    expect(response.body.error).toMatch(NOT_UTF8);
    expect(response.body.error).toContain(`its field reason holds ${what},`);
    expect(await receiptState(receiptId)).toEqual({ status: 'pending', voidReason: null });
  });

  it('names a field whose name is not UTF-8 as that', async () => {
    const response = await postForm(
      admin,
      `/admin/receipts/${receiptId}/void`,
      'reason=x&caf%E9=1',
      'application/json',
    );
    expect(response.status).toBe(400);
    expect(response.body.error).toMatch(/^The form was not sent as UTF-8: a field's name holds %E9, /);
  });

  it('takes the same text sent as UTF-8, a U+FFFD written as its own bytes included', async () => {
    const response = await postForm(
      admin,
      `/admin/receipts/${receiptId}/void`,
      'reason=caf%C3%A9+refund+%EF%BF%BD',
      'application/json',
    );
    expect(response.status, response.text).toBe(200);
    expect(await receiptState(receiptId)).toEqual({ status: 'void', voidReason: 'café refund \uFFFD' });
  });

  it('refuses a field with a % that begins no escape beside escapes, which the parser left all undecoded', async () => {
    const response = await postForm(
      admin,
      `/admin/receipts/${receiptId}/void`,
      'reason=caf%C3%A9+refund+of+100%',
      'application/json',
    );
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      error:
        'The form could not be read as sent: its field reason holds a % that begins no %-escape (a % and two hex digits) beside escapes, which the form would be read with undecoded. Nothing was done; write a % as %25.',
      code: 400,
    });
    expect(await receiptState(receiptId)).toEqual({ status: 'pending', voidReason: null });
  });

  it('takes a % that begins no escape in a field without escapes as itself, as before', async () => {
    const response = await postForm(
      admin,
      `/admin/receipts/${receiptId}/void`,
      'reason=100%+refund+%ZZ',
      'application/json',
    );
    expect(response.status, response.text).toBe(200);
    expect(await receiptState(receiptId)).toEqual({ status: 'void', voidReason: '100% refund %ZZ' });
  });

  it('takes UTF-8 sent as raw bytes, not escaped', async () => {
    const token = await csrfTokenOf(admin);
    const response = await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'application/json')
      .set('Content-Type', 'application/x-www-form-urlencoded')
      .serialize((bytes: Buffer) => bytes as unknown as string)
      .send(Buffer.from(`reason=café&csrf_token=${encodeURIComponent(token)}`, 'utf8'));
    expect(response.status, response.text).toBe(200);
    expect(await receiptState(receiptId)).toEqual({ status: 'void', voidReason: 'café' });
  });

  it("leaves a tier's description as it was", async () => {
    const before = await db.prisma.pricingTier.findUniqueOrThrow({ where: { name: 'gov' } });
    const response = await postForm(admin, '/admin/rates/tiers/edit', 'type=gov&name=gov&description=Gov%E9rnement');
    expect(response.status).toBe(400);
    expect(response.text).toContain('The form was not sent as UTF-8: its field description holds %E9');
    expect(await db.prisma.pricingTier.findUniqueOrThrow({ where: { name: 'gov' } })).toEqual(before);
  });

  it('adds no tier', async () => {
    const tiers = await db.prisma.pricingTier.count();
    const response = await postForm(
      admin,
      '/admin/rates/tiers',
      'name=lab&description=Labor+f%FCr+Physik&cpu=1&gpu=2&mem=0.1',
      'application/json',
    );
    expect(response.status).toBe(400);
    expect(response.body.error).toMatch(NOT_UTF8);
    expect(await db.prisma.pricingTier.count()).toBe(tiers);
  });

  it('changes no password, and the old one still signs in', async () => {
    const before = await db.prisma.user.findUniqueOrThrow({ where: { username: 'alice' } });
    const response = await postForm(
      alice,
      '/account/password',
      `current=${ALICE_PASSWORD}&password=caf%E9-caf%E9-caf%E9&confirm=caf%E9-caf%E9-caf%E9`,
    );
    expect(response.status).toBe(400);
    expect(response.text).toContain('The form was not sent as UTF-8: its field password holds %E9');
    const after = await db.prisma.user.findUniqueOrThrow({ where: { username: 'alice' } });
    expect(after.passwordHash).toBe(before.passwordHash);
    expect(after.passwordChangedAt).toEqual(before.passwordChangedAt);
    await signInAs(app, 'alice', ALICE_PASSWORD);
  });

  it("resets no user's password from the admin's form", async () => {
    const user = await buildUser(db.prisma, { username: 'bob' });
    const before = await db.prisma.user.findUniqueOrThrow({ where: { id: user.id } });
    const response = await postForm(admin, `/admin/users/${user.id}/password`, 'password=Kennw%F6rt-Kennw%F6rt');
    expect(response.status).toBe(400);
    expect(response.text).toContain('The form was not sent as UTF-8: its field password holds %F6');
    const after = await db.prisma.user.findUniqueOrThrow({ where: { id: user.id } });
    expect(after).toEqual(before);
  });
});

describe('the sign-in form not in UTF-8', () => {
  /** POSTs the sign-in form with this encoded password, from a fresh visitor. */
  async function signInWith(encoded: string, username = 'alice') {
    const visitor = request.agent(app);
    const page = await visitor.get('/login').set('Accept', 'text/html');
    return visitor
      .post('/login')
      .set('Accept', 'text/html')
      .set('Content-Type', 'application/x-www-form-urlencoded')
      .send(`username=${username}&password=${encoded}&csrf_token=${encodeURIComponent(csrfTokenIn(page.text))}`);
  }

  it('is refused without counting as a failed attempt: more of them than the lockout allows lock nothing', async () => {
    const throttles = await db.prisma.authThrottle.findMany();
    const networks = await db.prisma.authNetworkThrottle.findMany();
    const entries = await db.prisma.auditLog.count();
    for (let attempt = 0; attempt < 5; attempt++) {
      const response = await signInWith('caf%E9-caf%E9-123');
      expect(response.status).toBe(400);
      expect(response.text).toContain('The form was not sent as UTF-8: its field password holds %E9');
    }
    const unknown = await signInWith('x', 'caf%E9');
    expect(unknown.status).toBe(400);
    expect(unknown.text).toContain('its field username holds %E9');
    expect(await db.prisma.authThrottle.findMany()).toEqual(throttles);
    expect(await db.prisma.authNetworkThrottle.findMany()).toEqual(networks);
    expect(await db.prisma.auditLog.count()).toBe(entries);
    const signedIn = await signInWith(ALICE_PASSWORD);
    expect(signedIn.status, signedIn.text.slice(0, 300)).toBe(302);
  });

  it('as JSON is refused so too, uncounted', async () => {
    const throttles = await db.prisma.authThrottle.findMany();
    const visitor = request.agent(app);
    const page = await visitor.get('/login').set('Accept', 'text/html');
    for (let attempt = 0; attempt < 5; attempt++) {
      const response = await visitor
        .post('/login')
        .set('Accept', 'application/json')
        .set('Content-Type', 'application/json')
        .set('X-CSRFToken', csrfTokenIn(page.text))
        .serialize((bytes: Buffer) => bytes as unknown as string)
        .send(Buffer.from('{"username":"alice","password":"café-café-123"}', 'latin1'));
      expect(response.status).toBe(400);
      expect(response.body.error).toMatch(/^The request body is not valid UTF-8: byte 0xE9 /);
    }
    expect(await db.prisma.authThrottle.findMany()).toEqual(throttles);
    await signInAs(app, 'alice', ALICE_PASSWORD);
  });
});

describe('a query string whose text is not UTF-8', () => {
  it.each([
    ['/admin/receipts?user=caf%E9', 'admin', 'user'],
    ['/admin/usage?user=caf%E9', 'admin', 'user'],
    ['/admin/users?q=caf%E9', 'admin', 'q'],
    ['/me?start=2026-11-0%E9', 'alice', 'start'],
    ['/me.csv?start=2026-11-01&end=%FF', 'alice', 'end'],
  ])('%s is refused, naming the field', async (path, who, field) => {
    const agent = who === 'admin' ? admin : alice;
    const page = await agent.get(path).set('Accept', 'text/html');
    expect(page.status).toBe(400);
    expect(page.text).toContain(`The address was not sent as UTF-8: its query field ${field} holds %`);
    const json = await agent.get(path).set('Accept', 'application/json');
    expect(json.status).toBe(400);
    expect(json.body).toEqual({ error: expect.stringMatching(/^The address was not sent as UTF-8: /), code: 400 });
  });

  it('is refused on /formula, which is mounted before the session', async () => {
    const response = await request(app).get('/formula?type=gov%E9');
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      error:
        "The address was not sent as UTF-8: its query field type holds %E9, which begins no UTF-8 character. Nothing was done; encode the query's text as UTF-8 (é is %C3%A9).",
      code: 400,
    });
  });

  it('is read as before when it is UTF-8, a U+FFFD sent as UTF-8 included', async () => {
    expect((await admin.get('/admin/receipts?user=caf%C3%A9').set('Accept', 'text/html')).status).toBe(200);
    expect((await admin.get('/admin/users?q=%EF%BF%BD').set('Accept', 'text/html')).status).toBe(200);
  });
});
