import path from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../../src/db/database.js';
import {
  OUTAGE_REMINDER_EVERY_MS,
  startIngestionScheduler,
} from '../../../src/modules/ingestion/ingestion.scheduler.js';
import { createIngestionService, type IngestionService } from '../../../src/modules/ingestion/ingestion.service.js';
import { createSacctFileSource } from '../../../src/modules/ingestion/sacct-file.source.js';
import { createMetrics } from '../../../src/modules/metrics/metrics.js';
import { startTcpProxy, type TcpProxy } from '../../support/tcp-proxy.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

// An operator's walk: while the database was down, every worker logged "ingestion run not started: the
// database is unavailable" at every interval (two lines a minute with two workers, the default 60 s),
// for as long as the outage lasted. Each worker schedules for itself (the advisory lock, which would
// pick one, is in the database that is down), so each says it once, then a reminder at most every
// OUTAGE_REMINDER_EVERY_MS, and one line when runs start again.

const CAPTURE = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05/final/sacct-steps-extra.psv');
const NOT_STARTED = 'ingestion run not started: the database is unavailable; the next interval tries again';

let db: TestDatabase | undefined;
let database: Database | undefined;
let proxy: TcpProxy | undefined;
afterAll(async () => {
  await database?.close();
  await proxy?.close();
  await db?.drop();
});

type LogLine = { level: number; msg: string; err?: unknown; since?: string };

describe('the ingestion scheduler while the database cannot be reached', () => {
  it('warns once when the outage begins, reminds at most every 15 minutes, and says once when runs start again', async () => {
    db = await createTestDatabase();
    const target = new URL(db.url);
    proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
    const viaProxy = new URL(db.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const lines: LogLine[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    database = openDatabase(viaProxy.toString(), {
      poolMax: 2,
      queryTimeoutMs: 30_000,
      logger: pino({ level: 'silent' }),
    });
    const real = createIngestionService({
      db: database,
      sources: [createSacctFileSource({ path: CAPTURE, timeZone: 'UTC', defaultCluster: 'lab' })],
      unconfigured: {},
      logger: pino({ level: 'silent' }),
      metrics: createMetrics(),
      overlapSec: 900,
      initialLookbackSec: 86_400,
    });
    const ticks = { count: 0 };
    const service = {
      ...real,
      runOnce: (input: Parameters<IngestionService['runOnce']>[0]) => {
        ticks.count += 1;
        return real.runOnce(input);
      },
    } as IngestionService;
    // The scheduler's clock, moved by hand: the intervals are real (50 ms), the minutes between reminders are not.
    let clock = new Date('2026-12-07T10:00:00.000Z');
    const outageLines = () => lines.filter((line) => line.msg.includes('not started') || line.msg.includes('again'));

    proxy.cut();
    const stop = startIngestionScheduler({ service, intervalSec: 0.05, logger, initialDelayMs: 0, now: () => clock });
    try {
      await expect.poll(() => ticks.count).toBeGreaterThanOrEqual(5);
      // Five intervals in the same minute: one warning, with its reason.
      expect(outageLines()).toEqual([
        expect.objectContaining({ level: 40, msg: NOT_STARTED, err: expect.any(String) }),
      ]);

      clock = new Date(clock.getTime() + OUTAGE_REMINDER_EVERY_MS - 1000);
      let seen = ticks.count;
      await expect.poll(() => ticks.count).toBeGreaterThanOrEqual(seen + 3);
      expect(outageLines()).toHaveLength(1);

      clock = new Date(clock.getTime() + 1000);
      seen = ticks.count;
      await expect.poll(() => ticks.count).toBeGreaterThanOrEqual(seen + 3);
      expect(outageLines()).toEqual([
        expect.objectContaining({ msg: NOT_STARTED }),
        expect.objectContaining({
          level: 40,
          msg: 'ingestion run still not started since 2026-12-07T10:00:00.000Z: the database is unavailable; the next interval tries again',
          since: '2026-12-07T10:00:00.000Z',
          err: expect.any(String),
        }),
      ]);

      proxy.restore();
      await expect.poll(() => outageLines().length).toBe(3);
      seen = ticks.count;
      await expect.poll(() => ticks.count).toBeGreaterThanOrEqual(seen + 3);
    } finally {
      await stop();
    }
    expect(outageLines()).toEqual([
      expect.objectContaining({ msg: NOT_STARTED }),
      expect.objectContaining({ msg: expect.stringMatching(/^ingestion run still not started since /) }),
      expect.objectContaining({
        level: 30,
        msg: 'ingestion runs start again: the database answers after runs were not started since 2026-12-07T10:00:00.000Z',
        since: '2026-12-07T10:00:00.000Z',
      }),
    ]);
  });
});
