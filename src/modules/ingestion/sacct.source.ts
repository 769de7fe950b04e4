import { execFile, spawn } from 'node:child_process';
import { access, constants, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { formatZonedTimeSeconds } from '../../shared/local-date.js';
import type { CpuBasis } from '../pricing/pricing.js';
import { type AllocationsOnly, StepRowWatch } from './allocations-only.js';
import {
  halfSlice,
  type IngestWindow,
  type JobSource,
  MIN_SLICE_MS,
  QUERY_TOO_WIDE_TEXT,
  QueryTooWideError,
  type ReadOptions,
  RunStoppedError,
  SourceConfigError,
  SourceUnavailableError,
  throwIfStopped,
  validateUsername,
} from './job-source.js';
import { readLineChunks } from './line-reader.js';
import { SACCT_FORMAT, SacctParser } from './sacct.parser.js';
import {
  isJobsPrivate,
  isPrivilegedLevel,
  privateJobsSacctMessage,
  readDbdPrivateData,
  readSacctmgrAdminLevel,
  readSacctmgrCoordinatedAccounts,
  readSlurmUserId,
} from './slurm-access.js';
import type { NormalizedJob, SourceItem } from './slurm-job.model.js';
import { formatSacctWindowEdge, SACCT_TERMINAL_STATE_LIST, truncate } from './slurm-time.parser.js';

export interface SacctSourceOptions {
  sacctPath: string;
  timeZone: string;
  /** Passed as `--clusters` when set; also the cluster of rows without one. */
  cluster: string | undefined;
  defaultCluster: string;
  timeoutMs: number;
  /**
   * Asked which clusters the accounting database knows when sacct reads no jobs for `cluster`
   * (SACCTMGR_PATH); default: `sacctmgr` beside `sacctPath`.
   */
  sacctmgrPath?: string;
  /**
   * The user sacct runs as (this process's), whose right to read every job is checked before each
   * read (createAccessCheck); default: os.userInfo(). Null: not known, not checked.
   */
  runAs?: { uid: number; name: string } | null;
  /** The environment sacct and sacctmgr inherit (the app's, from configuration); see sacctEnvironment. */
  inheritedEnvironment: Readonly<Record<string, string | undefined>>;
  /**
   * PRICING_CPU_BASIS. sacct output without step rows (a SACCT_PATH wrapper that adds -X) is refused
   * under `used` and read with its TotalCPU stored as not known under `allocated` (allocations-only.ts);
   * unset: read as is.
   */
  cpuBasis?: CpuBasis;
}

/** `sacctmgr` in the directory of `sacctPath` (or on PATH when that is a bare name). */
export function defaultSacctmgrPath(sacctPath: string): string {
  return sacctPath.includes('/') ? path.join(path.dirname(sacctPath), 'sacctmgr') : 'sacctmgr';
}

/** The arguments sacct gets for a window: fixed columns, terminal states only, times in the cluster's zone. */
export function buildSacctArgs(options: SacctSourceOptions, window: IngestWindow, readOptions?: ReadOptions): string[] {
  const args = [
    '--parsable2',
    '--noconvert',
    `--format=${SACCT_FORMAT.join(',')}`,
    `--state=${SACCT_TERMINAL_STATE_LIST}`,
    // Every job of a reused job id (reused-job-id.ts), as slurmrestd returns them: without it sacct
    // may print only the newest of a job id's jobs.
    '--duplicates',
    // No reading of an edge in the hour repeated when summer time ends may narrow the window.
    `--starttime=${formatSacctWindowEdge(window.start, options.timeZone, 'start')}`,
    `--endtime=${formatSacctWindowEdge(window.end, options.timeZone, 'end')}`,
  ];
  if (readOptions?.user !== undefined) args.push(`--user=${validateUsername(readOptions.user)}`);
  else args.push('--allusers');
  if (options.cluster) args.push(`--clusters=${options.cluster}`);
  return args;
}

/**
 * The arguments sacct gets to read jobs again by id (readEarlierSteps): the window's columns, no
 * `--state` (a job is read with its steps in any state), and `--starttime` at the earliest start among
 * them rather than `-j`'s default of Epoch 0 (which would print every earlier job of a reused id); every
 * step of a job started at or after its start, so none is left out. slurmdbd never measures a query that
 * names jobs against MaxQueryTimeRange (proc_req.c, _get_jobs_cond; seen on the lab with a range of 2
 * minutes: 22.05/max-query-time-range), so a job that ran longer than that range is read whole.
 */
export function buildSacctRereadArgs(
  options: SacctSourceOptions,
  jobIds: readonly string[],
  range: IngestWindow,
  readOptions?: ReadOptions,
): string[] {
  const args = [
    '--parsable2',
    '--noconvert',
    `--format=${SACCT_FORMAT.join(',')}`,
    '--duplicates',
    `--jobs=${jobIds.join(',')}`,
    `--starttime=${formatSacctWindowEdge(range.start, options.timeZone, 'start')}`,
    `--endtime=${formatSacctWindowEdge(range.end, options.timeZone, 'end')}`,
  ];
  if (readOptions?.user !== undefined) args.push(`--user=${validateUsername(readOptions.user)}`);
  else args.push('--allusers');
  if (options.cluster) args.push(`--clusters=${options.cluster}`);
  return args;
}

/** Runs sacct (never through a shell) and streams its output through the sacct parser. */
export function createSacctSource(options: SacctSourceOptions): JobSource {
  // A cluster sacctmgr listed once stays known: deleting a cluster from slurmdbd is rare and
  // deliberate, and a quiet window then costs no sacctmgr call.
  const cluster = options.cluster ? createClusterCheck(options, options.cluster) : undefined;
  const checkAccess = createAccessCheck(options);
  return {
    name: 'sacct',
    async *read(window, readOptions) {
      await checkAccess(readOptions?.signal);
      yield* readInSlices(options, window, readOptions, cluster);
    },
    async findSetupProblem() {
      return (await findSacctPathProblem(options))?.message ?? null;
    },
  };
}

/**
 * Why SACCT_PATH cannot be run, as a run would meet it (`SACCT_PATH … cannot be run (ENOENT)`), with
 * the error's code; null when it can. A bare name is looked up on the PATH sacct is run with, as spawn does.
 */
export async function findSacctPathProblem(
  options: Pick<SacctSourceOptions, 'sacctPath' | 'inheritedEnvironment' | 'timeZone'>,
): Promise<{ code: string; message: string } | null> {
  if (!options.sacctPath.includes('/')) {
    const env = sacctEnvironment(options.inheritedEnvironment, options.timeZone);
    if (await isOnPath(options.sacctPath, env.PATH)) return null;
    return { code: 'ENOENT', message: cannotRun(options.sacctPath, 'ENOENT', env.PATH) };
  }
  try {
    // A directory passes the X_OK check (it may be entered), and spawn fails on it with EACCES.
    if ((await stat(options.sacctPath)).isDirectory()) {
      return { code: 'EISDIR', message: cannotRun(options.sacctPath, 'EISDIR', undefined) };
    }
    await access(options.sacctPath, constants.X_OK);
    return null;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    return { code, message: cannotRun(options.sacctPath, code, undefined) };
  }
}

/** Where a command without a `/` is looked for when PATH is unset (libuv's default, as execvp's). */
const DEFAULT_PATH = '/usr/bin:/bin';

/**
 * Why SACCT_PATH cannot be run. A bare name (`SACCT_PATH=sacct`) is looked up on the PATH sacct is run
 * with, the app's own: from cron (`/usr/bin:/bin`) or a service unit it often lacks the directory a site
 * installs Slurm in (`/opt/slurm/bin`), and "cannot be run (ENOENT)" alone sent the admin looking for
 * a missing sacct that a login shell finds at once. That PATH is named, and the cure.
 */
function cannotRun(sacctPath: string, code: string, searchPath: string | undefined): string {
  const plain = `SACCT_PATH ${sacctPath} cannot be run (${code})`;
  if (sacctPath.includes('/') || code !== 'ENOENT') return plain;
  const shown = searchPath === undefined ? `unset: ${DEFAULT_PATH}` : truncate(searchPath, 300);
  return (
    `${plain}: no ${sacctPath} on the PATH sacct is run with (${shown}); ` +
    'set SACCT_PATH to its full path (command -v sacct on a login node, e.g. /usr/bin/sacct)'
  );
}

/** Whether `name` is an executable file in a directory of `searchPath`, as spawn finds it. */
async function isOnPath(name: string, searchPath: string | undefined): Promise<boolean> {
  for (const directory of (searchPath ?? DEFAULT_PATH).split(':')) {
    const candidate = path.join(directory || '.', name);
    try {
      if (!(await stat(candidate)).isFile()) continue;
      await access(candidate, constants.X_OK);
      return true;
    } catch {
      // Not there, or not executable: the next directory.
    }
  }
  return false;
}

/**
 * The longest window one sacct reads. A long window (the first run's INGEST_LOOKBACK_DAYS, a catch-up
 * after an outage) of a busy cluster took one sacct longer than SACCT_TIMEOUT_MS: it was killed on
 * every run, and as a failed run does not move the window, each run after it read a longer one and
 * was killed too, so ingestion through sacct never recovered. A day at a time, each sacct has the
 * whole timeout for one day's jobs, and a day's jobs are written before the next day is read.
 */
export const SACCT_SLICE_MS = 86_400_000;

/**
 * Reads the window with one sacct per day or less (SACCT_SLICE_MS), in order. A slice slurmdbd refuses
 * as longer than its MaxQueryTimeRange (slurmdbd.conf; sacct prints "Too wide of a date range in
 * query") is read again in halves, down to a minute, and the slices after it keep the shorter length:
 * refused, every run over a window longer than that range failed, and each failed run left a longer
 * window to the next.
 */
async function* readInSlices(
  options: SacctSourceOptions,
  window: IngestWindow,
  readOptions: ReadOptions | undefined,
  checkCluster: ((signal: AbortSignal | undefined) => Promise<void>) | undefined,
): AsyncGenerator<SourceItem> {
  let start = window.start;
  let sliceMs = SACCT_SLICE_MS;
  do {
    const end = new Date(Math.min(start.getTime() + sliceMs, window.end.getTime()));
    const length = end.getTime() - start.getTime();
    try {
      // sacct prints its header and nothing else before slurmdbd's refusal: no job comes twice.
      const watch = newStepRowWatch(options);
      const args = buildSacctArgs(options, { start, end }, readOptions);
      const slice = runSacct(options, args, readOptions, checkCluster, watch);
      const isWhole = start.getTime() === window.start.getTime() && end.getTime() === window.end.getTime();
      // One output of several, each numbered from its own header: a skip says which its line is in.
      const output = isWhole ? undefined : `sacct's output for ${isoSeconds(start)} .. ${isoSeconds(end)}`;
      const startedBefore: JobItem[] = [];
      for await (const item of slice) {
        if (item.kind === 'job' && item.job.startAt !== null && item.job.startAt < start) startedBefore.push(item);
        else yield item.kind === 'skip' && output ? { ...item, output } : item;
      }
      // The slice has ended, so its watch has decided whether its output has step rows.
      yield* readEarlierSteps(options, startedBefore, end, readOptions, () => watch?.forReread());
    } catch (error) {
      if (!(error instanceof QueryTooWideError)) throw error;
      if (length <= MIN_SLICE_MS) {
        throw new SourceUnavailableError(
          `${error.message} for the ${Math.round(length / 1000)} s from ${formatZonedTimeSeconds(start, options.timeZone)}, the shortest slice a window is read in`,
        );
      }
      sliceMs = halfSlice(length);
      continue;
    }
    start = end;
  } while (start < window.end);
}

type JobItem = Extract<SourceItem, { kind: 'job' }>;

/** How many job ids one `sacct --jobs` of readEarlierSteps names (a command line of a few kB). */
export const SACCT_REREAD_CHUNK = 200;

/**
 * The jobs of a slice that started before it, read again by id with all their steps. slurmdbd returns
 * with a job only the steps that overlap the window asked, and sacct's terminal `--state` list reads a
 * job only in the window it ends in, never while it runs: the steps that ended before that window (the
 * first `srun` of a long job) were in no read, and their CPU time and memory were never billed (seen on
 * the lab, test/fixtures/slurm/22.05/steps-before-window/). Only a job that started before the slice can have
 * such a step. Each job's record from the re-read (the same cluster, id and submit time: `--duplicates`
 * also prints a reused id's other jobs and a requeued job's earlier runs, which are dropped) replaces
 * the slice's. A job the re-read lacks keeps the slice's record, and so does a job whose re-read is refused
 * as too wide (a refused chunk is read again in halves first), as read before, so the window still
 * completes: slurmdbd itself does not refuse a read by id (buildSacctRereadArgs), but a SACCT_PATH wrapper may.
 */
async function* readEarlierSteps(
  options: SacctSourceOptions,
  jobs: readonly JobItem[],
  end: Date,
  readOptions: ReadOptions | undefined,
  rereadWatch: () => StepRowWatch | undefined,
): AsyncGenerator<SourceItem> {
  // In order of start, so a chunk slurmdbd refuses, split in halves, parts the long-running jobs from the rest.
  const byStart = [...jobs].sort((a, b) => (a.job.startAt?.getTime() ?? 0) - (b.job.startAt?.getTime() ?? 0));
  for (let first = 0; first < byStart.length; first += SACCT_REREAD_CHUNK) {
    yield* rereadChunk(options, byStart.slice(first, first + SACCT_REREAD_CHUNK), end, readOptions, rereadWatch);
  }
}

/** One `sacct --jobs` of readEarlierSteps; refused as too wide, its halves, down to one job. */
async function* rereadChunk(
  options: SacctSourceOptions,
  chunk: readonly JobItem[],
  end: Date,
  readOptions: ReadOptions | undefined,
  rereadWatch: () => StepRowWatch | undefined,
): AsyncGenerator<SourceItem> {
  const runKey = (job: NormalizedJob) => `${job.cluster}\u0000${job.jobId}\u0000${job.submitAt?.getTime() ?? ''}`;
  const wanted = new Map(chunk.map((item) => [runKey(item.job), item]));
  const ids = [...new Set(chunk.map((item) => item.job.jobId))];
  const start = new Date(Math.min(...chunk.map((item) => item.job.startAt?.getTime() ?? end.getTime())));
  const output = `sacct's re-read of ${ids.length} job(s) by id (${truncate(ids.join(','), 60)})`;
  const reread: SourceItem[] = [];
  try {
    const args = buildSacctRereadArgs(options, ids, { start, end }, readOptions);
    for await (const item of runSacct(options, args, readOptions, undefined, rereadWatch())) {
      if (item.kind === 'skip') reread.push({ ...item, output });
      else if (wanted.delete(runKey(item.job))) reread.push(item);
    }
  } catch (error) {
    if (!(error instanceof QueryTooWideError)) throw error;
    if (chunk.length === 1) {
      yield* chunk;
      return;
    }
    const half = Math.ceil(chunk.length / 2);
    yield* rereadChunk(options, chunk.slice(0, half), end, readOptions, rereadWatch);
    yield* rereadChunk(options, chunk.slice(half), end, readOptions, rereadWatch);
    return;
  }
  yield* reread;
  // Not in the re-read: the record the slice read.
  yield* wanted.values();
}

/** `2026-11-22T16:00:00Z`: an instant as a skip's note names a slice's edges. */
function isoSeconds(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/**
 * sacct 22.05 given `--clusters` with a name slurmdbd does not know prints its header alone and
 * exits 0, exactly as for a window without jobs (seen on the lab: `sacct --clusters=nosuch`).
 * Taken as "no jobs", a misspelt SLURM_CLUSTER completed every run and moved the window past
 * jobs that were never read. So an empty answer for a set cluster is believed only once
 * sacctmgr lists that cluster; sacct matches the name in any case (`--clusters=LAB` reads `lab`).
 */
function createClusterCheck(
  options: SacctSourceOptions,
  cluster: string,
): (signal: AbortSignal | undefined) => Promise<void> {
  let isKnown = false;
  return async (signal) => {
    if (isKnown) return;
    const sacctmgrPath = options.sacctmgrPath ?? defaultSacctmgrPath(options.sacctPath);
    let known: string[];
    try {
      known = await readKnownClusters(
        sacctmgrPath,
        options.timeoutMs,
        sacctEnvironment(options.inheritedEnvironment, options.timeZone),
        signal,
      );
    } catch (error) {
      throwIfStopped(signal);
      if (error instanceof SourceConfigError) throw error;
      throw new SourceUnavailableError(
        `sacct --clusters=${cluster} read no jobs, and the clusters the accounting database knows could not be read ` +
          `to tell a quiet window from a wrong SLURM_CLUSTER: ${(error as Error).message}`,
      );
    }
    if (known.some((name) => name.toLowerCase() === cluster.toLowerCase())) {
      isKnown = true;
      return;
    }
    throw new SourceConfigError(
      `SLURM_CLUSTER is "${cluster}", a cluster the Slurm accounting database does not know ` +
        `(it knows: ${known.length > 0 ? known.join(', ') : 'none'}): sacct --clusters=${cluster} reads no jobs at all. ` +
        'Set SLURM_CLUSTER to one of those, or unset it',
    );
  };
}

/** The user this process runs as, which sacct runs as; null when the system cannot say. */
function currentUser(): { uid: number; name: string } | null {
  try {
    const { uid, username } = os.userInfo();
    return uid >= 0 && username ? { uid, name: username } : null;
  } catch {
    return null;
  }
}

/**
 * With PrivateData=jobs in slurmdbd.conf, sacct run by a user who is not an operator or administrator
 * (nor root, nor the SlurmUser) prints that user's jobs alone, exit 0 and no error (seen on the lab),
 * or, for a coordinator, those of the accounts it coordinates too (slurmdbd.conf(5)), and every other
 * user's jobs went unread, and unbilled, for good: the run succeeded and moved its window on. Before each
 * read the source asks sacctmgr: slurmdbd's PrivateData (`show configuration`) and, where it names jobs,
 * the user's administrator level and the accounts it coordinates (`show user ... withcoord`); a user who
 * may read only some users' jobs fails the attempt as a setting to fix (nothing read, the window does
 * not move). Root needs no asking; sacctmgr failing is not taken for a refusal (the read goes on).
 *
 * Asked on every read, not once a process: an admin may lower a level, or set PrivateData, while the
 * app runs. One sacctmgr call a read: the configuration is remembered, and a read asks only the
 * level where it kept jobs private, only the configuration where it did not; the first read under
 * PrivateData asks both, and so does a refusal, which reads the configuration again lest it refuse
 * by a PrivateData taken out since.
 */
function createAccessCheck(options: SacctSourceOptions): (signal: AbortSignal | undefined) => Promise<void> {
  const runAs = options.runAs === undefined ? currentUser() : options.runAs;
  /** Whether slurmdbd, as last read, keeps other users' jobs from `runAs`; null: not read (or not said). */
  let isPrivateForUser: boolean | null = null;
  return async (signal) => {
    if (runAs === null || runAs.uid === 0) return;
    const sacctmgrPath = options.sacctmgrPath ?? defaultSacctmgrPath(options.sacctPath);
    const env = sacctEnvironment(options.inheritedEnvironment, options.timeZone);
    const ask = async (args: string[]): Promise<string | null> => {
      try {
        return await runSacctmgr(sacctmgrPath, args, options.timeoutMs, env, signal);
      } catch {
        throwIfStopped(signal);
        return null;
      }
    };
    const readConfiguration = async (): Promise<boolean | null> => {
      const configuration = await ask(['show', 'configuration']);
      const privateData = configuration === null ? null : readDbdPrivateData(configuration);
      isPrivateForUser =
        configuration === null || privateData === null
          ? null
          : isJobsPrivate(privateData) && readSlurmUserId(configuration) !== runAs.uid;
      return isPrivateForUser;
    };
    const isConfigurationFresh = isPrivateForUser !== true;
    if (isConfigurationFresh && (await readConfiguration()) !== true) return;
    const users = await ask([
      '--noheader',
      '--parsable2',
      'show',
      'user',
      runAs.name,
      'withcoord',
      'format=user,adminlevel,coordinators',
    ]);
    if (users === null) return;
    const level = readSacctmgrAdminLevel(users, runAs.name);
    if (level !== null && isPrivilegedLevel(level)) return;
    if (!isConfigurationFresh && (await readConfiguration()) !== true) return;
    throw new SourceConfigError(
      privateJobsSacctMessage(runAs.name, level, readSacctmgrCoordinatedAccounts(users, runAs.name)),
    );
  };
}

/** sacctmgr's stdout for `args`; rejects when it cannot be run, fails, or takes longer than `timeoutMs`. */
function runSacctmgr(
  sacctmgrPath: string,
  args: string[],
  timeoutMs: number,
  env: NodeJS.ProcessEnv,
  signal: AbortSignal | undefined,
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      sacctmgrPath,
      args,
      { shell: false, env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024, signal },
      (error, stdout) => (error ? reject(error) : resolve(stdout)),
    );
  });
}

