import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postAuditVerify } from '../support/audit-verify.js';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Adding a tier that PRICING_TIER_RULES names, or renaming one to such a name, moves the users the rule
// matches onto it, and prices them with its rates from then. The setting is audited nowhere, and the
// entry of the change said nothing of it: the log could not tell why lab_ann's receipts changed tier.
const RULES = JSON.stringify([
  { pattern: '^lab[-_]', tier: 'lab' },
  { pattern: '^proj[-_]', tier: 'projects' },
]);
let db: TestDatabase;
let ops: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  await buildJobs(db, [
    { user: 'lab_ann', end: '2026-11-10T03:00:00Z', jobId: '7001' },
    { user: 'proj_bo', end: '2026-11-10T03:00:00Z', jobId: '7002' },
  ]);
  const app = buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0', PRICING_TIER_RULES: RULES } });
  ops = await signInAs(app, 'ops', 'ops-password-123');
});
afterAll(() => db?.drop());

async function postJson(path: string, body: Record<string, string>) {
  return ops
    .post(path)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(ops, '/admin/rates'))
    .send(body);
}

async function newestDetails(action: string) {
  return (await db.prisma.auditLog.findFirstOrThrow({ where: { action }, orderBy: { id: 'desc' } })).details;
}

async function effectiveTierOf(username: string) {
  const list = await ops.get(`/admin/tiers?q=${username}`).set('Accept', 'application/json').expect(200);
  return list.body.users.find((user: { username: string }) => user.username === username)?.effectiveTier;
}

describe('the audit entry of a tier change that moves the users PRICING_TIER_RULES matches', () => {
  it('names the patterns that send users to a tier added, and none for a tier no rule names', async () => {
    expect(await effectiveTierOf('lab_ann')).toBe('mu');
    expect((await postJson('/admin/rates/tiers', { name: 'lab', cpu: '1', gpu: '2', mem: '3' })).status).toBe(201);
    expect(await effectiveTierOf('lab_ann')).toBe('lab');
    expect(await newestDetails('pricing.tier.create')).toMatchObject({ rulePatterns: ['^lab[-_]'] });

    expect((await postJson('/admin/rates/tiers', { name: 'spare', cpu: '1', gpu: '2', mem: '3' })).status).toBe(201);
    expect(await newestDetails('pricing.tier.create')).not.toHaveProperty('rulePatterns');
  });

  it('names the patterns before and after a rename that gives a tier a name a rule sends users to', async () => {
    expect(await effectiveTierOf('proj_bo')).toBe('mu');
    expect((await postJson('/admin/rates/tiers/edit', { type: 'spare', name: 'projects' })).status).toBe(200);
    expect(await effectiveTierOf('proj_bo')).toBe('projects');
    expect(await newestDetails('pricing.tier.update')).toMatchObject({
      previous: { name: 'spare' },
      next: { name: 'projects' },
      rulePatterns: { previous: [], next: ['^proj[-_]'] },
    });

    // No rule names either name: the entry is as it was.
    expect((await postJson('/admin/rates/tiers/edit', { type: 'private', name: 'companies' })).status).toBe(200);
    expect(await newestDetails('pricing.tier.update')).not.toHaveProperty('rulePatterns');
    await postAuditVerify(ops, 'text/html');
  });
});
