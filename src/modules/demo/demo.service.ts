import { access, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError } from '../../config/config.js';
import type { Database, Db } from '../../db/database.js';
import { describeDemoFileInUse } from '../../db/embedded-postgres.js';
import { throwIfStoppedDuringStartup } from '../../db/migrations.js';
import { startOfLocalDay } from '../../shared/local-date.js';
import type { Logger } from '../../shared/logger.js';
import { createIngestionService, type RunSummary } from '../ingestion/ingestion.service.js';
import { createSacctFileSource } from '../ingestion/sacct-file.source.js';
import { createMetrics } from '../metrics/metrics.js';
import { hashPassword } from '../users/password.js';
import * as demoRepository from './demo.repository.js';
import { DEMO_CLUSTER, DEMO_RESEARCHERS, demoSacctFilePath, generateDemoJobs, renderSacctFile } from './demo-jobs.js';

export { demoSacctFilePath };

export const DEMO_LOGINS = [
  { username: 'admin', password: 'admin', role: 'admin' as const },
  { username: 'alice', password: 'alice', role: 'user' as const },
  { username: 'bob', password: 'bob', role: 'user' as const },
];

/** The three pricing tiers of the demo: university members (default), government, private. */
export const DEMO_TIERS: demoRepository.DemoTier[] = [
  { name: 'mu', description: 'University members', isDefault: true, rates: { cpu: '0.50', gpu: '12.00', mem: '0.05' } },
  {
    name: 'gov',
    description: 'Government agencies',
    isDefault: false,
    rates: { cpu: '0.80', gpu: '18.00', mem: '0.08' },
  },
  { name: 'private', description: 'Companies', isDefault: false, rates: { cpu: '1.50', gpu: '35.00', mem: '0.15' } },
];

export const DEMO_JOB_COUNT = 3000;

export interface DemoSeedResult {
  isSeeded: boolean;
  sacctFile?: string;
  jobCount?: number;
  /**
   * Not seeded: whether any demo login is an account. A database that had users of its own (a
   * DATABASE_URL of a real system, started without DEMO_SEED=0) is not the demo, and the banner
   * must not offer admin/admin for it.
   */
  hasDemoLogins?: boolean;
  /**
   * Not seeded now: an earlier seed was stopped (or killed) while it ingested the demo's jobs. This
   * one read them from `sacctFile` (`jobCount`), or found that file gone (`isFileMissing`: another
   * DATA_DIR), and the demo keeps only the jobs the stopped seed wrote.
   */
  unfinishedSeed?: { sacctFile: string; jobCount?: number; isFileMissing: boolean };
}

/**
 * The demo's jobs are written this many at a time, each batch one transaction: a start told to stop
 * while it ingests them stops between two of them (the ingestion's 2,000 made the demo's 3,000 jobs
 * two batches, both in flight at once, so there was no "between").
 */
const DEMO_BATCH_SIZE = 500;

/**
 * The connections a seed's pool needs: its ingest holds the ingestion lock on one and writes two
 * batches at once on two more. With two, the second batch waited for a connection, and failed the
 * seed ("timeout exceeded when trying to connect") once the first took longer than
 * DB_CONNECT_TIMEOUT_MS to write, as on a machine busy with something else.
 */
export const DEMO_SEED_POOL_MAX = 3;

/**
 * Fills an empty database with the demo: three tiers, the demo logins and a few dozen
 * researchers (password = username), and a few thousand jobs written as an sacct file
 * and ingested through the file source, as a real cluster's export would be.
 * Does nothing when any user exists, so a second start keeps its data, unless the seed that wrote
 * them was stopped before it ingested every job: then the rest are ingested now (unfinishedSeed).
 */