/** The cluster names slurmdbd knows: `sacctmgr -n -P show cluster format=cluster`, one a line. */
function readKnownClusters(
  sacctmgrPath: string,
  timeoutMs: number,
  env: NodeJS.ProcessEnv,
  signal: AbortSignal | undefined,
): Promise<string[]> {
  return new Promise((resolve, reject) => {
    execFile(
      sacctmgrPath,
      ['--noheader', '--parsable2', 'show', 'cluster', 'format=cluster'],
      { shell: false, env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024, signal },
      (error, stdout, stderr) => {
        if (!error) {
          resolve(
            stdout
              .split('\n')
              .map((line) => line.replace(/\|$/, '').trim())
              .filter((line) => line !== ''),
          );
          return;
        }
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'EACCES') {
          reject(
            new SourceConfigError(
              `SACCTMGR_PATH ${sacctmgrPath} cannot be run (${code}); it tells a quiet window from a wrong SLURM_CLUSTER`,
            ),
          );
          return;
        }
        const detail = stderr.trim().split('\n').slice(-3).join(' / ').slice(0, 300);
        const how = error.killed
          ? `did not finish within ${timeoutMs} ms`
          : `exited with ${error.code ?? error.signal}`;
        reject(new Error(`sacctmgr ${how}${detail ? `: ${detail}` : ''}`));
      },
    );
  });
}

