/**
 * Work a request starts and the process finishes: a month-end run outlives the request that
 * started it (it answers at once), so SIGTERM's drain of in-flight requests does not wait for it.
 * The process's shutdown asks it to stop at its next safe point and waits for that instead, up to
 * the shutdown timeout: a work still going then is abandoned (it records that it was), and the
 * process closes the connections it still uses, which rolls back its uncommitted transactions.
 */
import { settlesWithin } from './settles-within.js';

export interface BackgroundWork {
  /**
   * Runs `work`, which should end early once `shouldStop` says so (or `stopping` is aborted, for a
   * work that waits on something it can abort: a Run now's sacct), and returns its promise: the
   * caller handles its outcome. stop() waits for it whether it resolves or rejects.
   */
  track<T>(
    work: (shouldStop: () => boolean, stopping: AbortSignal) => Promise<T>,
    abandonment: Abandonment,
  ): Promise<T>;
  /** Whether the process is stopping: new work is not started then. */
  isStopping(): boolean;
  /**
   * Asks the work under way to stop and waits for it to end, for at most `timeoutMs` when given.
   * A work still going then is abandoned (its `abandon` has run when this resolves); the names of
   * those abandoned, none when everything ended in time.
   */
  stop(timeoutMs?: number): Promise<string[]>;
}

/** What a work says of itself in case the shutdown stops waiting for it. */
export interface Abandonment {
  /** Names it in the shutdown's warning ("month-end run #12"). */
  name: string;
  /**
   * Records that it was cut short, from what it has committed so far: the process exits right
   * after, without waiting for the rest of it. Never rejects.
   */
  abandon(): Promise<void>;
}

/** A BackgroundWork with nothing under way. */
export function createBackgroundWork(): BackgroundWork {
  const running = new Map<Promise<void>, Abandonment>();
  let isStopping = false;
  const shouldStop = () => isStopping;
  const stopping = new AbortController();
  return {
    track(work, abandonment) {
      const promise = work(shouldStop, stopping.signal);
      const done: Promise<void> = promise.then(
        () => {
          running.delete(done);
        },
        () => {
          running.delete(done);
        },
      );
      running.set(done, abandonment);
      return promise;
    },
    isStopping: shouldStop,
    async stop(timeoutMs) {
      isStopping = true;
      stopping.abort();
      const allEnded = Promise.all([...running.keys()]).then(() => true);
      if (timeoutMs === undefined) {
        await allEnded;
        return [];
      }
      const hasEnded = await settlesWithin(allEnded, timeoutMs);
      if (hasEnded) return [];
      const abandoned = [...running.values()];
      await Promise.all(abandoned.map((work) => work.abandon().catch(() => undefined)));
      return abandoned.map((work) => work.name);
    },
  };
}
