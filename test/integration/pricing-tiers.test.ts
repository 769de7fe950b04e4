import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postAuditVerify } from '../support/audit-verify.js';
import { buildJobs } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { flashMessageOf } from '../support/html.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A production database after `npm run db:migrate` and the bootstrap admin: no demo seed, so
// no pricing tier. The admin adds the tiers from the rates page.
let db: TestDatabase;
// 2025-09-20 12:00 in Bangkok, moving with the real clock so changes get distinct instants.
const STARTED = Date.now();
const now = () => new Date(Date.parse('2025-09-20T05:00:00Z') + (Date.now() - STARTED));
const env = { APP_TZ: 'Asia/Bangkok' };
let app: ReturnType<typeof buildTestApp>;
let ops: Agent;
let alice: Agent;

const NO_TIERS = 'No pricing tier has rates yet; an administrator must add one on the Rates page (/admin/rates).';

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'gov_lab', password: 'gov_lab-password' });
  app = buildTestApp(db, { env, now });
  ops = await signInAs(app, 'ops', 'ops-password-123');
  alice = await signInAs(app, 'alice', 'alice-password');
});
afterAll(() => db?.drop());

const html = (agent: Agent, path: string) => agent.get(path).set('Accept', 'text/html');

/** The add-a-tier form of /admin/rates as a browser sends it. */
async function addTier(agent: Agent, fields: Record<string, string>) {
  return agent
    .post('/admin/rates/tiers')
    .set('Accept', 'text/html')
    .type('form')
    .send({ ...fields, csrf_token: await csrfTokenOf(agent, '/admin/rates') });
}

async function makeDefault(agent: Agent, type: string) {
  return agent
    .post('/admin/rates/default')
    .set('Accept', 'text/html')
    .type('form')
    .send({ type, csrf_token: await csrfTokenOf(agent, '/admin/rates') });
}

/** What a refused tier must leave as it was. */
async function pricingRows() {
  return {
    tiers: await db.prisma.pricingTier.count(),
    rates: await db.prisma.pricingRate.count(),
    audit: await db.prisma.auditLog.count({ where: { action: { startsWith: 'pricing.' } } }),
  };
}

const typedValue = (page: string, id: string) => new RegExp(`id="${id}"[^>]*value="([^"]*)"`).exec(page)?.[1];

describe('a database with no pricing tier yet', () => {
  it('answers /formula with a 404 saying no rates are set, on the fast path and through Express', async () => {
    // An empty type is a type left out: the default tier, which does not exist yet either.
    for (const path of ['/formula', '/formula?type=mu', '/formula?type=']) {
      const response = await request(app).get(path).expect(404);
      expect(response.body, path).toEqual({ error: NO_TIERS, code: 404, reason: 'no_pricing_tiers' });
    }
  });

  it('refuses POST /formula for a tier that does not exist, saying where tiers are added', async () => {
    const response = await ops
      .post('/formula')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(ops))
      .send({ type: 'mu', cpu: 0.5, gpu: 12, mem: 0.05 });
    expect(response.status).toBe(400);
    expect(response.body.error).toBe(
      'type: unknown tier "mu". No tier exists yet. Setting rates does not add a tier: add it on the Rates page (/admin/rates).',
    );
    expect(await pricingRows()).toEqual({ tiers: 0, rates: 0, audit: 0 });
  });

  it('shows the rates page with the add-a-tier form and a sentence asking for the first tier', async () => {
    const page = (await html(ops, '/admin/rates').expect(200)).text;
    expect(page).toContain('No pricing tier exists yet, so nothing can be priced or billed.');
    expect(page).toContain('Create the first tier with the form below: it becomes the default tier');
    expect(page).toContain('<form method="post" action="/admin/rates/tiers#new-tier"');
    // The default PRICING_TIER_RULES name gov and private: the admin learns they are missing.
    expect(page).toContain(
      'PRICING_TIER_RULES sends some usernames to tiers that do not exist yet: gov (^gov[-_.]); private (^(ext|ind)[-_.]).',
    );
  });

  it('answers the pages that need prices with a clear page, not a server error', async () => {
    const tiers = await html(ops, '/admin/tiers').expect(200);
    expect(tiers.text).toContain('No pricing tier exists yet, so no user can be placed on one.');
    expect(tiers.text).toContain('href="/admin/rates#new-tier"');
    for (const [agent, path] of [
      [alice, '/me'],
      [ops, '/admin/usage'],
    ] as const) {
      const page = await html(agent, path);
      expect(page.status, path).toBe(404);
      expect(page.text, path).toContain(NO_TIERS);
    }
    expect((await alice.get('/me').set('Accept', 'application/json').expect(404)).body).toEqual({
      error: NO_TIERS,
      code: 404,
      reason: 'no_pricing_tiers',
    });
  });
});

