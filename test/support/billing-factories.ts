import { Prisma } from '@prisma/client';
import type { Database } from '../../src/db/database.js';
import { minorUnitDigits } from '../../src/modules/pricing/pricing.js';

/** The demo's three tiers with one rate each, effective long ago. */
export async function buildTiers(
  db: Database,
  tiers: { name: string; isDefault?: boolean; cpu: string; gpu: string; mem: string }[] = [
    { name: 'mu', isDefault: true, cpu: '0.50', gpu: '12.00', mem: '0.05' },
    { name: 'gov', cpu: '0.80', gpu: '18.00', mem: '0.08' },
    { name: 'private', cpu: '1.50', gpu: '35.00', mem: '0.15' },
  ],
  currency = 'THB',
) {
  for (const tier of tiers) {
    await db.prisma.pricingTier.create({
      data: {
        name: tier.name,
        isDefault: tier.isDefault ?? false,
        rates: {
          create: {
            cpuPerHour: new Prisma.Decimal(tier.cpu),
            gpuPerHour: new Prisma.Decimal(tier.gpu),
            memPerHour: new Prisma.Decimal(tier.mem),
            currency,
            effectiveFrom: new Date('2020-01-01T00:00:00Z'),
            createdBy: 'test',
          },
        },
      },
    });
  }
}

/** A receipt's total at its currency's scale ("10.00"): the amount received that marks it paid. */
export async function amountDueOf(db: Pick<Database, 'prisma'>, receiptId: number): Promise<string> {
  const { total, currency } = await db.prisma.receipt.findUniqueOrThrow({
    where: { id: receiptId },
    select: { total: true, currency: true },
  });
  return total.toFixed(minorUnitDigits(currency));
}

let nextJobId = 10_000;

export interface JobSpec {
  user: string;
  end: string | Date | null;
  jobId?: string;
  cluster?: string;
  name?: string;
  state?: string;
  isTerminal?: boolean;
  elapsedSec?: number;
  allocCpus?: number;
  allocMemMb?: number;
  allocGpus?: number;
  reqGpus?: number;
  totalCpuSec?: string | null;
  cpuTimeSec?: number | null;
  stepMemGbHours?: string | null;
  account?: string;
  partition?: string;
}

/**
 * `count` jobs of `user` ending one a minute from `firstEnd`, with a deterministic spread of
 * awkward values (fractions, missing fields, GPUs requested only): for checking that the
 * SQL pricing formulas and the pricing core agree digit for digit.
 */
export function awkwardJobSpecs(user: string, firstEnd: Date, count = 240): JobSpec[] {
  return Array.from({ length: count }, (_, index) => ({
    user,
    end: new Date(firstEnd.getTime() + index * 60_000),
    elapsedSec: (index * 7919) % 200_000,
    allocCpus: [0, 1, 3, 7, 64][index % 5] as number,
    allocMemMb: [0, 1.5, 1000, 3333.333, 262_144][index % 5] as number,
    allocGpus: index % 6 === 0 ? 2 : 0,
    reqGpus: index % 4 === 0 ? 1 : 0,
    totalCpuSec: index % 3 === 0 ? null : String(((index * 104_729) % 9_999_999) / 1000),
    cpuTimeSec: index % 9 === 0 ? null : (index * 7) % 100_000,
    stepMemGbHours: index % 2 === 0 ? null : String(((index * 13) % 100_000) / 1_000_000),
  }));
}

