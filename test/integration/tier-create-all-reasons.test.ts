import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Adding a tier under a name another tier has, with a rate the rules refuse: the page said only
// what was wrong with the rate, and once that was fixed, that the name was taken.
let db: TestDatabase;
let ops: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  ops = await signInAs(buildTestApp(db), 'ops', 'ops-password-123');
});
afterAll(() => db?.drop());

describe('a new tier refused for a rate, under a name that is taken', () => {
  it('is told both at once, on the page and in JSON, and nothing is added', async () => {
    const tiers = await db.prisma.pricingTier.count();
    const page = await ops
      .post('/admin/rates/tiers')
      .set('Accept', 'text/html')
      .type('form')
      .send({ name: 'gov', description: '', cpu: '-1', gpu: '2', mem: '0.1', csrf_token: await csrfTokenOf(ops) });
    expect(page.status).toBe(400);
    expect(page.text).toContain(
      'Tier not added. Name: a tier named &#34;gov&#34; already exists (to change its rates, use its own form); CPU core-hour: must be a plain decimal',
    );
    expect(page.text).toMatch(/id="new-tier-name"[^>]*aria-invalid="true"[^>]*autofocus/);
    expect(page.text).toMatch(/id="new-tier-cpu"[^>]*aria-invalid="true"/);

    const json = await ops
      .post('/admin/rates/tiers')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(ops))
      .send({ name: 'gov', cpu: '-1', gpu: '2', mem: '0.1' });
    expect(json.status).toBe(400);
    expect(json.body.error).toMatch(
      /^name: a tier named "gov" already exists \(to change its rates, send POST \/admin\/rates with type "gov"\); cpu: must be/,
    );
    expect(await db.prisma.pricingTier.count()).toBe(tiers);
  });
});
