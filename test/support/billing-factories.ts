import { Prisma } from '@prisma/client';
import type { Database } from '../../src/db/database.js';
import type { AppendAudit, AuditEntry } from '../../src/shared/audit-port.js';

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

/** Inserts jobs (in batches) and returns their Slurm job ids. */
export async function buildJobs(db: Database, specs: JobSpec[]): Promise<string[]> {
  const rows = specs.map(jobRow);
  for (let index = 0; index < rows.length; index += 2000) {
    await db.prisma.slurmJob.createMany({ data: rows.slice(index, index + 2000) });
  }
  return rows.map((row) => row.jobId);
}

/** An audit appender that keeps entries in memory (and checks it runs inside a transaction). */
export function recordingAudit(): AppendAudit & { entries: AuditEntry[] } {
  const entries: AuditEntry[] = [];
  const append = (async (tx: Prisma.TransactionClient, entry: AuditEntry) => {
    // A real write through the caller's transaction client, so a call outside one fails loudly.
    await tx.$queryRaw`SELECT 1`;
    entries.push(entry);
  }) as AppendAudit & { entries: AuditEntry[] };
  append.entries = entries;
  return append;
}
