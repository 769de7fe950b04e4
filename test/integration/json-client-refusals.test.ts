import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenIn, csrfTokenOf, signInAs, signInNewAdmin } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let admin: Agent;
/** A payment held for review and a refused claim not settled yet: the payments forms read the record before the form. */
let heldPaymentId: number;
let refusedClaimId: number;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  const app = buildTestApp(db);
  admin = await signInNewAdmin(app, db, 'wrongtypes-admin');
  const receipt = await db.prisma.receipt.create({
    data: {
      username: 'wrongtypes-payer',
      billedThrough: new Date('2026-01-31'),
      total: '10.00',
      currency: 'THB',
      tierName: 'mu',
      ratesSnapshot: {},
      ratesLockedAt: new Date(),
      createdBy: 'wrongtypes-admin',
    },
  });
  const payment = await db.prisma.payment.create({
    data: {
      receiptId: receipt.id,
      provider: 'dummy',
      status: 'needs_review',
      amountMinor: 1000n,
      currency: 'THB',
      idempotencyKey: 'wrongtypes-held',
      reviewReason: 'held for the test',
    },
  });
  heldPaymentId = payment.id;
  const claim = await db.prisma.paymentRefusedClaim.create({
    data: {
      provider: 'dummy',
      externalEventId: 'wrongtypes-claim',
      eventType: 'payment.refunded',
      paymentId: payment.id,
      reason: 'refused for the test',
      rawPayload: '{}',
      firstReceivedAt: new Date(),
      lastReceivedAt: new Date(),
    },
  });
  refusedClaimId = claim.id;
});
afterAll(() => db?.drop());

async function postJson(path: string, body: unknown) {
  const token = await csrfTokenOf(admin);
  return admin
    .post(path)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', token)
    .send(body as object);
}

// A text field sent as another JSON type was told "is required", as if it had not been sent.
describe('a JSON client sending a text field as another type', () => {
  const wrongValues: [string, unknown][] = [
    ['a number', 12345678901],
    ['true', true],
    ['an object', { text: 'refunded at the bank' }],
  ];
  const routes: [string, () => string, Record<string, unknown>][] = [
    ['/admin/payments/:id/resolve', () => `/admin/payments/${heldPaymentId}/resolve`, { outcome: 'dismissed' }],
    ['/admin/payments/refused-claims/:id/settle', () => `/admin/payments/refused-claims/${refusedClaimId}/settle`, {}],
  ];
  for (const [name, path, rest] of routes) {
    it.each(wrongValues)(
      `${name}: a note sent as %s is told it must be text, and nothing is written`,
      async (_name, note) => {
        const auditBefore = await db.prisma.auditLog.count();
        const response = await postJson(path(), { ...rest, note });
        expect(response.status, response.text).toBe(400);
        expect(response.body).toEqual({ error: 'note: must be text', code: 400 });
        expect(await db.prisma.auditLog.count()).toBe(auditBefore);
      },
    );
  }

  it('a note left out is still "is required"', async () => {
    const response = await postJson(`/admin/payments/refused-claims/${refusedClaimId}/settle`, {});
    expect(response.body).toEqual({ error: 'note: is required', code: 400 });
  });
});

// The routes that read a JSON number's digits (rates, a mark paid's amount) stop reading past 64
// levels; such a body was called "not valid JSON", which it is, and sent the client looking for a typo.
describe('a JSON body nested deeper than 64 levels on the exact-number routes', () => {
  const deeply = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
  it.each(['/formula', '/admin/rates', '/admin/rates/tiers', '/admin/receipts/999/paid'])(
    '%s refuses it as nested too deeply, changing nothing',
    async (path) => {
      const [auditBefore, ratesBefore] = await Promise.all([db.prisma.auditLog.count(), db.prisma.pricingRate.count()]);
      const token = await csrfTokenOf(admin);
      const response = await admin
        .post(path)
        .set('Accept', 'application/json')
        .set('Content-Type', 'application/json')
        .set('X-CSRFToken', token)
        .send(deeply(65));
      expect(response.status, response.text).toBe(400);
      expect(response.body).toEqual({
        error: 'The request body is nested too deeply: at most 64 levels of objects and lists.',
        code: 400,
      });
      expect([await db.prisma.auditLog.count(), await db.prisma.pricingRate.count()]).toEqual([
        auditBefore,
        ratesBefore,
      ]);
    },
  );

  it('malformed JSON there is still "not valid JSON"', async () => {
    const token = await csrfTokenOf(admin);
    const response = await admin
      .post('/formula')
      .set('Accept', 'application/json')
      .set('Content-Type', 'application/json')
      .set('X-CSRFToken', token)
      .send('{"type": "mu",');
    expect(response.body).toEqual({ error: 'The request body is not valid JSON.', code: 400 });
  });
});

// Resolving a held payment can mark its receipt paid: a misspelt field (acceptMismatch for
// accept_mismatch) was ignored, and the answer read as if the option had been applied or refused
// for another reason. Every other body that changes money names such a field.
describe('a field the payments review forms do not have', () => {
  it.each([
    [
      '/admin/payments/:id/resolve',
      () => `/admin/payments/${heldPaymentId}/resolve`,
      { outcome: 'accepted', note: 'settled at the bank today', acceptMismatch: true },
    ],
    [
      '/admin/payments/refused-claims/:id/settle',
      () => `/admin/payments/refused-claims/${refusedClaimId}/settle`,
      { note: 'reversed by the provider', refund_id: 're_1' },
    ],
  ])('%s refuses it by name, changing nothing', async (_name, path, body) => {
    const auditBefore = await db.prisma.auditLog.count();
    const response = await postJson(path(), body);
    const [extra] = Object.keys(body).filter((key) => !['outcome', 'note'].includes(key));
    expect(response.body).toEqual({ error: `input: has an unknown field: ${extra}`, code: 400 });
    expect(await db.prisma.auditLog.count()).toBe(auditBefore);
  });
});

