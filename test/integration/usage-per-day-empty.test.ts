import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * My usage's Per day view of a window without jobs showed flat charts and a column of zero days
 * under them, and said nothing: a researcher could not tell "no jobs" from "the page failed to
 * load them". Jobs and Billed say so in a sentence; Per day now does too, and only when it is true.
 */
let db: TestDatabase;
let alice: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildJobs(db, [{ user: 'alice', end: '2025-09-02T05:00:00Z', totalCpuSec: '3600' }]);
  const app = buildTestApp(db, { now: () => new Date('2025-09-20T05:00:00Z') });
  alice = await signInAs(app, 'alice', 'alice-password');
});
afterAll(() => db?.drop());

const perDay = async (window: string) =>
  visibleTextOf((await alice.get(`/me?${window}&view=aggregate`).set('Accept', 'text/html').expect(200)).text);

describe('Per day of a window without jobs', () => {
  it('says that no jobs ended in it', async () => {
    expect(await perDay('start=2025-08-01&end=2025-08-07')).toContain('No jobs ended in this window.');
  });

  it('is not said of a window with jobs', async () => {
    const text = await perDay('start=2025-09-01&end=2025-09-07');
    expect(text).not.toContain('No jobs ended in this window.');
    expect(text).toContain('2025-09-02 1 1.000000');
  });
});
