import { spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADVISORY_LOCK_KEYS } from '../../../src/db/advisory-locks.js';
import { SACCT_FORMAT } from '../../../src/modules/ingestion/sacct.parser.js';
import { REPEATED_SIGNAL_MS } from '../../../src/shared/distinct-signals.js';
import { builtFile } from '../../support/built-app.js';
import {
  isRunning,
  killLeftoverSleep,
  readSleepPid,
  waitFor,
  withHangGuard,
  writeHangingSacctWrapper,
} from '../../support/hung-sacct.js';
import { runToExit, spawnCollecting } from '../../support/run-to-exit.js';
import { PROJECT_ROOT } from '../../support/spawn-server.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

const FAKE_SACCT = path.resolve(import.meta.dirname, '../../fixtures/slurm/fake-sacct.mjs');

let db: TestDatabase;
let dir: string;
beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(path.join(os.tmpdir(), 'ingest-cli-'));
});
afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

/** The id of the newest ingestion run, so a test can remove the failed runs it made, which later tests count. */
async function lastRunId(): Promise<number> {
  return (await db.prisma.ingestionRun.aggregate({ _max: { id: true } }))._max.id ?? 0;
}

const ingestCliOptions = (env: Record<string, string>) => ({
  cwd: PROJECT_ROOT,
  env: { DATABASE_URL: db.url, APP_TZ: 'UTC', LOG_LEVEL: 'error', DEMO_SEED: 'false', ...env },
});

/**
 * The CLI compiled once for the run (test/support/built-app.ts): what these tests check is the tool's
 * behaviour, and it starts in half the CPU of tsx. The first test runs the source, as `npm run ingest` does.
 */
const compiledIngestCli = () => builtFile('src/cli/ingest.cli.ts');

function runIngestCli(args: string[], env: Record<string, string> = {}) {
  return runToExit(process.execPath, [compiledIngestCli(), ...args], ingestCliOptions(env));
}

/** `npm run ingest`'s way: the TypeScript source through tsx. */
function runIngestCliFromSource(args: string[], env: Record<string, string> = {}) {
  return runToExit(process.execPath, ['--import', 'tsx', 'src/cli/ingest.cli.ts', ...args], ingestCliOptions(env));
}

/** The CLI running, its output collected, for a test that signals it or reads it as it goes. */
function spawnIngestCli(args: string[], env: Record<string, string> = {}) {
  return spawnCollecting(process.execPath, [compiledIngestCli(), ...args], ingestCliOptions(env));
}

describe('npm run ingest over an sacct file', () => {
  it('--force reads a day again from a file unchanged since the first backfill (from source, through tsx)', async () => {
    const header = 'JobID|JobIDRaw|User|State|ElapsedRaw|Start|End|AllocTRES';
    const good = (id: number) =>
      `${id}|${id}|ann|COMPLETED|600|2026-11-20T10:00:00|2026-11-20T10:10:00|cpu=1,mem=1G,node=1`;
    const malformed = (id: number) => `${id}|${id}|ann|COMPLETED|ten minutes|2026-11-20T10:00:00|2026-11-20T10:10:00|`;
    const lines = [header, ...[1, 2, 3, 4].map(good), ...[5, 6, 7, 8, 9, 10, 11].map(malformed)];
    const file = path.join(dir, 'sacct.psv');
    writeFileSync(file, `${lines.join('\n')}\n`);
    // Written long after the day's window ended, as in the walkthrough.
    const written = new Date('2026-12-02T09:00:00Z');
    utimesSync(file, written, written);
    const env = { FALLBACK_CSV: file };
    const day = ['--from', '2026-11-20', '--to', '2026-11-20'];

    const first = await runIngestCliFromSource(day, env);
    expect(first.code).toBe(0);
    expect(first.output).toContain('2026-11-20 partial via file: 4 jobs, 4 new, 0 updated, 7 skipped');

    const again = await runIngestCliFromSource(day, env);
    expect(again.output).toContain('2026-11-20 already done');

    const forced = await runIngestCliFromSource([...day, '--force'], env);
    expect(forced.code).toBe(0);
    expect(forced.output).toContain('2026-11-20 partial via file: 4 jobs, 0 new, 0 updated, 7 skipped');
    const runs = await db.prisma.ingestionRun.findMany({ orderBy: { id: 'asc' } });
    expect(runs.map((run) => [run.outcome, run.seen, run.skipped])).toEqual([
      ['partial', 4, 7],
      ['partial', 4, 7],
    ]);
  });

  it("prints a backfill's summary alone on stdout, without a blank line before it, and its day lines on stderr", async () => {
    // `npm run --silent ingest -- --from … >result 2>>ingest.log` (docs/operations.md, "Logs"): the result
    // file began with an empty line, the newline that ends a terminal's progress line.
    const file = path.join(dir, 'sacct-backfill-streams.psv');
    writeFileSync(
      file,
      'JobID|JobIDRaw|User|State|ElapsedRaw|Start|End|AllocTRES\n' +
        '51|51|ann|COMPLETED|600|2026-11-15T10:00:00|2026-11-15T10:10:00|cpu=1,mem=1G,node=1\n',
    );
    const cli = spawnIngestCli(['--from', '2026-11-15', '--to', '2026-11-15'], { FALLBACK_CSV: file });
    const closed = new Promise((resolve) => cli.child.once('close', resolve));
    expect(await cli.exited, cli.output()).toBe(0);
    await closed;
    expect(cli.stdout()).toMatch(/^Backfill 2026-11-15 \.\. 2026-11-15: 1 day\(s\) read, .* in \d+\.\d s\.\n$/);
    expect(cli.stderr()).toContain('1/1 2026-11-15 success via file: 1 jobs, 1 new');
  });

  it('says, under the first day a fallback answered, why the source before it did not, once', async () => {
    // docs/operations.md has the first bill's older days read with the backfill: with slurmrestd's token
    // refused and sacct answering, each day said "success via sacct" and the refusal was a JSON line
    // alone (seen on the lab), as an incremental run's was before it printed it. Here sacct cannot be run
    // and the file behind it answers.
    const file = path.join(dir, 'sacct-backfill-behind-sacct.psv');
    writeFileSync(
      file,
      'JobID|JobIDRaw|Cluster|User|State|ElapsedRaw|Start|End|AllocTRES\n' +
        '61|61|lab|ann|COMPLETED|600|2026-11-16T10:00:00|2026-11-16T10:10:00|cpu=1,mem=1G,node=1\n',
    );
    const sacctPath = path.join(dir, 'no-such-sacct');
    const result = await runIngestCli(['--from', '2026-11-16', '--to', '2026-11-17'], {
      FALLBACK_CSV: file,
      SACCT_PATH: sacctPath,
    });
    expect(result.code, result.output).toBe(0);
    const problem = `sacct: configuration error: SACCT_PATH ${sacctPath} cannot be run (ENOENT)`;
    expect(result.output).toContain(
      `2026-11-16 success via file: 1 jobs, 1 new, 0 updated, 0 skipped\n  2026-11-16: ${problem}\n`,
    );
    // The next day's is the same: said once, not once a day for a quarter.
    expect(result.output.split(problem)).toHaveLength(2);
  });
});

