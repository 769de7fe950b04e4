import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { cellsLabelled } from '../support/html.js';
import { billJobs } from '../support/receipt-steps.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A centre that bills two Slurm clusters through one instance: each numbers its jobs on its own, so
// alice's job 1234 on `hpc` and her job 1234 on `gpu` are two jobs. My usage listed both as "1234"
// with nothing to tell them apart (the CSV and the receipt said the cluster; the page did not).
let db: TestDatabase;
let alice: Agent;
const now = () => new Date('2025-09-20T05:00:00Z');
const window = 'start=2025-09-01&end=2025-09-20';

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  const app = buildTestApp(db, { now });
  await buildJobs(db, [
    { user: 'alice', jobId: '1234', cluster: 'hpc', end: '2025-09-02T03:00:00Z' },
    { user: 'alice', jobId: '1234', cluster: 'gpu', end: '2025-09-03T03:00:00Z' },
    { user: 'alice', jobId: '1235', cluster: 'gpu', end: '2025-09-10T03:00:00Z' },
  ]);
  alice = await signInAs(app, 'alice', 'alice-password');
});
afterAll(() => db?.drop());

const html = (path: string) => alice.get(path).set('Accept', 'text/html');

describe('My usage with two clusters', () => {
  it('names the cluster of every job on the Jobs view', async () => {
    const page = (await html(`/me?${window}&view=detail`).expect(200)).text;
    const jobs = cellsLabelled(page, 'Job');
    const clusters = cellsLabelled(page, 'Cluster');
    expect(jobs.map((job, index) => `${clusters[index]}:${job}`)).toEqual(['gpu:1235', 'gpu:1234', 'hpc:1234']);
  });

  it('names the cluster of every billed job, on the page and in its JSON', async () => {
    await billJobs(alice, '2025-09-05');
    const page = (await html(`/me?${window}&view=billed`).expect(200)).text;
    const jobs = [...page.matchAll(/<th scope="row" data-label="Job">([^<]*)</g)].map((match) => match[1]);
    const clusters = cellsLabelled(page, 'Cluster');
    expect(jobs.map((job, index) => `${clusters[index]}:${job}`)).toEqual(['gpu:1234', 'hpc:1234']);
    const answer = await alice.get(`/me?${window}&view=billed`).set('Accept', 'application/json').expect(200);
    expect(answer.body.jobs.map((job: { cluster: string; jobId: string }) => `${job.cluster}:${job.jobId}`)).toEqual([
      'gpu:1234',
      'hpc:1234',
    ]);
  });
});
