import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/config/config.js';
import { StoppedDuringStartup } from '../../../src/db/migrations.js';
import { DEMO_JOB_COUNT, refuseRunningDemosFile, seedDemoIfEmpty } from '../../../src/modules/demo/demo.service.js';
import { generateDemoJobs } from '../../../src/modules/demo/demo-jobs.js';
import { formatLocalDateTime } from '../../../src/shared/local-date.js';
import { createLogger } from '../../../src/shared/logger.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

let db: TestDatabase;
let dataDir: string;
const NOW = new Date('2026-11-23T12:00:00Z');

beforeAll(async () => {
  db = await createTestDatabase();
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'demo-seed-'));
});
afterAll(async () => {
  await db?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('demo seed through the file source', () => {
  it('ingests the generated sacct file once, with the steps summed, and a second seed does nothing', async () => {
    const options = { dataDir, currency: 'THB', timeZone: 'Asia/Bangkok', now: NOW, logger: createLogger('silent') };
    const result = await seedDemoIfEmpty(db, options);
    expect(result).toMatchObject({ isSeeded: true, jobCount: DEMO_JOB_COUNT });
    expect(await db.prisma.slurmJob.count()).toBe(DEMO_JOB_COUNT);
    const run = await db.prisma.ingestionRun.findFirstOrThrow();
    expect(run).toMatchObject({
      trigger: 'seed',
      source: 'file',
      outcome: 'success',
      inserted: DEMO_JOB_COUNT,
      skipped: 0,
    });

    // The stored figures are what the generator meant, read back through sacct's formats and time zone.
    const generated = generateDemoJobs({ count: DEMO_JOB_COUNT, now: NOW, days: 90 });
    const sample = generated.find((job) => job.steps.length > 3) ?? (generated[0] as (typeof generated)[number]);
    const stored = await db.prisma.slurmJob.findUniqueOrThrow({
      where: { cluster_jobId: { cluster: 'demo', jobId: String(sample.jobId) } },
    });
    const cpu = sample.steps.reduce((sum, step) => sum + step.totalCpuSec, 0);
    expect(Number(stored.totalCpuSec)).toBeCloseTo(cpu, 3);
    expect(stored).toMatchObject({
      endAt: sample.end,
      startAt: sample.start,
      allocCpus: sample.allocCpus,
      stepCount: sample.steps.length,
    });

    expect(await seedDemoIfEmpty(db, options)).toEqual({ isSeeded: false, hasDemoLogins: true });
    expect(await db.prisma.slurmJob.count()).toBe(DEMO_JOB_COUNT);
  });

  it("puts the demo's rates in force from 2020-01-01 at midnight in APP_TZ, not at UTC's", async () => {
    // At UTC's midnight, /rates and every receipt of a demo west of Greenwich read "in force since
    // 2019-12-31 16:00" (Los Angeles), a date no one chose.
    const west = await createTestDatabase();
    const westDir = mkdtempSync(path.join(os.tmpdir(), 'demo-seed-west-'));
    try {
      const timeZone = 'America/Los_Angeles';
      const options = { dataDir: westDir, currency: 'THB', timeZone, now: NOW, logger: createLogger('silent') };
      expect(await seedDemoIfEmpty(west, options)).toMatchObject({ isSeeded: true });
      const rates = await west.prisma.pricingRate.findMany({ select: { effectiveFrom: true } });
      expect(rates).toHaveLength(3);
      for (const rate of rates) expect(formatLocalDateTime(rate.effectiveFrom, timeZone)).toBe('2020-01-01 00:00');
    } finally {
      await west.drop();
      rmSync(westDir, { recursive: true, force: true });
    }
  });

  describe('stopped once its users and tiers are committed', () => {
    // The start's stop ended the seed only once the demo's jobs were all ingested. Stopped between
    // two of their batches, the database had the demo's users and some jobs, and the next seed,
    // finding users, left it so.
    const stopOnceUsersSeeded = (database: TestDatabase, seedDir: string, stopsJobIngest: boolean) => {
      const stopping = new AbortController();
      return seedDemoIfEmpty(database, {
        dataDir: seedDir,
        currency: 'THB',
        timeZone: 'UTC',
        now: NOW,
        logger: createLogger('silent'),
        stopSignal: stopping.signal,
        stopsJobIngest,
        onUsersSeeded: () => stopping.abort('SIGTERM'),
      });
    };

    it('with stopsJobIngest (the start) stops before the jobs, and the next seed ingests them, saying so', async () => {
      const stopped = await createTestDatabase();
      const seedDir = mkdtempSync(path.join(os.tmpdir(), 'demo-seed-stopped-'));
      try {
        const stop = await stopOnceUsersSeeded(stopped, seedDir, true).catch((error: unknown) => error);
        expect(stop).toBeInstanceOf(StoppedDuringStartup);
        expect((stop as StoppedDuringStartup).signal).toBe('SIGTERM');
        expect(await stopped.prisma.user.count()).toBeGreaterThan(0);
        expect(await stopped.prisma.slurmJob.count()).toBe(0);

        const messages: string[] = [];
        const logger = pino({ level: 'info' }, { write: (line: string) => messages.push(JSON.parse(line).msg) });
        const options = { dataDir: seedDir, currency: 'THB', timeZone: 'UTC', now: NOW, logger };
        expect(await seedDemoIfEmpty(stopped, options)).toEqual({
          isSeeded: false,
          hasDemoLogins: true,
          unfinishedSeed: {
            sacctFile: path.join(seedDir, 'demo', 'sacct-demo.psv'),
            jobCount: DEMO_JOB_COUNT,
            isFileMissing: false,
          },
        });
        expect(messages).toContain(
          "an earlier demo seed was stopped while it ingested the demo's jobs: ingesting them now",
        );
        expect(await stopped.prisma.slurmJob.count()).toBe(DEMO_JOB_COUNT);
        // Finished: a later seed has nothing left to do.
        expect(await seedDemoIfEmpty(stopped, options)).toEqual({ isSeeded: false, hasDemoLogins: true });
      } finally {
        await stopped.drop();
        rmSync(seedDir, { recursive: true, force: true });
      }
    });

    it('without it (npm run db:seed) ingests the jobs all the same', async () => {
      const finished = await createTestDatabase();
      const seedDir = mkdtempSync(path.join(os.tmpdir(), 'demo-seed-finished-'));
      try {
        expect(await stopOnceUsersSeeded(finished, seedDir, false)).toMatchObject({
          isSeeded: true,
          jobCount: DEMO_JOB_COUNT,
        });
        expect(await finished.prisma.slurmJob.count()).toBe(DEMO_JOB_COUNT);
      } finally {
        await finished.drop();
        rmSync(seedDir, { recursive: true, force: true });
      }
    });

    it('says when the demo file is gone, and ingests nothing', async () => {
      const stopped = await createTestDatabase();
      const seedDir = mkdtempSync(path.join(os.tmpdir(), 'demo-seed-file-gone-'));
      try {
        await stopOnceUsersSeeded(stopped, seedDir, true).catch(() => undefined);
        const sacctFile = path.join(seedDir, 'demo', 'sacct-demo.psv');
        rmSync(sacctFile);
        const warnings: string[] = [];
        const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line).msg) });
        const options = { dataDir: seedDir, currency: 'THB', timeZone: 'UTC', now: NOW, logger };
        expect(await seedDemoIfEmpty(stopped, options)).toEqual({
          isSeeded: false,
          hasDemoLogins: true,
          unfinishedSeed: { sacctFile, isFileMissing: true },
        });
        expect(warnings).toEqual([
          `an earlier demo seed was stopped while it ingested the demo's jobs, and their sacct file ${sacctFile} is not there (another DATA_DIR?): the demo keeps the jobs that seed wrote. Start with that seed's DATA_DIR to ingest the rest`,
        ]);
        expect(await stopped.prisma.slurmJob.count()).toBe(0);
        expect(await stopped.prisma.ingestionRun.count()).toBe(0);
      } finally {
        await stopped.drop();
        rmSync(seedDir, { recursive: true, force: true });
      }
    });
  });

  it('seeds nothing into a database with users of its own, and says none of them is a demo login', async () => {
    const own = await createTestDatabase();
    try {
      await own.prisma.user.create({ data: { username: 'ops', passwordHash: 'x', role: 'admin' } });
      const options = { dataDir, currency: 'THB', timeZone: 'Asia/Bangkok', now: NOW, logger: createLogger('silent') };
      expect(await seedDemoIfEmpty(own, options)).toEqual({ isSeeded: false, hasDemoLogins: false });
      expect(await own.prisma.user.count()).toBe(1);
      expect(await own.prisma.slurmJob.count()).toBe(0);
    } finally {
      await own.drop();
    }
  });

  it('refuses to replace the Slurm file of a demo running in DATA_DIR when seeding another database, and seeds nothing', async () => {
    // `npm run db:seed` into a new database with the running demo's DATA_DIR (its banner's export line)
    // rewrote DATA_DIR/demo/sacct-demo.psv with another demo's jobs, which the running demo's next
    // backfill with --force stored as 242 new jobs.
    const other = await createTestDatabase();
    const sharedDir = mkdtempSync(path.join(os.tmpdir(), 'demo-seed-shared-'));
    const databaseDir = path.join(sharedDir, 'postgres');
    mkdirSync(path.join(sharedDir, 'demo'), { recursive: true });
    const sacctFile = path.join(sharedDir, 'demo', 'sacct-demo.psv');
    writeFileSync(sacctFile, "the running demo's jobs\n");
    // A process serving databaseDir as the embedded PostgreSQL's postmaster does (its command line names it).
    const postmaster = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)', '--', '-D', databaseDir]);
    try {
      // Until it has started, its command line is still this process's.
      for (let tries = 0; !readFileSync(`/proc/${postmaster.pid}/cmdline`, 'utf8').includes(databaseDir); tries++) {
        if (tries > 250) throw new Error('the stand-in postmaster did not start');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      mkdirSync(databaseDir);
      writeFileSync(path.join(databaseDir, 'postmaster.pid'), `${postmaster.pid}\n${databaseDir}\n`);
      const options = {
        dataDir: sharedDir,
        currency: 'THB',
        timeZone: 'UTC',
        now: NOW,
        logger: createLogger('silent'),
        beforeWritingSacctFile: refuseRunningDemosFile(sharedDir),
      };
      const refused = await seedDemoIfEmpty(other, options).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(ConfigError);
      expect((refused as ConfigError).message).toContain(
        `DATA_DIR: ${sharedDir} is the data directory of a demo running now (its embedded PostgreSQL is process ${postmaster.pid}), and seeding this database would replace that demo's Slurm file, ${sacctFile}, whose jobs its ingestion would then read as new: give this one a DATA_DIR of its own (DATA_DIR=/another/directory), or stop the demo first`,
      );
      expect(readFileSync(sacctFile, 'utf8')).toBe("the running demo's jobs\n");
      expect(await other.prisma.user.count()).toBe(0);

      // Once that demo has stopped, the directory is free to seed from.
      postmaster.kill();
      await new Promise((resolve) => postmaster.once('exit', resolve));
      expect(await seedDemoIfEmpty(other, options)).toMatchObject({ isSeeded: true, jobCount: DEMO_JOB_COUNT });
    } finally {
      postmaster.kill();
      await other.drop();
      rmSync(sharedDir, { recursive: true, force: true });
    }
  }, 60_000);
});
