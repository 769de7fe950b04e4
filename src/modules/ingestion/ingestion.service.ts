import type { Database } from '../../db/database.js';
import { retryOnStaleConnection } from '../../db/stale-connections.js';
import { type BackgroundWork, createBackgroundWork } from '../../shared/background-work.js';
import {
  DATABASE_BEHIND,
  DATABASE_READ_ONLY,
  isDatabaseUnavailable,
  isMissingColumn,
  isMissingTable,
  isReadOnlyDatabase,
  ServiceUnavailableError,
  sqlStateOf,
  UnsealedAuditAppendError,
} from '../../shared/errors.js';
import { endOfLocalDay, formatZonedTimeSeconds, startOfLocalDay } from '../../shared/local-date.js';
import type { Logger } from '../../shared/logger.js';
import { type AuditContext, recordAudit, refuseUnsealedAppendNow } from '../audit/audit.service.js';
import type { Metrics } from '../metrics/metrics.js';
import * as ingestionRepository from './ingestion.repository.js';
import {
  type IngestWindow,
  type JobSource,
  type ReadOptions,
  RunStoppedError,
  SHUTDOWN_STOP_REASON,
  ShutdownStop,
  SourceConfigError,
  throwIfStopped,
} from './job-source.js';
import { assignStoredIds, isSameRun, zoneShiftOf } from './reused-job-id.js';
import { SACCT_FORMAT } from './sacct.parser.js';
import { fileModifiedAtOf } from './sacct-file.source.js';
import {
  findStorageProblem,
  findTimeProblem,
  keepStepsOfEarlierReads,
  type NormalizedJob,
  type SourceItem,
} from './slurm-job.model.js';
import { isKnownState, MAX_LOGGED_JOB_ID, truncate } from './slurm-time.parser.js';

export type TTrigger = 'schedule' | 'manual' | 'backfill' | 'seed';

export interface IngestionDeps {
  db: Database;
  /** In order of preference; only configured ones. */
  sources: JobSource[];
  /** Why each unconfigured source is not in `sources` (recorded on every run). */
  unconfigured: Record<string, string>;
  logger: Logger;
  metrics: Metrics;
  /**
   * SLURM_CLUSTER, the cluster this instance reads; unset ('' in its runs' rows) where each source reads
   * its host's. Its runs, window, lock and last run are this cluster's: two instances on one database,
   * one per cluster, each keep their own.
   */
  cluster?: string;
  /** Re-read this much before the high-water mark: late accounting updates land there. */
  overlapSec: number;
  /** The first run (no high-water mark yet) looks this far back. */
  initialLookbackSec: number;
  /**
   * APP_TZ: the zone the run's notes and errors name times in, as pages do (buildIngestionService and the
   * demo's seed pass config's). UTC when left out (bench/ and tests that do not read the notes' times).
   */
  timeZone?: string;
  batchSize?: number;
  now?: () => Date;
  /**
   * Where a Run now that outlasts RUN_NOW_ANSWER_WITHIN_MS goes on after its answer; server.ts stops it on
   * SIGTERM, as it stops a month-end run. Default: one of the service's own.
   */
  backgroundWork?: BackgroundWork;
  /** RUN_NOW_ANSWER_WITHIN_MS, shorter in tests. */
  runNowAnswerWithinMs?: number;
  /** Whether the server drains before its shutdown (server.ts): Run now is refused then, as month-end is. */
  isDraining?: () => boolean;
}

export interface RunSummary {
  runId: number;
  source: string | null;
  window: IngestWindow;
  /**
   * Distinct jobs read and stored, by any source the run tried: a job read in two slices of the
   * window, or twice, is one. Each is in one of inserted, updated and unchanged.
   */
  seen: number;
  /** Jobs the run stored for the first time (a later record of one in the run does not make it updated). */
  inserted: number;
  /** Stored jobs a record of the run changed. */
  updated: number;
  unchanged: number;
  /**
   * Jobs the answering source skipped and the run did not store from another of their records (a record
   * without a job id counts as one): the run is partial. inserted + updated + unchanged + skipped add up to
   * the distinct jobs read.
   */
  skipped: number;
  /** Stored, but with data that contradicts itself (End before Start); the notes say which. */
  warned: number;
  /** Stored in a state the app does not know, so as not finished and unbilled; the notes say which. */
  unknownStateJobs: number;
  outcome: 'success' | 'partial' | 'failed';
  error: string | null;
  /**
   * A failed run whose every source failed for how it is set up (a FALLBACK_CSV that is not there
   * or is not sacct output, a token slurmrestd refuses), or that had none: the next run fails the
   * same way until a setting changes.
   */
  isSetupProblem: boolean;
  durationMs: number;
  sourceNotes: Record<string, string>;
}

export type RunResult =
  | { status: 'finished'; run: RunSummary }
  | { status: 'skipped'; reason: 'locked' | 'recent' | 'not-started' };

/** Run now's answer: the run's result when it ended within RUN_NOW_ANSWER_WITHIN_MS, else the run going on. */
export type RunNowResult = RunResult | { status: 'running'; runId: number };

/**
 * How long Run now waits for its run before answering that it is still running (the run goes on in the
 * background). A run reads its window in seconds when its source answers, so it is still answered with
 * its counts; one whose slurmrestd hangs takes three SLURMRESTD_TIMEOUT_MS (30 s) attempts, then the
 * fallback, and on the lab answered after 92 s, past the 60 s a reverse proxy waits by default (nginx's
 * proxy_read_timeout, an AWS ALB's idle timeout): the admin got the proxy's 504 while the run went on.
 * 20 s leaves room under 60 s for the audit entry and the redirect on a loaded server.
 */
export const RUN_NOW_ANSWER_WITHIN_MS = 20_000;

/** Run now's refusal while the server drains before its shutdown or stops (503), as month-end's start says it. */
export const RUN_NOW_WHILE_STOPPING = 'The app is stopping; start the ingestion run again in a moment.';

/** What a run that met the database unavailable (stopped, restarting, unreachable) says of it. */
export const DATABASE_UNAVAILABLE_FOR_RUN = 'the database is unavailable';

/**
 * Why the database failed a run, in the words its record and the scheduler's log line give
 * (the driver's own error follows them): behind the code, unavailable (the connection lost or
 * refused: class 08, 57P01-57P03, a socket reset or closed), only reading, or a query it refused
 * with another SQLSTATE (a constraint, a bug in the SQL), named, so that a refusal that will
 * recur on every run is not read as a database that went away for a moment.
 */
export function describeStoreFailure(error: unknown): string {
  if (isMissingColumn(error) || isMissingTable(error)) return DATABASE_BEHIND;
  if (isDatabaseUnavailable(error)) return DATABASE_UNAVAILABLE_FOR_RUN;
  if (isReadOnlyDatabase(error)) return DATABASE_READ_ONLY;
  const state = sqlStateOf(error);
  return state === undefined
    ? 'a query of the run failed, with no SQLSTATE from the database'
    : `the database refused a query of the run (SQLSTATE ${state})`;
}

/** The last line of an error's message: PostgreSQL's words, without Prisma's call site and code frame before them. */
export function lastLineOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.trim().split('\n').at(-1) ?? '';
}

const DEFAULT_BATCH_SIZE = 2000;
/** The state of a job record whose run was requeued: a newer record of the same job id replaces it. */
const SUPERSEDED_RUN_STATE = 'REQUEUED';
const WRITERS = 2;
const MAX_LOGGED_SKIPS = 50;
/**
 * Before the JobID text of a skipped record whose cluster and JobIDRaw could not be read (a line cut
 * short): apart from the keys of jobs (jobRowKey), which it can never match.
 */
const SKIPPED_KEY = '\u0002';
/** The unknown states a run's notes and log name; any more are counted, not named. */
const MAX_NAMED_STATES = 10;

/**
 * The jobs a run has written, by any of the sources it tried, each once (jobRowKey): a long window is
 * read in slices (sacct's days, slurmrestd's shorter windows), and a job that overlaps two of them comes in both. Counted per record, a 7-day first run
 * reported more jobs than there are (the stored rows were right), as new, unchanged, skipped, in an
 * unknown state or with End before Start.
 */
interface RunJobs {
  keys: Set<string>;
  /** When the run began writing, by the database's clock (RunWrite.since). */
  since: Date;
  /** Distinct jobs written (RunSummary.seen). */
  seen: number;
  /** Its row, to which each batch adds its counts as it commits (RunWrite.runId). */
  runId: number;
}

