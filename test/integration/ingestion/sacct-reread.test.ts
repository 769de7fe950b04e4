/**
 * sacct reads a job only in the window it ends in (its terminal `--state` list holds no running job), and
 * slurmdbd returns with it only the steps that overlap that window: the steps that ended before it were in
 * no read. The sacct source reads the window's jobs that started before it again by id, with all their
 * steps. Recorded on the lab (test/fixtures/slurm/22.05/steps-before-window/window.txt): job 1
 * (`srun <35 s of CPU>; srun sleep 120`) read for a window after its step 0 ended, job 2 (`srun sleep 5`)
 * started and ended inside it; the fake sacct prints what the lab's sacct printed for each call.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createIngestionService } from '../../../src/modules/ingestion/ingestion.service.js';
import { createSacctSource, SACCT_REREAD_CHUNK } from '../../../src/modules/ingestion/sacct.source.js';
import { createMetrics } from '../../../src/modules/metrics/metrics.js';
import { createRatesService } from '../../../src/modules/pricing/rates.service.js';
import { createReceiptsService } from '../../../src/modules/receipts/receipts.service.js';
import { createLogger } from '../../../src/shared/logger.js';
import { buildTiers } from '../../support/billing-factories.js';
import { buildTestConfig } from '../../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

const CAPTURE = 'steps-before-window';
const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05', CAPTURE);
const FAKE_SACCT = path.resolve(import.meta.dirname, '../../fixtures/slurm/fake-sacct.mjs');
/** After job 1's step 0 ended (05:01:41); both jobs ended in it. */
const WINDOW = { start: new Date('2026-12-06T05:02:00Z'), end: new Date('2026-12-06T05:04:00Z') };
const NOW = new Date('2026-12-07T00:00:00Z');

let db: TestDatabase;
let dir: string;