/** A stored job row as ingestion would leave it; every field has a plain default. */
export function jobRow(spec: JobSpec): Prisma.SlurmJobCreateManyInput {
  const jobId = spec.jobId ?? String(nextJobId++);
  const end = spec.end === null ? null : new Date(spec.end);
  const elapsedSec = spec.elapsedSec ?? 3600;
  return {
    cluster: spec.cluster ?? 'test',
    jobId,
    jobKey: jobId,
    name: spec.name ?? 'job',
    user: spec.user,
    account: spec.account ?? 'physics',
    partition: spec.partition ?? 'compute',
    state: spec.state ?? 'COMPLETED',
    isTerminal: spec.isTerminal ?? true,
    startAt: end ? new Date(end.getTime() - elapsedSec * 1000) : null,
    endAt: end,
    elapsedSec,
    allocCpus: spec.allocCpus ?? 2,
    allocMemMb: new Prisma.Decimal(spec.allocMemMb ?? 4096),
    allocGpus: spec.allocGpus ?? 0,
    reqGpus: spec.reqGpus ?? spec.allocGpus ?? 0,
    cpuTimeSec: spec.cpuTimeSec === null ? null : BigInt(spec.cpuTimeSec ?? elapsedSec * (spec.allocCpus ?? 2)),
    totalCpuSec:
      spec.totalCpuSec === null || spec.totalCpuSec === undefined ? null : new Prisma.Decimal(spec.totalCpuSec),
    stepMemGbHours:
      spec.stepMemGbHours === null || spec.stepMemGbHours === undefined
        ? null
        : new Prisma.Decimal(spec.stepMemGbHours),
    source: 'test',
  };
}

const JOB_COLUMNS = [
  'cluster',
  'job_id',
  'job_key',
  'name',
  'user',
  'account',
  'partition',
  'state',
  'is_terminal',
  'start_at',
  'end_at',
  'elapsed_sec',
  'alloc_cpus',
  'alloc_mem_mb',
  'alloc_gpus',
  'req_gpus',
  'cpu_time_sec',
  'total_cpu_sec',
  'step_mem_gb_hours',
  'source',
] as const;

function toColumns(row: Prisma.SlurmJobCreateManyInput): Record<(typeof JOB_COLUMNS)[number], unknown> {
  const text = (value: unknown) => (value === null || value === undefined ? null : String(value));
  return {
    cluster: row.cluster,
    job_id: row.jobId,
    job_key: row.jobKey,
    name: row.name,
    user: row.user,
    account: row.account,
    partition: row.partition,
    state: row.state,
    is_terminal: row.isTerminal,
    start_at: row.startAt ? new Date(row.startAt).toISOString() : null,
    end_at: row.endAt ? new Date(row.endAt).toISOString() : null,
    elapsed_sec: row.elapsedSec,
    alloc_cpus: row.allocCpus,
    alloc_mem_mb: text(row.allocMemMb),
    alloc_gpus: row.allocGpus,
    req_gpus: row.reqGpus,
    cpu_time_sec: text(row.cpuTimeSec),
    total_cpu_sec: text(row.totalCpuSec),
    step_mem_gb_hours: text(row.stepMemGbHours),
    source: row.source,
  };
}

/**
 * Inserts jobs and returns their Slurm job ids. One json_populate_recordset INSERT per
 * 10,000 rows: Prisma's createMany through the adapter takes about 1 ms a job.
 */
export async function buildJobs(db: Pick<Database, 'pool'>, specs: JobSpec[]): Promise<string[]> {
  const rows = specs.map(jobRow);
  const columns = JOB_COLUMNS.map((column) => `"${column}"`).join(', ');
  for (let index = 0; index < rows.length; index += 10_000) {
    const batch = rows.slice(index, index + 10_000).map(toColumns);
    await db.pool.query(
      `INSERT INTO slurm_jobs (${columns}) SELECT ${columns} FROM json_populate_recordset(null::slurm_jobs, $1)`,
      [JSON.stringify(batch)],
    );
  }
  return rows.map((row) => row.jobId);
}

/**
 * A receipt row of `username` with no items, written straight to the table: for tests of what is
 * listed about receipts and their payments, not of billing. 0.50 THB on tier mu, billed through
 * 2026-01-31, unless `overrides` say otherwise.
 */
export function buildReceiptRow(
  db: Pick<Database, 'prisma'>,
  username: string,
  overrides: Partial<Prisma.ReceiptUncheckedCreateInput> = {},
) {
  return db.prisma.receipt.create({
    data: {
      username,
      billedThrough: new Date('2026-01-31'),
      total: '0.50',
      currency: 'THB',
      tierName: 'mu',
      ratesSnapshot: {},
      ratesLockedAt: new Date(),
      createdBy: username,
      ...overrides,
    },
  });
}
