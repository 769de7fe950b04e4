import type express from 'express';
import { createApp } from '../../src/app.js';
import { type AppConfig, loadConfig } from '../../src/config/config.js';
import type { Database } from '../../src/db/database.js';
import type { CsvExportLimits } from '../../src/http/csv-exports.js';
import { createMetrics, type Metrics } from '../../src/modules/metrics/metrics.js';
import type { BackgroundWork } from '../../src/shared/background-work.js';
import { createLogger, type Logger } from '../../src/shared/logger.js';

/** Configuration as a test would set the environment; DATABASE_URL comes from the test database. */
export function buildTestConfig(databaseUrl: string, env: Record<string, string> = {}): AppConfig {
  return loadConfig({ DATABASE_URL: databaseUrl, LOG_LEVEL: 'silent', DEMO_SEED: '0', ...env });
}

export interface TestAppOptions {
  env?: Record<string, string>;
  /** A controllable clock for lockout and session-lifetime tests. */
  now?: () => Date;
  metrics?: Metrics;
  /** Export limits to replace (e.g. a stall limit short enough for a test). */
  csvExportLimits?: Partial<CsvExportLimits>;
  /** Where the app logs (default: nowhere); a test that reads the log passes its own. */
  logger?: Logger;
  /** Where runs outlive their request (month-end, Run now); a test that stops them as a shutdown does passes its own. */
  backgroundWork?: BackgroundWork;
  /** How long Run now waits for its run before answering that it is still running (a test's: a fraction of a second). */
  runNowAnswerWithinMs?: number;
  /** Whether the server drains before a shutdown (server.ts's drain); never when left out. */
  isDraining?: () => boolean;
}

/** The real app over a test database, as supertest drives it. */
export function buildTestApp(db: Database & { url: string }, options: TestAppOptions = {}): express.Express {
  const config = buildTestConfig(db.url, options.env);
  return createApp({
    config,
    db,
    logger: options.logger ?? createLogger('silent'),
    metrics: options.metrics ?? createMetrics({ hasProcessMetrics: config.metrics.hasProcessMetrics }),
    now: options.now,
    csvExportLimits: options.csvExportLimits,
    backgroundWork: options.backgroundWork,
    runNowAnswerWithinMs: options.runNowAnswerWithinMs,
    isDraining: options.isDraining,
  });
}

/** The value of one series of a metric, 0 when it has none. */
export async function metricValue(
  metrics: Metrics,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const match = values.find((value) =>
    Object.entries(labels).every(
      ([key, expected]) => String((value.labels as Record<string, unknown>)[key]) === expected,
    ),
  );
  return match?.value ?? 0;
}
