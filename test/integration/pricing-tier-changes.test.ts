import pg from 'pg';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADVISORY_LOCK_KEYS } from '../../src/db/advisory-locks.js';
import { postAuditVerify } from '../support/audit-verify.js';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { elementById } from '../support/html.js';
import { sessionsWaitingForLocks } from '../support/lock-waits.js';
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

/** When the newest audit entry of `action` was written. */
async function newestAuditTime(action: string): Promise<Date> {
  const entry = await db.prisma.auditLog.findFirstOrThrow({ where: { action }, orderBy: { id: 'desc' } });
  return entry.ts;
}

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
/** What a tier's card on the Rates page offers for deleting it: the button, or why it cannot be deleted. */
async function deletionOffered(tier: string) {
  const card = elementById((await html(ops, '/admin/rates').expect(200)).text, `tier-${tier}`);
  expect(card, `no card for ${tier}`).toBeDefined();
  return {
    hasButton:
      /<form method="post" action="\/admin\/rates\/tiers\/delete"/.test(card ?? '') ||
      /<button[^>]*>Delete tier /.test(card ?? ''),
    refusal: /<p class="muted">(Tier \S+ cannot be deleted: [^<]*)<\/p>/.exec(card ?? '')?.[1],
  };
}
const flashOf = (page: string) => /<div class="alert (?:success|warning)" role="status">([^<]*)<\/div>/.exec(page)?.[1];

