import { ConfigError, loadConfig } from '../config/config.js';
import { isEmbeddedDatabaseUrl } from '../db/embedded-postgres.js';
import { StoppedDuringStartup } from '../db/migrations.js';
import { configureAuditChain } from '../modules/audit/audit.service.js';
import {
  DEMO_LOGINS,
  DEMO_SEED_POOL_MAX,
  demoSacctFilePath,
  refuseRunningDemosFile,
  seedDemoIfEmpty,
} from '../modules/demo/demo.service.js';
import { createToolLogger, resultToolLogLevel } from '../shared/logger.js';
import { missingDatabaseUrl, refuseArguments, runTool } from './run-tool.js';
import { exitCodeOfStop, StoppedTool, stopOnSignals } from './stop-signals.js';
import { openToolDatabase } from './tool-database.js';

const COMMAND = 'npm run db:seed';

/**
 * Where a seed is when told to stop. Before the users and tiers are committed a stop leaves nothing
 * seeded; after, the demo's jobs are ingested all the same (seedDemoIfEmpty), unless a second
 * signal ends the tool at once, when the next seed ingests the rest.
 */
let isIngestingJobs = false;

/**
 * A stop took Node's default action: the tool died without a word (exit 143), and its session
 * stayed queued for the seed lock until another seeder let it go. As db:migrate, the first signal
 * stops it where nothing is half done and it says so; a second one exits at once.
 */
const stopSeedingOnSignals = (sacctFileOf: () => string) =>
  stopOnSignals((signal) =>
    isIngestingJobs
      ? `${COMMAND} stopped at once by a second ${signal} while it ingested the demo's jobs: its users and tiers ` +
        `are seeded, its jobs perhaps only in part. Run it again (or npm start) with this DATA_DIR to ingest the ` +
        `rest from ${sacctFileOf()}.`
      : `${COMMAND} stopped at once by a second ${signal}: nothing was seeded.`,
  );

/** `npm run db:seed`: the demo data into an empty DATABASE_URL (refused in production). */
async function main() {
  refuseArguments(
    COMMAND,
    'it seeds the demo data into DATABASE_URL when the database has no users yet (never with APP_ENV=production).',
  );
  let sacctFile = 'the demo sacct file';
  const stopSignal = stopSeedingOnSignals(() => sacctFile);
  const config = loadConfig();
  configureAuditChain(config.audit);
  if (!config.databaseUrl) throw missingDatabaseUrl('to seed');
  if (config.isProduction) throw new ConfigError(['APP_ENV: demo data is never seeded in production']);
  // The line below is the result; the seeding's ingestion run and `demo data seeded` (info) repeat it.
  const logger = createToolLogger(resultToolLogLevel(config.logLevel));
  const db = openToolDatabase(config.databaseUrl, config, { poolMax: DEMO_SEED_POOL_MAX, logger });
  sacctFile = demoSacctFilePath(config.dataDir);
  try {
    const result = await seedDemoIfEmpty(db, {
      dataDir: config.dataDir,
      currency: config.currency,
      timeZone: config.timeZone,
      logger,
      // The banner's own URL seeds that demo's database, whose file it is.
      beforeWritingSacctFile: isEmbeddedDatabaseUrl(config.databaseUrl)
        ? undefined
        : refuseRunningDemosFile(config.dataDir),
      stopSignal,
      onUsersSeeded: () => {
        isIngestingJobs = true;
      },
    }).catch((error: unknown) => {
      if (!(error instanceof StoppedDuringStartup)) throw error;
      throw new StoppedTool(
        error.signal,
        `${COMMAND} stopped by ${error.signal} before it seeded anything. Nothing was seeded; run it again to seed the demo.`,
      );
    });
    // What comes next, as npm start's banner says it: who can sign in, and the sacct file a later
    // `npm run ingest` reads only with this DATA_DIR.
    const logins = DEMO_LOGINS.map((login) => `${login.username}/${login.password}`).join(', ');
    const { unfinishedSeed } = result;
    console.log(
      result.isSeeded
        ? `Seeded ${result.jobCount} demo jobs (their sacct file: ${result.sacctFile}, which npm run ingest reads ` +
            `with this DATA_DIR). Demo logins: ${logins}.`
        : unfinishedSeed?.isFileMissing
          ? `The database has the demo's users from a seed stopped before all its jobs were in, and their sacct file ` +
            `${unfinishedSeed.sacctFile} is gone (another DATA_DIR?); nothing seeded.`
          : unfinishedSeed
            ? `The database has the demo's users from a seed stopped before all its jobs were in: ingested them now ` +
              `(${unfinishedSeed.jobCount} demo jobs from ${unfinishedSeed.sacctFile}). Demo logins: ${logins}.`
            : 'The database already has users; nothing seeded.',
    );
    if ((result.isSeeded || unfinishedSeed?.jobCount !== undefined) && stopSignal.aborted) {
      console.error(
        `${COMMAND} was told to stop by ${String(stopSignal.reason)} while it ingested the demo's jobs, and finished them first: the demo is whole.`,
      );
    }
  } finally {
    await db.close();
  }
}

runTool(main, exitCodeOfStop);
