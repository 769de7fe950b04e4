import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
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
}

/**
 * Fills an empty database with the demo: three tiers, the demo logins and a few dozen
 * researchers (password = username), and a few thousand jobs written as an sacct file
 * and ingested through the file source, as a real cluster's export would be.
 * Does nothing when any user exists, so a second start keeps its data.
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
     * Aborted (`npm run db:seed` told to stop): StoppedDuringStartup is thrown before the users and
     * tiers are written, a wait for another seeder cancelled. Once they are, the demo's jobs are
     * ingested all the same: stopped there, the database would have users and no jobs, which a
     * second seed leaves as it is.
     */
    stopSignal?: AbortSignal;
    /** Told once the users and tiers are committed, before the jobs are ingested. */
    onUsersSeeded?: () => void;
  },
): Promise<DemoSeedResult> {
  const db = database.prisma;
  const { stopSignal } = options;
  throwIfStoppedDuringStartup(stopSignal);
  if ((await demoRepository.countUsers(db)) > 0) return notSeeded(db);
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
  const run = await ingestDemoFile(database, sacctFile, now, options);
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

const SEED_LOCK_WAIT_MS = 60_000;

/** Ingests the whole demo file (window: the epoch to now) through the file source. */
async function ingestDemoFile(
  database: Database,
  sacctFile: string,
  now: Date,
  options: { timeZone: string; logger: Logger },
): Promise<RunSummary> {
  const service = createIngestionService({
    db: database,
    sources: [createSacctFileSource({ path: sacctFile, timeZone: options.timeZone, defaultCluster: DEMO_CLUSTER })],
    unconfigured: {},
    logger: options.logger,
    metrics: createMetrics(),
    overlapSec: 0,
    initialLookbackSec: 0,
    timeZone: options.timeZone,
  });
  const deadline = Date.now() + SEED_LOCK_WAIT_MS;
  for (;;) {
    // Another replica's scheduled run may hold the ingestion lock for a moment.
    const result = await service.runOnce({ trigger: 'seed', window: { start: new Date(0), end: now } });
    if (result.status === 'finished') {
      if (result.run.outcome === 'failed') throw new Error(`the demo jobs could not be ingested: ${result.run.error}`);
      return result.run;
    }
    if (Date.now() > deadline) throw new Error('the demo jobs could not be ingested: the ingestion lock stayed busy');
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