describe('renaming and describing a tier', () => {
  it('refuses to rename a tier PRICING_TIER_RULES sends users to while no rule names the new name', async () => {
    const before = await pricingState();
    const response = await editTier(ops, { type: 'gov', name: 'government', description: 'Government agencies' });
    expect(response.status).toBe(409);
    expect(response.text).toContain(
      'Tier gov was not renamed: PRICING_TIER_RULES sends usernames matching ^gov[-_.] to it, and no rule names ' +
        'government, so those users would be priced with the default tier. Add the same rules for government to ' +
        'PRICING_TIER_RULES (a rule naming a tier that does not exist yet is skipped) and restart, then rename.',
    );
    expect(typedValue(response.text, 'edit-name-gov')).toBe('government');
    expect(await pricingState()).toEqual(before);
  });

  it('renames a tier: its rates, its override users and its rule users follow, audited, and the page says what does not', async () => {
    // The documented path: rules for the new name first (skipped while it does not exist), then the rename.
    const rules = JSON.stringify([
      { pattern: '^gov[-_.]', tier: 'government' },
      { pattern: '^gov[-_.]', tier: 'gov' },
      { pattern: '^(ext|ind)[-_.]', tier: 'private' },
    ]);
    const ruledApp = buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0', PRICING_TIER_RULES: rules } });
    const admin = await signInAs(ruledApp, 'ops', 'ops-password-123');
    await buildUser(db.prisma, { username: 'gov_lab', password: 'gov-lab-password' });
    const gov = await db.prisma.pricingTier.findUniqueOrThrow({ where: { name: 'gov' } });
    await db.prisma.tierOverride.create({ data: { username: 'alice', tierId: gov.id, createdBy: 'test' } });
    const ratesBefore = await db.prisma.pricingRate.findMany({ where: { tierId: gov.id } });
    // The natural tier and the override as read aloud: no override is a dash hidden from screen readers and "none" (a581f5ba).
    const tierRow = (page: string, username: string) =>
      new RegExp(
        `<tbody id="user-${username}">\\s*<tr>\\s*<td[^>]*>${username}</td>\\s*<td[^>]*>([^<]*)</td>\\s*<td[^>]*>((?:(?!</td>).)*)</td>`,
      )
        .exec(page)
        ?.slice(1)
        .map((cell) =>
          cell
            .replace(/<span aria-hidden="true">[^<]*<\/span>/g, '')
            .replace(/<[^>]+>/g, '')
            .trim(),
        );
    expect(tierRow((await html(admin, '/admin/tiers').expect(200)).text, 'gov_lab')?.[0]).toBe('gov');
    // Between the two steps the page says what the skipped rule means, not that gov_ users are on the default tier.
    const between = (await html(admin, '/admin/rates').expect(200)).text;
    expect(between).toContain(
      'tiers that do not exist yet: government (^gov[-_.]). Such a rule is skipped until its tier exists: the ' +
        'usernames it matches go to the next rule whose tier exists, or else to the default tier.',
    );
    expect(between).not.toContain('priced with the default tier');

    const response = await editTier(admin, { type: 'gov', name: 'government', description: 'Government agencies' });
    expect(response.status, response.text.slice(0, 300)).toBe(303);
    expect(response.headers.location).toBe('/admin/rates#tier-government');
    const page = (await html(admin, '/admin/rates').expect(200)).text;
    expect(flashOf(page)).toBe(
      'Tier gov renamed to government and its description saved. Its rate history and the users placed on it ' +
        'follow the new name; existing receipts keep the name gov, and clients asking /formula?type=gov must now ' +
        'ask for government. PRICING_TIER_RULES sends usernames matching ^gov[-_.] to it from now on. The rules ' +
        'for gov (^gov[-_.]) no longer name a tier; remove them from PRICING_TIER_RULES.',
    );
    expect(page).toContain('<h2>government</h2>');
    expect(page).toContain('Government agencies');

    const renamed = await db.prisma.pricingTier.findUniqueOrThrow({ where: { id: gov.id } });
    expect(renamed).toMatchObject({ name: 'government', description: 'Government agencies', isDefault: false });
    expect(await db.prisma.pricingRate.findMany({ where: { tierId: gov.id } })).toEqual(ratesBefore);
    const tiersPage = (await html(admin, '/admin/tiers').expect(200)).text;
    expect(tierRow(tiersPage, 'alice')).toEqual(['mu', 'government']);
    expect(tierRow(tiersPage, 'gov_lab')?.[0]).toBe('government');
    expect((await request(ruledApp).get('/formula?type=government').expect(200)).body.type).toBe('government');
    await request(ruledApp).get('/formula?type=gov').expect(400);

    const audit = await db.prisma.auditLog.findFirstOrThrow({ where: { action: 'pricing.tier.update' } });
    expect(audit).toMatchObject({ actor: 'ops', target: 'tier:gov', status: 'ok' });
    expect(audit.details).toEqual({
      tierId: gov.id,
      previous: { name: 'gov', description: '' },
      next: { name: 'government', description: 'Government agencies' },
      // The rules that sent users to it under each name (tier-rules-audited.test.ts).
      rulePatterns: { previous: ['^gov[-_.]'], next: ['^gov[-_.]'] },
    });
    await postAuditVerify(admin, 'text/html');

    // Back again: the rules still name both, so nobody moves.
    expect(
      (await editTier(admin, { type: 'government', name: 'gov', description: 'Government agencies' })).status,
    ).toBe(303);
    expect(tierRow((await html(admin, '/admin/tiers').expect(200)).text, 'gov_lab')?.[0]).toBe('gov');
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

  // A double click on Save (or two tabs) sent the rename twice: the second, finding no tier under the
  // old name, came back as "Tier not changed. Tier: unknown tier lab", the page the browser showed
  // last, over a rename that had been made.
  it('answers a rename sent again once made as done already, not as an unknown tier', async () => {
    await addTier('lab');
    expect((await editTier(ops, { type: 'lab', name: 'lab2', description: 'Lab' })).status).toBe(303);
    const audits = await db.prisma.auditLog.count({ where: { action: 'pricing.tier.update' } });
    const before = await pricingState();

    const again = await editTier(ops, { type: 'lab', name: 'lab2', description: 'Lab' });
    expect(again.status).toBe(303);
    expect(flashOf((await html(ops, '/admin/rates').expect(200)).text)).toMatch(
      /^Tier lab was already renamed to lab2, by ops at \d{4}-\d\d-\d\d \d\d:\d\d; nothing was changed\.$/,
    );
    const json = await ops
      .post('/admin/rates/tiers/edit')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(ops))
      .send({ type: 'lab', name: 'lab2' });
    expect(json.status).toBe(200);
    expect(json.body).toMatchObject({ ok: true, tier: { previous: 'lab', name: 'lab2', isChanged: false } });
    // A time in JSON is UTC ISO 8601, as every other is; only the message keeps the local display.
    const renamedAt = await newestAuditTime('pricing.tier.update');
    expect(json.body.tier.renamedBefore).toEqual({ by: 'ops', at: renamedAt.toISOString() });
    expect(json.body.message).toMatch(/^Tier lab was already renamed to lab2, by ops at \d{4}-\d\d-\d\d \d\d:\d\d;/);
    expect(await pricingState()).toEqual(before);
    expect(await db.prisma.auditLog.count({ where: { action: 'pricing.tier.update' } })).toBe(audits);

    // Another description than lab2's is not what was saved: still refused, naming the tier it is now.
    const other = await editTier(ops, { type: 'lab', name: 'lab2', description: 'Other' });
    expect(other.status).toBe(400);
    expect(await pricingState()).toEqual(before);
    await deleteTier(ops, 'lab2');
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
    [{ type: 'gov', name: 'Gov' }, 'Tier gov not changed. Name: must be lowercase letters, digits, - or _'],
    [{ type: 'gov', name: 'x'.repeat(33) }, 'Tier gov not changed. Name: must be at most 32 characters'],
    [{ type: 'gov', name: ' ' }, 'Tier gov not changed. Name: is required'],
    [{ type: 'gov', name: 'gov', description: 'd'.repeat(201) }, 'Tier gov not changed. Description:'],
    [
      { type: 'gold', name: 'silver' },
      'Tier not changed. Tier: unknown tier &#34;gold&#34;. Known tiers: mu, gov, private.',
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

/** The delete button of a tier as a browser sends it. */
async function deleteTier(agent: Agent, type: string) {
  return agent
    .post('/admin/rates/tiers/delete')
    .set('Accept', 'text/html')
    .type('form')
    .send({ type, csrf_token: await csrfTokenOf(agent, '/admin/rates') });
}

/** A tier added on the rates page, as an admin adds one (no rule names it; nobody is on it). */
async function addTier(name: string) {
  const response = await ops
    .post('/admin/rates/tiers')
    .set('Accept', 'text/html')
    .type('form')
    .send({ name, cpu: '0.3', gpu: '7', mem: '0.01', csrf_token: await csrfTokenOf(ops, '/admin/rates') });
  expect(response.status, response.text.slice(0, 300)).toBe(303);
  return db.prisma.pricingTier.findUniqueOrThrow({ where: { name }, include: { rates: true } });
}

const errorOf = (page: string) => /<div class="alert error" role="alert"[^>]*>([^<]*)<\/div>/.exec(page)?.[1];

describe('deleting a tier', () => {
  it('deletes a tier nothing depends on with its rate history, audited; receipts priced with it stay as they were', async () => {
    const spare = await addTier('spare');
    // A receipt created with the tier's rates: it keeps its own copy of them.
    const rate = spare.rates[0];
    const receipt = await db.prisma.receipt.create({
      data: {
        username: 'alice',
        billedThrough: new Date('2025-09-15'),
        total: '1.00',
        currency: 'THB',
        tierName: 'spare',
        rateId: rate?.id,
        ratesSnapshot: { tier: 'spare', cpu: '0.3', gpu: '7', mem: '0.01', currency: 'THB', rateId: rate?.id },
        ratesLockedAt: new Date(),
        createdBy: 'alice',
      },
    });
    expect((await html(ops, '/admin/rates').expect(200)).text).toContain('Delete tier spare');
    expect(await deletionOffered('spare')).toEqual({ hasButton: true, refusal: undefined });

    const response = await deleteTier(ops, 'spare');
    expect(response.status, response.text.slice(0, 300)).toBe(303);
    expect(response.headers.location).toBe('/admin/rates');
    const page = (await html(ops, '/admin/rates').expect(200)).text;
    expect(flashOf(page)).toBe(
      'Tier spare deleted, with its rate history (1 rate). Receipts priced with it keep their copy of its rates.',
    );
    expect(page).not.toContain('id="tier-spare"');
    expect(await db.prisma.pricingTier.count({ where: { name: 'spare' } })).toBe(0);
    expect(await db.prisma.pricingRate.count({ where: { tierId: spare.id } })).toBe(0);
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receipt.id } })).toEqual(receipt);
    await request(app).get('/formula?type=spare').expect(400);
    expect((await request(app).get('/rates').expect(200)).text).not.toContain('spare');

    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'pricing.tier.delete', target: 'tier:spare' },
    });
    expect(audit).toMatchObject({ actor: 'ops', target: 'tier:spare', status: 'ok' });
    expect(audit.details).toEqual({
      tierId: spare.id,
      description: '',
      rates: [
        {
          rateId: rate?.id,
          cpu: '0.3',
          gpu: '7',
          mem: '0.01',
          currency: 'THB',
          effectiveFrom: rate?.effectiveFrom.toISOString(),
        },
      ],
    });
    await postAuditVerify(ops, 'text/html');
    await db.prisma.receipt.delete({ where: { id: receipt.id } });

    // Sent again (a double click on Delete): done already, not "unknown tier"; nothing more is written.
    const audits = await db.prisma.auditLog.count();
    const again = await deleteTier(ops, 'spare');
    expect(again.status).toBe(303);
    expect(flashOf((await html(ops, '/admin/rates').expect(200)).text)).toMatch(
      /^Tier spare was already deleted, by ops at \d{4}-\d\d-\d\d \d\d:\d\d; nothing was changed\.$/,
    );
    const json = await ops
      .post('/admin/rates/tiers/delete')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(ops))
      .send({ type: 'spare' });
    expect(json.status).toBe(200);
    expect(json.body).toMatchObject({ ok: true, tier: { name: 'spare', isChanged: false } });
    const deletedAt = await newestAuditTime('pricing.tier.delete');
    expect(json.body.tier.deletedBefore).toEqual({ by: 'ops', at: deletedAt.toISOString() });
    expect(json.body.message).toMatch(/^Tier spare was already deleted, by ops at \d{4}-\d\d-\d\d \d\d:\d\d;/);
    expect(await db.prisma.auditLog.count()).toBe(audits);
  });

  it('refuses the default tier with a 409 saying why, changing nothing', async () => {
    const before = await pricingState();
    expect((await html(ops, '/admin/rates').expect(200)).text).not.toContain('Delete tier mu');
    expect(await deletionOffered('mu')).toEqual({
      hasButton: false,
      refusal:
        'Tier mu cannot be deleted: it is the default tier, which prices every user whom no rule or override places on another tier; make another tier the default first.',
    });
    const response = await deleteTier(ops, 'mu');
    expect(response.status).toBe(409);
    expect(errorOf(response.text)).toBe(
      'Tier mu was not deleted: it is the default tier, which prices every user whom no rule or override places on another tier; make another tier the default first.',
    );
    expect(await pricingState()).toEqual(before);
  });

  it('refuses a tier users are assigned to, naming how many and who, changing nothing', async () => {
    const lab = await addTier('lab');
    for (const username of ['carol', 'bob', 'dave']) {
      await buildUser(db.prisma, { username });
      await db.prisma.tierOverride.create({ data: { username, tierId: lab.id, createdBy: 'test' } });
    }
    // The page says so instead of offering a button whose every press is refused.
    expect(await deletionOffered('lab')).toEqual({
      hasButton: false,
      refusal:
        'Tier lab cannot be deleted: 3 users are assigned to this tier (bob, carol, dave); move them to another tier on Tier overrides first.',
    });
    const before = await pricingState();
    const response = await deleteTier(ops, 'lab');
    expect(response.status).toBe(409);
    expect(errorOf(response.text)).toBe(
      'Tier lab was not deleted: 3 users are assigned to this tier (bob, carol, dave); move them to another tier on Tier overrides first.',
    );
    expect(await pricingState()).toEqual(before);

    const json = await ops
      .post('/admin/rates/tiers/delete')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(ops))
      .send({ type: 'lab' });
    expect(json.status).toBe(409);
    expect(json.body).toEqual({
      error:
        'Tier lab was not deleted: 3 users are assigned to this tier (bob, carol, dave); move them to another tier on Tier overrides first.',
      code: 409,
    });
    expect(await pricingState()).toEqual(before);
    await db.prisma.tierOverride.deleteMany({ where: { tierId: lab.id } });
    expect(await deletionOffered('lab')).toEqual({ hasButton: true, refusal: undefined });
  });

  it('refuses a tier PRICING_TIER_RULES sends users to, changing nothing', async () => {
    expect(await deletionOffered('gov')).toEqual({
      hasButton: false,
      refusal:
        'Tier gov cannot be deleted: PRICING_TIER_RULES sends usernames matching ^gov[-_.] to it; change that setting first.',
    });
    const before = await pricingState();
    const response = await deleteTier(ops, 'gov');
    expect(response.status).toBe(409);
    expect(errorOf(response.text)).toBe(
      'Tier gov was not deleted: PRICING_TIER_RULES sends usernames matching ^gov[-_.] to it; change that setting first.',
    );
    expect(await pricingState()).toEqual(before);
  });

  it('refuses a tier that does not exist with a 400', async () => {
    const response = await deleteTier(ops, 'gold');
    expect(response.status).toBe(400);
    expect(errorOf(response.text)).toContain('Tier not deleted. Tier: unknown tier &#34;gold&#34;.');
  });

  it('is for admins only and needs the CSRF token', async () => {
    await addTier('unused');
    const before = await pricingState();
    const forbidden = await alice
      .post('/admin/rates/tiers/delete')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(alice))
      .send({ type: 'unused' });
    expect(forbidden.status).toBe(403);
    await ops.post('/admin/rates/tiers/delete').type('form').send({ type: 'unused' }).expect(403);
    expect(await pricingState()).toEqual(before);
  });
});

