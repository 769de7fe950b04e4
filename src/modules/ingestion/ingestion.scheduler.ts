import {
  DATABASE_BEHIND,
  DATABASE_READ_ONLY,
  isDatabaseUnavailable,
  isMissingColumn,
  isMissingTable,
  isReadOnlyDatabase,
  sqlStateOf,
} from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { JobStoreError } from './ingestion.repository.js';
import { describeStoreFailure, type IngestionService, lastLineOf } from './ingestion.service.js';
import { ShutdownStop } from './job-source.js';

export interface SchedulerDeps {
  service: IngestionService;
  intervalSec: number;
  logger: Logger;
  /** Delay before the first run; a worker that just started lets the others settle. */
  initialDelayMs?: number;
  /** True while the process drains before a shutdown (SHUTDOWN_DRAIN_DELAY_MS): no run starts then. */
  isDraining?: () => boolean;
  /** The clock the outage reminders are timed by (tests move it by hand). */
  now?: () => Date;
}

/**
 * How often a run that still cannot start for the database is said again. 15 minutes is the
 * IngestionStale alert's threshold: an outage is still in the log by the time it pages, while the
 * default 60 s interval no longer writes a line a minute per worker for the whole outage.
 */
export const OUTAGE_REMINDER_EVERY_MS = 15 * 60 * 1000;

/** Why runs cannot start, said once when an outage begins; a change of reason is a new outage. */
type NotStartedReason = 'the database is unavailable' | typeof DATABASE_READ_ONLY;

/** Why a run failed before it could begin, or undefined for a run that began (or a bug). */
function notStartedReasonOf(error: unknown): NotStartedReason | undefined {
  // A run that began and failed is its own failure, each logged: the database behind this release
  // (a missing column or table), or a JobStoreError raised while its jobs were written.
  if (isMissingColumn(error) || isMissingTable(error) || error instanceof JobStoreError) return undefined;
  // PostgreSQL stopped, restarting or out of connections before the run began: nothing crashed,
  // and the run could not even be recorded. /readyz and AppNotReady say the rest; the pool reconnects.
  if (isDatabaseUnavailable(error)) return 'the database is unavailable';
  // A standby or a database set read-only: nothing could be written, the run included.
  // /readyz and AppNotReady say so too.
  if (isReadOnlyDatabase(error)) return DATABASE_READ_ONLY;
  return undefined;
}

/**
 * Runs ingestion every `intervalSec` (measured from the end of the previous run, so runs
 * never pile up). Every worker and replica schedules one: the advisory lock lets one through
 * at a time (a tick queues for it for up to half an interval, so a backfill cannot keep it out),
 * and a run that finds another scheduled or manual run finished within half an interval does
 * nothing (backfill days do not count). A process draining before a shutdown starts no run, nor
 * does a tick that was waiting for the lock when the drain began.
 * While the database cannot be reached (or only reads), that is warned once, then again at most every
 * OUTAGE_REMINDER_EVERY_MS, and said once at info when runs start again. Each worker logs its own:
 * the lock that picks one is in the database that is away.
 * Returns a function that stops it: a run in progress is stopped (its sacct killed) and awaited.
 */