/**
 * sacct reads --starttime/--endtime and prints every time in the zone of its own process (TZ, else
 * the host's /etc/localtime; seen on the lab: `TZ=Asia/Tokyo sacct` prints 20:57 for a job that
 * ended at 11:57 UTC), not in APP_TZ, which the window is written in and the output read in. On a
 * host whose zone is not APP_TZ (a server kept in UTC, a container), every stored time was off by
 * the difference, the window read was shifted by it, and a job read through slurmrestd (epoch
 * seconds) and then sacct no longer had the same submit time and was stored, and billed, twice.
 */
export function sacctEnvironment(
  inherited: Readonly<Record<string, string | undefined>>,
  timeZone: string,
): NodeJS.ProcessEnv {
  // SLURM_TIME_FORMAT, which sites set in their login profile for people (`%F %T`, `relative`), changes
  // how sacct prints every time (seen on the lab: `2026-12-04 12:05:03`, `12:05:03`), and the parser
  // reads sacct's own format: from a shell that had it, `npm run ingest` skipped every job as
  // malformed, and the partial run still completed its window, so those jobs were never read again.
  // SLURM_CLUSTERS is sacct's own `--clusters` (`all`, or another cluster's name on a site with several),
  // also set in login profiles. Inherited, sacct read the clusters it names while slurmrestd, which never
  // sees it, read its host's: a switch of source changed which cluster was billed. The cluster read is
  // SLURM_CLUSTER's (`--clusters`), else the host's, for every source alike.
  const { SLURM_CLUSTERS: _ignored, ...kept } = inherited;
  return { ...kept, TZ: timeZone, SLURM_TIME_FORMAT: 'standard' };
}

