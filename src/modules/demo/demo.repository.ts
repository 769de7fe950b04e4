import { Prisma } from '@prisma/client';
import { ADVISORY_LOCK_KEYS } from '../../db/advisory-locks.js';
import type { Db } from '../../db/database.js';
import { throwIfStoppedDuringStartup, waitForLockUnlessStopped } from '../../db/migrations.js';

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
const SEED_LOCK_KEY = ADVISORY_LOCK_KEYS.demoSeed;

/** Who the demo's rates and tier override say created them: the seed's mark in the database. */
const SEEDED_BY = 'demo-seed';

/** How many accounts the database has: the demo is seeded only into one with none. */
export async function countUsers(db: Db): Promise<number> {
  return db.user.count();
}

/** How many of `usernames` are accounts: whether the users a database has are the demo's. */
export async function countUsersNamed(db: Db, usernames: string[]): Promise<number> {
  return db.user.count({ where: { username: { in: usernames } } });
}

/**
 * Whether an earlier seed committed the demo's users and tiers (its rates bear its mark) and no run
 * of its own read all of the demo's jobs: it was stopped, or killed, while it ingested them.
 */
export async function isDemoSeedUnfinished(db: Db): Promise<boolean> {
  const [seededRate, finishedRun] = await Promise.all([
    db.pricingRate.findFirst({ where: { createdBy: SEEDED_BY }, select: { id: true } }),
    db.ingestionRun.findFirst({
      where: { trigger: 'seed', outcome: { in: ['success', 'partial'] } },
      select: { id: true },
    }),
  ]);
  return seededRate !== null && finishedRun === null;
}

/**
 * Runs `work` in a transaction holding the seed lock, only while the database has no users. Once
 * `stopSignal` is aborted it throws StoppedDuringStartup before `work`, rolling back: a wait for
 * another seeder's lock is cancelled, as PostgreSQL does not notice a client gone while it waits.
 */
export async function withEmptyDatabase<T>(
  db: Db,
  work: (tx: Tx) => Promise<T>,
  stopSignal?: AbortSignal,
): Promise<T | undefined> {
  return db.$transaction(
    async (tx) => {
      await waitForSeedLock(db, tx, stopSignal);
      if ((await tx.user.count()) > 0) return undefined;
      return work(tx);
    },
    { timeout: 120_000 },
  );
}

/** Takes the seed lock in `tx`; told to stop meanwhile, cancels the wait from another connection. */
async function waitForSeedLock(db: Db, tx: Tx, stopSignal: AbortSignal | undefined): Promise<void> {
  throwIfStoppedDuringStartup(stopSignal);
  const [backend] = await tx.$queryRaw<Array<{ pid: number }>>`SELECT pg_backend_pid() AS pid`;
  await waitForLockUnlessStopped(
    () => tx.$executeRaw`SELECT pg_advisory_xact_lock(${SEED_LOCK_KEY})`,
    () => db.$queryRaw`SELECT pg_cancel_backend(${backend?.pid ?? 0})`,
    stopSignal,
  );
}

/** The demo's pricing tiers, each with its rates in force from `effectiveFrom`. */
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
            createdBy: SEEDED_BY,
          },
        },
      },
    });
  }
}

/** The demo's accounts. */
export async function insertUsers(tx: Tx, users: DemoUser[]) {
  await tx.user.createMany({ data: users });
}

/** Places `username` on the tier named `tierName`, as an admin's override would. */
export async function insertTierOverride(tx: Tx, username: string, tierName: string) {
  const tier = await tx.pricingTier.findUniqueOrThrow({ where: { name: tierName }, select: { id: true } });
  await tx.tierOverride.create({ data: { username, tierId: tier.id, createdBy: SEEDED_BY } });
}
