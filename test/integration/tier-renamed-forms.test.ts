import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Pages opened before another admin renamed a tier name it by its old name. Each of their forms
// (make it the default, delete it, rename or describe it, move a user to it) was refused with
// 'unknown tier "mu"', the tier the admin had just seen on the page, and no word of the rename.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let ops: Agent;
let carol: Agent;
let carolToken: string;

const RENAMED = /unknown tier &#34;mu&#34;: it was renamed to uni by ops at \d{4}-\d\d-\d\d \d\d:\d\d\./;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db, [
    { name: 'gov', isDefault: true, cpu: '0.80', gpu: '18.00', mem: '0.08' },
    { name: 'mu', cpu: '0.50', gpu: '12.00', mem: '0.05' },
    { name: 'spare', cpu: '1.00', gpu: '20.00', mem: '0.10' },
  ]);
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  await buildUser(db.prisma, { username: 'carol', role: 'admin', password: 'carol-password-123' });
  await buildUser(db.prisma, { username: 'zed', password: 'zed-password-1234' });
  app = buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0' } });
  ops = await signInAs(app, 'ops', 'ops-password-123');
  carol = await signInAs(app, 'carol', 'carol-password-123');
  carolToken = await csrfTokenOf(carol);
  await ops
    .post('/admin/rates/tiers/edit')
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(ops))
    .send({ type: 'mu', name: 'uni' })
    .expect(200);
});
afterAll(() => db?.drop());

function post(path: string, body: Record<string, string>) {
  return carol
    .post(path)
    .set('Accept', 'text/html')
    .type('form')
    .send({ ...body, csrf_token: carolToken });
}

describe('a tier form opened before another admin renamed the tier', () => {
  it('says the tier was renamed, to what, by whom and when, on every form that names it', async () => {
    const entries = await db.prisma.auditLog.count();
    const forms = [
      post('/admin/rates/default', { type: 'mu' }),
      post('/admin/rates/tiers/delete', { type: 'mu' }),
      post('/admin/rates/tiers/edit', { type: 'mu', name: 'mu', description: 'University', based_on_description: '' }),
      post('/admin/tiers', { username: 'zed', tier: 'mu', based_on_override: '' }),
    ];
    for (const response of await Promise.all(forms)) {
      expect(response.status).toBe(400);
      expect(response.text).toMatch(RENAMED);
    }
    expect(await db.prisma.pricingTier.findMany({ orderBy: { id: 'asc' }, select: { name: true } })).toEqual([
      { name: 'gov' },
      { name: 'uni' },
      { name: 'spare' },
    ]);
    expect(await db.prisma.tierOverride.count()).toBe(0);
    expect(await db.prisma.auditLog.count()).toBe(entries);
  });

  it('keeps what was typed in the rename-or-describe form, in the card of the name the tier has now', async () => {
    const response = await post('/admin/rates/tiers/edit', {
      type: 'mu',
      name: 'mu',
      description: 'University members and staff',
      based_on_description: '',
    });
    expect(response.status).toBe(400);
    expect(response.text).toMatch(
      /Tier mu not changed\. Tier: unknown tier &#34;mu&#34;: it was renamed to uni by ops at [\d-]+ [\d:]+\. Known tiers: gov, uni, spare\. The form keeps what you typed; check it and save again\./,
    );
    const form = /<details id="rename-uni" open>.*?<\/form>/s.exec(response.text)?.[0] ?? '';
    expect(form).toContain('id="edit-name-uni" name="name"');
    expect(form).toMatch(/id="edit-name-uni"[^>]* value="uni"/);
    expect(form).toMatch(/id="edit-description-uni"[^>]* value="University members and staff"/);
    expect(form).toContain('name="based_on_description" value=""');
    // Sent again as shown, the description is saved on the tier under its new name.
    await post('/admin/rates/tiers/edit', {
      type: 'uni',
      name: 'uni',
      description: 'University members and staff',
      based_on_description: '',
    }).expect(303);
    expect((await db.prisma.pricingTier.findUniqueOrThrow({ where: { name: 'uni' } })).description).toBe(
      'University members and staff',
    );
  });

  it('tells a script setting rates by the old name of the rename, not to add the tier again', async () => {
    const response = await carol
      .post('/formula')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', carolToken)
      .send({ type: 'mu', cpu: '0.7', gpu: '12', mem: '0.05' });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatch(
      /^type: unknown tier "mu": it was renamed to uni by ops at [\d-]+ [\d:]+\. Known/,
    );
    expect(response.body.error).not.toContain('add it on the Rates page');
  });

  it('says nothing of a rename for a name no tier had', async () => {
    const response = await post('/admin/rates/default', { type: 'nosuch' });
    expect(response.status).toBe(400);
    expect(response.text).toContain('unknown tier &#34;nosuch&#34;. Known tiers:');
  });
});