interface SourceCounts {
  /** Distinct jobs skipped and not stored from another record, or records without a job id. */
  skipped: number;
  warned: number;
  firstWarning?: string;
  /** Jobs stored in a state isKnownState does not know, by state (at most MAX_NAMED_STATES named). */
  unknownStateJobs: number;
  unknownStates: Map<string, number>;
  firstUnknownState?: string;
  /** The first record skipped, with where and why, for the run's notes. */
  firstSkip?: string;
  inserted: number;
  updated: number;
  unchanged: number;
  /**
   * Distinct jobs on a live receipt any of whose records had other figures than billed: kept as billed.
   * Counted by their keys (jobRowKey), whichever of a job's records was refused.
   */
  held: number;
  heldKeys: Set<string>;
  firstHeld?: { cluster: string; jobKey: string; receiptId: number };
  /**
   * Jobs read with all their times moved by a zone difference from the row stored (zoneShiftOf), and
   * the first, with how far; those held as billed keep their times and are not counted.
   */
  moved: number;
  firstMoved?: MovedJob;
  /**
   * Jobs stored from sacct output without the columns their GPUs (AllocTRES, ReqTRES) or allocated CPUs
   * (AllocTRES, AllocCPUS) are read from (NormalizedJob.missingColumns), and the first of each.
   */
  noGpuColumns: number;
  firstNoGpuColumns?: string;
  noCpuColumns: number;
  firstNoCpuColumns?: string;
}

/**
 * The note of jobs stored with no GPU or no allocated CPU because the sacct output had no column to read
 * them from (an older --format, read on purpose), or undefined for none: they were billed as none, and
 * the run said success and nothing more.
 */
function missingColumnsNoteOf(counts: SourceCounts): string | undefined {
  const parts: string[] = [];
  if (counts.noGpuColumns > 0) {
    parts.push(
      `${counts.noGpuColumns} job(s) stored with no GPU, billed 0 GPU-hours: the sacct output has no AllocTRES ` +
        `or ReqTRES column (first: ${counts.firstNoGpuColumns})`,
    );
  }
  if (counts.noCpuColumns > 0) {
    // Under the used basis a job's CPU time is its TotalCPU (or CPUTimeRAW); only without them the allocation.
    parts.push(
      `${counts.noCpuColumns} job(s) stored with no allocated CPU, billed 0 CPU-hours under PRICING_CPU_BASIS=allocated ` +
        '(under used, those without TotalCPU and CPUTimeRAW): the sacct output has no AllocTRES or AllocCPUS column ' +
        `(first: ${counts.firstNoCpuColumns})`,
    );
  }
  if (parts.length === 0) return undefined;
  return (
    `${parts.join('; ')}. Export it with --format=${SACCT_FORMAT.join(',')} and read those days again ` +
    '(npm run ingest -- --from … --to … --force)'
  );
}

interface MovedJob {
  cluster: string;
  jobKey: string;
  shiftMs: number;
  storedEndAt: Date | null;
  endAt: Date | null;
}

/**
 * A skipped job's key: its row's (jobRowKey), or, for a job id or cluster too long to be stored (a
 * runaway value), its JobID cut short, so that the run's set of skips stays small.
 */
function jobKeyOf(job: Pick<NormalizedJob, 'cluster' | 'jobId'>): string {
  return job.jobId.length + job.cluster.length <= 2 * MAX_LOGGED_JOB_ID
    ? ingestionRepository.jobRowKey(job)
    : `${SKIPPED_KEY}${truncate(job.jobId, MAX_LOGGED_JOB_ID)}`;
}

/** "7 h later", "5 h 45 min earlier": how far a zone difference moved a job's times. */
function formatShift(shiftMs: number): string {
  const minutes = Math.round(Math.abs(shiftMs) / 60_000);
  const hours = Math.floor(minutes / 60);
  const parts = [hours > 0 ? `${hours} h` : '', minutes % 60 > 0 ? `${minutes % 60} min` : ''].filter(Boolean);
  return `${parts.join(' ')} ${shiftMs > 0 ? 'later' : 'earlier'}`;
}

/**
 * A job as the run's notes name it: with its cluster where the source said it, since each cluster
 * numbers its jobs on its own and one file may hold several (job 7 of `hpc` and job 7 of `gpu`).
 */
function jobLabel(jobId: string, cluster: string | undefined): string {
  return cluster === undefined ? `job ${jobId}` : `job ${jobId} of cluster ${cluster}`;
}

/** Where a record came from, as the notes name it: a line of sacct output, a record of a JSON answer. */
function lineLabel(source: JobSource, line: number, output?: string): string {
  const label = source.name === 'slurmrestd' ? `record ${line}` : `line ${line}`;
  return output === undefined ? label : `${label} of ${output}`;
}

/**
 * Per database, the ends of runs that failed on it whose record the database refused too (its connection
 * lost, it still away), by run id. The run's lock went with its connection, so the next run, or the next
 * look at /admin/ingestion, finds the row `running` with the lock free and took it for a run whose process
 * died ("the process stopped"), though the process lived on and knew why the run failed. Written by
 * whichever comes first in this process (recordLostConnectionEnds); another process still says the former.
 */
const unrecordedEnds = new WeakMap<Database, Map<number, ingestionRepository.UnrecordedRunEnd>>();

/** Writes the ends kept in unrecordedEnds for `db` of runs still `running`; called holding the ingest lock (this process's cluster's). */
async function recordLostConnectionEnds(db: Database, logger?: Logger): Promise<number> {
  const kept = unrecordedEnds.get(db);
  if (!kept || kept.size === 0) return 0;
  // Never in the way of the run or the page: a write refused again (a database behind the code) leaves
  // them to failAbandonedRuns, and their entries are settled next time, those rows no longer running.
  const settled = await ingestionRepository
    .failRunsLeftByLostConnection(db.pool, [...kept.values()])
    .catch((error: unknown) => {
      logger?.warn({ err: error }, 'runs whose database connection was lost could not be recorded so');
      return [];
    });
  for (const id of settled) kept.delete(id);
  if (settled.length > 0)
    logger?.warn({ runIds: settled }, 'recorded runs whose database connection was lost as failed');
  return settled.length;
}

/**
 * Marks failed every run of `cluster` left `running`, called holding its ingest lock (so none of its runs
 * is running): a run this process knows lost its database connection is recorded so
 * (recordLostConnectionEnds; a process reads one cluster, so those are its), the rest as runs whose process
 * stopped. Both a run's start and /admin/ingestion's look (failDeadRuns) do it; how many of each.
 */
async function failRunsLeftRunning(db: Database, now: Date, cluster: ingestionRepository.RunCluster, logger?: Logger) {
  const lost = await recordLostConnectionEnds(db, logger);
  const abandoned = await ingestionRepository.failAbandonedRuns(db.pool, now, cluster);
  return { lost, abandoned };
}

