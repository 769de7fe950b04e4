import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../../src/modules/metrics/metrics.js';
import { buildUser } from '../../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../../support/sign-in.js';
import { buildTestApp } from '../../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

/**
 * /admin/ingestion for a script: it answered a JSON client with the HTML page, while its Run now
 * and the other admin pages answer JSON. Now it gets the page's figures: the runs, how fresh the
 * data is, and whether a run is going.
 */

const CAPTURE = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05/final/sacct-steps-extra.psv');
// The capture's jobs ended 2026-11-23 15:41-15:46 UTC; the clock sits just after.
const NOW = new Date('2026-11-23T16:00:00Z');

let db: TestDatabase;
let admin: Agent;
let app: ReturnType<typeof buildTestApp>;

beforeAll(async () => {
  db = await createTestDatabase();
  app = buildTestApp(db, {
    env: { FALLBACK_CSV: CAPTURE, INGEST_LOOKBACK_DAYS: '1', APP_TZ: 'UTC' },
    now: () => NOW,
    metrics: createMetrics(),
  });
  const user = await buildUser(db.prisma, { username: 'ops', role: 'admin' });
  admin = await signInAs(app, user.username, user.password);
});
afterAll(() => db?.drop());

const getJson = (agent: Agent) => agent.get('/admin/ingestion').set('Accept', 'application/json');

describe('GET /admin/ingestion for a JSON client', () => {
  it('answers before the first run, then with the run Run now made, as its answer names it', async () => {
    const empty = await getJson(admin).expect(200);
    expect(empty.headers['content-type']).toMatch(/^application\/json/);
    expect(empty.body).toEqual({
      timeZone: 'UTC',
      // SLURM_CLUSTER unset: the figures are the runs' of an instance without it (every run's with one instance).
      cluster: '',
      isRunning: false,
      dataThrough: null,
      freshnessSec: null,
      storedJobs: { count: 0, isEstimate: false },
      runs: [],
    });

    const ran = await admin
      .post('/admin/ingestion/run')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .expect(200);
    const after = await getJson(admin).expect(200);
    expect(after.body).toMatchObject({
      isRunning: false,
      dataThrough: '2026-11-23T16:00:00.000Z',
      freshnessSec: 0,
      storedJobs: null,
    });
    expect(after.body.runs).toHaveLength(1);
    expect(after.body.runs[0]).toMatchObject({
      runId: ran.body.run.runId,
      trigger: 'manual',
      cluster: '',
      source: 'file',
      window: { end: '2026-11-23T16:00:00.000Z' },
      seen: 12,
      inserted: 12,
      updated: 0,
      skipped: 0,
      outcome: 'success',
      error: null,
      startedAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
      sourceNotes: expect.objectContaining({ file: expect.any(String) }),
    });
  });

  it('still gives a browser the page, and refuses a researcher asking for JSON', async () => {
    const both = await admin.get('/admin/ingestion').set('Accept', 'text/html,application/json').expect(200);
    expect(both.headers['content-type']).toMatch(/^text\/html/);
    const user = await buildUser(db.prisma, { username: 'zoe' });
    const researcher = await signInAs(app, user.username, user.password);
    expect((await getJson(researcher).expect(403)).body).toEqual({ error: expect.any(String), code: 403 });
  });
});