export async function seedDemoIfEmpty(
  database: Database,
  options: {
    dataDir: string;
    currency: string;
    timeZone: string;
    now?: Date;
    logger: Logger;
    /** Called before the sacct file is written, and only when the database is to be seeded: throws to refuse. */
    beforeWritingSacctFile?: (sacctFile: string) => Promise<void>;
    /**
     * Aborted (the start or `npm run db:seed` told to stop): StoppedDuringStartup is thrown before the
     * users and tiers are written, a wait for another seeder cancelled. Once they are, the demo's
     * jobs are ingested all the same, unless `stopsJobIngest`.
     */
    stopSignal?: AbortSignal;
    /**
     * The start's: a stop ends the ingest of the demo's jobs too, between two of their batches (each
     * one transaction), and the next seed ingests the rest. `npm run db:seed` finishes them (a second
     * signal ends it at once).
     */
    stopsJobIngest?: boolean;
    /** Told once the users and tiers are committed (or found, of a stopped seed), before the jobs are ingested. */
    onUsersSeeded?: () => void;
  },
): Promise<DemoSeedResult> {
  const db = database.prisma;
  const { stopSignal } = options;
  throwIfStoppedDuringStartup(stopSignal);
  if ((await demoRepository.countUsers(db)) > 0) {
    return (await demoRepository.isDemoSeedUnfinished(db)) ? finishStoppedSeed(database, options) : notSeeded(db);
  }
  const now = options.now ?? new Date();
  const jobs = generateDemoJobs({ count: DEMO_JOB_COUNT, now, days: 90 });
  const researchers = DEMO_RESEARCHERS.filter((name) => !DEMO_LOGINS.some((login) => login.username === name));
  const users: demoRepository.DemoUser[] = [];
  // Hashing every demo password takes seconds: a stop need not wait for the rest.
  for (const login of DEMO_LOGINS) {
    throwIfStoppedDuringStartup(stopSignal);
    users.push({ username: login.username, passwordHash: await hashPassword(login.password), role: login.role });
  }
  for (const username of researchers) {
    throwIfStoppedDuringStartup(stopSignal);
    users.push({ username, passwordHash: await hashPassword(username), role: 'user' });
  }

  const sacctFile = demoSacctFilePath(options.dataDir);
  await options.beforeWritingSacctFile?.(sacctFile);
  throwIfStoppedDuringStartup(stopSignal);
  await mkdir(path.dirname(sacctFile), { recursive: true });
  await writeFile(sacctFile, renderSacctFile(jobs, options.timeZone));

  const result = await demoRepository.withEmptyDatabase(
    db,
    async (tx) => {
      // Midnight where the cluster is: at UTC's, a demo west of Greenwich showed its rates "in force since 2019-12-31".
      const ratesFrom = startOfLocalDay('2020-01-01', options.timeZone);
      await demoRepository.insertTiers(tx, DEMO_TIERS, options.currency, ratesFrom);
      await demoRepository.insertUsers(tx, users);
      await demoRepository.insertTierOverride(tx, 'bob', 'gov');
      return { isSeeded: true, sacctFile, jobCount: jobs.length };
    },
    stopSignal,
  );
  if (!result) return notSeeded(db);
  options.onUsersSeeded?.();
  const run = (await ingestDemoFile(database, sacctFile, now, options)) as RunSummary;
  options.logger.info({ users: users.length, jobs: run.seen, runId: run.runId, sacctFile }, 'demo data seeded');
  return { ...result, jobCount: run.seen };
}

/**
 * seedDemoIfEmpty's beforeWritingSacctFile for a configured database: refuses, as a setting to fix
 * (exit 78), to replace the Slurm file of a demo running in `dataDir` (describeDemoFileInUse).
 */
export const refuseRunningDemosFile = (dataDir: string) => async (sacctFile: string) => {
  const problem = await describeDemoFileInUse(dataDir, sacctFile);
  if (problem) throw new ConfigError([problem]);
};

async function notSeeded(db: Db): Promise<DemoSeedResult> {
  const demoLogins = DEMO_LOGINS.map((login) => login.username);
  return { isSeeded: false, hasDemoLogins: (await demoRepository.countUsersNamed(db, demoLogins)) > 0 };
}

/**
 * The demo's users and tiers are there, and a stopped seed wrote only some of its jobs: a demo whose
 * users had no jobs, or a few, and that no later seed filled, as a database with users is not seeded.
 * The rest are read from the same sacct file; the jobs already written are read as unchanged.
 */
