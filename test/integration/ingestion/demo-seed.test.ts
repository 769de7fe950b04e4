import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_JOB_COUNT, seedDemoIfEmpty } from '../../../src/modules/demo/demo.service.js';
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
});