describe('adding tiers on the rates page', () => {
  it('makes the first tier the default: /formula serves it, usage is priced and a receipt is created with it', async () => {
    // Another worker that has already cached "no tier yet" and checks for changes once a minute.
    let otherClockMs = now().getTime();
    const otherWorker = buildTestApp(db, {
      env: { ...env, PRICING_CACHE_CHECK_MS: '60000' },
      now: () => new Date(otherClockMs),
    });
    await request(otherWorker).get('/formula').expect(404);

    const created = await addTier(ops, {
      name: 'standard',
      description: 'University members',
      cpu: '0.40',
      gpu: '10',
      mem: '0.02',
    });
    expect(created.status, created.text.slice(0, 300)).toBe(303);
    expect(created.headers.location).toBe('/admin/rates#tier-standard');
    const page = (await html(ops, '/admin/rates').expect(200)).text;
    expect(page).toContain(
      'Tier standard added; its rates apply from now. It is the default tier: it prices every user whom no rule or override places on another tier.',
    );
    expect(page).toContain('<h2>standard (default tier)</h2>');
    expect(page).toContain('University members');
    expect(page).not.toContain('No pricing tier exists yet');

    const tier = await db.prisma.pricingTier.findUniqueOrThrow({
      where: { name: 'standard' },
      include: { rates: true },
    });
    expect(tier.isDefault).toBe(true);
    expect(tier.rates).toHaveLength(1);
    expect(tier.rates[0]).toMatchObject({ currency: 'THB', createdBy: 'ops' });
    expect(tier.rates.map((rate) => [rate.cpuPerHour, rate.gpuPerHour, rate.memPerHour].map(String))).toEqual([
      ['0.4', '10', '0.02'],
    ]);
    const audit = await db.prisma.auditLog.findFirstOrThrow({ where: { action: 'pricing.tier.create' } });
    expect(audit).toMatchObject({ actor: 'ops', target: 'tier:standard', status: 'ok' });
    expect(audit.details).toEqual({
      tierId: tier.id,
      rateId: tier.rates[0]?.id,
      isDefault: true,
      description: 'University members',
      rates: { cpu: '0.4', gpu: '10', mem: '0.02' },
      currency: 'THB',
    });
    await postAuditVerify(ops, 'text/html');

    // /formula on the fast path (no query) and through Express, on the worker that made the change.
    const formula = await request(app).get('/formula').expect(200);
    expect(formula.body).toEqual({
      type: 'standard',
      unit: 'per-hour',
      rates: { cpu: '0.40', gpu: '10.00', mem: '0.02' },
      currency: 'THB',
    });
    expect((await request(app).get('/formula?type=standard').expect(200)).headers.etag).toBe(formula.headers.etag);
    await request(app)
      .get('/formula')
      .set('If-None-Match', formula.headers.etag as string)
      .expect(304);
    // The other worker follows at its next check, not before.
    await request(otherWorker).get('/formula').expect(404);
    otherClockMs += 61_000;
    const followed = await request(otherWorker).get('/formula').expect(200);
    expect(followed.headers.etag).toBe(formula.headers.etag);

    await buildJobs(db, [{ user: 'alice', end: '2025-09-10T03:00:00Z', jobId: '5001', allocGpus: 1 }]);
    const usage = (await html(alice, '/me?start=2025-09-08&end=2025-09-20').expect(200)).text;
    expect(usage).toContain('tier <strong>standard</strong>');
    expect(usage).toContain(
      'rates: CPU 0.40 THB per core-hour, GPU 10.00 THB per GPU-hour, memory 0.02 THB per GB-hour.',
    );
    // 2 CPU-hours x 0.4 + 1 GPU-hour x 10 + 4 GB-hours x 0.02.
    expect(usage).toContain('10.88');

    const receipt = await alice
      .post('/me/receipt')
      .set('Accept', 'text/html')
      .type('form')
      .send({ before: '2025-09-15', csrf_token: await csrfTokenOf(alice, '/me') });
    expect(receipt.status, receipt.text.slice(0, 300)).toBe(303);
    const stored = await db.prisma.receipt.findFirstOrThrow({ where: { username: 'alice' } });
    expect(stored).toMatchObject({ tierName: 'standard', rateId: tier.rates[0]?.id });
    expect(stored.total.toFixed(2)).toBe('10.88');
    expect(stored.ratesSnapshot).toMatchObject({ cpu: '0.4', gpu: '10', mem: '0.02', currency: 'THB' });
  });

  it('adds a tier a rule names without making it the default, and says who it now prices', async () => {
    const before = (await html(ops, '/admin/tiers').expect(200)).text;
    expect(before).toMatch(/<tbody id="user-gov_lab">\s*<tr>\s*<td[^>]*>gov_lab<\/td>\s*<td[^>]*>standard<\/td>/);

    const created = await addTier(ops, { name: 'gov', cpu: '0.8', gpu: '18', mem: '0.08' });
    expect(created.status).toBe(303);
    const page = (await html(ops, '/admin/rates').expect(200)).text;
    expect(page).toContain(
      'Tier gov added; its rates apply from now. PRICING_TIER_RULES sends usernames matching ^gov[-_.] to it from now on.',
    );
    expect(page).toContain('<h2>gov</h2>');
    expect(page).toContain('tiers that do not exist yet: private (^(ext|ind)[-_.]).');
    expect((await db.prisma.pricingTier.findUniqueOrThrow({ where: { name: 'gov' } })).isDefault).toBe(false);
    expect((await request(app).get('/formula').expect(200)).body.type).toBe('standard');
    expect((await request(app).get('/formula?type=gov').expect(200)).body.rates).toEqual({
      cpu: '0.80',
      gpu: '18.00',
      mem: '0.08',
    });

    const after = (await html(ops, '/admin/tiers').expect(200)).text;
    expect(after).toMatch(/<tbody id="user-gov_lab">\s*<tr>\s*<td[^>]*>gov_lab<\/td>\s*<td[^>]*>gov<\/td>/);
    expect(after).toMatch(/<tbody id="user-alice">\s*<tr>\s*<td[^>]*>alice<\/td>\s*<td[^>]*>standard<\/td>/);
  });

  it.each([
    [{ name: 'Gov', cpu: '1', gpu: '1', mem: '1' }, 'Name: must be lowercase letters, digits, - or _'],
    [{ name: 'my tier', cpu: '1', gpu: '1', mem: '1' }, 'Name: must be lowercase letters, digits, - or _'],
    [{ name: '-gold', cpu: '1', gpu: '1', mem: '1' }, 'Name: must be lowercase letters, digits, - or _'],
    [{ name: 'x'.repeat(33), cpu: '1', gpu: '1', mem: '1' }, 'Name: must be at most 32 characters'],
    [{ name: '  ', cpu: '1', gpu: '1', mem: '1' }, 'Name: is required'],
    [
      { name: 'gold', cpu: '-1', gpu: '1', mem: '1' },
      'CPU core-hour: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25',
    ],
    [
      { name: 'gold', cpu: '1', gpu: 'lots', mem: '1' },
      'GPU-hour: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25',
    ],
    [
      { name: 'gold', cpu: '-0', gpu: '1', mem: '1' },
      'CPU core-hour: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25',
    ],
    [
      { name: 'gold', cpu: '1', gpu: '+1', mem: '1' },
      'GPU-hour: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25',
    ],
    [
      { name: 'gold', cpu: '.5', gpu: '1', mem: '1' },
      'CPU core-hour: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25',
    ],
    [
      { name: 'gold', cpu: '1', gpu: '1', mem: '5.' },
      'Memory GB-hour: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25',
    ],
    [
      { name: 'gold', cpu: '1', gpu: '1', mem: '' },
      'Memory GB-hour: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25',
    ],
    [
      { name: 'gold', cpu: '1', gpu: '1' },
      'Memory GB-hour: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25',
    ],
    [
      { name: 'gold', cpu: '1', gpu: '1', mem: '0.1234567' },
      'Memory GB-hour: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25',
    ],
    [
      { name: 'gold', cpu: '1', gpu: '5000000', mem: '1' },
      'GPU-hour: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25',
    ],
    [
      { name: 'gold', cpu: '1e3', gpu: '1', mem: '1' },
      'CPU core-hour: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25',
    ],
    [{ name: 'gold', cpu: '1', gpu: '1', mem: '1', is_default: 'on' }, 'input: has an unknown field: is_default'],
  ])('refuses %j with a 400 naming the field, keeps what was typed and writes nothing', async (fields, message) => {
    const before = await pricingRows();
    const response = await addTier(ops, fields);
    expect(response.status).toBe(400);
    expect(response.text).toContain(`Tier not added. ${message}`);
    for (const field of ['name', 'cpu', 'gpu', 'mem'] as const) {
      expect(typedValue(response.text, `new-tier-${field}`), field).toBe(
        (fields as Record<string, string>)[field] ?? '',
      );
    }
    // The existing tiers' forms still show their rates in force.
    expect(typedValue(response.text, 'cpu-standard')).toBe('0.4');
    expect(await pricingRows()).toEqual(before);
  });

  it.each([
    ['-0.0', 'cpu: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25'],
    ['"+1"', 'cpu: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25'],
    ['".5"', 'cpu: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25'],
  ])('refuses the JSON rate %s of a new tier as the form does, writing nothing', async (cpu, message) => {
    const before = await pricingRows();
    const response = await ops
      .post('/admin/rates/tiers')
      .set('Accept', 'application/json')
      .set('Content-Type', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(ops))
      .send(`{"name":"gold","cpu":${cpu},"gpu":1,"mem":1}`);
    expect(response.status).toBe(400);
    expect(response.body).toEqual({ error: message, code: 400 });
    expect(await pricingRows()).toEqual(before);
  });

  it('refuses a name that is taken with a 409, keeping what was typed and writing nothing', async () => {
    const before = await pricingRows();
    const response = await addTier(ops, { name: ' gov ', description: 'again', cpu: '9', gpu: '9', mem: '9' });
    expect(response.status).toBe(409);
    expect(response.text).toContain(
      'A tier named &#34;gov&#34; already exists, so nothing was added. To change its rates, use its own form.',
    );
    expect(typedValue(response.text, 'new-tier-description')).toBe('again');
    expect(typedValue(response.text, 'new-tier-cpu')).toBe('9');
    expect(typedValue(response.text, 'cpu-gov')).toBe('0.8');
    expect(await pricingRows()).toEqual(before);
    const json = await ops
      .post('/admin/rates/tiers')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(ops))
      .send({ name: 'gov', cpu: '9', gpu: '9', mem: '9' });
    expect(json.status).toBe(409);
    // A script has no form of the tier's: it is told the request that changes its rates.
    expect(json.body).toEqual({
      error:
        'A tier named "gov" already exists, so nothing was added. To change its rates, send POST /admin/rates with type "gov" and its cpu, gpu and mem (GET /admin/rates gives those in force).',
      code: 409,
    });
  });

  it('answers the same tier sent again once added (Back and Add, two tabs) as done already, not as a taken name', async () => {
    const fields = { name: 'lab', description: 'Teaching lab', cpu: '0.4', gpu: '12', mem: '0.02' };
    expect((await addTier(ops, fields)).status).toBe(303);
    const added = await pricingRows();
    const again = await addTier(ops, { ...fields, name: ' lab ' });
    expect(again.status).toBe(303);
    expect(flashMessageOf((await html(ops, '/admin/rates').expect(200)).text)).toMatch(
      /^Tier lab was already added with these rates and description, by ops at \d{4}-\d\d-\d\d \d\d:\d\d; nothing was changed\.$/,
    );
    const json = await ops
      .post('/admin/rates/tiers')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(ops))
      .send({ ...fields, cpu: '0.400' });
    expect(json.status).toBe(200);
    expect(json.body.tier).toMatchObject({ name: 'lab', isChanged: false, addedBefore: { by: 'ops' } });
    expect(json.body.message).toMatch(/^Tier lab was already added with these rates and description, by ops at /);
    expect(await pricingRows()).toEqual(added);
    // Other rates or another description are another tier's: the name is taken.
    for (const other of [{ cpu: '0.5' }, { description: 'Another lab' }]) {
      const taken = await addTier(ops, { ...fields, ...other });
      expect(taken.status).toBe(409);
      expect(taken.text).toContain('A tier named &#34;lab&#34; already exists, so nothing was added.');
    }
    expect(await pricingRows()).toEqual(added);
    // The tests after this one list the tiers.
    await db.prisma.pricingRate.deleteMany({ where: { tier: { name: 'lab' } } });
    await db.prisma.pricingTier.delete({ where: { name: 'lab' } });
  });

  it('takes a tier as JSON, judging its rates by the digits sent as for every rate', async () => {
    const send = async (body: string) =>
      ops
        .post('/admin/rates/tiers')
        .set('Accept', 'application/json')
        .set('Content-Type', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(ops))
        .send(body);
    const before = await pricingRows();
    const exponent = await send('{"name":"jsonexp","cpu":1e3,"gpu":1,"mem":1}');
    expect(exponent.status).toBe(400);
    expect(exponent.body.error).toContain(
      'cpu: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25',
    );
    expect(await pricingRows()).toEqual(before);
    expect((await send('{"name":"jsontier","cpu":1.25,"gpu":10,"mem":0.123456}')).status).toBe(201);
    const rate = await db.prisma.pricingRate.findFirstOrThrow({ where: { tier: { name: 'jsontier' } } });
    expect([rate.cpuPerHour.toFixed(), rate.gpuPerHour.toFixed(), rate.memPerHour.toFixed()]).toEqual([
      '1.25',
      '10',
      '0.123456',
    ]);
    // The tests after this one list the tiers.
    await db.prisma.pricingRate.deleteMany({ where: { tier: { name: 'jsontier' } } });
    await db.prisma.pricingTier.delete({ where: { name: 'jsontier' } });
  });

  it('of two admins adding the same name at once, adds it once and tells the other 409', async () => {
    const before = await pricingRows();
    const token = await csrfTokenOf(ops, '/admin/rates');
    const responses = await Promise.all(
      [
        { cpu: '1.5', gpu: '35', mem: '0.15' },
        { cpu: '1.6', gpu: '36', mem: '0.16' },
      ].map((rates) =>
        ops
          .post('/admin/rates/tiers')
          .set('Accept', 'application/json')
          .set('X-CSRFToken', token)
          .send({ name: 'private', ...rates }),
      ),
    );
    expect(responses.map((response) => response.status).sort()).toEqual([201, 409]);
    expect(responses.find((response) => response.status === 409)?.body.error).toMatch(
      /^A tier named "private" already exists/,
    );
    expect(await pricingRows()).toEqual({
      tiers: before.tiers + 1,
      rates: before.rates + 1,
      audit: before.audit + 1,
    });
    expect((await db.prisma.pricingTier.findUniqueOrThrow({ where: { name: 'private' } })).isDefault).toBe(false);
  });

  it('is for admins only and needs the CSRF token', async () => {
    const before = await pricingRows();
    const forbidden = await alice
      .post('/admin/rates/tiers')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(alice))
      .send({ name: 'cheap', cpu: '0', gpu: '0', mem: '0' });
    expect(forbidden.status).toBe(403);
    await ops.post('/admin/rates/tiers').type('form').send({ name: 'cheap', cpu: '0', gpu: '0', mem: '0' }).expect(403);
    expect(await pricingRows()).toEqual(before);
  });

  it('keeps POST /formula to existing tiers, naming them when refused', async () => {
    const response = await ops
      .post('/formula')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(ops))
      .send({ type: 'gold', cpu: 1, gpu: 1, mem: 1 });
    expect(response.status).toBe(400);
    expect(response.body.error).toBe(
      'type: unknown tier "gold". Known tiers: standard, gov, private. Setting rates does not add a tier: add it on the Rates page (/admin/rates).',
    );
    expect(await db.prisma.pricingTier.count({ where: { name: 'gold' } })).toBe(0);
  });
});