describe('npm run ingest over days a job still running spans', () => {
  it("says the backfill's total of jobs adds up the days' runs, in which such a job is read on each day", async () => {
    // Each day is a run of its own: a job still running is in every day's window since it started, so
    // the days' "N jobs" add up to more jobs than there are; the summary called that sum "jobs seen".
    const file = path.join(dir, 'sacct-running-across-days.psv');
    writeFileSync(
      file,
      'JobID|JobIDRaw|User|State|ElapsedRaw|Start|End|AllocTRES\n' +
        '61|61|ann|RUNNING|600|2026-11-25T10:00:00|Unknown|cpu=1,mem=1G,node=1\n' +
        '62|62|ann|COMPLETED|600|2026-11-26T10:00:00|2026-11-26T10:10:00|cpu=1,mem=1G,node=1\n',
    );
    const runsBefore = await lastRunId();
    const result = await runIngestCli(['--from', '2026-11-25', '--to', '2026-11-26'], { FALLBACK_CSV: file });
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain('2026-11-25 success via file: 1 jobs, 1 new, 0 updated, 0 skipped');
    expect(result.output).toContain('2026-11-26 success via file: 2 jobs, 1 new, 0 updated, 0 skipped');
    expect(result.output).toContain(
      '2 day(s) read, 0 already done, 0 failed; 3 jobs summed over the days (a job still running is in each day it spans), 2 new, 0 updated, 0 skipped, in ',
    );
    await db.prisma.slurmJob.deleteMany({ where: { jobId: { in: ['61', '62'] } } });
    await db.prisma.ingestionRun.deleteMany({ where: { id: { gt: runsBefore } } });
  });
});

describe('npm run ingest over a day whose midnight the clocks skip', () => {
  it('reads from the first instant of each day, so no job is read on the next day or missed on its own', async () => {
    // America/Santiago on 6 September 2026: 23:59:59 (UTC-4) is followed by 01:00 (UTC-3), so the 6th
    // begins at 04:00 UTC. Its 00:00 used to be read as 03:00 UTC, 23:00 on the 5th: a job ending at 23:30
    // on the 5th was read as the 6th's, and the 5th's run, which ended at 23:00, never read it.
    const file = path.join(dir, 'sacct-santiago.psv');
    writeFileSync(
      file,
      'JobID|JobIDRaw|User|State|ElapsedRaw|Start|End|AllocTRES\n' +
        '81|81|ann|COMPLETED|600|2026-09-05T23:20:00|2026-09-05T23:30:00|cpu=1,mem=1G,node=1\n' +
        '82|82|ann|COMPLETED|600|2026-09-06T01:00:00|2026-09-06T01:10:00|cpu=1,mem=1G,node=1\n',
    );
    const env = { FALLBACK_CSV: file, APP_TZ: 'America/Santiago' };
    const runsBefore = await lastRunId();
    const sixth = await runIngestCli(['--from', '2026-09-06', '--to', '2026-09-06'], env);
    const fifth = await runIngestCli(['--from', '2026-09-05', '--to', '2026-09-05'], env);
    const runs = await db.prisma.ingestionRun.findMany({ where: { id: { gt: runsBefore } }, orderBy: { id: 'asc' } });
    const stored = await db.prisma.slurmJob.findMany({
      where: { jobId: { in: ['81', '82'] } },
      orderBy: { jobId: 'asc' },
    });
    await db.prisma.slurmJob.deleteMany({ where: { jobId: { in: ['81', '82'] } } });
    await db.prisma.ingestionRun.deleteMany({ where: { id: { gt: runsBefore } } });
    expect(sixth.code, sixth.output).toBe(0);
    expect(sixth.output).toContain('2026-09-06 success via file: 1 jobs, 1 new, 0 updated, 0 skipped');
    expect(fifth.code, fifth.output).toBe(0);
    expect(fifth.output).toContain('2026-09-05 success via file: 1 jobs, 1 new, 0 updated, 0 skipped');
    expect(runs.map((run) => [run.windowStart?.toISOString(), run.windowEnd?.toISOString()])).toEqual([
      ['2026-09-06T04:00:00.000Z', '2026-09-07T03:00:00.000Z'],
      ['2026-09-05T04:00:00.000Z', '2026-09-06T04:00:00.000Z'],
    ]);
    expect(stored.map((job) => [job.jobId, job.endAt?.toISOString()])).toEqual([
      ['81', '2026-09-06T03:30:00.000Z'],
      ['82', '2026-09-06T04:10:00.000Z'],
    ]);
  });
});

