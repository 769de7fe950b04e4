import { ConfigError, loadConfig } from '../config/config.js';
import { openDatabase } from '../db/database.js';
import { configureAuditChain } from '../modules/audit/audit.service.js';
import { buildIngestionService } from '../modules/ingestion/ingestion.factory.js';
import * as ingestionRepository from '../modules/ingestion/ingestion.repository.js';
import { createLocalTimeConverter } from '../modules/ingestion/slurm-time.parser.js';
import { createMetrics } from '../modules/metrics/metrics.js';
import { addLocalDays } from '../shared/local-date.js';
import { createLogger } from '../shared/logger.js';
import { INGEST_USAGE, parseIngestArgs } from './ingest.args.js';
import { runTool } from './run-tool.js';

function progressBar(done: number, total: number): string {
  const width = 24;
  const filled = Math.round((done / total) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total}`;
}

/** `npm run ingest`: a backfill over whole days, one ingestion run per day. */
async function main() {
  const parsed = parseIngestArgs(process.argv.slice(2));
  if (parsed.kind === 'help') {
    console.log(INGEST_USAGE);
    return;
  }
  if (parsed.kind === 'usage-error') {
    console.error(`${parsed.message}\n\n${INGEST_USAGE}`);
    process.exit(64); // EX_USAGE
  }
  const { args } = parsed;
  const config = loadConfig();
  configureAuditChain(config.audit);
  if (!config.databaseUrl) throw new ConfigError(['DATABASE_URL: is required for a backfill']);
  const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
  const db = openDatabase(config.databaseUrl, {
    poolMax: 4,
    queryTimeoutMs: config.dbQueryTimeoutMs,
    connectTimeoutMs: config.dbConnectTimeoutMs,
    logger,
  });
  const service = buildIngestionService({ config, db, logger, metrics: createMetrics() });
  const toUtc = createLocalTimeConverter(config.timeZone);

  const days: string[] = [];
  for (let day = args.from; day <= args.to; day = addLocalDays(day, 1)) days.push(day);
  let isStopping = false;
  process.on('SIGINT', () => {
    if (isStopping) process.exit(130);
    isStopping = true;
    process.stderr.write('\nStopping after the current day (Ctrl-C again to stop now).\n');
  });

  // On a terminal each day overwrites the last (\r); anywhere else (cron's mail, a log file) a \r
  // would run every day into one line, so each gets a line of its own.
  const isTerminal = process.stderr.isTTY === true;
  const writeProgress = (text: string) => process.stderr.write(isTerminal ? `\r${text}` : `${text}\n`);

  const totals = { days: 0, skippedDays: 0, failedDays: 0, seen: 0, inserted: 0, updated: 0, skipped: 0 };
  const started = Date.now();
  try {
    for (const [index, day] of days.entries()) {
      if (isStopping) break;
      const window = {
        start: toUtc(`${day}T00:00:00`) as Date,
        end: toUtc(`${addLocalDays(day, 1)}T00:00:00`) as Date,
      };
      if (!args.force && (await ingestionRepository.isBackfillWindowDone(db.prisma, window))) {
        totals.skippedDays += 1;
        writeProgress(`${progressBar(index + 1, days.length)} ${day} already done${isTerminal ? '          ' : ''}`);
        continue;
      }
      let result = await service.runOnce({ trigger: 'backfill', window, force: args.force });
      // The scheduler of a running server may hold the lock for a moment: wait for it.
      while (result.status === 'skipped' && !isStopping) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        result = await service.runOnce({ trigger: 'backfill', window, force: args.force });
      }
      if (result.status !== 'finished') break;
      const run = result.run;
      totals.days += 1;
      if (run.outcome === 'failed') totals.failedDays += 1;
      totals.seen += run.seen;
      totals.inserted += run.inserted;
      totals.updated += run.updated;
      totals.skipped += run.skipped;
      writeProgress(
        `${progressBar(index + 1, days.length)} ${day} ${run.outcome} via ${run.source ?? '-'}: ${run.seen} jobs, ${run.inserted} new, ${run.updated} updated, ${run.skipped} skipped${run.warned > 0 ? `, ${run.warned} with End before Start` : ''}`,
      );
      if (run.outcome === 'failed') process.stderr.write(`${isTerminal ? '\n' : ''}  ${day}: ${run.error}\n`);
    }
  } finally {
    await db.close();
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(
    `\nBackfill ${args.from} .. ${args.to}: ${totals.days} day(s) read, ${totals.skippedDays} already done, ${totals.failedDays} failed; ` +
      `${totals.seen} jobs seen, ${totals.inserted} new, ${totals.updated} updated, ${totals.skipped} malformed skipped, in ${seconds} s.` +
      (isStopping ? ' Stopped early: run the same command again to continue.' : ''),
  );
  if (totals.failedDays > 0) process.exitCode = 1;
}

runTool(main);
