import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectPageForBrowsersAndNoJsonForResearchers } from '../support/admin-json.js';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs, signInNewAdmin } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * /admin/tiers (Tier overrides) for a script: it answered a JSON client with the HTML page, while
 * its form's changes and the other admin lists already answer JSON. Now the list comes as JSON,
 * each user with the tiers the page shows; before the first tier, the 404 /formula and /me give.
 */

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  app = buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0' } });
  admin = await signInNewAdmin(app, db, 'chief');
  await buildUser(db.prisma, { username: 'zed' });
  // A job owner without an account, whom the default rules put on gov.
  await buildJobs(db, [{ user: 'gov-zed', end: '2025-09-10T10:00:00Z' }]);
});
afterAll(() => db?.drop());

function getJson(agent: Agent, path: string) {
  return agent.get(path).set('Accept', 'application/json');
}

describe('GET /admin/tiers for a JSON client', () => {
  it('answers the page’s list as JSON, each user with natural, override and effective tier', async () => {
    await admin
      .post('/admin/tiers')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ username: 'zed', tier: 'private' })
      .expect(200);
    const answer = await getJson(admin, '/admin/tiers').expect(200);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(answer.body).toEqual({
      q: null,
      tiers: expect.arrayContaining(['mu', 'gov', 'private']),
      defaultTier: 'mu',
      page: 1,
      pageCount: 1,
      count: 3,
      users: [
        { username: 'chief', naturalTier: 'mu', override: null, effectiveTier: 'mu' },
        { username: 'gov-zed', naturalTier: 'gov', override: null, effectiveTier: 'gov' },
        { username: 'zed', naturalTier: 'mu', override: 'private', effectiveTier: 'private' },
      ],
    });
    expect(answer.body.tiers).toHaveLength(3);
  });

  it('searches as the page does, and refuses a page past the last or a bad page with {error, code}', async () => {
    const found = await getJson(admin, '/admin/tiers?q=ZED').expect(200);
    expect(found.body).toMatchObject({ q: 'ZED', count: 2 });
    expect(found.body.users.map((user: { username: string }) => user.username)).toEqual(['zed', 'gov-zed']);
    for (const [path, code] of [
      ['/admin/tiers?page=2', 404],
      ['/admin/tiers?page=x', 400],
    ] as const) {
      expect((await getJson(admin, path).expect(code)).body).toEqual({ error: expect.any(String), code });
    }
  });

  it('still gives a browser the page, and refuses a researcher asking for JSON', async () => {
    const zed = await buildUser(db.prisma, { username: 'zoe' });
    await expectPageForBrowsersAndNoJsonForResearchers(
      admin,
      await signInAs(app, zed.username, zed.password),
      '/admin/tiers',
    );
  });

  it('before the first tier, answers the 404 with reason no_pricing_tiers that /formula gives', async () => {
    const empty = await createTestDatabase();
    try {
      const emptyApp = buildTestApp(empty);
      const chief = await signInNewAdmin(emptyApp, empty, 'chief');
      const answer = await getJson(chief, '/admin/tiers').expect(404);
      expect(answer.body).toMatchObject({ code: 404, reason: 'no_pricing_tiers' });
      expect((await chief.get('/admin/tiers').set('Accept', 'text/html')).status).toBe(200);
      // Its HEAD (a link checker, `curl -I`) is answered as its GET is: the 404 to a script, the page
      // saying where to add a tier to a browser (no one to list, so no page is past the last).
      for (const [path, accept, status] of [
        ['/admin/tiers', 'application/json', 404],
        ['/admin/tiers', 'text/html', 200],
        ['/admin/tiers?page=2', 'text/html', 200],
        ['/admin/tiers?page=2', 'application/json', 404],
      ] as const) {
        const got = await chief.get(path).set('Accept', accept);
        const head = await chief.head(path).set('Accept', accept);
        expect([got.status, head.status], `${path} (${accept})`).toEqual([status, status]);
        expect(head.headers['content-type'], `${path} (${accept})`).toBe(got.headers['content-type']);
      }
    } finally {
      await empty.drop();
    }
  });
});
