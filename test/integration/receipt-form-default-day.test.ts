import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The receipt form under My usage offers to bill up to the window's last day when that ended before
 * today (it offered today: more than the researcher had been reading), and up to today otherwise; the
 * same under a page past the last and under a refused query. A refused window (reversed, or a start
 * that is not a date) offers its typed end when that is a date before today, never more than the
 * researcher typed (it offered today: reading November, Create receipt billed December too); a To
 * that is not a date, or one after today, offers today.
 */
let db: TestDatabase;
let alice: Agent;

// 2025-09-20 12:00 in Bangkok: today is 2025-09-20.
const NOW = new Date('2025-09-20T05:00:00Z');

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildJobs(db, [{ user: 'alice', end: '2025-09-03T05:00:00Z' }]);
  const app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now: () => NOW });
  alice = await signInAs(app, 'alice', 'alice-password');
});
afterAll(() => db?.drop());

/** The day the receipt form's date field is filled in with. */
const offeredDayOf = (html: string) => /id="before"[^>]* value="([^"]*)"/.exec(html)?.[1];

describe("the receipt form's day under My usage", () => {
  it.each([
    ['the last 7 days', '/me', 200, '2025-09-20'],
    ['a window that ended before today', '/me?start=2025-09-01&end=2025-09-10', 200, '2025-09-10'],
    ['a window up to today', '/me?start=2025-09-01&end=2025-09-20', 200, '2025-09-20'],
    ['a page past the last of a past window', '/me?start=2025-09-01&end=2025-09-10&page=5', 404, '2025-09-10'],
    ['a refused sort under a past window', '/me?start=2025-09-01&end=2025-09-10&sort=nope', 400, '2025-09-10'],
    ['a reversed window ended before today', '/me?start=2025-09-10&end=2025-09-01', 400, '2025-09-01'],
    ['a From that is not a date, To before today', '/me?start=nope&end=2025-09-10', 400, '2025-09-10'],
    ['a From that is not a day, To before today', '/me?start=2025-02-30&end=2025-09-10', 400, '2025-09-10'],
    ['a To that is not a date', '/me?start=2025-09-01&end=nope', 400, '2025-09-20'],
    ['a To that is not a day', '/me?start=2025-09-01&end=2025-09-31', 400, '2025-09-20'],
    ['a reversed window whose To is after today', '/me?start=2025-10-10&end=2025-10-01', 400, '2025-09-20'],
    ['a window whose To is after today', '/me?start=2025-09-01&end=2025-09-30', 200, '2025-09-20'],
  ])('under %s (%s) is what it bills up to', async (_, path, status, day) => {
    const page = await alice.get(path).set('Accept', 'text/html').expect(status);
    expect(offeredDayOf(page.text)).toBe(day);
  });
});
