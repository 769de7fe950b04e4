import type { SourceItem } from './slurm-job.model.js';

/** A half-open accounting window [start, end] in UTC. */
export interface IngestWindow {
  start: Date;
  end: Date;
}

export type TSourceName = 'slurmrestd' | 'sacct' | 'file';

export interface ReadOptions {
  /** Only this user's jobs (validated); all users when unset. */
  user?: string;
  /** Aborted when the run must stop (the process is shutting down): the read ends with a RunStoppedError. */
  signal?: AbortSignal;
}

/**
 * Where jobs come from. Every source streams normalized records for a window, so the
 * service can write them in batches without holding a whole window in memory.
 */
export interface JobSource {
  readonly name: TSourceName;
  read(window: IngestWindow, options?: ReadOptions): AsyncIterable<SourceItem>;
  /**
   * A set-up mistake that fails this source whenever it is tried, found without asking Slurm (a
   * binary that cannot be run), or null. Asked of the fallbacks a run did not need, so a broken
   * one is seen before the outage it is there for.
   */
  findSetupProblem?(): Promise<string | null>;
  /**
   * Why this source, though it answered, may be reading only some users' jobs (a slurmrestd user who is
   * no operator, where PrivateData=jobs would hide the others), or null. Asked after it answered; the
   * run's notes and the log say it.
   */
  findAccessWarning?(): Promise<string | null>;
  /** For file sources: changes whenever the file does, so an unchanged file can be skipped. */
  fingerprint?(): Promise<{ value: string; modifiedAt: Date }>;
}

/** The source is set up wrongly (bad token, 401/403, missing file or binary): retrying will not help. */
export class SourceConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SourceConfigError';
  }
}

/** The source did not answer usably this time (timeout, 5xx, non-zero exit, malformed output). */
export class SourceUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SourceUnavailableError';
  }
}

/**
 * slurmdbd refused the query as longer than its MaxQueryTimeRange (slurmdbd.conf): error 7007, "Too
 * wide of a date range in query", which sacct prints and slurmrestd reports. The window is read again
 * in shorter slices.
 */
export class QueryTooWideError extends SourceUnavailableError {
  constructor(message: string) {
    super(message);
    this.name = 'QueryTooWideError';
  }
}

/** slurmdbd's words for ESLURM_DB_QUERY_TOO_WIDE (7007), as sacct prints them and slurmrestd reports them. */
export const QUERY_TOO_WIDE_TEXT = /too wide of a date range/i;

/** The shortest slice a window is cut into when slurmdbd finds it too wide (or its answer too large). */
export const MIN_SLICE_MS = 60_000;

/** Half of a slice `lengthMs` long, in whole seconds, and never below MIN_SLICE_MS. */
export function halfSlice(lengthMs: number): number {
  return Math.max(MIN_SLICE_MS, Math.ceil(lengthMs / 2 / 1000) * 1000);
}

/** Why a server's scheduler stops its run when the process shuts down: the run's error ends with it. */
export const SHUTDOWN_STOP_REASON = 'the process is shutting down';

/**
 * The reason a server's scheduler aborts its run with when the process shuts down. Such a run is
 * recorded stopped by its server's shutdown (ingestion_runs.stopped_by_shutdown), not told by its
 * error's words: a source's error that ended with them was taken for a shutdown.
 */
export class ShutdownStop extends Error {
  constructor() {
    super(SHUTDOWN_STOP_REASON);
    this.name = 'ShutdownStop';
  }
}

/** The run was stopped from outside (the process is shutting down): no other source is tried. */
export class RunStoppedError extends Error {
  /** Stopped by its server's shutdown (ShutdownStop), not by a CLI's Ctrl-C or SIGTERM. */
  readonly isShutdown: boolean;

  constructor(signal: AbortSignal) {
    const reason: unknown = signal.reason;
    super(`stopped: ${reason instanceof Error ? reason.message : String(reason ?? 'aborted')}`);
    this.name = 'RunStoppedError';
    this.isShutdown = reason instanceof ShutdownStop;
  }
}

/** Throws a RunStoppedError once `signal` is aborted. */
export function throwIfStopped(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new RunStoppedError(signal);
}

const USERNAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/** A Slurm/POSIX user name safe to hand to sacct; throws otherwise. */
export function validateUsername(user: string): string {
  if (!USERNAME.test(user)) throw new SourceConfigError(`not a valid user name: "${user.slice(0, 70)}"`);
  return user;
}

/**
 * Whether a job belongs to a window: ended inside it, or (not ended yet) started or was
 * submitted before its end. Terminal jobs match the way `sacct -S -E --state=<terminal>` does.
 */
export function isInWindow(
  job: { startAt: Date | null; submitAt: Date | null; endAt: Date | null },
  window: IngestWindow,
): boolean {
  if (job.endAt) return job.endAt >= window.start && job.endAt <= window.end;
  const began = job.startAt ?? job.submitAt;
  return began === null || began <= window.end;
}