describe('deleting a tier while a user is being placed on it', () => {
  /** An admin's move of a user to a tier on /admin/tiers, as JSON. */
  async function placeUser(username: string, tier: string, token: string) {
    return ops
      .post('/admin/tiers')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ username, tier });
  }

  it('a deletion that comes second waits for the placement, then counts the user and refuses', async () => {
    const tier = await addTier('race1');
    await buildUser(db.prisma, { username: 'erin' });
    // The placement, caught after it wrote the override and before its commit.
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query(`INSERT INTO tier_overrides (username, tier_id, created_by) VALUES ('erin', $1, 'test')`, [
        tier.id,
      ]);
      const deletion = deleteTier(ops, 'race1');
      expect(await sessionsWaitingForLocks(db.pool)).toBeGreaterThan(0);
      await other.query('COMMIT');
      const response = await deletion;
      expect(response.status).toBe(409);
      expect(errorOf(response.text)).toContain('1 user is assigned to this tier (erin)');
    } finally {
      await other.end();
    }
    expect(await db.prisma.pricingTier.count({ where: { id: tier.id } })).toBe(1);
    expect(await db.prisma.tierOverride.findUnique({ where: { username: 'erin' } })).toMatchObject({
      tierId: tier.id,
    });
  });

  it('a placement that comes second waits for the deletion, then finds the tier gone: 409, not a server error', async () => {
    const tier = await addTier('race2');
    await buildUser(db.prisma, { username: 'frank' });
    const token = await csrfTokenOf(ops);
    // The deletion, caught after it deleted the tier and before its commit.
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query('SELECT id FROM pricing_tiers WHERE id = $1 FOR UPDATE', [tier.id]);
      await other.query('DELETE FROM pricing_rates WHERE tier_id = $1', [tier.id]);
      await other.query('DELETE FROM pricing_tiers WHERE id = $1', [tier.id]);
      const placement = placeUser('frank', 'race2', token);
      expect(await sessionsWaitingForLocks(db.pool)).toBeGreaterThan(0);
      await other.query('COMMIT');
      const response = await placement;
      expect(response.status).toBe(409);
      expect(response.body.error).toBe(
        'tier: race2 was deleted a moment ago, so frank was not moved. Reload the page.',
      );
    } finally {
      await other.end();
    }
    expect(await db.prisma.tierOverride.count({ where: { username: 'frank' } })).toBe(0);
  });

  it('of a deletion and a placement sent at once, one wins and no user is left on a deleted tier', async () => {
    for (const round of [1, 2, 3]) {
      const name = `race-at-once-${round}`;
      const tier = await addTier(name);
      const username = `gina${round}`;
      await buildUser(db.prisma, { username });
      const token = await csrfTokenOf(ops, '/admin/rates');
      const [deletion, placement] = await Promise.all([
        ops
          .post('/admin/rates/tiers/delete')
          .set('Accept', 'application/json')
          .set('X-CSRFToken', token)
          .send({ type: name }),
        placeUser(username, name, token),
      ]);
      const statuses = [deletion.status, placement.status];
      // A placement that reads the tiers after the deletion's commit is refused as an unknown tier (400).
      expect([
        [200, 400],
        [200, 409],
        [409, 200],
      ]).toContainEqual(statuses);
      const isTierKept = (await db.prisma.pricingTier.count({ where: { id: tier.id } })) === 1;
      const override = await db.prisma.tierOverride.findUnique({ where: { username } });
      expect(isTierKept, `round ${round}: ${statuses}`).toBe(deletion.status === 409);
      expect(override?.tierId).toBe(isTierKept ? tier.id : undefined);
    }
  });
});

