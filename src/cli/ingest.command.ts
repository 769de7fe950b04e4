import { CONFIG_ERROR_EXIT_CODE, ConfigError, loadConfig } from '../config/config.js';
import { configureAuditChain, refuseUnsealedAppend } from '../modules/audit/audit.service.js';
import { buildIngestionService } from '../modules/ingestion/ingestion.factory.js';
import { JobStoreError } from '../modules/ingestion/ingestion.repository.js';
import {
  backfillDayWindow,
  describeStoreFailure,
  type IngestionService,
  isBackfillWindowDone,
  lastLineOf,
  type RunResult,
  type RunSummary,
} from '../modules/ingestion/ingestion.service.js';
import { createMetrics } from '../modules/metrics/metrics.js';
import { onDistinctSignals } from '../shared/distinct-signals.js';
import { isDatabaseUnavailable, isMissingColumn, isMissingTable } from '../shared/errors.js';
import { addLocalDays, formatZonedTimeSeconds } from '../shared/local-date.js';
import { createToolLogger, resultToolLogLevel } from '../shared/logger.js';
import { cliAuditContext } from './cli-audit-context.js';
import { INGEST_USAGE, parseIngestArgs } from './ingest.args.js';
import { INTERRUPT_SIGNALS, INTERRUPTIONS, ignoreLostTerminal, STOP_SIGNAL, type StartUp } from './ingest.signals.js';
import { asToolError, missingDatabaseUrl, runTool } from './run-tool.js';
import { openToolDatabase } from './tool-database.js';

