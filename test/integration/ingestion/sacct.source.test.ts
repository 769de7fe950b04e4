import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SourceConfigError, SourceUnavailableError } from '../../../src/modules/ingestion/job-source.js';
import { createSacctSource, type SacctSourceOptions } from '../../../src/modules/ingestion/sacct.source.js';
import type { SourceItem } from '../../../src/modules/ingestion/slurm-job.model.js';
import {
  isRunning,
  killLeftoverSleep,
  readSleepPid,
  waitFor,
  withHangGuard,
  writeHangingSacctWrapper,
} from '../../support/hung-sacct.js';

const FAKE_SACCT = path.resolve(import.meta.dirname, '../../fixtures/slurm/fake-sacct.mjs');
const WINDOW = { start: new Date('2026-11-23T15:40:43Z'), end: new Date('2026-11-23T15:47:01Z') };
let dir: string;

/** The fake sacct under a name that picks its behaviour (see the script's header). */
function fakeSacct(mode: string): string {
  const link = path.join(dir, `sacct-${mode}`);
  if (!existsSync(link)) symlinkSync(FAKE_SACCT, link);
  return link;
}

const options = (sacctPath: string, overrides: Partial<SacctSourceOptions> = {}): SacctSourceOptions => ({
  sacctPath,
  timeZone: 'Asia/Bangkok',
  cluster: undefined,
  defaultCluster: 'lab',
  // Read when the source runs, so a test's change to the environment reaches sacct as a restart would.
  inheritedEnvironment: process.env,
  timeoutMs: 5000,
  // Whoever runs the tests: no PrivateData check (private-data-jobs.test.ts), so sacctmgr is asked only as these tests say.
  runAs: null,
  ...overrides,
});