/** Ingestion runs: one at a time per cluster, sources tried in order, writes batched. */
export function createIngestionService(deps: IngestionDeps) {
  const now = deps.now ?? (() => new Date());
  const cluster: ingestionRepository.RunCluster = deps.cluster ?? '';
  /** Whether this process's runs have given the runs recorded before runs had a cluster to theirs. */
  let hasAdoptedRuns = false;
  const batchSize = deps.batchSize ?? DEFAULT_BATCH_SIZE;
  const timeZone = deps.timeZone ?? 'UTC';
  const { db, logger, metrics } = deps;
  const backgroundWork = deps.backgroundWork ?? createBackgroundWork();
  const runNowAnswerWithinMs = deps.runNowAnswerWithinMs ?? RUN_NOW_ANSWER_WITHIN_MS;
  // The dashboard's series exist at 0 before the first run: each outcome a configured source
  // can have, and a failed run, which has no source.
  for (const source of deps.sources) {
    for (const outcome of ['success', 'partial']) metrics.ingestRuns.inc({ source: source.name, outcome }, 0);
    metrics.ingestSourceFailures.inc({ source: source.name }, 0);
  }
  metrics.ingestRuns.inc({ source: 'none', outcome: 'failed' }, 0);

  const hasFileSource = deps.sources.some((source) => source.name === 'file');

  async function defaultWindow(): Promise<IngestWindow> {
    const end = now();
    // The demo's seed read the demo's file up to when it ran, which says nothing about a Slurm
    // this server reads instead: counted, it made the first slurmrestd or sacct run read only
    // INGEST_OVERLAP_SEC back, not INGEST_LOOKBACK_DAYS, and the week before was never read.
    const highWater = await ingestionRepository.findLiveHighWaterMark(db.prisma, { withSeed: hasFileSource, cluster });
    if (!highWater) return { start: new Date(end.getTime() - deps.initialLookbackSec * 1000), end };
    const start = new Date(Math.min(highWater.getTime(), end.getTime()) - deps.overlapSec * 1000);
    // After an outage (failed runs), slurmctld sends slurmdbd the records of the jobs that ended
    // meanwhile once it is back, with their real end times, possibly after the first run that
    // succeeded again read the outage: for INGEST_OVERLAP_SEC after that run, the runs re-read from
    // where the failed ones began. They used to read only the overlap before the last run, so a job
    // that ended more than INGEST_OVERLAP_SEC before its record arrived was never read, nor billed.
    const catchUp = await ingestionRepository.findRecentCatchUpStart(
      db.prisma,
      new Date(end.getTime() - deps.overlapSec * 1000),
      cluster,
    );
    return { start: catchUp && catchUp < start ? catchUp : start, end };
  }

  /**
   * Records a run the database failed (behind the code, unavailable) as failed, saying why, rather
   * than leaving it running until the next run marks it abandoned. Its own write may meet the same
   * failure (ingestion_runs behind too, the database still away): the run's error, thrown by the
   * caller, says the same, and the next run marks it abandoned. Its counts are those its committed
   * batches left on its row (finishRun).
   */
  async function failRunForStore(runId: number, error: unknown, notes: Record<string, string>, durationMs: number) {
    // A PostgreSQL that just dropped every connection (a restart) may leave some in the pool that the
    // pool has not yet seen die: the write failed on them under load and the run read "running" until the
    // next run called it abandoned. Tried again while it meets such a connection; a database still down
    // stays so.
    const end = {
      id: runId,
      error: `${describeStoreFailure(error)}: ${lastLineOf(error)}`,
      sourceNotes: notes,
      finishedAt: new Date(),
      durationMs,
    };
    await retryOnStaleConnection(db.pool, () =>
      ingestionRepository.finishRun(db.prisma, runId, {
        source: null,
        sourceNotes: end.sourceNotes,
        skipped: 0,
        outcome: 'failed',
        error: end.error,
        stoppedByShutdown: false,
        finishedAt: end.finishedAt,
        durationMs,
      }),
    ).catch(() => {
      const kept = unrecordedEnds.get(db) ?? new Map<number, ingestionRepository.UnrecordedRunEnd>();
      unrecordedEnds.set(db, kept);
      kept.set(runId, end);
    });
  }

  /** Reads one source for the window and writes what it yields; throws when the source fails. */
  async function ingestFrom(
    source: JobSource,
    window: IngestWindow,
    counts: SourceCounts,
    readOptions: ReadOptions,
    runJobs: RunJobs,
  ) {
    let batch: NormalizedJob[] = [];
    /** The line (record) of each of the batch's records, for the notes. */
    let batchLines: number[] = [];
    const jobsWritten = runJobs.keys;
    /**
     * The jobs this source skipped that the run has not stored, by the key their rows would have
     * (jobRowKey), or SKIPPED_KEY and the JobID text where the source could not read it. A job stored
     * from another record (a slice before or after) is stored, not skipped: the counts add up to the
     * distinct jobs. Counted per source: a source tried before this one may have skipped them too.
     */
    const skippedKeys = new Set<string>();
    /** The first skips' notes, by key, while their jobs are not stored: the notes name the first left. */
    const namedSkips = new Map<string, string>();
    let loggedSkips = 0;
    /**
     * Counts a skip once a job (records without a job id each) and keeps its note; true when it is
     * counted (the first record skipped of a job not stored), to be logged.
     */
    const countSkip = (key: string | null, note: () => string): boolean => {
      if (key !== null) {
        if (skippedKeys.has(key) || jobsWritten.has(key)) return false;
        skippedKeys.add(key);
      }
      counts.skipped += 1;
      loggedSkips += 1;
      // A record without a job id is named under a key of its own, which no job's can be.
      if (namedSkips.size < MAX_LOGGED_SKIPS) namedSkips.set(key ?? `\u0003${loggedSkips}`, note());
      return loggedSkips <= MAX_LOGGED_SKIPS;
    };
    /** A job stored, once in the run: no longer counted as skipped, if this source skipped it. */
    const countStored = (key: string) => {
      if (!skippedKeys.delete(key)) return;
      counts.skipped -= 1;
      namedSkips.delete(key);
    };
    const skipKeyOf = (item: Extract<SourceItem, { kind: 'skip' }>): string | null =>
      item.job
        ? jobKeyOf(item.job)
        : item.jobId === null
          ? null
          : `${SKIPPED_KEY}${truncate(item.jobId, MAX_LOGGED_JOB_ID)}`;
    /**
     * Counts, and logs, what is odd about a job stored: its times, a state the app does not know, a
     * billing figure its sacct output has no column for.
     */
    const noteOddities = (job: NormalizedJob, line: number) => {
      if (job.missingColumns?.gpus) {
        counts.noGpuColumns += 1;
        counts.firstNoGpuColumns ??= `${jobLabel(job.jobKey, job.cluster)} (${lineLabel(source, line)})`;
      }
      if (job.missingColumns?.allocCpus) {
        counts.noCpuColumns += 1;
        counts.firstNoCpuColumns ??= `${jobLabel(job.jobKey, job.cluster)} (${lineLabel(source, line)})`;
      }
      const doubt = findTimeProblem(job, timeZone);
      if (doubt) {
        counts.warned += 1;
        counts.firstWarning ??= `${jobLabel(job.jobKey, job.cluster)} (${lineLabel(source, line)}): ${doubt}`;
        if (counts.warned <= MAX_LOGGED_SKIPS) {
          logger.warn(
            { source: source.name, line, cluster: job.cluster, jobId: job.jobId, reason: doubt },
            'stored a record whose times contradict each other',
          );
        }
      }
      if (!isKnownState(job.state)) {
        // Stored as not terminal, so never billed: said in the notes and the log, not decided here.
        counts.unknownStateJobs += 1;
        const named = counts.unknownStates.get(job.state);
        if (named !== undefined) counts.unknownStates.set(job.state, named + 1);
        else if (counts.unknownStates.size < MAX_NAMED_STATES) counts.unknownStates.set(job.state, 1);
        counts.firstUnknownState ??= `${jobLabel(job.jobKey, job.cluster)} (${lineLabel(source, line)})`;
      }
    };
    // Up to WRITERS batches are written at once (Postgres then uses more than one core) while
    // the next is parsed. A batch sharing a job id with one in flight waits for it, so the last
    // record of a job always wins, two statements never lock the same rows, and a job that reused
    // an id sees the earlier job's row before it is placed beside it.
    const inFlight: { keys: Set<string>; done: Promise<void> }[] = [];
    const write = async (records: NormalizedJob[], lines: number[]) => {
      // A job that reused the id or key of another stored job is stored, and billed, under its own
      // (reused-job-id.ts); such an id or key is longer, and may not fit its column.
      const stored = await ingestionRepository.findStoredIdentities(db.pool, records);
      // The record of each job that is written (its last in the batch, as the upsert writes it).
      const written = new Map<string, number>();
      // A read holds only the steps that overlap its window: those earlier reads of the same run stored
      // are kept, and the job's step figures folded from them all (keepStepsOfEarlierReads).
      const assigned = keepStepsOfEarlierReads(assignStoredIds(records, stored), stored, isSameRun);
      const storedRows = new Map(stored.map((row) => [`${row.cluster}\u0000${row.jobId}\u0000${row.jobKey}`, row]));
      const moved = new Map<string, MovedJob>();
      assigned.forEach((job, index) => {
        const record = records[index] as NormalizedJob;
        const problem = job === record ? null : findStorageProblem(job);
        if (problem === null) {
          written.set(ingestionRepository.jobRowKey(job), index);
          return;
        }
        // Under the key it would have been stored by (a later job that reused the id: its own).
        const isLogged = countSkip(jobKeyOf(job), () => `job ${truncate(job.jobId, MAX_LOGGED_JOB_ID)}: ${problem}`);
        if (isLogged) {
          logger.warn(
            { source: source.name, jobId: truncate(job.jobId, MAX_LOGGED_JOB_ID), reason: problem },
            'skipped a record that cannot be stored',
          );
        }
      });
      const jobs: NormalizedJob[] = [];
      const writtenBefore = new Set<string>();
      for (const [key, index] of written) {
        const job = assigned[index] as NormalizedJob;
        jobs.push(job);
        if (jobsWritten.has(key)) {
          writtenBefore.add(key);
          continue;
        }
        jobsWritten.add(key);
        runJobs.seen += 1;
        countStored(key);
        noteOddities(job, lines[index] as number);
        const row = storedRows.get(`${job.cluster}\u0000${job.jobId}\u0000${job.jobKey}`);
        const shiftMs = row ? zoneShiftOf(row, job) : null;
        if (row && shiftMs !== null && shiftMs !== 0) {
          moved.set(key, {
            cluster: job.cluster,
            jobKey: job.jobKey,
            shiftMs,
            storedEndAt: row.endAt ?? null,
            endAt: job.endAt,
          });
        }
      }
      const result = await ingestionRepository.upsertJobs(db.pool, jobs, source.name, {
        since: runJobs.since,
        writtenBefore,
        runId: runJobs.runId,
      });
      counts.inserted += result.inserted;
      counts.updated += result.updated;
      counts.unchanged += result.unchanged;
      for (const held of result.held) moved.delete(held.rowKey);
      counts.moved += moved.size;
      counts.firstMoved ??= moved.values().next().value;
      for (const held of result.held) {
        if (counts.heldKeys.has(held.rowKey)) continue;
        counts.heldKeys.add(held.rowKey);
        counts.held += 1;
        counts.firstHeld ??= { cluster: held.cluster, jobKey: held.jobKey, receiptId: held.receiptId };
      }
    };
    const settle = async (entry: (typeof inFlight)[number]) => {
      inFlight.splice(inFlight.indexOf(entry), 1);
      await entry.done;
    };
    const flush = async () => {
      const jobs = batch;
      const lines = batchLines;
      batch = [];
      batchLines = [];
      if (jobs.length === 0) return;
      const keys = new Set(
        jobs.flatMap((job) => [ingestionRepository.jobRowKey(job), `${job.cluster}\u0001${job.jobKey}`]),
      );
      for (const entry of [...inFlight]) {
        if ([...keys].some((key) => entry.keys.has(key))) await settle(entry);
      }
      while (inFlight.length >= WRITERS) await settle(inFlight[0] as (typeof inFlight)[number]);
      const done = write(jobs, lines);
      // Awaited in settle(); this only keeps a failure from being reported as unhandled meanwhile.
      done.catch(() => undefined);
      inFlight.push({ keys, done });
    };
    let readFailure: { error: unknown } | undefined;
    try {
      const hasOptions = readOptions.user !== undefined || readOptions.signal !== undefined;
      for await (const item of source.read(window, hasOptions ? readOptions : undefined)) {
        // Between records, for sources that do not watch the signal themselves.
        throwIfStopped(readOptions.signal);
        if (item.kind === 'skip') {
          const isLogged = countSkip(
            skipKeyOf(item),
            () =>
              `${item.jobId === null ? 'a record' : jobLabel(truncate(item.jobId, MAX_LOGGED_JOB_ID), item.job?.cluster)} (${lineLabel(source, item.line, item.output)}): ${truncate(item.reason, 300)}`,
          );
          if (isLogged) {
            // The parsers cut these short already; a log line stays bounded whatever the source.
            logger.warn(
              {
                source: source.name,
                line: item.line,
                ...(item.output === undefined ? {} : { output: item.output }),
                jobId: item.jobId === null ? null : truncate(item.jobId, MAX_LOGGED_JOB_ID),
                ...(item.job ? { cluster: item.job.cluster } : {}),
                reason: truncate(item.reason, 300),
              },
              'skipped a malformed record',
            );
          }
          continue;
        }
        // A REQUEUED record is a run Slurm superseded: a requeued job keeps its job id, and its next
        // run is a record of its own (slurmrestd returns both, sacct --state and sacct without -D only
        // the newest). Stored, it replaced that newer record whenever a window held it alone (a day
        // read again whose requeued job ran again after midnight), and the job left billing.
        if (item.job.state === SUPERSEDED_RUN_STATE) continue;
        const problem = findStorageProblem(item.job);
        if (problem) {
          const { job, line } = item;
          const isLogged = countSkip(
            jobKeyOf(job),
            () =>
              `${jobLabel(truncate(job.jobId, MAX_LOGGED_JOB_ID), job.cluster)} (${lineLabel(source, line)}): ${problem}`,
          );
          if (isLogged) {
            logger.warn(
              // The job id may be the value too long for its column.
              {
                source: source.name,
                line: item.line,
                jobId: truncate(item.job.jobId, MAX_LOGGED_JOB_ID),
                cluster: item.job.cluster,
                reason: problem,
              },
              'skipped a record that cannot be stored',
            );
          }
          continue;
        }
        batch.push(item.job);
        batchLines.push(item.line);
        if (batch.length >= batchSize) await flush();
      }
      await flush();
    } catch (error) {
      readFailure = { error };
    }
    // Let in-flight batches finish (or fail) before the run is recorded; the first failure is thrown.
    const results = await Promise.allSettled(inFlight.map((entry) => entry.done));
    inFlight.length = 0;
    const failure = results.find((result) => result.status === 'rejected');
    // The database failing a batch fails the run whatever the source did meanwhile: thrown first.
    if (failure?.reason instanceof ingestionRepository.JobStoreError) throw failure.reason;
    if (readFailure) throw readFailure.error;
    if (failure) throw failure.reason;
    // The first skip of a job that is still not stored; past MAX_LOGGED_SKIPS named ones that all were
    // stored later (rare), the notes can only count the rest.
    const [firstSkip] = namedSkips.values();
    counts.firstSkip =
      counts.skipped === 0
        ? undefined
        : (firstSkip ?? `not named (the first ${MAX_LOGGED_SKIPS} named were stored from other records; see the log)`);
    if (loggedSkips > MAX_LOGGED_SKIPS) {
      logger.warn({ source: source.name, skipped: counts.skipped }, 'more malformed records were skipped than logged');
    }
  }

  /**
   * A file that has not changed since a completed run needs no reading when that run's
   * window started no later than this one and ended after the file was written: no record
   * in the file can end after it was written, so that run read everything this one would.
   * That is the case of the scheduler, whose windows end now. An explicit window that ends
   * before the file was written (a backfill day) is read even when an earlier run covered
   * it: reading the same file again after an upgrade or an APP_TZ or SLURM_CLUSTER change
   * is how such a day gets corrected, and such windows are rare enough to afford it.
   */
  async function findUnchangedFileRun(
    source: JobSource,
    window: IngestWindow,
  ): Promise<{ fingerprint?: string; modifiedAt?: Date; covering?: { runId: number; skipped: number } }> {
    if (!source.fingerprint) return {};
    const { value, modifiedAt } = await source.fingerprint();
    const last = await ingestionRepository.findLastCompletedRun(db.prisma, source.name, cluster);
    const isCovered =
      last !== null &&
      last.sourceNotes?.fileFingerprint === value &&
      last.windowStart <= window.start &&
      last.windowEnd >= modifiedAt;
    return isCovered
      ? { fingerprint: value, modifiedAt, covering: { runId: last.id, skipped: last.skipped } }
      : { fingerprint: value, modifiedAt };
  }

  /**
   * The window a run answered by a file may record: up to when the file was last written, when that is
   * before the window's end. The file holds no job that ended later, so a window recorded to its end
   * moved the high-water mark past jobs never read: between two exports of a file (a cron writing
   * sacct's output), each run found it unchanged and moved the mark on, and once the file was written
   * again the next run read only INGEST_OVERLAP_SEC before the last one; the jobs that ended before that,
   * after the earlier export, were in no window read, never stored nor billed. (Behind slurmrestd or
   * sacct, a file answering their outage moved the mark the same way past the outage's jobs.) The mark is
   * the newest end recorded, so a file older than the window's start cannot move it back.
   */
  function readThrough(window: IngestWindow, modifiedAt: Date | undefined): IngestWindow {
    if (modifiedAt === undefined || modifiedAt >= window.end) return window;
    return { start: window.start, end: modifiedAt > window.start ? modifiedAt : window.start };
  }

  /**
   * The fallbacks after the source that answered were not tried: a set-up mistake in one (an
   * SACCT_PATH that cannot be run) would otherwise show only in the outage it is there for. One whose
   * set-up was checked and found right is noted too, and one that could not be checked says so: a
   * working sacct fallback was left out of the notes, which said "file: not configured" and nothing of it.
   */
  async function noteFallbacks(answeredSource: string, notes: Record<string, string>) {
    const untried = deps.sources.slice(deps.sources.findIndex((source) => source.name === answeredSource) + 1);
    for (const source of untried) {
      notes[source.name] = `${NOT_TRIED}${answeredSource} answered)${await fallbackSetupText(source)}`;
    }
  }

  /** What a fallback's set-up check found, after "not tried (… answered)". */
  async function fallbackSetupText(source: JobSource): Promise<string> {
    if (!source.findSetupProblem) return ', set-up not checked';
    try {
      const problem = await source.findSetupProblem();
      return problem ? `${WOULD_FAIL}${problem}` : SETUP_OK;
    } catch (error) {
      return `, set-up not checked: ${error instanceof Error ? error.message : String(error)}`;
    }
  }

  /** Access warnings already logged, by source: each is logged once in the process, and noted on every run. */
  const loggedAccessWarnings = new Map<string, string>();

  /**
   * The source that answered may have read only some users' jobs (its account no operator, where
   * PrivateData=jobs hides the others): said in the run's notes, and in the log the first time.
   */
  async function noteAccessWarning(answeredSource: string, notes: Record<string, string>, runId: number) {
    const source = deps.sources.find((candidate) => candidate.name === answeredSource);
    const warning = await source?.findAccessWarning?.().catch(() => null);
    if (!warning) {
      loggedAccessWarnings.delete(answeredSource);
      return;
    }
    notes.access = warning;
    if (loggedAccessWarnings.get(answeredSource) === warning) return;
    loggedAccessWarnings.set(answeredSource, warning);
    logger.warn({ runId, source: answeredSource, warning }, "ingestion may read only some users' jobs");
  }

  async function runLocked(
    trigger: TTrigger,
    window: IngestWindow,
    readOptions: ReadOptions,
    force: boolean,
    onRunStarted?: (runId: number) => void,
  ): Promise<RunSummary> {
    const startedAt = Date.now();
    const runId = await ingestionRepository.createRun(db.prisma, { trigger, cluster, window });
    onRunStarted?.(runId);
    const runJobs: RunJobs = {
      keys: new Set(),
      since: await ingestionRepository.readDatabaseClock(db.pool),
      seen: 0,
      runId,
    };
    const notes: Record<string, string> = { ...deps.unconfigured };
    const totals = { inserted: 0, updated: 0, unchanged: 0 };
    let answered: { source: string; counts: SourceCounts; modifiedAt?: Date } | undefined;
    // Every source's failure, in order: the first is the one that matters most (the preferred
    // source), and an sacct fallback missing on this host must not hide slurmrestd's reason.
    const failures: string[] = [];
    let isEveryFailureSetup = true;
    /**
     * The database's failure met reading or writing a source's jobs (a column or table of this
     * release missing, PostgreSQL stopped or restarted): the run's, not the source's.
     */
    let storeFailure: ingestionRepository.JobStoreError | undefined;
    /** Stopped by its server's shutdown: recorded so, for findLastLiveRunFinish, whatever its error says. */
    let isStoppedByShutdown = false;
    for (const source of deps.sources) {
      const counts: SourceCounts = {
        skipped: 0,
        warned: 0,
        unknownStateJobs: 0,
        unknownStates: new Map(),
        inserted: 0,
        updated: 0,
        unchanged: 0,
        held: 0,
        heldKeys: new Set(),
        moved: 0,
        noGpuColumns: 0,
        noCpuColumns: 0,
      };
      try {
        const unchanged = await findUnchangedFileRun(source, window);
        if (unchanged.fingerprint) notes.fileFingerprint = unchanged.fingerprint;
        if (unchanged.covering && !force) {
          // An unchanged file is not read again, but one that cannot stand in for the sources before it
          // (a file read alone until slurmrestd or sacct was put in front of it) is refused as a read
          // would refuse it: it answered their outage as a success until its next export.
          const problem = await source.findSetupProblem?.();
          if (problem) throw new SourceConfigError(problem);
          const { runId: coveringRunId, skipped } = unchanged.covering;
          // The malformed records are still in the file and still not stored: reading it
          // again would skip them again, so this run is as partial as the one it relies on.
          counts.skipped = skipped;
          notes[source.name] =
            skipped > 0
              ? `answered: file unchanged since run #${coveringRunId}, nothing new; its ${skipped} malformed record(s) are still skipped`
              : `answered: file unchanged since run #${coveringRunId}, nothing new`;
        } else {
          await ingestFrom(source, window, counts, readOptions, runJobs);
          notes[source.name] = 'answered';
        }
        answered = {
          source: source.name,
          counts,
          ...(unchanged.modifiedAt ? { modifiedAt: unchanged.modifiedAt } : {}),
        };
      } catch (error) {
        if (error instanceof ingestionRepository.JobStoreError) {
          // Raised by the store (ingestion.repository.ts), not the source: the database is behind the
          // code or went away mid-run. Counted as the source's failure, IngestionSourceFailing paged
          // about a healthy Slurm; another source would meet the same database.
          storeFailure = error;
          break;
        }
        const message = error instanceof Error ? error.message : String(error);
        // A stopped run's message says so itself ("stopped: ..."): it is not the source's failure.
        const kind =
          error instanceof RunStoppedError
            ? undefined
            : error instanceof SourceConfigError
              ? 'configuration error'
              : 'failed';
        notes[source.name] = kind ? `${kind}: ${message}` : message;
        // Counted whether or not a fallback answers the run: a run answered by sacct is fresh, so
        // only this counter (alert IngestionSourceFailing) tells that slurmrestd has been failing.
        if (kind) metrics.ingestSourceFailures.inc({ source: source.name });
        failures.push(`${source.name}: ${message}`);
        if (!(error instanceof SourceConfigError)) isEveryFailureSetup = false;
        if (error instanceof RunStoppedError && error.isShutdown) isStoppedByShutdown = true;
        logger.warn({ source: source.name, err: message, runId }, `ingestion source ${kind ?? 'stopped'}`);
      } finally {
        totals.inserted += counts.inserted;
        totals.updated += counts.updated;
        totals.unchanged += counts.unchanged;
      }
      // A stopped run tries no other source: the process is going away.
      if (answered || readOptions.signal?.aborted) break;
    }
    if (storeFailure !== undefined) {
      delete notes.fileFingerprint;
      await failRunForStore(runId, storeFailure, notes, Date.now() - startedAt);
      // Thrown, as the database's failure is wherever it is met: the scheduler's "ingestion run failed:
      // …" line and the CLI's message (run npm run db:migrate, the database cannot be reached), and
      // the run counted failed (runOnce). The batches written before it are each whole (one
      // transaction each); the window does not move, so the next run reads them again.
      throw storeFailure;
    }
    if (!answered) delete notes.fileFingerprint;
    else {
      await noteFallbacks(answered.source, notes);
      await noteAccessWarning(answered.source, notes, runId);
    }
    if (answered && answered.counts.warned > 0) {
      notes.warnings = `${answered.counts.warned} job(s) stored with End before Start (billed by elapsed time), first: ${answered.counts.firstWarning}`;
    }
    if (answered && answered.counts.unknownStateJobs > 0) {
      const { unknownStateJobs, unknownStates, firstUnknownState } = answered.counts;
      const named = [...unknownStates].map(([state, count]) => `${state}: ${count}`);
      const namedJobs = [...unknownStates.values()].reduce((sum, count) => sum + count, 0);
      if (namedJobs < unknownStateJobs) named.push(`${unknownStateJobs - namedJobs} in other states`);
      notes.unknownStates =
        `${unknownStateJobs} job(s) stored in a state this app does not know (${named.join(', ')}): ` +
        `stored as not finished, so they stay unbilled until Slurm reports them in a known state, first: ${firstUnknownState}`;
      logger.warn(
        {
          runId,
          source: answered.source,
          unknownStateJobs,
          unknownStates: Object.fromEntries(unknownStates),
          first: firstUnknownState,
        },
        'stored jobs in a state this app does not know; they stay unbilled',
      );
    }
    const missingColumnsNote = answered ? missingColumnsNoteOf(answered.counts) : undefined;
    if (answered && missingColumnsNote) {
      notes.columns = missingColumnsNote;
      logger.warn(
        {
          runId,
          source: answered.source,
          noGpuColumns: answered.counts.noGpuColumns,
          noCpuColumns: answered.counts.noCpuColumns,
        },
        'stored jobs from sacct output without the columns their GPUs or allocated CPUs are read from',
      );
    }
    // Which job a partial run left out, and why, where the admin sees the run: the run completed its
    // window, so that job is read again only by a backfill of its day (--force) once the cause is fixed.
    if (answered?.counts.firstSkip) {
      notes.skipped = `${answered.counts.skipped} job(s) skipped, first: ${answered.counts.firstSkip}`;
    }
    if (answered && answered.counts.held > 0) {
      const first = answered.counts.firstHeld;
      notes.billed =
        `${answered.counts.held} job(s) on a live receipt now read with other figures than billed; kept as billed` +
        (first ? ` (first: ${jobLabel(first.jobKey, first.cluster)} on receipt #${first.receiptId})` : '') +
        ': void the receipt to bill the new figures, the next read of their window stores them';
      logger.warn(
        { runId, held: answered.counts.held, first },
        'billed jobs read with other figures were kept as billed',
      );
    }
    if (answered && answered.counts.moved > 0) {
      const { moved, firstMoved: first } = answered.counts;
      if (first) {
        notes.moved =
          `${moved} job(s) read with all their times ${formatShift(first.shiftMs)} than stored, first: ${jobLabel(first.jobKey, first.cluster)}` +
          (first.storedEndAt && first.endAt
            ? `, ended ${formatZonedTimeSeconds(first.storedEndAt, timeZone)}, now ${formatZonedTimeSeconds(first.endAt, timeZone)}`
            : '') +
          ': stored as read now, so they may fall on other days. Was APP_TZ, or the zone the sacct output is ' +
          'written in, changed? (docs/ingestion.md, Reused job ids)';
        logger.warn(
          { runId, moved, first: { cluster: first.cluster, jobKey: first.jobKey, shiftMs: first.shiftMs } },
          'jobs read with all their times moved by a zone difference; stored as read',
        );
      }
    }
    // A file read up to when it was last written: the run's window is recorded so (readThrough).
    const recorded = answered ? readThrough(window, answered.modifiedAt) : window;
    if (recorded.end < window.end) {
      notes.window =
        `read up to ${formatZonedTimeSeconds(recorded.end, timeZone)}, when the file was last written (it holds no job that ended later): ` +
        'the next run reads from there';
    }
    const runError =
      deps.sources.length === 0
        ? // Said where the admin meets it (the runs table, Run now's answer, the log), with where to read how.
          'no source is configured (SLURMRESTD_URL, SACCT_PATH, FALLBACK_CSV): see docs/ingestion.md, "Configuration"'
        : failures.join('; ') || null;
    const outcome: RunSummary['outcome'] = !answered ? 'failed' : answered.counts.skipped > 0 ? 'partial' : 'success';
    const durationMs = Date.now() - startedAt;
    const summary: RunSummary = {
      runId,
      source: answered?.source ?? null,
      window: recorded,
      seen: runJobs.seen,
      inserted: totals.inserted,
      updated: totals.updated,
      unchanged: totals.unchanged,
      skipped: answered?.counts.skipped ?? 0,
      warned: answered?.counts.warned ?? 0,
      unknownStateJobs: answered?.counts.unknownStateJobs ?? 0,
      outcome,
      error: answered ? null : runError,
      isSetupProblem: !answered && isEveryFailureSetup,
      durationMs,
      sourceNotes: notes,
    };
    // A PostgreSQL that restarted after the run's last batch committed may leave the pool idle connections
    // it has not yet seen die: this write failed on one, the run threw as the database's failure and read
    // "running" until the next run called it abandoned, though its jobs were stored. Tried again past
    // them; a database still down fails the run as before.
    const recordedCounts = await retryOnStaleConnection(db.pool, () =>
      ingestionRepository.finishRun(db.prisma, runId, {
        source: summary.source,
        sourceNotes: notes,
        ...(outcome === 'failed'
          ? { outcome }
          : { outcome, seen: summary.seen, inserted: summary.inserted, updated: summary.updated }),
        skipped: summary.skipped,
        error: summary.error,
        stoppedByShutdown: !answered && isStoppedByShutdown,
        finishedAt: new Date(),
        durationMs,
        ...(recorded.end < window.end ? { windowEnd: recorded.end } : {}),
      }),
    );
    // What a failed run says of its counts, wherever it is read, is what its record keeps.
    if (outcome === 'failed') {
      Object.assign(summary, recordedCounts, {
        unchanged: recordedCounts.seen - recordedCounts.inserted - recordedCounts.updated,
      });
    }
    metrics.ingestRuns.inc({ source: summary.source ?? 'none', outcome });
    metrics.ingestJobs.inc({ result: 'inserted' }, summary.inserted);
    metrics.ingestJobs.inc({ result: 'updated' }, summary.updated);
    metrics.ingestJobs.inc({ result: 'unchanged' }, summary.unchanged);
    metrics.ingestJobs.inc({ result: 'skipped' }, summary.skipped);
    metrics.ingestDuration.observe(durationMs / 1000);
    if (outcome !== 'failed') metrics.ingestLastSuccess.set(Date.now() / 1000);
    const log = outcome === 'failed' ? logger.error.bind(logger) : logger.info.bind(logger);
    log(
      {
        runId,
        trigger,
        source: summary.source,
        window: { start: recorded.start.toISOString(), end: recorded.end.toISOString() },
        seen: summary.seen,
        inserted: summary.inserted,
        updated: summary.updated,
        unchanged: summary.unchanged,
        skipped: summary.skipped,
        warned: summary.warned,
        unknownStateJobs: summary.unknownStateJobs,
        durationMs,
        error: summary.error,
      },
      `ingestion run ${outcome}`,
    );
    return summary;
  }

  const service = {
    /**
     * Sets slurm_ingest_last_success_timestamp_seconds from the newest completed run, so a
     * restarted process does not report "never" (and fire IngestionStale) before its first run.
     */
    async restoreFreshnessGauge(): Promise<void> {
      const finishedAt = await ingestionRepository.findLastSuccessfulFinish(db.prisma, cluster);
      if (finishedAt) metrics.ingestLastSuccess.set(finishedAt.getTime() / 1000);
    },
    /**
     * One ingestion run over `window` (default: [high-water mark - overlap, now]); skipped when
     * another process holds the lock. Never throws for source failures: they are recorded.
     * `force` reads a file source even when it is unchanged since a run that covered the window.
     */
    async runOnce(input: {
      trigger: TTrigger;
      window?: IngestWindow;
      user?: string;
      force?: boolean;
      /**
       * Skip when a run reading up to now (scheduled or "Run now", by any process) finished
       * less than this long ago. Every worker and replica schedules a run per interval; the
       * lock only keeps them from overlapping, so without this each interval read Slurm once
       * per process. Backfill days do not count: a backfill runs one after another for hours,
       * and counting them kept the scheduler from reading new jobs all that time.
       */
      skipIfFinishedWithinSec?: number;
      /** Aborting it stops the run (a killed sacct, no further source); it is recorded as failed. */
      signal?: AbortSignal;
      /**
       * Wait up to this long for another process's run to release the lock, holding one
       * connection meanwhile, instead of skipping at once. The scheduler waits: a backfill takes
       * the lock day after day, and a scheduled run that only tried it was skipped for the whole
       * backfill, so no new job was read for hours.
       */
      waitForLockMs?: number;
      /**
       * Asked just before the run is recorded, the lock held: false records none and skips the run
       * (`not-started`). The CLI stopped while starting (a signal as it waited for the database or
       * the lock) must leave no run behind.
       */
      startsRun?: () => boolean;
      /** Told the run's id once its row (running) is written: Run now names it when it answers before the run ends. */
      onRunStarted?: (runId: number) => void;
    }): Promise<RunResult> {
      const release = input.waitForLockMs
        ? await ingestionRepository.acquireIngestLockWaiting(db.pool, {
            waitMs: input.waitForLockMs,
            queryTimeoutMs: db.queryTimeoutMs,
            signal: input.signal,
            cluster,
          })
        : await ingestionRepository.tryAcquireIngestLock(db.pool, cluster);
      if (!release) return { status: 'skipped', reason: 'locked' };
      try {
        if (!hasAdoptedRuns) {
          // Once a process: after the first, none is left but those an older release records in a rolling deploy.
          const adopted = await ingestionRepository.adoptRunsWithoutCluster(db.pool, cluster);
          if (adopted > 0)
            logger.info({ adopted, cluster }, "ingestion runs recorded before runs had a cluster are this cluster's");
          hasAdoptedRuns = true;
        }
        if (input.skipIfFinishedWithinSec !== undefined) {
          const lastFinish = await ingestionRepository.findLastLiveRunFinish(db.prisma, cluster);
          // Wall-clock time, as runs record their finish in it.
          if (lastFinish && Date.now() - lastFinish.getTime() < input.skipIfFinishedWithinSec * 1000) {
            return { status: 'skipped', reason: 'recent' };
          }
        }
        const { abandoned } = await failRunsLeftRunning(db, now(), cluster, logger);
        if (abandoned > 0) logger.warn({ abandoned }, 'marked runs left running by a stopped process as failed');
        const window = input.window ?? (await defaultWindow());
        if (!(window.start < window.end)) throw new RangeError('the ingestion window must start before it ends');
        const readOptions: ReadOptions = { user: input.user, signal: input.signal };
        if (input.startsRun && !input.startsRun()) return { status: 'skipped', reason: 'not-started' };
        return {
          status: 'finished',
          run: await runLocked(input.trigger, window, readOptions, input.force ?? false, input.onRunStarted),
        };
      } catch (error) {
        // A database behind the code (a column or a table missing) may fail the run before it is
        // recorded (its record is what lacks them), and one that goes away mid-run fails it before
        // its end is recorded: counted here, or slurm_ingest_runs_total never saw them.
        if (isMissingColumn(error) || isMissingTable(error) || error instanceof ingestionRepository.JobStoreError) {
          metrics.ingestRuns.inc({ source: 'none', outcome: 'failed' });
        }
        throw error;
      } finally {
        await release();
      }
    },
  };

  /**
   * The audit entry of a run someone started (`action`): `failed` for one skipped because another run
   * held the lock, else the run's outcome and counts under its target `ingestion_run:<id>`. `details`
   * are added to the entry's (the CLI's trigger and day).
   */
  async function recordRunAudit(
    context: AuditContext,
    action: string,
    result: RunResult,
    details: Record<string, unknown> = {},
  ): Promise<void> {
    if (result.status === 'skipped') {
      await recordAudit(db, {
        ...context,
        action,
        status: 'failed',
        details: { ...details, reason: 'another run was in progress' },
      });
      return;
    }
    const { run } = result;
    await recordAudit(db, {
      ...context,
      action,
      target: `ingestion_run:${run.runId}`,
      // A partial run (records left out, the rest written) was `ok`, as if it had written every job.
      status: run.outcome === 'success' ? 'ok' : run.outcome,
      details: {
        ...details,
        outcome: run.outcome,
        source: run.source,
        seen: run.seen,
        inserted: run.inserted,
        updated: run.updated,
        // How many records the run left out: what makes it partial.
        skipped: run.skipped,
        // Why it failed, as the run recorded it: the page lists the last 25 runs only, and with a
        // scheduled run every few minutes a failed Run now soon left it; the entry said "failed" alone.
        ...(run.error ? { error: run.error } : {}),
      },
    });
  }

  /**
   * An admin's "Run now" (POST /admin/ingestion/run): one manual run, and its `ingestion.run_now`
   * audit entry, for a run skipped because another was in progress too. Its result when the run ends
   * within RUN_NOW_ANSWER_WITHIN_MS; else `running` with its id, and the run goes on in the background
   * (backgroundWork), recorded and audited when it ends, stopped by the server's shutdown as a
   * scheduled run is (its sacct killed, recorded stopped_by_shutdown). A run that fails to be
   * recorded (the database) throws here when it does so within the bound, and is logged after it.
   * Refused (ServiceUnavailableError, 503) while the server drains before its shutdown or stops, and
   * (UnsealedAuditAppendError, 503) where its entry could not be written: this process has no
   * AUDIT_CHAIN_KEY and the log is sealed.
   */
  async function runNow(context: AuditContext): Promise<RunNowResult> {
    // Draining, the process stops once the delay is over, and then stops the run: accepted, it was
    // recorded failed by the shutdown moments after its answer (or, started past the drain, stopped
    // before it read anything), and the admin had to find out and run it again. Refused at once
    // instead, with nothing recorded or audited, as a month-end start is; the next Run now goes to an
    // instance that stays.
    if (backgroundWork.isStopping() || deps.isDraining?.()) {
      throw new ServiceUnavailableError(RUN_NOW_WHILE_STOPPING);
    }
    // Its entry is written after the run, which would be done without it (the append refusing it).
    await refuseUnsealedAppendNow(db.prisma);
    const stopping = new AbortController();
    const startedAt = Date.now();
    const state: { runId?: number; isAbandoned: boolean } = { isAbandoned: false };
    let onStarted: () => void = () => undefined;
    const started = new Promise<void>((resolve) => {
      onStarted = resolve;
    });
    const finished = backgroundWork.track(
      async (_shouldStop, processStopping) => {
        // A ShutdownStop, as the scheduler's: the run is recorded stopped by its server's shutdown.
        const stop = () => stopping.abort(new ShutdownStop());
        if (processStopping.aborted) stop();
        else processStopping.addEventListener('abort', stop, { once: true });
        try {
          const result = await service.runOnce({
            trigger: 'manual',
            signal: stopping.signal,
            onRunStarted: (runId) => {
              state.runId = runId;
              onStarted();
            },
          });
          // An abandoned run's entry was written with its record (abandonRunNow).
          if (!state.isAbandoned) {
            await recordRunAudit(context, 'ingestion.run_now', result).catch((error: unknown) => {
              // The log sealed since the check above: the run was made and stays, which "Nothing was
              // changed" would deny.
              if (!(error instanceof UnsealedAuditAppendError) || result.status !== 'finished') throw error;
              throw error.withOutcome(
                `Ingestion run #${result.run.runId} ran and is kept, but its audit entry was not written`,
              );
            });
          }
          return result;
        } finally {
          processStopping.removeEventListener('abort', stop);
        }
      },
      {
        // Read when the shutdown names what it abandoned: the run's id is known by then, unless it
        // never got its row (the database), when there is no run to name.
        get name() {
          return state.runId === undefined ? 'a Run now ingestion run' : `ingestion run #${state.runId} (Run now)`;
        },
        abandon: () => abandonRunNow(context, state, Date.now() - startedAt),
      },
    );
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<'bound'>((resolve) => {
      timer = setTimeout(() => resolve('bound'), runNowAnswerWithinMs);
    });
    try {
      const first = await Promise.race([finished, bound]);
      if (first !== 'bound') return first;
    } finally {
      clearTimeout(timer);
    }
    // Answered before its end: its failure has no request left to fail, and is logged as the scheduler's is.
    finished.catch((error) => {
      logger.error({ err: error, runId: state.runId }, 'ingestion run started by Run now failed');
    });
    // The bound is for the sources; a run still starting (its lock or row waiting on the database) is
    // waited for until it has a row to name, or has ended, which DB_QUERY_TIMEOUT_MS bounds.
    const next = await Promise.race([started.then(() => 'started' as const), finished]);
    if (next !== 'started') return next;
    return { status: 'running', runId: state.runId as number };
  }

  /**
   * The shutdown's timeout ran out with Run now's run still going (a source that does not stop when
   * told, a database that does not answer): recorded failed and stopped by the shutdown, as a run the
   * shutdown stopped in time is, with its audit entry, before the process closes the connections it
   * uses (its batch in flight rolls back). A run that ended meanwhile has written its own. Never rejects.
   */
  async function abandonRunNow(
    context: AuditContext,
    state: { runId?: number; isAbandoned: boolean },
    durationMs: number,
  ): Promise<void> {
    const { runId } = state;
    if (runId === undefined) return;
    const error = `stopped: ${SHUTDOWN_STOP_REASON} (its shutdown timeout ran out before the run ended)`;
    try {
      // Its counts are those its batches committed, each with its jobs; they were left at 0 here,
      // beside the jobs of those batches, as if it had stored nothing.
      const committed = await ingestionRepository.failRunningRunForShutdown(db.pool, runId, {
        error,
        countsNote: `${ingestionRepository.cutRunCountsNote('cut short by the shutdown')}. The next run reads the window again`,
        finishedAt: new Date(),
        durationMs,
      });
      if (!committed) return;
      state.isAbandoned = true;
      metrics.ingestRuns.inc({ source: 'none', outcome: 'failed' });
      await recordAudit(db, {
        ...context,
        action: 'ingestion.run_now',
        target: `ingestion_run:${runId}`,
        status: 'failed',
        details: { outcome: 'failed', source: null, ...committed, skipped: 0, error },
      });
    } catch (caught) {
      // Its row stays running until the next run marks it abandoned.
      logger.error({ err: caught, runId }, 'ingestion run of Run now was abandoned but could not be recorded failed');
    }
  }

  return { ...service, runNow, recordRunAudit };
}

