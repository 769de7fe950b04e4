import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A move on Tier overrides sent to a worker whose pricing cache is a moment behind another worker's
// change of the tiers (up to PRICING_CACHE_CHECK_MS). The move judged the tier it names by that cache:
// a tier renamed on the other worker was still found under its old name, and the user was put on it
// (by its id) with an audit entry and an answer naming a tier that no longer had that name; a tier
// added on the other worker was "unknown" in a sentence that listed it among the known tiers.
let db: TestDatabase;
let ops: Agent;
/** The same admin on a second worker, whose pricing cache checks for changes once a minute. */
let opsElsewhere: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  await buildUser(db.prisma, { username: 'zoe', password: 'zoe-password-123' });
  await buildUser(db.prisma, { username: 'yan', password: 'yan-password-123' });
  ops = await signInAs(buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0' } }), 'ops', 'ops-password-123');
  opsElsewhere = await signInAs(
    buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '60000' } }),
    'ops',
    'ops-password-123',
  );
});
afterAll(() => db?.drop());

async function postJson(agent: Agent, path: string, body: Record<string, string>) {
  return agent
    .post(path)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(agent, '/admin/rates'))
    .send(body);
}

/** Everything a refused move must leave as it was. */
async function overrideState() {
  return {
    overrides: await db.prisma.tierOverride.findMany({ orderBy: { username: 'asc' } }),
    audit: await db.prisma.auditLog.count({ where: { action: { startsWith: 'pricing.override' } } }),
  };
}

describe('a move on Tier overrides through a worker whose pricing cache is a moment behind', () => {
  it('refuses a tier renamed on another worker by its old name, as from a page opened before the rename', async () => {
    expect((await postJson(ops, '/admin/rates/tiers', { name: 'lab', cpu: '1', gpu: '2', mem: '3' })).status).toBe(201);
    // The second worker reads the tiers now: lab is among them.
    expect((await opsElsewhere.get('/admin/tiers').set('Accept', 'application/json').expect(200)).body.tiers).toContain(
      'lab',
    );
    expect((await postJson(ops, '/admin/rates/tiers/edit', { type: 'lab', name: 'lab2' })).status).toBe(200);
    const before = await overrideState();

    const moved = await postJson(opsElsewhere, '/admin/tiers', { username: 'zoe', tier: 'lab' });

    // It put zoe on lab2 and wrote `next: "lab"`, a name no tier had any more.
    expect(moved.status).toBe(400);
    expect(moved.body.error).toMatch(/^tier: unknown tier "lab": it was renamed to lab2 by ops at /);
    expect(await overrideState()).toEqual(before);
  });

  it('places a user on a tier added on another worker, which it had not cached yet', async () => {
    // The second worker has cached the tiers before this one is added.
    expect(
      (await opsElsewhere.get('/admin/tiers').set('Accept', 'application/json').expect(200)).body.tiers,
    ).not.toContain('fresh');
    expect((await postJson(ops, '/admin/rates/tiers', { name: 'fresh', cpu: '1', gpu: '2', mem: '3' })).status).toBe(
      201,
    );

    const moved = await postJson(opsElsewhere, '/admin/tiers', { username: 'yan', tier: 'fresh' });

    // It was refused as `unknown tier "fresh". Known tiers: mu, gov, private, lab2, fresh.`
    expect(moved.status).toBe(200);
    expect(moved.body.user).toEqual({ username: 'yan', override: 'fresh', effectiveTier: 'fresh', isChanged: true });
    const entry = await db.prisma.auditLog.findFirstOrThrow({ where: { target: 'user:yan' }, orderBy: { id: 'desc' } });
    expect(entry).toMatchObject({ action: 'pricing.override.set', details: { previous: null, next: 'fresh' } });
  });
});