beforeAll(async () => {
  db = await createTestDatabase();
  // Rates high enough that a few seconds of CPU show in the cost, in THB's two decimals.
  await buildTiers(db, [{ name: 'mu', isDefault: true, cpu: '1000.00', gpu: '0.00', mem: '1000.00' }]);
});
afterAll(async () => {
  await db?.drop();
});
beforeEach(async () => {
  await db.pool.query('TRUNCATE receipt_items, receipts, slurm_jobs, ingestion_runs RESTART IDENTITY CASCADE');
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = mkdtempSync(path.join(os.tmpdir(), 'sacct-reread-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The fake sacct under the name that prints this capture, and the arguments of each call it got. */
function fake(): { sacctPath: string; calls: () => string[][] } {
  const link = path.join(dir, `sacct-${CAPTURE}`);
  if (!existsSync(link)) symlinkSync(FAKE_SACCT, link);
  return {
    sacctPath: link,
    calls: () =>
      readFileSync(`${link}.args`, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as string[]),
  };
}

/**
 * A SACCT_PATH that runs the fake for the window's read and, for the read by id (`--jobs=`), runs
 * `byId` (bash) instead, with the fake's path in $FAKE.
 */
function wrapper(byId: string): string {
  const { sacctPath } = fake();
  const script = path.join(dir, 'sacct-wrapper');
  writeFileSync(
    script,
    `#!/bin/bash\nFAKE='${sacctPath}'\nfor arg in "$@"; do case "$arg" in --jobs=*) ${byId};; esac; done\nexec "$FAKE" "$@"\n`,
  );
  chmodSync(script, 0o755);
  return script;
}

function ingest(sacctPath: string, timeoutMs = 10_000, window = WINDOW) {
  const source = createSacctSource({
    inheritedEnvironment: process.env,
    sacctPath,
    timeZone: 'UTC',
    cluster: undefined,
    defaultCluster: 'lab',
    timeoutMs,
    runAs: null,
  });
  return createIngestionService({
    db,
    sources: [source],
    unconfigured: {},
    logger: createLogger('silent'),
    metrics: createMetrics(),
    overlapSec: 0,
    initialLookbackSec: 3600,
  }).runOnce({ trigger: 'manual', window });
}

const stored = async () =>
  (
    await db.pool.query(
      `SELECT job_id, state, step_count, total_cpu_sec::text, step_mem_gb_hours::text, max_rss_bytes::text,
              (SELECT array_agg(s->>'id' ORDER BY o) FROM jsonb_array_elements(steps) WITH ORDINALITY AS e(s, o)) AS steps
         FROM slurm_jobs ORDER BY job_id`,
    )
  ).rows;

const receipts = () => {
  const config = buildTestConfig(db.url, { APP_TZ: 'UTC' });
  const now = () => NOW;
  const rates = createRatesService({ db, config, now });
  return createReceiptsService({ db, config, rates, metrics: createMetrics(), now });
};

describe('sacct: a job that started before the window is read again by id, with the steps that ended before it', () => {
  it('stores and bills the CPU time and memory of its step that ended before the window', async () => {
    const { sacctPath, calls } = fake();
    const run = await ingest(sacctPath);
    expect(run).toMatchObject({ status: 'finished', run: { outcome: 'success', inserted: 2, updated: 0 } });
    // Step 1.0's 12.885 s of CPU and 3216K x 35 s are in it; the window's read alone has batch (0.020 s) and
    // 1.1 (0.001 s): job 1 used to be stored with 2 steps, 0.021 s of CPU and 0.000493 GiB-hours.
    expect(await stored()).toEqual([
      {
        job_id: '1',
        state: 'COMPLETED',
        step_count: 3,
        steps: ['batch', '0', '1'],
        total_cpu_sec: '12.906',
        step_mem_gb_hours: '0.000523',
        max_rss_bytes: '10887168',
      },
      {
        job_id: '2',
        state: 'FAILED',
        step_count: 1,
        steps: ['batch'],
        total_cpu_sec: '0.000',
        step_mem_gb_hours: null,
        max_rss_bytes: null,
      },
    ]);
    // The window's read, then job 1 alone (job 2 started inside the window) by id, from its start.
    const [window, reread, ...more] = calls();
    expect(window).toContain('--state=BF,CA,CD,DL,F,NF,OOM,PR,RS,TO');
    expect(reread).toEqual(expect.arrayContaining(['--jobs=1', '--duplicates', '--starttime=2026-12-06T05:01:05']));
    expect(reread).toContain('--endtime=2026-12-06T05:04:00');
    expect(reread?.some((arg) => arg.startsWith('--state'))).toBe(false);
    expect(more).toEqual([]);

    await receipts().createForUser({ username: 'alice' }, '2026-12-06', {
      actor: 'alice',
      ip: '127.0.0.1',
      userAgent: 'test',
    });
    const item = await db.pool.query(
      `SELECT cpu_hours::text, mem_gb_hours::text, cost::text FROM receipt_items WHERE job_key = '1'`,
    );
    // Billed under the default `used` CPU basis, step 1.0's CPU time and memory among it (it was 0.000006
    // CPU-hours, 0.000493 GiB-hours and 0.50 at these rates).
    expect(item.rows).toEqual([{ cpu_hours: '0.003585', mem_gb_hours: '0.000523', cost: '4.1100' }]);
  });

  it('reading the window again changes nothing', async () => {
    const { sacctPath } = fake();
    await ingest(sacctPath);
    const first = await stored();
    const again = await ingest(sacctPath);
    expect(again).toMatchObject({ status: 'finished', run: { outcome: 'success', inserted: 0, updated: 0 } });
    expect(await stored()).toEqual(first);
  });

  it("drops the re-read's records of other jobs with the id (a reused id, a requeued job's earlier run)", async () => {
    // The re-read as --duplicates prints a reused id: another job 1, bob's, submitted a month earlier.
    const other =
      '1|1|lab|bob|old|chemistry|debug|normal|COMPLETED|0:0|2026-11-01T10:00:00|2026-11-01T10:00:01|2026-12-06T05:01:30|' +
      '35d|3000000|1-00:00:00|3000000|billing=1,cpu=1,mem=256M,node=1|billing=1,cpu=1,mem=256M,node=1|1|1|256M|||0|vm|1|UNLIMITED';
    const sacct = wrapper(`"$FAKE" "$@"; echo '${other}'; exit 0`);
    const run = await ingest(sacct);
    expect(run).toMatchObject({ status: 'finished', run: { outcome: 'success', inserted: 2 } });
    const rows = await stored();
    expect(rows.map((row) => [row.job_id, row.total_cpu_sec])).toEqual([
      ['1', '12.906'],
      ['2', '0.000'],
    ]);
  });

  it("keeps the window's record when the re-read is refused as too wide (by a SACCT_PATH wrapper: slurmdbd does not)", async () => {
    const sacct = wrapper(`echo 'sacct: error: Too wide of a date range in query' >&2; exit 95`);
    const run = await ingest(sacct);
    expect(run).toMatchObject({ status: 'finished', run: { outcome: 'success', inserted: 2 } });
    // As read before the re-read: batch and 1.1 alone.
    expect((await stored())[0]).toMatchObject({ job_id: '1', step_count: 2, total_cpu_sec: '0.021' });
  });

  it('fails the run, storing nothing, when the re-read fails or hangs, as a failed window read does', async () => {
    const failing = await ingest(wrapper(`echo 'sacct: error: Problem talking to the database' >&2; exit 1`));
    expect(failing).toMatchObject({ run: { outcome: 'failed' } });
    expect(JSON.stringify(failing)).toContain('Problem talking to the database');
    // A hung re-read is killed after SACCT_TIMEOUT_MS, as a hung window read is.
    const hung = await ingest(wrapper('exec sleep 600'), 1500);
    expect(hung).toMatchObject({ run: { outcome: 'failed' } });
    expect(JSON.stringify(hung)).toContain('did not finish within 1500 ms');
    expect(await stored()).toEqual([]);
  });

  it('reads them again SACCT_REREAD_CHUNK ids at a time', async () => {
    // 450 jobs (ids 101..550) that started before the window and ended in it, each read in the window with
    // its batch step alone and again by id with a step 0 of 1 s of CPU too: the lab's rows, renumbered.
    const header = readFileSync(path.join(FIXTURES, 'sacct.psv'), 'utf8').split('\n')[0];
    const [jobRow, batchRow] = readFileSync(path.join(FIXTURES, 'sacct.psv'), 'utf8').split('\n').slice(1, 3);
    const stepRow = readFileSync(path.join(FIXTURES, 'sacct-jobs.psv'), 'utf8').split('\n')[3] ?? '';
    const rowsOf = (id: string, withStep: boolean) =>
      [jobRow, batchRow, ...(withStep ? [stepRow.replace('|00:12.885|', '|00:01.000|')] : [])]
        .map((row) => (row as string).replace(/^1(\.[a-z0-9]+)?\|1(\.[a-z0-9]+)?\|/, `${id}$1|${id}$2|`))
        .join('\n');
    const ids = Array.from({ length: 450 }, (_, index) => String(101 + index));
    writeFileSync(path.join(dir, 'window.psv'), `${header}\n${ids.map((id) => rowsOf(id, false)).join('\n')}\n`);
    for (const id of ids) writeFileSync(path.join(dir, `job-${id}.psv`), `${rowsOf(id, true)}\n`);
    const script = path.join(dir, 'sacct-many');
    writeFileSync(
      script,
      `#!/bin/bash\nprintf '%s\\n' "$*" >> '${script}.args'\n` +
        `for arg in "$@"; do case "$arg" in --jobs=*) echo '${header}'; ` +
        `for id in $(echo "\${arg#--jobs=}" | tr , ' '); do cat '${dir}'/job-$id.psv; done; exit 0;; esac; done\n` +
        `cat '${dir}/window.psv'\n`,
    );
    chmodSync(script, 0o755);

    const run = await ingest(script);
    expect(run).toMatchObject({ status: 'finished', run: { outcome: 'success', inserted: 450 } });
    const totals = await db.pool.query(`SELECT count(*)::int AS jobs, sum(total_cpu_sec)::text AS cpu FROM slurm_jobs`);
    // Each job's batch (0.020 s) and step 0 (1 s).
    expect(totals.rows).toEqual([{ jobs: 450, cpu: '459.000' }]);
    const calls = readFileSync(`${script}.args`, 'utf8').trim().split('\n');
    const chunks = calls.slice(1).map((call) => (call.match(/--jobs=(\S+)/)?.[1] ?? '').split(',').length);
    expect(chunks).toEqual([SACCT_REREAD_CHUNK, SACCT_REREAD_CHUNK, 450 - 2 * SACCT_REREAD_CHUNK]);
  });

  it("reads a refused chunk again in halves: a job older than MaxQueryTimeRange keeps the window's record, the others are read", async () => {
    // Job 9 started two days before the window; this SACCT_PATH refuses a read by id over an hour, as no slurmdbd does
    // (it measures only a query without job ids against MaxQueryTimeRange: 22.05/max-query-time-range).
    const capture = readFileSync(path.join(FIXTURES, 'sacct.psv'), 'utf8').trimEnd().split('\n');
    const old = capture.slice(1, 3).map((row) =>
      row
        .replace(/^1(\.batch)?\|1(\.batch)?\|/, '9$1|9$2|')
        .replace('2026-12-06T05:01:04|2026-12-06T05:01:05|', '2026-12-04T05:01:04|2026-12-04T05:01:05|')
        .replace('|2026-12-06T05:01:05|2026-12-06T05:01:05|', '|2026-12-04T05:01:05|2026-12-04T05:01:05|'),
    );
    writeFileSync(path.join(dir, 'window.psv'), `${[...capture, ...old].join('\n')}\n`);
    const script = path.join(dir, 'sacct-max-range');
    writeFileSync(
      script,
      `#!/bin/bash\nprintf '%s\\n' "$*" >> '${script}.args'\n` +
        `for arg in "$@"; do case "$arg" in --starttime=*) from=\${arg#*=};; --endtime=*) to=\${arg#*=};; --jobs=*) ids=\${arg#*=};; esac; done\n` +
        `if [ -z "$ids" ]; then cat '${dir}/window.psv'; exit 0; fi\n` +
        `if [ $(( $(date -ud "$to" +%s) - $(date -ud "$from" +%s) )) -gt 3600 ]; then\n` +
        `  head -1 '${dir}/window.psv'; echo 'sacct: error: Too wide of a date range in query' >&2; exit 95; fi\n` +
        `cat '${path.join(FIXTURES, 'sacct-jobs.psv')}'\n`,
    );
    chmodSync(script, 0o755);

    const run = await ingest(script);
    expect(run).toMatchObject({ status: 'finished', run: { outcome: 'success', inserted: 3 } });
    expect((await stored()).map((row) => [row.job_id, row.step_count, row.total_cpu_sec])).toEqual([
      ['1', 3, '12.906'],
      ['2', 1, '0.000'],
      ['9', 1, '0.020'],
    ]);
    const rereads = readFileSync(`${script}.args`, 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((call) => call.match(/--jobs=(\S+)/)?.[1]);
    expect(rereads).toEqual(['9,1', '9', '1']);
  });
});

/**
 * Recorded on the lab with MaxQueryTimeRange=00:02:00 (test/fixtures/slurm/22.05/max-query-time-range/window.txt),
 * sacct run as alice (root and SlurmUser are exempt): job 1 ran 10:47:15 .. 10:50:55, its step 0 ended at
 * 10:47:30. The window 10:46 .. 10:52 was refused as too wide and read in slices of 1 min 30 s; the last
 * holds job 1 without step 0. The re-read by id, 4 min 45 s from its start, was not refused: slurmdbd
 * measures only a query that names no job (proc_req.c, _get_jobs_cond). The fake answers as that slurmdbd did.
 */
describe('sacct under MaxQueryTimeRange: a job longer than the range keeps the steps of the slices before its end', () => {
  const LAB = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05/max-query-time-range');
  const LONG_WINDOW = { start: new Date('2026-12-06T10:46:00Z'), end: new Date('2026-12-06T10:52:00Z') };

  function labSacct(): { sacctPath: string; calls: () => string[] } {
    const script = path.join(dir, 'sacct-max-query-time-range');
    writeFileSync(
      script,
      `#!/bin/bash\nprintf '%s\\n' "$*" >> '${script}.args'\n` +
        `for arg in "$@"; do case "$arg" in --starttime=*) from=\${arg#*=};; --endtime=*) to=\${arg#*=};; --jobs=*) ids=\${arg#*=};; esac; done\n` +
        // A read by id is never measured against the range.
        `if [ -n "$ids" ]; then cat '${LAB}/sacct-jobs.psv'; exit 0; fi\n` +
        `if [ $(( $(date -ud "$to" +%s) - $(date -ud "$from" +%s) )) -gt 120 ]; then\n` +
        `  cat '${LAB}/sacct-too-wide.psv'; cat '${LAB}/sacct-too-wide.stderr' >&2; exit 95; fi\n` +
        // Job 1 is printed by the slice its end (10:50:55) is in; the others printed the header alone.
        `if [[ "$from" < 2026-12-06T10:50:55 && ! "$to" < 2026-12-06T10:50:55 ]]; then cat '${LAB}/sacct.psv'; ` +
        `else cat '${LAB}/sacct-too-wide.psv'; fi\n`,
    );
    chmodSync(script, 0o755);
    return { sacctPath: script, calls: () => readFileSync(`${script}.args`, 'utf8').trim().split('\n') };
  }

  it('stores job 1 with its three steps and 4.789 s of CPU, step 0 (4.667 s) from the read by id', async () => {
    const { sacctPath, calls } = labSacct();
    const run = await ingest(sacctPath, 10_000, LONG_WINDOW);
    expect(run).toMatchObject({ status: 'finished', run: { outcome: 'success', inserted: 1 } });
    // The window's read alone has batch and step 1: 0.122 s.
    expect(await stored()).toEqual([
      expect.objectContaining({ job_id: '1', step_count: 3, steps: ['batch', '0', '1'], total_cpu_sec: '4.789' }),
    ]);
    const windows = calls().map((call) => [call.match(/--starttime=(\S+)/)?.[1], call.match(/--endtime=(\S+)/)?.[1]]);
    expect(windows).toEqual([
      ['2026-12-06T10:46:00', '2026-12-06T10:52:00'],
      ['2026-12-06T10:46:00', '2026-12-06T10:49:00'],
      ['2026-12-06T10:46:00', '2026-12-06T10:47:30'],
      ['2026-12-06T10:47:30', '2026-12-06T10:49:00'],
      ['2026-12-06T10:49:00', '2026-12-06T10:50:30'],
      ['2026-12-06T10:50:30', '2026-12-06T10:52:00'],
      // The read by id, from the job's start, longer than the range.
      ['2026-12-06T10:47:15', '2026-12-06T10:52:00'],
    ]);
    expect(calls()[6]).toContain('--jobs=1');
  });
});