// A misspelt field was ignored: a reset with `new_password` gave the user a generated password
// instead of the one chosen (and the old one stopped working), and a new user with `Role: admin`
// was made a user.
describe('a field the users forms do not have', () => {
  it('a password reset refuses it by name and leaves the password alone', async () => {
    const user = await buildUser(db.prisma, { username: 'misspelt-reset' });
    const before = await db.prisma.user.findUniqueOrThrow({ where: { id: user.id } });
    const auditBefore = await db.prisma.auditLog.count();
    const response = await postJson(`/admin/users/${user.id}/password`, { new_password: 'a-chosen-password-1' });
    expect(response.body).toEqual({ error: 'input: has an unknown field: new_password', code: 400 });
    const after = await db.prisma.user.findUniqueOrThrow({ where: { id: user.id } });
    expect(after.passwordHash).toBe(before.passwordHash);
    expect(await db.prisma.auditLog.count()).toBe(auditBefore);
  });

  it('a new user refuses it by name and is not made', async () => {
    const response = await postJson('/admin/users', { username: 'misspelt-role', Role: 'admin' });
    expect(response.body).toEqual({ error: 'input: has an unknown field: Role', code: 400 });
    expect(await db.prisma.user.count({ where: { username: 'misspelt-role' } })).toBe(0);
  });

  it('a role change refuses it by name', async () => {
    const user = await buildUser(db.prisma, { username: 'misspelt-role-change' });
    const response = await postJson(`/admin/users/${user.id}/role`, { role: 'admin', notify: true });
    expect(response.body).toEqual({ error: 'input: has an unknown field: notify', code: 400 });
    expect((await db.prisma.user.findUniqueOrThrow({ where: { id: user.id } })).role).toBe('user');
  });
});

// A misspelt field was ignored: `new_pasword` beside the right fields changed the password all the
// same, and a script could not tell a field it meant from one it had not sent.
describe('a field the account password form does not have', () => {
  async function ownAccount(username: string) {
    const user = await buildUser(db.prisma, { username });
    const agent = await signInAs(buildTestApp(db), username, user.password);
    const hashOf = async () => (await db.prisma.user.findUniqueOrThrow({ where: { id: user.id } })).passwordHash;
    return { user, agent, hashOf, hashBefore: await hashOf() };
  }

  it('is refused by name to a JSON client, and the password stays', async () => {
    const { user, agent, hashOf, hashBefore } = await ownAccount('misspelt-own-json');
    const auditBefore = await db.prisma.auditLog.count();
    const response = await agent
      .post('/account/password')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({
        current: user.password,
        password: 'a-new-password-12',
        confirm: 'a-new-password-12',
        new_pasword: 'a-new-password-12',
      });
    expect(response.status).toBe(400);
    expect(response.body).toEqual({ error: 'input: has an unknown field: new_pasword', code: 400 });
    expect(await hashOf()).toBe(hashBefore);
    expect(await db.prisma.auditLog.count()).toBe(auditBefore);
  });

  it('is named beside the field it was meant for', async () => {
    const { user, agent, hashOf, hashBefore } = await ownAccount('misspelt-own-only');
    const response = await agent
      .post('/account/password')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({ current: user.password, new_pasword: 'a-new-password-12', confirm: 'a-new-password-12' });
    expect(response.status).toBe(400);
    expect(response.body.error).toContain('input: has an unknown field: new_pasword');
    expect(response.body.error).toContain('password: is required');
    expect(await hashOf()).toBe(hashBefore);
  });

  it('is refused by name on the page to a form post, and the password stays', async () => {
    const { user, agent, hashOf, hashBefore } = await ownAccount('misspelt-own-form');
    const response = await agent
      .post('/account/password')
      .set('Accept', 'text/html')
      .type('form')
      .send({
        csrf_token: await csrfTokenOf(agent),
        current: user.password,
        password: 'a-new-password-12',
        confirm: 'a-new-password-12',
        new_pasword: 'a-new-password-12',
      });
    expect(response.status).toBe(400);
    expect(response.text).toContain('input: has an unknown field: new_pasword');
    expect(response.text).not.toContain('a-new-password-12');
    expect(await hashOf()).toBe(hashBefore);
  });

  it("takes every field the page's own form sends, the CSRF token among them", async () => {
    const { user, agent, hashOf, hashBefore } = await ownAccount('own-form-fields');
    const page = (await agent.get('/account').set('Accept', 'text/html').expect(200)).text;
    const form =
      /<form method="post" action="\/account\/password" data-submit-once>([\s\S]*?)<\/form>/.exec(page)?.[1] ?? '';
    const names = [...form.matchAll(/<input[^>]*\bname="([^"]+)"/g)].map((match) => match[1] as string);
    expect(names.sort()).toEqual(['confirm', 'csrf_token', 'current', 'password']);
    const typed: Record<string, string> = {
      csrf_token: csrfTokenIn(page),
      current: user.password,
      password: 'a-new-password-12',
      confirm: 'a-new-password-12',
    };
    const response = await agent
      .post('/account/password')
      .set('Accept', 'text/html')
      .type('form')
      .send(Object.fromEntries(names.map((name) => [name, typed[name]])));
    expect(response.status, response.text.slice(0, 300)).toBe(303);
    expect(await hashOf()).not.toBe(hashBefore);
  });
});
