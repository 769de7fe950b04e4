import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { createApp } from './app.js';
import { type PreparedDatabase, prepareDatabase } from './bootstrap.js';
import { type AppConfig, CONFIG_ERROR_EXIT_CODE, ConfigError, loadConfig } from './config/config.js';
import { openDatabase } from './db/database.js';
import { isEmbeddedDatabaseUrl } from './db/embedded-postgres.js';
import { StoppedDuringStartup } from './db/migrations.js';
import { StoppedWhileWaiting, waitForDatabase } from './db/wait-for-database.js';
import {
  checkCanListen,
  closeConnectionsAfterAnswers,
  closeGracefully,
  createDrain,
  ListenError,
  listen,
} from './http/lifecycle.js';
import { warnAboutPlainHttp } from './http/plain-http.js';
import {
  createAuditChainMonitor,
  createAuditChainVerifier,
  reportChainVerdictTo,
} from './modules/audit/audit-chain.monitor.js';
import { createThrottlePruner } from './modules/auth/auth-throttle.pruner.js';
import { createSessionPruner } from './modules/auth/session.pruner.js';
import { warnIfDemoSecretsExposed } from './modules/demo/demo-exposure.js';
import { buildIngestionService } from './modules/ingestion/ingestion.factory.js';
import { startIngestionScheduler } from './modules/ingestion/ingestion.scheduler.js';
import { warnAboutUnusableSourcePaths } from './modules/ingestion/source-paths.js';
import { createMetrics } from './modules/metrics/metrics.js';
import { joinClusterMetrics, serveClusterMetrics } from './modules/metrics/metrics-cluster.js';
import { warnIfMetricsPublic } from './modules/metrics/metrics-exposure.js';
import { interruptAbandonedMonthEndRuns } from './modules/receipts/abandoned-month-end-runs.js';
import { closePasswordHashing, configurePasswordHashing } from './modules/users/password.js';
import { createBackgroundWork } from './shared/background-work.js';
import { onDistinctSignals } from './shared/distinct-signals.js';
import { DATABASE_READ_ONLY, isDatabaseUnavailable, isReadOnlyDatabase, isRefusedByServer } from './shared/errors.js';
import { createLogger, flushLogs, type Logger } from './shared/logger.js';
import { PROJECT_ROOT } from './shared/paths.js';
import { onPeriodicTasksAssigned, periodicTaskAssigner } from './shared/periodic-task.js';
import { settlesWithin } from './shared/settles-within.js';
import { warnIfBuildIsStale } from './shared/stale-build.js';
import { readTransparentHugePagesMode, warnIfTransparentHugePagesOff } from './shared/transparent-huge-pages.js';
import { formatStartupBanner, startupLogLine } from './startup-banner.js';

function readConfigOrExit(): AppConfig {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(CONFIG_ERROR_EXIT_CODE);
    }
    throw error;
  }
}

/**
 * How long a shutdown waits for the pool to close, after SHUTDOWN_TIMEOUT_MS, before it destroys
 * the connections left: a silent database kept a query in flight (and idle connections' goodbyes)
 * for the whole DB_QUERY_TIMEOUT_MS, 30 s by default, and the orchestrator's grace period (30 s
 * in Kubernetes and the compose file) ended with a SIGKILL mid-shutdown.
 */
const POOL_CLOSE_GRACE_MS = 3_000;

/** How a running worker is stopped: `stop` drains and closes; `hurry` ends the drain's delay now. */
interface WorkerShutdown {
  stop: () => Promise<void>;
  hurry: () => void;
  /** The port it listens on: PORT, or with PORT=0 the one the system gave. */
  port: number;
}

