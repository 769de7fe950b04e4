import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * My usage's Jobs view of a window with one job said "1 job ended in this window. Their total cost
 * is on Per day.": "their" of a single job. It reads "Its total cost" for one job now.
 */
let db: TestDatabase;
let carol: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'carol', password: 'carol-password' });
  await buildJobs(db, [
    { user: 'carol', end: '2025-09-02T05:00:00Z', totalCpuSec: '3600' },
    { user: 'carol', end: '2025-09-10T05:00:00Z', totalCpuSec: '3600' },
    { user: 'carol', end: '2025-09-11T05:00:00Z', totalCpuSec: '3600' },
  ]);
  const app = buildTestApp(db, { now: () => new Date('2025-09-20T05:00:00Z') });
  carol = await signInAs(app, 'carol', 'carol-password');
});
afterAll(() => db?.drop());

const jobsOf = async (window: string) =>
  visibleTextOf((await carol.get(`/me?${window}`).set('Accept', 'text/html').expect(200)).text);

describe('the count of jobs on My usage', () => {
  it('says "its" total cost of one job', async () => {
    const text = await jobsOf('start=2025-09-01&end=2025-09-07');
    expect(text).toContain('1 job ended in this window. Its total cost is on Per day.');
    expect(text).not.toContain('Their total cost');
  });

  it('says "their" total cost of several', async () => {
    expect(await jobsOf('start=2025-09-08&end=2025-09-14')).toContain(
      '2 jobs ended in this window. Their total cost is on Per day.',
    );
  });
});