describe('renaming a tier while a receipt is being made', () => {
  it('waits for the receipt, which reads the tier and its users under one name', async () => {
    const tier = await addTier('rename-race');
    await buildUser(db.prisma, { username: 'ivan' });
    await db.prisma.tierOverride.create({ data: { username: 'ivan', tierId: tier.id, createdBy: 'test' } });
    // A receipt in flight, as receipts.service makes one: it holds the pricing lock (shared), reads
    // every tier (getUserTierForBilling), then the user's override by name (findOverride).
    const receipt = new pg.Client({ connectionString: db.url });
    await receipt.connect();
    try {
      await receipt.query('BEGIN');
      await receipt.query('SELECT pg_advisory_xact_lock_shared($1)', [ADVISORY_LOCK_KEYS.pricingChange]);
      const { rows: tiers } = await receipt.query<{ name: string }>('SELECT name FROM pricing_tiers ORDER BY id');
      expect(tiers.map((row) => row.name)).toContain('rename-race');
      const rename = editTier(ops, {
        type: 'rename-race',
        name: 'rename-raced',
        description: '',
        based_on_description: '',
      });
      expect(await sessionsWaitingForLocks(db.pool, 2_000)).toBeGreaterThan(0);
      // Had the rename committed meanwhile, the override would name a tier the receipt did not read
      // (rename-raced), which pricing skips: ivan would be billed on the default tier's rates.
      const { rows: override } = await receipt.query<{ name: string }>(
        `SELECT t.name FROM tier_overrides o JOIN pricing_tiers t ON t.id = o.tier_id WHERE o.username = 'ivan'`,
      );
      expect(override).toEqual([{ name: 'rename-race' }]);
      await receipt.query('COMMIT');
      expect((await rename).status).toBe(303);
    } finally {
      await receipt.end();
    }
    expect(await db.prisma.pricingTier.findUniqueOrThrow({ where: { id: tier.id } })).toMatchObject({
      name: 'rename-raced',
    });
  });
});

