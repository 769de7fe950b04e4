import type { Worker } from 'node:cluster';

/** Work on a timer that one process per instance runs (the pruners of expired rows). */
export interface PeriodicTask {
  /** Runs every `intervalSec` from now on; the timer never keeps the process alive. */
  start(): void;
  /** Runs now (or joins the run under way); never rejects. */
  runOnce(): Promise<void>;
  /** Stops the timer, asks a run under way to end (its `shouldStop`), and waits for it. */
  stop(): Promise<void>;
}

/**
 * A task on a timer whose runs never overlap: a run that outlasts the interval (a backlog, a
 * database waiting on a lock) is joined by the next tick instead of doubled. `run` must not
 * reject (it logs its own failure) and should end early once `shouldStop` says so.
 */
export function createPeriodicTask(
  intervalSec: number,
  run: (shouldStop: () => boolean) => Promise<void>,
): PeriodicTask {
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> | undefined;
  let isStopped = false;
  const shouldStop = () => isStopped;

  const runOnce = () => {
    if (isStopped) return Promise.resolve();
    current ??= run(shouldStop)
      .catch(() => undefined)
      .finally(() => {
        current = undefined;
      });
    return current;
  };

  return {
    start() {
      if (timer || isStopped) return;
      timer = setInterval(() => void runOnce(), intervalSec * 1000);
      timer.unref();
    },
    runOnce,
    async stop() {
      isStopped = true;
      if (timer) clearInterval(timer);
      timer = undefined;
      await current;
    },
  };
}

const ASSIGNMENT = 'hpc-billing:periodic-tasks';

/**
 * In the cluster primary: the function to call with each worker that starts listening. It
 * names the first the one that runs the periodic tasks, and the next to listen once that one
 * has died, so one worker runs them however many serve (each would otherwise delete what
 * another just deleted).
 */
export function periodicTaskAssigner(): (worker: Worker) => void {
  let assigned: Worker | undefined;
  return (worker) => {
    if (assigned && !assigned.isDead()) return;
    assigned = worker;
    worker.send({ type: ASSIGNMENT }, (error) => {
      // A worker that cannot be told is going away; the next one to listen is named instead.
      if (error && assigned === worker) assigned = undefined;
    });
  };
}

/**
 * In a cluster worker: calls `start` when the primary names this worker the one that runs the
 * periodic tasks. Listens from before the worker listens, so the primary's message (sent when
 * it does) is not missed.
 */
export function onPeriodicTasksAssigned(start: () => void): void {
  process.on('message', (message: unknown) => {
    if ((message as { type?: unknown } | null)?.type === ASSIGNMENT) start();
  });
}
