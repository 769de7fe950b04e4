import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { findLastLiveRunFinish, tryAcquireIngestLock } from '../../../src/modules/ingestion/ingestion.repository.js';
import { startIngestionScheduler } from '../../../src/modules/ingestion/ingestion.scheduler.js';
import {
  createIngestionService,
  findLastIngestionSuccess,
  type IngestionDeps,
} from '../../../src/modules/ingestion/ingestion.service.js';
import {
  type IngestWindow,
  type JobSource,
  SHUTDOWN_STOP_REASON,
  ShutdownStop,
  SourceConfigError,
} from '../../../src/modules/ingestion/job-source.js';
import { createSacctSource } from '../../../src/modules/ingestion/sacct.source.js';
import { createSacctFileSource } from '../../../src/modules/ingestion/sacct-file.source.js';
import { createMetrics, type Metrics } from '../../../src/modules/metrics/metrics.js';
import { createLogger } from '../../../src/shared/logger.js';
import {
  isRunning,
  killLeftoverSleep,
  readSleepPid,
  waitFor,
  withHangGuard,
  writeHangingSacctWrapper,
} from '../../support/hung-sacct.js';
import { labFileSource, labRestSource } from '../../support/ingest-window.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

const CAPTURES = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05');
const WINDOW = { start: new Date('2026-11-23T15:00:00Z'), end: new Date('2026-11-23T16:00:00Z') };
const NOW = new Date('2026-11-23T16:00:00Z');
// A modification time inside WINDOW, for the tests where the file was written before a run reached past it.
const WRITTEN = new Date('2026-11-23T15:50:00Z');

let db: TestDatabase;
let dir: string;
let metrics: Metrics;

beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(path.join(os.tmpdir(), 'ingest-service-'));
});
afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await db.pool.query('TRUNCATE slurm_jobs, ingestion_runs RESTART IDENTITY');
  metrics = createMetrics();
});

/** A file source over a copy of a capture, so a test can change the file under it. */
function fileSource(captureName: string, fileName = 'sacct.psv'): { source: JobSource; file: string } {
  const file = path.join(dir, fileName);
  copyFileSync(path.join(CAPTURES, captureName), file);
  return { source: labFileSource(file), file };
}

function service(sources: JobSource[], overrides: Partial<IngestionDeps> = {}) {
  return createIngestionService({
    db,
    sources,
    unconfigured: { slurmrestd: 'not configured (SLURMRESTD_URL unset)' },
    logger: createLogger('silent'),
    metrics,
    overlapSec: 600,
    initialLookbackSec: 86_400,
    timeZone: 'UTC',
    batchSize: 5,
    now: () => NOW,
    ...overrides,
  });
}

async function finishedRun(promise: ReturnType<ReturnType<typeof service>['runOnce']>) {
  const result = await promise;
  if (result.status !== 'finished') throw new Error(`expected a finished run, got ${result.status}`);
  return result.run;
}

const jobRow = async (jobId: string) =>
  (
    await db.pool.query(
      'SELECT job_key, state, is_terminal, end_at, total_cpu_sec::text, elapsed_sec, source FROM slurm_jobs WHERE cluster = $1 AND job_id = $2',
      ['lab', jobId],
    )
  ).rows[0];

