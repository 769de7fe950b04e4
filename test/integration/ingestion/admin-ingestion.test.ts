import { mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findLastLiveRunFinish, tryAcquireIngestLock } from '../../../src/modules/ingestion/ingestion.repository.js';
import { noCompletedRunText } from '../../../src/modules/ingestion/ingestion.routes.js';
import { createIngestionService } from '../../../src/modules/ingestion/ingestion.service.js';
import { ShutdownStop } from '../../../src/modules/ingestion/job-source.js';
import { createMetrics } from '../../../src/modules/metrics/metrics.js';
import { createLogger } from '../../../src/shared/logger.js';
import { postAuditVerify } from '../../support/audit-verify.js';
import { buildJobs } from '../../support/billing-factories.js';
import { buildUser } from '../../support/factories.js';
import { visibleTextOf } from '../../support/html.js';
import { labFileSource } from '../../support/ingest-window.js';
import { csrfTokenIn, csrfTokenOf, signInAs } from '../../support/sign-in.js';
import { buildTestApp, metricValue } from '../../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

const CAPTURE = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05/final/sacct-steps-extra.psv');
// The capture's jobs ended 2026-11-23 15:41-15:46 UTC; the clock sits just after.
const NOW = new Date('2026-11-23T16:00:00Z');

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

function app() {
  return buildTestApp(db, {
    env: { FALLBACK_CSV: CAPTURE, INGEST_LOOKBACK_DAYS: '1', APP_TZ: 'UTC' },
    now: () => NOW,
    metrics: createMetrics(),
  });
}

describe('the notice before the first completed run', () => {
  it.each([
    [{ count: 0, isEstimate: false }, 'No ingestion run has completed yet, and no jobs are stored.'],
    [{ count: 1, isEstimate: false }, 'No ingestion run has completed yet; 1 job is stored.'],
    [{ count: 1_000_000, isEstimate: true }, 'No ingestion run has completed yet; about 1,000,000 jobs are stored.'],
  ])('for %o reads %s', (storedJobs, text) => {
    expect(noCompletedRunText(storedJobs)).toBe(text);
  });
});

