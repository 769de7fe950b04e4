import path from 'node:path';
import { loadConfig } from '../config/config.js';
import { applyMigrations, StoppedDuringStartup } from '../db/migrations.js';
import { createToolLogger, resultToolLogLevel } from '../shared/logger.js';
import { PROJECT_ROOT } from '../shared/paths.js';
import { warnIfBuildIsStale } from '../shared/stale-build.js';
import { toolCommand } from '../shared/tool-commands.js';
import { missingDatabaseUrl, refuseArguments, runTool } from './run-tool.js';
import { exitCodeOfStop, StoppedTool, stopOnSignals } from './stop-signals.js';

/**
 * As a start does, the first signal lets the migration being applied commit, cancels a wait (for
 * the migration lock, which its session otherwise kept queued for until another host let it go),
 * starts no other, and the tool says what it applied; a second one exits at once (PostgreSQL then
 * rolls back the migration in progress when its statement ends).
 */
const stopMigratingOnSignals = () =>
  stopOnSignals(
    (signal) =>
      `${toolCommand('db:migrate')} stopped at once by a second ${signal}: a migration being applied is rolled back.`,
  );

function describeStop(stop: StoppedDuringStartup): string {
  const command = toolCommand('db:migrate');
  if (stop.applied.length === 0) {
    return (
      `${command} stopped by ${stop.signal} before it applied any migration (it was waiting for another host ` +
      'that migrates this database, or for a lock). Nothing was applied; run it again to apply the pending migrations.'
    );
  }
  return (
    `${command} stopped by ${stop.signal} after it applied ${stop.applied.length} migration(s): ${stop.applied.join(', ')}. ` +
    'Nothing of the others was applied; run it again to apply them.'
  );
}

/** `npm run db:migrate`: applies pending migrations to DATABASE_URL. */
async function main() {
  refuseArguments(
    toolCommand('db:migrate'),
    'it applies every pending migration in prisma/migrations to DATABASE_URL.',
  );
  const stopSignal = stopMigratingOnSignals();
  const config = loadConfig();
  if (!config.databaseUrl) throw missingDatabaseUrl('to run migrations');
  // The summary below is the result; a JSON line per migration (info) would only repeat it.
  const logger = createToolLogger(resultToolLogLevel(config.logLevel));
  // A compiled migrate older than the source applies the newer release's migrations all the same.
  warnIfBuildIsStale(logger, import.meta.filename, path.join(PROJECT_ROOT, 'src'));
  let applied: string[];
  try {
    applied = await applyMigrations(config.databaseUrl, logger, {
      connectTimeoutMs: config.dbConnectTimeoutMs,
      stopSignal,
    });
  } catch (error) {
    if (error instanceof StoppedDuringStartup) throw new StoppedTool(error.signal, describeStop(error));
    throw error;
  }
  console.log(
    applied.length === 0 ? 'Database is up to date.' : `Applied ${applied.length} migration(s): ${applied.join(', ')}`,
  );
}

runTool(main, exitCodeOfStop);