describe('ingestion runs through the file source', () => {
  it('stores every job of a real sacct capture once, and a re-run changes nothing', async () => {
    const { source } = fileSource('final/sacct-steps-extra.psv');
    const first = await finishedRun(service([source]).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(first).toMatchObject({ outcome: 'success', source: 'file', seen: 12, inserted: 12, updated: 0, skipped: 0 });
    expect(await jobRow('10')).toMatchObject({ job_key: '6_1', state: 'COMPLETED', total_cpu_sec: '0.004' });
    expect(await jobRow('2')).toMatchObject({ total_cpu_sec: '5.693', elapsed_sec: 16, source: 'file' });

    // Touch the file so the unchanged-file shortcut does not apply: every record is read again.
    writeFileSync(path.join(dir, 'sacct.psv'), readFileSync(path.join(CAPTURES, 'final/sacct-steps-extra.psv')));
    const second = await finishedRun(service([source]).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(second).toMatchObject({ outcome: 'success', seen: 12, inserted: 0, updated: 0, unchanged: 12 });
    expect((await db.pool.query('SELECT count(*)::int AS n FROM slurm_jobs')).rows[0].n).toBe(12);
  });

  it('updates a job seen running when it is later seen completed', async () => {
    const live = fileSource('live/sacct-steps-extra.psv', 'live.psv');
    await finishedRun(service([live.source]).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(await jobRow('12')).toMatchObject({ state: 'RUNNING', is_terminal: false, end_at: null });
    expect(await jobRow('13')).toMatchObject({ state: 'PENDING', is_terminal: false });

    const final = fileSource('final/sacct-steps-extra.psv', 'final.psv');
    const run = await finishedRun(service([final.source]).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(run).toMatchObject({ inserted: 0, updated: 2, unchanged: 10 });
    expect(await jobRow('12')).toMatchObject({
      state: 'CANCELLED',
      is_terminal: true,
      end_at: new Date('2026-11-23T15:44:58Z'),
    });
    expect(await jobRow('13')).toMatchObject({ state: 'COMPLETED', is_terminal: true, elapsed_sec: 60 });
  });

  it('skips a malformed record with its line, stores the rest and calls the run partial', async () => {
    const file = path.join(dir, 'damaged.psv');
    const lines = readFileSync(path.join(CAPTURES, 'final/sacct-steps-extra.psv'), 'utf8').split('\n');
    lines[3] = lines[3]?.replace('|16|00:05.694|', '|x16|00:05.694|') ?? '';
    writeFileSync(file, lines.join('\n'));
    const source = labFileSource(file);
    const run = await finishedRun(service([source]).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(run).toMatchObject({ outcome: 'partial', seen: 11, inserted: 11, skipped: 1 });
    expect(await jobRow('2')).toBeUndefined();
    const stored = await db.prisma.ingestionRun.findUniqueOrThrow({ where: { id: run.runId } });
    expect(stored).toMatchObject({ outcome: 'partial', skipped: 1, seen: 11, inserted: 11, source: 'file' });
    // The admin page names the job skipped and why (it used to say only "1 skipped"): the run completed
    // its window, so that job is read again only by a backfill of its day with --force once fixed.
    expect(run.sourceNotes.skipped).toBe('1 job(s) skipped, first: job 2 of cluster lab (line 4): not a count: "x16"');
    expect((stored.sourceNotes as Record<string, string>).skipped).toBe(run.sourceNotes.skipped);
  });

  it('a step row cut short skips its whole job: it is neither stored nor billed short', async () => {
    const lines = readFileSync(path.join(CAPTURES, 'final/sacct-steps-extra.psv'), 'utf8').split('\n');
    const stepIndex = lines.findIndex((line) => line.includes('|2.1|'));
    const step = lines[stepIndex] as string;
    lines[stepIndex] = step.slice(0, step.lastIndexOf('|'));
    const file = path.join(dir, 'cut-step.psv');
    writeFileSync(file, lines.join('\n'));
    const logged: Record<string, unknown>[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => logged.push(JSON.parse(line)) });
    const damaged = labFileSource(file);

    const run = await finishedRun(service([damaged], { logger }).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(run).toMatchObject({ outcome: 'partial', seen: 11, inserted: 11, skipped: 1 });
    expect(await jobRow('2')).toBeUndefined();
    expect(logged.filter((entry) => entry.msg === 'skipped a malformed record')).toEqual([
      expect.objectContaining({ line: 7, jobId: '2', reason: 'step 2.1: expected 35 fields, found 34' }),
    ]);

    // Stored whole from a good read, the job keeps its sums when the damaged file is read again.
    const { source } = fileSource('final/sacct-steps-extra.psv');
    await finishedRun(service([source]).runOnce({ trigger: 'manual', window: WINDOW }));
    const again = await finishedRun(service([damaged]).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(again).toMatchObject({ outcome: 'partial', skipped: 1, updated: 0 });
    expect(await jobRow('2')).toMatchObject({ total_cpu_sec: '5.693' });
  });

  it('logs a skip with the JobID cut short, never a runaway line or value', async () => {
    const capture = readFileSync(path.join(CAPTURES, 'final/sacct-steps-extra.psv'), 'utf8').trimEnd();
    const captureLines = capture.split('\n');
    const job1 = (captureLines[1] as string).split('|');
    const job13Line = captureLines.findIndex((line) => line.startsWith('bob|13|')) + 1;
    const hugeLine = captureLines.length + 1;
    // JobID is column 1 and JobIDRaw column 23 in this capture; a 100,000-digit JobIDRaw is a number, too long to store.
    const longRaw = job1.map((field, index) => (index === 1 ? '99' : index === 23 ? '9'.repeat(100_000) : field));
    const file = path.join(dir, 'runaway.psv');
    writeFileSync(file, [capture, 'x'.repeat(4_000_000), longRaw.join('|'), ''].join('\n'));
    const logged: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => logged.push(line) });
    const source = labFileSource(file);

    const run = await finishedRun(service([source], { logger }).runOnce({ trigger: 'manual', window: WINDOW }));
    // The huge line does not reach the JobID column: it may have been a step of job 13 before it, skipped too.
    expect(run).toMatchObject({ outcome: 'partial', seen: 11, skipped: 3 });
    const skips = logged.map((line) => JSON.parse(line)).filter((entry) => /^skipped a/.test(entry.msg));
    expect(skips).toEqual([
      expect.objectContaining({ line: hugeLine, jobId: null, reason: 'expected 35 fields, found 1' }),
      expect.objectContaining({
        line: job13Line,
        jobId: '13',
        reason: expect.stringMatching(`^line ${hugeLine} after it cannot be read`),
      }),
      expect.objectContaining({
        line: hugeLine + 1,
        jobId: `${'9'.repeat(61)}...`,
        reason: 'jobId is longer than 32 characters',
      }),
    ]);
    for (const line of logged) expect(line.length).toBeLessThan(1000);
  });

  it('reads two sacct exports joined with cat, each with its header row, as one: not partial', async () => {
    const capture = readFileSync(path.join(CAPTURES, 'final/sacct-steps-extra.psv'), 'utf8').trimEnd().split('\n');
    const [header, ...records] = capture;
    const half = records.findIndex((line) => line.startsWith('bob|3|'));
    const file = path.join(dir, 'joined.psv');
    writeFileSync(file, [header, ...records.slice(0, half), header, ...records.slice(half), ''].join('\n'));
    const source = labFileSource(file);
    const run = await finishedRun(service([source]).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(run).toMatchObject({ outcome: 'success', seen: 12, inserted: 12, skipped: 0 });
    expect(run.sourceNotes.skipped).toBeUndefined();
  });

  it('reads two sacct exports of different column orders joined with cat, each by its own header row', async () => {
    const capture = readFileSync(path.join(CAPTURES, 'final/sacct-steps-extra.psv'), 'utf8').trimEnd().split('\n');
    const [header = '', ...records] = capture;
    const half = records.findIndex((line) => line.startsWith('bob|3|'));
    // The second export's columns in reverse order: read with the first's, its values went to the wrong fields.
    const reversed = (line: string) => line.split('|').reverse().join('|');
    const file = path.join(dir, 'joined-reordered.psv');
    writeFileSync(
      file,
      [header, ...records.slice(0, half), reversed(header), ...records.slice(half).map(reversed), ''].join('\n'),
    );
    const joined = labFileSource(file);
    const run = await finishedRun(service([joined]).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(run).toMatchObject({ outcome: 'success', seen: 12, inserted: 12, skipped: 0 });
    // The same jobs as the capture read whole: a re-read of it changes none.
    const whole = fileSource('final/sacct-steps-extra.psv').source;
    const again = await finishedRun(service([whole]).runOnce({ trigger: 'manual', window: WINDOW, force: true }));
    expect(again).toMatchObject({ seen: 12, inserted: 0, updated: 0, unchanged: 12 });
  });

  it('stores a job whose End is before its Start, and says so in the run notes without calling it partial', async () => {
    const header = 'JobID|JobIDRaw|Cluster|User|State|ElapsedRaw|Start|End|AllocTRES';
    const file = path.join(dir, 'inverted.psv');
    writeFileSync(
      file,
      [
        header,
        '1|1|lab|ann|COMPLETED|60|2026-11-23T15:10:00|2026-11-23T15:11:00|cpu=1,mem=1G,node=1',
        '2|2|lab|ann|COMPLETED|3600|2026-11-23T15:50:00|2026-11-23T15:20:00|cpu=1,mem=1G,node=1',
        '',
      ].join('\n'),
    );
    const source = labFileSource(file);
    // The notes name times in APP_TZ, as pages do: the file is read in UTC, the site is in Bangkok.
    const run = await finishedRun(
      service([source], { timeZone: 'Asia/Bangkok' }).runOnce({ trigger: 'manual', window: WINDOW }),
    );
    expect(run).toMatchObject({ outcome: 'success', seen: 2, inserted: 2, skipped: 0, warned: 1 });
    expect(run.sourceNotes.warnings).toBe(
      '1 job(s) stored with End before Start (billed by elapsed time), first: job 2 of cluster lab (line 3): ' +
        'End 2026-11-23 22:20:00 (Asia/Bangkok) is before Start 2026-11-23 22:50:00 (Asia/Bangkok)',
    );
    expect(await jobRow('2')).toMatchObject({ elapsed_sec: 3600, is_terminal: true });
    const stored = await db.prisma.ingestionRun.findUniqueOrThrow({ where: { id: run.runId } });
    expect(stored.sourceNotes).toMatchObject({ warnings: run.sourceNotes.warnings });
  });

  it('stores a job in a state it does not know as not finished, and says so in the notes and the log', async () => {
    // A state a later Slurm adds, or a typo in a file: stored as not terminal, so never billed; the
    // run names the states and how many jobs, and that they stay unbilled, without deciding more.
    const header = 'JobID|JobIDRaw|Cluster|User|State|ElapsedRaw|Start|End|AllocTRES';
    const row = (id: number, state: string) =>
      `${id}|${id}|lab|ann|${state}|60|2026-11-23T15:10:00|2026-11-23T15:11:00|cpu=1,mem=1G,node=1`;
    const file = path.join(dir, 'unknown-states.psv');
    writeFileSync(
      file,
      [
        header,
        row(1, 'COMPLETED'),
        row(2, 'COMPLETD'),
        row(3, 'ARCHIVED'),
        row(4, 'COMPLETD'),
        row(5, 'SUSPENDED'),
        '',
      ].join('\n'),
    );
    const logged: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => logged.push(line) });
    const source = labFileSource(file);
    const run = await finishedRun(service([source], { logger }).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(run).toMatchObject({ outcome: 'success', seen: 5, inserted: 5, skipped: 0, unknownStateJobs: 3 });
    expect(run.sourceNotes.unknownStates).toBe(
      '3 job(s) stored in a state this app does not know (COMPLETD: 2, ARCHIVED: 1): ' +
        'stored as not finished, so they stay unbilled until Slurm reports them in a known state, first: job 2 of cluster lab (line 3)',
    );
    expect(await jobRow('2')).toMatchObject({ state: 'COMPLETD', is_terminal: false });
    expect(await jobRow('5')).toMatchObject({ state: 'SUSPENDED', is_terminal: false });
    const stored = await db.prisma.ingestionRun.findUniqueOrThrow({ where: { id: run.runId } });
    expect(stored.sourceNotes).toMatchObject({ unknownStates: run.sourceNotes.unknownStates });
    const warnings = logged.map((line) => JSON.parse(line)).filter((entry) => /unknown|does not know/.test(entry.msg));
    expect(warnings).toEqual([
      expect.objectContaining({
        level: 40,
        runId: run.runId,
        source: 'file',
        unknownStates: { COMPLETD: 2, ARCHIVED: 1 },
        msg: 'stored jobs in a state this app does not know; they stay unbilled',
      }),
    ]);
  });

  it("SLURM_CLUSTER in another case than Slurm's stores the jobs of a file without a Cluster column under Slurm's name, once", async () => {
    // sacct and slurmrestd give `lab` for ClusterName=LAB; the file's jobs were stored under `LAB`
    // beside them, and each job was billable twice.
    const end = '2026-11-23T15:11:00';
    const bare = path.join(dir, 'no-cluster.psv');
    writeFileSync(
      bare,
      `JobID|JobIDRaw|User|State|ElapsedRaw|Start|End|AllocTRES\n8|8|ann|COMPLETED|60|2026-11-23T15:10:00|${end}|cpu=1\n`,
    );
    const withCluster = path.join(dir, 'with-cluster.psv');
    writeFileSync(
      withCluster,
      `JobID|JobIDRaw|Cluster|User|State|ElapsedRaw|Start|End|AllocTRES\n8|8|lab|ann|COMPLETED|60|2026-11-23T15:10:00|${end}|cpu=1\n`,
    );
    const first = createSacctFileSource({ path: bare, timeZone: 'UTC', defaultCluster: 'LAB' });
    expect(await finishedRun(service([first]).runOnce({ trigger: 'manual', window: WINDOW }))).toMatchObject({
      inserted: 1,
    });
    const second = createSacctFileSource({ path: withCluster, timeZone: 'UTC', defaultCluster: 'LAB' });
    expect(await finishedRun(service([second]).runOnce({ trigger: 'manual', window: WINDOW }))).toMatchObject({
      inserted: 0,
    });
    const rows = await db.pool.query('SELECT cluster FROM slurm_jobs WHERE job_id = $1', ['8']);
    expect(rows.rows).toEqual([{ cluster: 'lab' }]);
  });

  it('when a job appears twice in one read, in batches written concurrently, the later record wins', async () => {
    const header = 'JobID|JobIDRaw|Cluster|User|State|ElapsedRaw|Start|End|AllocTRES';
    const row = (id: number, state: string, end: string) =>
      `${id}|${id}|lab|ann|${state}|60|2026-11-23T15:10:00|${end}|cpu=1,mem=1G,node=1`;
    const lines = [header, row(1, 'RUNNING', 'Unknown')];
    for (let id = 2; id <= 12; id++) lines.push(row(id, 'COMPLETED', '2026-11-23T15:11:00'));
    lines.push(row(1, 'COMPLETED', '2026-11-23T15:11:00'));
    const file = path.join(dir, 'twice.psv');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const source = labFileSource(file);
    const run = await finishedRun(service([source]).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(run).toMatchObject({ outcome: 'success', seen: 12, inserted: 12, updated: 0, unchanged: 0 });
    expect(await jobRow('1')).toMatchObject({ state: 'COMPLETED', is_terminal: true });
  });

  it('counts a job once however many of the slices of a long window it overlaps', async () => {
    // sacct reads a long window a day at a time, slurmrestd in shorter windows: a job that overlaps
    // two of them comes in both, as the same record. Here the capture's 12 jobs come in 3 slices.
    const { source: file } = fileSource('final/sacct-steps-extra.psv');
    const sliced: JobSource = {
      name: 'sacct',
      async *read(window) {
        for (let slice = 0; slice < 3; slice++) yield* file.read(window);
      },
    };
    const run = await finishedRun(service([sliced]).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(run).toMatchObject({ outcome: 'success', source: 'sacct', seen: 12, inserted: 12, updated: 0 });
    const row = await db.pool.query('SELECT seen FROM ingestion_runs WHERE id = $1', [run.runId]);
    expect(row.rows[0].seen).toBe(12);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM slurm_jobs')).rows[0].n).toBe(12);
  });

  /** A source that reads the given file sources one after another, as sacct reads a long window's days. */
  const slices = (...parts: JobSource[]): JobSource => ({
    name: 'sacct',
    async *read(window) {
      for (const part of parts) yield* part.read(window);
    },
  });

  it('counts each job once as new, updated or unchanged, however many slices it comes in', async () => {
    // The 12 jobs of the capture in 3 slices: each is new once; its later records are the same job, not
    // 24 unchanged ones (the admin page's and the CLI's "12 jobs, 12 new" beside a log's "unchanged: 24").
    const { source: file } = fileSource('final/sacct-steps-extra.psv');
    const run = await finishedRun(service([slices(file, file, file)]).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(run).toMatchObject({ outcome: 'success', seen: 12, inserted: 12, updated: 0, unchanged: 0 });
  });

  it('counts a job new in the run as new, though a later slice finds it changed', async () => {
    // Jobs 12 and 13 run when the first slice is read and have ended by the second.
    const live = fileSource('live/sacct-steps-extra.psv', 'live.psv').source;
    const final = fileSource('final/sacct-steps-extra.psv', 'final.psv').source;
    const run = await finishedRun(service([slices(live, final)]).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(run).toMatchObject({ seen: 12, inserted: 12, updated: 0, unchanged: 0 });
    expect(await jobRow('12')).toMatchObject({ state: 'CANCELLED' });
  });

  it('counts a stored job once as updated when one slice finds it unchanged and a later one changed', async () => {
    const live = fileSource('live/sacct-steps-extra.psv', 'live.psv').source;
    const final = fileSource('final/sacct-steps-extra.psv', 'final.psv').source;
    await finishedRun(service([live]).runOnce({ trigger: 'manual', window: WINDOW }));
    const run = await finishedRun(service([slices(live, final, final)]).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(run).toMatchObject({ seen: 12, inserted: 0, updated: 2, unchanged: 10 });
    const again = await finishedRun(service([slices(live, final)]).runOnce({ trigger: 'manual', window: WINDOW }));
    // Read live first, jobs 12 and 13 go back to running, then to ended: updated, each once.
    expect(again).toMatchObject({ seen: 12, inserted: 0, updated: 2, unchanged: 10 });
  });

  it('counts once a job written by a source that then failed and again by the one that answered', async () => {
    const { source: file } = fileSource('final/sacct-steps-extra.psv');
    const failing: JobSource = {
      name: 'slurmrestd',
      async *read(window) {
        yield* file.read(window);
        throw new Error('connection reset');
      },
    };
    const run = await finishedRun(service([failing, file]).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(run).toMatchObject({ outcome: 'success', source: 'file', seen: 12, inserted: 12, updated: 0, unchanged: 0 });
  });

  it('counts a malformed job once however many slices it comes in', async () => {
    const file = path.join(dir, 'damaged-sliced.psv');
    const lines = readFileSync(path.join(CAPTURES, 'final/sacct-steps-extra.psv'), 'utf8').split('\n');
    lines[3] = lines[3]?.replace('|16|00:05.694|', '|x16|00:05.694|') ?? '';
    writeFileSync(file, lines.join('\n'));
    const damaged = labFileSource(file);
    const run = await finishedRun(
      service([slices(damaged, damaged, damaged)]).runOnce({ trigger: 'manual', window: WINDOW }),
    );
    expect(run).toMatchObject({ outcome: 'partial', seen: 11, inserted: 11, unchanged: 0, skipped: 1 });
    expect(run.sourceNotes.skipped).toBe('1 job(s) skipped, first: job 2 of cluster lab (line 4): not a count: "x16"');
    const stored = await db.prisma.ingestionRun.findUniqueOrThrow({ where: { id: run.runId } });
    expect(stored).toMatchObject({ seen: 11, inserted: 11, skipped: 1 });
  });

  it.each([
    ['before', true],
    ['after', false],
  ])(
    'counts a job skipped in a slice %s the one it was stored from as stored, not skipped',
    async (_order, damagedFirst) => {
      const file = path.join(dir, 'damaged-one-slice.psv');
      const lines = readFileSync(path.join(CAPTURES, 'final/sacct-steps-extra.psv'), 'utf8').split('\n');
      lines[3] = lines[3]?.replace('|16|00:05.694|', '|x16|00:05.694|') ?? '';
      writeFileSync(file, lines.join('\n'));
      const damaged = labFileSource(file);
      const { source: whole } = fileSource('final/sacct-steps-extra.psv');
      const parts = damagedFirst ? [damaged, whole] : [whole, damaged];
      const run = await finishedRun(service([slices(...parts)]).runOnce({ trigger: 'manual', window: WINDOW }));
      // 12 distinct jobs: new + updated + unchanged + skipped.
      expect(run).toMatchObject({ outcome: 'success', seen: 12, inserted: 12, updated: 0, unchanged: 0, skipped: 0 });
      expect(run.sourceNotes.skipped).toBeUndefined();
      expect(await jobRow('2')).toMatchObject({ total_cpu_sec: '5.693' });
    },
  );

  it('counts as two the skipped jobs of two clusters that share a JobID, and names the one still skipped', async () => {
    const header = 'JobID|JobIDRaw|Cluster|User|State|ElapsedRaw|Start|End|AllocTRES';
    const row = (cluster: string, elapsed: string) =>
      `7|7|${cluster}|ann|COMPLETED|${elapsed}|2026-11-23T15:10:00|2026-11-23T15:11:00|cpu=1,mem=1G,node=1`;
    const file = path.join(dir, 'two-clusters.psv');
    writeFileSync(file, [header, row('lab', 'x'), row('other', 'y'), ''].join('\n'));
    const bad = labFileSource(file);
    const run = await finishedRun(service([slices(bad, bad)]).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(run).toMatchObject({ outcome: 'partial', seen: 0, skipped: 2 });
    // Both are job 7: the notes say of which cluster, or the admin cannot tell which one to look for.
    expect(run.sourceNotes.skipped).toBe('2 job(s) skipped, first: job 7 of cluster lab (line 2): not a count: "x"');
    // Job 7 of lab read whole in a later slice is stored: the other cluster's is the one the notes name.
    const good = path.join(dir, 'lab-whole.psv');
    writeFileSync(good, [header, row('lab', '60'), ''].join('\n'));
    const whole = labFileSource(good);
    const later = await finishedRun(service([slices(bad, whole)]).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(later).toMatchObject({ outcome: 'partial', seen: 1, inserted: 1, skipped: 1 });
    expect(later.sourceNotes.skipped).toBe(
      '1 job(s) skipped, first: job 7 of cluster other (line 3): not a count: "y"',
    );
  });

  it('counts a job in an unknown state, or with End before Start, once however many slices it comes in', async () => {
    const header = 'JobID|JobIDRaw|Cluster|User|State|ElapsedRaw|Start|End|AllocTRES';
    const file = path.join(dir, 'odd-sliced.psv');
    writeFileSync(
      file,
      [
        header,
        '1|1|lab|ann|COMPLETD|60|2026-11-23T15:10:00|2026-11-23T15:11:00|cpu=1,mem=1G,node=1',
        '2|2|lab|ann|COMPLETED|3600|2026-11-23T15:50:00|2026-11-23T15:20:00|cpu=1,mem=1G,node=1',
        '',
      ].join('\n'),
    );
    const odd = labFileSource(file);
    const run = await finishedRun(service([slices(odd, odd, odd)]).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(run).toMatchObject({ seen: 2, inserted: 2, unknownStateJobs: 1, warned: 1 });
    expect(run.sourceNotes.unknownStates).toMatch(
      /^1 job\(s\) stored in a state this app does not know \(COMPLETD: 1\)/,
    );
    expect(run.sourceNotes.warnings).toMatch(/^1 job\(s\) stored with End before Start/);
  });

  it('does not count as stored in an unknown state a job skipped when it was written', async () => {
    // A later job that reused a stored job's id is stored as `<id>@<submit>`; a 28-digit id then no
    // longer fits its column, and the record is skipped: it was still counted as stored in its state.
    const id = '1234567890123456789012345678';
    const header = 'JobID|JobIDRaw|Cluster|User|State|ElapsedRaw|Submit|Start|End|AllocTRES';
    const row = (state: string, day: string) =>
      `${id}|${id}|lab|ann|${state}|60|${day}T15:09:00|${day}T15:10:00|${day}T15:11:00|cpu=1,mem=1G,node=1`;
    const earlier = path.join(dir, 'earlier.psv');
    writeFileSync(earlier, [header, row('COMPLETED', '2026-11-20'), ''].join('\n'));
    const later = path.join(dir, 'later.psv');
    writeFileSync(later, [header, row('COMPLETD', '2026-11-23'), ''].join('\n'));
    const read = (file: string) => labFileSource(file);
    const earlierWindow = { start: new Date('2026-11-20T15:00:00Z'), end: new Date('2026-11-20T16:00:00Z') };
    await finishedRun(service([read(earlier)]).runOnce({ trigger: 'manual', window: earlierWindow }));
    const run = await finishedRun(service([read(later)]).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(run).toMatchObject({ outcome: 'partial', seen: 0, skipped: 1, unknownStateJobs: 0 });
    expect(run.sourceNotes.unknownStates).toBeUndefined();
  });

  it('skips an unchanged file when a completed run already reached past the time it was written', async () => {
    const { source, file } = fileSource('final/sacct-steps-extra.psv');
    utimesSync(file, WRITTEN, WRITTEN);
    await finishedRun(service([source]).runOnce({ trigger: 'manual', window: WINDOW }));
    const later = { start: new Date('2026-11-23T15:30:00Z'), end: NOW };
    const run = await finishedRun(service([source]).runOnce({ trigger: 'schedule', window: later }));
    expect(run).toMatchObject({ outcome: 'success', seen: 0, inserted: 0, skipped: 0 });
    expect(run.sourceNotes.file).toBe('answered: file unchanged since run #1, nothing new');
  });

  it('notes that a file written before the window ended was read up to then, in APP_TZ', async () => {
    const { source, file } = fileSource('final/sacct-steps-extra.psv');
    utimesSync(file, WRITTEN, WRITTEN);
    const run = await finishedRun(
      service([source], { timeZone: 'Asia/Bangkok' }).runOnce({ trigger: 'manual', window: WINDOW }),
    );
    expect(run.window).toEqual({ start: WINDOW.start, end: WRITTEN });
    expect(run.sourceNotes.window).toBe(
      'read up to 2026-11-23 22:50:00 (Asia/Bangkok), when the file was last written ' +
        '(it holds no job that ended later): the next run reads from there',
    );
  });

  it('says when the file that answered the newest run was written, also when that run found it unchanged', async () => {
    // Every run of a file nothing refreshes succeeds: the file's age is what tells jobs stopped coming.
    const { source, file } = fileSource('final/sacct-steps-extra.psv');
    utimesSync(file, WRITTEN, WRITTEN);
    await finishedRun(service([source]).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(await findLastIngestionSuccess(db, 5000)).toMatchObject({ fileModifiedAt: WRITTEN });
    const later = { start: new Date('2026-11-23T15:30:00Z'), end: NOW };
    const unchanged = await finishedRun(service([source]).runOnce({ trigger: 'schedule', window: later }));
    expect(unchanged.sourceNotes.file).toBe('answered: file unchanged since run #1, nothing new');
    expect(await findLastIngestionSuccess(db, 5000)).toMatchObject({ fileModifiedAt: WRITTEN });
  });

  it('reads the jobs a file written again adds, though the runs that found it unchanged went on past them', async () => {
    // A file exported now and then (cron: sacct > file): between two exports each run finds it unchanged
    // and succeeds. Those runs moved the window on to when they ran, so once the file was written again,
    // the next run read only INGEST_OVERLAP_SEC before the last one: a job that ended after the first
    // export and more than that before the last run was in no window read, never stored nor billed.
    const lines = readFileSync(path.join(CAPTURES, 'final/sacct-steps-extra.psv'), 'utf8').split('\n');
    const job13 = lines.findIndex((line) => line.split('|')[1] === '13');
    expect(job13).toBeGreaterThan(1);
    const file = path.join(dir, 'export.psv');
    // Exported at 15:45:30, before job 13 ended (15:45:59).
    writeFileSync(file, `${lines.slice(0, job13).join('\n')}\n`);
    const firstExport = new Date('2026-11-23T15:45:30Z');
    utimesSync(file, firstExport, firstExport);
    let clock = new Date('2026-11-23T15:46:00Z');
    const chain = service([labFileSource(file)], { now: () => clock });
    expect(await finishedRun(chain.runOnce({ trigger: 'schedule' }))).toMatchObject({ outcome: 'success', seen: 11 });
    for (const at of ['2026-11-23T16:00:00Z', '2026-11-23T16:20:00Z']) {
      clock = new Date(at);
      const run = await finishedRun(chain.runOnce({ trigger: 'schedule' }));
      expect(run.sourceNotes.file).toMatch(/^answered: file unchanged since run #\d+, nothing new$/);
    }
    // Exported again at 16:30:30, job 13 in it now.
    writeFileSync(file, lines.join('\n'));
    const secondExport = new Date('2026-11-23T16:30:30Z');
    utimesSync(file, secondExport, secondExport);
    clock = new Date('2026-11-23T16:31:00Z');
    await finishedRun(chain.runOnce({ trigger: 'schedule' }));
    expect(await jobRow('13')).toMatchObject({ state: 'COMPLETED', source: 'file' });
  });

  it('reads an unchanged file again when the run that covered the window ended before the file was written', async () => {
    // The file's modification time is now, after WINDOW: only the docs' rule may skip it.
    const { source } = fileSource('final/sacct-steps-extra.psv');
    await finishedRun(service([source]).runOnce({ trigger: 'backfill', window: WINDOW }));
    const again = await finishedRun(service([source]).runOnce({ trigger: 'backfill', window: WINDOW }));
    expect(again).toMatchObject({ outcome: 'success', seen: 12, unchanged: 12 });
    expect(again.sourceNotes.file).toBe('answered');
  });

  it('with force, reads an unchanged file that the shortcut would skip', async () => {
    const { source, file } = fileSource('final/sacct-steps-extra.psv');
    utimesSync(file, WRITTEN, WRITTEN);
    await finishedRun(service([source]).runOnce({ trigger: 'backfill', window: WINDOW }));
    const forced = await finishedRun(service([source]).runOnce({ trigger: 'backfill', window: WINDOW, force: true }));
    expect(forced).toMatchObject({ outcome: 'success', seen: 12, unchanged: 12 });
    expect(forced.sourceNotes).toMatchObject({ file: 'answered', fileFingerprint: expect.any(String) });
  });

  it('a run that skips an unchanged file with malformed records stays partial and counts them', async () => {
    const file = path.join(dir, 'damaged.psv');
    const lines = readFileSync(path.join(CAPTURES, 'final/sacct-steps-extra.psv'), 'utf8').split('\n');
    lines[3] = lines[3]?.replace('|16|00:05.694|', '|x16|00:05.694|') ?? '';
    writeFileSync(file, lines.join('\n'));
    utimesSync(file, WRITTEN, WRITTEN);
    const source = labFileSource(file);
    await finishedRun(service([source]).runOnce({ trigger: 'manual', window: WINDOW }));
    const later = { start: new Date('2026-11-23T15:30:00Z'), end: NOW };
    const run = await finishedRun(service([source]).runOnce({ trigger: 'schedule', window: later }));
    expect(run).toMatchObject({ outcome: 'partial', seen: 0, skipped: 1 });
    expect(run.sourceNotes.file).toBe(
      'answered: file unchanged since run #1, nothing new; its 1 malformed record(s) are still skipped',
    );
    // The next skip relies on that run, and still knows.
    const next = await finishedRun(service([source]).runOnce({ trigger: 'schedule', window: later }));
    expect(next).toMatchObject({ outcome: 'partial', skipped: 1 });
    expect(next.sourceNotes.file).toMatch(/^answered: file unchanged since run #2,/);
  });

  it('still reads an unchanged file for a later window the previous run did not cover (backfill days)', async () => {
    const { source } = fileSource('final/sacct-steps-extra.psv');
    const dayBefore = { start: new Date('2026-11-22T00:00:00Z'), end: new Date('2026-11-23T00:00:00Z') };
    const day = { start: new Date('2026-11-23T00:00:00Z'), end: new Date('2026-11-24T00:00:00Z') };
    expect(await finishedRun(service([source]).runOnce({ trigger: 'backfill', window: dayBefore }))).toMatchObject({
      seen: 0,
    });
    expect(await finishedRun(service([source]).runOnce({ trigger: 'backfill', window: day }))).toMatchObject({
      seen: 12,
      inserted: 12,
    });
  });

  it('uses [high-water mark - overlap, now] when no window is given', async () => {
    const { source } = fileSource('final/sacct-steps-extra.psv');
    const first = await finishedRun(service([source]).runOnce({ trigger: 'schedule' }));
    expect(first.window).toEqual({ start: new Date(NOW.getTime() - 86_400_000), end: NOW });
    const second = await finishedRun(service([source]).runOnce({ trigger: 'schedule' }));
    expect(second.window).toEqual({ start: new Date(NOW.getTime() - 600_000), end: NOW });
  });
});

describe('memory GB-hours of the steps, as stored and as billed', () => {
  it('stores the exact sum, half a millionth rounded up, and re-reading it changes nothing', async () => {
    // 7605964K x 300 s + 695042K x 120 s = 0.6265625 GiB-hours exactly. Summed as floats it was
    // stored as 0.626562, and the job billed a millionth of a GB-hour short.
    const header = 'JobID|JobIDRaw|User|State|ElapsedRaw|Start|End|AllocTRES|AveRSS';
    const file = path.join(dir, 'half-millionth.psv');
    writeFileSync(
      file,
      [
        header,
        '61|61|ann|COMPLETED|420|2026-11-23T15:20:00|2026-11-23T15:27:00|cpu=1,mem=8G,node=1|',
        '61.batch|61.batch||COMPLETED|300|2026-11-23T15:20:00|2026-11-23T15:25:00||7605964K',
        '61.0|61.0||COMPLETED|120|2026-11-23T15:25:00|2026-11-23T15:27:00||695042K',
        '',
      ].join('\n'),
    );
    const source = labFileSource(file);
    await finishedRun(service([source]).runOnce({ trigger: 'manual', window: WINDOW }));
    const stored = await db.pool.query('SELECT step_mem_gb_hours::text AS mem FROM slurm_jobs WHERE job_id = $1', [
      '61',
    ]);
    expect(stored.rows).toEqual([{ mem: '0.626563' }]);
    const again = await finishedRun(service([source]).runOnce({ trigger: 'manual', window: WINDOW, force: true }));
    expect(again).toMatchObject({ seen: 1, unchanged: 1, updated: 0 });
  });
});

describe('a file cut short (copied or read while still being written)', () => {
  it('is not read at all: the run fails saying why, nothing is stored, and the whole file is read once complete', async () => {
    const header = 'JobID|JobIDRaw|User|State|ElapsedRaw|Start|End|AllocTRES|AveRSS';
    const lines = [
      header,
      '71|71|ann|COMPLETED|600|2026-11-23T15:20:00|2026-11-23T15:30:00|cpu=1,mem=1G,node=1|',
      '72|72|ann|COMPLETED|600|2026-11-23T15:20:00|2026-11-23T15:30:00|cpu=1,mem=8G,node=1|',
      '72.batch|72.batch||COMPLETED|600|2026-11-23T15:20:00|2026-11-23T15:30:00||7605964K',
    ];
    const file = path.join(dir, 'cut-short.psv');
    // Cut inside the last AveRSS: the line still has all its fields, with 76 bytes where 7605964K were.
    writeFileSync(file, `${lines.join('\n')}\n`.slice(0, -8));
    const source = labFileSource(file);

    const run = await finishedRun(service([source]).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(run).toMatchObject({ outcome: 'failed', seen: 0, inserted: 0 });
    expect(run.error).toBe(
      `file: FALLBACK_CSV ${file} does not end with a newline, as sacct output does: its last line may be cut short ` +
        '(the file copied or read while still being written), so none of it was read. ' +
        'The next run reads it once it is whole (if it is whole, add the missing newline at its end)',
    );
    expect(await db.prisma.slurmJob.count()).toBe(0);

    writeFileSync(file, `${lines.join('\n')}\n`);
    const whole = await finishedRun(service([source]).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(whole).toMatchObject({ outcome: 'success', seen: 2, inserted: 2 });
    const stored = await db.pool.query('SELECT step_mem_gb_hours::text AS mem FROM slurm_jobs WHERE job_id = $1', [
      '72',
    ]);
    expect(stored.rows).toEqual([{ mem: '1.208935' }]);
  });
});

describe('a file exported with sacct -X (job rows alone, no step rows)', () => {
  // sacct -X reads no steps and prints TotalCPU 0 for every job (the lab's final/sacct-X.psv): under the
  // used CPU basis, where a TotalCPU of 0 is a real zero, every job of it was billed 0 CPU-hours.
  const copy = (capture: string) => {
    const file = path.join(dir, 'allocations.psv');
    copyFileSync(path.join(CAPTURES, capture), file);
    return file;
  };
  const source = (file: string, cpuBasis: 'used' | 'allocated') =>
    createSacctFileSource({ path: file, timeZone: 'UTC', defaultCluster: 'lab', cpuBasis });

  it('is refused under the used basis: the run fails saying why and what to run, nothing is stored', async () => {
    const file = copy('final/sacct-X.psv');
    const run = await finishedRun(service([source(file, 'used')]).runOnce({ trigger: 'manual', window: WINDOW }));
    // It used to succeed, storing 12 jobs whose CPU time was all 0, billed as none.
    expect(run).toMatchObject({ outcome: 'failed', seen: 0, inserted: 0 });
    expect(run.error).toBe(
      `file: FALLBACK_CSV ${file} has no step rows (sacct -X / --allocations output?): sacct prints TotalCPU 0 ` +
        'for every job there, so under PRICING_CPU_BASIS=used its 12 job(s) that ran (first: job 1) ' +
        'would be billed 0 CPU-hours. None of it was read. Export it again without -X ' +
        '(sacct --parsable2 --duplicates --allusers --starttime ... --endtime ..., which prints each job with its steps), ' +
        'or bill allocated CPU time (PRICING_CPU_BASIS=allocated)',
    );
    const record = await db.pool.query('SELECT outcome, error FROM ingestion_runs ORDER BY id DESC LIMIT 1');
    expect(record.rows).toEqual([{ outcome: 'failed', error: run.error }]);
    expect(await db.prisma.slurmJob.count()).toBe(0);
  });

  it('is read under the allocated basis, which bills allocated CPUs x elapsed and not TotalCPU', async () => {
    const run = await finishedRun(
      service([source(copy('final/sacct-X.psv'), 'allocated')]).runOnce({ trigger: 'manual', window: WINDOW }),
    );
    expect(run).toMatchObject({ outcome: 'success', inserted: 12 });
  });

  it('under the allocated basis its TotalCPU is stored as not known, not as a 0 it never measured', async () => {
    await finishedRun(
      service([source(copy('final/sacct-X.psv'), 'allocated')]).runOnce({ trigger: 'manual', window: WINDOW }),
    );
    // It was stored as 0: a later switch to the used basis billed those jobs 0 CPU-hours, where a TotalCPU
    // not known is priced from CPUTimeRAW (docs/pricing.md).
    expect(await jobRow('1')).toMatchObject({ total_cpu_sec: null, elapsed_sec: 20 });
    const cpuTime = await db.pool.query('SELECT cpu_time_sec::text FROM slurm_jobs WHERE job_id = $1', ['2']);
    expect(cpuTime.rows).toEqual([{ cpu_time_sec: '32' }]);
  });

  it('under the allocated basis it keeps the TotalCPU a read with the steps stored', async () => {
    await finishedRun(
      service([source(copy('final/sacct-steps-extra.psv'), 'allocated')]).runOnce({
        trigger: 'manual',
        window: WINDOW,
      }),
    );
    await finishedRun(
      service([source(copy('final/sacct-X.psv'), 'allocated')]).runOnce({ trigger: 'manual', window: WINDOW }),
    );
    expect(await jobRow('2')).toMatchObject({ total_cpu_sec: '5.693' });
  });

  describe('appended to an export with steps (a cron job that appends each export to FALLBACK_CSV)', () => {
    // The file has step rows (the first export's), so it passed the check, and the jobs of the -X export
    // after it were stored with TotalCPU 0: job 2's 5.693 s became 0, billed 0 CPU-hours under the used basis.
    const appended = () => {
      const file = path.join(dir, 'appended.psv');
      writeFileSync(
        file,
        readFileSync(path.join(CAPTURES, 'final/sacct-steps-extra.psv'), 'utf8') +
          readFileSync(path.join(CAPTURES, 'final/sacct-X.psv'), 'utf8'),
      );
      return file;
    };
    const firstLines = readFileSync(path.join(CAPTURES, 'final/sacct-steps-extra.psv'), 'utf8').split('\n').length;

    it('is refused under the used basis, naming the line the -X output begins at', async () => {
      const file = appended();
      const run = await finishedRun(service([source(file, 'used')]).runOnce({ trigger: 'manual', window: WINDOW }));
      expect(run).toMatchObject({ outcome: 'failed' });
      expect(run.error).toBe(
        `file: FALLBACK_CSV ${file} has no step rows in the sacct output from line ${firstLines} (an export made with ` +
          'sacct -X / --allocations joined or appended to it?): sacct prints TotalCPU 0 for every job there, so under ' +
          'PRICING_CPU_BASIS=used its 12 job(s) that ran (first: job 1) would be billed 0 CPU-hours. None of them was ' +
          'stored. Export that part again without -X, or bill allocated CPU time (PRICING_CPU_BASIS=allocated)',
      );
      expect(await jobRow('2')).not.toMatchObject({ total_cpu_sec: '0.000' });
    });

    it('is read under the allocated basis, the -X part without its TotalCPU: job 2 keeps its 5.693 s', async () => {
      const run = await finishedRun(
        service([source(appended(), 'allocated')]).runOnce({ trigger: 'manual', window: WINDOW }),
      );
      expect(run).toMatchObject({ outcome: 'success' });
      expect(await jobRow('2')).toMatchObject({ total_cpu_sec: '5.693' });
    });
  });

  it('sacct output with its step rows is read under the used basis, as before', async () => {
    const run = await finishedRun(
      service([source(copy('final/sacct-steps-extra.psv'), 'used')]).runOnce({ trigger: 'manual', window: WINDOW }),
    );
    expect(run).toMatchObject({ outcome: 'success', inserted: 12 });
    expect(await jobRow('2')).toMatchObject({ total_cpu_sec: '5.693' });
  });
});

describe('sacct run with -X (a SACCT_PATH wrapper that adds it), as the fallback behind slurmrestd', () => {
  // The file source refuses an -X file under the used basis; the sacct source read the same output
  // (job rows alone, TotalCPU 0) on every run, first or incremental, and stored 0 CPU-hours for each job.
  const FAKE_SACCT = path.resolve(import.meta.dirname, '../../fixtures/slurm/fake-sacct.mjs');
  const wrapperAddingX = () => {
    const link = path.join(dir, 'sacct-ok');
    if (!existsSync(link)) symlinkSync(FAKE_SACCT, link);
    const script = path.join(dir, 'sacct-with-X');
    writeFileSync(script, `#!/bin/bash\nexec '${link}' -X "$@"\n`);
    chmodSync(script, 0o755);
    return script;
  };
  const sacctX = (sacctPath: string, cpuBasis: 'used' | 'allocated') =>
    createSacctSource({
      sacctPath,
      timeZone: 'UTC',
      cluster: undefined,
      defaultCluster: 'lab',
      inheritedEnvironment: process.env,
      timeoutMs: 10_000,
      cpuBasis,
    });
  /** slurmrestd that answers (with no job) until `fails` is set, then fails as when it is down. */
  const restDown = { fails: false };
  const rest: JobSource = {
    name: 'slurmrestd',
    // biome-ignore lint/correctness/useYield: an answer without jobs, or a failure
    async *read() {
      if (restDown.fails) throw new Error('slurmrestd cannot be reached');
    },
  };
  const refusal = (sacctPath: string) =>
    `sacct: SACCT_PATH ${sacctPath} printed no step rows (does it run sacct with -X / --allocations?): sacct prints ` +
    'TotalCPU 0 for every job then, so under PRICING_CPU_BASIS=used its 12 job(s) that ran (first: job 1) would be ' +
    'billed 0 CPU-hours. None of them was stored. Have SACCT_PATH run sacct with the arguments it is given and ' +
    'without -X (they ask for each job with its steps), or bill allocated CPU time (PRICING_CPU_BASIS=allocated)';

  it.each([
    ['the first run (INGEST_LOOKBACK_DAYS back)', false],
    ['an incremental run after slurmrestd answered', true],
  ])('is refused under the used basis in %s: nothing is stored', async (_name, isIncremental) => {
    const sacctPath = wrapperAddingX();
    let clock = new Date('2026-11-23T15:30:00Z');
    const ingest = service([rest, sacctX(sacctPath, 'used')], { now: () => clock });
    if (isIncremental) {
      restDown.fails = false;
      expect(await finishedRun(ingest.runOnce({ trigger: 'schedule' }))).toMatchObject({ source: 'slurmrestd' });
      clock = new Date('2026-11-23T15:50:00Z');
    }
    restDown.fails = true;
    const run = await finishedRun(ingest.runOnce({ trigger: 'schedule' }));
    expect(run.window.start.getTime()).toBeLessThan(Date.parse('2026-11-23T15:40:00Z'));
    // It used to succeed via sacct, storing the 12 jobs with a TotalCPU of 0: billed no CPU time.
    expect(run).toMatchObject({ outcome: 'failed', seen: 0, inserted: 0 });
    expect(run.error).toBe(`slurmrestd: slurmrestd cannot be reached; ${refusal(sacctPath)}`);
    expect(await db.prisma.slurmJob.count()).toBe(0);

    // The next run is refused the same way: each sacct output is checked, not a run's first alone.
    clock = new Date('2026-11-23T15:55:00Z');
    const next = await finishedRun(ingest.runOnce({ trigger: 'schedule' }));
    expect(next).toMatchObject({ outcome: 'failed', inserted: 0 });
    expect(await db.prisma.slurmJob.count()).toBe(0);
  });

  it('under the allocated basis it is read, its TotalCPU stored as not known rather than 0', async () => {
    restDown.fails = true;
    const run = await finishedRun(
      service([rest, sacctX(wrapperAddingX(), 'allocated')]).runOnce({ trigger: 'manual', window: WINDOW }),
    );
    expect(run).toMatchObject({ outcome: 'success', source: 'sacct', inserted: 12 });
    expect(await jobRow('1')).toMatchObject({ total_cpu_sec: null, elapsed_sec: 20 });
  });

  it('sacct output with its step rows (no -X) is read under the used basis, as before', async () => {
    const link = path.join(dir, 'sacct-ok');
    if (!existsSync(link)) symlinkSync(FAKE_SACCT, link);
    restDown.fails = true;
    const run = await finishedRun(service([rest, sacctX(link, 'used')]).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(run).toMatchObject({ outcome: 'success', source: 'sacct', inserted: 12 });
    expect(await jobRow('2')).toMatchObject({ total_cpu_sec: '5.693' });
  });
});

describe('switching the source', () => {
  // The same window of the real 22.05 lab, through the sacct source's arguments and through v0.0.38.
  const switchDir = path.join(CAPTURES, 'switch');
  const window = { start: new Date('2026-12-03T04:42:00Z'), end: new Date('2026-12-03T04:48:30Z') };
  const switchSacct = () => labFileSource(path.join(switchDir, 'sacct.psv'));
  const switchRest = () => labRestSource(path.join(switchDir, 'rest-dbv0.0.38-jobs.json'));

  it('between slurmrestd and sacct rewrites no job: both read the same jobs as the same record', async () => {
    const sacct = switchSacct();
    const rest = switchRest();
    const exitCodeOfFailedJob = async () =>
      (await db.pool.query("SELECT exit_code FROM slurm_jobs WHERE job_id = '2'")).rows[0]?.exit_code;
    const first = await finishedRun(service([sacct]).runOnce({ trigger: 'manual', window }));
    expect(first).toMatchObject({ outcome: 'success', inserted: 23 });
    expect(await exitCodeOfFailedJob()).toBe('1:0');
    const toRest = await finishedRun(service([rest]).runOnce({ trigger: 'manual', window, force: true }));
    expect(toRest).toMatchObject({ outcome: 'success', seen: 23, inserted: 0, updated: 0, unchanged: 23 });
    // 22.05's slurmrestd cannot say the exit code (it says SUCCESS): sacct's stays.
    expect(await exitCodeOfFailedJob()).toBe('1:0');
    const back = await finishedRun(service([sacct]).runOnce({ trigger: 'manual', window, force: true }));
    expect(back).toMatchObject({ outcome: 'success', seen: 23, inserted: 0, updated: 0, unchanged: 23 });
  });

  it('from slurmrestd 22.05 to sacct adds the exit codes once, and changes nothing after', async () => {
    const first = await finishedRun(service([switchRest()]).runOnce({ trigger: 'manual', window }));
    expect(first).toMatchObject({ outcome: 'success', inserted: 23 });
    expect((await db.pool.query('SELECT count(exit_code)::int AS n FROM slurm_jobs')).rows[0].n).toBe(0);
    const toSacct = await finishedRun(service([switchSacct()]).runOnce({ trigger: 'manual', window, force: true }));
    expect(toSacct).toMatchObject({ outcome: 'success', seen: 23, inserted: 0, updated: 23 });
    expect((await db.pool.query('SELECT count(exit_code)::int AS n FROM slurm_jobs')).rows[0].n).toBe(23);
    const back = await finishedRun(service([switchRest()]).runOnce({ trigger: 'manual', window, force: true }));
    expect(back).toMatchObject({ outcome: 'success', seen: 23, inserted: 0, updated: 0, unchanged: 23 });
  });
});

describe('jobs sacct stored in the server zone, not APP_TZ (before sacct ran with TZ=APP_TZ)', () => {
  it('are the same jobs when read again with the right times: corrected, not stored and billed twice', async () => {
    // The capture was printed in UTC; read as Asia/Bangkok it is what sacct on a UTC host gave a
    // server with APP_TZ=Asia/Bangkok: every time 7 hours early.
    const wide = { start: new Date('2026-11-23T00:00:00Z'), end: new Date('2026-11-24T00:00:00Z') };
    const file = path.join(dir, 'sacct.psv');
    copyFileSync(path.join(CAPTURES, 'final/sacct-steps-extra.psv'), file);
    const shifted = createSacctFileSource({ path: file, timeZone: 'Asia/Bangkok', defaultCluster: 'lab' });
    const right = labFileSource(file);
    expect(await finishedRun(service([shifted]).runOnce({ trigger: 'manual', window: wide }))).toMatchObject({
      inserted: 12,
    });
    const again = await finishedRun(service([right]).runOnce({ trigger: 'manual', window: wide, force: true }));
    expect(again).toMatchObject({ outcome: 'success', inserted: 0, updated: 12 });
    // Said, as the times moved: read after APP_TZ changed (or the zone the file is written in), every
    // unbilled job's times moved by the difference, and the run said only "12 updated".
    const moved =
      /^12 job\(s\) read with all their times 7 h later than stored, first: job \S+ of cluster lab, ended (.+?) \(UTC\), now (.+?) \(UTC\): stored as read now, so they may fall on other days\. Was APP_TZ, or the zone the sacct output is written in, changed\? \(docs\/ingestion\.md, Reused job ids\)$/.exec(
        String(again.sourceNotes.moved),
      );
    expect(moved, String(again.sourceNotes.moved)).not.toBeNull();
    const [, ended, now] = moved as RegExpExecArray;
    expect(Date.parse(`${now}Z`) - Date.parse(`${ended}Z`)).toBe(7 * 3_600_000);
    const rows = await db.pool.query<{ job_id: string; end_at: Date }>(
      `SELECT job_id, end_at FROM slurm_jobs WHERE job_id = '1'`,
    );
    expect(rows.rows).toEqual([{ job_id: '1', end_at: new Date('2026-11-23T15:41:03Z') }]);
    expect(await db.prisma.slurmJob.count()).toBe(12);
  });
});

describe('the high-water mark', () => {
  it('a backfill of later days, today included, does not move it: the next scheduled run reads from the last one', async () => {
    // One job that ended while the scheduler was not running (its last run reached T0).
    const file = path.join(dir, 'gap.psv');
    writeFileSync(
      file,
      'JobID|JobIDRaw|User|State|ElapsedRaw|Start|End|AllocTRES\n' +
        '901|901|ann|COMPLETED|600|2026-11-21T09:50:00|2026-11-21T10:00:00|cpu=1,mem=1G,node=1\n',
    );
    const written = new Date('2026-11-21T10:05:00Z');
    utimesSync(file, written, written);
    const source = labFileSource(file);
    const T0 = new Date('2026-11-20T12:00:00Z');
    await finishedRun(service([source], { now: () => T0 }).runOnce({ trigger: 'schedule' }));
    // The operator backfills the last two days, today (NOW's day) included.
    for (const start of ['2026-11-22T00:00:00Z', '2026-11-23T00:00:00Z']) {
      const window = { start: new Date(start), end: new Date(new Date(start).getTime() + 86_400_000) };
      await finishedRun(service([source]).runOnce({ trigger: 'backfill', window }));
    }
    const next = await finishedRun(service([source]).runOnce({ trigger: 'schedule' }));
    // Read up to when the file was written (it holds no job that ended later), from the last scheduled run.
    expect(next.window).toEqual({ start: new Date(T0.getTime() - 600_000), end: written });
    expect(await jobRow('901')).toMatchObject({ state: 'COMPLETED', end_at: new Date('2026-11-21T10:00:00Z') });
  });
});

describe('after an outage (failed runs)', () => {
  it('re-reads the outage for INGEST_OVERLAP_SEC after the first run that succeeds, for records that arrive late', async () => {
    // slurmdbd was down from T0 for an hour: the runs failed, and slurmctld kept the records of the
    // jobs that ended meanwhile and sent them once slurmdbd was back, after the first run that
    // succeeded again. Job 911 ended 20 minutes into the outage and reached slurmdbd after that run:
    // the next run read only INGEST_OVERLAP_SEC (10 min) before the last one, and never read it.
    const file = path.join(dir, 'outage.psv');
    const header = 'JobID|JobIDRaw|User|State|ElapsedRaw|Start|End|AllocTRES\n';
    const early = '910|910|ann|COMPLETED|600|2026-11-23T13:50:00|2026-11-23T14:00:00|cpu=1,mem=1G,node=1\n';
    const late = '911|911|ann|COMPLETED|600|2026-11-23T15:10:00|2026-11-23T15:20:00|cpu=1,mem=1G,node=1\n';
    writeFileSync(file, header + early);
    const fileSource = labFileSource(file);
    const down: JobSource = {
      name: 'sacct',
      // biome-ignore lint/correctness/useYield: a source that fails before yielding anything
      async *read() {
        throw new Error('sacct exited with 1: sacct: error: Problem talking to the database: Connection refused');
      },
    };
    const at = (text: string) => () => new Date(text);
    const T0 = '2026-11-23T14:55:00Z';
    await finishedRun(service([fileSource], { now: at(T0) }).runOnce({ trigger: 'schedule' }));
    for (const time of ['2026-11-23T15:20:00Z', '2026-11-23T15:40:00Z']) {
      const failed = await finishedRun(service([down], { now: at(time) }).runOnce({ trigger: 'schedule' }));
      expect(failed.outcome).toBe('failed');
    }
    const outageStart = new Date(new Date(T0).getTime() - 600_000);
    // slurmdbd is back; the first run reads the outage, before job 911's record arrived.
    const back = await finishedRun(
      service([fileSource], { now: at('2026-11-23T16:00:00Z') }).runOnce({ trigger: 'schedule' }),
    );
    expect(back).toMatchObject({ outcome: 'success', window: { start: outageStart } });
    writeFileSync(file, header + early + late);

    const next = await finishedRun(
      service([fileSource], { now: at('2026-11-23T16:05:00Z') }).runOnce({ trigger: 'schedule' }),
    );
    expect(next.window).toEqual({ start: outageStart, end: new Date('2026-11-23T16:05:00Z') });
    expect(await jobRow('911')).toMatchObject({ state: 'COMPLETED', end_at: new Date('2026-11-23T15:20:00Z') });

    // INGEST_OVERLAP_SEC after the first run that succeeded again, the windows are as before the outage.
    const later = await finishedRun(
      service([fileSource], { now: at('2026-11-23T16:11:00Z') }).runOnce({ trigger: 'schedule' }),
    );
    expect(later.window).toEqual({ start: new Date('2026-11-23T15:55:00Z'), end: new Date('2026-11-23T16:11:00Z') });
  });
});

describe('sources in order, and failures', () => {
  const failing = (name: 'slurmrestd' | 'sacct', error: Error): JobSource => ({
    name,
    // biome-ignore lint/correctness/useYield: a source that fails before yielding anything
    async *read() {
      throw error;
    },
  });

  it('a stale fallback file that answers an outage does not move the window past the jobs it does not hold', async () => {
    // slurmrestd answers until 16:00, is down until 16:30, and FALLBACK_CSV (written at 15:50) answers
    // meanwhile. Those runs moved the mark to 16:20, so slurmrestd, back, read from 16:10 on (overlap 10
    // min): the jobs that ended between 16:00 and 16:10 were never read. Now it reads from 15:50.
    const { source: file, file: filePath } = fileSource('final/sacct-steps-extra.psv');
    utimesSync(filePath, WRITTEN, WRITTEN);
    let isDown = false;
    const windows: IngestWindow[] = [];
    const rest: JobSource = {
      name: 'slurmrestd',
      // biome-ignore lint/correctness/useYield: answers with no job, or fails, and records what it was asked
      async *read(window) {
        if (isDown) throw new Error('slurmrestd cannot be reached');
        windows.push(window);
      },
    };
    let clock = NOW;
    const chain = service([rest, file], { now: () => clock });
    await finishedRun(chain.runOnce({ trigger: 'schedule' }));
    isDown = true;
    for (const at of ['2026-11-23T16:10:00Z', '2026-11-23T16:20:00Z']) {
      clock = new Date(at);
      expect(await finishedRun(chain.runOnce({ trigger: 'schedule' }))).toMatchObject({ source: 'file' });
    }
    isDown = false;
    clock = new Date('2026-11-23T16:30:00Z');
    expect(await finishedRun(chain.runOnce({ trigger: 'schedule' }))).toMatchObject({ source: 'slurmrestd' });
    expect(windows.at(-1)?.start).toEqual(new Date('2026-11-23T15:50:00Z'));
  });

  it('falls back to the next source and records why the first did not answer', async () => {
    const { source } = fileSource('final/sacct-steps-extra.psv');
    const run = await finishedRun(
      service([failing('sacct', new SourceConfigError('SACCT_PATH /x cannot be run (ENOENT)')), source]).runOnce({
        trigger: 'manual',
        window: WINDOW,
      }),
    );
    expect(run).toMatchObject({ outcome: 'success', source: 'file', inserted: 12 });
    expect(run.sourceNotes).toMatchObject({
      slurmrestd: 'not configured (SLURMRESTD_URL unset)',
      sacct: 'configuration error: SACCT_PATH /x cannot be run (ENOENT)',
      file: 'answered',
    });
  });

  it('notes each fallback a run did not need: whether its set-up was checked, and what the check found', async () => {
    // A working sacct fallback used to go unmentioned (the notes said "file: not configured" and nothing
    // of sacct); only one that would fail was named.
    const { source: file } = fileSource('final/sacct-steps-extra.psv');
    const answering: JobSource = { name: 'slurmrestd', read: (window) => file.read(window) };
    const sacct = (findSetupProblem?: () => Promise<string | null>): JobSource => ({
      name: 'sacct',
      // biome-ignore lint/correctness/useYield: a fallback that is never read
      async *read() {
        throw new Error('a fallback after the source that answered is not read');
      },
      ...(findSetupProblem ? { findSetupProblem } : {}),
    });
    const notesWith = async (fallback: JobSource) => {
      const run = await finishedRun(service([answering, fallback]).runOnce({ trigger: 'manual', window: WINDOW }));
      expect(run).toMatchObject({ outcome: 'success', source: 'slurmrestd' });
      return run.sourceNotes;
    };
    expect(await notesWith(sacct(async () => null))).toEqual({
      slurmrestd: 'answered',
      sacct: 'not tried (slurmrestd answered), set-up checked: no problem found',
    });
    // The scrape reads it from the same row (slurm_ingest_fallback_setup_ok): only the run notes said it.
    expect(await findLastIngestionSuccess(db, 5000)).toMatchObject({
      fallbackSetup: [{ source: 'sacct', isOk: true }],
    });
    expect((await notesWith(sacct(async () => 'SACCT_PATH /x cannot be run (ENOENT)'))).sacct).toBe(
      'not tried (slurmrestd answered), but would fail: SACCT_PATH /x cannot be run (ENOENT)',
    );
    expect(await findLastIngestionSuccess(db, 5000)).toMatchObject({
      fallbackSetup: [{ source: 'sacct', isOk: false }],
    });
    // A check that could not be made is not taken for one that found nothing.
    expect((await notesWith(sacct())).sacct).toBe('not tried (slurmrestd answered), set-up not checked');
    expect(await findLastIngestionSuccess(db, 5000)).toMatchObject({ fallbackSetup: [] });
    const unchecked = sacct(async () => {
      throw new Error('EMFILE: too many open files');
    });
    expect((await notesWith(unchecked)).sacct).toBe(
      'not tried (slurmrestd answered), set-up not checked: EMFILE: too many open files',
    );
  });

  it('records a failed run when every source fails and leaves stored jobs alone', async () => {
    const { source } = fileSource('final/sacct-steps-extra.psv');
    await finishedRun(service([source]).runOnce({ trigger: 'manual', window: WINDOW }));
    const run = await finishedRun(
      service([failing('sacct', new Error('sacct exited with 1'))]).runOnce({ trigger: 'manual', window: WINDOW }),
    );
    expect(run).toMatchObject({ outcome: 'failed', source: null, error: 'sacct: sacct exited with 1' });
    expect((await db.pool.query('SELECT count(*)::int AS n FROM slurm_jobs')).rows[0].n).toBe(12);
    expect(await metrics.registry.getSingleMetricAsString('slurm_ingest_runs_total')).toContain(
      'slurm_ingest_runs_total{source="none",outcome="failed"} 1',
    );
  });

  // The database refusing a batch fails the run; the batches before it committed, each with its counts on
  // the run's row. The run's record then wrote `seen` as counted in memory, the refused batch's jobs with
  // the stored ones (12 beside 10 stored and 10 inserted): it keeps the counts its batches committed now.
  it('records a run whose batch the database refused with the counts of the batches it committed', async () => {
    const { source } = fileSource('final/sacct-steps-extra.psv');
    // The capture's 12 jobs in batches of 5: the third (jobs 12 and 13) breaks the constraint.
    await db.pool.query(`ALTER TABLE slurm_jobs ADD CONSTRAINT no_job_13 CHECK (job_id <> '13')`);
    try {
      const error = await service([source])
        .runOnce({ trigger: 'manual', window: WINDOW })
        .catch((caught: unknown) => caught);
      expect(error).toMatchObject({ name: 'JobStoreError', message: expect.stringContaining('no_job_13') });
    } finally {
      await db.pool.query('ALTER TABLE slurm_jobs DROP CONSTRAINT no_job_13');
    }
    expect((await db.pool.query('SELECT count(*)::int AS n FROM slurm_jobs')).rows[0].n).toBe(10);
    const run = await db.prisma.ingestionRun.findUniqueOrThrow({ where: { id: 1 } });
    expect(run).toMatchObject({
      outcome: 'failed',
      error: expect.stringContaining('the database refused a query of the run (SQLSTATE 23514)'),
      seen: 10,
      inserted: 10,
      updated: 0,
    });
  });

  it('counts each failed source in the metrics, whether or not a fallback answered (IngestionSourceFailing)', async () => {
    const { source } = fileSource('final/sacct-steps-extra.psv');
    const chain = service([failing('slurmrestd', new Error('HTTP 401: token expired')), source]);
    const failuresOf = async () => metrics.registry.getSingleMetricAsString('slurm_ingest_source_failures_total');
    // Before the first run: each configured source at 0, so increase() sees its first failure.
    expect(await failuresOf()).toContain('slurm_ingest_source_failures_total{source="slurmrestd"} 0');
    expect(await failuresOf()).toContain('slurm_ingest_source_failures_total{source="file"} 0');
    const run = await finishedRun(chain.runOnce({ trigger: 'manual', window: WINDOW }));
    expect(run).toMatchObject({ outcome: 'success', source: 'file' });
    await finishedRun(chain.runOnce({ trigger: 'manual', window: WINDOW, force: true }));
    expect(await failuresOf()).toContain('slurm_ingest_source_failures_total{source="slurmrestd"} 2');
    expect(await failuresOf()).toContain('slurm_ingest_source_failures_total{source="file"} 0');
    expect(await metrics.registry.getSingleMetricAsString('slurm_ingest_runs_total')).toContain(
      'slurm_ingest_runs_total{source="file",outcome="success"} 2',
    );
  });

  it('counts runs and jobs in the metrics', async () => {
    const { source } = fileSource('final/sacct-steps-extra.psv');
    await finishedRun(service([source]).runOnce({ trigger: 'manual', window: WINDOW }));
    const text = await metrics.registry.metrics();
    expect(text).toContain('slurm_ingest_runs_total{source="file",outcome="success"} 1');
    expect(text).toContain('slurm_ingest_jobs_total{result="inserted"} 12');
    expect(text).toContain('slurm_ingest_duration_seconds_count 1');
    expect(text).toMatch(/slurm_ingest_last_success_timestamp_seconds \d{10}/);
  });
});

describe('one run at a time', () => {
  it('a second concurrent run skips while the first holds the lock', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered!: () => void;
    const isInside = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const { source: file } = fileSource('final/sacct-steps-extra.psv');
    const slow: JobSource = {
      name: 'sacct',
      async *read(window) {
        entered();
        await gate;
        yield* file.read(window);
      },
    };
    const first = service([slow]).runOnce({ trigger: 'schedule', window: WINDOW });
    await isInside;
    // Another process (its own pool) tries meanwhile.
    const other = await createTestDatabaseClone();
    const second = await createIngestionService({
      db: other,
      sources: [file],
      unconfigured: {},
      logger: createLogger('silent'),
      metrics: createMetrics(),
      overlapSec: 0,
      initialLookbackSec: 60,
    }).runOnce({ trigger: 'schedule', window: WINDOW });
    expect(second).toEqual({ status: 'skipped', reason: 'locked' });
    release();
    expect((await first).status).toBe('finished');
    await other.close();
    const runs = await db.prisma.ingestionRun.findMany();
    expect(runs).toHaveLength(1);
  });

  it('marks a run left running by a dead process as failed on the next run', async () => {
    await db.prisma.ingestionRun.create({
      data: { trigger: 'schedule', windowStart: WINDOW.start, windowEnd: WINDOW.end },
    });
    const { source } = fileSource('final/sacct-steps-extra.psv');
    await finishedRun(service([source]).runOnce({ trigger: 'manual', window: WINDOW }));
    const abandoned = await db.prisma.ingestionRun.findUniqueOrThrow({ where: { id: 1 } });
    expect(abandoned).toMatchObject({ outcome: 'failed', error: expect.stringMatching(/^interrupted/) });
  });

  // A scheduled run the shutdown stopped waiting for (a source that does not stop when told) is left
  // running as its process exits, and the next run marks it failed. Its batches had each committed their
  // jobs, and it read 0 seen and 0 new beside them: its row now gets each batch's counts as it commits.
  it('gives a run left running by a dead process the counts of the batches it committed, and says they are that', async () => {
    const { source: file } = fileSource('final/sacct-steps-extra.psv');
    const stopping = new AbortController();
    // The capture's 12 jobs, then a read that ends only when told: two batches of 5 commit, 2 jobs wait in memory.
    const readsThenHangs: JobSource = {
      name: 'sacct',
      async *read(window) {
        yield* file.read(window);
        await new Promise((resolve) => stopping.signal.addEventListener('abort', resolve, { once: true }));
      },
    };
    const cut = service([readsThenHangs])
      .runOnce({ trigger: 'schedule', window: WINDOW })
      .catch(() => undefined);
    // A hang guard while the two batches commit, not a timed assertion.
    await expect.poll(() => db.prisma.slurmJob.count(), { timeout: 10_000 }).toBe(10);
    // Its process dies: its connections close, with the ingestion lock.
    db.closeConnectionsInUse();

    const other = await createTestDatabaseClone();
    try {
      const next = await createIngestionService({
        db: other,
        sources: [file],
        unconfigured: {},
        logger: createLogger('silent'),
        metrics: createMetrics(),
        overlapSec: 0,
        initialLookbackSec: 60,
      }).runOnce({ trigger: 'manual', window: WINDOW });
      expect(next).toMatchObject({ status: 'finished', run: { outcome: 'success', seen: 12, inserted: 2 } });
    } finally {
      await other.close();
    }
    const abandoned = await db.prisma.ingestionRun.findUniqueOrThrow({ where: { id: 1 } });
    expect(abandoned).toMatchObject({
      outcome: 'failed',
      error: 'interrupted: the process stopped before the run finished',
      seen: 10,
      inserted: 10,
      updated: 0,
    });
    expect(abandoned.sourceNotes).toEqual({
      counts:
        'cut short when its process stopped: the counts are those of the batches of jobs it committed, each with its jobs (a batch not committed rolled back with its jobs); its skipped records were not counted',
    });
    stopping.abort();
    await cut;
  });

  // The next run marked such a run failed with its notes replaced by the counts note: what they said
  // before (an access warning, why a source did not answer) was lost. The note is added to them now.
  it('keeps the notes a run left running by a dead process already had, beside the note on its counts', async () => {
    const access = "the token's user may read only its own jobs";
    await db.prisma.ingestionRun.create({
      data: { trigger: 'schedule', windowStart: WINDOW.start, windowEnd: WINDOW.end, sourceNotes: { access } },
    });
    const { source } = fileSource('final/sacct-steps-extra.psv');
    await finishedRun(service([source]).runOnce({ trigger: 'manual', window: WINDOW }));
    const abandoned = await db.prisma.ingestionRun.findUniqueOrThrow({ where: { id: 1 } });
    expect(abandoned).toMatchObject({ outcome: 'failed', error: expect.stringMatching(/^interrupted/) });
    expect(abandoned.sourceNotes).toEqual({
      access,
      counts:
        'cut short when its process stopped: the counts are those of the batches of jobs it committed, each with its jobs (a batch not committed rolled back with its jobs); its skipped records were not counted',
    });
  });

  it('a restarted process reports the freshness of the last completed run before running', async () => {
    const finishedAt = new Date('2026-11-20T10:00:00Z');
    await db.prisma.ingestionRun.create({
      data: { trigger: 'schedule', windowStart: WINDOW.start, windowEnd: WINDOW.end, outcome: 'success', finishedAt },
    });
    const restarted = createMetrics();
    await service([], { metrics: restarted }).restoreFreshnessGauge();
    const { values } = await restarted.ingestLastSuccess.get();
    expect(values[0]?.value).toBe(finishedAt.getTime() / 1000);
  });

  it('a backfill of past days does not make ingestion look fresh (IngestionStale), one of today does', async () => {
    // The scheduled runs have failed since 10:00 (an expired token, say) while an operator backfills
    // last month from another shell: no new job is read, and the alert must still fire.
    const lastLive = new Date('2026-11-23T10:00:00Z');
    const backfillFinish = new Date('2026-11-23T15:30:00Z');
    await db.prisma.ingestionRun.createMany({
      data: [
        {
          trigger: 'schedule',
          windowStart: new Date('2026-11-23T09:45:00Z'),
          windowEnd: lastLive,
          outcome: 'success',
          startedAt: lastLive,
          finishedAt: lastLive,
        },
        {
          trigger: 'schedule',
          windowStart: new Date('2026-11-23T09:50:00Z'),
          windowEnd: backfillFinish,
          outcome: 'failed',
          startedAt: backfillFinish,
          finishedAt: backfillFinish,
        },
        {
          trigger: 'backfill',
          windowStart: new Date('2026-10-31T00:00:00Z'),
          windowEnd: new Date('2026-11-01T00:00:00Z'),
          outcome: 'success',
          startedAt: backfillFinish,
          finishedAt: backfillFinish,
        },
      ],
    });
    expect(await findLastIngestionSuccess(db, 5000)).toEqual({
      finishedAt: lastLive,
      fileModifiedAt: null,
      fallbackSetup: [],
    });
    const restarted = createMetrics();
    await service([], { metrics: restarted }).restoreFreshnessGauge();
    expect((await restarted.ingestLastSuccess.get()).values[0]?.value).toBe(lastLive.getTime() / 1000);

    // A backfill of today read up to when it ran: new jobs were read.
    const today = new Date('2026-11-23T15:40:00Z');
    await db.prisma.ingestionRun.create({
      data: {
        trigger: 'backfill',
        windowStart: new Date('2026-11-23T00:00:00Z'),
        windowEnd: new Date('2026-11-24T00:00:00Z'),
        outcome: 'success',
        startedAt: today,
        finishedAt: today,
      },
    });
    expect(await findLastIngestionSuccess(db, 5000)).toEqual({
      finishedAt: today,
      fileModifiedAt: null,
      fallbackSetup: [],
    });
  });

  it('runs once per interval however many processes schedule it', async () => {
    const { source } = fileSource('final/sacct-steps-extra.psv');
    const schedule = () =>
      startIngestionScheduler({
        service: service([source]),
        intervalSec: 3600,
        logger: createLogger('silent'),
        initialDelayMs: 0,
      });
    const stopFirst = schedule();
    await expect.poll(async () => db.prisma.ingestionRun.count({ where: { finishedAt: { not: null } } })).toBe(1);
    // A second worker's first tick comes after the first's run finished: the lock is free, but
    // that run was this interval's.
    const stopSecond = schedule();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await Promise.all([stopFirst(), stopSecond()]);
    expect(await db.prisma.ingestionRun.count()).toBe(1);
  });

  it('skips a scheduled run only while another finished within the given time', async () => {
    const { source } = fileSource('final/sacct-steps-extra.psv');
    const ingest = service([source]);
    await finishedRun(ingest.runOnce({ trigger: 'schedule', window: WINDOW }));
    expect(await ingest.runOnce({ trigger: 'schedule', skipIfFinishedWithinSec: 60 })).toEqual({
      status: 'skipped',
      reason: 'recent',
    });
    // A manual run (no skip asked for) always runs, and counts as the latest.
    await finishedRun(ingest.runOnce({ trigger: 'manual', window: WINDOW }));
    expect(await ingest.runOnce({ trigger: 'schedule', skipIfFinishedWithinSec: 60 })).toMatchObject({
      reason: 'recent',
    });
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await ingest.runOnce({ trigger: 'schedule', skipIfFinishedWithinSec: 0.2 })).toMatchObject({
      status: 'finished',
    });
    expect(await db.prisma.ingestionRun.count()).toBe(3);
  });

  // Two instances on one database: instance A's run stopped by its shutdown was recorded failed a
  // moment ago, and instance B's tick (often the one queued for the lock behind it) skipped it as this
  // interval's run, so nothing read Slurm for an interval more. A stopped run read nothing through.
  it('a scheduled run stopped by a shutdown does not make the next scheduled run skip', async () => {
    const { source } = fileSource('final/sacct-steps-extra.psv');
    const ingest = service([source]);
    const stopping = new AbortController();
    stopping.abort(new ShutdownStop());
    const stopped = await ingest.runOnce({ trigger: 'schedule', window: WINDOW, signal: stopping.signal });
    expect(stopped).toMatchObject({
      status: 'finished',
      run: { outcome: 'failed', error: 'file: stopped: the process is shutting down' },
    });
    // Recorded so, for the check below; the error still says it for the admin page and the log.
    expect(await db.prisma.ingestionRun.findMany({ select: { stoppedByShutdown: true } })).toEqual([
      { stoppedByShutdown: true },
    ]);
    expect(await findLastLiveRunFinish(db.prisma)).toBeNull();
    expect(await ingest.runOnce({ trigger: 'schedule', skipIfFinishedWithinSec: 60 })).toMatchObject({
      status: 'finished',
      run: { outcome: 'success' },
    });
    // That run counts as this interval's, as before.
    expect(await ingest.runOnce({ trigger: 'schedule', skipIfFinishedWithinSec: 60 })).toEqual({
      status: 'skipped',
      reason: 'recent',
    });
  });

  // A run was taken for one its server's shutdown stopped when its error ended with the shutdown's
  // words: a source's own error that ended so (a proxy passing on its backend's) made the next
  // scheduled run of every other instance read the window again, in the same interval.
  it("a run failed by a source's error ending with the shutdown's words counts as this interval's", async () => {
    const proxied: JobSource = {
      name: 'slurmrestd',
      // biome-ignore lint/correctness/useYield: a source that fails before yielding anything
      async *read() {
        throw new Error(`slurmrestd answered 503 through its proxy: backend stopped: ${SHUTDOWN_STOP_REASON}`);
      },
    };
    const ingest = service([proxied]);
    const failed = await finishedRun(ingest.runOnce({ trigger: 'schedule', window: WINDOW }));
    expect(failed).toMatchObject({
      outcome: 'failed',
      error: 'slurmrestd: slurmrestd answered 503 through its proxy: backend stopped: the process is shutting down',
    });
    const [row] = await db.prisma.ingestionRun.findMany({ select: { stoppedByShutdown: true, finishedAt: true } });
    expect(row?.stoppedByShutdown).toBe(false);
    expect(await findLastLiveRunFinish(db.prisma)).toEqual(row?.finishedAt);
    expect(await ingest.runOnce({ trigger: 'schedule', skipIfFinishedWithinSec: 60 })).toEqual({
      status: 'skipped',
      reason: 'recent',
    });
  });

  // npm run ingest's run, stopped by Ctrl-C or SIGTERM, is no server's shutdown: it counts, as before.
  it("a run a CLI's Ctrl-C stopped is not recorded as stopped by a shutdown", async () => {
    const { source } = fileSource('final/sacct-steps-extra.psv');
    const ingest = service([source]);
    const stopping = new AbortController();
    stopping.abort(new Error('interrupted with Ctrl-C'));
    const stopped = await finishedRun(ingest.runOnce({ trigger: 'schedule', window: WINDOW, signal: stopping.signal }));
    expect(stopped).toMatchObject({ outcome: 'failed', error: 'file: stopped: interrupted with Ctrl-C' });
    const [row] = await db.prisma.ingestionRun.findMany({ select: { stoppedByShutdown: true, finishedAt: true } });
    expect(row?.stoppedByShutdown).toBe(false);
    expect(await findLastLiveRunFinish(db.prisma)).toEqual(row?.finishedAt);
  });

  it('a backfill day that just finished does not make a scheduled run skip; a scheduled run does', async () => {
    const { source } = fileSource('final/sacct-steps-extra.psv');
    const ingest = service([source]);
    const day = { start: new Date('2026-11-23T00:00:00Z'), end: new Date('2026-11-24T00:00:00Z') };
    // A backfill (npm run ingest) works through its days while the server runs.
    await finishedRun(ingest.runOnce({ trigger: 'backfill', window: day }));
    const scheduled = await ingest.runOnce({ trigger: 'schedule', skipIfFinishedWithinSec: 60 });
    expect(scheduled).toMatchObject({ status: 'finished', run: { outcome: 'success' } });
    await finishedRun(ingest.runOnce({ trigger: 'backfill', window: day }));
    // The scheduled run above is this interval's: another process's tick does nothing.
    expect(await ingest.runOnce({ trigger: 'schedule', skipIfFinishedWithinSec: 60 })).toEqual({
      status: 'skipped',
      reason: 'recent',
    });
    expect((await db.prisma.ingestionRun.findMany({ orderBy: { id: 'asc' } })).map((run) => run.trigger)).toEqual([
      'backfill',
      'schedule',
      'backfill',
    ]);
  });

  describe('a scheduled run that finds the lock taken (a backfill day, another worker)', () => {
    const waitingForIngestLock = async () =>
      (
        await db.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_locks
            WHERE locktype = 'advisory' AND NOT granted
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        )
      ).rows[0]?.n;

    it('queues for it and runs once it is released, instead of skipping the interval', async () => {
      const { source } = fileSource('final/sacct-steps-extra.psv');
      const ingest = service([source]);
      const backfillDay = await tryAcquireIngestLock(db.pool);
      expect(backfillDay).toBeDefined();
      const scheduled = ingest.runOnce({ trigger: 'schedule', skipIfFinishedWithinSec: 60, waitForLockMs: 30_000 });
      await expect.poll(waitingForIngestLock).toBe(1);
      await backfillDay?.();
      expect(await scheduled).toMatchObject({ status: 'finished', run: { outcome: 'success' } });
      expect(await db.prisma.ingestionRun.count({ where: { trigger: 'schedule' } })).toBe(1);
    });

    it('gives up when the wait runs out or the process stops, and leaves no run and no waiting connection', async () => {
      const { source } = fileSource('final/sacct-steps-extra.psv');
      const ingest = service([source]);
      const other = await tryAcquireIngestLock(db.pool);
      try {
        expect(await ingest.runOnce({ trigger: 'schedule', waitForLockMs: 1_500 })).toEqual({
          status: 'skipped',
          reason: 'locked',
        });
        const stopping = new AbortController();
        const stopped = ingest.runOnce({ trigger: 'schedule', waitForLockMs: 60_000, signal: stopping.signal });
        await expect.poll(waitingForIngestLock).toBe(1);
        stopping.abort(new Error('the process is shutting down'));
        expect(await stopped).toEqual({ status: 'skipped', reason: 'locked' });
        expect(await waitingForIngestLock()).toBe(0);
      } finally {
        await other?.();
      }
      expect(await db.prisma.ingestionRun.count()).toBe(0);
      // The lock is free again for the next tick.
      const next = await tryAcquireIngestLock(db.pool);
      expect(next).toBeDefined();
      await next?.();
    });
  });

  it('the scheduler runs on its interval and stops cleanly', async () => {
    const { source } = fileSource('final/sacct-steps-extra.psv');
    const stop = startIngestionScheduler({
      service: service([source]),
      intervalSec: 3600,
      logger: createLogger('silent'),
      initialDelayMs: 0,
    });
    await expect.poll(async () => db.prisma.ingestionRun.count({ where: { outcome: 'success' } })).toBe(1);
    await stop();
    expect(await db.prisma.ingestionRun.count({ where: { trigger: 'schedule' } })).toBe(1);
  });

  it('stopping the scheduler (shutdown) kills the sacct of its run, with what a wrapper started', {
    timeout: 120_000,
  }, async () => {
    const wrapper = writeHangingSacctWrapper(path.join(dir, 'sacct-wrapper'));
    const sacct = createSacctSource({
      inheritedEnvironment: process.env,
      sacctPath: wrapper.path,
      timeZone: 'UTC',
      cluster: undefined,
      defaultCluster: 'lab',
      timeoutMs: 600_000,
    });
    const { source: file } = fileSource('final/sacct-steps-extra.psv');
    const stop = startIngestionScheduler({
      service: service([sacct, file]),
      intervalSec: 3600,
      logger: createLogger('silent'),
      initialDelayMs: 0,
    });
    try {
      expect(await waitFor(() => readSleepPid(wrapper.sleepPidFile) !== undefined, 60_000)).toBe(true);
      const sleepPid = readSleepPid(wrapper.sleepPidFile) as number;
      await withHangGuard(stop(), 30_000, 'stopping the scheduler');
      expect(await waitFor(() => !isRunning(sleepPid), 10_000), `sleep ${sleepPid} is still running`).toBe(true);
      // Stopped, not answered by the next source: the process is going away.
      const runs = await db.prisma.ingestionRun.findMany();
      expect(runs).toMatchObject([
        {
          trigger: 'schedule',
          outcome: 'failed',
          error: 'sacct: stopped: the process is shutting down',
          stoppedByShutdown: true,
        },
      ]);
      expect(runs[0]?.sourceNotes).not.toHaveProperty('file');
    } finally {
      killLeftoverSleep(wrapper.sleepPidFile);
    }
  });
});

/** A second pool on the same database, as another worker or replica would have. */
async function createTestDatabaseClone() {
  const { openDatabase } = await import('../../../src/db/database.js');
  return openDatabase(db.url, { poolMax: 2, queryTimeoutMs: db.queryTimeoutMs, logger: createLogger('silent') });
}

describe('a job whose billing is more than its column holds', () => {
  it('is skipped with the reason, and the jobs of its batch are stored', async () => {
    // alloc_billing is numeric(18, 4), below 10^14; the check allowed up to 10^15, so such a job
    // reached the database, which refused its whole batch ("numeric field overflow"): the run failed
    // and no job of the batch was stored, on every run over that window.
    const file = path.join(dir, 'huge-billing.psv');
    writeFileSync(
      file,
      'JobID|JobIDRaw|User|State|ElapsedRaw|Start|End|AllocTRES\n' +
        '51|51|ann|COMPLETED|600|2026-11-23T15:20:00|2026-11-23T15:30:00|billing=500000000000000,cpu=1,mem=1G,node=1\n' +
        '52|52|ann|COMPLETED|600|2026-11-23T15:20:00|2026-11-23T15:30:00|billing=2,cpu=1,mem=1G,node=1\n',
    );
    utimesSync(file, WRITTEN, WRITTEN);
    const logged: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => logged.push(line) });
    const source = labFileSource(file);

    const run = await finishedRun(service([source], { logger }).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(run).toMatchObject({ outcome: 'partial', seen: 1, skipped: 1, error: null });
    const stored = await db.pool.query<{ job_id: string; alloc_billing: string }>(
      'SELECT job_id, alloc_billing::text FROM slurm_jobs ORDER BY job_id',
    );
    expect(stored.rows).toEqual([{ job_id: '52', alloc_billing: '2.0000' }]);
    const skips = logged.map((line) => JSON.parse(line)).filter((entry) => /^skipped a/.test(entry.msg));
    expect(skips.map(({ jobId, reason }) => ({ jobId, reason }))).toEqual([
      {
        jobId: '51',
        reason: 'allocBilling is out of range (0 to below 100000000000000, numeric(18, 4)): 500000000000000',
      },
    ]);
  });
});

// Each value of a job fits its own column, yet their product may not fit a receipt item's: 2e9 GPUs
// for 55 hours are 1.1e11 GPU-hours, 1.1e16 at a GPU rate of 100,000 an hour, past numeric(20, 4),
// and every receipt of the user (and the month-end run) then failed with a numeric overflow. No
// real job uses a billion hours of anything.
describe('a job past a billion hours of a resource', () => {
  it('is skipped with the reason, and the jobs beside it are stored', async () => {
    const file = path.join(dir, 'huge-hours.psv');
    writeFileSync(
      file,
      'JobID|JobIDRaw|User|State|ElapsedRaw|Start|End|AllocTRES\n' +
        '41|41|ann|COMPLETED|200000|2026-11-21T07:56:40|2026-11-23T15:30:00|cpu=1,mem=1G,node=1,gres/gpu=2000000000\n' +
        '42|42|ann|COMPLETED|600|2026-11-23T15:20:00|2026-11-23T15:30:00|cpu=1,mem=1G,node=1\n' +
        '43|43|ann|COMPLETED|3600|2026-11-23T14:30:00|2026-11-23T15:30:00|cpu=1,mem=1200000000G,node=1\n',
    );
    utimesSync(file, WRITTEN, WRITTEN);
    const logged: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => logged.push(line) });
    const source = labFileSource(file);

    const run = await finishedRun(service([source], { logger }).runOnce({ trigger: 'manual', window: WINDOW }));
    expect(run).toMatchObject({ outcome: 'partial', seen: 1, skipped: 2 });
    const stored = await db.pool.query<{ job_id: string }>('SELECT job_id FROM slurm_jobs ORDER BY job_id');
    expect(stored.rows.map((row) => row.job_id)).toEqual(['42']);
    const skips = logged.map((line) => JSON.parse(line)).filter((entry) => /^skipped a/.test(entry.msg));
    expect(skips.map(({ jobId, reason }) => ({ jobId, reason }))).toEqual([
      { jobId: '41', reason: 'GPU-hours are more than 1000000000: 111111111111' },
      { jobId: '43', reason: 'memory GB-hours are more than 1000000000: 1200000000' },
    ]);
  });
});
