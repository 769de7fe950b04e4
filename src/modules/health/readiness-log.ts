import type { Logger } from '../../shared/logger.js';
import type { Readiness } from './health.service.js';

/** How often a readiness that stays lost is logged again, with how long it has lasted. */
export const NOT_READY_REMINDER_MS = 5 * 60_000;

export interface ReadinessLogOptions {
  logger: Logger;
  /** The time source, in milliseconds; tests pass a controllable one. */
  now?: () => number;
  reminderMs?: number;
}

export interface ReadinessLog {
  /** Told what each readiness check saw: a /readyz probe's or a scrape's. */
  report(readiness: Readiness): void;
}

/**
 * Logs readiness when it changes, not at every check: a load balancer probing /readyz every few
 * seconds while the database is away wrote a `not ready` warning each time, thousands an hour,
 * burying every other line. The first failed check logs the warning with its cause; while it lasts,
 * one reminder every `reminderMs` says for how long and how many checks failed meanwhile (and the
 * cause now); the first check that passes again logs `ready again`, with the last failure's cause.
 */
export function createReadinessLog({
  logger,
  now = Date.now,
  reminderMs = NOT_READY_REMINDER_MS,
}: ReadinessLogOptions): ReadinessLog {
  let outage: { since: number; loggedAt: number; failedChecks: number; lastError?: string } | undefined;
  // The newer release's migrations last warned of: said once, and again only when they change.
  let warnedAhead: string | undefined;
  return {
    report(readiness) {
      const at = now();
      if (readiness.isReady) {
        const ahead = readiness.warning?.unknownMigrations.join(',');
        if (ahead !== undefined && ahead !== warnedAhead && readiness.warning) {
          logger.warn(
            { err: readiness.warning.message, unknownMigrations: readiness.warning.unknownMigrations },
            'ready, but the database was migrated by a newer release',
          );
        }
        warnedAhead = ahead;
        if (!outage) return;
        // Not "the database answers": a schema behind the code or a read-only database answered
        // throughout. The last failure's cause says what came back.
        logger.info(
          { notReadyForMs: at - outage.since, failedChecks: outage.failedChecks, lastError: outage.lastError },
          'ready again',
        );
        outage = undefined;
        return;
      }
      if (!outage) {
        outage = { since: at, loggedAt: at, failedChecks: 1, lastError: readiness.error };
        logger.warn({ err: readiness.error }, 'not ready');
        return;
      }
      outage.failedChecks += 1;
      outage.lastError = readiness.error;
      if (at - outage.loggedAt < reminderMs) return;
      outage.loggedAt = at;
      logger.warn(
        { err: readiness.error, notReadyForMs: at - outage.since, failedChecks: outage.failedChecks },
        'not ready',
      );
    },
  };
}
