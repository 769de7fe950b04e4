import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { postFormIn } from '../support/html.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Pages opened before another admin deleted (or renamed) a tier and added another under its name.
// The Rename-or-describe form and a move on Tier overrides named the tier by name alone, so they
// renamed or described the NEW tier (when the descriptions matched), or put a user on it, priced at
// rates the admin had never seen. The rates form, Delete tier and Make default already refuse (409).
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let ops: Agent;
let carol: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db, [
    { name: 'gov', isDefault: true, cpu: '0.80', gpu: '18.00', mem: '0.08' },
    { name: 'mu', cpu: '0.50', gpu: '12.00', mem: '0.05' },
  ]);
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  await buildUser(db.prisma, { username: 'carol', role: 'admin', password: 'carol-password-123' });
  await buildUser(db.prisma, { username: 'zed', password: 'zed-password-1234' });
  app = buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0' } });
  ops = await signInAs(app, 'ops', 'ops-password-123');
  carol = await signInAs(app, 'carol', 'carol-password-123');
});
afterAll(() => db?.drop());

async function asOps(path: string, body: object) {
  return ops
    .post(path)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(ops))
    .send(body);
}

/** The fields (hidden and shown) of the first form in `html` whose action starts with `action`. */
function formFields(html: string, action: string): Record<string, string> {
  const form = postFormIn(html, action, true) ?? '';
  return Object.fromEntries(
    [...form.matchAll(/<input (?:type="hidden" )?(?:id="[^"]*" )?name="([a-z_]+)"[^>]*? value="([^"]*)"/g)].map((m) => [
      m[1],
      m[2],
    ]),
  );
}

/** The Rename-or-describe form of `tier` on carol's Rates page, as rendered. */
async function openEditForm(tier: string) {
  const page = (await carol.get('/admin/rates').set('Accept', 'text/html').expect(200)).text;
  const card = new RegExp(`<section class="card" id="tier-${tier}">.*?</section>`, 's').exec(page)?.[0] ?? '';
  return formFields(card, '/admin/rates/tiers/edit');
}

/** zed's form on carol's Tier overrides page, as rendered. */
async function openOverrideForm(username: string) {
  const page = (await carol.get('/admin/tiers').set('Accept', 'text/html').expect(200)).text;
  const row = new RegExp(`<tbody id="user-${username}">.*?</tbody>`, 's').exec(page)?.[0] ?? '';
  return formFields(row, '/admin/tiers');
}

const auditCount = (action: string) => db.prisma.auditLog.count({ where: { action } });
const tierNamed = (name: string) =>
  db.prisma.pricingTier.findUnique({ where: { name }, select: { id: true, name: true, description: true } });

describe('Rename or describe, from a page opened before its tier was replaced by another of that name', () => {
  it('renames nothing when the tier was deleted and another added under its name (HTML and JSON)', async () => {
    await asOps('/admin/rates/tiers', { name: 'desk', description: 'Hot desks', cpu: '1', gpu: '10', mem: '0.1' });
    const form = await openEditForm('desk');
    expect(form).toMatchObject({ type: 'desk', name: 'desk', description: 'Hot desks' });
    expect(form.based_on).toMatch(/^\d+$/);
    expect((await asOps('/admin/rates/tiers/delete', { type: 'desk' })).status).toBe(200);
    await asOps('/admin/rates/tiers', { name: 'desk', description: 'Hot desks', cpu: '5', gpu: '50', mem: '0.5' });
    const newDesk = await tierNamed('desk');
    const updates = await auditCount('pricing.tier.update');

    const refused = await carol
      .post('/admin/rates/tiers/edit')
      .set('Accept', 'text/html')
      .type('form')
      .send({ ...form, name: 'desk-old' });
    expect(refused.status).toBe(409);
    expect(refused.text).toMatch(
      /Tier desk was not renamed or described: the desk this page showed was deleted by ops at \d{4}-\d\d-\d\d \d\d:\d\d after it was opened, and the desk there is now is another tier, added since; rename or describe it from its own card if you mean to\./,
    );
    // Not offered again in the new desk's card, ready to be sent to it.
    expect(refused.text).not.toContain('value="desk-old"');
    expect(await tierNamed('desk')).toEqual(newDesk);
    expect(await tierNamed('desk-old')).toBeNull();
    expect(await auditCount('pricing.tier.update')).toBe(updates);

    const json = await carol
      .post('/admin/rates/tiers/edit')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(carol))
      .send({ type: 'desk', name: 'desk', description: 'Desks', based_on: Number(form.based_on) });
    expect(json.status).toBe(409);
    expect(json.body).toEqual({
      code: 409,
      error: expect.stringMatching(
        /^Tier desk was not renamed or described: the desk this page showed was deleted by ops at /,
      ),
    });
    expect(await tierNamed('desk')).toEqual(newDesk);
    expect(await auditCount('pricing.tier.update')).toBe(updates);

    // From a page showing the tier as it is, the form renames it; a script leaving based_on out too.
    const fresh = await openEditForm('desk');
    await carol
      .post('/admin/rates/tiers/edit')
      .type('form')
      .send({ ...fresh, name: 'desk2' })
      .expect(303);
    expect((await tierNamed('desk2'))?.id).toBe(newDesk?.id);
    await asOps('/admin/rates/tiers/edit', { type: 'desk2', name: 'desk3' }).then((r) => expect(r.status).toBe(200));
  });

  it('describes nothing when the tier was renamed and another added under its name', async () => {
    await asOps('/admin/rates/tiers', { name: 'lab', cpu: '1', gpu: '10', mem: '0.1' });
    const form = await openEditForm('lab');
    await asOps('/admin/rates/tiers/edit', { type: 'lab', name: 'lab2' });
    await asOps('/admin/rates/tiers', { name: 'lab', cpu: '5', gpu: '50', mem: '0.5' });
    const lab = await tierNamed('lab');
    const lab2 = await tierNamed('lab2');
    const updates = await auditCount('pricing.tier.update');

    const refused = await carol
      .post('/admin/rates/tiers/edit')
      .set('Accept', 'text/html')
      .type('form')
      .send({ ...form, description: 'Laboratory' });
    expect(refused.status).toBe(409);
    expect(refused.text).toMatch(
      /Tier lab was not renamed or described: the lab this page showed was renamed to lab2 by ops at \d{4}-\d\d-\d\d \d\d:\d\d after it was opened, and the lab there is now is another tier, added since; rename or describe it from its own card if you mean to\./,
    );
    expect(refused.text).not.toContain('value="Laboratory"');
    expect(await tierNamed('lab')).toEqual(lab);
    expect(await tierNamed('lab2')).toEqual(lab2);
    expect(await auditCount('pricing.tier.update')).toBe(updates);
  });

  it('refuses a based_on of no tier that had the name (400), changing nothing', async () => {
    const gov = await openEditForm('gov');
    const mu = await openEditForm('mu');
    const response = await carol
      .post('/admin/rates/tiers/edit')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(carol))
      .send({ type: 'mu', name: 'mu', description: 'Uni', based_on: Number(gov.based_on) });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatch(/^based_on: \d+ names no rates of mu/);
    expect((await tierNamed('mu'))?.description).toBe(mu.description);
  });
});

