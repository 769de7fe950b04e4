import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { statementsDuring } from '../support/count-queries.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * My usage lists the jobs that ended in a window, so a job still running (no end yet) was on no page
 * at all: a researcher with jobs running looked for them in vain, and could not tell whether they had
 * been lost or would be billed. The Jobs view now says how many have not ended.
 */
let db: TestDatabase;
let gus: Agent;
let hal: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'gus', password: 'gus-password' });
  await buildUser(db.prisma, { username: 'hal', password: 'hal-password' });
  await buildJobs(db, [
    { user: 'gus', end: '2025-09-18T05:00:00Z', totalCpuSec: '3600' },
    { user: 'gus', end: null, state: 'RUNNING', isTerminal: false },
    { user: 'gus', end: null, state: 'PENDING', isTerminal: false },
    { user: 'hal', end: '2025-09-18T05:00:00Z', totalCpuSec: '3600' },
  ]);
  const app = buildTestApp(db, { now: () => new Date('2025-09-20T05:00:00Z') });
  gus = await signInAs(app, 'gus', 'gus-password');
  hal = await signInAs(app, 'hal', 'hal-password');
});
afterAll(() => db?.drop());

const jobsPage = async (agent: Agent) =>
  visibleTextOf((await agent.get('/me').set('Accept', 'text/html').expect(200)).text);

describe('jobs that have not ended, on My usage', () => {
  it('says how many there are and when they are listed and billed', async () => {
    expect(await jobsPage(gus)).toContain(
      '2 of your jobs have not ended yet (running or waiting in the queue): each is listed here, and can be billed, once it ends.',
    );
  });

  it('says nothing of them to a researcher who has none', async () => {
    expect(await jobsPage(hal)).not.toContain('have not ended yet');
  });

  it("are counted by the page's own statement, so /me sends no statement more for them", async () => {
    // /me is the page signed-in people load most (issue 8's `browse`): the count rides along with the page
    // of jobs, as the window's count does, rather than costing both processes a round trip of its own.
    const sent = await statementsDuring(db.pool, () => gus.get('/me').set('Accept', 'text/html').expect(200));
    const countsAlone = sent.filter(
      (statement) =>
        statement.text.trimStart().startsWith('SELECT count(*) AS count FROM slurm_jobs j') &&
        statement.text.includes('end_at IS NULL'),
    );
    expect(countsAlone).toEqual([]);
    expect(sent.some((statement) => statement.text.includes('"notEndedCount"'))).toBe(true);
  });

  it('says how many also on a window with no job in it, where no row carries the count', async () => {
    const text = visibleTextOf(
      (await gus.get('/me?start=2025-09-01&end=2025-09-10').set('Accept', 'text/html').expect(200)).text,
    );
    expect(text).toContain('2 of your jobs have not ended yet');
  });
});
