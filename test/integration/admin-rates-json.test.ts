import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectPageForBrowsersAndNoJsonForResearchers } from '../support/admin-json.js';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs, signInNewAdmin } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * /admin/rates (Edit rates) for a script: it answered a JSON client with the HTML page, while its
 * forms' changes and the other admin pages answer JSON. Now it gets every tier with its rate history
 * as JSON, each rate with the `rateId` a rates change sends as `based_on`.
 */

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  app = buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0' } });
  admin = await signInNewAdmin(app, db, 'chief');
});
afterAll(() => db?.drop());

function getJson(agent: Agent, path: string) {
  return agent.get(path).set('Accept', 'application/json');
}

describe('GET /admin/rates for a JSON client', () => {
  it('answers every tier with its rates in force and history, whose rateId a change sends as based_on', async () => {
    const answer = await getJson(admin, '/admin/rates').expect(200);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    const mu = answer.body.tiers.find((tier: { name: string }) => tier.name === 'mu');
    const rate = await db.prisma.pricingRate.findFirstOrThrow({ where: { tier: { name: 'mu' } } });
    expect(mu).toEqual({
      name: 'mu',
      description: expect.any(String),
      isDefault: true,
      current: {
        rateId: rate.id,
        cpu: '0.50',
        gpu: '12.00',
        mem: '0.05',
        currency: 'THB',
        effectiveFrom: '2020-01-01T00:00:00.000Z',
      },
      history: [
        {
          rateId: rate.id,
          cpu: '0.50',
          gpu: '12.00',
          mem: '0.05',
          currency: 'THB',
          effectiveFrom: '2020-01-01T00:00:00.000Z',
          isScheduled: false,
          createdBy: 'test',
          createdAt: rate.createdAt.toISOString(),
        },
      ],
      deletionBlockers: [expect.stringContaining('default tier')],
    });
    expect(answer.body.tiers.map((tier: { name: string }) => tier.name).sort()).toEqual(['gov', 'mu', 'private']);
    expect(answer.body.ruleTiers).toEqual([]);

    // The rateId is what a change starts from: sent as based_on, it is taken.
    const changed = await admin
      .post('/admin/rates')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ type: 'mu', cpu: '0.60', gpu: '12', mem: '0.05', based_on: mu.current.rateId })
      .expect(200);
    expect(changed.body.updated).toMatchObject({ type: 'mu', cpu: '0.60', isChanged: true });
    const after = (await getJson(admin, '/admin/rates').expect(200)).body.tiers.find(
      (tier: { name: string }) => tier.name === 'mu',
    );
    // Newest first, as the page lists the history.
    expect(after.history.map((row: { cpu: string }) => row.cpu)).toEqual(['0.60', '0.50']);
    expect(after.current).toMatchObject({ cpu: '0.60', rateId: after.history[0].rateId });
  });

  it('still gives a browser the page, and refuses a researcher asking for JSON', async () => {
    const user = await buildUser(db.prisma, { username: 'zoe' });
    await expectPageForBrowsersAndNoJsonForResearchers(
      admin,
      await signInAs(app, user.username, user.password),
      '/admin/rates',
    );
  });

  it('before the first tier, answers an empty list and the tiers the rules name', async () => {
    const empty = await createTestDatabase();
    try {
      const chief = await signInNewAdmin(buildTestApp(empty), empty, 'chief');
      const answer = await getJson(chief, '/admin/rates').expect(200);
      expect(answer.body.tiers).toEqual([]);
      expect(answer.body.ruleTiers.map((rule: { tier: string }) => rule.tier).sort()).toEqual(['gov', 'private']);
    } finally {
      await empty.drop();
    }
  });
});
