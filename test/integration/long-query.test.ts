import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The query parser read the first 1,000 fields of a query and dropped the rest unread: after 1,000
 * others, `type=gov` on /formula answered the default tier's rates, and `start=2026-13-01` on /me was
 * not refused but ignored, the page shown for the default window, as if neither had been sent.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  app = buildTestApp(db);
});
afterAll(() => db?.drop());

const PADDING = 'x=1&'.repeat(1000);

describe('a field after 1,000 others in the query', () => {
  it('/formula answers the tier it names', async () => {
    const response = await request(app).get(`/formula?${PADDING}type=gov`).expect(200);
    expect(response.body.type).toBe('gov');
  });

  it('/me refuses a bad date it names, as without the padding', async () => {
    const alice = await signInAs(app, 'alice', 'alice-password');
    const response = await alice.get(`/me?${PADDING}start=2026-13-01`).set('Accept', 'application/json');
    expect(response.status).toBe(400);
    expect(response.body.error).toMatch(/^start: /);
  });
});
