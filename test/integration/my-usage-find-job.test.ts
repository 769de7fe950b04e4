import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A researcher with thousands of jobs had no way to find one by its Slurm id on My usage: the page
 * lists the jobs that ended in a window, so a job id from an e-mail or a log meant guessing the day it
 * ended and paging through it. `?job=` finds it, whatever day it ended, and an array job's id finds
 * its tasks.
 */
let db: TestDatabase;
let dana: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'dana', password: 'dana-password' });
  await buildUser(db.prisma, { username: 'ezra', password: 'ezra-password' });
  await buildJobs(db, [
    { user: 'dana', jobId: '4242', end: '2025-06-03T05:00:00Z', totalCpuSec: '3600' },
    { user: 'dana', jobId: '42420', end: '2025-06-03T06:00:00Z', totalCpuSec: '3600' },
    { user: 'dana', jobId: '777_0', end: '2025-07-01T05:00:00Z', totalCpuSec: '3600' },
    { user: 'dana', jobId: '777_1', end: '2025-07-02T05:00:00Z', totalCpuSec: '3600' },
    { user: 'dana', jobId: '900', end: '2025-09-19T05:00:00Z', totalCpuSec: '3600' },
    { user: 'ezra', jobId: '5151', end: '2025-06-03T05:00:00Z', totalCpuSec: '3600' },
  ]);
  // As ingestion stores an array's tasks: the page's Job is the key (777_0), job_id Slurm's JobIDRaw.
  await db.pool.query(`UPDATE slurm_jobs SET job_key = job_id, job_id = '78' || split_part(job_id, '_', 2),
    array_job_id = '777', array_task_id = split_part(job_id, '_', 2) WHERE job_id LIKE '777\\_%'`);
  const app = buildTestApp(db, { now: () => new Date('2025-09-20T05:00:00Z') });
  dana = await signInAs(app, 'dana', 'dana-password');
});
afterAll(() => db?.drop());

const page = (query: string, status = 200) =>
  dana
    .get(`/me?${query}`)
    .set('Accept', 'text/html')
    .expect(status)
    .then((res) => ({ html: res.text, text: visibleTextOf(res.text) }));

describe('finding a job by its id on My usage', () => {
  it('offers a Job id field beside the window', async () => {
    const { html } = await page('');
    expect(html).toMatch(/<label for="job">Job id<\/label><input id="job" name="job"/);
  });

  it('finds a job that ended long before the default window, and only that job', async () => {
    const { text } = await page('job=4242');
    expect(text).toContain('2025-06-03 to 2025-06-03');
    expect(text).toContain('1 job with id 4242 ended in this window.');
    expect(text).toMatch(/\b4242\b/);
    expect(text).not.toContain('42420');
  });

  it("finds every task of an array job by the array's id", async () => {
    const { text } = await page('job=777');
    expect(text).toContain('2025-07-01 to 2025-07-02');
    expect(text).toContain('2 jobs with id 777 ended in this window.');
    expect(text).toContain('777_0');
    expect(text).toContain('777_1');
  });

  it("finds an array's task by the id shown and by Slurm's raw id (JobIDRaw)", async () => {
    expect((await page('job=777_1')).text).toContain('1 job with id 777_1 ended in this window.');
    const { text } = await page('job=781');
    expect(text).toContain('1 job with id 781 ended in this window.');
    expect(text).toContain('777_1');
  });

  it('keeps the job in the sort links and looks only inside a window given with it', async () => {
    const { html, text } = await page('job=4242&start=2025-09-01&end=2025-09-20', 200);
    expect(text).toContain('No job with id 4242 ended in this window.');
    expect(html).toContain('job=4242');
  });

  it("says so, naming the id, for an id none of the researcher's jobs has (another user's included)", async () => {
    const { text } = await page('job=5151', 404);
    expect(text).toContain('You have no finished job with id 5151');
  });
});
