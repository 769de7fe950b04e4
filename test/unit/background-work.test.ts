import { describe, expect, it } from 'vitest';
import { createBackgroundWork } from '../../src/shared/background-work.js';

/** A promise and the function that settles it, for work that ends when the test says so. */
function released() {
  let release = () => {};
  const promise = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { promise, release };
}

describe('background work and the process stopping', () => {
  it('stops waiting for work that outlasts the timeout, and has it record that it was abandoned first', async () => {
    const backgroundWork = createBackgroundWork();
    const endless = released();
    const abandoned: string[] = [];
    let sawStop = false;
    const finished = backgroundWork.track(
      async (shouldStop) => {
        await endless.promise;
        sawStop = shouldStop();
      },
      {
        name: 'month-end run #7',
        abandon: async () => {
          abandoned.push('month-end run #7');
        },
      },
    );
    const quick = released();
    void backgroundWork.track(() => quick.promise, {
      name: 'quick work',
      abandon: async () => {
        abandoned.push('quick work');
      },
    });
    const stopped = backgroundWork.stop(50);
    quick.release();

    expect(await stopped).toEqual(['month-end run #7']);
    expect(abandoned).toEqual(['month-end run #7']);
    expect(backgroundWork.isStopping()).toBe(true);
    endless.release();
    await finished;
    expect(sawStop).toBe(true);
  });

  it('abandons nothing when the work ends within the timeout, however it ends', async () => {
    const backgroundWork = createBackgroundWork();
    let isAbandoned = false;
    const failing = backgroundWork.track(
      async (shouldStop) => {
        while (!shouldStop()) await new Promise((resolve) => setImmediate(resolve));
        throw new Error('stopped');
      },
      {
        name: 'failing work',
        abandon: async () => {
          isAbandoned = true;
        },
      },
    );
    const stopped = backgroundWork.stop(60_000);
    await expect(failing).rejects.toThrow('stopped');
    expect(await stopped).toEqual([]);
    expect(isAbandoned).toBe(false);
  });

  // A Run now's run waits on sacct, not in a loop that could ask shouldStop: it is told by the signal, and
  // kills sacct at once, as the scheduler's run is stopped.
  it('aborts the signal of work under way when it stops, and gives work started after that an aborted one', async () => {
    const backgroundWork = createBackgroundWork();
    const noAbandon = { name: 'waiting work', abandon: async () => undefined };
    const waiting = backgroundWork.track(
      (_shouldStop, stopping) =>
        new Promise<string>((resolve) => {
          expect(stopping.aborted).toBe(false);
          stopping.addEventListener('abort', () => resolve('told'), { once: true });
        }),
      noAbandon,
    );
    expect(await backgroundWork.stop(60_000)).toEqual([]);
    expect(await waiting).toBe('told');
    expect(await backgroundWork.track(async (_shouldStop, stopping) => stopping.aborted, noAbandon)).toBe(true);
  });
});
