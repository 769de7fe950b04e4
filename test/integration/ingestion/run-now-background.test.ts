/**
 * Run now with a source that hangs: on the lab, slurmrestd hung and Run now answered after 92 s (three
 * attempts of SLURMRESTD_TIMEOUT_MS, then the fallback), past a reverse proxy's 60 s read timeout, so the
 * admin got the proxy's 504 while the run went on. It now answers within a bound (a fraction of a second
 * here) that the run is still going, and the run goes on in the background, recorded and audited as before.
 * The hanging source is a site's sacct wrapper that waits (hung-sacct.ts), with the capture as fallback file.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createIngestionService } from '../../../src/modules/ingestion/ingestion.service.js';
import type { JobSource } from '../../../src/modules/ingestion/job-source.js';
import { createSacctFileSource } from '../../../src/modules/ingestion/sacct-file.source.js';
import { createMetrics, type Metrics } from '../../../src/modules/metrics/metrics.js';
import { type BackgroundWork, createBackgroundWork } from '../../../src/shared/background-work.js';
import { createLogger } from '../../../src/shared/logger.js';
import { buildUser } from '../../support/factories.js';
import {
  isRunning,
  killLeftoverSleep,
  readSleepPid,
  waitFor,
  withHangGuard,
  writeHangingSacctWrapper,
} from '../../support/hung-sacct.js';
import { type Agent, csrfTokenIn, csrfTokenOf, signInAs } from '../../support/sign-in.js';
import { buildTestApp, metricValue } from '../../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

const CAPTURE = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05/final/sacct-steps-extra.psv');
// The capture's jobs ended 2026-11-23 15:41-15:46 UTC; the clock sits just after.
const NOW = new Date('2026-11-23T16:00:00Z');
/** The bound in these tests: the run is still waiting for sacct then. */
const ANSWER_WITHIN_MS = 300;
/** A hang guard: a Run now that waits for its run never answers before the test releases it. */
const REQUEST_GUARD_MS = 5000;
/** What an abandoned run's notes say of its counts. */
const CUT_COUNTS_NOTE =
  'cut short by the shutdown: the counts are those of the batches of jobs it committed, each with its jobs (a batch not committed rolled back with its jobs); its skipped records were not counted. The next run reads the window again';
const STILL_RUNNING = /^Run #(\d+) is still running; its outcome will be in the runs table when it ends\.$/;

let db: TestDatabase;
let dir: string;
let metrics: Metrics;
let backgroundWork: BackgroundWork;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());
beforeEach(async () => {
  await db.pool.query('TRUNCATE slurm_jobs, ingestion_runs CASCADE');
  dir = mkdtempSync(path.join(os.tmpdir(), 'run-now-background-'));
  metrics = createMetrics();
  backgroundWork = createBackgroundWork();
});
afterEach(async () => {
  // A failed test must not leave a run, nor a wrapper's sleep, behind.
  await backgroundWork.stop(5000);
  killLeftoverSleep(path.join(dir, 'sacct.sleep-pid'));
  rmSync(dir, { recursive: true, force: true });
});

/** An sacct that waits until `release()`, then fails as a slurmdbd that does not answer: the file answers the run. */
function sacctWaitingForRelease(): { sacctPath: string; release: () => void } {
  const sacctPath = path.join(dir, 'sacct');
  const released = path.join(dir, 'released');
  writeFileSync(
    sacctPath,
    `#!/bin/bash\nwhile [ ! -e '${released}' ]; do sleep 0.05; done\necho 'sacct: error: Problem talking to the database: Connection refused' >&2\nexit 1\n`,
  );
  chmodSync(sacctPath, 0o755);
  return { sacctPath, release: () => writeFileSync(released, '') };
}

function app(sacctPath: string) {
  return buildTestApp(db, {
    env: {
      SACCT_PATH: sacctPath,
      SACCT_TIMEOUT_MS: '60000',
      FALLBACK_CSV: CAPTURE,
      INGEST_LOOKBACK_DAYS: '1',
      APP_TZ: 'UTC',
    },
    now: () => NOW,
    metrics,
    backgroundWork,
    runNowAnswerWithinMs: ANSWER_WITHIN_MS,
  });
}

async function runNowJson(agent: Agent) {
  return agent
    .post('/admin/ingestion/run')
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(agent))
    .timeout(REQUEST_GUARD_MS)
    .send({});
}

