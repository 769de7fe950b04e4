/**
 * Run now asked of a server that is stopping: draining before a shutdown (SHUTDOWN_DRAIN_DELAY_MS, /readyz
 * 503) or past it, its background work told to stop. A month-end run is refused then (503, "The app is
 * stopping; ..."); Run now was accepted, and its run was either cut by the shutdown moments later,
 * recorded failed with an audit entry, or stopped before it read anything. It is now refused as a
 * month-end run is, with nothing recorded or audited, and runs once the server is not stopping.
 */
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type BackgroundWork, createBackgroundWork } from '../../../src/shared/background-work.js';
import { buildUser } from '../../support/factories.js';
import { csrfTokenIn, csrfTokenOf, signInAs } from '../../support/sign-in.js';
import { buildTestApp } from '../../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

const CAPTURE = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05/final/sacct-steps-extra.psv');
// The capture's jobs ended 2026-11-23 15:41-15:46 UTC; the clock sits just after.
const NOW = new Date('2026-11-23T16:00:00Z');
const REFUSED = 'The app is stopping; start the ingestion run again in a moment.';

let db: TestDatabase;
let backgroundWork: BackgroundWork;
let isDraining: boolean;
let runNowAuditsBefore: number;

const runNowAudits = () => db.prisma.auditLog.count({ where: { action: 'ingestion.run_now' } });

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());
beforeEach(async () => {
  await db.pool.query('TRUNCATE slurm_jobs, ingestion_runs CASCADE');
  backgroundWork = createBackgroundWork();
  isDraining = false;
  // The audit log is append-only: the entries before the test are counted, not removed.
  runNowAuditsBefore = await runNowAudits();
});
afterEach(() => backgroundWork.stop(5000));

async function signedInAdmin() {
  const user = await buildUser(db.prisma, { role: 'admin' });
  const app = buildTestApp(db, {
    env: { FALLBACK_CSV: CAPTURE, INGEST_LOOKBACK_DAYS: '1', APP_TZ: 'UTC' },
    now: () => NOW,
    backgroundWork,
    isDraining: () => isDraining,
  });
  return signInAs(app, user.username, user.password);
}

async function expectNothingRecorded() {
  expect(await db.prisma.ingestionRun.count()).toBe(0);
  expect(await db.prisma.slurmJob.count()).toBe(0);
  expect(await runNowAudits()).toBe(runNowAuditsBefore);
}

describe('Run now while the server is stopping', () => {
  it('is refused with 503 while draining, JSON and browser alike, with nothing recorded; once not draining it runs', async () => {
    const agent = await signedInAdmin();
    isDraining = true;

    const refused = await agent
      .post('/admin/ingestion/run')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({});
    expect(refused.status, refused.text.slice(0, 300)).toBe(503);
    expect(refused.body).toMatchObject({ error: REFUSED, code: 503 });
    expect(refused.headers['retry-after']).toBeDefined();

    const page = await agent.get('/admin/ingestion').set('Accept', 'text/html').expect(200);
    const form = await agent
      .post('/admin/ingestion/run')
      .type('form')
      .set('Accept', 'text/html')
      .send({ csrf_token: csrfTokenIn(page.text) });
    expect(form.status, form.text.slice(0, 300)).toBe(503);
    expect(form.text).toContain(REFUSED);
    await expectNothingRecorded();

    isDraining = false;
    const ran = await agent
      .post('/admin/ingestion/run')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({});
    expect(ran.status, ran.text.slice(0, 300)).toBe(200);
    expect(ran.body.run).toMatchObject({ outcome: 'success', source: 'file', inserted: 12 });
  });

  it('is refused the same way once the shutdown stops the background work, with nothing recorded', async () => {
    const agent = await signedInAdmin();
    const token = await csrfTokenOf(agent);
    // server.ts's shutdown after the drain: the background work is told to stop (nothing is under way).
    expect(await backgroundWork.stop(1000)).toEqual([]);

    const refused = await agent
      .post('/admin/ingestion/run')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({});
    expect(refused.status, refused.text.slice(0, 300)).toBe(503);
    expect(refused.body).toMatchObject({ error: REFUSED, code: 503 });
    await expectNothingRecorded();
  });
});