async function finishStoppedSeed(
  database: Database,
  options: {
    dataDir: string;
    timeZone: string;
    now?: Date;
    logger: Logger;
    stopSignal?: AbortSignal;
    stopsJobIngest?: boolean;
    onUsersSeeded?: () => void;
  },
): Promise<DemoSeedResult> {
  const { logger } = options;
  const sacctFile = demoSacctFilePath(options.dataDir);
  const kept = await notSeeded(database.prisma);
  const isFileMissing = await access(sacctFile).then(
    () => false,
    () => true,
  );
  if (isFileMissing) {
    logger.warn(
      { sacctFile },
      `an earlier demo seed was stopped while it ingested the demo's jobs, and their sacct file ${sacctFile} is not ` +
        "there (another DATA_DIR?): the demo keeps the jobs that seed wrote. Start with that seed's DATA_DIR to ingest the rest",
    );
    return { ...kept, unfinishedSeed: { sacctFile, isFileMissing } };
  }
  logger.info({ sacctFile }, "an earlier demo seed was stopped while it ingested the demo's jobs: ingesting them now");
  options.onUsersSeeded?.();
  const run = await ingestDemoFile(database, sacctFile, options.now ?? new Date(), {
    ...options,
    // Two starts at once on one database: the other one's run may have finished them meanwhile.
    isFinished: async () => !(await demoRepository.isDemoSeedUnfinished(database.prisma)),
  });
  if (!run) return kept;
  logger.info({ jobs: run.seen, inserted: run.inserted, runId: run.runId, sacctFile }, 'demo data seeded');
  return { ...kept, unfinishedSeed: { sacctFile, jobCount: run.seen, isFileMissing } };
}

const SEED_LOCK_WAIT_MS = 60_000;

/**
 * Ingests the whole demo file (window: the epoch to now) through the file source; undefined when
 * `isFinished` says another process did meanwhile. With `stopsJobIngest`, a stop ends the run between
 * two batches (recorded failed, saying so) and throws StoppedDuringStartup.
 */
async function ingestDemoFile(
  database: Database,
  sacctFile: string,
  now: Date,
  options: {
    timeZone: string;
    logger: Logger;
    stopSignal?: AbortSignal;
    stopsJobIngest?: boolean;
    isFinished?: () => Promise<boolean>;
  },
): Promise<RunSummary | undefined> {
  const stopSignal = options.stopsJobIngest ? options.stopSignal : undefined;
  // The run's error says why it stopped, and what comes of it, on the ingestion page as in the log.
  const runStopping = new AbortController();
  const stopRun = () =>
    runStopping.abort(
      new Error(`${String(stopSignal?.reason)} during the demo's seed; the next start ingests the rest of its jobs`),
    );
  if (stopSignal?.aborted) stopRun();
  else stopSignal?.addEventListener('abort', stopRun, { once: true });
  try {
    return await ingestDemoFileUnlessStopped(database, sacctFile, now, options, stopSignal, runStopping.signal);
  } finally {
    stopSignal?.removeEventListener('abort', stopRun);
  }
}

async function ingestDemoFileUnlessStopped(
  database: Database,
  sacctFile: string,
  now: Date,
  options: { timeZone: string; logger: Logger; isFinished?: () => Promise<boolean> },
  stopSignal: AbortSignal | undefined,
  runSignal: AbortSignal,
): Promise<RunSummary | undefined> {
  const service = createIngestionService({
    db: database,
    sources: [createSacctFileSource({ path: sacctFile, timeZone: options.timeZone, defaultCluster: DEMO_CLUSTER })],
    unconfigured: {},
    logger: options.logger,
    metrics: createMetrics(),
    overlapSec: 0,
    initialLookbackSec: 0,
    timeZone: options.timeZone,
    batchSize: DEMO_BATCH_SIZE,
  });
  const deadline = Date.now() + SEED_LOCK_WAIT_MS;
  for (;;) {
    throwIfStoppedDuringStartup(stopSignal);
    if (await options.isFinished?.()) return undefined;
    // Another replica's scheduled run may hold the ingestion lock for a moment.
    const result = await service.runOnce({
      trigger: 'seed',
      window: { start: new Date(0), end: now },
      signal: stopSignal ? runSignal : undefined,
    });
    if (result.status === 'finished') {
      if (result.run.outcome === 'failed') {
        if (stopSignal?.aborted) {
          options.logger.info(
            { signal: String(stopSignal.reason), runId: result.run.runId, inserted: result.run.inserted },
            "the demo's seed stopped between two batches of its jobs: its users and tiers are seeded, and the jobs " +
              'written so far; the next start ingests the rest',
          );
          throwIfStoppedDuringStartup(stopSignal);
        }
        throw new Error(`the demo jobs could not be ingested: ${result.run.error}`);
      }
      return result.run;
    }
    if (Date.now() > deadline) throw new Error('the demo jobs could not be ingested: the ingestion lock stayed busy');
    await sleep(500, undefined, stopSignal ? { signal: stopSignal } : undefined).catch(() => undefined);
  }
}
