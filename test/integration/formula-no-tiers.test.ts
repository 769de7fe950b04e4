import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A production database after `npm run db:migrate`: no pricing tier, so no rates configured.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  db = await createTestDatabase();
  app = buildTestApp(db);
});
afterAll(() => db?.drop());

const NO_TIERS = {
  error: 'No pricing tier has rates yet; an administrator must add one on the Rates page (/admin/rates).',
  code: 404,
  reason: 'no_pricing_tiers',
};

describe('before any rates are configured', () => {
  it('the price list for people is a 200 page saying so', async () => {
    const page = await request(app).get('/rates').set('Accept', 'text/html').expect(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toContain(NO_TIERS.error);
    expect(await db.prisma.pricingTier.count()).toBe(0);
  });

  it.each(['/formula', '/formula?type=', '/formula?type=mu'])(
    '%s answers a program a 404 JSON error with a reason it can test, never cached',
    async (path) => {
      const response = await request(app).get(path).set('Accept', 'application/json').expect(404);
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      expect(response.body).toEqual(NO_TIERS);
      expect(response.headers['cache-control']).toBe('no-cache');
      // A poller that still holds an old tag gets the refusal, not a 304 over nothing.
      const revalidated = await request(app).get(path).set('If-None-Match', '"stale", *').expect(404);
      expect(revalidated.body).toEqual(NO_TIERS);
    },
  );

  it('a wrong path is a 404 too, but without that reason', async () => {
    const response = await request(app).get('/formulas').set('Accept', 'application/json').expect(404);
    expect(response.body.reason).toBeUndefined();
  });

  it('once a tier exists, /formula answers 200 with its strong ETag, and 304 to that tag', async () => {
    await buildTiers(db, [{ name: 'mu', isDefault: true, cpu: '0.50', gpu: '12.00', mem: '0.05' }]);
    // Each worker notices a change within PRICING_CACHE_CHECK_MS (1 s).
    const formula = await vi.waitFor(() => request(app).get('/formula').expect(200), { timeout: 5000, interval: 200 });
    expect(formula.body).toMatchObject({ type: 'mu', rates: { cpu: '0.50' } });
    expect(formula.headers['cache-control']).toBe('no-cache');
    const etag = String(formula.headers.etag);
    expect(etag).toMatch(/^"[\w-]+"$/);
    for (const path of ['/formula', '/formula?type=mu']) {
      const notModified = await request(app).get(path).set('If-None-Match', etag);
      expect(notModified.status, path).toBe(304);
      expect(notModified.text, path).toBe('');
    }
    const page = await request(app).get('/rates').set('Accept', 'text/html').expect(200);
    expect(page.text).not.toContain(NO_TIERS.error);
  });
});