export function startIngestionScheduler(deps: SchedulerDeps): () => Promise<void> {
  const now = deps.now ?? (() => new Date());
  let timer: NodeJS.Timeout | undefined;
  let outage: { reason: NotStartedReason; since: Date; saidAt: Date } | undefined;
  let current: Promise<void> | undefined;
  let isStopped = false;
  // Shutdown must not wait for a slow or hung sacct: sacct runs in a process group of its own,
  // so the terminal's Ctrl-C does not reach it, and a run may take up to SACCT_TIMEOUT_MS.
  const stopping = new AbortController();

  const noteNotStarted = (reason: NotStartedReason, error: unknown) => {
    const cause = error instanceof Error ? error.message : String(error);
    const at = now();
    if (outage?.reason !== reason) {
      outage = { reason, since: at, saidAt: at };
      deps.logger.warn({ err: cause }, `ingestion run not started: ${reason}; the next interval tries again`);
    } else if (at.getTime() - outage.saidAt.getTime() >= OUTAGE_REMINDER_EVERY_MS) {
      outage.saidAt = at;
      const since = outage.since.toISOString();
      deps.logger.warn(
        { err: cause, since },
        `ingestion run still not started since ${since}: ${reason}; the next interval tries again`,
      );
    }
  };
  // Any answer but "not started" ends the outage: the run could at least be begun (or skipped for
  // another process's), so the database answers again.
  const endOutage = () => {
    if (!outage) return;
    const since = outage.since.toISOString();
    outage = undefined;
    deps.logger.info(
      { since },
      `ingestion runs start again: the database answers after runs were not started since ${since}`,
    );
  };

  const tick = () => {
    timer = undefined;
    // A run started in the drain would be stopped when it ends, recorded failed, and make the other
    // instances skip their next tick as one just finished: they run it instead.
    if (deps.isDraining?.()) {
      deps.logger.debug('ingestion run skipped: this process is draining before a shutdown');
      if (!isStopped) timer = setTimeout(tick, deps.intervalSec * 1000);
      return;
    }
    current = deps.service
      // Half an interval: another process's run this interval counts, last interval's does not.
      .runOnce({
        trigger: 'schedule',
        skipIfFinishedWithinSec: deps.intervalSec / 2,
        // Queue for the lock for up to half an interval: between two backfill days it is this
        // run's turn; waiting longer would only meet the next tick.
        waitForLockMs: (deps.intervalSec * 1000) / 2,
        signal: stopping.signal,
        // Asked again once the lock is held: a tick queued for it when the drain began would
        // otherwise start the run the check above keeps out (the service then releases the lock).
        startsRun: () => !deps.isDraining?.(),
      })
      .then((result) => {
        endOutage();
        if (result.status === 'skipped') {
          deps.logger.debug(
            result.reason === 'locked'
              ? 'ingestion run skipped: another process holds the lock'
              : result.reason === 'not-started'
                ? 'ingestion run not started: this process began draining before a shutdown while it waited for the lock'
                : 'ingestion run skipped: another process ran one this interval',
          );
        }
      })
      .catch((error) => {
        const notStarted = notStartedReasonOf(error);
        if (notStarted) {
          noteNotStarted(notStarted, error);
          return;
        }
        endOutage();
        if (isMissingColumn(error) || isMissingTable(error)) {
          // A column or table this release uses is missing: the database is behind the code (an
          // older dump restored, an upgrade nobody migrated, a database never migrated), as /readyz
          // says. Logged as "crashed" with Prisma's stack and code frame it read as a bug, and a
          // missing table as "not started"; the run is counted failed (the service).
          deps.logger.error(
            { err: lastLineOf(error) },
            `ingestion run failed: ${DATABASE_BEHIND}; the next interval tries again`,
          );
        } else if (error instanceof JobStoreError) {
          // The database failed the run under way (PostgreSQL stopped, restarted or unreachable while
          // its jobs were written, or a query it refused): the run's failure, counted failed (the
          // service), not the source's. The driver's error itself, with its code and stack: a refused
          // query (a constraint, a bug in the SQL) needs them to be found, and its last line alone hid them.
          deps.logger.error(
            { err: error.cause ?? error, sqlState: sqlStateOf(error) },
            `ingestion run failed: ${describeStoreFailure(error)}; the next interval tries again`,
          );
        } else deps.logger.error({ err: error }, 'ingestion run crashed');
      })
      .finally(() => {
        current = undefined;
        if (!isStopped) timer = setTimeout(tick, deps.intervalSec * 1000);
      });
  };
  deps.service
    .restoreFreshnessGauge()
    .catch((error) =>
      deps.logger.warn({ err: error }, 'could not read the last ingestion run for the freshness gauge'),
    );
  timer = setTimeout(tick, deps.initialDelayMs ?? 1000);

  return async () => {
    isStopped = true;
    if (timer) clearTimeout(timer);
    stopping.abort(new ShutdownStop());
    await current;
  };
}