describe('/admin/ingestion', () => {
  it('an admin sees no data yet, runs ingestion now (audited), then sees the run and the freshness', async () => {
    const admin = await buildUser(db.prisma, { role: 'admin' });
    const agent = await signInAs(app(), admin.username, admin.password);
    const empty = await agent.get('/admin/ingestion').set('Accept', 'text/html').expect(200);
    expect(empty.text).toContain('No ingestion run has completed yet, and no jobs are stored.');
    // Jobs loaded by other means (a data generator, an import): the page does not say there are none.
    await buildJobs(db, [
      { user: 'alice', end: '2026-11-20T00:00:00Z' },
      { user: 'bob', end: '2026-11-21T00:00:00Z' },
    ]);
    const loaded = await agent.get('/admin/ingestion').set('Accept', 'text/html').expect(200);
    expect(loaded.text).toContain('No ingestion run has completed yet; 2 jobs are stored.');
    expect(loaded.text).not.toContain('no Slurm data');
    await db.prisma.slurmJob.deleteMany();

    await agent
      .post('/admin/ingestion/run')
      .type('form')
      .send({ csrf_token: csrfTokenIn(empty.text) })
      .expect(303)
      .expect('Location', '/admin/ingestion');
    const page = await agent.get('/admin/ingestion').set('Accept', 'text/html').expect(200);
    expect(page.text).toMatch(/Run #1 via file: 12 jobs, 12 new, 0 updated, 0 skipped/);
    expect(page.text).toContain(
      'Data complete through <strong><span><span class="nowrap">2026-11-23</span> <span class="nowrap">16:00</span></span></strong> (UTC), <strong>0 s</strong> ago',
    );
    expect(page.text).toMatch(/<td[^>]*>manual<\/td>\s*<td[^>]*>file<\/td>/);
    // The window on two lines, so Outcome fits a 1280 px screen; the sources' notes on a row of
    // their own under the run (test/browser/ingestion-page.browser.test.ts has the layout).
    expect(page.text).toMatch(/<td[^>]*>\d{4}-\d\d-\d\d \d\d:\d\d \.\.<br> 2026-11-23 16:00<\/td>/);
    expect(page.text).toMatch(
      /<tr class="run-notes">\s*<td colspan="11" class="row-message"><div class="run-notes-text">[^<]*file: answered[^<]*<\/div><\/td>/,
    );
    expect(await db.prisma.slurmJob.count()).toBe(12);
    const audit = await db.prisma.auditLog.findFirstOrThrow({ where: { action: 'ingestion.run_now' } });
    // The whole entry, who and from where included: the service records it, as the route once did.
    expect(audit).toMatchObject({
      actor: admin.username,
      ip: expect.stringMatching(/127\.0\.0\.1$/),
      status: 'ok',
      target: 'ingestion_run:1',
    });
    expect(audit.details).toEqual({
      outcome: 'success',
      source: 'file',
      seen: 12,
      inserted: 12,
      updated: 0,
      skipped: 0,
    });
  });

  it('answers "run now" from a JSON client with the run as JSON, audited, leaving no flash for the next page', async () => {
    const admin = await buildUser(db.prisma, { role: 'admin' });
    const agent = await signInAs(app(), admin.username, admin.password);
    const audits = () => db.prisma.auditLog.count({ where: { action: 'ingestion.run_now' } });
    const before = await audits();
    const response = await agent
      .post('/admin/ingestion/run')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({});
    expect(response.status, response.text.slice(0, 300)).toBe(200);
    expect(response.body).toMatchObject({
      ok: true,
      status: 'finished',
      run: { runId: expect.any(Number), source: 'file', outcome: 'success' },
    });
    expect(response.body.message).toMatch(new RegExp(`^Run #${response.body.run.runId} via file: `));
    expect(await audits()).toBe(before + 1);
    const page = await agent.get('/admin/ingestion').set('Accept', 'text/html').expect(200);
    expect(page.text).not.toMatch(/<div class="alert \w+" role="status">/);
  });

  it('answers "run now" during another run at once, as skipped, with its audit entry', async () => {
    const admin = await buildUser(db.prisma, { role: 'admin' });
    const agent = await signInAs(app(), admin.username, admin.password);
    const runsBefore = await db.prisma.ingestionRun.count();
    // Another worker's run: it holds the ingestion lock. The audit entry must not wait for it
    // (the two once shared an advisory lock key, and this request hung until a 503).
    const release = await tryAcquireIngestLock(db.pool);
    try {
      const response = await agent
        .post('/admin/ingestion/run')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(agent))
        .send({});
      // A refusal, as every other one a JSON client gets: a script checking the status or `ok`
      // must not take a run that never started for one that did.
      expect(response.status, response.text.slice(0, 300)).toBe(409);
      expect(response.body).toEqual({
        error: 'A run is already in progress; it was not started twice.',
        code: 409,
        status: 'skipped',
        reason: expect.any(String),
      });
    } finally {
      await release?.();
    }
    expect(await db.prisma.ingestionRun.count()).toBe(runsBefore);
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'ingestion.run_now', actor: admin.username },
    });
    expect(audit).toMatchObject({ status: 'failed', target: null });
    expect(audit.details).toEqual({ reason: 'another run was in progress' });
  });

  // A browser's Run now refused because another run holds the lock came back with the warning at the top
  // of the page, a polite status, the focus nowhere; a failed run's reason is an alert beside the button
  // that takes the focus (run-now-failed-focus), and a refusal is told the same way.
  it('tells a browser a "run now" refused during another run beside the button, as an alert that takes the focus', async () => {
    const admin = await buildUser(db.prisma, { role: 'admin' });
    const agent = await signInAs(app(), admin.username, admin.password);
    const page = await agent.get('/admin/ingestion').set('Accept', 'text/html').expect(200);
    const release = await tryAcquireIngestLock(db.pool);
    try {
      await agent
        .post('/admin/ingestion/run')
        .type('form')
        .send({ csrf_token: csrfTokenIn(page.text) })
        .expect(303)
        .expect('Location', '/admin/ingestion');
    } finally {
      await release?.();
    }
    const after = await agent.get('/admin/ingestion').set('Accept', 'text/html').expect(200);
    expect(after.text).toMatch(
      /<div class="alert error" role="alert" id="run-now-error" tabindex="-1" autofocus>A run is already in progress; it was not started twice\.<\/div>\s*<form method="post" action="\/admin\/ingestion\/run"/,
    );
    expect(after.text).not.toMatch(/role="status"[^>]*>\s*A run is already in progress/);
    expect(after.text).toContain('<title>Error: Ingestion · HPC Billing</title>');
  });

  it('answers a "run now" whose sources all failed with 502 and the failed run to a JSON client, and an error flash to a browser', async () => {
    const admin = await buildUser(db.prisma, { role: 'admin' });
    const missing = path.join(import.meta.dirname, 'no-such-sacct-file.psv');
    const failing = buildTestApp(db, {
      env: { FALLBACK_CSV: missing, INGEST_LOOKBACK_DAYS: '1', APP_TZ: 'UTC' },
      now: () => NOW,
      metrics: createMetrics(),
    });
    const agent = await signInAs(failing, admin.username, admin.password);
    const jobsBefore = await db.prisma.slurmJob.count();

    const response = await agent
      .post('/admin/ingestion/run')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({});
    expect(response.status, response.text.slice(0, 300)).toBe(502);
    expect(response.body).toMatchObject({
      error: expect.stringMatching(/^The run failed: /),
      code: 502,
      status: 'finished',
      run: { runId: expect.any(Number), outcome: 'failed' },
    });
    expect(response.body).not.toHaveProperty('ok');
    const run = await db.prisma.ingestionRun.findUniqueOrThrow({ where: { id: response.body.run.runId } });
    expect(run.outcome).toBe('failed');
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'ingestion.run_now', actor: admin.username },
    });
    expect(audit).toMatchObject({ status: 'failed', target: `ingestion_run:${run.id}` });
    // Why it failed, as the run recorded it: the page lists the last 25 runs only, and with a run
    // every few minutes the failed one soon left it, leaving an entry that said "failed" and not why.
    expect(run.error).toMatch(/no-such-sacct-file\.psv/);
    expect(audit.details).toEqual({
      outcome: 'failed',
      source: null,
      seen: 0,
      inserted: 0,
      updated: 0,
      skipped: 0,
      error: run.error,
    });

    const page = await agent.get('/admin/ingestion').set('Accept', 'text/html').expect(200);
    await agent
      .post('/admin/ingestion/run')
      .type('form')
      .send({ csrf_token: csrfTokenIn(page.text) })
      .expect(303)
      .expect('Location', '/admin/ingestion');
    const after = await agent.get('/admin/ingestion').set('Accept', 'text/html').expect(200);
    expect(after.text).toMatch(/<div class="alert error"[^>]*>\s*The run failed: /);
    // Its title says so first, as a refused form's page does (a screen reader announces the title).
    expect(after.text).toContain('<title>Error: Ingestion · HPC Billing</title>');
    expect(await db.prisma.slurmJob.count()).toBe(jobsBefore);

    // Under the failed run, its reason once, as its error (in bold): the source's note said the same
    // again after it ("file: …psv …; file: failed: …psv …").
    const notes = [...after.text.matchAll(/<div class="run-notes-text">(.*?)<\/div>/gs)].map((match) => match[1] ?? '');
    const failedRunNotes = notes.find((text) => text.includes('no-such-sacct-file.psv'));
    expect(failedRunNotes).toMatch(/^<strong class="run-error">file: [^<]*no-such-sacct-file\.psv[^<]*<\/strong>/);
    expect(failedRunNotes?.split('no-such-sacct-file.psv')).toHaveLength(2);
    expect(failedRunNotes).not.toContain('file: failed:');
    // What the other sources said is still there, once.
    expect(failedRunNotes).toContain('; sacct: not configured (SACCT_PATH unset)');
  });

  it('says a run with no source configured failed for that, pointing to docs/ingestion.md, in the answer, on the page and in the log', async () => {
    const admin = await buildUser(db.prisma, { role: 'admin' });
    const lines: Array<{ msg: string; error?: unknown }> = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    });
    const unconfigured = buildTestApp(db, {
      env: { INGEST_LOOKBACK_DAYS: '1', APP_TZ: 'UTC' },
      now: () => NOW,
      metrics: createMetrics(),
      logger: pino({ level: 'info' }, sink),
    });
    const agent = await signInAs(unconfigured, admin.username, admin.password);
    const reason =
      'no source is configured (SLURMRESTD_URL, SACCT_PATH, FALLBACK_CSV): see docs/ingestion.md, "Configuration"';

    const response = await agent
      .post('/admin/ingestion/run')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({});
    expect(response.status, response.text.slice(0, 300)).toBe(502);
    expect(response.body.error).toBe(`The run failed: ${reason}`);
    const run = await db.prisma.ingestionRun.findUniqueOrThrow({ where: { id: response.body.run.runId } });
    expect(run.error).toBe(reason);
    const page = await agent.get('/admin/ingestion').set('Accept', 'text/html').expect(200);
    // EJS escapes the quotes around the section's name as &#34; (visibleTextOf leaves it as it is).
    expect(visibleTextOf(page.text).replaceAll('&#34;', '"')).toContain(reason);
    expect(lines.find((line) => line.msg === 'ingestion run failed')?.error).toBe(reason);
  });

  it('audits a partial "run now" (a record left out, the rest written) as partial, on the audit page and in audit.csv', async () => {
    const admin = await buildUser(db.prisma, { role: 'admin' });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'partial-run-now-'));
    try {
      const file = path.join(dir, 'sacct.psv');
      const row = (jobId: string) =>
        `${jobId}|${jobId || '0'}|lab|ann|COMPLETED|60|2026-11-23T15:49:00|2026-11-23T15:50:00|cpu=1,mem=1G,node=1`;
      // Line 3 has no JobID: it is left out, the job around it written.
      writeFileSync(
        file,
        ['JobID|JobIDRaw|Cluster|User|State|ElapsedRaw|Start|End|AllocTRES', row('770001'), row(''), ''].join('\n'),
      );
      utimesSync(file, NOW, NOW);
      const partial = buildTestApp(db, {
        env: { FALLBACK_CSV: file, INGEST_LOOKBACK_DAYS: '1', APP_TZ: 'UTC' },
        now: () => NOW,
        metrics: createMetrics(),
      });
      const agent = await signInAs(partial, admin.username, admin.password);
      const response = await agent
        .post('/admin/ingestion/run')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(agent))
        .send({});
      expect(response.status, response.text.slice(0, 300)).toBe(200);
      expect(response.body.run).toMatchObject({ outcome: 'partial', inserted: 1, skipped: 1 });
      const runId = response.body.run.runId;

      const audit = await db.prisma.auditLog.findFirstOrThrow({
        where: { action: 'ingestion.run_now', actor: admin.username },
      });
      // It was `ok`, as a run that wrote every job is: the entry hid that one was left out.
      expect(audit).toMatchObject({
        status: 'partial',
        target: `ingestion_run:${runId}`,
        details: { outcome: 'partial', seen: 1, inserted: 1, skipped: 1 },
      });

      const page = await agent.get(`/admin/audit?target=ingestion_run:${runId}`).set('Accept', 'text/html').expect(200);
      expect(page.text).toContain('<td data-label="Status"><span class="badge partial">partial</span></td>');
      const csv = await agent.get(`/admin/audit.csv?target=ingestion_run:${runId}`).expect(200);
      expect(csv.text).toContain(`,ingestion.run_now,ingestion_run:${runId},partial,`);
      const verdict = await postAuditVerify(agent, 'application/json');
      expect(verdict.body.status).toBe('ok');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // A hand-made sacct file's state is stored as sent (upper-cased, its first word) and named in the run's
  // notes: a right-to-left override in it turned the rest of the note around on this page, "stored as
  // not finished, so they stay unbilled …" included, as it did on the audit page before that wrote escapes.
  it("writes a bidirectional control in a run's notes (an unknown state from the file) as its escape", async () => {
    const admin = await buildUser(db.prisma, { role: 'admin' });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bidi-state-'));
    try {
      const file = path.join(dir, 'sacct.psv');
      writeFileSync(
        file,
        [
          'JobID|JobIDRaw|Cluster|User|State|ElapsedRaw|Start|End|AllocTRES',
          '770101|770101|lab|ann|DONE\u202eDIAP|60|2026-11-23T15:49:00|2026-11-23T15:50:00|cpu=1,mem=1G,node=1',
          '',
        ].join('\n'),
      );
      utimesSync(file, NOW, NOW);
      const bidi = buildTestApp(db, {
        env: { FALLBACK_CSV: file, INGEST_LOOKBACK_DAYS: '1', APP_TZ: 'UTC' },
        now: () => NOW,
        metrics: createMetrics(),
      });
      const agent = await signInAs(bidi, admin.username, admin.password);
      await agent
        .post('/admin/ingestion/run')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(agent))
        .send({})
        .expect(200);
      const page = await agent.get('/admin/ingestion').set('Accept', 'text/html').expect(200);
      expect(page.text).toContain('(DONE\\u202eDIAP: 1)');
      expect(page.text).not.toContain('\u202e');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('shows why a "run now" over an sacct -X file was refused: no step rows, CPU-hours 0 under the used basis', async () => {
    const admin = await buildUser(db.prisma, { role: 'admin' });
    const allocations = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05/final/sacct-X.psv');
    const app = buildTestApp(db, {
      env: { FALLBACK_CSV: allocations, INGEST_LOOKBACK_DAYS: '1', APP_TZ: 'UTC' },
      now: () => NOW,
      metrics: createMetrics(),
    });
    const agent = await signInAs(app, admin.username, admin.password);
    const jobsBefore = await db.prisma.slurmJob.count();
    const response = await agent
      .post('/admin/ingestion/run')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({});
    // It used to succeed, its jobs stored with TotalCPU 0: no CPU time billed, nothing said.
    expect(response.status, response.text.slice(0, 300)).toBe(502);
    expect(response.body.error).toContain(
      `FALLBACK_CSV ${allocations} has no step rows (sacct -X / --allocations output?)`,
    );
    const page = await agent.get('/admin/ingestion').set('Accept', 'text/html').expect(200);
    expect(visibleTextOf(page.text)).toContain(
      'so under PRICING_CPU_BASIS=used its 12 job(s) that ran (first: job 1) would be billed 0 CPU-hours. None of it was read. Export it again without -X',
    );
    expect(await db.prisma.slurmJob.count()).toBe(jobsBefore);
  });

  it('refuses "run now" without a CSRF token, and runs nothing', async () => {
    const admin = await buildUser(db.prisma, { role: 'admin' });
    const agent = await signInAs(app(), admin.username, admin.password);
    const before = await db.prisma.ingestionRun.count();
    await agent.post('/admin/ingestion/run').type('form').send({}).expect(403);
    expect(await db.prisma.ingestionRun.count()).toBe(before);
  });

  it('keeps non-admins out', async () => {
    const user = await buildUser(db.prisma);
    const agent = await signInAs(app(), user.username, user.password);
    await agent.get('/admin/ingestion').set('Accept', 'text/html').expect(302).expect('Location', '/me');
    const before = await db.prisma.ingestionRun.count();
    const form = await agent.get('/me').set('Accept', 'text/html');
    await agent
      .post('/admin/ingestion/run')
      .type('form')
      .send({ csrf_token: csrfTokenIn(form.text) })
      .expect(403);
    expect(await db.prisma.ingestionRun.count()).toBe(before);
  });

  it('a misspelt SLURM_CLUSTER fails the run, shown on the page and in the metrics, and the window waits for the fix', async () => {
    // A real sacct given --clusters=lba (the cluster is lab) prints its header alone and exits 0.
    const fakes = mkdtempSync(path.join(os.tmpdir(), 'fake-sacct-cluster-'));
    const fake = path.resolve(import.meta.dirname, '../../fixtures/slurm/fake-sacct.mjs');
    for (const name of ['sacct-unknown-cluster', 'sacct-ok', 'sacctmgr-ok']) symlinkSync(fake, path.join(fakes, name));
    const own = await createTestDatabase();
    try {
      const admin = await buildUser(own.prisma, { role: 'admin' });
      const env = (sacct: string, cluster: string) => ({
        SACCT_PATH: path.join(fakes, sacct),
        SACCTMGR_PATH: path.join(fakes, 'sacctmgr-ok'),
        SLURM_CLUSTER: cluster,
        INGEST_LOOKBACK_DAYS: '1',
        INGEST_OVERLAP_SEC: '0',
        APP_TZ: 'UTC',
      });
      const runNow = async (app: ReturnType<typeof buildTestApp>) => {
        const agent = await signInAs(app, admin.username, admin.password);
        return agent
          .post('/admin/ingestion/run')
          .set('Accept', 'application/json')
          .set('X-CSRFToken', await csrfTokenOf(agent))
          .send({});
      };
      // Two hours earlier, with the right name, a quiet window completed: the data is complete up to then.
      const before = new Date(NOW.getTime() - 7_200_000);
      const quiet = await runNow(
        buildTestApp(own, { env: env('sacct-unknown-cluster', 'lab'), now: () => before, metrics: createMetrics() }),
      );
      expect(quiet.body.run).toMatchObject({ outcome: 'success', seen: 0 });

      const metrics = createMetrics();
      const misspelt = buildTestApp(own, { env: env('sacct-unknown-cluster', 'lba'), now: () => NOW, metrics });
      const agent = await signInAs(misspelt, admin.username, admin.password);
      const response = await agent
        .post('/admin/ingestion/run')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(agent))
        .send({});
      expect(response.status, response.text.slice(0, 300)).toBe(502);
      const expected =
        'sacct: SLURM_CLUSTER is "lba", a cluster the Slurm accounting database does not know (it knows: lab)';
      expect(response.body.error).toContain(expected);
      expect(response.body.run).toMatchObject({ outcome: 'failed', seen: 0 });
      const page = await agent.get('/admin/ingestion').set('Accept', 'text/html').expect(200);
      expect(visibleTextOf(page.text)).toContain(expected.replaceAll('"', '&#34;'));
      // Runs are a cluster's (two instances may share a database, one per cluster): the page names each
      // run's, lab's and lba's, and says that none of lba's completed; lab's data stays where it was.
      expect(page.text).toMatch(/class="run-cluster">lba<\/td>[\s\S]*class="run-cluster">lab<\/td>/);
      expect(visibleTextOf(page.text)).toContain('No ingestion run of cluster lba has completed yet');
      expect(await metricValue(metrics, 'slurm_ingest_runs_total', { source: 'none', outcome: 'failed' })).toBe(1);
      expect(await metricValue(metrics, 'slurm_ingest_runs_total', { source: 'sacct', outcome: 'success' })).toBe(0);

      // An hour later the name is corrected: the next run still reads from where the failed one began.
      const later = new Date(NOW.getTime() + 3_600_000);
      const corrected = buildTestApp(own, { env: env('sacct-ok', 'lab'), now: () => later, metrics: createMetrics() });
      const fixed = await signInAs(corrected, admin.username, admin.password);
      const rerun = await fixed
        .post('/admin/ingestion/run')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(fixed))
        .send({})
        .expect(200);
      expect(rerun.body.run.window).toEqual({ start: before.toISOString(), end: later.toISOString() });
      expect(rerun.body.run).toMatchObject({ outcome: 'success', source: 'sacct', inserted: 12 });
    } finally {
      await own.drop();
      rmSync(fakes, { recursive: true, force: true });
    }
  });

  // Told since 20261207090000 by a column of its own (stopped_by_shutdown) rather than by its error's
  // words: the page, its JSON and the metrics say what they said of it before.
  it("shows a scheduled run its server's shutdown stopped as before: failed, its error saying so, no source failure counted", async () => {
    const own = await createTestDatabase();
    try {
      const metrics = createMetrics();
      const scheduler = createIngestionService({
        db: own,
        sources: [labFileSource(CAPTURE)],
        unconfigured: {},
        logger: createLogger('silent'),
        metrics,
        overlapSec: 600,
        initialLookbackSec: 86_400,
        timeZone: 'UTC',
        batchSize: 50,
        now: () => NOW,
      });
      const stopping = new AbortController();
      stopping.abort(new ShutdownStop());
      expect(await scheduler.runOnce({ trigger: 'schedule', signal: stopping.signal })).toMatchObject({
        status: 'finished',
        run: { outcome: 'failed', error: 'file: stopped: the process is shutting down' },
      });
      expect(await findLastLiveRunFinish(own.prisma)).toBeNull();

      const admin = await buildUser(own.prisma, { role: 'admin' });
      const agent = await signInAs(
        buildTestApp(own, { env: { FALLBACK_CSV: CAPTURE, APP_TZ: 'UTC' }, now: () => NOW, metrics }),
        admin.username,
        admin.password,
      );
      const page = await agent.get('/admin/ingestion').set('Accept', 'text/html').expect(200);
      expect(page.text).toMatch(/<td data-label="Trigger">schedule<\/td>\s*<td data-label="Source">-<\/td>/);
      expect(page.text).toContain('<td class="run-outcome">failed</td>');
      expect(page.text).toContain('<strong class="run-error">file: stopped: the process is shutting down</strong>');
      expect(page.text).toContain('No ingestion run has completed yet, and no jobs are stored.');
      const json = await agent.get('/admin/ingestion').set('Accept', 'application/json').expect(200);
      expect(json.body.runs).toHaveLength(1);
      expect(json.body.runs[0]).toMatchObject({
        trigger: 'schedule',
        source: null,
        outcome: 'failed',
        error: 'file: stopped: the process is shutting down',
      });
      expect(json.body.runs[0]).not.toHaveProperty('stoppedByShutdown');
      // A failed run, and no failure of the file: the process stopped it, not the source.
      expect(await metricValue(metrics, 'slurm_ingest_runs_total', { source: 'none', outcome: 'failed' })).toBe(1);
      expect(await metricValue(metrics, 'slurm_ingest_source_failures_total', { source: 'file' })).toBe(0);
      expect(await metricValue(metrics, 'slurm_ingest_last_success_timestamp_seconds')).toBe(0);
    } finally {
      await own.drop();
    }
  });
});