function progressBar(done: number, total: number): string {
  const width = 24;
  const filled = Math.round((done / total) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total}`;
}

// How long an incremental run queues for the ingestion lock: a server's scheduled run or a
// backfill day holds it for seconds; one held longer is a stuck leader, which IngestionStale
// reports, and cron's next run tries again.
const INCREMENTAL_LOCK_WAIT_MS = 60_000;

/** The audit action of a run of `npm run ingest` (the admin's Run now is `ingestion.run_now`). */
const CLI_RUN_ACTION = 'ingestion.cli_run';

/**
 * `npm run ingest`: one incremental run (no dates), or a backfill over whole days, one ingestion
 * run per day (`--from`, `--to`).
 */
async function main(startUp: StartUp) {
  const parsed = parseIngestArgs(process.argv.slice(2));
  if (parsed.kind === 'help') {
    console.log(INGEST_USAGE);
    return;
  }
  if (parsed.kind === 'usage-error') {
    console.error(`${parsed.message}\n\n${INGEST_USAGE}`);
    process.exit(64); // EX_USAGE
  }
  const config = loadConfig();
  configureAuditChain(config.audit);
  if (!config.databaseUrl) throw missingDatabaseUrl('to ingest');
  const logger = createToolLogger(resultToolLogLevel(config.logLevel));
  const db = openToolDatabase(config.databaseUrl, config, { poolMax: 4, logger });
  startUp.closeOnStop(() => db.close());
  // Each run appends an entry: one unsealed after sealed ones breaks the chain for good, so no run starts.
  await refuseUnsealedAppend(db.prisma).catch(async (error: unknown) => {
    await db.close();
    throw error;
  });
  const service = buildIngestionService({ config, db, logger, metrics: createMetrics() });
  // Each run it makes is audited as the admin's Run now is, by `cli` with the OS user (and under sudo
  // who invoked it), as the user tools' entries are: a run from a shell or cron wrote none.
  const cliContext = cliAuditContext('ingest.cli', { sudoUser: config.sudoUser });
  // Another instance given the key sealed the log after the check above: the run's entry was refused.
  let isAuditKeyMissing = false;
  const recordRun = async (result: RunResult, details: Record<string, unknown>) => {
    try {
      await service.recordRunAudit(cliContext, CLI_RUN_ACTION, result, details);
    } catch (thrown) {
      // The run itself is recorded (ingestion_runs) and reported below; its audit entry is not: say so.
      const error = asToolError(thrown, "so the run's entry was not written (the run is kept)");
      logger.error({ err: error }, 'the ingestion run could not be recorded in the audit log');
      isAuditKeyMissing ||= error instanceof ConfigError;
      process.exitCode ||= 1;
    }
  };
  // The key missing is a setting to fix, as at the start (78), whatever became of the run: not a
  // failed run (1), nor one cron's next run mends (75).
  const exitForMissingKey = () => {
    if (isAuditKeyMissing) process.exitCode = CONFIG_ERROR_EXIT_CODE;
  };
  if (parsed.kind === 'incremental') {
    try {
      await runIncremental(service, parsed.force, startUp, recordRun, config.timeZone);
    } finally {
      await db.close();
    }
    exitForMissingKey();
    return;
  }
  const { args } = parsed;
  const days: string[] = [];
  for (let day = args.from; day <= args.to; day = addLocalDays(day, 1)) days.push(day);
  // Ctrl-C: the first finishes the current day and stops; the second stops that day at once (its
  // sacct killed, its run recorded failed, the day not done); a third exits without waiting. The
  // same Ctrl-C delivered twice (by the terminal, and by npm to its script) is one.
  let interrupts = 0;
  let interruption = INTERRUPTIONS.SIGINT;
  const stopping = new AbortController();
  onDistinctSignals(INTERRUPT_SIGNALS, (signal) => {
    // Before the first day's run is recorded the start-up answers it (ingest.signals.ts).
    if (!startUp.isOver) return;
    ignoreLostTerminal(signal);
    interrupts += 1;
    if (interrupts === 1) {
      interruption = INTERRUPTIONS[signal];
      process.stderr.write('\nStopping after the current day (Ctrl-C again to stop now).\n');
    } else if (interrupts === 2) {
      process.stderr.write('\nStopping now: the current day is left not done.\n');
      stopping.abort(new Error(INTERRUPTIONS[signal].reason));
    } else process.exit(interruption.exitCode);
  });
  // SIGTERM stops now, as a second Ctrl-C: the SIGKILL after it would not wait for the day. Watched
  // apart from Ctrl-C, so that one arriving just after a Ctrl-C is not taken for that Ctrl-C again;
  // a SIGTERM delivered twice (to the process group, and by npm to its script) is still one.
  onDistinctSignals([STOP_SIGNAL], (signal) => {
    if (!startUp.isOver) return;
    if (stopping.signal.aborted) process.exit(interruption.exitCode);
    interrupts = Math.max(interrupts, 2);
    interruption = INTERRUPTIONS[signal];
    process.stderr.write('\nSIGTERM: stopping now, the current day is left not done.\n');
    stopping.abort(new Error(interruption.reason));
  });
  const isStopping = () => interrupts > 0;

  // On a terminal each day overwrites the last (\r); anywhere else (cron's mail, a log file) a \r
  // would run every day into one line, so each gets a line of its own.
  const isTerminal = process.stderr.isTTY === true;
  const writeProgress = (text: string) => process.stderr.write(isTerminal ? `\r${text}` : `${text}\n`);

  const totals = { days: 0, skippedDays: 0, failedDays: 0, seen: 0, inserted: 0, updated: 0, skipped: 0 };
  let stoppedDay: string | undefined;
  /** The day whose run failed for how the sources are set up: every day after it would fail the same way. */
  let setupProblemDay: string | undefined;
  /** The day whose run's audit entry was refused for want of AUDIT_CHAIN_KEY: no day after it is run. */
  let auditRefusedDay: string | undefined;
  /** The days' notes said so far (runNotes), each said once. */
  const notesSaid = new Set<string>();
  let daysLeft = days.length;
  const started = Date.now();
  try {
    for (const [index, day] of days.entries()) {
      if (isStopping()) break;
      const window = backfillDayWindow(day, config.timeZone);
      if (!args.force && (await startUp.guard(isBackfillWindowDone(db, window, config.ingestion.cluster)))) {
        totals.skippedDays += 1;
        daysLeft -= 1;
        writeProgress(`${progressBar(index + 1, days.length)} ${day} already done${isTerminal ? '          ' : ''}`);
        continue;
      }
      const runDay = () =>
        startUp.guard(
          service.runOnce({
            trigger: 'backfill',
            window,
            force: args.force,
            signal: stopping.signal,
            startsRun: () => startUp.isOver || startUp.end(),
          }),
        );
      let result = await runDay();
      // The scheduler of a running server may hold the lock for a moment: wait for it.
      while (result.status === 'skipped' && !isStopping()) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        result = await runDay();
      }
      if (result.status !== 'finished') break;
      await recordRun(result, { trigger: 'backfill', day });
      const run = result.run;
      if (run.outcome === 'failed' && stopping.signal.aborted) {
        // Stopped part way by the second Ctrl-C: recorded failed, not done, read again next time.
        stoppedDay = day;
        break;
      }
      daysLeft -= 1;
      // Each day is counted once, read or failed: a failed day was counted as both ("1 day(s) read, … 1 failed").
      if (run.outcome === 'failed') totals.failedDays += 1;
      else totals.days += 1;
      totals.seen += run.seen;
      totals.inserted += run.inserted;
      totals.updated += run.updated;
      totals.skipped += run.skipped;
      writeProgress(
        `${progressBar(index + 1, days.length)} ${day} ${run.outcome}${viaSourceText(run)}: ${run.seen} jobs, ${run.inserted} new, ${run.updated} updated, ${run.skipped} skipped${run.warned > 0 ? `, ${run.warned} with End before Start` : ''}${unknownStatesText(run)}`,
      );
      if (run.outcome === 'failed') process.stderr.write(`${isTerminal ? '\n' : ''}  ${day}: ${run.error}\n`);
      else {
        // A refused slurmrestd behind an sacct that answers fails no day: said under the first day it
        // concerns, as an incremental run's result says it, and not again for each day after it.
        const notes = runNotes(run).filter((note) => !notesSaid.has(note));
        for (const note of notes) notesSaid.add(note);
        if (notes.length > 0) {
          process.stderr.write(`${isTerminal ? '\n' : ''}${notes.map((note) => `  ${day}: ${note}\n`).join('')}`);
        }
      }
      if (isAuditKeyMissing) {
        // Each day after it would be run and kept without its entry.
        auditRefusedDay = day;
        break;
      }
      if (run.isSetupProblem) {
        // It read nothing and recorded a failed run; so would each day after it, a line and a run
        // apiece (90 for a quarter), until the setting is fixed.
        setupProblemDay = day;
        break;
      }
    }
  } finally {
    await db.close();
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  // Stopped before its last day: a Ctrl-C during the last day, which that day's end answers, is not.
  const isInterrupted = daysLeft > 0 && setupProblemDay === undefined && auditRefusedDay === undefined;
  const interrupted = isInterrupted
    ? ` Interrupted (${interruption.label})${stoppedDay ? `: ${stoppedDay} was stopped part way and is not done` : ''}; run the same command again to continue.`
    : '';
  const stopped =
    auditRefusedDay !== undefined && daysLeft > 0
      ? ` Stopped at ${auditRefusedDay}: its run's audit entry was refused for want of AUDIT_CHAIN_KEY (above), so the ${daysLeft} day(s) after it were not tried; set it and run the same command again.`
      : setupProblemDay !== undefined && daysLeft > 0
        ? ` Stopped at ${setupProblemDay}: no source can be read as it is set up (above), so the ${daysLeft} day(s) after it were not tried; fix that and run the same command again.`
        : '';
  // The newline ends a terminal's last progress line, on stderr where that line is: on stdout it
  // was an empty line before the result, the first line a script reading stdout got.
  if (isTerminal) process.stderr.write('\n');
  console.log(
    `Backfill ${args.from} .. ${args.to}${isInterrupted ? ' interrupted' : stopped ? ' stopped' : ''}: ${totals.days} day(s) read, ${totals.skippedDays} already done, ${totals.failedDays} failed; ` +
      // Each day is a run that counts its own jobs: a job still running is in every day's window since it
      // started, and keeping every job's key across the days to count it once would hold a quarter's jobs.
      `${totals.seen} jobs summed over the days (a job still running is in each day it spans), ${totals.inserted} new, ${totals.updated} updated, ${totals.skipped} skipped, in ${seconds} s.` +
      interrupted +
      stopped,
  );
  // An interrupted backfill did not do what it was asked: cron and scripts must not take it for done.
  if (isInterrupted) process.exitCode = interruption.exitCode;
  else if (totals.failedDays > 0) process.exitCode = 1;
  exitForMissingKey();
}

