import { Prisma, type PrismaClient } from '@prisma/client';
import { hashPassword } from '../../src/modules/users/password.js';

let sequence = 0;
const next = () => {
  sequence += 1;
  return sequence;
};

export interface BuiltUser {
  id: number;
  username: string;
  role: 'admin' | 'user';
  password: string;
}

/** A user whose password is `${username}-password` unless given. */
export async function buildUser(
  db: PrismaClient,
  overrides: { username?: string; role?: 'admin' | 'user'; password?: string; isDisabled?: boolean } = {},
): Promise<BuiltUser> {
  const username = overrides.username ?? `user${next()}`;
  const password = overrides.password ?? `${username}-password`;
  const user = await db.user.create({
    data: {
      username,
      passwordHash: await hashPassword(password),
      role: overrides.role ?? 'user',
      isDisabled: overrides.isDisabled ?? false,
    },
  });
  return { id: user.id, username, role: user.role, password };
}

/** A pricing tier with one rate row in force since `effectiveFrom`. */
export async function buildTier(
  db: PrismaClient,
  overrides: {
    name?: string;
    isDefault?: boolean;
    cpu?: string;
    gpu?: string;
    mem?: string;
    currency?: string;
    effectiveFrom?: Date;
  } = {},
) {
  return db.pricingTier.create({
    data: {
      name: overrides.name ?? `tier${next()}`,
      isDefault: overrides.isDefault ?? false,
      rates: {
        create: {
          cpuPerHour: new Prisma.Decimal(overrides.cpu ?? '1.00'),
          gpuPerHour: new Prisma.Decimal(overrides.gpu ?? '10.00'),
          memPerHour: new Prisma.Decimal(overrides.mem ?? '0.10'),
          currency: overrides.currency ?? 'THB',
          effectiveFrom: overrides.effectiveFrom ?? new Date('2020-01-01T00:00:00Z'),
        },
      },
    },
    include: { rates: true },
  });
}

/** A finished job of `user` (1 CPU, 1 hour, ended at `end`) with any field overridden. */
export async function buildJob(
  db: PrismaClient,
  overrides: Partial<Prisma.SlurmJobUncheckedCreateInput> & { user: string },
) {
  const jobId = overrides.jobId ?? String(100_000 + next());
  const end = overrides.endAt ? new Date(overrides.endAt) : new Date('2026-01-15T12:00:00Z');
  const elapsedSec = overrides.elapsedSec ?? 3600;
  return db.slurmJob.create({
    data: {
      cluster: 'test',
      jobKey: jobId,
      name: 'job',
      state: 'COMPLETED',
      isTerminal: true,
      exitCode: '0:0',
      submitAt: new Date(end.getTime() - elapsedSec * 1000 - 60_000),
      startAt: new Date(end.getTime() - elapsedSec * 1000),
      allocCpus: 1,
      allocMemMb: 1024,
      cpuTimeSec: BigInt(elapsedSec),
      source: 'test',
      ...overrides,
      jobId,
      endAt: end,
      elapsedSec,
    },
  });
}