describe('npm run ingest over a file exported with sacct -X (no step rows)', () => {
  it('stops, saying the file would bill 0 CPU-hours under the used basis and what to export instead', async () => {
    const file = path.join(dir, 'sacct-X.psv');
    copyFileSync(path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05/final/sacct-X.psv'), file);
    const runsBefore = await lastRunId();
    const jobsBefore = await db.prisma.slurmJob.count();
    const result = await runIngestCli(['--from', '2026-11-23', '--to', '2026-11-23'], { FALLBACK_CSV: file });
    const runs = await db.prisma.ingestionRun.findMany({ where: { id: { gt: runsBefore } } });
    await db.prisma.ingestionRun.deleteMany({ where: { id: { gt: runsBefore } } });
    // It used to store the day's 12 jobs with TotalCPU 0, billed no CPU time, and exit 0.
    expect(result.code, result.output).toBe(1);
    expect(result.output).toContain(`FALLBACK_CSV ${file} has no step rows (sacct -X / --allocations output?)`);
    expect(result.output).toContain('Export it again without -X');
    expect(runs.map((run) => run.outcome)).toEqual(['failed']);
    expect(await db.prisma.slurmJob.count()).toBe(jobsBefore);
  });
});

describe('npm run ingest reading jobs with all their times moved by a zone difference', () => {
  it("prints the run's moved note, as /admin/ingestion shows it, under its result line and a backfill day's", async () => {
    const header = 'JobID|JobIDRaw|User|State|ElapsedRaw|Submit|Start|End|AllocTRES';
    const row = (id: number, at: Date) => {
      const local = (date: Date) => date.toISOString().slice(0, 19);
      const start = local(new Date(at.getTime() - 600_000));
      return `${id}|${id}|ann|COMPLETED|600|${start}|${start}|${local(at)}|cpu=1,mem=1G,node=1`;
    };
    const file = path.join(dir, 'sacct-zone-moved.psv');
    // Written in UTC two minutes ago, then read as UTC+1 (APP_TZ changed): every time an hour earlier.
    writeFileSync(file, `${header}\n${row(71, new Date(Date.now() - 120_000))}\n`);
    const stored = await runIngestCli([], { FALLBACK_CSV: file, INGEST_OVERLAP_SEC: '7200' });
    expect(stored.code).toBe(0);
    const moved = await runIngestCli(['--force'], {
      FALLBACK_CSV: file,
      INGEST_OVERLAP_SEC: '7200',
      APP_TZ: 'Etc/GMT-1',
    });
    expect(moved.code).toBe(0);
    expect(moved.output).toMatch(
      /\n {2}moved: 1 job\(s\) read with all their times 1 h earlier than stored, first: job 71 of cluster default, ended .+: stored as read now, so they may fall on other days\./,
    );

    // A backfill day says it under the day, on stderr, as it says the day's other notes.
    writeFileSync(file, `${header}\n${row(72, new Date('2026-11-17T10:10:00Z'))}\n`);
    const day = ['--from', '2026-11-17', '--to', '2026-11-17', '--force'];
    expect((await runIngestCli(day, { FALLBACK_CSV: file })).code).toBe(0);
    const backfill = await runIngestCli(day, { FALLBACK_CSV: file, APP_TZ: 'America/Los_Angeles' });
    expect(backfill.code).toBe(0);
    expect(backfill.output).toContain('  2026-11-17: moved: 1 job(s) read with all their times 8 h later than stored');
  });
});

describe('npm run ingest over jobs in a state the app does not know', () => {
  it('says how many, in which states, and that they stay unbilled', async () => {
    const header = 'JobID|JobIDRaw|User|State|ElapsedRaw|Start|End|AllocTRES';
    const row = (id: number, state: string) =>
      `${id}|${id}|ann|${state}|600|2026-11-18T10:00:00|2026-11-18T10:10:00|cpu=1,mem=1G,node=1`;
    const file = path.join(dir, 'sacct-unknown-state.psv');
    writeFileSync(file, `${[header, row(61, 'COMPLETED'), row(62, 'COMPLETD')].join('\n')}\n`);
    const result = await runIngestCli(['--from', '2026-11-18', '--to', '2026-11-18'], { FALLBACK_CSV: file });
    expect(result.code).toBe(0);
    expect(result.output).toContain('2 jobs, 2 new, 0 updated, 0 skipped, 1 in a state it does not know (unbilled)');

    // An incremental run prints the run's note too: which states, and why they stay unbilled.
    const local = (date: Date) => date.toISOString().slice(0, 19);
    const end = new Date(Date.now() - 120_000);
    const start = new Date(end.getTime() - 600_000);
    writeFileSync(file, `${header}\n63|63|ann|FUTURE_STATE|600|${local(start)}|${local(end)}|cpu=1,mem=1G,node=1\n`);
    const incremental = await runIngestCli([], { FALLBACK_CSV: file, INGEST_OVERLAP_SEC: '900' });
    expect(incremental.code).toBe(0);
    expect(incremental.output).toContain(', 1 in a state it does not know (unbilled); window ');
    expect(incremental.output).toContain(
      '  1 job(s) stored in a state this app does not know (FUTURE_STATE: 1): stored as not finished, so they stay unbilled',
    );
  });
});

describe('npm run ingest over a file of an older --format, without AllocTRES, ReqTRES and AllocCPUS', () => {
  it('says under the day that its jobs were stored with no GPU and no allocated CPU, billed as none', async () => {
    const runsBefore = await lastRunId();
    const file = path.join(dir, 'sacct-old-columns.psv');
    copyFileSync(path.resolve(import.meta.dirname, '../../fixtures/sacct-old-columns/no-tres-no-alloccpus.psv'), file);
    const result = await runIngestCli(['--from', '2026-11-23', '--to', '2026-11-23', '--force'], {
      FALLBACK_CSV: file,
    });
    expect(result.code).toBe(0);
    expect(result.output).toContain(
      '  2026-11-23: columns: 2 job(s) stored with no GPU, billed 0 GPU-hours: the sacct output has no AllocTRES or ReqTRES column',
    );
    expect(result.output).toContain(
      '2 job(s) stored with no allocated CPU, billed 0 CPU-hours under PRICING_CPU_BASIS=allocated',
    );
    // Its day is one a later backfill reads without --force.
    await db.prisma.slurmJob.deleteMany({ where: { cluster: 'lab', jobId: { in: ['101', '102'] } } });
    await db.prisma.ingestionRun.deleteMany({ where: { id: { gt: runsBefore } } });
  });
});

describe('npm run ingest over an sacct file cut short', () => {
  it('fails the day with the reason and exits 1, storing nothing of the file', async () => {
    const header = 'JobID|JobIDRaw|User|State|ElapsedRaw|Start|End|AllocTRES|AveRSS';
    const lines = [
      header,
      '81|81|ann|COMPLETED|600|2026-11-19T10:00:00|2026-11-19T10:10:00|cpu=1,mem=8G,node=1|',
      '81.batch|81.batch||COMPLETED|600|2026-11-19T10:00:00|2026-11-19T10:10:00||7605964K',
    ];
    const file = path.join(dir, 'sacct-cut.psv');
    // Cut in the last AveRSS, where the line still has every field.
    writeFileSync(file, `${lines.join('\n')}\n`.slice(0, -8));
    const before = await db.prisma.slurmJob.count();
    const runsBefore = await lastRunId();

    const result = await runIngestCli(['--from', '2026-11-19', '--to', '2026-11-19'], { FALLBACK_CSV: file });
    expect(result.code).toBe(1);
    expect(result.output).toContain(`2026-11-19: file: FALLBACK_CSV ${file} does not end with a newline`);
    expect(result.output).toContain('0 day(s) read, 0 already done, 1 failed; 0 jobs summed over the days');
    expect(await db.prisma.slurmJob.count()).toBe(before);
    await db.prisma.ingestionRun.deleteMany({ where: { id: { gt: runsBefore } } });
  });
});

describe('npm run ingest over an sacct file that cannot be read as set up', () => {
  it.each([
    ['missing', null, 'cannot be read (ENOENT)'],
    [
      'not sacct output',
      'JobID,User,State\n1,ann,COMPLETED\n',
      'is not sacct --parsable2 output: the sacct output has no JobID column; the first line must be the header',
    ],
    ['empty', '', 'is not sacct --parsable2 output: the sacct output is empty (no header row)'],
    [
      // `sacct --parsable2 --duplicates --allusers -S … -E …` as docs/operations.md's export reads, without
      // --format (seen on the lab): its header row is there, and "the first line must be the header" said
      // otherwise, with no word of the columns to export.
      "sacct's default format",
      'JobID|JobName|Partition|Account|AllocCPUS|State|ExitCode\n1|w-ok|debug|physics|1|COMPLETED|0:0\n',
      "cannot be read: its header row has no User column, which a record needs (sacct's default --format leaves " +
        `User out): export it with --format=${SACCT_FORMAT.join(',')} (the columns the sacct source reads)`,
    ],
  ])(
    'FALLBACK_CSV %s: the first day fails, exit 1, no other day tried, nothing stored',
    async (label, text, reason) => {
      const file = path.join(dir, `setup-${label.replaceAll(' ', '-')}.psv`);
      if (text !== null) writeFileSync(file, text);
      const jobsBefore = await db.prisma.slurmJob.count();
      const runsBefore = await lastRunId();

      const result = await runIngestCli(['--from', '2026-10-01', '--to', '2026-10-31'], { FALLBACK_CSV: file });
      expect(result.code).toBe(1);
      expect(result.output).toContain(`2026-10-01: file: FALLBACK_CSV ${file} ${reason}`);
      // No source answered: the day's line said it failed 'via -'.
      expect(result.output).toMatch(/\] 1\/31 2026-10-01 failed: 0 jobs, 0 new, 0 updated, 0 skipped\n/);
      expect(result.output).not.toContain('via -');
      expect(result.output).toContain(
        'Backfill 2026-10-01 .. 2026-10-31 stopped: 0 day(s) read, 0 already done, 1 failed; 0 jobs summed over the days',
      );
      expect(result.output).toContain(
        'Stopped at 2026-10-01: no source can be read as it is set up (above), so the 30 day(s) after it were not tried; ' +
          'fix that and run the same command again.',
      );
      expect(await db.prisma.slurmJob.count()).toBe(jobsBefore);
      // One failed run, not one a day for the month.
      expect(await db.prisma.ingestionRun.count({ where: { id: { gt: runsBefore } } })).toBe(1);
      await db.prisma.ingestionRun.deleteMany({ where: { id: { gt: runsBefore } } });
    },
  );
});

