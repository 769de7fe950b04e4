import { Prisma } from '@prisma/client';
import type { Db } from '../../db/database.js';
import { DEMO_CLUSTER, type DemoJob, summarizeJob } from './demo-jobs.js';

type Tx = Prisma.TransactionClient;

export interface DemoTier {
  name: string;
  description: string;
  isDefault: boolean;
  rates: { cpu: string; gpu: string; mem: string };
}

export interface DemoUser {
  username: string;
  passwordHash: string;
  role: 'admin' | 'user';
}

// Any constant works; it keeps two processes from seeding the same empty database.
const SEED_LOCK_KEY = 727_450_114;

/** Runs `work` in a transaction holding the seed lock, only while the database has no users. */
export async function withEmptyDatabase<T>(db: Db, work: (tx: Tx) => Promise<T>): Promise<T | undefined> {
  return db.$transaction(
    async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${SEED_LOCK_KEY})`;
      if ((await tx.user.count()) > 0) return undefined;
      return work(tx);
    },
    { timeout: 120_000 },
  );
}

export async function insertTiers(tx: Tx, tiers: DemoTier[], currency: string, effectiveFrom: Date) {
  for (const tier of tiers) {
    await tx.pricingTier.create({
      data: {
        name: tier.name,
        description: tier.description,
        isDefault: tier.isDefault,
        rates: {
          create: {
            cpuPerHour: new Prisma.Decimal(tier.rates.cpu),
            gpuPerHour: new Prisma.Decimal(tier.rates.gpu),
            memPerHour: new Prisma.Decimal(tier.rates.mem),
            currency,
            effectiveFrom,
            createdBy: 'demo-seed',
          },
        },
      },
    });
  }
}

export async function insertUsers(tx: Tx, users: DemoUser[]) {
  await tx.user.createMany({ data: users });
}

export async function insertTierOverride(tx: Tx, username: string, tierName: string) {
  const tier = await tx.pricingTier.findUniqueOrThrow({ where: { name: tierName }, select: { id: true } });
  await tx.tierOverride.create({ data: { username, tierId: tier.id, createdBy: 'demo-seed' } });
}

function toJobRow(job: DemoJob): Prisma.SlurmJobCreateManyInput {
  const { totalCpuSec, stepMemGbHours, maxRssBytes, tres } = summarizeJob(job);
  return {
    cluster: DEMO_CLUSTER,
    jobId: String(job.jobId),
    jobKey: String(job.jobId),
    name: job.name,
    user: job.user,
    account: job.account,
    partition: job.partition,
    qos: job.qos,
    state: job.state,
    isTerminal: true,
    exitCode: job.exitCode,
    submitAt: job.submit,
    startAt: job.start,
    endAt: job.end,
    elapsedSec: job.elapsedSec,
    timelimitSec: job.timelimitMin * 60,
    allocCpus: job.allocCpus,
    allocMemMb: job.allocMemMb,
    allocGpus: job.allocGpus,
    allocNodes: job.allocNodes,
    allocBilling: job.allocCpus,
    reqCpus: job.allocCpus,
    reqMemMb: job.allocMemMb,
    reqGpus: job.allocGpus,
    allocTres: tres,
    reqTres: tres,
    cpuTimeSec: BigInt(job.elapsedSec * job.allocCpus),
    totalCpuSec: new Prisma.Decimal(totalCpuSec.toFixed(3)),
    stepMemGbHours: new Prisma.Decimal(stepMemGbHours.toFixed(6)),
    maxRssBytes: BigInt(maxRssBytes),
    stepCount: job.steps.length,
    steps: job.steps.map((step) => ({ ...step })),
    nodeList: job.nodeList,
    source: 'demo',
  };
}

export async function insertJobs(tx: Tx, jobs: DemoJob[]) {
  const batchSize = 1000;
  for (let index = 0; index < jobs.length; index += batchSize) {
    await tx.slurmJob.createMany({ data: jobs.slice(index, index + batchSize).map(toJobRow) });
  }
}
