import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { elementById, visibleTextOf } from '../support/html.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A day that does not exist, typed in My usage's address (30 February), came back as an empty From
 * field, since a browser's date field cannot hold it, beside "From: is not a real calendar date":
 * the page said a date was wrong but showed none. The reason now names the date it refused.
 */
let db: TestDatabase;
let alice: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  const app = buildTestApp(db, { now: () => new Date('2025-09-20T05:00:00Z') });
  alice = await signInAs(app, 'alice', 'alice-password');
});
afterAll(() => db?.drop());

describe('a day that does not exist', () => {
  it('is named in the reason My usage gives', async () => {
    const page = await alice.get('/me?start=2025-02-30&end=2025-03-05').set('Accept', 'text/html').expect(400);
    expect(visibleTextOf(elementById(page.text, 'window-error') ?? '')).toBe(
      'Ended from: is not a real calendar date (2025-02-30)',
    );
  });

  it('is named to a JSON client and by the CSV export too', async () => {
    const json = await alice.get('/me?end=2025-04-31').set('Accept', 'application/json').expect(400);
    expect(json.body.error).toBe('end: is not a real calendar date (2025-04-31)');
    const csv = await alice.get('/me.csv?start=2025-13-01').set('Accept', 'text/html').expect(400);
    expect(visibleTextOf(csv.text)).toContain('Ended from: is not a real calendar date (2025-13-01)');
  });
});