describe('choosing the default tier', () => {
  it('moves the default to another tier, audited, and /formula and unplaced users follow', async () => {
    const page = (await html(ops, '/admin/rates').expect(200)).text;
    expect(page).toContain('Make gov the default tier');
    expect(page).not.toContain('Make standard the default tier');

    const moved = await makeDefault(ops, 'gov');
    expect(moved.status).toBe(303);
    expect(moved.headers.location).toBe('/admin/rates#tier-gov');
    const after = (await html(ops, '/admin/rates').expect(200)).text;
    expect(after).toContain('gov is now the default tier instead of standard');
    expect(after).toContain('<h2>gov (default tier)</h2>');
    expect(after).toContain('<h2>standard</h2>');
    const defaults = await db.prisma.pricingTier.findMany({ where: { isDefault: true }, select: { name: true } });
    expect(defaults).toEqual([{ name: 'gov' }]);
    expect((await request(app).get('/formula').expect(200)).body.type).toBe('gov');
    expect((await html(alice, '/me').expect(200)).text).toContain('tier <strong>gov</strong>');
    const audit = await db.prisma.auditLog.findFirstOrThrow({ where: { action: 'pricing.tier.default' } });
    expect(audit).toMatchObject({ actor: 'ops', target: 'tier:gov', status: 'ok' });
    expect(audit.details).toEqual({ previous: 'standard', next: 'gov' });

    // Asked again: nothing changes and nothing is audited.
    expect((await makeDefault(ops, 'gov')).status).toBe(303);
    expect((await html(ops, '/admin/rates').expect(200)).text).toContain(
      'gov is already the default tier; nothing was changed.',
    );
    expect(await db.prisma.auditLog.count({ where: { action: 'pricing.tier.default' } })).toBe(1);

    expect((await makeDefault(ops, 'standard')).status).toBe(303);
    expect((await request(app).get('/formula').expect(200)).body.type).toBe('standard');
  });

  it('refuses a tier that does not exist, on the page and changing nothing', async () => {
    const response = await makeDefault(ops, 'gold');
    expect(response.status).toBe(400);
    expect(response.text).toContain('Default tier not changed. Tier: unknown tier &#34;gold&#34;.');
    expect(await db.prisma.pricingTier.findMany({ where: { isDefault: true }, select: { name: true } })).toEqual([
      { name: 'standard' },
    ]);
  });
});

describe('two first tiers added at once', () => {
  it('makes exactly one of them the default', async () => {
    const empty = await createTestDatabase();
    try {
      await buildUser(empty.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
      const fresh = buildTestApp(empty, { env, now });
      const admin = await signInAs(fresh, 'ops', 'ops-password-123');
      const token = await csrfTokenOf(admin, '/admin/rates');
      const responses = await Promise.all(
        ['alpha', 'beta', 'gamma'].map((name) =>
          admin
            .post('/admin/rates/tiers')
            .set('Accept', 'application/json')
            .set('X-CSRFToken', token)
            .send({ name, cpu: '1', gpu: '1', mem: '1' }),
        ),
      );
      expect(responses.map((response) => response.status)).toEqual([201, 201, 201]);
      const tiers = await empty.prisma.pricingTier.findMany({ orderBy: { id: 'asc' } });
      expect(tiers).toHaveLength(3);
      expect(tiers.filter((tier) => tier.isDefault)).toEqual([tiers[0]]);
      expect((await request(fresh).get('/formula').expect(200)).body.type).toBe(tiers[0]?.name);
    } finally {
      await empty.drop();
    }
  });
});