/**
 * The run once it has ended and its audit entry is written, the last thing the run does (a hang guard,
 * not a timing assertion).
 */
async function endedRun(runId: number) {
  const deadline = Date.now() + 15_000;
  const target = `ingestion_run:${runId}`;
  while ((await db.prisma.auditLog.count({ where: { action: 'ingestion.run_now', target } })) === 0) {
    if (Date.now() > deadline) throw new Error(`run #${runId} still running`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return db.prisma.ingestionRun.findUniqueOrThrow({ where: { id: runId } });
}

describe('Run now whose source hangs past the bound', () => {
  it('answers a JSON client 202 with the run, refuses a second Run now with 409, and records and audits the run when it ends', async () => {
    const { sacctPath, release } = sacctWaitingForRelease();
    const user = await buildUser(db.prisma, { role: 'admin' });
    const agent = await signInAs(app(sacctPath), user.username, user.password);

    const response = await runNowJson(agent);
    expect(response.status, response.text.slice(0, 300)).toBe(202);
    expect(response.body).toEqual({
      ok: true,
      status: 'running',
      runId: expect.any(Number),
      statusUrl: '/admin/ingestion',
      message: expect.stringMatching(STILL_RUNNING),
    });
    expect(response.headers.location).toBe('/admin/ingestion');
    const { runId } = response.body;
    expect(response.body.message).toBe(
      `Run #${runId} is still running; its outcome will be in the runs table when it ends.`,
    );
    // Where the answer says to read it: the run, running.
    const listed = await agent.get('/admin/ingestion').set('Accept', 'application/json').expect(200);
    expect(listed.body.isRunning).toBe(true);
    expect(listed.body.runs[0]).toMatchObject({ runId, trigger: 'manual', outcome: 'running', finishedAt: null });

    // A second Run now meanwhile is refused as before: the run in the background holds the lock.
    const second = await runNowJson(agent);
    expect(second.status, second.text.slice(0, 300)).toBe(409);
    expect(second.body).toMatchObject({ error: 'A run is already in progress; it was not started twice.', code: 409 });

    release();
    const run = await endedRun(runId);
    expect(run).toMatchObject({ trigger: 'manual', source: 'file', outcome: 'success', seen: 12, inserted: 12 });
    expect(run.sourceNotes).toMatchObject({ sacct: expect.stringMatching(/^failed: /), file: 'answered' });
    expect(await db.prisma.slurmJob.count()).toBe(12);
    // Its audit entry, written once it ended, by the admin who asked, from where they asked.
    const audits = await db.prisma.auditLog.findMany({
      where: { action: 'ingestion.run_now', actor: user.username },
      orderBy: { id: 'asc' },
    });
    const entry = audits.find((audit) => audit.target === `ingestion_run:${runId}`);
    expect(entry).toMatchObject({ status: 'ok', ip: expect.stringMatching(/127\.0\.0\.1$/) });
    expect(entry?.details).toEqual({
      outcome: 'success',
      source: 'file',
      seen: 12,
      inserted: 12,
      updated: 0,
      skipped: 0,
    });
    // The refused second one, audited as before.
    expect(audits.filter((audit) => audit.status === 'failed')).toHaveLength(1);
    expect(await metricValue(metrics, 'slurm_ingest_runs_total', { source: 'file', outcome: 'success' })).toBe(1);
    expect(await metricValue(metrics, 'slurm_ingest_source_failures_total', { source: 'sacct' })).toBe(1);

    const after = await agent.get('/admin/ingestion').set('Accept', 'application/json').expect(200);
    expect(after.body.isRunning).toBe(false);
    expect(after.body.runs[0]).toMatchObject({ runId, outcome: 'success', source: 'file' });
  });

  it('sends a browser back to the page, which says the run is still running and shows it so until it ends', async () => {
    const { sacctPath, release } = sacctWaitingForRelease();
    const user = await buildUser(db.prisma, { role: 'admin' });
    const agent = await signInAs(app(sacctPath), user.username, user.password);
    const page = await agent.get('/admin/ingestion').set('Accept', 'text/html').expect(200);

    await agent
      .post('/admin/ingestion/run')
      .type('form')
      .timeout(REQUEST_GUARD_MS)
      .send({ csrf_token: csrfTokenIn(page.text) })
      .expect(303)
      .expect('Location', '/admin/ingestion');
    const running = await agent.get('/admin/ingestion').set('Accept', 'text/html').expect(200);
    const runId = (await db.prisma.ingestionRun.findFirstOrThrow({ orderBy: { id: 'desc' } })).id;
    // A status at the top, not the alert beside the button that a failed or refused Run now gets.
    expect(running.text).toContain(
      `Run #${runId} is still running; its outcome will be in the runs table when it ends.`,
    );
    expect(running.text).not.toContain('id="run-now-error"');
    expect(running.text).toContain('<td class="run-outcome">running</td>');
    expect(running.text).toMatch(/<button type="submit" class="button" disabled>A run is in progress<\/button>/);

    release();
    await endedRun(runId);
    const ended = await agent.get('/admin/ingestion').set('Accept', 'text/html').expect(200);
    expect(ended.text).toContain('<td class="run-outcome">success</td>');
    expect(ended.text).not.toContain('<td class="run-outcome">running</td>');
    expect(ended.text).not.toContain('is still running');
  });

  it("is stopped by the server's shutdown as a scheduled run is: sacct killed, recorded failed and stopped by the shutdown, audited", async () => {
    const { path: sacctPath, sleepPidFile } = writeHangingSacctWrapper(path.join(dir, 'sacct'));
    const user = await buildUser(db.prisma, { role: 'admin' });
    const agent = await signInAs(app(sacctPath), user.username, user.password);

    const response = await runNowJson(agent);
    expect(response.status, response.text.slice(0, 300)).toBe(202);
    const { runId } = response.body;
    expect(await waitFor(() => readSleepPid(sleepPidFile) !== undefined, 5000)).toBe(true);
    const sleepPid = readSleepPid(sleepPidFile) as number;

    // server.ts's shutdown stops its background work; the run ends well within the timeout, so none is abandoned.
    expect(await withHangGuard(backgroundWork.stop(10_000), 15_000, 'the shutdown')).toEqual([]);
    const run = await db.prisma.ingestionRun.findUniqueOrThrow({ where: { id: runId } });
    expect(run).toMatchObject({
      outcome: 'failed',
      error: 'sacct: stopped: the process is shutting down',
      stoppedByShutdown: true,
      source: null,
    });
    expect(run.finishedAt).not.toBeNull();
    expect(await waitFor(() => !isRunning(sleepPid), 5000)).toBe(true);
    // No other source tried: the process is going away.
    expect(await db.prisma.slurmJob.count()).toBe(0);
    const entry = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'ingestion.run_now', target: `ingestion_run:${runId}` },
    });
    expect(entry).toMatchObject({ status: 'failed', actor: user.username });
    expect(entry.details).toMatchObject({ outcome: 'failed', error: 'sacct: stopped: the process is shutting down' });
    expect(await metricValue(metrics, 'slurm_ingest_source_failures_total', { source: 'sacct' })).toBe(0);
  });

  // slurmrestd's read is not told of the shutdown (it ends at SLURMRESTD_TIMEOUT_MS): past the shutdown's
  // timeout the run is abandoned, and recorded as a run the shutdown stopped, not left running.
  it("is recorded failed and stopped by the shutdown when the shutdown's timeout runs out before it ends", async () => {
    const hanging: JobSource = {
      name: 'slurmrestd',
      async *read() {
        await new Promise(() => undefined);
      },
    };
    const service = createIngestionService({
      db,
      sources: [hanging],
      unconfigured: {},
      logger: createLogger('silent'),
      metrics,
      overlapSec: 600,
      initialLookbackSec: 86_400,
      timeZone: 'UTC',
      now: () => NOW,
      backgroundWork,
      runNowAnswerWithinMs: 50,
    });
    const context = { actor: 'ops', ip: '192.0.2.7', userAgent: null };
    const answer = await service.runNow(context);
    expect(answer).toEqual({ status: 'running', runId: expect.any(Number) });
    const runId = (answer as { runId: number }).runId;

    const stopped = backgroundWork;
    // The read never ends: afterEach's stop would wait for it again.
    backgroundWork = createBackgroundWork();
    expect(await stopped.stop(100)).toEqual([`ingestion run #${runId} (Run now)`]);
    // As server.ts does next: the run's connection (and the ingestion lock it holds) closes.
    db.closeConnectionsInUse();
    const run = await db.prisma.ingestionRun.findUniqueOrThrow({ where: { id: runId } });
    expect(run).toMatchObject({
      outcome: 'failed',
      stoppedByShutdown: true,
      error: 'stopped: the process is shutting down (its shutdown timeout ran out before the run ended)',
      // It had stored nothing: 0 is what it committed, and its notes say the counts are that.
      seen: 0,
      inserted: 0,
    });
    expect(run.sourceNotes).toEqual({ counts: CUT_COUNTS_NOTE });
    expect(run.finishedAt).not.toBeNull();
    const entry = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'ingestion.run_now', target: `ingestion_run:${runId}` },
    });
    expect(entry).toMatchObject({ status: 'failed', actor: 'ops' });
    expect(entry.details).toMatchObject({ outcome: 'failed', error: run.error });
    expect(await metricValue(metrics, 'slurm_ingest_runs_total', { source: 'none', outcome: 'failed' })).toBe(1);
  });

  // Each batch of jobs commits on its own: a run abandoned after some batches has stored their jobs, and
  // was recorded with 0 seen and 0 new beside them, as if it had stored nothing. Its record now carries
  // what it committed, batch by batch with the jobs, and says that the run was cut short.
  it('records the jobs it had committed when the shutdown abandons it, and says the run was cut short there', async () => {
    const capture = createSacctFileSource({ path: CAPTURE, timeZone: 'UTC', defaultCluster: 'lab' });
    // The capture's 12 jobs, then a source that never ends: two batches of 5 commit, the last 2 wait in memory.
    const readsThenHangs: JobSource = {
      name: 'slurmrestd',
      async *read(window) {
        yield* capture.read(window);
        await new Promise(() => undefined);
      },
    };
    const service = createIngestionService({
      db,
      sources: [readsThenHangs],
      unconfigured: {},
      logger: createLogger('silent'),
      metrics,
      overlapSec: 600,
      initialLookbackSec: 86_400,
      timeZone: 'UTC',
      batchSize: 5,
      now: () => NOW,
      backgroundWork,
      runNowAnswerWithinMs: 50,
    });
    const context = { actor: 'ops', ip: '192.0.2.7', userAgent: null };
    const answer = await service.runNow(context);
    expect(answer).toEqual({ status: 'running', runId: expect.any(Number) });
    const runId = (answer as { runId: number }).runId;
    // A hang guard while the two batches commit, not a timed assertion.
    await expect.poll(() => db.prisma.slurmJob.count(), { timeout: 10_000 }).toBe(10);

    const stopped = backgroundWork;
    backgroundWork = createBackgroundWork();
    expect(await stopped.stop(100)).toEqual([`ingestion run #${runId} (Run now)`]);
    db.closeConnectionsInUse();
    const run = await db.prisma.ingestionRun.findUniqueOrThrow({ where: { id: runId } });
    expect(await db.prisma.slurmJob.count()).toBe(10);
    expect(run).toMatchObject({
      outcome: 'failed',
      stoppedByShutdown: true,
      error: 'stopped: the process is shutting down (its shutdown timeout ran out before the run ended)',
      seen: 10,
      inserted: 10,
      updated: 0,
    });
    expect(run.sourceNotes).toEqual({ counts: CUT_COUNTS_NOTE });
    const entry = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'ingestion.run_now', target: `ingestion_run:${runId}` },
    });
    expect(entry.details).toMatchObject({ outcome: 'failed', seen: 10, inserted: 10, updated: 0, error: run.error });

    // Where the admin reads it: the page's row and the JSON give the counts and say they are what it committed.
    const user = await buildUser(db.prisma, { role: 'admin' });
    const agent = await signInAs(app('/nonexistent/sacct'), user.username, user.password);
    const listed = await agent.get('/admin/ingestion').set('Accept', 'application/json').expect(200);
    expect(listed.body.runs[0]).toMatchObject({
      runId,
      outcome: 'failed',
      seen: 10,
      inserted: 10,
      sourceNotes: { counts: CUT_COUNTS_NOTE },
    });
    const page = await agent.get('/admin/ingestion').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain(`counts: ${CUT_COUNTS_NOTE}`);
  });
});