describe('/admin/ingestion after a backfill that read today', () => {
  it('says the data is complete up to when that day was read, not up to tomorrow midnight', async () => {
    const admin = await buildUser(db.prisma, { role: 'admin' });
    const agent = await signInAs(app(), admin.username, admin.password);
    await db.prisma.ingestionRun.deleteMany();
    // `npm run ingest -- --to <today>` from cron, at 15:50: today's window ends at midnight.
    await db.prisma.ingestionRun.create({
      data: {
        trigger: 'backfill',
        source: 'file',
        outcome: 'success',
        windowStart: new Date('2026-11-23T00:00:00Z'),
        windowEnd: new Date('2026-11-24T00:00:00Z'),
        startedAt: new Date('2026-11-23T15:50:00Z'),
        finishedAt: new Date('2026-11-23T15:50:01Z'),
      },
    });
    const page = await agent.get('/admin/ingestion').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain(
      'Data complete through <strong><span><span class="nowrap">2026-11-23</span> <span class="nowrap">15:50</span></span></strong> (UTC), <strong>10 min</strong> ago',
    );

    // A scheduled run that read up to 15:55 afterwards is the newer mark.
    await db.prisma.ingestionRun.create({
      data: {
        trigger: 'schedule',
        source: 'file',
        outcome: 'success',
        windowStart: new Date('2026-11-23T15:40:00Z'),
        windowEnd: new Date('2026-11-23T15:55:00Z'),
        startedAt: new Date('2026-11-23T15:55:00Z'),
        finishedAt: new Date('2026-11-23T15:55:01Z'),
      },
    });
    const later = await agent.get('/admin/ingestion').set('Accept', 'text/html').expect(200);
    expect(later.text).toContain(
      'Data complete through <strong><span><span class="nowrap">2026-11-23</span> <span class="nowrap">15:55</span></span></strong> (UTC), <strong>5 min</strong> ago',
    );
  });
});

