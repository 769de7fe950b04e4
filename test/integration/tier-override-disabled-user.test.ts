import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A disabled account's jobs are still billed (a month-end run bills them: docs/billing.md), so its tier
// still prices something: Tier overrides lists it and moves it as any other, audited (docs/pricing.md).
let db: TestDatabase;
let ops: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  await buildUser(db.prisma, { username: 'gone', isDisabled: true });
  ops = await signInAs(buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0' } }), 'ops', 'ops-password-123');
});
afterAll(() => db?.drop());

describe('a disabled account on Tier overrides', () => {
  it('is listed and moved as any other, with its audit entry', async () => {
    const listed = await ops.get('/admin/tiers?q=gone').set('Accept', 'application/json').expect(200);
    expect(listed.body.users).toEqual([{ username: 'gone', naturalTier: 'mu', override: null, effectiveTier: 'mu' }]);
    const moved = await ops
      .post('/admin/tiers')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(ops, '/admin/tiers'))
      .send({ username: 'gone', tier: 'gov', based_on_override: '' });
    expect(moved.status).toBe(200);
    expect(moved.body.user).toEqual({ username: 'gone', override: 'gov', effectiveTier: 'gov', isChanged: true });
    const entry = await db.prisma.auditLog.findFirstOrThrow({
      where: { target: 'user:gone' },
      orderBy: { id: 'desc' },
    });
    expect(entry).toMatchObject({
      action: 'pricing.override.set',
      actor: 'ops',
      details: { previous: null, next: 'gov' },
    });
  });
});
