import type { AppConfig } from '../../config/config.js';
import type { Database } from '../../db/database.js';
import type { BackgroundWork } from '../../shared/background-work.js';
import type { Logger } from '../../shared/logger.js';
import { demoSacctFilePath } from '../demo/demo-jobs.js';
import type { Metrics } from '../metrics/metrics.js';
import { createIngestionService, type IngestionService } from './ingestion.service.js';
import type { JobSource } from './job-source.js';
import { createSacctSource } from './sacct.source.js';
import { createSacctFileSource } from './sacct-file.source.js';
import { createSlurmRestSource, readSlurmrestdToken, tokenExpiryOf } from './slurm-rest.source.js';

// Records without a cluster (rare: files without a Cluster column) get this name.
const FALLBACK_CLUSTER_NAME = 'default';

/** The configured sources in order slurmrestd -> sacct -> file, and why the others are absent. */
export function buildSources(
  config: AppConfig,
  hooks: { onTokenRead?: (jwt: string) => void } = {},
): { sources: JobSource[]; unconfigured: Record<string, string> } {
  const ingestion = config.ingestion;
  const defaultCluster = ingestion.cluster ?? FALLBACK_CLUSTER_NAME;
  const sources: JobSource[] = [];
  const unconfigured: Record<string, string> = {};
  if (ingestion.slurmrestd) {
    sources.push(
      createSlurmRestSource({
        ...ingestion.slurmrestd,
        timeZone: config.timeZone,
        defaultCluster,
        cluster: ingestion.cluster,
        maxAttempts: 3,
        retryBaseMs: 500,
        // Warn when SLURMRESTD_USER is no operator: under PrivateData=jobs it reads its own jobs alone.
        checksUserLevel: true,
        onTokenRead: hooks.onTokenRead,
      }),
    );
  } else unconfigured.slurmrestd = 'not configured (SLURMRESTD_URL unset)';
  if (ingestion.sacct) {
    sources.push(
      createSacctSource({
        sacctPath: ingestion.sacct.path,
        timeoutMs: ingestion.sacct.timeoutMs,
        sacctmgrPath: ingestion.sacct.sacctmgrPath,
        inheritedEnvironment: ingestion.sacct.inheritedEnvironment,
        timeZone: config.timeZone,
        cluster: ingestion.cluster,
        defaultCluster,
        // As the file's: sacct -X output (a wrapper adding it) has no step rows and TotalCPU 0.
        cpuBasis: config.pricing.cpuBasis,
      }),
    );
  } else unconfigured.sacct = 'not configured (SACCT_PATH unset)';
  if (ingestion.fallbackCsv) {
    sources.push(
      createSacctFileSource({
        path: ingestion.fallbackCsv,
        timeZone: config.timeZone,
        defaultCluster,
        // Behind slurmrestd or sacct, the file's jobs must be the rows they store for them: a file
        // without JobIDRaw (or Cluster) stored them again, and they were billed twice.
        fallbackFor: sources.length > 0 ? { isClusterSet: ingestion.cluster !== undefined } : undefined,
        // Under the used basis, sacct -X output (no step rows, TotalCPU 0) would bill no CPU time.
        cpuBasis: config.pricing.cpuBasis,
        // A CLI run from another checkout, or without the DATA_DIR the demo started with, looked for
        // it under its own ./.data and named only a FALLBACK_CSV its user had never set.
        missingHint:
          ingestion.fallbackCsv === demoSacctFilePath(config.dataDir)
            ? "with FALLBACK_CSV unset this is the demo's file under DATA_DIR, written when the demo is seeded; " +
              "give DATA_DIR as the app that seeded it has it (the start-up banner's line for another shell sets it), or set FALLBACK_CSV"
            : undefined,
      }),
    );
  } else unconfigured.file = 'not configured (FALLBACK_CSV unset)';
  return { sources, unconfigured };
}

/**
 * Whether this process exports when slurmrestd's JWT expires (slurm_ingest_token_expiry_timestamp_seconds):
 * only where it runs ingestion (INGEST_ENABLED), whose runs re-read SLURMRESTD_TOKEN_FILE. A process that
 * never runs one (`npm run ingest` from cron does) would keep the token it read at start after the file
 * was rotated, and warn of its expiry for nothing.
 */
function watchesTokenExpiry(config: AppConfig): boolean {
  return config.ingestion.isEnabled && config.ingestion.slurmrestd !== undefined;
}

/** The ingestion service wired from configuration. */
export function buildIngestionService(deps: {
  config: AppConfig;
  db: Database;
  logger: Logger;
  metrics: Metrics;
  now?: () => Date;
  /** Where a Run now that outlasts its answer goes on (the app's, which server.ts stops on SIGTERM). */
  backgroundWork?: BackgroundWork;
  /** RUN_NOW_ANSWER_WITHIN_MS, shorter in tests. */
  runNowAnswerWithinMs?: number;
  /** Whether the server drains before its shutdown: Run now is refused then. */
  isDraining?: () => boolean;
}): IngestionService {
  const observeToken = watchesTokenExpiry(deps.config)
    ? (jwt: string) => deps.metrics.observeIngestTokenExpiry(tokenExpiryOf(jwt))
    : undefined;
  const { sources, unconfigured } = buildSources(deps.config, { onTokenRead: observeToken });
  const slurmrestd = deps.config.ingestion.slurmrestd;
  if (observeToken && slurmrestd) {
    // Read once at start, so the gauge is there before the first run; a token that cannot be read leaves
    // none (the run says why). Then each run that re-reads the file sets it again.
    void readSlurmrestdToken(slurmrestd).then(observeToken, () => undefined);
  }
  const service = createIngestionService({
    db: deps.db,
    sources,
    unconfigured,
    logger: deps.logger,
    metrics: deps.metrics,
    cluster: deps.config.ingestion.cluster,
    overlapSec: deps.config.ingestion.overlapSec,
    initialLookbackSec: deps.config.ingestion.lookbackSec,
    timeZone: deps.config.timeZone,
    now: deps.now,
    backgroundWork: deps.backgroundWork,
    runNowAnswerWithinMs: deps.runNowAnswerWithinMs,
    isDraining: deps.isDraining,
  });
  // SLURMRESTD_TOKEN cannot change while the process runs: read once, above.
  if (!observeToken || !slurmrestd?.tokenFile || slurmrestd.token) return service;
  return {
    ...service,
    // A run through slurmrestd re-reads the file; a skipped one (another worker or replica ran this
    // interval, or holds the lock) reads it too, once per tick. With WEB_CONCURRENCY > 1 one worker
    // ran every run and the others kept the expiry they read at start: a file renewed with a token
    // expiring sooner (scontrol token without lifespan=) showed in one worker only, and the maximum
    // the instance exports stayed the old one, so SlurmrestdTokenExpiring never fired.
    async runOnce(input) {
      const result = await service.runOnce(input);
      if (result.status === 'skipped') await readSlurmrestdToken(slurmrestd).then(observeToken, () => undefined);
      return result;
    },
  };
}