export type IngestionService = ReturnType<typeof createIngestionService>;

export interface IngestionOverview {
  /** The recent runs of every cluster the database's instances read. */
  runs: ingestionRepository.RunRecord[];
  /** This instance's cluster (SLURM_CLUSTER; '' where it is unset), whose figures below are. */
  cluster: ingestionRepository.RunCluster;
  /** Whether the runs listed are of more than one cluster (instances sharing the database): the page names each run's. */
  hasClusters: boolean;
  /** End of the newest completed run's window of this cluster: its data is complete up to here. */
  dataThrough: Date | null;
  /** now - dataThrough, in seconds; null before the first completed run. */
  freshnessSec: number | null;
  /** Whether a run of this cluster is in progress (Run now would be refused). */
  isRunning: boolean;
  /**
   * Before the first completed run only: the jobs stored all the same (a data generator, an
   * import by other means, a run that failed part way), so the page does not say there are none.
   */
  storedJobs: { count: number; isEstimate: boolean } | null;
}

/**
 * Marks failed the runs of `clusters` left `running` by a process that died (kill -9, the OOM killer), as
 * their cluster's next run would: a run holds its cluster's ingestion lock while it runs, so with the lock
 * free none of the cluster's is running. Taken for the moment of the update, so that a run starting
 * meanwhile is not marked with them. A run this process knows failed on a lost database connection (one
 * of its own cluster's) is recorded so instead. How many.
 */