describe('npm run ingest against the demo from a shell without its DATA_DIR', () => {
  // A newcomer pasting the banner's DATABASE_URL into a shell for another checkout, or after
  // `DATA_DIR=... npm start`, was told only that a FALLBACK_CSV they never set could not be read.
  it('says the file is the demo one under DATA_DIR and how to point the command at it', async () => {
    const dataDir = path.join(dir, 'another-directory', '.data');
    const runsBefore = await lastRunId();

    const result = await runIngestCli(['--from', '2026-10-01', '--to', '2026-10-02'], {
      DEMO_SEED: 'true',
      DATA_DIR: dataDir,
    });
    expect(result.code).toBe(1);
    expect(result.output).toContain(
      `2026-10-01: file: FALLBACK_CSV ${path.join(dataDir, 'demo', 'sacct-demo.psv')} cannot be read (ENOENT): ` +
        "with FALLBACK_CSV unset this is the demo's file under DATA_DIR, written when the demo is seeded; " +
        "give DATA_DIR as the app that seeded it has it (the start-up banner's line for another shell sets it), or set FALLBACK_CSV",
    );
    await db.prisma.ingestionRun.deleteMany({ where: { id: { gt: runsBefore } } });
  });
});

describe('npm run ingest over days not over yet', () => {
  it('reads today and a later day again on the next backfill, as they were read before they ended', async () => {
    const file = path.join(dir, 'sacct-today.psv');
    writeFileSync(file, 'JobID|JobIDRaw|User|State|ElapsedRaw|Start|End|AllocTRES\n');
    const today = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const days = ['--from', today, '--to', tomorrow];

    const first = await runIngestCli(days, { FALLBACK_CSV: file });
    expect(first.code).toBe(0);
    const again = await runIngestCli(days, { FALLBACK_CSV: file });
    expect(again.code).toBe(0);
    expect(again.output).toContain('2 day(s) read, 0 already done');
  });
});