async function collect(iterable: AsyncIterable<SourceItem>): Promise<SourceItem[]> {
  const items: SourceItem[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

const argsOf = (sacctPath: string): string[][] =>
  readFileSync(`${sacctPath}.args`, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));

/** A wrapper script that runs the fake sacct of `mode` as its child, passing its arguments on. */
function wrapperAround(mode: string): string {
  const script = path.join(dir, `wrapper-${mode}`);
  writeFileSync(
    script,
    `#!/bin/bash\n'${fakeSacct(mode)}' "$@"\nstatus=$?\necho "wrapper: sacct exited with $status" >&2\nexit $status\n`,
  );
  chmodSync(script, 0o755);
  return script;
}

const sleepPidFiles: string[] = [];

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'fake-sacct-'));
});
afterEach(() => {
  // A test that failed must not leave its sleep behind.
  for (const file of sleepPidFiles.splice(0)) killLeftoverSleep(file);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sacct source with a fake sacct executable', () => {
  it('streams the captured output as jobs, with fixed arguments and no shell', async () => {
    const sacct = fakeSacct('ok');
    const items = await collect(createSacctSource(options(sacct, { cluster: 'lab' })).read(WINDOW));
    expect(items.filter((item) => item.kind === 'job')).toHaveLength(12);
    const [args] = argsOf(sacct);
    expect(args).toEqual([
      '--parsable2',
      '--noconvert',
      expect.stringMatching(/^--format=JobID,JobIDRaw,Cluster,User,/),
      '--state=BF,CA,CD,DL,F,NF,OOM,PR,RS,TO',
      '--duplicates',
      // The window in the cluster's zone (Asia/Bangkok, UTC+7).
      '--starttime=2026-11-23T22:40:43',
      '--endtime=2026-11-23T22:47:01',
      '--allusers',
      '--clusters=lab',
    ]);
  });

  it('runs sacct in APP_TZ, so its times are read right on a host kept in another zone', async () => {
    // sacct prints (and reads -S/-E) in its own process's zone: on a host in UTC with APP_TZ
    // Asia/Bangkok, every time was stored 7 hours early.
    const hostZone = process.env.TZ;
    process.env.TZ = 'UTC';
    try {
      const times = (items: SourceItem[]) =>
        items.flatMap((item) =>
          item.kind === 'job'
            ? [
                [
                  item.job.jobKey,
                  item.job.submitAt?.toISOString(),
                  item.job.startAt?.toISOString(),
                  item.job.endAt?.toISOString(),
                ],
              ]
            : [],
        );
      const read = await collect(createSacctSource(options(fakeSacct('local-time'))).read(WINDOW));
      // The capture's times are UTC (the lab's zone), read here as UTC: the real times.
      const real = await collect(createSacctSource(options(fakeSacct('ok'), { timeZone: 'UTC' })).read(WINDOW));
      expect(times(real)).toHaveLength(12);
      expect(times(read)).toEqual(times(real));
    } finally {
      if (hostZone === undefined) delete process.env.TZ;
      else process.env.TZ = hostZone;
    }
  });

  it("reads every job whatever SLURM_TIME_FORMAT the server's environment has (a login profile's)", async () => {
    // Sites set it for people (`%F %T`); sacct then prints `2026-11-23 15:40:43`, and every job
    // was skipped as malformed in a run that still completed its window.
    const saved = { TZ: process.env.TZ, SLURM_TIME_FORMAT: process.env.SLURM_TIME_FORMAT };
    process.env.TZ = 'UTC';
    process.env.SLURM_TIME_FORMAT = '%F %T';
    try {
      const items = await collect(
        createSacctSource(options(fakeSacct('local-time'), { timeZone: 'UTC' })).read(WINDOW),
      );
      expect(items.filter((item) => item.kind === 'skip')).toEqual([]);
      expect(items.filter((item) => item.kind === 'job')).toHaveLength(12);
    } finally {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it("reads a window longer than slurmdbd's MaxQueryTimeRange in slices it accepts", async () => {
    // slurmdbd refuses a query over more than MaxQueryTimeRange ("Too wide of a date range in query");
    // each run over such a window failed, and as a failed run does not move the window, for good.
    const sacct = fakeSacct('max-range-6h');
    const window = { start: new Date('2026-11-22T00:00:00Z'), end: new Date('2026-11-23T02:00:00Z') };
    const items = await collect(createSacctSource(options(sacct, { timeZone: 'UTC' })).read(window));
    expect(items.filter((item) => item.kind === 'job').length).toBeGreaterThan(0);
    const windows = argsOf(sacct).map((args) =>
      args.filter((arg) => /^--(start|end)time=/.test(arg)).map((arg) => arg.split('=')[1]),
    );
    expect(windows).toEqual([
      ['2026-11-22T00:00:00', '2026-11-23T00:00:00'], // refused
      ['2026-11-22T00:00:00', '2026-11-22T12:00:00'], // refused
      ['2026-11-22T00:00:00', '2026-11-22T06:00:00'],
      ['2026-11-22T06:00:00', '2026-11-22T12:00:00'],
      ['2026-11-22T12:00:00', '2026-11-22T18:00:00'],
      ['2026-11-22T18:00:00', '2026-11-23T00:00:00'],
      ['2026-11-23T00:00:00', '2026-11-23T02:00:00'],
    ]);
  });

  it('names the start of the shortest slice, still refused as too wide, in APP_TZ as pages give times', async () => {
    const sacct = fakeSacct('max-range-0');
    const window = { start: new Date('2026-11-22T00:00:30Z'), end: new Date('2026-11-22T00:02:30Z') };
    await expect(collect(createSacctSource(options(sacct, { timeZone: 'Asia/Bangkok' })).read(window))).rejects.toThrow(
      /for the 60 s from 2026-11-22 07:00:30 \(Asia\/Bangkok\), the shortest slice a window is read in$/,
    );
  });

  it('reads a long window a day at a time, so a busy week is not one sacct killed on every run', async () => {
    // The first run's INGEST_LOOKBACK_DAYS, or a catch-up after an outage: one sacct over five days
    // took longer than SACCT_TIMEOUT_MS, was killed, and each run after it read a longer window.
    const sacct = fakeSacct('slow-per-day');
    const week = { start: new Date('2026-11-18T15:40:43Z'), end: new Date('2026-11-23T15:47:01Z') };
    const items = await collect(createSacctSource(options(sacct, { timeoutMs: 1500, timeZone: 'UTC' })).read(week));
    expect(items.filter((item) => item.kind === 'skip')).toEqual([]);
    const windows = argsOf(sacct).map((args) =>
      args.filter((arg) => /^--(start|end)time=/.test(arg)).map((arg) => arg.split('=')[1]),
    );
    expect(windows).toEqual([
      ['2026-11-18T15:40:43', '2026-11-19T15:40:43'],
      ['2026-11-19T15:40:43', '2026-11-20T15:40:43'],
      ['2026-11-20T15:40:43', '2026-11-21T15:40:43'],
      ['2026-11-21T15:40:43', '2026-11-22T15:40:43'],
      ['2026-11-22T15:40:43', '2026-11-23T15:40:43'],
      ['2026-11-23T15:40:43', '2026-11-23T15:47:01'],
    ]);
  });

  it("reads the cluster SLURM_CLUSTER names, whatever SLURM_CLUSTERS the server's environment has", async () => {
    // Slurm's own SLURM_CLUSTERS (`all`, another cluster) is sacct's `--clusters`; inherited, sacct
    // read other clusters than slurmrestd, which never sees it, so a switch of source changed the bill.
    const saved = process.env.SLURM_CLUSTERS;
    process.env.SLURM_CLUSTERS = 'all';
    try {
      const sacct = fakeSacct('ok');
      await collect(createSacctSource(options(sacct)).read(WINDOW));
      const environments = readFileSync(`${sacct}.env`, 'utf8').trim().split('\n');
      expect(JSON.parse(environments.at(-1) ?? '')).toEqual({ TZ: 'Asia/Bangkok', SLURM_TIME_FORMAT: 'standard' });
      expect(argsOf(sacct).at(-1)).not.toContainEqual(expect.stringMatching(/^--clusters/));
    } finally {
      if (saved === undefined) delete process.env.SLURM_CLUSTERS;
      else process.env.SLURM_CLUSTERS = saved;
    }
  });

  it('asks for one validated user, and refuses a name that could be an option', async () => {
    const sacct = fakeSacct('ok-user');
    await expect(collect(createSacctSource(options(sacct)).read(WINDOW, { user: '-x;rm' }))).rejects.toThrow(
      SourceConfigError,
    );
  });

  it('reports a non-zero exit with the end of stderr', async () => {
    const sacct = fakeSacct('fail');
    await expect(collect(createSacctSource(options(sacct)).read(WINDOW))).rejects.toThrow(
      new SourceUnavailableError(
        'sacct exited with 1: sacct: error: Problem talking to the database: Connection refused',
      ),
    );
  });

  it('kills a hung sacct after the timeout', async () => {
    const sacct = fakeSacct('hang');
    await expect(collect(createSacctSource(options(sacct, { timeoutMs: 300 })).read(WINDOW))).rejects.toThrow(
      new SourceUnavailableError('sacct did not finish within 300 ms; killed'),
    );
  });

  it('kills what a wrapper script started too when sacct times out', { timeout: 60_000 }, async () => {
    const wrapper = writeHangingSacctWrapper(path.join(dir, 'sacct-wrapper-hang'));
    sleepPidFiles.push(wrapper.sleepPidFile);
    const run = collect(createSacctSource(options(wrapper.path, { timeoutMs: 1000 })).read(WINDOW));
    await expect(withHangGuard(run, 30_000, 'the sacct run')).rejects.toThrow(
      new SourceUnavailableError('sacct did not finish within 1000 ms; killed'),
    );
    const sleepPid = readSleepPid(wrapper.sleepPidFile) as number;
    expect(sleepPid).toBeGreaterThan(0);
    expect(await waitFor(() => !isRunning(sleepPid), 10_000), `sleep ${sleepPid} is still running`).toBe(true);
  });

  it('reads jobs through a wrapper script, and reports its stderr when it fails', async () => {
    const items = await collect(createSacctSource(options(wrapperAround('ok'))).read(WINDOW));
    expect(items.filter((item) => item.kind === 'job')).toHaveLength(12);

    await expect(collect(createSacctSource(options(wrapperAround('fail'))).read(WINDOW))).rejects.toThrow(
      new SourceUnavailableError(
        'sacct exited with 1: sacct: error: Problem talking to the database: Connection refused / wrapper: sacct exited with 1',
      ),
    );
  });

  describe('a SLURM_CLUSTER the accounting database does not know', () => {
    // A real sacct 22.05 given `--clusters=lba` (the lab's cluster is `lab`) prints its header
    // alone and exits 0, exactly as for a quiet window: the source asks sacctmgr which clusters
    // the accounting database knows before it calls such an answer "no jobs".
    it('fails the read with an error naming SLURM_CLUSTER, its value and the known clusters', async () => {
      const sacctmgr = fakeSacct('sacctmgr-ok');
      const read = collect(
        createSacctSource(options(fakeSacct('unknown-cluster'), { cluster: 'lba', sacctmgrPath: sacctmgr })).read(
          WINDOW,
        ),
      );
      await expect(read).rejects.toThrow(SourceConfigError);
      await expect(read).rejects.toThrow(
        'SLURM_CLUSTER is "lba", a cluster the Slurm accounting database does not know (it knows: lab): ' +
          'sacct --clusters=lba reads no jobs at all. Set SLURM_CLUSTER to one of those, or unset it',
      );
      expect(argsOf(sacctmgr)).toEqual([['--noheader', '--parsable2', 'show', 'cluster', 'format=cluster']]);
    });

    it('takes an empty answer for a cluster it knows (in any case, as sacct does) as a quiet window', async () => {
      for (const cluster of ['lab', 'LAB']) {
        const items = await collect(
          createSacctSource(
            options(fakeSacct('unknown-cluster'), { cluster, sacctmgrPath: fakeSacct('sacctmgr-ok') }),
          ).read(WINDOW),
        );
        expect(items).toEqual([]);
      }
    });

    it('does not ask sacctmgr when sacct printed jobs, nor when no cluster is set', async () => {
      const sacctmgr = fakeSacct('sacctmgr-fail');
      const jobs = await collect(
        createSacctSource(options(fakeSacct('ok'), { cluster: 'lab', sacctmgrPath: sacctmgr })).read(WINDOW),
      );
      expect(jobs).toHaveLength(12);
      await collect(createSacctSource(options(fakeSacct('unknown-cluster'), { sacctmgrPath: sacctmgr })).read(WINDOW));
      expect(existsSync(`${sacctmgr}.args`)).toBe(false);
    });

    it('fails the read, rather than taking it as empty, when sacctmgr cannot say which clusters exist', async () => {
      await expect(
        collect(
          createSacctSource(
            options(fakeSacct('unknown-cluster'), { cluster: 'lba', sacctmgrPath: fakeSacct('sacctmgr-fail') }),
          ).read(WINDOW),
        ),
      ).rejects.toThrow(
        new SourceUnavailableError(
          'sacct --clusters=lba read no jobs, and the clusters the accounting database knows could not be read ' +
            'to tell a quiet window from a wrong SLURM_CLUSTER: sacctmgr exited with 1: ' +
            'sacctmgr: error: Problem talking to the database: Connection refused',
        ),
      );
      await expect(
        collect(
          createSacctSource(
            options(fakeSacct('unknown-cluster'), { cluster: 'lba', sacctmgrPath: path.join(dir, 'no-sacctmgr') }),
          ).read(WINDOW),
        ),
      ).rejects.toThrow(/SACCTMGR_PATH .*no-sacctmgr cannot be run \(ENOENT\)/);
    });
  });

  it('says a bare SACCT_PATH is not on PATH, naming that PATH, when it runs and on the notes before it is needed', async () => {
    // `SACCT_PATH=sacct` from cron, whose PATH (/usr/bin:/bin) lacks a site's /opt/slurm/bin: it said
    // only "cannot be run (ENOENT)", and the notes' early warning did not check a bare name at all.
    const onPath = createSacctSource(
      options(path.basename(fakeSacct('ok')), {
        inheritedEnvironment: { ...process.env, PATH: `/nonexistent-bin:${dir}:${path.dirname(process.execPath)}` },
      }),
    );
    expect(await onPath.findSetupProblem?.()).toBeNull();
    expect((await collect(onPath.read(WINDOW))).filter((item) => item.kind === 'job')).toHaveLength(12);

    const missing = createSacctSource(
      options('sacct-not-here', { inheritedEnvironment: { ...process.env, PATH: '/nonexistent-bin:/also-not' } }),
    );
    const expected =
      'SACCT_PATH sacct-not-here cannot be run (ENOENT): no sacct-not-here on the PATH sacct is run with ' +
      '(/nonexistent-bin:/also-not); set SACCT_PATH to its full path (command -v sacct on a login node, e.g. /usr/bin/sacct)';
    await expect(collect(missing.read(WINDOW))).rejects.toEqual(new SourceConfigError(expected));
    expect(await missing.findSetupProblem?.()).toBe(expected);
    const noPath = createSacctSource(
      options('sacct-not-here', { inheritedEnvironment: { ...process.env, PATH: undefined } }),
    );
    expect(await noPath.findSetupProblem?.()).toMatch(
      /no sacct-not-here on the PATH sacct is run with \(unset: \/usr\/bin:\/bin\)/,
    );
  });

  it('calls a missing binary a configuration error', async () => {
    await expect(collect(createSacctSource(options(path.join(dir, 'no-such-sacct'))).read(WINDOW))).rejects.toThrow(
      /SACCT_PATH .*no-such-sacct cannot be run \(ENOENT\)/,
    );
  });
});
