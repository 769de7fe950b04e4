import path from 'node:path';
import { loadConfig } from '../config/config.js';
import { applyMigrations } from '../db/migrations.js';
import { createToolLogger, resultToolLogLevel } from '../shared/logger.js';
import { PROJECT_ROOT } from '../shared/paths.js';
import { warnIfBuildIsStale } from '../shared/stale-build.js';
import { toolCommand } from '../shared/tool-commands.js';
import { missingDatabaseUrl, refuseArguments, runTool } from './run-tool.js';

/** `npm run db:migrate`: applies pending migrations to DATABASE_URL. */
async function main() {
  refuseArguments(
    toolCommand('db:migrate'),
    'it applies every pending migration in prisma/migrations to DATABASE_URL.',
  );
  const config = loadConfig();
  if (!config.databaseUrl) throw missingDatabaseUrl('to run migrations');
  // The summary below is the result; a JSON line per migration (info) would only repeat it.
  const logger = createToolLogger(resultToolLogLevel(config.logLevel));
  // A compiled migrate older than the source applies the newer release's migrations all the same.
  warnIfBuildIsStale(logger, import.meta.filename, path.join(PROJECT_ROOT, 'src'));
  const applied = await applyMigrations(config.databaseUrl, logger, { connectTimeoutMs: config.dbConnectTimeoutMs });
  console.log(
    applied.length === 0 ? 'Database is up to date.' : `Applied ${applied.length} migration(s): ${applied.join(', ')}`,
  );
}

runTool(main);
