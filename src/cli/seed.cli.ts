import { ConfigError, loadConfig } from '../config/config.js';
import { isEmbeddedDatabaseUrl } from '../db/embedded-postgres.js';
import { configureAuditChain } from '../modules/audit/audit.service.js';
import { DEMO_LOGINS, refuseRunningDemosFile, seedDemoIfEmpty } from '../modules/demo/demo.service.js';
import { createToolLogger, resultToolLogLevel } from '../shared/logger.js';
import { missingDatabaseUrl, refuseArguments, runTool } from './run-tool.js';
import { openToolDatabase } from './tool-database.js';

/** `npm run db:seed`: the demo data into an empty DATABASE_URL (refused in production). */
async function main() {
  refuseArguments(
    'npm run db:seed',
    'it seeds the demo data into DATABASE_URL when the database has no users yet (never with APP_ENV=production).',
  );
  const config = loadConfig();
  configureAuditChain(config.audit);
  if (!config.databaseUrl) throw missingDatabaseUrl('to seed');
  if (config.isProduction) throw new ConfigError(['APP_ENV: demo data is never seeded in production']);
  // The line below is the result; the seeding's ingestion run and `demo data seeded` (info) repeat it.
  const logger = createToolLogger(resultToolLogLevel(config.logLevel));
  const db = openToolDatabase(config.databaseUrl, config, { poolMax: 2, logger });
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
    });
    // What comes next, as npm start's banner says it: who can sign in, and the sacct file a later
    // `npm run ingest` reads only with this DATA_DIR.
    const logins = DEMO_LOGINS.map((login) => `${login.username}/${login.password}`).join(', ');
    console.log(
      result.isSeeded
        ? `Seeded ${result.jobCount} demo jobs (their sacct file: ${result.sacctFile}, which npm run ingest reads ` +
            `with this DATA_DIR). Demo logins: ${logins}.`
        : 'The database already has users; nothing seeded.',
    );
  } finally {
    await db.close();
  }
}

runTool(main);