/**
 * sacct printed job rows alone (`-X`, `--allocations`, which a SACCT_PATH wrapper may add: the source
 * itself never asks for it), so every TotalCPU is 0: under PRICING_CPU_BASIS=used every job would be
 * billed 0 CPU-hours. The attempt fails as a setting to fix, and nothing of this output is stored.
 */
function allocationsOnlyError(sacctPath: string, found: AllocationsOnly): SourceConfigError {
  const count = `${found.isCountCut ? 'at least ' : ''}${found.ranWithoutSteps}`;
  return new SourceConfigError(
    `SACCT_PATH ${sacctPath} printed no step rows (does it run sacct with -X / --allocations?): sacct prints ` +
      `TotalCPU 0 for every job then, so under PRICING_CPU_BASIS=used its ${count} job(s) that ran (first: job ` +
      `${found.firstJob}) would be billed 0 CPU-hours. None of them was stored. Have SACCT_PATH run sacct ` +
      'with the arguments it is given and without -X (they ask for each job with its steps), ' +
      'or bill allocated CPU time (PRICING_CPU_BASIS=allocated)',
  );
}

/** Process groups of sacct runs still going: a process that exits takes them with it. */
const liveGroups = new Set<number>();
let isExitHookInstalled = false;

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: the whole group has ended already.
  }
}

