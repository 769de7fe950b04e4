import type pg from 'pg';
import type { Logger } from '../../shared/logger.js';
import { createPeriodicTask, type PeriodicTask } from '../../shared/periodic-task.js';
import { deleteExpiredSessions } from './session.store.js';

/**
 * Sessions deleted per statement: each batch is its own short transaction, so a backlog of
 * millions (a crawler that kept getting new sessions, a long-stopped pruner) never holds one
 * long DELETE, its locks and its WAL, against the sign-ins writing the same table.
 */
export const SESSION_PRUNE_BATCH_SIZE = 1000;

/**
 * Deletes the sessions that expired before `now`, `batchSize` at a time, until a batch finds
 * fewer than that or `shouldStop` says so. Returns how many it deleted.
 */
export async function pruneExpiredSessions(
  pool: pg.Pool,
  now: Date,
  options: { batchSize?: number; shouldStop?: () => boolean } = {},
): Promise<number> {
  const batchSize = options.batchSize ?? SESSION_PRUNE_BATCH_SIZE;
  let deleted = 0;
  for (;;) {
    if (options.shouldStop?.()) return deleted;
    const batch = await deleteExpiredSessions(pool, now, batchSize);
    deleted += batch;
    if (batch < batchSize) return deleted;
  }
}

export interface SessionPrunerDeps {
  pool: pg.Pool;
  logger: Logger;
  now: () => Date;
  intervalSec: number;
  batchSize?: number;
}

/**
 * Prunes expired sessions on a timer. One process per instance runs it, as the sign-in
 * throttle pruner (`periodicTaskAssigner`). A failure is logged as a warning; a stop ends a
 * prune after its current batch.
 */
export function createSessionPruner(deps: SessionPrunerDeps): PeriodicTask {
  return createPeriodicTask(deps.intervalSec, async (shouldStop) => {
    try {
      const sessions = await pruneExpiredSessions(deps.pool, deps.now(), { batchSize: deps.batchSize, shouldStop });
      deps.logger[sessions > 0 ? 'info' : 'debug']({ sessions }, 'pruned expired sessions');
    } catch (error) {
      // Expired sessions are never served (the read checks the expiry); they wait for the next interval.
      deps.logger.warn({ err: error }, 'could not prune expired sessions');
    }
  });
}
