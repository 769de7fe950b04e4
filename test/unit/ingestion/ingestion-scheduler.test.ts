import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { startIngestionScheduler } from '../../../src/modules/ingestion/ingestion.scheduler.js';
import type { IngestionService } from '../../../src/modules/ingestion/ingestion.service.js';

/** What pg's pool throws while PostgreSQL is stopped or restarting. */
function refusedConnection(): Error {
  return Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:5432'), {
    code: 'ECONNREFUSED',
    address: '10.0.0.5',
    port: 5432,
  });
}

/** Starts a scheduler whose run fails with `error`, and returns what it logged for that run. */
async function logOfFailedRun(error: Error): Promise<Array<{ level: number; msg: string; err?: unknown }>> {
  const lines: Array<{ level: number; msg: string; err?: unknown }> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  let runs = 0;
  const service = {
    runOnce: async () => {
      runs += 1;
      throw error;
    },
    restoreFreshnessGauge: async () => undefined,
  } as unknown as IngestionService;
  const stop = startIngestionScheduler({ service, intervalSec: 3600, logger, initialDelayMs: 0 });
  await expect.poll(() => runs).toBe(1);
  await stop();
  return lines;
}

describe('the ingestion scheduler, when a run fails before it starts', () => {
  it('says the database is unavailable (a warning, no stack) while PostgreSQL is down, not that ingestion crashed', async () => {
    const lines = await logOfFailedRun(refusedConnection());
    expect(lines.filter((line) => line.level >= 50)).toEqual([]);
    expect(lines).toEqual([
      expect.objectContaining({
        level: 40,
        msg: 'ingestion run not started: the database is unavailable; the next interval tries again',
        err: 'connect ECONNREFUSED 10.0.0.5:5432',
      }),
    ]);
  });

  it('still logs anything else as an error with its stack', async () => {
    const lines = await logOfFailedRun(new TypeError('cannot read properties of undefined'));
    expect(lines).toEqual([
      expect.objectContaining({
        level: 50,
        msg: 'ingestion run crashed',
        err: expect.objectContaining({ message: 'cannot read properties of undefined', stack: expect.any(String) }),
      }),
    ]);
  });
});

// Behind a load balancer a stopping instance first drains (SHUTDOWN_DRAIN_DELAY_MS), serving on while
// /readyz says 503. Its scheduler went on ticking meanwhile: a run started in the drain was stopped
// when the drain ended, recorded failed ("stopped: the process is shutting down"), and as a run that
// had just finished it made the other instances skip their next tick, so every rolling deploy could
// cost a failed run and an interval of freshness (seen driving two instances on one database).
describe('the ingestion scheduler of a process draining for a shutdown', () => {
  function countingService() {
    const calls = { runs: 0 };
    const service = {
      runOnce: async () => {
        calls.runs += 1;
        return { status: 'finished' };
      },
      restoreFreshnessGauge: async () => undefined,
    } as unknown as IngestionService;
    return { calls, service };
  }

  it('starts no run while the process drains, and the instances that stay run them', async () => {
    const logger = pino({ level: 'silent' });
    const draining = countingService();
    const staying = countingService();
    const stopDraining = startIngestionScheduler({
      service: draining.service,
      intervalSec: 0.05,
      logger,
      initialDelayMs: 0,
      isDraining: () => true,
    });
    const stopStaying = startIngestionScheduler({
      service: staying.service,
      intervalSec: 0.05,
      logger,
      initialDelayMs: 0,
      isDraining: () => false,
    });
    await expect.poll(() => staying.calls.runs).toBeGreaterThanOrEqual(3);
    await Promise.all([stopDraining(), stopStaying()]);
    expect(draining.calls.runs).toBe(0);
  });
});

// A tick that was already queued for the ingestion lock (behind another process's run or a backfill)
// when the drain began still started its run once it got the lock: the drain's end then stopped it,
// recorded failed, and the other instances skipped their next tick as one had just finished.
describe('the ingestion scheduler of a process that starts draining while it waits for the lock', () => {
  it('starts no run once it gets the lock, and says why at debug', async () => {
    const lines: Array<{ level: number; msg: string }> = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    let isDraining = false;
    let grantLock: () => void = () => undefined;
    const lockHeld = new Promise<void>((resolve) => {
      grantLock = resolve;
    });
    const calls = { waits: 0, runs: 0, answered: 0 };
    // As the service does: wait for the lock, then ask startsRun (the lock held) before recording a run.
    const service = {
      runOnce: async (input: { startsRun?: () => boolean }) => {
        calls.waits += 1;
        await lockHeld;
        calls.answered += 1;
        if (input.startsRun && !input.startsRun()) return { status: 'skipped', reason: 'not-started' };
        calls.runs += 1;
        return { status: 'finished' };
      },
      restoreFreshnessGauge: async () => undefined,
    } as unknown as IngestionService;
    const stop = startIngestionScheduler({
      service,
      intervalSec: 3600,
      logger,
      initialDelayMs: 0,
      isDraining: () => isDraining,
    });
    await expect.poll(() => calls.waits).toBe(1);
    isDraining = true;
    grantLock();
    await expect.poll(() => calls.answered).toBe(1);
    await stop();
    expect(calls.runs).toBe(0);
    expect(lines).toEqual([
      expect.objectContaining({
        level: 20,
        msg: 'ingestion run not started: this process began draining before a shutdown while it waited for the lock',
      }),
    ]);
  });
});
