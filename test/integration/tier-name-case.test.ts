import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A tier typed in another case than its name (Private for private) was refused as `unknown tier
 * "Private". Known tiers: mu, gov, private.`, which named private among the known ones without saying
 * why Private is not it. Tier names are not read in lower case as usernames are: nothing in the
 * database keeps them lower case (a tier added by SQL may be called Private, beside private), so the
 * refusal stays and now says that tier names are lower case, and which tier the name is in lower case.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'chief', role: 'admin', password: 'chief-password' });
  await buildUser(db.prisma, { username: 'zoe' });
  app = buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0' } });
  admin = await signInAs(app, 'chief', 'chief-password');
});
afterAll(() => db?.drop());

const note = 'tier names are lower case and read as written (the tier is called private)';

describe('a tier name typed in capitals', () => {
  it('is refused by GET /formula?type=, saying tier names are lower case', async () => {
    const response = await request(app).get('/formula?type=Private').set('Accept', 'application/json');
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      error: `Unknown tier "Private": ${note}. Known tiers: mu, gov, private.`,
      code: 400,
    });
    // A name in lower case that is no tier's says nothing of case.
    const nope = await request(app).get('/formula?type=nope').set('Accept', 'application/json');
    expect(nope.body.error).toBe('Unknown tier "nope". Known tiers: mu, gov, private.');
    // A name in capitals that is no tier's in lower case either: lower case, no tier named.
    const gold = await request(app).get('/formula?type=GOLD').set('Accept', 'application/json');
    expect(gold.body.error).toBe(
      'Unknown tier "GOLD": tier names are lower case and read as written. Known tiers: mu, gov, private.',
    );
  });

  it("is refused by the usage pages' Tier filter, saying so", async () => {
    const json = await admin
      .get('/admin/usage?start=2025-09-14&end=2025-09-20&tier=Private')
      .set('Accept', 'application/json')
      .expect(400);
    expect(json.body.error).toBe(`tier: unknown tier "Private": ${note}. Known tiers: mu, gov, private.`);
    const page = await admin
      .get('/admin/usage?start=2025-09-14&end=2025-09-20&tier=Private')
      .set('Accept', 'text/html')
      .expect(400);
    expect(visibleTextOf(page.text)).toContain(
      `Tier: unknown tier &#34;Private&#34;: ${note}. Known tiers: mu, gov, private.`,
    );
  });

  it('is refused by the Tier overrides form, saying so, and moves nobody', async () => {
    const json = await admin
      .post('/admin/tiers')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ username: 'zoe', tier: 'Private' })
      .expect(400);
    expect(json.body.error).toBe(`tier: unknown tier "Private": ${note}. Known tiers: mu, gov, private.`);
    expect(await db.prisma.tierOverride.count()).toBe(0);
  });

  it('is refused by a rates change (POST /formula), saying so, and sets no rates', async () => {
    const before = await db.prisma.pricingRate.count();
    const json = await admin
      .post('/formula')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ type: 'Private', cpu: '1', gpu: '1', mem: '1' })
      .expect(400);
    expect(json.body.error).toContain(`type: unknown tier "Private": ${note}. Known tiers: mu, gov, private.`);
    expect(await db.prisma.pricingRate.count()).toBe(before);
  });
});

describe('a tier whose name has capitals (added by SQL)', () => {
  it('is found as written, and a refusal then says nothing of lower case', async () => {
    await buildTiers(db, [{ name: 'Lab', cpu: '1.00', gpu: '1.00', mem: '1.00' }]);
    await request(app).get('/formula?type=Lab').set('Accept', 'application/json').expect(200);
    const response = await request(app).get('/formula?type=LAB').set('Accept', 'application/json');
    expect(response.status).toBe(400);
    expect(response.body.error).toBe('Unknown tier "LAB". Known tiers: mu, gov, private, Lab.');
  });
});
