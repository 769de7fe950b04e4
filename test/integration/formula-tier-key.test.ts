import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A rates walk's poller asked /formula?tier=gov, the app's own word for a price list everywhere else
 * (Tier overrides' `tier`, PRICING_TIER_RULES, receipts' tier): ignored as any unknown query field is,
 * it got 200 with the default tier's rates and ETag, and priced gov's users with mu's rates. The key is
 * refused by name, as the usage pages refuse the audit log's names for a window.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  app = buildTestApp(db);
});
afterAll(() => db?.drop());

const REASON = 'tier: is not read here: /formula reads the tier from type, as /formula?type=gov';

describe('/formula?tier=', () => {
  it('is refused by name, not answered with the default tier', async () => {
    const response = await request(app).get('/formula?tier=gov').set('Accept', 'application/json');
    expect(response.status).toBe(400);
    expect(response.body).toEqual({ error: REASON, code: 400 });
    expect(response.headers.etag).toBeUndefined();
    expect(response.headers['cache-control']).toBe('no-cache');
  });

  it('is refused beside type too, and when empty', async () => {
    for (const query of ['type=gov&tier=gov', 'tier=']) {
      const response = await request(app).get(`/formula?${query}`).set('Accept', 'application/json');
      expect(response.status, query).toBe(400);
      expect(response.body.error, query).toBe(REASON);
    }
  });

  it('leaves type as it was', async () => {
    const response = await request(app).get('/formula?type=gov').set('Accept', 'application/json');
    expect(response.status).toBe(200);
    expect(response.body.type).toBe('gov');
  });
});
