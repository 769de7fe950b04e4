import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSacctFileSource } from '../../src/modules/ingestion/sacct-file.source.js';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { ingestWindowFinished } from '../support/ingest-window.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A requeued job bills its last run; the run Slurm superseded (its record REQUEUED, its End the requeue
// time) is never billed (docs/ingestion.md, Requeued jobs). Ingestion no longer stores such a record, but
// a database that read one before it stopped doing so keeps the row: /me listed it as "not yet" billed at
// an estimate and counted it in Per day's totals and the CSV, while Create receipt (finished jobs only)
// left it out and said it "already bills your jobs that had ended by then": the page promised a bill
// the receipt never made.
const CAPTURE = path.resolve(import.meta.dirname, '../fixtures/slurm/22.05/requeue-after-completion/sacct-jobs.psv');
const WINDOW = 'start=2026-12-06&end=2026-12-06';

let db: TestDatabase;
let alice: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  alice = await signInAs(
    buildTestApp(db, { env: { APP_TZ: 'UTC' }, now: () => new Date('2026-12-07T03:00:00Z') }),
    'alice',
    'alice-password',
  );
});
afterAll(() => db?.drop());

interface UsageJson {
  jobs: { jobId: string; state: string; cost: string; receipt: { id: number } | null }[];
  totals: { jobs: number; cost: string };
}

describe('a requeued run stored as REQUEUED by an earlier version', () => {
  it('is neither offered as unbilled on /me, its Per day totals and CSV, nor billed by a receipt', async () => {
    // Today's ingestion stores the last run of job 21 and passes its REQUEUED record over.
    await ingestWindowFinished(db, createSacctFileSource({ path: CAPTURE, timeZone: 'UTC', defaultCluster: 'lab' }), {
      start: new Date('2026-12-06T07:00:00Z'),
      end: new Date('2026-12-06T08:00:00Z'),
    });
    expect((await db.pool.query('SELECT job_key, state FROM slurm_jobs ORDER BY id')).rows).toEqual([
      { job_key: '21', state: 'COMPLETED' },
    ]);
    // The row an earlier version stored for the superseded run of another requeued job: REQUEUED, not
    // finished, with an end time (the requeue), 26 minutes on 2 CPUs.
    await buildJobs(db, [
      {
        user: 'alice',
        cluster: 'lab',
        jobId: '22',
        state: 'REQUEUED',
        isTerminal: false,
        end: '2026-12-06T07:54:08Z',
        elapsedSec: 1579,
      },
    ]);

    const detail = (await alice.get(`/me?${WINDOW}`).set('Accept', 'application/json').expect(200)).body as UsageJson;
    expect(detail.jobs.map((job) => [job.jobId, job.state, job.receipt])).toEqual([['21', 'COMPLETED', null]]);
    const perDay = (await alice.get(`/me?${WINDOW}&view=aggregate`).set('Accept', 'application/json').expect(200))
      .body as UsageJson;
    expect(perDay.totals).toMatchObject({ jobs: 1 });
    const csv = (await alice.get(`/me.csv?${WINDOW}`).expect(200)).text.trim().split('\n');
    expect(csv.slice(1).map((line) => line.split(',')[0])).toEqual(['21']);
    const page = (await alice.get(`/me?${WINDOW}`).set('Accept', 'text/html').expect(200)).text;
    expect(page).not.toContain('REQUEUED');

    // The receipt bills what the page offered: the last run, at the cost the page gave it.
    const created = await alice
      .post('/me/receipt')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(alice, '/me'))
      .send({ before: '2026-12-06' });
    expect(created.status, created.text).toBe(201);
    expect(created.body.receipt).toMatchObject({ jobCount: 1, total: perDay.totals.cost });
  });

  it('is still listed, billed, when a live receipt bills it (a finished run the record overwrote)', async () => {
    // An earlier version billed the run when it finished, then let the REQUEUED record overwrite its row.
    await buildJobs(db, [{ user: 'alice', cluster: 'lab', jobId: '23', end: '2026-12-05T10:00:00Z' }]);
    const created = await alice
      .post('/me/receipt')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(alice, '/me'))
      .send({ before: '2026-12-05' });
    expect(created.status, created.text).toBe(201);
    await db.pool.query(`UPDATE slurm_jobs SET state = 'REQUEUED', is_terminal = false WHERE job_key = '23'`);

    const day = 'start=2026-12-05&end=2026-12-05';
    const detail = (await alice.get(`/me?${day}`).set('Accept', 'application/json').expect(200)).body as UsageJson;
    expect(detail.jobs.map((job) => [job.jobId, job.state, job.receipt?.id])).toEqual([
      ['23', 'REQUEUED', created.body.receipt.id],
    ]);
    const csv = (await alice.get(`/me.csv?${day}`).expect(200)).text.trim().split('\n');
    expect(csv.slice(1).map((line) => line.split(',')[0])).toEqual(['23']);
  });
});
