import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * My usage's Download CSV linked the window alone: a researcher who sorted the jobs by cost, or
 * found one job by its id (`?job=`), downloaded every job of the window in the order they ended.
 * The link carries the Jobs view's sort, direction and Job id, /me.csv follows them, and refuses a
 * sort or Job id the page refuses, in the page's words.
 */
let db: TestDatabase;
let dana: Agent;

const WINDOW = 'start=2025-09-01&end=2025-09-20';

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'dana', password: 'dana-password' });
  await buildJobs(db, [
    { user: 'dana', jobId: '4242', end: '2025-09-02T05:00:00Z', totalCpuSec: '7200' },
    { user: 'dana', jobId: '4243', end: '2025-09-03T05:00:00Z', totalCpuSec: '36000' },
    { user: 'dana', jobId: '777_0', end: '2025-09-04T05:00:00Z', totalCpuSec: '3600' },
    { user: 'dana', jobId: '777_1', end: '2025-09-05T05:00:00Z', totalCpuSec: '18000' },
    { user: 'dana', jobId: '5151', end: '2025-06-03T05:00:00Z', totalCpuSec: '3600' },
  ]);
  // As ingestion stores an array's tasks: the page's Job is the key (777_0), job_id Slurm's JobIDRaw.
  await db.pool.query(`UPDATE slurm_jobs SET job_key = job_id, job_id = '78' || split_part(job_id, '_', 2),
    array_job_id = '777', array_task_id = split_part(job_id, '_', 2) WHERE job_id LIKE '777\\_%'`);
  const app = buildTestApp(db, { now: () => new Date('2025-09-20T05:00:00Z') });
  dana = await signInAs(app, 'dana', 'dana-password');
});
afterAll(() => db?.drop());

/** The href of the page's Download CSV link, as a browser reads it. */
async function csvLinkOf(query: string): Promise<string> {
  const page = await dana.get(`/me?${query}`).set('Accept', 'text/html').expect(200);
  const href = /<a class="tab" href="([^"]*)">Download CSV<\/a>/.exec(page.text)?.[1];
  expect(href, query).toBeDefined();
  return (href ?? '').replaceAll('&amp;', '&');
}

/** The job ids of a CSV's rows, in its order. */
async function jobIdsOf(address: string): Promise<string[]> {
  const csv = await dana.get(address).expect(200);
  expect(csv.headers['content-type']).toMatch(/^text\/csv/);
  return csv.text
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.split(',')[0] ?? '');
}

describe("My usage's CSV follows the Jobs view's sort and Job id", () => {
  it('carries the sort and direction, and the CSV lists the jobs in that order', async () => {
    const link = await csvLinkOf(`${WINDOW}&sort=cpu&dir=desc`);
    expect(link).toBe('/me.csv?start=2025-09-01&end=2025-09-20&sort=cpu&dir=desc');
    expect(await jobIdsOf(link)).toEqual(['4243', '777_1', '4242', '777_0']);

    const ascending = await csvLinkOf(`${WINDOW}&sort=job&dir=asc`);
    expect(await jobIdsOf(ascending)).toEqual(['777_0', '777_1', '4242', '4243']);
    // The cost, which the CSV computes beside the hours, and a direction alone (Ended, as on the page).
    expect(await jobIdsOf(await csvLinkOf(`${WINDOW}&sort=cost&dir=asc`))).toEqual(['777_0', '4242', '777_1', '4243']);
    expect(await jobIdsOf(await csvLinkOf(`${WINDOW}&dir=desc`))).toEqual(['777_1', '777_0', '4243', '4242']);
  });

  it('carries the Job id, and the CSV holds only those jobs', async () => {
    const link = await csvLinkOf(`${WINDOW}&job=777`);
    expect(link).toBe('/me.csv?start=2025-09-01&end=2025-09-20&job=777');
    expect(await jobIdsOf(link)).toEqual(['777_0', '777_1']);
  });

  it("a Job id found without dates: the link has the job's days and the id", async () => {
    const link = await csvLinkOf('job=4242');
    expect(link).toBe('/me.csv?start=2025-09-02&end=2025-09-02&job=4242');
    expect(await jobIdsOf(link)).toEqual(['4242']);
    // Typed by hand without dates, the CSV finds the job's days as the page does.
    const typed = await dana.get('/me.csv?job=5151').expect(200);
    expect(typed.headers['content-disposition']).toContain('usage-dana-2025-06-03-2025-06-03.csv');
    expect(await jobIdsOf('/me.csv?job=5151')).toEqual(['5151']);
  });

  it('without a sort, the CSV keeps the order the jobs ended, and the link the window alone', async () => {
    const link = await csvLinkOf(WINDOW);
    expect(link).toBe('/me.csv?start=2025-09-01&end=2025-09-20');
    expect(await jobIdsOf(link)).toEqual(['4242', '4243', '777_0', '777_1']);
  });

  it('the other views link the window alone (they neither sort nor filter by Job id)', async () => {
    expect(await csvLinkOf(`${WINDOW}&view=aggregate&sort=cpu&dir=desc`)).toBe(
      '/me.csv?start=2025-09-01&end=2025-09-20',
    );
  });
});

describe('a sort or Job id /me.csv refuses, as the page does', () => {
  it.each([
    [`${WINDOW}&sort=price`, 400],
    [`${WINDOW}&dir=up`, 400],
    [`${WINDOW}&job=${'9'.repeat(40)}`, 400],
    ['job=99999', 404],
  ])('%s: the page and the CSV give the same status and message', async (query, status) => {
    const page = await dana.get(`/me?${query}`).set('Accept', 'application/json');
    expect(page.status).toBe(status);
    const csv = await dana.get(`/me.csv?${query}`).set('Accept', 'application/json');
    expect(csv.status).toBe(status);
    expect(csv.headers['content-disposition']).toBeUndefined();
    expect(csv.body).toEqual(page.body);
  });

  it('a refused one opened in a browser goes back to My usage at what was typed', async () => {
    const page = await dana.get(`/me.csv?${WINDOW}&sort=price`).set('Accept', 'text/html');
    expect(page.status).toBe(400);
    expect(page.text).toContain(`<a href="/me?${WINDOW.replaceAll('&', '&amp;')}&amp;sort=price">Back to My usage</a>`);
  });
});
