import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A script (or fetch) changing rates and tiers gets its answer as JSON, as it gets its refusals,
// and leaves no flash in the session to show up on the admin's next page. The demo's tiers: mu
// the default, gov and private, which the default PRICING_TIER_RULES name.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let ops: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  app = buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0' } });
  ops = await signInAs(app, 'ops', 'ops-password-123');
});
afterAll(() => db?.drop());

/** A change sent as a script sends it: a JSON body, asking for JSON. */
async function sendJson(path: string, body: Record<string, unknown>) {
  const token = await csrfTokenOf(ops);
  return ops.post(path).set('Accept', 'application/json').set('X-CSRFToken', token).send(body);
}

/** The flash, if any: at the top of <main>, or in the card or row the redirect opens at. */
const flashOf = (page: string) => /<div class="alert \w+" role="status">([^<]*)<\/div>/.exec(page)?.[1];

/** The admin's next page, as a browser opens it. */
async function nextPage(path: string) {
  return (await ops.get(path).set('Accept', 'text/html').expect(200)).text;
}

describe('changes sent as JSON', () => {
  // POST /formula is /admin/rates for scripts: the same rates, the same answer, the same message.
  it.each([
    ['/admin/rates', '0.90'],
    ['/formula', '0.95'],
  ])('POST %s answers 200 with the rates and the message every change gives, and no flash waits', async (path, cpu) => {
    const response = await sendJson(path, { type: 'gov', cpu, gpu: 18, mem: 0.08 });
    expect(response.status, response.text.slice(0, 300)).toBe(200);
    expect(response.body).toEqual({
      ok: true,
      updated: {
        type: 'gov',
        cpu,
        gpu: '18.00',
        mem: '0.08',
        currency: 'THB',
        effectiveFrom: expect.any(String),
        isChanged: true,
        scheduled: null,
      },
      message: 'Rates of gov saved; they apply from now.',
    });
    expect(flashOf(await nextPage('/admin/rates'))).toBeUndefined();

    const again = await sendJson(path, { type: 'gov', cpu, gpu: 18, mem: 0.08 });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({
      ok: true,
      updated: { isChanged: false },
      message: 'Rates of gov are already these; nothing was saved.',
    });
    expect(flashOf(await nextPage('/admin/rates'))).toBeUndefined();
  });

  it('POST /admin/rates/tiers answers 201 with the tier added and its /formula as Location, as every creation does', async () => {
    const response = await sendJson('/admin/rates/tiers', {
      name: 'lab',
      description: 'Lab',
      cpu: '0.3',
      gpu: '7',
      mem: '0.01',
    });
    // It was 200, where a new receipt and a new user are 201 (answerCreated).
    expect(response.status, response.text.slice(0, 300)).toBe(201);
    expect(response.headers.location).toBe('/formula?type=lab');
    expect(response.body).toEqual({
      ok: true,
      tier: { name: 'lab', isDefault: false, rulePatterns: [] },
      message: 'Tier lab added; its rates apply from now.',
    });
    expect(await db.prisma.pricingTier.count({ where: { name: 'lab' } })).toBe(1);
    expect(flashOf(await nextPage('/admin/rates'))).toBeUndefined();
  });

  it('POST /admin/rates/tiers/edit answers 200 with what the rename did', async () => {
    const response = await sendJson('/admin/rates/tiers/edit', { type: 'lab', name: 'lab2', description: 'Lab two' });
    expect(response.status, response.text.slice(0, 300)).toBe(200);
    expect(response.body).toEqual({
      ok: true,
      tier: {
        previous: 'lab',
        name: 'lab2',
        isRenamed: true,
        isDescribed: true,
        previousRulePatterns: [],
        rulePatterns: [],
        isChanged: true,
      },
      message: expect.stringMatching(/^Tier lab renamed to lab2 and its description saved\. /),
    });
    expect(flashOf(await nextPage('/admin/rates'))).toBeUndefined();
  });

  it('POST /admin/rates/default answers 200 with the default before and after', async () => {
    const response = await sendJson('/admin/rates/default', { type: 'lab2' });
    expect(response.status, response.text.slice(0, 300)).toBe(200);
    expect(response.body).toEqual({
      ok: true,
      tier: { name: 'lab2', previous: 'mu', isChanged: true },
      message: expect.stringMatching(/^lab2 is now the default tier instead of mu: /),
    });
    expect(flashOf(await nextPage('/admin/rates'))).toBeUndefined();

    const back = await sendJson('/admin/rates/default', { type: 'mu' });
    expect(back.body).toMatchObject({ ok: true, tier: { name: 'mu', previous: 'lab2', isChanged: true } });
  });

  it('POST /admin/rates/tiers/delete answers 200 with the tier deleted', async () => {
    const response = await sendJson('/admin/rates/tiers/delete', { type: 'lab2' });
    expect(response.status, response.text.slice(0, 300)).toBe(200);
    expect(response.body).toEqual({
      ok: true,
      tier: { name: 'lab2', rateCount: 1, isChanged: true },
      message:
        'Tier lab2 deleted, with its rate history (1 rate). Receipts priced with it keep their copy of its rates.',
    });
    expect(await db.prisma.pricingTier.count({ where: { name: 'lab2' } })).toBe(0);
    expect(flashOf(await nextPage('/admin/rates'))).toBeUndefined();
  });

  it('POST /admin/tiers answers 200 with the user moved, and null for no override', async () => {
    const response = await sendJson('/admin/tiers', { username: 'alice', tier: 'gov' });
    expect(response.status, response.text.slice(0, 300)).toBe(200);
    expect(response.body).toEqual({
      ok: true,
      user: { username: 'alice', override: 'gov', effectiveTier: 'gov', isChanged: true },
      message: 'alice is now on gov.',
    });
    expect(flashOf(await nextPage('/admin/tiers'))).toBeUndefined();

    const back = await sendJson('/admin/tiers', { username: 'alice', tier: 'mu' });
    expect(back.body).toEqual({
      ok: true,
      user: { username: 'alice', override: null, effectiveTier: 'mu', isChanged: true },
      message: 'alice is now on mu.',
    });
  });

  it('answers JSON to a form body sent by a client that accepts only JSON', async () => {
    const response = await ops
      .post('/admin/rates')
      .set('Accept', 'application/json')
      .type('form')
      .send({ type: 'private', cpu: '1.6', gpu: '35', mem: '0.15', csrf_token: await csrfTokenOf(ops) });
    expect(response.status, response.text.slice(0, 300)).toBe(200);
    expect(response.body).toMatchObject({ ok: true, updated: { type: 'private', cpu: '1.60', isChanged: true } });
    expect(flashOf(await nextPage('/admin/rates'))).toBeUndefined();
  });
});

describe('the same changes sent by a browser form', () => {
  it('still answer 303 to the page, where the flash shows once', async () => {
    const response = await ops
      .post('/admin/rates')
      .set('Accept', 'text/html')
      .type('form')
      .send({ type: 'private', cpu: '1.7', gpu: '35', mem: '0.15', csrf_token: await csrfTokenOf(ops) });
    expect(response.status).toBe(303);
    expect(response.headers.location).toMatch(/^\/admin\/rates/);
    expect(flashOf(await nextPage('/admin/rates'))).toBe('Rates of private saved; they apply from now.');
    expect(flashOf(await nextPage('/admin/rates'))).toBeUndefined();

    const moved = await ops
      .post('/admin/tiers')
      .set('Accept', 'text/html')
      .type('form')
      .send({ username: 'alice', tier: 'private', csrf_token: await csrfTokenOf(ops) });
    expect(moved.status).toBe(303);
    // The fragment is the browser's, not the server's.
    const location = (moved.headers.location as string).split('#')[0] as string;
    expect(flashOf(await nextPage(location))).toBe('alice is now on private.');
  });
});