/** The "Data complete through" date and time /admin/ingestion shows, as "YYYY-MM-DD HH:MM". */
async function dataThroughOn(agent: Awaited<ReturnType<typeof signInAs>>): Promise<string | undefined> {
  const page = (await agent.get('/admin/ingestion').set('Accept', 'text/html').expect(200)).text;
  return /Data complete through <strong><span><span class="nowrap">([\d-]+)<\/span> <span class="nowrap">([\d:]+)<\/span>/
    .exec(page)
    ?.slice(1)
    .join(' ');
}

describe('/admin/ingestion after a backfill that does not join on to what was read', () => {
  it('keeps the mark of the last scheduled run: a later day read after a gap, or a day still to come, read nothing before it', async () => {
    const admin = await buildUser(db.prisma, { role: 'admin' });
    const agent = await signInAs(app(), admin.username, admin.password);
    await db.prisma.ingestionRun.deleteMany();
    const run = (trigger: string, windowStart: string, windowEnd: string, startedAt: string) =>
      db.prisma.ingestionRun.create({
        data: {
          trigger,
          source: 'file',
          outcome: 'success',
          windowStart: new Date(windowStart),
          windowEnd: new Date(windowEnd),
          startedAt: new Date(startedAt),
          finishedAt: new Date(startedAt),
        },
      });
    // The scheduled runs last succeeded yesterday at 20:00 (they have failed since).
    await run('schedule', '2026-11-22T19:45:00Z', '2026-11-22T20:00:00Z', '2026-11-22T20:00:00Z');
    // At 15:50 an operator backfills today and a day to come: 20:00 to midnight yesterday was never read.
    await run('backfill', '2026-11-23T00:00:00Z', '2026-11-24T00:00:00Z', '2026-11-23T15:50:00Z');
    await run('backfill', '2026-11-25T00:00:00Z', '2026-11-26T00:00:00Z', '2026-11-23T15:50:01Z');
    expect(await dataThroughOn(agent)).toBe('2026-11-22 20:00');
    // Yesterday backfilled too: the days join on, up to when today was read.
    await run('backfill', '2026-11-22T00:00:00Z', '2026-11-23T00:00:00Z', '2026-11-23T15:51:00Z');
    expect(await dataThroughOn(agent)).toBe('2026-11-23 15:50');
  });
});

