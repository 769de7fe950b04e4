import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Renaming, re-describing and deleting tiers on /admin/rates. The demo's tiers (mu the default,
// gov, private) and the default PRICING_TIER_RULES, which send gov_* users to gov and ext_* to private.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let ops: Agent;
let alice: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  app = buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0' } });
  ops = await signInAs(app, 'ops', 'ops-password-123');
  alice = await signInAs(app, 'alice', 'alice-password');
});
afterAll(() => db?.drop());

const html = (agent: Agent, path: string) => agent.get(path).set('Accept', 'text/html');

/** The rename form of a tier as a browser sends it. */
async function editTier(agent: Agent, fields: Record<string, string>) {
  return agent
    .post('/admin/rates/tiers/edit')
    .set('Accept', 'text/html')
    .type('form')
    .send({ ...fields, csrf_token: await csrfTokenOf(agent, '/admin/rates') });
}

/** Everything a refused change must leave as it was. */
async function pricingState() {
  return {
    tiers: await db.prisma.pricingTier.findMany({
      orderBy: { id: 'asc' },
      select: { id: true, name: true, description: true, isDefault: true },
    }),
    rates: await db.prisma.pricingRate.findMany({ orderBy: { id: 'asc' } }),
    overrides: await db.prisma.tierOverride.findMany({ orderBy: { username: 'asc' } }),
    audit: await db.prisma.auditLog.count({ where: { action: { startsWith: 'pricing.' } } }),
  };
}

const typedValue = (page: string, id: string) => new RegExp(`id="${id}"[^>]*value="([^"]*)"`).exec(page)?.[1];
const flashOf = (page: string) => /<div class="alert (?:success|warning)" role="status">([^<]*)<\/div>/.exec(page)?.[1];

