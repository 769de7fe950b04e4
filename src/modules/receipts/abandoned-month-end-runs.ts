import type { Database } from '../../db/database.js';
import type { Logger } from '../../shared/logger.js';
import { interruptDeadMonthEndRun } from './month-end.service.js';
import * as monthEndRunsRepository from './month-end-runs.repository.js';
import * as receiptsRepository from './receipts.repository.js';

/**
 * At start-up, in one process per instance: marks `interrupted` the month-end runs left `running`
 * by a process that died (kill -9, out of memory), which otherwise read running until someone
 * opens their page or starts the next run. Only while no session holds the month-end lock: one
 * that does is a run going on in another instance, and its row is left alone. Each run marked gets
 * its `receipt.month_end_run` audit entry with it (interruptDeadMonthEndRun). Never rejects; the ids
 * of the runs it marked.
 *
 * The running rows are read before the lock is looked at: a run takes the lock before it inserts
 * its row and writes its end before it releases the lock, so a listed run whose lock is free has
 * ended or died, and a run started meanwhile is not in the list.
 */
export async function interruptAbandonedMonthEndRuns(deps: {
  db: Database;
  logger: Logger;
  now: () => Date;
}): Promise<number[]> {
  const { db, logger } = deps;
  try {
    const runningIds = await monthEndRunsRepository.findRunningRunIds(db.prisma);
    if (runningIds.length === 0) return [];
    if (await receiptsRepository.isMonthEndLockHeld(db.pool)) {
      logger.info({ runIds: runningIds }, 'a month-end run is in progress in another process; its row is left running');
      return [];
    }
    const marked: number[] = [];
    for (const id of runningIds) {
      if (await interruptDeadMonthEndRun(db.prisma, id, deps.now())) marked.push(id);
    }
    if (marked.length === 1) {
      logger.warn(
        { runIds: marked },
        `marked month-end run #${marked[0]} interrupted: its process stopped before it finished`,
      );
    } else if (marked.length > 1) {
      const runs = marked.map((id) => `#${id}`).join(', ');
      logger.warn(
        { runIds: marked },
        `marked month-end runs ${runs} interrupted: their processes stopped before they finished`,
      );
    }
    return marked;
  } catch (error) {
    // Their pages still mark them interrupted when looked at, as does the next run.
    logger.warn({ err: error }, 'could not check for month-end runs left running');
    return [];
  }
}