async function failDeadRuns(
  db: Database,
  now: Date,
  own: ingestionRepository.RunCluster,
  clusters: Iterable<ingestionRepository.RunCluster>,
): Promise<number> {
  let failed = 0;
  for (const cluster of clusters) {
    const release = await ingestionRepository.tryAcquireIngestLock(db.pool, cluster);
    if (!release) continue;
    try {
      if (cluster === own) {
        const { lost, abandoned } = await failRunsLeftRunning(db, now, cluster);
        failed += lost + abandoned;
      } else failed += await ingestionRepository.failAbandonedRuns(db.pool, now, cluster);
    } finally {
      await release();
    }
  }
  return failed;
}

/**
 * What /admin/ingestion shows: recent runs and how fresh the stored data is. A run whose process died
 * is shown failed: it read "A run is in progress", Run now disabled, until the next run, hours away
 * under cron (INGEST_ENABLED=0).
 */
export async function getIngestionOverview(
  db: Database,
  now: Date,
  options: { cluster?: ingestionRepository.RunCluster; limit?: number } = {},
): Promise<IngestionOverview> {
  const cluster = options.cluster ?? '';
  const limit = options.limit ?? 25;
  // A run recorded before runs had a cluster is this instance's until a run adopts it (runsOf).
  const clusterOf = (run: ingestionRepository.RunRecord) => run.cluster ?? cluster;
  let [runs, dataThrough] = await Promise.all([
    ingestionRepository.listRecentRuns(db.prisma, limit),
    ingestionRepository.findHighWaterMark(db.prisma, cluster),
  ]);
  const running = new Set(runs.filter((run) => run.outcome === 'running').map(clusterOf));
  if (running.size > 0 && (await failDeadRuns(db, now, cluster, running)) > 0) {
    runs = await ingestionRepository.listRecentRuns(db.prisma, limit);
  }
  const storedJobs = dataThrough ? null : await ingestionRepository.storedJobCount(db.prisma);
  return {
    runs,
    cluster,
    hasClusters: new Set(runs.map(clusterOf)).size > 1,
    dataThrough,
    storedJobs,
    freshnessSec: dataThrough ? Math.max(0, Math.round((now.getTime() - dataThrough.getTime()) / 1000)) : null,
    isRunning: runs.some((run) => run.outcome === 'running' && clusterOf(run) === cluster),
  };
}