describe('/admin/ingestion with backfills alone (no scheduled run yet)', () => {
  it('says the data is complete up to the first day a backfill did not complete, not up to the newest day read', async () => {
    const admin = await buildUser(db.prisma, { role: 'admin' });
    const agent = await signInAs(app(), admin.username, admin.password);
    await db.prisma.ingestionRun.deleteMany();
    const run = (outcome: 'success' | 'partial' | 'failed', day: string, startedAt: string) =>
      db.prisma.ingestionRun.create({
        data: {
          trigger: 'backfill',
          source: outcome === 'failed' ? null : 'sacct',
          outcome,
          windowStart: new Date(`${day}T00:00:00Z`),
          windowEnd: new Date(new Date(`${day}T00:00:00Z`).getTime() + 86_400_000),
          startedAt: new Date(startedAt),
          finishedAt: new Date(startedAt),
        },
      });
    // A backfill from cron, a day at a time: the 21st failed (slurmdbd down that night) and was not read
    // again, the 22nd and today were. The 21st's jobs are not stored: the data is complete up to it only.
    await run('success', '2026-11-20', '2026-11-21T01:00:00Z');
    await run('failed', '2026-11-21', '2026-11-22T01:00:00Z');
    await run('partial', '2026-11-22', '2026-11-23T01:00:00Z');
    await run('success', '2026-11-23', '2026-11-23T15:50:00Z');
    expect(await dataThroughOn(agent)).toBe('2026-11-21 00:00');
    // The 21st read again: the days join on, up to when today was read.
    await run('success', '2026-11-21', '2026-11-23T15:55:00Z');
    expect(await dataThroughOn(agent)).toBe('2026-11-23 15:50');
  });
});

describe("/admin/ingestion after the demo's seed", () => {
  it('says the seed read from the start of the file, not from 1970 in the local zone', async () => {
    await db.prisma.ingestionRun.create({
      data: {
        trigger: 'seed',
        source: 'file',
        windowStart: new Date(0),
        windowEnd: new Date('2026-11-23T15:50:00Z'),
        seen: 3,
        inserted: 3,
        outcome: 'success',
        startedAt: new Date('2026-11-23T15:50:00Z'),
        finishedAt: new Date('2026-11-23T15:50:01Z'),
        durationMs: 400,
      },
    });
    const admin = await buildUser(db.prisma, { role: 'admin' });
    const agent = await signInAs(
      buildTestApp(db, { env: { FALLBACK_CSV: CAPTURE, APP_TZ: 'Asia/Bangkok' }, now: () => NOW }),
      admin.username,
      admin.password,
    );
    const page = await agent.get('/admin/ingestion').set('Accept', 'text/html').expect(200);
    expect(page.text).toMatch(
      /<td[^>]*>seed<\/td>\s*<td[^>]*>file<\/td>\s*<td[^>]*>the start \.\.<br> 2026-11-23 22:50<\/td>/,
    );
    expect(page.text).not.toContain('1970');
  });
});