describe('placing a user while another worker moved the default tier', () => {
  /** A JSON change on the Rates or Tier overrides page. */
  async function postJson(agent: Agent, path: string, body: Record<string, string>) {
    return agent
      .post(path)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent, '/admin/rates'))
      .send(body);
  }

  it('places the user on the tier chosen, judged by the tiers as they are, not as the worker cached them', async () => {
    await buildUser(db.prisma, { username: 'jun' });
    // A second worker, whose pricing cache is still the one from before the default moved.
    const worker = buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '60000' } });
    const admin = await signInAs(worker, 'ops', 'ops-password-123');
    expect((await html(admin, '/admin/tiers?q=jun').expect(200)).text).toContain('mu (natural)');
    expect((await postJson(ops, '/admin/rates/default', { type: 'gov' })).status).toBe(200);
    try {
      // jun's natural tier is gov now: keeping jun on mu needs an override. Judged by the cached
      // default (mu), it was taken for "back to the natural tier", changed nothing and said
      // "jun is already on mu" while jun was priced with gov.
      const moved = await postJson(admin, '/admin/tiers', { username: 'jun', tier: 'mu' });
      expect(moved.status).toBe(200);
      expect(moved.body.user).toEqual({ username: 'jun', override: 'mu', effectiveTier: 'mu', isChanged: true });
      const override = await db.prisma.tierOverride.findUnique({
        where: { username: 'jun' },
        select: { tier: { select: { name: true } } },
      });
      expect(override).toEqual({ tier: { name: 'mu' } });
      const audit = await db.prisma.auditLog.findFirstOrThrow({
        where: { target: 'user:jun' },
        orderBy: { id: 'desc' },
      });
      expect(audit).toMatchObject({ action: 'pricing.override.set' });
      expect(audit.details).toEqual({ previous: null, next: 'mu', naturalTier: 'gov' });
    } finally {
      expect((await postJson(ops, '/admin/rates/default', { type: 'mu' })).status).toBe(200);
    }
  });
});

