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