/**
 * One run over [high-water mark - INGEST_OVERLAP_SEC, now], recorded as a scheduled run, so that
 * cron can stand in for the server's scheduler: the next run, from either, starts where it ended.
 */
async function runIncremental(
  service: IngestionService,
  force: boolean,
  startUp: StartUp,
  recordRun: (result: RunResult, details: Record<string, unknown>) => Promise<void>,
  timeZone: string,
) {
  const stopping = new AbortController();
  // The same Ctrl-C delivered twice (by the terminal, and by npm to its script) is one: taken for a
  // second, it exited at once and left the run `running`.
  let interruption = INTERRUPTIONS.SIGINT;
  // SIGTERM (systemctl stop, a cron job's timeout) is one more: each of them stops the run at once.
  onDistinctSignals([...INTERRUPT_SIGNALS, STOP_SIGNAL], (signal) => {
    // Until the run is recorded (the database opened, the lock taken) the start-up answers it.
    if (!startUp.isOver) return;
    ignoreLostTerminal(signal);
    if (stopping.signal.aborted) process.exit(interruption.exitCode);
    interruption = INTERRUPTIONS[signal];
    stopping.abort(new Error(interruption.reason));
  });
  const result = await startUp.guard(
    service.runOnce({
      trigger: 'schedule',
      force,
      waitForLockMs: INCREMENTAL_LOCK_WAIT_MS,
      signal: stopping.signal,
      startsRun: () => startUp.end(),
    }),
  );
  // A run, or one refused because another held the lock; not one stopped before it started.
  if (result.status === 'finished' || result.reason === 'locked') await recordRun(result, { trigger: 'schedule' });
  // One result line on stdout, whatever the outcome, and an exit code that tells them apart: cron's
  // log, or a script reading stdout (`>result 2>>log`), gets the line of a failed run as of a
  // successful one. The details of a failure (each source's log line) are JSON lines on stderr.
  if (result.status === 'skipped') {
    console.log(
      `No ingestion run: another run (a server's or a backfill) held the lock for ${INCREMENTAL_LOCK_WAIT_MS / 1000} s, so nothing was read; ` +
        'the next run reads from where the last completed one ended, so nothing is lost.',
    );
    process.exitCode = 75; // EX_TEMPFAIL: cron's next run retries
    return;
  }
  const { run } = result;
  // In APP_TZ, as pages and the run's notes give times (the JSON log line on stderr keeps UTC ISO).
  const tail = `; window ${formatZonedTimeSeconds(run.window.start, timeZone)} .. ${formatZonedTimeSeconds(run.window.end, timeZone)}, in ${(run.durationMs / 1000).toFixed(1)} s.`;
  if (run.outcome === 'failed' && stopping.signal.aborted) {
    console.log(
      `Ingestion run #${run.runId} interrupted (${interruption.label}): recorded failed, so the next run reads its window again${tail}`,
    );
    process.exitCode = interruption.exitCode;
    return;
  }
  if (run.outcome === 'failed') {
    console.log(`Ingestion run #${run.runId} failed: ${run.error}${tail}`);
    process.exitCode = 1;
    return;
  }
  console.log(
    `Ingestion run #${run.runId} ${run.outcome}${viaSourceText(run)}: ${run.seen} jobs, ${run.inserted} new, ${run.updated} updated, ${run.skipped} skipped` +
      `${run.warned > 0 ? `, ${run.warned} with End before Start` : ''}${unknownStatesText(run)}${tail}`,
  );
  // Which states, as the run's notes on /admin/ingestion say it.
  if (run.sourceNotes.unknownStates) console.log(`  ${run.sourceNotes.unknownStates}`);
  for (const note of runNotes(run)) console.log(`  ${note}`);
}