describe('npm run ingest without a terminal (cron, a log file, CI)', () => {
  it('writes each day on a line of its own, without carriage returns that run the days into one line', async () => {
    const file = path.join(dir, 'sacct-days.psv');
    writeFileSync(
      file,
      'JobID|JobIDRaw|User|State|ElapsedRaw|Start|End|AllocTRES\n' +
        '21|21|ann|COMPLETED|600|2026-11-21T10:00:00|2026-11-21T10:10:00|cpu=1,mem=1G,node=1\n',
    );
    const written = new Date('2026-12-02T09:00:00Z');
    utimesSync(file, written, written);
    const result = await runIngestCli(['--from', '2026-11-21', '--to', '2026-11-23'], { FALLBACK_CSV: file });
    expect(result.code).toBe(0);
    expect(result.output).not.toContain('\r');
    const dayLines = result.output.split('\n').filter((line) => line.startsWith('['));
    expect(dayLines).toEqual([
      expect.stringMatching(/^\[#+-*\] 1\/3 2026-11-21 success via file: 1 jobs, 1 new, 0 updated, 0 skipped$/),
      expect.stringMatching(/^\[#+-*\] 2\/3 2026-11-22 success via file: 0 jobs, 0 new, 0 updated, 0 skipped$/),
      expect.stringMatching(/^\[#+\] 3\/3 2026-11-23 success via file: 0 jobs, 0 new, 0 updated, 0 skipped$/),
    ]);
  });
});

describe('npm run ingest stopped with Ctrl-C twice', () => {
  it('kills the sacct it was waiting for, with what its wrapper started', { timeout: 120_000 }, async () => {
    const wrapper = writeHangingSacctWrapper(path.join(dir, 'sacct-wrapper'));
    // Through npm, in a process group of its own as a terminal runs it: a Ctrl-C reaches npm and the
    // CLI, and npm passes it on to the CLI again. The first Ctrl-C stopped it at once, as a second.
    const cli = spawn(
      'npm',
      ['run', '--silent', 'ingest', '--', '--from', '2026-11-23', '--to', '2026-11-23', '--force'],
      {
        cwd: PROJECT_ROOT,
        detached: true,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '',
          DATABASE_URL: db.url,
          APP_TZ: 'UTC',
          LOG_LEVEL: 'error',
          DEMO_SEED: 'false',
          SACCT_PATH: wrapper.path,
          SACCT_TIMEOUT_MS: '600000',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    cli.stdout.on('data', (chunk) => {
      output += chunk;
    });
    cli.stderr.on('data', (chunk) => {
      output += chunk;
    });
    const exited = new Promise<number | null>((resolve) => cli.once('exit', resolve));
    try {
      expect(await waitFor(() => readSleepPid(wrapper.sleepPidFile) !== undefined, 60_000), output).toBe(true);
      const sleepPid = readSleepPid(wrapper.sleepPidFile) as number;
      const group = -(cli.pid as number);
      process.kill(group, 'SIGINT');
      expect(await waitFor(() => output.includes('Stopping after the current day'), 30_000), output).toBe(true);
      // A person's second Ctrl-C, not the first one delivered again: till then it waits for the day.
      await new Promise((resolve) => setTimeout(resolve, REPEATED_SIGNAL_MS));
      expect(cli.exitCode, output).toBeNull();
      expect(isRunning(sleepPid)).toBe(true);
      process.kill(group, 'SIGINT');
      await withHangGuard(exited, 30_000, 'the backfill after its second Ctrl-C');
      // npm ends as its script did (130), or by the signal, which it raises on itself once its script ended.
      expect(cli.exitCode === 130 || cli.signalCode === 'SIGINT', output).toBe(true);
      expect(await waitFor(() => !isRunning(sleepPid), 10_000), `sleep ${sleepPid} is still running`).toBe(true);
      // The day stopped part way is recorded failed, not left `running`, and is not done.
      const runs = await db.prisma.ingestionRun.findMany({
        where: { trigger: 'backfill', outcome: { in: ['failed', 'running'] } },
      });
      expect(
        runs.map((run) => [run.outcome, run.error]),
        output,
      ).toEqual([['failed', 'sacct: stopped: interrupted with Ctrl-C']]);
      expect(output).toContain('2026-11-23 was stopped part way and is not done');
    } finally {
      try {
        process.kill(-(cli.pid as number), 'SIGKILL');
      } catch {
        // already gone, as it should be
      }
      killLeftoverSleep(wrapper.sleepPidFile);
    }
  });
});

describe('npm run ingest stopped with one Ctrl-C', () => {
  const slowSacct = () => {
    const link = path.join(dir, 'sacct-slow-per-day');
    symlinkSync(FAKE_SACCT, link);
    return link;
  };

  it('a backfill finishes the current day, then exits 130 saying it was interrupted, not 0 as if it were done', {
    timeout: 60_000,
  }, async () => {
    // sacct takes 400 ms a day. Cron, or a script (`npm run ingest -- --from ... && next-step`), took
    // an interrupted backfill for a finished one: it exited 0.
    const cli = spawnIngestCli(['--from', '2026-10-01', '--to', '2026-10-10', '--force'], {
      SACCT_PATH: slowSacct(),
      SACCT_TIMEOUT_MS: '60000',
    });
    const closed = new Promise((resolve) => cli.child.once('close', resolve));
    try {
      expect(await waitFor(() => cli.output().includes('2026-10-01 success'), 30_000), cli.output()).toBe(true);
      process.kill(cli.child.pid as number, 'SIGINT');
      expect(await withHangGuard(cli.exited, 30_000, 'the backfill after its Ctrl-C'), cli.output()).toBe(130);
      await closed;
    } finally {
      cli.child.kill('SIGKILL');
    }
    expect(cli.stdout()).toMatch(
      /Backfill 2026-10-01 \.\. 2026-10-10 interrupted: [2-9] day\(s\) read, .* Interrupted \(Ctrl-C\); run the same command again to continue\.\n$/,
    );
    // The day under way when Ctrl-C came was finished: nothing is left half done or `running`.
    const runs = await db.prisma.ingestionRun.findMany({
      where: {
        trigger: 'backfill',
        windowStart: { gte: new Date('2026-10-01T00:00:00Z'), lt: new Date('2026-10-11T00:00:00Z') },
      },
      orderBy: { id: 'asc' },
    });
    expect(runs.length).toBeLessThan(10);
    expect(runs.every((run) => run.outcome === 'success')).toBe(true);
  });

  it('an incremental run through npm (which passes the Ctrl-C on again) is recorded failed and exits 130', {
    timeout: 60_000,
  }, async () => {
    const wrapper = writeHangingSacctWrapper(path.join(dir, 'sacct-wrapper-incremental'));
    // The Ctrl-C npm passed on was taken for a second one: the CLI exited at once, leaving its run
    // `running`; one reaching it alone exited 1 as a failed run.
    const cli = spawnCollecting('npm', ['run', '--silent', 'ingest'], {
      cwd: PROJECT_ROOT,
      env: {
        DATABASE_URL: db.url,
        APP_TZ: 'UTC',
        LOG_LEVEL: 'error',
        DEMO_SEED: 'false',
        SACCT_PATH: wrapper.path,
        SACCT_TIMEOUT_MS: '600000',
      },
      hasOwnProcessGroup: true,
    });
    try {
      expect(await waitFor(() => readSleepPid(wrapper.sleepPidFile) !== undefined, 60_000), cli.output()).toBe(true);
      const sleepPid = readSleepPid(wrapper.sleepPidFile) as number;
      process.kill(-(cli.child.pid as number), 'SIGINT');
      await withHangGuard(cli.exited, 30_000, 'the incremental run after its Ctrl-C');
      expect(cli.child.exitCode === 130 || cli.child.signalCode === 'SIGINT', cli.output()).toBe(true);
      expect(await waitFor(() => !isRunning(sleepPid), 10_000), `sleep ${sleepPid} is still running`).toBe(true);
    } finally {
      try {
        process.kill(-(cli.child.pid as number), 'SIGKILL');
      } catch {
        // already gone, as it should be
      }
      killLeftoverSleep(wrapper.sleepPidFile);
    }
    expect(cli.stdout()).toMatch(
      /^Ingestion run #\d+ interrupted \(Ctrl-C\): .*; window .+ \.\. .+, in \d+\.\d s\.\n$/,
    );
    const run = await db.prisma.ingestionRun.findFirst({ where: { trigger: 'schedule' }, orderBy: { id: 'desc' } });
    expect(run).toMatchObject({ outcome: 'failed', error: 'sacct: stopped: interrupted with Ctrl-C' });
    // The next incremental run reads the window again: it is not the high-water mark.
    await db.prisma.ingestionRun.deleteMany({ where: { trigger: 'schedule' } });
  });
});

describe('npm run ingest stopped with SIGTERM (systemctl stop, docker stop, Kubernetes, a timeout)', () => {
  /**
   * An sacct that answers 2026-08-01 and 2026-08-02 at once, each with one job of its own (job id
   * the day's digits), and hangs on any later day, as a busy cluster's sacct may for longer than the
   * SIGKILL that follows a SIGTERM waits. Each call appends its day, and its pid, to `<script>.calls`.
   */
  const writePerDaySacct = (script: string) => {
    mkdirSync(path.dirname(script), { recursive: true });
    writeFileSync(
      script,
      `#!/usr/bin/env node
const { appendFileSync } = require('node:fs');
const day = process.argv.find((arg) => arg.startsWith('--starttime=')).slice('--starttime='.length, '--starttime='.length + 10);
appendFileSync(${JSON.stringify(`${script}.calls`)}, \`\${day} \${process.pid}\\n\`);
if (day > '2026-08-02') setInterval(() => {}, 60_000);
else {
  const id = day.replaceAll('-', '');
  process.stdout.write('JobID|JobIDRaw|User|State|ElapsedRaw|Start|End|AllocTRES\\n' +
    \`\${id}|\${id}|ann|COMPLETED|600|\${day}T10:00:00|\${day}T10:10:00|cpu=1,mem=1G,node=1\\n\`);
}
`,
    );
    chmodSync(script, 0o755);
    return {
      path: script,
      calls: () => (existsSync(`${script}.calls`) ? readFileSync(`${script}.calls`, 'utf8') : ''),
    };
  };

  it('a backfill stops now: the day under way is recorded failed and stores nothing, the days before it stay, exit 143', {
    timeout: 60_000,
  }, async () => {
    const sacct = writePerDaySacct(path.join(dir, 'sigterm', 'sacct-per-day.cjs'));
    const before = await lastRunId();
    // SIGTERM took Node's default action: the process died mid-day, the day's run stayed `running`
    // until the next run relabelled it (and as a container's PID 1 it ignored SIGTERM until SIGKILL).
    const cli = spawnIngestCli(['--from', '2026-08-01', '--to', '2026-08-05', '--force'], {
      SACCT_PATH: sacct.path,
      SACCT_TIMEOUT_MS: '600000',
    });
    const closed = new Promise((resolve) => cli.child.once('close', resolve));
    let sacctPid: number | undefined;
    let stoppedInMs = Number.POSITIVE_INFINITY;
    try {
      expect(await waitFor(() => sacct.calls().includes('2026-08-03 '), 30_000), cli.output()).toBe(true);
      sacctPid = Number(/^2026-08-03 (\d+)$/m.exec(sacct.calls())?.[1]);
      const signalledAt = Date.now();
      process.kill(cli.child.pid as number, 'SIGTERM');
      const code = await withHangGuard(cli.exited, 30_000, 'the backfill after its SIGTERM');
      stoppedInMs = Date.now() - signalledAt;
      expect(code, `signal ${cli.child.signalCode}: ${cli.output()}`).toBe(143);
      await closed;
    } finally {
      cli.child.kill('SIGKILL');
      if (sacctPid && isRunning(sacctPid)) process.kill(sacctPid, 'SIGKILL');
    }
    // Well within the seconds before a SIGKILL (docker stop: 10 s): it did not wait for the day.
    expect(stoppedInMs).toBeLessThan(10_000);
    expect(await waitFor(() => !isRunning(sacctPid as number), 10_000), `sacct ${sacctPid} is still running`).toBe(
      true,
    );
    const runs = await db.prisma.ingestionRun.findMany({ where: { id: { gt: before } }, orderBy: { id: 'asc' } });
    expect(runs.map((run) => [run.windowStart.toISOString().slice(0, 10), run.outcome, run.error])).toEqual([
      ['2026-08-01', 'success', null],
      ['2026-08-02', 'success', null],
      [
        '2026-08-03',
        'failed',
        'sacct: stopped: interrupted by SIGTERM (a service manager, container runtime or timeout stopped the process)',
      ],
    ]);
    const jobs = await db.prisma.slurmJob.findMany({
      where: { jobId: { startsWith: '202608' } },
      orderBy: { jobId: 'asc' },
    });
    expect(jobs.map((job) => job.jobId)).toEqual(['20260801', '20260802']);
    expect(cli.stdout()).toMatch(
      /^Backfill 2026-08-01 \.\. 2026-08-05 interrupted: 2 day\(s\) read, .* Interrupted \(SIGTERM\): 2026-08-03 was stopped part way and is not done; run the same command again to continue\.\n$/,
    );
    await db.prisma.slurmJob.deleteMany({ where: { jobId: { startsWith: '202608' } } });
    await db.prisma.ingestionRun.deleteMany({ where: { id: { gt: before } } });
  });

  // A service manager or a container that runs `npm run ingest` sends SIGTERM to npm alone (docker
  // stop and Kubernetes signal PID 1; `kill` an operator types names one pid). npm passes it on to the
  // shell that runs the script, and that shell, which had not exec'd node, died and left the backfill
  // running on, orphaned: no result line, its sacct still running, the lock still held.
  it('through npm: SIGTERM to npm stops the backfill itself, which says so, leaving nothing running', {
    timeout: 90_000,
  }, async () => {
    const sacct = writePerDaySacct(path.join(dir, 'sigterm-npm', 'sacct-per-day.cjs'));
    const before = await lastRunId();
    const npm = spawnCollecting(
      'npm',
      ['run', '--silent', 'ingest', '--', '--from', '2026-08-01', '--to', '2026-08-05', '--force'],
      ingestCliOptions({ SACCT_PATH: sacct.path, SACCT_TIMEOUT_MS: '600000' }),
    );
    let sacctPid: number | undefined;
    let ingestPid: number | undefined;
    try {
      expect(await waitFor(() => sacct.calls().includes('2026-08-03 '), 60_000), npm.output()).toBe(true);
      sacctPid = Number(/^2026-08-03 (\d+)$/m.exec(sacct.calls())?.[1]);
      // sacct's parent is the CLI's node process, whatever runs it.
      ingestPid = Number(readFileSync(`/proc/${sacctPid}/stat`, 'utf8').split(') ')[1]?.split(' ')[1]);
      process.kill(npm.child.pid as number, 'SIGTERM');
      await withHangGuard(npm.exited, 30_000, 'npm after its SIGTERM');
      expect(await waitFor(() => !isRunning(ingestPid as number), 10_000), `ingest ${ingestPid} is still running`).toBe(
        true,
      );
      expect(await waitFor(() => !isRunning(sacctPid as number), 10_000), `sacct ${sacctPid} is still running`).toBe(
        true,
      );
    } finally {
      npm.child.kill('SIGKILL');
      for (const pid of [ingestPid, sacctPid]) if (pid && isRunning(pid)) process.kill(pid, 'SIGKILL');
    }
    expect(npm.stdout()).toMatch(
      /^Backfill 2026-08-01 \.\. 2026-08-05 interrupted: .* Interrupted \(SIGTERM\): 2026-08-03 was stopped part way and is not done; run the same command again to continue\.\n$/,
    );
    const runs = await db.prisma.ingestionRun.findMany({ where: { id: { gt: before } }, orderBy: { id: 'asc' } });
    expect(runs.map((run) => run.outcome)).toEqual(['success', 'success', 'failed']);
    await db.prisma.slurmJob.deleteMany({ where: { jobId: { startsWith: '202608' } } });
    await db.prisma.ingestionRun.deleteMany({ where: { id: { gt: before } } });
  });

  it('an incremental run (cron under a timeout, a systemd timer) is recorded failed and exits 143', {
    timeout: 60_000,
  }, async () => {
    const wrapper = writeHangingSacctWrapper(path.join(dir, 'sacct-wrapper-sigterm'));
    const cli = spawnIngestCli([], { SACCT_PATH: wrapper.path, SACCT_TIMEOUT_MS: '600000' });
    try {
      expect(await waitFor(() => readSleepPid(wrapper.sleepPidFile) !== undefined, 30_000), cli.output()).toBe(true);
      const sleepPid = readSleepPid(wrapper.sleepPidFile) as number;
      process.kill(cli.child.pid as number, 'SIGTERM');
      const code = await withHangGuard(cli.exited, 30_000, 'the incremental run after its SIGTERM');
      expect(code, `signal ${cli.child.signalCode}: ${cli.output()}`).toBe(143);
      expect(await waitFor(() => !isRunning(sleepPid), 10_000), `sleep ${sleepPid} is still running`).toBe(true);
    } finally {
      cli.child.kill('SIGKILL');
      killLeftoverSleep(wrapper.sleepPidFile);
    }
    expect(cli.stdout()).toMatch(
      /^Ingestion run #\d+ interrupted \(SIGTERM\): recorded failed, so the next run reads its window again; /,
    );
    const run = await db.prisma.ingestionRun.findFirst({ where: { trigger: 'schedule' }, orderBy: { id: 'desc' } });
    expect(run).toMatchObject({
      outcome: 'failed',
      error:
        'sacct: stopped: interrupted by SIGTERM (a service manager, container runtime or timeout stopped the process)',
    });
    await db.prisma.ingestionRun.deleteMany({ where: { trigger: 'schedule' } });
  });
});

describe('npm run ingest whose SSH session closes (SIGHUP)', () => {
  it('a backfill finishes the current day, leaving no run `running`, then exits 129', { timeout: 60_000 }, async () => {
    const link = path.join(dir, 'hangup', 'sacct-slow-per-day');
    mkdirSync(path.dirname(link), { recursive: true });
    symlinkSync(FAKE_SACCT, link);
    const before = await lastRunId();
    // SIGHUP took Node's default action: the process died mid-day, and that day's run stayed
    // `running` until the next run relabelled it.
    const cli = spawnIngestCli(['--from', '2026-09-01', '--to', '2026-09-10', '--force'], {
      SACCT_PATH: link,
      SACCT_TIMEOUT_MS: '60000',
    });
    try {
      expect(await waitFor(() => cli.output().includes('2026-09-01 success'), 30_000), cli.output()).toBe(true);
      // The terminal is gone with the session: what the CLI writes from now on has nowhere to go.
      cli.child.stdout.destroy();
      cli.child.stderr.destroy();
      process.kill(cli.child.pid as number, 'SIGHUP');
      await withHangGuard(cli.exited, 30_000, 'the backfill after its SIGHUP');
      expect(cli.child.exitCode, `signal ${cli.child.signalCode}: ${cli.output()}`).toBe(129);
    } finally {
      cli.child.kill('SIGKILL');
    }
    const runs = await db.prisma.ingestionRun.findMany({ where: { id: { gt: before } }, orderBy: { id: 'asc' } });
    expect(runs.length).toBeGreaterThan(1);
    expect(runs.length).toBeLessThan(10);
    expect(runs.map((run) => run.outcome)).toEqual(runs.map(() => 'success'));
  });
});

describe('npm run ingest stopped while it starts, before any run exists', () => {
  /** A database that takes connections and never answers them, as one that hangs does; each socket it holds, and whether its peer closed it. */
  async function listenSilently() {
    const sockets: { isClosed: boolean }[] = [];
    const server = net.createServer((socket) => {
      const seen = { isClosed: false };
      sockets.push(seen);
      socket.on('error', () => undefined);
      // Read and dropped, so that its end is seen.
      socket.resume();
      socket.on('close', () => {
        seen.isClosed = true;
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    return {
      url: `postgresql://postgres@127.0.0.1:${port}/ingest`,
      sockets,
      close: () => new Promise((resolve) => server.close(resolve)),
    };
  }

  it.each([
    ['SIGTERM', 'an incremental run', [], 'SIGTERM', 143],
    ['SIGINT', 'an incremental run', [], 'Ctrl-C', 130],
    ['SIGHUP', 'an incremental run', [], 'SIGHUP: the terminal or SSH session closed', 129],
    ['SIGTERM', 'a backfill', ['--from', '2026-07-01', '--to', '2026-07-03'], 'SIGTERM', 143],
    ['SIGINT', 'a backfill', ['--from', '2026-07-01', '--to', '2026-07-03'], 'Ctrl-C', 130],
  ] as const)(
    '%s while %s waits for a database that does not answer stops it at once, saying so',
    {
      timeout: 60_000,
    },
    async (signal, _what, args, label, exitCode) => {
      // It waited out DB_CONNECT_TIMEOUT_MS, then exited 1 saying the database cannot be reached: no
      // word that it was stopped, and a SIGKILL (docker stop's, 10 s on) came first.
      const database = await listenSilently();
      const cli = spawnIngestCli([...args], {
        DATABASE_URL: database.url,
        DB_CONNECT_TIMEOUT_MS: '15000',
        SACCT_PATH: '/bin/false',
      });
      let stoppedInMs = Number.POSITIVE_INFINITY;
      try {
        expect(await waitFor(() => database.sockets.length > 0, 30_000), cli.output()).toBe(true);
        const signalledAt = Date.now();
        process.kill(cli.child.pid as number, signal);
        const code = await withHangGuard(cli.exited, 30_000, `the start-up after its ${signal}`);
        stoppedInMs = Date.now() - signalledAt;
        expect(code, `signal ${cli.child.signalCode}: ${cli.output()}`).toBe(exitCode);
      } finally {
        cli.child.kill('SIGKILL');
        await database.close();
      }
      expect(stoppedInMs).toBeLessThan(5_000);
      expect(cli.stdout()).toBe(`Stopped (${label}) before any ingestion run started: nothing was read or recorded.\n`);
      // Its connection to the database was not left open.
      expect(database.sockets.every((socket) => socket.isClosed)).toBe(true);
    },
  );

  it('SIGTERM while an incremental run waits for the lock exits 143, leaving no run and no lock behind', {
    timeout: 60_000,
  }, async () => {
    // A backfill (or a server's run) holds the ingestion lock. The SIGTERM ended the wait as if the
    // lock had stayed taken: "No ingestion run: another run ... held the lock for 60 s", exit 75.
    const holder = await db.pool.connect();
    const before = await lastRunId();
    const lockSessions = async () => {
      const { rows } = await db.pool.query<{ pid: number; granted: boolean }>(
        `SELECT l.pid, l.granted FROM pg_locks l
          WHERE l.locktype = 'advisory' AND l.objid = $1 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        [ADVISORY_LOCK_KEYS.ingestion],
      );
      return rows;
    };
    const until = async (check: () => Promise<boolean>, guardMs: number) => {
      for (const deadline = Date.now() + guardMs; Date.now() < deadline; ) {
        if (await check()) return true;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return false;
    };
    let cli: ReturnType<typeof spawnIngestCli> | undefined;
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEYS.ingestion]);
      cli = spawnIngestCli([], { SACCT_PATH: '/bin/false' });
      const child = cli;
      expect(
        await until(async () => (await lockSessions()).some((lock) => !lock.granted), 30_000),
        child.output(),
      ).toBe(true);
      process.kill(child.child.pid as number, 'SIGTERM');
      const code = await withHangGuard(child.exited, 30_000, 'the incremental run after its SIGTERM');
      expect(code, `signal ${child.child.signalCode}: ${child.output()}`).toBe(143);
      expect(child.stdout()).toBe(
        'Stopped (SIGTERM) before any ingestion run started: nothing was read or recorded.\n',
      );
      // Its session, waiting for the lock, is gone with it: the lock is the holder's alone.
      expect(await until(async () => (await lockSessions()).length === 1, 10_000)).toBe(true);
    } finally {
      cli?.child.kill('SIGKILL');
      await holder.query('SELECT pg_advisory_unlock_all()');
      holder.release();
    }
    expect(await lastRunId()).toBe(before);
  });
});

describe('npm run ingest without --from and --to (cron, with INGEST_ENABLED=false on the server)', () => {
  it('runs one incremental run from where the last one ended, as the scheduler would', async () => {
    // sacct's local format in APP_TZ=UTC, for a job that ended within INGEST_LOOKBACK_DAYS.
    const local = (date: Date) => date.toISOString().slice(0, 19);
    const end = new Date(Date.now() - 3_600_000);
    const start = new Date(end.getTime() - 600_000);
    const file = path.join(dir, 'sacct-cron.psv');
    writeFileSync(
      file,
      'JobID|JobIDRaw|User|State|ElapsedRaw|Start|End|AllocTRES\n' +
        `31|31|ann|COMPLETED|600|${local(start)}|${local(end)}|cpu=1,mem=1G,node=1\n`,
    );
    const env = { FALLBACK_CSV: file, INGEST_OVERLAP_SEC: '900' };

    const first = await runIngestCli([], env);
    expect(first.output).not.toContain('Usage:');
    expect(first.code).toBe(0);
    expect(first.output).toMatch(/Ingestion run #\d+ success via file: 1 jobs, 1 new, 0 updated, 0 skipped/);

    const second = await runIngestCli([], env);
    expect(second.code).toBe(0);
    const runs = await db.prisma.ingestionRun.findMany({
      where: { trigger: 'schedule' },
      orderBy: { id: 'asc' },
      select: { outcome: true, windowStart: true, windowEnd: true },
    });
    expect(runs.map((run) => run.outcome)).toEqual(['success', 'success']);
    const [firstRun, secondRun] = runs as [(typeof runs)[0], (typeof runs)[0]];
    // The second reads from the first's end, less the overlap: incremental, as the server's runs.
    expect(secondRun.windowStart.getTime()).toBe(firstRun.windowEnd.getTime() - 900_000);
    expect(await db.prisma.slurmJob.count({ where: { jobId: '31' } })).toBe(1);
  });

  it('prints its result alone on stdout, and its warnings on stderr, for cron and scripts to tell apart', async () => {
    // The warnings (here, of a malformed record) came as JSON lines on stdout, between the result a
    // script or cron's mail read there.
    const local = (date: Date) => date.toISOString().slice(0, 19);
    // Within the window of an incremental run after the earlier tests' (their end less the overlap).
    const end = new Date(Date.now() - 60_000);
    const start = new Date(end.getTime() - 600_000);
    const file = path.join(dir, 'sacct-streams.psv');
    writeFileSync(
      file,
      'JobID|JobIDRaw|User|State|ElapsedRaw|Start|End|AllocTRES\n' +
        `41|41|ann|COMPLETED|600|${local(start)}|${local(end)}|cpu=1,mem=1G,node=1\n` +
        `42|42|ann|COMPLETED|ten minutes|${local(start)}|${local(end)}|\n`,
    );
    const cli = spawnCollecting(process.execPath, [compiledIngestCli()], {
      cwd: PROJECT_ROOT,
      // LOG_LEVEL's default, info, which the tools take as warn.
      env: { DATABASE_URL: db.url, APP_TZ: 'UTC', DEMO_SEED: 'false', FALLBACK_CSV: file, INGEST_OVERLAP_SEC: '900' },
    });
    // 'close' rather than 'exit': both streams have been read to their end.
    const closed = new Promise((resolve) => cli.child.once('close', resolve));
    expect(await cli.exited).toBe(0);
    await closed;
    // The result line and the run's notes under it, as /admin/ingestion shows them; no log line.
    expect(cli.stdout()).toMatch(
      /^Ingestion run #\d+ partial via file: \d+ jobs, \d+ new, 0 updated, 1 skipped; window .+\n {2}skipped: 1 job\(s\) skipped, first: .+\n {2}window: read up to .+\n$/,
    );
    const warnings = cli
      .stderr()
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as { level: number; msg: string });
    expect(warnings).toContainEqual(expect.objectContaining({ level: 40, msg: 'skipped a malformed record' }));
  });

  it('says, under a run that succeeded through a fallback, why the sources before it did not answer', async () => {
    // `npm run ingest` is how an admin tries the Slurm settings: with slurmrestd's token refused and sacct
    // answering, it printed "success via sacct" alone, the refusal being a JSON line on stderr, so the
    // settings looked right. Here sacct cannot be run and the file behind it answers (LOG_LEVEL=error:
    // the output is stdout alone).
    const local = (date: Date) => date.toISOString().slice(0, 19);
    const end = new Date(Date.now() - 60_000);
    const start = new Date(end.getTime() - 600_000);
    const file = path.join(dir, 'sacct-behind-sacct.psv');
    writeFileSync(
      file,
      'JobID|JobIDRaw|Cluster|User|State|ElapsedRaw|Start|End|AllocTRES\n' +
        `51|51|lab|ann|COMPLETED|600|${local(start)}|${local(end)}|cpu=1,mem=1G,node=1\n`,
    );
    const sacctPath = path.join(dir, 'no-such-sacct');
    const result = await runIngestCli([], { FALLBACK_CSV: file, SACCT_PATH: sacctPath, INGEST_OVERLAP_SEC: '900' });
    expect(result.code).toBe(0);
    const lines = result.output.split('\n');
    expect(lines[0]).toMatch(/^Ingestion run #\d+ success via file: \d+ jobs, 1 new, 0 updated, 0 skipped; window /);
    // The file's note on the window it read follows, as /admin/ingestion shows it.
    expect(lines.slice(1)).toEqual([
      `  sacct: configuration error: SACCT_PATH ${sacctPath} cannot be run (ENOENT)`,
      expect.stringMatching(/^ {2}window: read up to .+, when the file was last written/),
      '',
    ]);
  });

  it('says, under a run slurmrestd answered, that its user may read only its own jobs', async () => {
    // docs/operations.md has the admin try the ingestion account with `npm run ingest`: as a user of
    // level None it printed "success via slurmrestd" alone, the warning a JSON line on stderr (seen on
    // the lab), though under PrivateData=jobs that user's own jobs are all it reads.
    const fixtures = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05/private-data-jobs');
    const slurmrestd = http.createServer((req, res) => {
      const asked = req.url ?? '';
      const file = asked.startsWith('/slurmdb/v0.0.38/jobs?')
        ? 'rest-dbv0.0.38-jobs-as-alice.json'
        : asked === '/slurmdb/v0.0.38/user/alice'
          ? 'rest-dbv0.0.38-user-alice.json'
          : null;
      res.writeHead(file ? 200 : 404, { 'content-type': 'application/json' });
      res.end(file ? readFileSync(path.join(fixtures, file)) : '{}');
    });
    await new Promise<void>((resolve) => slurmrestd.listen(0, '127.0.0.1', resolve));
    const runsBefore = await lastRunId();
    try {
      const result = await runIngestCli([], {
        SLURMRESTD_URL: `http://127.0.0.1:${(slurmrestd.address() as net.AddressInfo).port}`,
        SLURMRESTD_USER: 'alice',
        SLURMRESTD_TOKEN: 'token',
        SLURMRESTD_API_VERSION: 'v0.0.38',
        SLURM_CLUSTER: 'lab',
      });
      expect(result.code).toBe(0);
      const lines = result.output.split('\n');
      expect(lines[0]).toMatch(/^Ingestion run #\d+ success via slurmrestd: /);
      expect(lines.slice(1)).toEqual([
        "  access: SLURMRESTD_USER alice has administrator level None in Slurm's accounting: where slurmdbd.conf " +
          'sets PrivateData=jobs (sacctmgr show configuration says; slurmrestd cannot tell), slurmrestd answers ' +
          "alice's own jobs alone, with no error, and every other user's go unread and unbilled. As root: " +
          'sacctmgr modify user alice set adminlevel=Operator',
        '',
      ]);
    } finally {
      await new Promise<void>((resolve) => slurmrestd.close(() => resolve()));
      // Later tests read from where the newest run ended, and count the jobs they store.
      await db.prisma.ingestionRun.deleteMany({ where: { id: { gt: runsBefore } } });
      await db.prisma.slurmJob.deleteMany({ where: { cluster: 'lab', user: 'alice' } });
    }
  });

  it("names the run's window in APP_TZ, as pages give times, not in UTC", async () => {
    const runsBefore = await lastRunId();
    const before = Date.now();
    const cli = spawnIngestCli([], { APP_TZ: 'Asia/Bangkok', FALLBACK_CSV: path.join(dir, 'no-such-file.psv') });
    const closed = new Promise((resolve) => cli.child.once('close', resolve));
    expect(await cli.exited).toBe(1);
    await closed;
    const stamp = String.raw`(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \(Asia/Bangkok\)`;
    const window = new RegExp(String.raw`; window ${stamp} \.\. ${stamp}, in \d+\.\d s\.\n$`).exec(cli.stdout());
    expect(window, cli.stdout()).not.toBeNull();
    // The end is when the run started, on Bangkok's clock (UTC+7, no summer time): not UTC's.
    const endAsUtc = Date.parse(`${window?.[2]?.replace(' ', 'T')}Z`) - 7 * 3_600_000;
    expect(endAsUtc).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 - 1000);
    expect(endAsUtc).toBeLessThanOrEqual(Date.now());
    await db.prisma.ingestionRun.deleteMany({ where: { id: { gt: runsBefore } } });
  });

  it('exits 1 with the reason when no source answers, its result line on stdout as a successful run has it', async () => {
    // A failed run printed its line on stderr, in another form (`(window …)`), so `>result 2>>log`
    // or a wrapper reading stdout got nothing for it, and a log read for result lines missed it.
    const cli = spawnCollecting(process.execPath, [compiledIngestCli()], {
      cwd: PROJECT_ROOT,
      env: {
        DATABASE_URL: db.url,
        APP_TZ: 'UTC',
        DEMO_SEED: 'false',
        FALLBACK_CSV: path.join(dir, 'no-such-file.psv'),
      },
    });
    const closed = new Promise((resolve) => cli.child.once('close', resolve));
    expect(await cli.exited).toBe(1);
    await closed;
    expect(cli.stdout()).toMatch(
      /^Ingestion run #\d+ failed: file: .*no-such-file\.psv.*; window .+ \.\. .+, in \d+\.\d s\.\n$/,
    );
    // stderr has the details as JSON log lines, and nothing else.
    const logLines = cli
      .stderr()
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as { level: number; msg: string });
    expect(logLines).toContainEqual(expect.objectContaining({ level: 50, msg: 'ingestion run failed' }));
  });
});

describe('npm run ingest with bad arguments', () => {
  it.each([
    [['--from', '2026-13-01', '--to', '2026-13-02'], '--from: 2026-13-01 is not a calendar date (YYYY-MM-DD)'],
    [['--from', '2026-02-30', '--to', '2026-03-01'], '--from: 2026-02-30 is not a calendar date (YYYY-MM-DD)'],
    [['--from', '2026-03-01', '--to', '2026-03-01', '--force=yes'], "Option '--force' does not take an argument"],
    [['--form', '2026-03-01', '--to', '2026-03-01'], "Unknown option '--form'"],
  ])('%j exits 64 with the problem and the usage', async (args, message) => {
    // From source: the usage names the command as this copy runs (src/shared/tool-commands.ts), and a
    // build names the :prod script.
    const result = await runIngestCliFromSource(args);
    expect(result.code).toBe(64);
    expect(result.output).toContain(message);
    expect(result.output).toContain('Usage: npm run ingest --');
  });
});