/**
 * The window a backfill reads for local day `day` in `timeZone` (APP_TZ): from the first instant of that
 * date to the first instant of the next, the usage pages' days (startOfLocalDay). It was `day`'s 00:00
 * read as a sacct time, and where summer time starts at midnight (America/Santiago, America/Asuncion,
 * America/Havana) that 00:00 does not exist and was read an hour early, 23:00 of the day before: the
 * day's run read the jobs that ended in the previous day's last hour, and the previous day's run, ending
 * there, never read them.
 */
export function backfillDayWindow(day: string, timeZone: string): IngestWindow {
  return { start: startOfLocalDay(day, timeZone), end: endOfLocalDay(day, timeZone) };
}

/**
 * Whether a backfill already read this whole window after it had ended (`npm run ingest --from`
 * skips such a day as `already done` unless `--force`): ingestion.repository.ts says which runs count.
 */
export function isBackfillWindowDone(
  db: Database,
  window: IngestWindow,
  cluster?: ingestionRepository.RunCluster,
): Promise<boolean> {
  return ingestionRepository.isBackfillWindowDone(db.prisma, window, cluster ?? '');
}

/** How a run's notes begin for a fallback it did not need (noteFallbacks), and what its set-up check found. */
const NOT_TRIED = 'not tried (';
const WOULD_FAIL = ', but would fail: ';
const SETUP_OK = ', set-up checked: no problem found';