describe('a Tier overrides page opened before the tier a user is on was renamed', () => {
  it('moves the user, not refused as if someone had moved them', async () => {
    const opsToken = await csrfTokenOf(ops);
    const json = (path: string, body: Record<string, string>) =>
      ops.post(path).set('Accept', 'application/json').set('X-CSRFToken', opsToken).send(body);
    await json('/admin/rates/tiers', { name: 'lab', cpu: '1', gpu: '2', mem: '0.1' }).expect(201);
    await json('/admin/tiers', { username: 'zed', tier: 'lab' }).expect(200);
    // carol's page shows zed on lab (the form's based_on_override); ops then renames lab.
    await json('/admin/rates/tiers/edit', { type: 'lab', name: 'lab2' }).expect(200);

    const moved = await post('/admin/tiers', { username: 'zed', tier: 'spare', based_on_override: 'lab' });
    expect(moved.status, moved.text.match(/role="alert"[^>]*>[^<]*/)?.[0]).toBe(303);
    const override = await db.prisma.tierOverride.findUniqueOrThrow({
      where: { username: 'zed' },
      include: { tier: true },
    });
    expect(override.tier.name).toBe('spare');
    const entry = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'pricing.override.set' },
      orderBy: { id: 'desc' },
    });
    expect(entry.details).toMatchObject({ previous: 'lab2', next: 'spare' });

    // Moved by someone else as well as renamed, it is still a conflict.
    await json('/admin/tiers', { username: 'zed', tier: 'lab2' }).expect(200);
    await json('/admin/rates/tiers/edit', { type: 'lab2', name: 'lab3' }).expect(200);
    await json('/admin/tiers', { username: 'zed', tier: 'gov' }).expect(200);
    const stale = await post('/admin/tiers', { username: 'zed', tier: 'spare', based_on_override: 'lab2' });
    expect(stale.status).toBe(409);
    expect(stale.text).toContain('zed not moved to spare. Their tier was changed by ops at');
  });
});

describe('a tier form opened before another admin deleted the tier', () => {
  it('says it was deleted, by whom and when, rather than only that no such tier exists', async () => {
    const opsToken = await csrfTokenOf(ops);
    const json = (path: string, body: Record<string, string>) =>
      ops.post(path).set('Accept', 'application/json').set('X-CSRFToken', opsToken).send(body);
    await json('/admin/rates/tiers', { name: 'tmp', cpu: '1', gpu: '2', mem: '0.1' }).expect(201);
    await json('/admin/rates/tiers/delete', { type: 'tmp' }).expect(200);
    const DELETED = /unknown tier &#34;tmp&#34;: it was deleted by ops at \d{4}-\d\d-\d\d \d\d:\d\d\./;
    const forms = [
      post('/admin/rates', { type: 'tmp', cpu: '1.5', gpu: '2', mem: '0.1' }),
      post('/admin/rates/default', { type: 'tmp' }),
      post('/admin/rates/tiers/edit', { type: 'tmp', name: 'tmp', description: 'x', based_on_description: '' }),
      post('/admin/tiers', { username: 'zed', tier: 'tmp', based_on_override: '' }),
    ];
    for (const response of await Promise.all(forms)) {
      expect(response.status).toBe(400);
      expect(response.text).toMatch(DELETED);
    }
    // Its Delete button asked for what is done already: so it answers (pricing-tier-changes).
    const deleteAgain = await json('/admin/rates/tiers/delete', { type: 'tmp' }).expect(200);
    expect(deleteAgain.body.tier).toMatchObject({ name: 'tmp', isChanged: false, deletedBefore: { by: 'ops' } });
    // Added again under that name, its forms work as any tier's.
    await json('/admin/rates/tiers', { name: 'tmp', cpu: '1', gpu: '2', mem: '0.1' }).expect(201);
    await post('/admin/rates/default', { type: 'tmp' }).expect(303);
  });
});
