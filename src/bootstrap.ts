import type { AppConfig } from './config/config.js';
import { describeConnectionOverflow } from './db/connection-budget.js';
import { openDatabase } from './db/database.js';
import { startEmbeddedPostgres } from './db/embedded-postgres.js';
import { applyMigrations, throwIfStoppedDuringStartup } from './db/migrations.js';
import { configureAuditChain, refuseUnsealedAppend } from './modules/audit/audit.service.js';
import {
  DEMO_SEED_POOL_MAX,
  type DemoSeedResult,
  refuseRunningDemosFile,
  seedDemoIfEmpty,
} from './modules/demo/demo.service.js';
import { describeRatesInOtherCurrency } from './modules/pricing/rates.service.js';
import {
  describeExistingBootstrapAdmin,
  describeMissingAdmin,
  ensureBootstrapAdmin,
} from './modules/users/users.service.js';
import type { Logger } from './shared/logger.js';

export interface PreparedDatabase {
  databaseUrl: string;
  isEmbedded: boolean;
  /** What the demo seed did on this start, when the demo applies. */
  demo: DemoSeedResult | undefined;
  /** Stops the embedded PostgreSQL (and waits until it has), if there is one; again, the same wait. */
  stop(): Promise<void>;
}

/**
 * Gets a database ready before any worker serves: the configured one, or an embedded
 * PostgreSQL under DATA_DIR; migrated; seeded with the demo when that applies. Once `stopSignal`
 * is aborted (SIGTERM or Ctrl-C during start-up) it throws StoppedDuringStartup at the next step:
 * a migration in progress, one transaction, commits or rolls back whole first; the demo seed stops
 * between its password hashes, or between two batches of its jobs (the next start ingests the
 * rest); its connections and the embedded PostgreSQL are closed.
 */
export async function prepareDatabase(
  config: AppConfig,
  logger: Logger,
  stopSignal?: AbortSignal,
): Promise<PreparedDatabase> {
  const embedded = config.databaseUrl ? undefined : await startEmbeddedPostgres(config.dataDir, logger);
  const databaseUrl = config.databaseUrl ?? (embedded?.url as string);
  // The bootstrap admin's creation is audited, sealed as every later entry.
  configureAuditChain(config.audit);
  let demo: DemoSeedResult | undefined;
  try {
    throwIfStoppedDuringStartup(stopSignal);
    await applyMigrations(databaseUrl, logger, { stopSignal, connectTimeoutMs: config.dbConnectTimeoutMs });
    throwIfStoppedDuringStartup(stopSignal);
    const db = openDatabase(databaseUrl, {
      poolMax: DEMO_SEED_POOL_MAX,
      queryTimeoutMs: config.dbQueryTimeoutMs,
      connectTimeoutMs: config.dbConnectTimeoutMs,
      logger,
    });
    try {
      // Without AUDIT_CHAIN_KEY on a sealed log (a development start on an instance's database), exit 78
      // before the demo seed, the bootstrap admin and any request write an entry that would break the
      // chain for good. After the migrations (which write none): a database that cannot be reached is
      // told as their first connection tells it (DB_START_WAIT_SEC, the stale demo URL).
      await refuseUnsealedAppend(db.prisma);
      if (config.shouldSeedDemo) {
        const { dataDir, currency, timeZone } = config;
        demo = await seedDemoIfEmpty(db, {
          dataDir,
          currency,
          timeZone,
          logger,
          // Its own embedded PostgreSQL serves DATA_DIR; a configured database must not take a running demo's file.
          beforeWritingSacctFile: embedded ? undefined : refuseRunningDemosFile(dataDir),
          // A stop waited for the whole seed, hashing and jobs (seconds, a minute on a busy machine).
          stopSignal,
          stopsJobIngest: true,
        });
        throwIfStoppedDuringStartup(stopSignal);
      }
      const admin = config.auth.bootstrapAdmin;
      if (admin && (await ensureBootstrapAdmin(db.prisma, admin.username, admin.password))) {
        logger.info({ username: admin.username }, 'created the admin from ADMIN_USERNAME');
      } else if (admin) {
        const existing = await describeExistingBootstrapAdmin(db.prisma, admin.username, admin.password);
        if (existing) logger.warn(existing);
      }
      const missingAdmin = await describeMissingAdmin(db.prisma);
      if (missingAdmin) logger.warn(missingAdmin);
      // Rates entered before CURRENCY was changed would be shown and billed under the new label.
      const currencyWarning = await describeRatesInOtherCurrency(db.prisma, config.currency, new Date());
      if (currencyWarning) logger.warn(currencyWarning);
      // Pools open connections lazily: past max_connections the start looks fine and load fails.
      const connectionWarning = await describeConnectionOverflow(db.pool, {
        workers: config.webConcurrency,
        poolMax: config.dbPoolMax,
      });
      if (connectionWarning) logger.warn(connectionWarning);
    } finally {
      await db.close();
    }
  } catch (error) {
    await embedded?.stop();
    throw error;
  }
  // Once, however many ask: a start that fails as a signal arrives is stopped by both.
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= embedded ? embedded.stop() : Promise.resolve();
    return stopping;
  };
  return { databaseUrl, isEmbedded: Boolean(embedded), demo, stop };
}