describe('Tier overrides, from a page opened before the tier chosen was replaced by another of that name', () => {
  it('moves no one to the new tier (HTML and JSON); scripts leaving based_on out still move', async () => {
    await asOps('/admin/rates/tiers', { name: 'night', cpu: '0.1', gpu: '1', mem: '0.01' });
    await asOps('/admin/rates/tiers', { name: 'day', cpu: '0.2', gpu: '2', mem: '0.02' });
    const form = await openOverrideForm('zed');
    expect(form).toMatchObject({ username: 'zed', based_on_override: '' });
    await asOps('/admin/rates/tiers/delete', { type: 'night' });
    await asOps('/admin/rates/tiers', { name: 'night', cpu: '9', gpu: '90', mem: '0.9' });
    await asOps('/admin/rates/tiers/edit', { type: 'day', name: 'day2' });
    await asOps('/admin/rates/tiers', { name: 'day', cpu: '8', gpu: '80', mem: '0.8' });
    const moves = await auditCount('pricing.override.set');

    const refused = await carol
      .post('/admin/tiers')
      .set('Accept', 'text/html')
      .type('form')
      .send({ ...form, tier: 'night' });
    expect(refused.status).toBe(409);
    expect(refused.text).toMatch(
      /zed not moved to night: the night this page showed was deleted by ops at \d{4}-\d\d-\d\d \d\d:\d\d after it was opened, and the night there is now is another tier, added since; choose it again from the list as it is now if you mean to\./,
    );
    // In zed's row, beside the tier focused, as a move refused for someone else's move is.
    const row = /<tbody id="user-zed">.*?<\/tbody>/s.exec(refused.text)?.[0] ?? '';
    expect(row).toContain('zed not moved to night: the night this page showed was deleted');
    expect(row).toContain('aria-invalid="true"');
    const renamed = await carol
      .post('/admin/tiers')
      .set('Accept', 'text/html')
      .type('form')
      .send({ ...form, tier: 'day' });
    expect(renamed.status).toBe(409);
    expect(renamed.text).toMatch(
      /zed not moved to day: the day this page showed was renamed to day2 by ops at \d{4}-\d\d-\d\d \d\d:\d\d after it was opened/,
    );
    expect(await db.prisma.tierOverride.count({ where: { username: 'zed' } })).toBe(0);
    expect(await auditCount('pricing.override.set')).toBe(moves);

    // A JSON client sends the rates in force of the tier it chose (as GET /admin/rates lists them).
    const night = formRateOf(form, 'night');
    const json = await carol
      .post('/admin/tiers')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(carol))
      .send({ username: 'zed', tier: 'night', based_on: night });
    expect(json.status).toBe(409);
    expect(json.body).toEqual({
      code: 409,
      error: expect.stringMatching(/^zed not moved to night: the night this page showed was deleted by ops at /),
    });
    expect(await db.prisma.tierOverride.count({ where: { username: 'zed' } })).toBe(0);
    expect(await auditCount('pricing.override.set')).toBe(moves);

    // From the page as it is now, the move is made; and so it is for a script sending no based_on.
    const fresh = await openOverrideForm('zed');
    await carol
      .post('/admin/tiers')
      .type('form')
      .send({ ...fresh, tier: 'night' })
      .expect(303);
    expect(await overrideOf('zed')).toBe('night');
    await asOps('/admin/tiers', { username: 'zed', tier: 'day' }).then((r) => expect(r.status).toBe(200));
    expect(await overrideOf('zed')).toBe('day');
  });

  it('refuses a based_on that is no rates of a tier that had the name (400), changing nothing', async () => {
    const gov = await openEditForm('gov');
    const moves = await auditCount('pricing.override.set');
    const response = await carol
      .post('/admin/tiers')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(carol))
      .send({ username: 'zed', tier: 'mu', based_on: Number(gov.based_on) });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatch(/^based_on: \d+ names no rates of mu/);
    // The form's hidden list, altered by hand: said so, nothing moved.
    const altered = await carol
      .post('/admin/tiers')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(carol))
      .send({ username: 'zed', tier: 'mu', based_on_rates: 'mu=3;gov' });
    expect(altered.status).toBe(400);
    expect(altered.body.error).toMatch(/based_on_rates: is not a list of tier:rates pairs/);
    // A rates id past the ids the database holds (int4), from the form or a script: a 400, not a 500.
    for (const based_on_rates of ['mu:2147483648', 'gov:1 mu:9999999999']) {
      const tooLarge = await carol
        .post('/admin/tiers')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(carol))
        .send({ username: 'zed', tier: 'mu', based_on_rates });
      expect(tooLarge.status, tooLarge.text).toBe(400);
      expect(tooLarge.body.error).toBe('based_on_rates: has a rates id past 2147483647, which no rates have');
    }
    expect(await overrideOf('zed')).toBe('day');
    expect(await auditCount('pricing.override.set')).toBe(moves);
  });
});

async function overrideOf(username: string) {
  const row = await db.prisma.tierOverride.findUnique({
    where: { username },
    select: { tier: { select: { name: true } } },
  });
  return row?.tier.name;
}

/** The rates id the overrides form holds for `tier` (its hidden based_on_rates, "name:id" pairs). */
function formRateOf(form: Record<string, string>, tier: string): number {
  const pair = (form.based_on_rates ?? '').split(' ').find((entry) => entry.startsWith(`${tier}:`));
  return Number(pair?.slice(tier.length + 1));
}
