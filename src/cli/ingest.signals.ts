import { onDistinctSignals } from '../shared/distinct-signals.js';
import { settlesWithin } from '../shared/settles-within.js';

// Imported by the CLI's entry before anything else is loaded: nothing heavier than these here.

/**
 * The signals that interrupt a run. SIGHUP is what closing the terminal or the SSH session a
 * backfill runs in sends: it took Node's default action, the process died mid-day, and that day's
 * run stayed `running` until the next run relabelled it. It is taken as a Ctrl-C is.
 */
export const INTERRUPT_SIGNALS = ['SIGINT', 'SIGHUP'] as const;
/**
 * What systemctl stop, docker stop, Kubernetes or a timeout (`timeout`, a scheduler's limit) send,
 * with a SIGKILL a few seconds later (docker stop: 10 s): too soon to finish a backfill's day, so it
 * stops now, as a second Ctrl-C does. It took Node's default action too: the process died mid-write
 * and its run stayed `running` (and as a container's PID 1, which has no default action, it was
 * ignored until the SIGKILL).
 */
export const STOP_SIGNAL = 'SIGTERM';
export type InterruptSignal = (typeof INTERRUPT_SIGNALS)[number] | typeof STOP_SIGNAL;

/** How each interruption is named in what the CLI says and records, and its exit code (128 + the signal's number, as a shell reports one the signal killed). */
export const INTERRUPTIONS: Record<InterruptSignal, { label: string; reason: string; exitCode: number }> = {
  SIGINT: { label: 'Ctrl-C', reason: 'interrupted with Ctrl-C', exitCode: 130 },
  SIGHUP: {
    label: 'SIGHUP: the terminal or SSH session closed',
    reason: 'interrupted by SIGHUP (the terminal or SSH session closed)',
    exitCode: 129,
  },
  SIGTERM: {
    label: 'SIGTERM',
    reason: 'interrupted by SIGTERM (a service manager, container runtime or timeout stopped the process)',
    exitCode: 143,
  },
};

/**
 * Once the terminal is gone, writing to it fails (EIO; EPIPE for a pipe), and an unhandled write
 * error crashed the process mid-run, leaving the run `running` all the same. What is written from
 * then on is lost instead; the runs are recorded in the database.
 */
export function ignoreLostTerminal(signal: InterruptSignal) {
  if (signal !== 'SIGHUP') return;
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
}

/**
 * How long a start-up stopped by a signal lets the database end its connections before it exits
 * anyway: one that does not answer (the reason a start-up lasts long enough to be stopped) would
 * hold the exit for DB_CONNECT_TIMEOUT_MS. The exit closes the sockets all the same, and PostgreSQL
 * ends a session whose socket is gone, with its lock.
 */
const START_UP_CLOSE_GRACE_MS = 500;

/** The CLI's start-up: from the process's first moment until its first ingestion run is about to be recorded. */
export interface StartUp {
  /** True once a signal stopped the start-up: the process is exiting. */
  readonly isStopped: boolean;
  /** True once the first run is recorded: the run's own handlers answer the signals from then on. */
  readonly isOver: boolean;
  /** Closes the database start-up opened, before the exit a signal makes. */
  closeOnStop(close: () => Promise<void>): void;
  /**
   * Ends the start-up just before its first run is recorded; false, and no run is to be recorded,
   * once a signal stopped it.
   */
  end(): boolean;
  /**
   * What start-up waits for (the database, the lock), never settling once a signal stopped it: what
   * comes after is abandoned, and the process exits on the signal's terms.
   */
  guard<T>(work: Promise<T>): Promise<T>;
}

/**
 * Answers SIGINT, SIGHUP and SIGTERM while the CLI starts: loading its modules, opening the
 * database (as long as DB_CONNECT_TIMEOUT_MS when it does not answer), waiting for the ingestion
 * lock. Each took Node's default action, or waited for the database and exited 1 as if it could not
 * be reached: no line said it was stopped, or why. It stops at once, saying so on stdout (the
 * result line), closes what it opened and exits as the run's handlers do (130, 129, 143); nothing was
 * read or recorded, and the lock, a session's, ends with its connection. A second signal exits
 * without waiting for the database.
 */
export function watchStartUp(): StartUp {
  let isStopped = false;
  let isOver = false;
  let close: (() => Promise<void>) | undefined;
  let exitCode = 0;
  onDistinctSignals([...INTERRUPT_SIGNALS, STOP_SIGNAL], (signal) => {
    if (isOver) return;
    if (isStopped) process.exit(exitCode);
    isStopped = true;
    ignoreLostTerminal(signal);
    const interruption = INTERRUPTIONS[signal];
    exitCode = interruption.exitCode;
    console.log(`Stopped (${interruption.label}) before any ingestion run started: nothing was read or recorded.`);
    void settlesWithin(close?.() ?? Promise.resolve(), START_UP_CLOSE_GRACE_MS)
      .catch(() => undefined)
      .finally(() => process.exit(exitCode));
  });
  const abandoned = () => new Promise<never>(() => undefined);
  return {
    get isStopped() {
      return isStopped;
    },
    get isOver() {
      return isOver;
    },
    closeOnStop(closeDatabase) {
      close = closeDatabase;
    },
    end() {
      if (isStopped) return false;
      isOver = true;
      return true;
    },
    guard(work) {
      if (isOver) return work;
      return work.then(
        (value) => (isStopped ? abandoned() : value),
        (error: unknown) => (isStopped ? abandoned() : Promise.reject(error)),
      );
    },
  };
}