/** Notes this command says otherwise or not at all: the file's fingerprint (the page hides it too), the states' (their own line). */
const NOTES_NOT_LISTED = new Set(['fileFingerprint', 'unknownStates']);

/**
 * What a run that did not fail says that needs the admin besides its states, each `key: note` as
 * /admin/ingestion shows it: why the sources before the one that answered did not, and which fallback
 * after it could not run (`npm run ingest` is how an admin tries the Slurm settings: with slurmrestd's
 * token refused and sacct answering it printed "success via sacct" alone), an account that may read only
 * some users' jobs, and the rest (jobs skipped, kept as billed, read with
 * their times moved by a zone difference, a window read short). Only the sources' and `access` were
 * said, so a run whose every job moved an hour (APP_TZ changed) printed "1 updated" alone. A source
 * that answered, or a fallback found ready, says nothing the result line does not.
 */
function runNotes(run: RunSummary): string[] {
  return Object.entries(run.sourceNotes).flatMap(([key, note]) => {
    if (NOTES_NOT_LISTED.has(key)) return [];
    if (SOURCE_NAMES.includes(key)) return SOURCE_PROBLEM.test(note) ? [`${key}: ${note}`] : [];
    return [`${key}: ${note}`];
  });
}

/** The sources, in the order a run tries them (ingestion.factory.ts). */
const SOURCE_NAMES = ['slurmrestd', 'sacct', 'file'];
/** A source's note that says it failed, or that it would fail when it is needed (a fallback not tried). */
const SOURCE_PROBLEM = /^(?:failed: |configuration error: |not tried \(.*\), but would fail: )/;

