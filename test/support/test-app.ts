import type express from 'express';
import { createApp } from '../../src/app.js';
import { type AppConfig, loadConfig } from '../../src/config/config.js';
import type { Database } from '../../src/db/database.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { createLogger } from '../../src/shared/logger.js';

/** Configuration as a test would set the environment; DATABASE_URL comes from the test database. */
export function buildTestConfig(databaseUrl: string, env: Record<string, string> = {}): AppConfig {
  return loadConfig({ DATABASE_URL: databaseUrl, LOG_LEVEL: 'silent', DEMO_SEED: '0', ...env });
}

/** The real app over a test database, as supertest drives it. */
export function buildTestApp(db: Database & { url: string }, env: Record<string, string> = {}): express.Express {
  const config = buildTestConfig(db.url, env);
  const metrics = createMetrics({ hasProcessMetrics: config.metrics.hasProcessMetrics });
  return createApp({ config, db, logger: createLogger('silent'), metrics });
}