describe('renaming and describing a tier', () => {
  it('renames a tier: its rates and the users placed on it follow, audited, and the page says what does not', async () => {
    const gov = await db.prisma.pricingTier.findUniqueOrThrow({ where: { name: 'gov' } });
    await db.prisma.tierOverride.create({ data: { username: 'alice', tierId: gov.id, createdBy: 'test' } });
    const ratesBefore = await db.prisma.pricingRate.findMany({ where: { tierId: gov.id } });

    const response = await editTier(ops, { type: 'gov', name: 'government', description: 'Government agencies' });
    expect(response.status, response.text.slice(0, 300)).toBe(303);
    expect(response.headers.location).toBe('/admin/rates#tier-government');
    const page = (await html(ops, '/admin/rates').expect(200)).text;
    expect(flashOf(page)).toBe(
      'Tier gov renamed to government and its description saved. Its rate history and the users placed on it ' +
        'follow the new name; existing receipts keep the name gov, and clients asking /formula?type=gov must now ' +
        'ask for government. PRICING_TIER_RULES still sends usernames matching ^gov[-_.] to gov, which no longer ' +
        'exists: until the setting names government, those users are priced with the default tier.',
    );
    expect(page).toContain('<h2>government</h2>');
    expect(page).toContain('Government agencies');

    const renamed = await db.prisma.pricingTier.findUniqueOrThrow({ where: { id: gov.id } });
    expect(renamed).toMatchObject({ name: 'government', description: 'Government agencies', isDefault: false });
    expect(await db.prisma.pricingRate.findMany({ where: { tierId: gov.id } })).toEqual(ratesBefore);
    expect((await html(ops, '/admin/tiers').expect(200)).text).toMatch(
      /<tr id="user-alice">\s*<td>alice<\/td>\s*<td>mu<\/td>\s*<td>government<\/td>/,
    );
    expect((await request(app).get('/formula?type=government').expect(200)).body.type).toBe('government');
    await request(app).get('/formula?type=gov').expect(400);

    const audit = await db.prisma.auditLog.findFirstOrThrow({ where: { action: 'pricing.tier.update' } });
    expect(audit).toMatchObject({ actor: 'ops', target: 'tier:gov', status: 'ok' });
    expect(audit.details).toEqual({
      tierId: gov.id,
      previous: { name: 'gov', description: '' },
      next: { name: 'government', description: 'Government agencies' },
    });
    expect((await html(ops, '/admin/audit/verify')).status).toBe(200);

    // Back to the name the rule gives: the page says the rule's users are on it again.
    expect((await editTier(ops, { type: 'government', name: 'gov', description: 'Government agencies' })).status).toBe(
      303,
    );
    expect(flashOf((await html(ops, '/admin/rates').expect(200)).text)).toContain(
      'PRICING_TIER_RULES sends usernames matching ^gov[-_.] to it from now on.',
    );
    await db.prisma.tierOverride.delete({ where: { username: 'alice' } });
  });

  it('saves a new description alone, and saving what is there changes nothing and audits nothing', async () => {
    const audits = () => db.prisma.auditLog.count({ where: { action: 'pricing.tier.update' } });
    const before = await audits();
    expect((await editTier(ops, { type: 'private', name: 'private', description: ' Companies ' })).status).toBe(303);
    expect(flashOf((await html(ops, '/admin/rates').expect(200)).text)).toBe('Description of private saved.');
    expect((await db.prisma.pricingTier.findUniqueOrThrow({ where: { name: 'private' } })).description).toBe(
      'Companies',
    );
    expect(await audits()).toBe(before + 1);

    expect((await editTier(ops, { type: 'private', name: 'private', description: 'Companies' })).status).toBe(303);
    expect(flashOf((await html(ops, '/admin/rates').expect(200)).text)).toBe(
      'private already has this name and description; nothing was changed.',
    );
    expect(await audits()).toBe(before + 1);
  });

  it('refuses a name another tier has with a 409, keeping what was typed and changing nothing', async () => {
    const before = await pricingState();
    const response = await editTier(ops, { type: 'gov', name: 'private', description: 'typed' });
    expect(response.status).toBe(409);
    expect(response.text).toContain(
      'A tier named &#34;private&#34; already exists, so gov was not renamed. Choose another name.',
    );
    expect(typedValue(response.text, 'edit-name-gov')).toBe('private');
    expect(typedValue(response.text, 'edit-description-gov')).toBe('typed');
    // The other tiers' forms still show what they hold.
    expect(typedValue(response.text, 'edit-name-private')).toBe('private');
    expect(await pricingState()).toEqual(before);

    const json = await ops
      .post('/admin/rates/tiers/edit')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(ops))
      .send({ type: 'gov', name: 'mu' });
    expect(json.status).toBe(409);
    expect(json.body).toEqual({
      error: 'A tier named "mu" already exists, so gov was not renamed. Choose another name.',
      code: 409,
    });
    expect(await pricingState()).toEqual(before);
  });

  it.each([
    [{ type: 'gov', name: 'Gov' }, 'Tier gov not changed. name: must be lowercase letters, digits, - or _'],
    [{ type: 'gov', name: 'x'.repeat(33) }, 'Tier gov not changed. name: must be at most 32 characters'],
    [{ type: 'gov', name: ' ' }, 'Tier gov not changed. name: is required'],
    [{ type: 'gov', name: 'gov', description: 'd'.repeat(201) }, 'Tier gov not changed. description:'],
    [
      { type: 'gold', name: 'silver' },
      'Tier not changed. type: unknown tier &#34;gold&#34;. Known tiers: mu, gov, private.',
    ],
  ])('refuses %j as adding a tier would, with a 400, changing nothing', async (fields, message) => {
    const before = await pricingState();
    const response = await editTier(ops, fields);
    expect(response.status).toBe(400);
    expect(response.text).toContain(message);
    expect(await pricingState()).toEqual(before);
  });

  it('is for admins only and needs the CSRF token', async () => {
    const before = await pricingState();
    const forbidden = await alice
      .post('/admin/rates/tiers/edit')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(alice))
      .send({ type: 'gov', name: 'cheap' });
    expect(forbidden.status).toBe(403);
    await ops.post('/admin/rates/tiers/edit').type('form').send({ type: 'gov', name: 'cheap' }).expect(403);
    expect(await pricingState()).toEqual(before);
  });
});