/** The source that answered; a run no source answered (a FALLBACK_CSV that cannot be read) said 'via -'. */
function viaSourceText(run: RunSummary): string {
  return run.source ? ` via ${run.source}` : '';
}

/** Jobs stored in a state the app does not know stay unbilled: the run's line says how many. */
function unknownStatesText(run: RunSummary): string {
  return run.unknownStateJobs > 0 ? `, ${run.unknownStateJobs} in a state it does not know (unbilled)` : '';
}

/**
 * A database failure the run met, in the words of the run's record (`the database refused a query of
 * the run (SQLSTATE 23514): …`): PostgreSQL's message alone read like any error of the tool, not a
 * refusal that fails every run until the query or the data is fixed. A lost connection and a database
 * behind the code keep runTool's own words, which say what to do.
 */
function inRunWords(error: unknown): unknown {
  if (
    !(error instanceof JobStoreError) ||
    isDatabaseUnavailable(error) ||
    isMissingColumn(error) ||
    isMissingTable(error)
  ) {
    return error;
  }
  return new Error(`${describeStoreFailure(error)}: ${lastLineOf(error)}`, { cause: error });
}

/** Runs `npm run ingest` once the entry (ingest.cli.ts) watches the signals of its start-up. */
export function runIngestCommand(startUp: StartUp) {
  runTool(() =>
    main(startUp).catch((error: unknown) => {
      throw inRunWords(error);
    }),
  );
}
