import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// With several workers, the page a change redirects to is often served by another worker than the one
// that made it, whose pricing cache may be up to PRICING_CACHE_CHECK_MS behind. Edit rates and Tier
// overrides were drawn from that cache: after "Rates of gov saved" the card showed the old rates (and
// carried their id, so saving it again was refused as a stale page), and a tier just added was missing
// from it and from Tier overrides' lists. The pages admins change pricing on read it as it is.
let db: TestDatabase;
let ops: Agent;
/** The same admin on a second worker, whose pricing cache checks for changes once a minute. */
let opsElsewhere: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  await buildUser(db.prisma, { username: 'zoe', password: 'zoe-password-123' });
  ops = await signInAs(buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0' } }), 'ops', 'ops-password-123');
  opsElsewhere = await signInAs(
    buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '60000' } }),
    'ops',
    'ops-password-123',
  );
});
afterAll(() => db?.drop());

async function postJson(path: string, body: Record<string, string>) {
  return ops
    .post(path)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(ops, '/admin/rates'))
    .send(body);
}

const pageOf = async (path: string) => (await opsElsewhere.get(path).set('Accept', 'text/html').expect(200)).text;
const jsonOf = async (path: string) =>
  (await opsElsewhere.get(path).set('Accept', 'application/json').expect(200)).body;

describe('the admin pricing pages served by a worker whose cache is a moment behind', () => {
  it('Edit rates shows the rates just saved through another worker, and the tier just added', async () => {
    // The second worker caches the tiers as they are.
    expect(await pageOf('/admin/rates')).toContain('id="cpu-gov" name="cpu" inputmode="decimal" required value="0.8"');
    expect((await postJson('/admin/rates', { type: 'gov', cpu: '0.95', gpu: '18', mem: '0.08' })).status).toBe(200);
    expect((await postJson('/admin/rates/tiers', { name: 'lab', cpu: '1', gpu: '2', mem: '3' })).status).toBe(201);
    const rateId = (
      await db.prisma.pricingRate.findFirstOrThrow({ orderBy: { id: 'desc' }, where: { cpuPerHour: '0.95' } })
    ).id;

    const page = await pageOf('/admin/rates');
    expect(page).toContain('id="cpu-gov" name="cpu" inputmode="decimal" required value="0.95"');
    expect(page).toContain(`<input type="hidden" name="based_on" value="${rateId}">`);
    expect(page).toContain('id="tier-lab"');
    const json = await jsonOf('/admin/rates');
    expect(json.tiers.find((tier: { name: string }) => tier.name === 'gov').current).toMatchObject({
      rateId,
      cpu: '0.95',
    });
  });

  it('Tier overrides offers the tier just added and shows a user moved onto it as on it', async () => {
    expect((await jsonOf('/admin/tiers')).tiers).toEqual(['mu', 'gov', 'private', 'lab']);
    expect((await postJson('/admin/rates/tiers', { name: 'fresh', cpu: '1', gpu: '2', mem: '3' })).status).toBe(201);
    expect((await postJson('/admin/tiers', { username: 'zoe', tier: 'fresh' })).status).toBe(200);

    const json = await jsonOf('/admin/tiers?q=zoe');
    expect(json.tiers).toContain('fresh');
    // The override (read afresh) named a tier the cached tiers lacked: zoe showed as on mu.
    expect(json.users.find((user: { username: string }) => user.username === 'zoe')).toMatchObject({
      override: 'fresh',
      effectiveTier: 'fresh',
    });
    expect(await pageOf('/admin/tiers?q=zoe')).toContain('<option value="fresh" selected>');
  });
});