/** One worker: opens its pool, serves, and on SIGTERM/SIGINT drains and closes. */
async function runWorker(config: AppConfig, databaseUrl: string, logger: Logger): Promise<WorkerShutdown> {
  // The workers share the cores: together they hash on as many threads as there are cores.
  await configurePasswordHashing({
    threads: Math.ceil(availableParallelism() / config.webConcurrency),
    niceness: config.auth.passwordHashNiceness,
  });
  const db = openDatabase(databaseUrl, {
    poolMax: config.dbPoolMax,
    queryTimeoutMs: config.dbQueryTimeoutMs,
    connectTimeoutMs: config.dbConnectTimeoutMs,
    logger,
  });
  const metrics = createMetrics({
    hasProcessMetrics: config.metrics.hasProcessMetrics,
    // The number the logs' `worker` field gives, so a worker's process series and its lines match.
    processLabels: cluster.isWorker ? { worker: String(cluster.worker?.id) } : undefined,
  });
  // A worker's own registry holds only the requests it served; the primary sums them.
  const scrapeMetrics = cluster.isWorker ? joinClusterMetrics(metrics.registry) : undefined;
  const auditChainMonitor = createAuditChainMonitor({
    db: db.prisma,
    onVerdict: reportChainVerdictTo(metrics),
    logger,
  });
  const backgroundWork = createBackgroundWork();
  const drain = createDrain();
  const app = createApp({
    config,
    db,
    logger,
    metrics,
    scrapeMetrics,
    auditChainMonitor,
    backgroundWork,
    isDraining: drain.isDraining,
  });
  const now = () => new Date();
  const pruners = [
    createThrottlePruner({
      pool: db.pool,
      lockout: config.auth,
      metrics,
      logger,
      now,
      intervalSec: config.auth.pruneIntervalSec,
    }),
    createSessionPruner({ pool: db.pool, logger, now, intervalSec: config.auth.sessionPruneIntervalSec }),
  ];
  const chainVerifier = createAuditChainVerifier({
    monitor: auditChainMonitor,
    logger,
    intervalSec: config.audit.verifyIntervalSec,
  });
  const periodicTasks = [...pruners, chainVerifier];
  const startPeriodicTasks = () => {
    for (const task of periodicTasks) task.start();
    // Not a whole interval after a restart: a chain broken before it is reported again at once.
    void chainVerifier.runOnce();
    // A month-end run left running by a process that died reads interrupted from now, not only
    // once someone opens its page.
    void interruptAbandonedMonthEndRuns({ db, logger, now });
  };
  // One process per instance runs them: this one when it is the only one (once it listens), else
  // the worker the primary names (once that one listens).
  if (cluster.isWorker) onPeriodicTasksAssigned(startPeriodicTasks);
  let server: Awaited<ReturnType<typeof listen>>;
  try {
    server = await listen(app, config.port, config.host, config.http);
  } catch (error) {
    // Nothing is served (the port was taken after the start-up checked it, say): the pool and the
    // hashing threads close before the caller stops the embedded PostgreSQL under them.
    await Promise.all([db.close(), closePasswordHashing()]);
    throw error;
  }
  if (!cluster.isWorker) startPeriodicTasks();
  // Every worker schedules; the advisory lock lets one run at a time through, and a run that
  // finds another finished this interval does nothing.
  const stopIngestion = config.ingestion.isEnabled
    ? startIngestionScheduler({
        service: buildIngestionService({ config, db, logger, metrics }),
        intervalSec: config.ingestion.intervalSec,
        logger,
        isDraining: drain.isDraining,
      })
    : async () => undefined;
  const stop = async () => {
    // /readyz says 503 from now while everything is still served, so the load balancer or the
    // Kubernetes Service stops sending requests before the server stops taking them.
    const draining = drain.begin(config.shutdownDrainDelayMs);
    if (config.shutdownDrainDelayMs > 0) {
      // Keep-alive clients reconnect for their next request, through the load balancer as it is now.
      closeConnectionsAfterAnswers(server);
      logger.info(
        { drainDelayMs: config.shutdownDrainDelayMs, timeoutMs: config.shutdownTimeoutMs },
        'draining: /readyz answers 503 and requests are served until the delay is over, then the graceful close',
      );
    }
    await draining;
    db.markStopping();
    const [isClean, isIngestionStopped, abandoned, ...areTasksStopped] = await Promise.all([
      closeGracefully(server, config.shutdownTimeoutMs, logger),
      // A run (or a periodic task) waiting on a database that stopped answering ends only at
      // DB_QUERY_TIMEOUT_MS (30 s): awaited, it held the pool's close, and the process's exit, that
      // long past SHUTDOWN_TIMEOUT_MS. Past it, the pool's close below ends their queries.
      settlesWithin(stopIngestion(), config.shutdownTimeoutMs),
      // A month-end run ends once its users in flight are billed and records itself interrupted.
      // Each user may take up to a receipt's 60 s, longer than an orchestrator waits before it
      // kills the process, leaving the run's row running: past the same timeout, the run is
      // recorded interrupted from what has committed, and its users in flight are cut off.
      backgroundWork.stop(config.shutdownTimeoutMs),
      ...periodicTasks.map((task) => settlesWithin(task.stop(), config.shutdownTimeoutMs)),
    ]);
    if (!isClean) logger.warn({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out; open connections were cut');
    if (!isIngestionStopped || areTasksStopped.includes(false)) {
      logger.warn(
        { timeoutMs: config.shutdownTimeoutMs },
        `shutdown timed out waiting for ${isIngestionStopped ? 'a periodic task' : 'the ingestion run'} on the database; closing the pool ends its queries (an ingestion run left running is marked failed by the next run)`,
      );
    }
    if (abandoned.length > 0) {
      // Their uncommitted transactions roll back as their connections close, so nothing is half-applied.
      const closed = db.closeConnectionsInUse();
      logger.warn(
        { timeoutMs: config.shutdownTimeoutMs, abandoned, closedConnections: closed },
        `shutdown timed out waiting for ${abandoned.join(', ')}; recorded as interrupted, its work in flight rolled back`,
      );
    }
    await Promise.all([db.close({ graceMs: POOL_CLOSE_GRACE_MS }), closePasswordHashing()]);
  };
  const address = server.address();
  return { stop, hurry: drain.hurry, port: typeof address === 'object' && address ? address.port : config.port };
}

/**
 * Says the app serves. In production stdout carries only JSON lines for the log pipeline, so the
 * banner's facts are one log line; in development a person reads the banner in their terminal.
 */
function announce(configured: AppConfig, port: number, database: PreparedDatabase, logger: Logger) {
  // The port it listens on: with PORT=0 the system's pick, where the line said ":0".
  const config = { ...configured, port };
  if (config.isProduction) {
    const { fields, message } = startupLogLine(config, database);
    logger.info(fields, message);
  } else {
    console.log(formatStartupBanner(config, database));
  }
}

/** A start that failed after the configuration was read: a JSON line in production, a sentence in development. */
async function reportStartFailure(config: AppConfig, logger: Logger, error: unknown) {
  const message = error instanceof Error ? error.message : String(error);
  // Said as the tools say it: a bare "connect ECONNREFUSED 10.0.0.5:5432" named no setting to check.
  // A demo banner's URL exported in this shell for the tools outlives that demo: its port is gone.
  const demoHint =
    config.databaseUrl !== undefined && isEmbeddedDatabaseUrl(config.databaseUrl)
      ? "; this is the URL of the demo's embedded PostgreSQL of an earlier npm start (its banner's line for another shell), whose port can change from one start to the next: unset DATABASE_URL, and npm start starts the embedded PostgreSQL of its own under DATA_DIR"
      : '';
  const isDatabaseError =
    config.databaseUrl !== undefined && !(error instanceof ListenError) && isDatabaseUnavailable(error);
  const reason = isDatabaseError
    ? isRefusedByServer(error)
      ? `the database server refused DATABASE_URL: ${message}${demoHint}`
      : `the database cannot be reached (DATABASE_URL): ${message}${demoHint}`
    : // A standby (a failover that left DATABASE_URL on the old primary): PostgreSQL's words alone
      // ("cannot execute CREATE TABLE in a read-only transaction") named nothing to change.
      isReadOnlyDatabase(error)
      ? `${DATABASE_READ_ONLY}: ${message}`
      : message;
  if (!config.isProduction) {
    console.error(`HPC Billing failed to start: ${reason}`);
    return;
  }
  logger.fatal({ err: error }, `HPC Billing failed to start: ${reason}`);
  // pino writes asynchronously: an exit now could write this line before the warnings still
  // on their way, or lose it.
  await flushLogs(logger);
}

/**
 * The signals that stop the app. SIGHUP is what a closed terminal or SSH session sends to the app
 * started in it, and what a reload sends (`docker kill -s HUP`, `kill -HUP`): without a handler it
 * took Node's default action, and the process died on the spot, requests in flight cut, with no log
 * line. It stops as SIGTERM does; a supervisor that restarts the app makes it a reload.
 */
const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/**
 * Runs `stop` once on the first SIGTERM, SIGINT or SIGHUP, then exits. A second signal calls `hurry`:
 * whoever sends it (an operator's second Ctrl-C, a supervisor) does not want to wait out the
 * drain delay; the graceful close still runs, within SHUTDOWN_TIMEOUT_MS. The first one delivered
 * again (onDistinctSignals) is no second signal. `begin` starts the same stop for a reason other
 * than a signal to this process (a cluster worker told by its primary); while stopping, it does nothing.
 */
function onShutdownSignal(logger: Logger, stop: (signal: string) => Promise<void>, hurry: () => void) {
  let isStopping = false;
  let hasHadSignal = false;
  const begin = (signal: string) => {
    if (isStopping) return;
    isStopping = true;
    const startedAt = Date.now();
    logger.info({ signal }, 'shutting down');
    stop(signal)
      .then(async () => {
        // The last line says the stop finished cleanly, not only that it began: an operator reading
        // a log that ends at "shutting down" cannot tell a clean stop from a process killed mid-way.
        logger.info({ signal, durationMs: Date.now() - startedAt }, 'stopped');
        await flushLogs(logger);
        process.exit(0);
      })
      .catch((error) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      });
  };
  onDistinctSignals(STOP_SIGNALS, (signal) => {
    // Second by its own signals, not by the stop: a worker's first one can come after its primary's
    // word to stop (the same Ctrl-C reached both, and the message was read first).
    if (!hasHadSignal) {
      hasHadSignal = true;
      begin(signal);
      return;
    }
    logger.info({ signal }, 'second signal: ending the drain delay now');
    hurry();
  });
  return { begin };
}

/**
 * What a cluster primary tells its workers when a signal stops it: `stop` as their own first
 * signal would (`signal` is the primary's, for their log lines), `hurry` as a second one would.
 * By message, not by passing the signal on: a terminal's Ctrl-C reaches the workers too, and the
 * primary's SIGTERM that followed it was a second signal to them whenever it came more than
 * REPEATED_SIGNAL_MS later, as on a loaded machine, which ended their drain delay on the first Ctrl-C.
 */
type PrimaryOrder = { type: 'hpc:stop'; signal: string } | { type: 'hpc:hurry' };

function isPrimaryOrder(message: unknown): message is PrimaryOrder {
  const type = (message as { type?: unknown } | null)?.type;
  return type === 'hpc:stop' || type === 'hpc:hurry';
}

async function main() {
  const config = readConfigOrExit();
  // With WEB_CONCURRENCY > 1 each worker logs for itself: one database outage is a `not ready`
  // line from every worker (each checks its own connections), which read as that many outages, or
  // instances, with only a pid to tell them apart. The worker's number says whose line it is.
  const logger = cluster.isWorker
    ? createLogger(config.logLevel).child({ worker: cluster.worker?.id })
    : createLogger(config.logLevel);
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled promise rejection'));
  try {
    await start(config, logger);
  } catch (error) {
    if (error instanceof StoppedDuringStartup) {
      // Asked to stop, which it did: not a failed start, so 0 as after a stop while serving.
      logger.info({ signal: error.signal }, 'stopped during start-up: nothing was served');
      await flushLogs(logger);
      process.exit(0);
    }
    if (error instanceof StoppedWhileWaiting) {
      logger.info({ signal: error.signal }, 'stopped while waiting for the database');
      await flushLogs(logger);
      process.exit(0);
    }
    if (error instanceof ConfigError) {
      // A setting the database shows to be missing (AUDIT_CHAIN_KEY on a sealed log): said as a bad
      // setting is, the tools' words and exit code, after the warnings already on their way.
      await flushLogs(logger);
      console.error(error.message);
      process.exit(CONFIG_ERROR_EXIT_CODE);
    }
    await reportStartFailure(config, logger, error);
    process.exit(1);
  }
}

/**
 * Waits for a configured database that cannot be reached yet (a host's reboot, a unit without a
 * health check bring the app up before PostgreSQL) for DB_START_WAIT_SEC, before anything else
 * connects to it. SIGTERM or SIGINT meanwhile ends the wait and the process (StoppedWhileWaiting):
 * without a handler the signal took Node's default action, and none at all where the app is PID 1
 * (Docker runs it so), so `docker stop` waited out its grace period.
 */
async function waitForConfiguredDatabase(config: AppConfig, logger: Logger): Promise<void> {
  // An earlier demo's URL (its banner's line, exported for the tools) names a port that went with
  // that demo: no wait brings it back, so the start fails at once saying so (reportStartFailure).
  if (!config.databaseUrl || isEmbeddedDatabaseUrl(config.databaseUrl)) return;
  const stopping = new AbortController();
  const stop = (signal: NodeJS.Signals) => stopping.abort(signal);
  const signals = STOP_SIGNALS;
  for (const signal of signals) process.on(signal, stop);
  try {
    await waitForDatabase(config.databaseUrl, {
      waitMs: config.dbStartWaitSec * 1000,
      connectTimeoutMs: config.dbConnectTimeoutMs,
      logger,
      stopSignal: stopping.signal,
    });
  } finally {
    for (const signal of signals) process.off(signal, stop);
  }
}

/**
 * prepareDatabase, stopped by SIGTERM or SIGINT: without a handler the signal took Node's default
 * action, and the process died mid-migration or mid-seed with no log line (none at all as PID 1).
 * The migration in progress, one transaction, commits or rolls back whole, the demo seed stops
 * between two of its steps (prepareDatabase), the connections and the embedded PostgreSQL are
 * closed, and StoppedDuringStartup ends the start (main exits 0).
 */
async function prepareWithStopSignals(config: AppConfig, logger: Logger): Promise<PreparedDatabase> {
  const stopping = new AbortController();
  const stop = (signal: NodeJS.Signals) => {
    // Ctrl-C reaches the app twice (npm passes it on): one line.
    if (stopping.signal.aborted) return;
    logger.info(
      { signal },
      'asked to stop during start-up: the migration or demo seed in progress finishes or rolls back, then the process exits without serving',
    );
    stopping.abort(signal);
  };
  const signals = STOP_SIGNALS;
  for (const signal of signals) process.on(signal, stop);
  try {
    return await prepareDatabase(config, logger, stopping.signal);
  } finally {
    for (const signal of signals) process.off(signal, stop);
  }
}

/**
 * The worker `starting` resolves to, for the shutdown signal's handlers, or, when the start fails,
 * a promise that never settles: the failure is the start-up's to report (main: "HPC Billing failed
 * to start", exit 1), and a signal meanwhile has nothing left to stop. Chained on `starting`
 * itself, one failed listen (the port taken since checkCanListen) also rejected the stop, logged as
 * "shutdown failed" beside the start's own line, and a second signal's hurry, whose promise nothing
 * handled: "unhandled promise rejection".
 */
function startedOrNever(starting: Promise<WorkerShutdown>): Promise<WorkerShutdown> {
  return starting.catch(() => new Promise<never>(() => undefined));
}

async function start(config: AppConfig, logger: Logger) {
  if (cluster.isWorker) {
    // The primary prepared the database and passed its URL in DATABASE_URL.
    const starting = runWorker(config, config.databaseUrl as string, logger);
    const started = startedOrNever(starting);
    // Handlers before listening, as for one worker below: the primary says "is listening" once every
    // worker has listened, and a Ctrl-C to the process group can then reach a worker that has not
    // yet set them, which then took Node's default action: it died instead of draining.
    const hurry = () => void started.then((worker) => worker.hurry());
    const shutdown = onShutdownSignal(logger, async () => (await started).stop(), hurry);
    // Set with the signals' handlers: the primary sends its orders only to a worker that has listened.
    process.on('message', (message: unknown) => {
      if (!isPrimaryOrder(message)) return;
      // A stop under way already (this worker's own Ctrl-C) is the same stop, however late the word comes.
      if (message.type === 'hpc:stop') shutdown.begin(message.signal);
      else hurry();
    });
    const worker = await starting;
    // Node's cluster ends a worker whose primary is gone at once, process.exit(0) in its own
    // 'disconnect' listener, unless the disconnect was the worker's own: the handler below never ran,
    // and a kill -9 of the primary cut every worker's requests in flight with no answer and left a Run
    // now ingestion `running`. Taken as expected, the worker stays to drain as on SIGTERM. Only once
    // that handler is in place: a worker kept while it starts would have nothing to end it.
    process.prependListener('disconnect', () => {
      if (cluster.worker) cluster.worker.exitedAfterDisconnect = true;
    });
    // The primary is gone, and with it the listening socket: nothing new can come to drain for.
    process.on('disconnect', () => {
      worker.hurry();
      void worker
        .stop()
        .then(() => flushLogs(logger))
        .then(() => process.exit(0));
    });
    return;
  }

  // Before the database: a port that is taken fails the start in a moment, with nothing written.
  await checkCanListen(config.port, config.host);
  warnIfTransparentHugePagesOff(logger, await readTransparentHugePagesMode());
  warnIfBuildIsStale(logger, import.meta.filename, path.join(PROJECT_ROOT, 'src'));
  warnIfMetricsPublic(logger, config);
  warnAboutPlainHttp(logger, config);
  await waitForConfiguredDatabase(config, logger);
  const database = await prepareWithStopSignals(config, logger);
  warnIfDemoSecretsExposed(logger, config, database.demo);
  // After the demo's seed, which writes the demo's file; once per instance, not once per worker.
  await warnAboutUnusableSourcePaths(logger, config);
  if (config.webConcurrency === 1) {
    const starting = runWorker(config, database.databaseUrl, logger);
    const started = startedOrNever(starting);
    // Handlers before runWorker sets up hashing, opens the pool and listens, as in a cluster worker
    // above: the start-up's own went with prepareWithStopSignals, and a SIGTERM in between took
    // Node's default action, an exit by signal with no log line and the embedded PostgreSQL left
    // running. Whoever waits for "is listening" (a supervisor, a test) may also send one at once.
    let isStopping = false;
    onShutdownSignal(
      logger,
      async () => {
        isStopping = true;
        try {
          await (await started).stop();
        } finally {
          await database.stop();
        }
      },
      () => void started.then((worker) => worker.hurry()),
    );
    let port: number;
    try {
      ({ port } = await starting);
    } catch (error) {
      // It cannot serve (the port taken since checkCanListen, as by a second start at the same
      // moment): the embedded PostgreSQL is stopped, and its shutdown waited for, before main
      // reports the failure and exits. It was left to the 'exit' hook's SIGINT, so the process was
      // gone while PostgreSQL still shut down, and DATA_DIR still named the dead process its owner.
      await database.stop();
      throw error;
    }
    // Stopping already: "is listening" would be the line after "shutting down".
    if (!isStopping) announce(config, port, database, logger);
    return;
  }

  let isStopping = false;
  serveClusterMetrics(logger);
  const fork = () => cluster.fork({ DATABASE_URL: database.databaseUrl });
  for (let index = 0; index < config.webConcurrency; index++) fork();
  const hasListened = new Set<number>();
  // Once every worker has listened: from then on a worker that dies is replaced, whatever it did.
  let hasStarted = false;
  const assignPruners = periodicTaskAssigner();
  cluster.on('listening', (worker, address) => {
    hasListened.add(worker.id);
    assignPruners(worker);
    const listening = Object.values(cluster.workers ?? {}).filter(
      (live) => live !== undefined && !live.isDead() && hasListened.has(live.id),
    ).length;
    // Stopping already (a worker failed to start): "is listening" would be the line after it.
    if (hasStarted || isStopping || listening < config.webConcurrency) return;
    hasStarted = true;
    // The workers share one port; with PORT=0 the one the system gave the first of them.
    announce(config, address.port, database, logger);
  });
  // A worker that has listened has its handlers and takes the order by message (PrimaryOrder); one
  // still starting may not have them yet, and gets SIGTERM, which then ends it at once.
  const tell = (worker: Worker, order: PrimaryOrder) => {
    if (hasListened.has(worker.id) && worker.isConnected()) worker.send(order);
    else worker.process.kill('SIGTERM');
  };
  const stopWorkers = async (signal: string) => {
    const workers = Object.values(cluster.workers ?? {}).filter((worker) => worker !== undefined);
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((resolve) => {
            if (worker.isDead()) return resolve();
            worker.once('exit', () => resolve());
            tell(worker, { type: 'hpc:stop', signal });
          }),
      ),
    );
  };
  cluster.on('exit', (worker, code, signal) => {
    if (isStopping) return;
    if (!hasStarted && !hasListened.has(worker.id)) {
      // A worker that fails while the instance starts (the port taken, a bad HOST) fails the same
      // way again: starting another for ever would keep a process up that serves nothing. One that
      // had listened and died while another still started (the OOM killer, a kill -9) is replaced
      // below: it used to stop the instance, saying it had died "before it listened".
      isStopping = true;
      const failure = new Error(
        `a worker exited (${signal ? `signal ${signal}` : `code ${code}`}) before it listened; its error is logged above`,
      );
      void (async () => {
        // What they got before the orders went by message, and so log.
        await stopWorkers('SIGTERM');
        await reportStartFailure(config, logger, failure);
        await database.stop();
        process.exit(1);
      })();
      return;
    }
    // `worker` is its number, the `worker` of its own lines (its pid alone matched none of them),
    // and `replacement` the number of the one started in its place.
    const replacement = fork();
    logger.error(
      { worker: worker.id, workerPid: worker.process.pid, code, signal, replacement: replacement.id },
      'worker died; starting another',
    );
  });
  onShutdownSignal(
    logger,
    async (signal) => {
      isStopping = true;
      await stopWorkers(signal);
      await database.stop();
    },
    // The workers drain; the primary's second signal is theirs, which ends their delay.
    () => {
      for (const worker of Object.values(cluster.workers ?? {})) {
        if (worker && !worker.isDead()) tell(worker, { type: 'hpc:hurry' });
      }
    },
  );
}

// Only what fails before the logger exists (reading the configuration) reaches this.
main().catch((error) => {
  console.error('HPC Billing failed to start:', error instanceof Error ? error.message : error);
  process.exit(1);
});
