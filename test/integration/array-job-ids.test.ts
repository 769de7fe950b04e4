import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIngestionService } from '../../src/modules/ingestion/ingestion.service.js';
import { createSacctFileSource } from '../../src/modules/ingestion/sacct-file.source.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { createLogger } from '../../src/shared/logger.js';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// What the lab's sacct printed for bob's `sbatch --array=1-3` (job 6): the tasks 6_1, 6_2, 6_3 got
// the JobIDRaw 10, 11 and 6 (the last task keeps the array's id), beside his jobs 3, 5, 7 and 13.
const CAPTURE = path.resolve(import.meta.dirname, '../fixtures/slurm/22.05/final/sacct-steps-extra.psv');
const now = () => new Date('2026-11-24T00:00:00Z');

let db: TestDatabase;
let bob: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'bob', password: 'bob-password' });
  const ingested = await createIngestionService({
    db,
    sources: [createSacctFileSource({ path: CAPTURE, timeZone: 'UTC', defaultCluster: 'lab' })],
    unconfigured: {},
    logger: createLogger('silent'),
    metrics: createMetrics(),
    overlapSec: 900,
    initialLookbackSec: 86_400,
  }).runOnce({
    trigger: 'manual',
    window: { start: new Date('2026-11-23T15:00:00Z'), end: new Date('2026-11-23T16:00:00Z') },
  });
  expect(ingested).toMatchObject({ status: 'finished', run: { outcome: 'success' } });
  bob = await signInAs(buildTestApp(db, { env: { APP_TZ: 'UTC' }, now }), 'bob', 'bob-password');
});
afterAll(() => db?.drop());

const WINDOW = 'start=2026-11-23&end=2026-11-23';

describe("an array job's tasks, as the researcher sees them", () => {
  it('/me names each task as Slurm does (6_1, 6_2, 6_3), not by its internal JobIDRaw (10, 11, 6)', async () => {
    const answer = await bob.get(`/me?${WINDOW}&sort=job&dir=asc`).set('Accept', 'application/json').expect(200);
    expect(answer.body.jobs.map((job: { jobId: string }) => job.jobId)).toEqual([
      '3',
      '5',
      '6_1',
      '6_2',
      '6_3',
      '7',
      '13',
    ]);
    const page = await bob.get(`/me?${WINDOW}&sort=job&dir=asc`).set('Accept', 'text/html').expect(200);
    const cells = [...page.text.matchAll(/data-label="Job">([^<]*)</g)].map((match) => match[1]);
    expect(cells).toEqual(['3', '5', '6_1', '6_2', '6_3', '7', '13']);
  });

  it('/me.csv and the receipt name them the same way', async () => {
    const csv = await bob.get(`/me.csv?${WINDOW}`).expect(200);
    const ids = csv.text
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.split(',')[0]);
    expect(ids.sort()).toEqual(['13', '3', '5', '6_1', '6_2', '6_3', '7']);

    const created = await bob
      .post('/me/receipt')
      .set('Accept', 'text/html')
      .type('form')
      .send({ before: '2026-11-23', csrf_token: await csrfTokenOf(bob, '/me') })
      .expect(303);
    const receipt = await bob
      .get(created.headers.location as string)
      .set('Accept', 'application/json')
      .expect(200);
    const items: { jobId: string }[] = receipt.body.items ?? receipt.body.receipt?.items;
    expect(items.map((item) => item.jobId).sort()).toEqual(['13', '3', '5', '6_1', '6_2', '6_3', '7']);
  });
});