describe('a tier description with a line break', () => {
  it('is refused when a tier is added or described as JSON, as the page cannot keep it', async () => {
    const before = await pricingState();
    const token = await csrfTokenOf(ops, '/admin/rates');
    const json = (path: string, body: Record<string, string>) =>
      ops.post(path).set('Accept', 'application/json').set('X-CSRFToken', token).send(body);
    const added = await json('/admin/rates/tiers', {
      name: 'two-lines',
      description: 'line one\nline two',
      cpu: '1',
      gpu: '1',
      mem: '1',
    });
    expect(added.status).toBe(400);
    expect(added.body.error).toBe(
      'description: must be one line of text, without line breaks, tabs or other control characters',
    );
    const described = await json('/admin/rates/tiers/edit', { type: 'gov', name: 'gov', description: 'a\tb' });
    expect(described.status).toBe(400);
    expect(await pricingState()).toEqual(before);
    // The page's one-line field is what it is for: one line is kept as sent.
    const kept = await json('/admin/rates/tiers/edit', {
      type: 'gov',
      name: 'gov',
      description: 'Ministries · “agencies”',
    });
    expect(kept.status).toBe(200);
    expect((await db.prisma.pricingTier.findUniqueOrThrow({ where: { name: 'gov' } })).description).toBe(
      'Ministries · “agencies”',
    );
  });
});