/**
 * sacct runs in a process group of its own, so the terminal's Ctrl-C no longer reaches it:
 * a process that exits while one runs (the backfill's second Ctrl-C) kills it on the way out.
 */
function killLiveGroupsOnExit(): void {
  if (isExitHookInstalled) return;
  isExitHookInstalled = true;
  process.once('exit', () => {
    for (const pid of liveGroups) killGroup(pid);
  });
}

interface SacctExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

/**
 * The watch of one sacct output for step rows (allocations-only.ts), under PRICING_CPU_BASIS; none when
 * the basis is not given. Every slice is watched, not only a run's first: each slice and each run is its
 * own output. A re-read by id is watched as its slice decides (StepRowWatch.forReread).
 */
function newStepRowWatch(options: SacctSourceOptions): StepRowWatch | undefined {
  return options.cpuBasis
    ? new StepRowWatch(options.cpuBasis, (found) => allocationsOnlyError(options.sacctPath, found))
    : undefined;
}

/**
 * Whether SACCT_PATH prints job rows where steps are asked for, as `sacct -X` does: asked for the batch
 * step of a job that ran (`--jobs=20.batch`, the re-read's arguments), sacct prints that step's row, or
 * nothing when the job has none (an `salloc`), and with -X the job's own row (seen on the lab, 22.05/salloc-alone).
 * An output without step rows is -X's only then: a window whose jobs that ran are all allocations in
 * which nothing ran prints none either, and was refused as -X's on every run (a backfill day, or any
 * day of a long window, on which only such allocations ended, for good).
 */