/**
 * What a run's note for a fallback says its set-up check found: true (no problem), false (it would
 * fail), null when the fallback was tried, not configured, or its set-up not checked.
 */
export function fallbackSetupOf(note: string | null): boolean | null {
  if (!note?.startsWith(NOT_TRIED)) return null;
  if (note.endsWith(` answered)${SETUP_OK}`)) return true;
  return / answered\), but would fail: /.test(note) ? false : null;
}

/** What the freshness gauges read at each scrape (findLastIngestionSuccess). */
export interface IngestionFreshness {
  /** When the newest completed run reading up to now finished. */
  finishedAt: Date;
  /**
   * When FALLBACK_CSV was last written, as that run read it, when the file answered it; else null. Each
   * run of a file nothing refreshes succeeds, nothing new in it, so finishedAt stays fresh for ever.
   */
  fileModifiedAt: Date | null;
  /**
   * Each fallback that run did not need and whose set-up it checked (a sacct that can be run, a file
   * that can be read): whether the check found no problem. While slurmrestd answers, a broken
   * fallback showed only in the runs' notes, and was found in the outage it is there for.
   */
  fallbackSetup: { source: string; isOk: boolean }[];
}

/**
 * When the newest completed ingestion run finished, whichever process ran it, and when the file it
 * read was written if the file answered it, for the freshness gauges at each scrape; null before the
 * first. One query; gives up after `timeoutMs`.
 */
export async function findLastIngestionSuccess(
  db: Database,
  timeoutMs: number,
  cluster?: ingestionRepository.RunCluster,
): Promise<IngestionFreshness | null> {
  const last = await ingestionRepository.findLastSuccessfulFinishWithin(db.pool, timeoutMs, cluster ?? '');
  if (!last) return null;
  const fallbackSetup = Object.entries(last.fallbackNotes).flatMap(([source, note]) => {
    const isOk = fallbackSetupOf(note);
    return isOk === null ? [] : [{ source, isOk }];
  });
  return {
    finishedAt: last.finishedAt,
    fileModifiedAt: last.source === 'file' ? fileModifiedAtOf(last.fileFingerprint) : null,
    fallbackSetup,
  };
}
