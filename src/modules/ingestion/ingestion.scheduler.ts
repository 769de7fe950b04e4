import type { Logger } from '../../shared/logger.js';
import type { IngestionService } from './ingestion.service.js';

export interface SchedulerDeps {
  service: IngestionService;
  intervalSec: number;
  logger: Logger;
  /** Delay before the first run; a worker that just started lets the others settle. */
  initialDelayMs?: number;
}

/**
 * Runs ingestion every `intervalSec` (measured from the end of the previous run, so runs
 * never pile up). Every worker and replica may run one: the advisory lock lets one through.
 * Returns a function that stops it and waits for a run in progress.
 */
export function startIngestionScheduler(deps: SchedulerDeps): () => Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> | undefined;
  let isStopped = false;

  const tick = () => {
    timer = undefined;
    current = deps.service
      .runOnce({ trigger: 'schedule' })
      .then((result) => {
        if (result.status === 'skipped') deps.logger.debug('ingestion run skipped: another process holds the lock');
      })
      .catch((error) => deps.logger.error({ err: error }, 'ingestion run crashed'))
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
    await current;
  };
}
