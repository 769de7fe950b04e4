/**
 * Work a request starts and the process finishes: a month-end run outlives the request that
 * started it (it answers at once), so SIGTERM's drain of in-flight requests does not wait for it.
 * The process's shutdown asks it to stop at its next safe point and waits for that instead.
 */
export interface BackgroundWork {
  /**
   * Runs `work`, which should end early once `shouldStop` says so, and returns its promise: the
   * caller handles its outcome. stop() waits for it whether it resolves or rejects.
   */
  track<T>(work: (shouldStop: () => boolean) => Promise<T>): Promise<T>;
  /** Whether the process is stopping: new work is not started then. */
  isStopping(): boolean;
  /** Asks the work under way to stop and waits for it to end. */
  stop(): Promise<void>;
}

/** A BackgroundWork with nothing under way. */
export function createBackgroundWork(): BackgroundWork {
  const running = new Set<Promise<void>>();
  let isStopping = false;
  const shouldStop = () => isStopping;
  return {
    track(work) {
      const promise = work(shouldStop);
      const done: Promise<void> = promise.then(
        () => {
          running.delete(done);
        },
        () => {
          running.delete(done);
        },
      );
      running.add(done);
      return promise;
    },
    isStopping: shouldStop,
    async stop() {
      isStopping = true;
      await Promise.all([...running]);
    },
  };
}
