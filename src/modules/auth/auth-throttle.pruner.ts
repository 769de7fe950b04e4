import type pg from 'pg';
import type { Logger } from '../../shared/logger.js';
import { createPeriodicTask, type PeriodicTask } from '../../shared/periodic-task.js';
import type { Metrics } from '../metrics/metrics.js';
import type { LockoutSettings } from './auth.service.js';
import * as throttleRepository from './auth-throttle.repository.js';

/**
 * Rows deleted per statement: each batch holds its row locks only while it runs, so a backlog
 * of millions (a long password spray) never keeps a sign-in waiting for more than one batch.
 */
export const PRUNE_BATCH_SIZE = 1000;

/*
 * A row is deleted only once its window and its lock ended at least this long ago. Every
 * instance counts with its own clock, so one whose clock is ahead must not delete a row another
 * still counts in: clocks closer than this never do. Deleting a row a minute late costs nothing.
 */
const PRUNE_MARGIN_MS = 60_000;

export interface PruneResult {
  /** Rows deleted from `auth_throttle` (per username and address, and per username). */
  throttleRows: number;
  /** Rows deleted from `auth_network_throttle` (per client network). */
  networkRows: number;
  /** Deleted rows whose lock had ended with no attempt since to clear it. */
  endedLocks: number;
}

/** The times before which a row's window and lock must have ended for it to be deleted at `now`. */
function expiryCutoffs(lockout: LockoutSettings, now: Date): throttleRepository.ExpiryCutoffs {
  const before = (windowSec: number) => new Date(now.getTime() - windowSec * 1000 - PRUNE_MARGIN_MS);
  return {
    addressWindowStart: before(lockout.perAddress.windowSec),
    userWindowStart: before(lockout.perUser.windowSec),
    networkWindowStart: before(lockout.perNetwork.windowSec),
    lockEnd: before(0),
  };
}

/**
 * Deletes the sign-in throttle rows that no longer count: their window ended (a next attempt
 * would start again at 1) and so did their lock, if they had one. A row that still locks
 * someone, or whose failures still count toward a lock, stays: deleting it would hand its
 * budget back. Batches of `batchSize` rows until none is left, or until `shouldStop` says so.
 */
export async function pruneExpiredThrottles(
  pool: pg.Pool,
  lockout: LockoutSettings,
  now: Date,
  options: { batchSize?: number; shouldStop?: () => boolean } = {},
): Promise<PruneResult> {
  const batchSize = options.batchSize ?? PRUNE_BATCH_SIZE;
  const cutoffs = expiryCutoffs(lockout, now);
  const result: PruneResult = { throttleRows: 0, networkRows: 0, endedLocks: 0 };
  const deleteAll = async (
    deleteBatch: typeof throttleRepository.deleteExpiredThrottles,
    rows: 'throttleRows' | 'networkRows',
  ) => {
    for (;;) {
      if (options.shouldStop?.()) return;
      const batch = await deleteBatch(pool, cutoffs, batchSize);
      result[rows] += batch.deleted;
      result.endedLocks += batch.endedLocks;
      if (batch.deleted < batchSize) return;
    }
  };
  await deleteAll(throttleRepository.deleteExpiredNetworkThrottles, 'networkRows');
  await deleteAll(throttleRepository.deleteExpiredThrottles, 'throttleRows');
  return result;
}

export interface ThrottlePrunerDeps {
  pool: pg.Pool;
  lockout: LockoutSettings;
  metrics: Metrics;
  logger: Logger;
  now: () => Date;
  intervalSec: number;
  batchSize?: number;
}

/**
 * Prunes the sign-in throttle tables on a timer. One process per instance runs it (the
 * process, or the worker the cluster primary names: `periodicTaskAssigner`), not every worker.
 * A failure is logged as a warning; a stop ends a prune after its current batch.
 */
export function createThrottlePruner(deps: ThrottlePrunerDeps): PeriodicTask {
  return createPeriodicTask(deps.intervalSec, async (shouldStop) => {
    try {
      const result = await pruneExpiredThrottles(deps.pool, deps.lockout, deps.now(), {
        batchSize: deps.batchSize,
        shouldStop,
      });
      // Those locks ended unseen; a sign-in would have counted them as it cleared them.
      if (result.endedLocks > 0) deps.metrics.authLockoutEnd.inc(result.endedLocks);
      const isAnyDeleted = result.throttleRows + result.networkRows > 0;
      deps.logger[isAnyDeleted ? 'info' : 'debug'](result, 'pruned expired sign-in throttle rows');
    } catch (error) {
      // The rows wait for the next interval; sign-ins never depend on them being gone.
      deps.logger.warn({ err: error }, 'could not prune expired sign-in throttle rows');
    }
  });
}