async function printsAllocationRows(
  options: SacctSourceOptions,
  job: NormalizedJob,
  readOptions: ReadOptions | undefined,
): Promise<boolean> {
  const start = job.startAt ?? new Date();
  const end = job.endAt !== null && job.endAt > start ? job.endAt : new Date(start.getTime() + 1000);
  const args = buildSacctRereadArgs(options, [`${job.jobId}.batch`], { start, end }, readOptions);
  for await (const item of runSacct(options, args, readOptions, undefined, undefined)) {
    if (item.kind === 'job') return true;
  }
  return false;
}

async function* runSacct(
  options: SacctSourceOptions,
  args: string[],
  readOptions: ReadOptions | undefined,
  checkCluster: ((signal: AbortSignal | undefined) => Promise<void>) | undefined,
  watch: StepRowWatch | undefined,
): AsyncGenerator<SourceItem> {
  const stopSignal = readOptions?.signal;
  throwIfStopped(stopSignal);
  // spawn rather than execFile: execFile buffers all of stdout (maxBuffer) before its
  // callback, and a month of accounting can be hundreds of megabytes. No shell either way.
  // detached: a process group of its own. Sites often call a wrapper (`module load slurm;
  // sacct "$@"`) whose sacct is a grandchild; killing only the wrapper leaves that one
  // running with our stdout pipe open, and the run (and the ingestion lock) waits for it.
  const env = sacctEnvironment(options.inheritedEnvironment, options.timeZone);
  const child = spawn(options.sacctPath, args, {
    shell: false,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  const group = child.pid;
  if (group !== undefined) {
    liveGroups.add(group);
    killLiveGroupsOnExit();
  }
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    if (stderr.length < 4096) stderr += chunk;
  });
  let settle: (result: SacctExit) => void = () => undefined;
  const exited = new Promise<SacctExit>((resolve) => {
    settle = resolve;
  });
  // 'close': sacct exited and its pipes are closed, so its group may be gone and its id reused.
  let hasClosed = false;
  child.once('error', (error) => settle({ code: null, signal: null, error }));
  child.once('close', (code, signal) => {
    hasClosed = true;
    settle({ code, signal });
  });
  /** Kills the whole group and stops waiting for it: a process that escaped the group may keep the pipes open. */
  const kill = () => {
    if (group !== undefined && !hasClosed) killGroup(group);
    child.stdout.destroy();
    child.stderr.destroy();
    settle({ code: null, signal: 'SIGKILL' });
  };
  // Why sacct was killed, thrown once the read has ended.
  let killedBecause: Error | undefined;
  const timer = setTimeout(() => {
    killedBecause ??= new SourceUnavailableError(`sacct did not finish within ${options.timeoutMs} ms; killed`);
    kill();
  }, options.timeoutMs);
  const onAbort = () => {
    killedBecause ??= new RunStoppedError(stopSignal as AbortSignal);
    kill();
  };
  stopSignal?.addEventListener('abort', onAbort, { once: true });
  const parser = new SacctParser({ timeZone: options.timeZone, defaultCluster: options.defaultCluster });
  let lineNumber = 0;
  let dataLines = 0;
  try {
    try {
      for await (const lines of readLineChunks(child.stdout)) {
        for (const line of lines) {
          lineNumber += 1;
          if (lineNumber > 1 && line.trim() !== '') dataLines += 1;
          const items = parser.pushLine(line, lineNumber);
          yield* watch ? watch.pass(items) : items;
        }
      }
    } catch (error) {
      // A killed run's destroyed stdout ends the read early; the kill says why.
      if (!killedBecause) throw error;
    }
    const result = await exited;
    if (killedBecause) throw killedBecause;
    if (result.error) {
      const code = (result.error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EACCES') {
        throw new SourceConfigError(cannotRun(options.sacctPath, code, env.PATH));
      }
      throw new SourceUnavailableError(`sacct could not start: ${result.error.message}`);
    }
    if (result.code !== 0) {
      const detail = stderr.trim().split('\n').slice(-3).join(' / ');
      if (QUERY_TOO_WIDE_TEXT.test(stderr)) {
        throw new QueryTooWideError(
          `slurmdbd refused the window (${detail.slice(0, 300)}): it is longer than MaxQueryTimeRange in slurmdbd.conf`,
        );
      }
      throw new SourceUnavailableError(
        `sacct exited with ${result.code ?? result.signal}${detail ? `: ${detail.slice(0, 300)}` : ''}`,
      );
    }
    if (dataLines === 0 && checkCluster) await checkCluster(stopSignal);
    const last = parser.end();
    if (!watch) {
      yield* last;
      return;
    }
    const passed = watch.pass(last);
    const firstRan = watch.firstRanWithoutSteps();
    const isReal = firstRan !== null && !(await printsAllocationRows(options, firstRan, readOptions));
    yield* [...passed, ...(isReal ? watch.endAsRead() : watch.end())];
  } finally {
    clearTimeout(timer);
    stopSignal?.removeEventListener('abort', onAbort);
    // Also when the reader stopped early (a failed write, a malformed stream it gave up on).
    if (!hasClosed) kill();
    if (group !== undefined) liveGroups.delete(group);
  }
}
