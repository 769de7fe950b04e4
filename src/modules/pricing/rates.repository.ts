import { type PricingRate, Prisma } from '@prisma/client';
import { ADVISORY_LOCK_KEYS } from '../../db/advisory-locks.js';
import type { Db } from '../../db/database.js';
import { usernameSearchOf } from '../../db/username-search.js';
import { userTarget } from '../audit/audit-target.js';

type Client = Db | Prisma.TransactionClient;

export interface RateRow {
  id: number;
  tierId: number;
  cpu: Prisma.Decimal;
  gpu: Prisma.Decimal;
  mem: Prisma.Decimal;
  currency: string;
  effectiveFrom: Date;
  createdBy: string | null;
  createdAt: Date;
}

export interface TierWithRates {
  id: number;
  name: string;
  description: string;
  isDefault: boolean;
  /** Oldest first. */
  rates: RateRow[];
}

/**
 * A number that moves with every committed change to tiers, rates or tier overrides
 * (statement triggers bump pricing_versions in the writer's transaction).
 */
export async function readPricingVersion(db: Client): Promise<string> {
  const rows = await db.$queryRaw<
    { version: string }[]
  >`SELECT version::text AS version FROM pricing_versions WHERE id = 1`;
  return rows[0]?.version ?? '0';
}

/** Every tier with its whole rate history, oldest rate first. */
export async function listTiersWithRates(db: Client): Promise<TierWithRates[]> {
  const tiers = await db.pricingTier.findMany({
    orderBy: { id: 'asc' },
    select: {
      id: true,
      name: true,
      description: true,
      isDefault: true,
      rates: { orderBy: [{ effectiveFrom: 'asc' }, { id: 'asc' }] },
    },
  });
  return tiers.map((tier) => ({
    id: tier.id,
    name: tier.name,
    description: tier.description,
    isDefault: tier.isDefault,
    rates: tier.rates.map(toRateRow),
  }));
}

/** A pricing_rates row in the names the pricing core uses. */
function toRateRow(rate: PricingRate): RateRow {
  return {
    id: rate.id,
    tierId: rate.tierId,
    cpu: rate.cpuPerHour,
    gpu: rate.gpuPerHour,
    mem: rate.memPerHour,
    currency: rate.currency,
    effectiveFrom: rate.effectiveFrom,
    createdBy: rate.createdBy,
    createdAt: rate.createdAt,
  };
}

/**
 * Serialises the changes that decide which tier is the default (adding a tier, choosing the
 * default) for the rest of the transaction: two first tiers added at once must not both see
 * "no tier yet" and both become the default. SHARE ROW EXCLUSIVE conflicts with itself and
 * with writes to pricing_tiers, not with readers or with a rate change's row lock.
 */
export async function lockTiersForChange(tx: Prisma.TransactionClient): Promise<void> {
  await tx.$executeRaw`LOCK TABLE pricing_tiers IN SHARE ROW EXCLUSIVE MODE`;
}

/** Every tier's name, oldest tier first. */
export async function listTierNames(db: Client): Promise<string[]> {
  const tiers = await db.pricingTier.findMany({ orderBy: { id: 'asc' }, select: { name: true } });
  return tiers.map((tier) => tier.name);
}

/** How many tiers exist. */
export async function countTiers(tx: Client): Promise<number> {
  return tx.pricingTier.count();
}

/** Adds a tier; its name is unique (pricing_tiers_name_key), so a duplicate fails with P2002. */
export async function insertTier(
  tx: Prisma.TransactionClient,
  tier: { name: string; description: string; isDefault: boolean },
): Promise<{ id: number }> {
  return tx.pricingTier.create({
    data: { name: tier.name, description: tier.description, isDefault: tier.isDefault },
    select: { id: true },
  });
}

/** A tier by its exact name. */
export async function findTierByName(
  tx: Client,
  name: string,
): Promise<{ id: number; name: string; isDefault: boolean } | undefined> {
  const tier = await tx.pricingTier.findUnique({ where: { name }, select: { id: true, name: true, isDefault: true } });
  return tier ?? undefined;
}

/** The name of the tier marked default, if one is. */
export async function findDefaultTierName(tx: Client): Promise<string | undefined> {
  const tier = await tx.pricingTier.findFirst({ where: { isDefault: true }, select: { name: true } });
  return tier?.name;
}

/**
 * Who made `name` the default tier, and when: the newest `pricing.tier.default` entry, when it made that
 * tier the default (undefined otherwise: a default set by SQL, or renamed since, is not told).
 */
export async function findDefaultChange(tx: Client, name: string): Promise<{ actor: string; at: Date } | undefined> {
  const rows = await tx.$queryRaw<{ actor: string; at: Date; next: string | null }[]>`
    SELECT actor, ts AS at, details ->> 'next' AS next FROM audit_log
     WHERE action = 'pricing.tier.default'
     ORDER BY id DESC LIMIT 1`;
  const last = rows[0];
  return last && last.next === name ? { actor: last.actor, at: last.at } : undefined;
}

/** Marks one tier as the default and clears the mark of the one before (in that order: at most one may hold it). */
export async function markDefaultTier(tx: Prisma.TransactionClient, tierId: number): Promise<void> {
  await tx.pricingTier.updateMany({ where: { isDefault: true, id: { not: tierId } }, data: { isDefault: false } });
  await tx.pricingTier.update({ where: { id: tierId }, data: { isDefault: true } });
}

/**
 * Held by a receipt until it commits (shared: receipts do not wait for each other), before it
 * takes its instant (rates_locked_at) and reads the rates: a rate change in flight commits first
 * and is read, and one that comes later waits for the receipt (lockPricingForChange).
 */
export async function holdPricingForBilling(tx: Prisma.TransactionClient): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock_shared(${ADVISORY_LOCK_KEYS.pricingChange})`;
}

/**
 * Held by a rate change until it commits, before it takes its effective_from: the receipts in
 * flight commit first, so a rate is never dated before a receipt that billed at the rates it
 * replaced, and receipts started meanwhile wait and read it.
 */
export async function lockPricingForChange(tx: Prisma.TransactionClient): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(${ADVISORY_LOCK_KEYS.pricingChange})`;
}

/** The tier's id, locked against a concurrent rate change so two edits serialise. */
export async function lockTierByName(tx: Prisma.TransactionClient, name: string): Promise<number | undefined> {
  const rows = await tx.$queryRaw<{ id: number }[]>`SELECT id FROM pricing_tiers WHERE name = ${name} FOR UPDATE`;
  return rows[0]?.id;
}

/**
 * A tier by its exact name, its row locked until the transaction ends: a rename or deletion of it
 * waits for a rate change or a user being placed on it, and they wait for the rename or deletion.
 */
export async function lockTierForChange(
  tx: Prisma.TransactionClient,
  name: string,
): Promise<{ id: number; name: string; description: string; isDefault: boolean } | undefined> {
  const rows = await tx.$queryRaw<{ id: number; name: string; description: string; isDefault: boolean }[]>`
    SELECT id, name, description, is_default AS "isDefault" FROM pricing_tiers WHERE name = ${name} FOR UPDATE`;
  return rows[0];
}

/**
 * Who last changed a tier's description to `description`, and when, as the audit log recorded it
 * (`pricing.tier.update`); undefined when no entry did (a change made in SQL, say).
 */
export async function findDescriptionChange(
  tx: Prisma.TransactionClient,
  tierId: number,
  description: string,
): Promise<{ actor: string; at: Date } | undefined> {
  const rows = await tx.$queryRaw<{ actor: string; at: Date }[]>`
    SELECT actor, ts AS at FROM audit_log
     WHERE action = 'pricing.tier.update' AND details ->> 'tierId' = ${String(tierId)}
       AND details -> 'next' ->> 'description' = ${description}
       AND details -> 'previous' ->> 'description' IS DISTINCT FROM ${description}
     ORDER BY id DESC LIMIT 1`;
  return rows[0];
}

/** The tier a rate row belongs to, by the rate's id, under the tier's name now; undefined for no such rate. */
export async function findTierOfRate(tx: Client, rateId: number): Promise<{ id: number; name: string } | undefined> {
  const rate = await tx.pricingRate.findUnique({
    where: { id: rateId },
    select: { tier: { select: { id: true, name: true } } },
  });
  return rate?.tier;
}

/**
 * Who last renamed the tier `tierId` away from `name`, and when, as the audit log recorded it
 * (`pricing.tier.update`); undefined when no entry did (a rename made in SQL, say).
 */
export async function findRenameChange(
  tx: Client,
  tierId: number,
  name: string,
): Promise<{ actor: string; at: Date } | undefined> {
  const rows = await tx.$queryRaw<{ actor: string; at: Date }[]>`
    SELECT actor, ts AS at FROM audit_log
     WHERE action = 'pricing.tier.update' AND details ->> 'tierId' = ${String(tierId)}
       AND details -> 'previous' ->> 'name' = ${name}
       AND details -> 'next' ->> 'name' IS DISTINCT FROM ${name}
     ORDER BY id DESC LIMIT 1`;
  return rows[0];
}

/**
 * The tier that was called `name` until it was renamed, under its name now and with its description,
 * with who renamed it away from `name` and when, as the audit log recorded it (`pricing.tier.update`);
 * undefined when no entry did or that tier is gone.
 */
export async function findRenamedTier(
  db: Client,
  name: string,
): Promise<{ name: string; description: string; actor: string; at: Date; entryId: bigint } | undefined> {
  const rows = await db.$queryRaw<{ name: string; description: string; actor: string; at: Date; entryId: bigint }[]>`
    SELECT t.name, t.description, a.actor, a.ts AS at, a.id AS "entryId" FROM audit_log a
      JOIN pricing_tiers t ON t.id::text = a.details ->> 'tierId'
     WHERE a.action = 'pricing.tier.update'
       AND a.details -> 'previous' ->> 'name' = ${name}
       AND a.details -> 'next' ->> 'name' IS DISTINCT FROM ${name}
     ORDER BY a.id DESC LIMIT 1`;
  return rows[0];
}

/**
 * Every name a tier was renamed away from, with the name that tier has now, as the audit log
 * recorded the renames (`pricing.tier.update`; audit_log_action_ts_idx): the latest rename away
 * from each name wins, and a tier deleted since is left out. `entryId`, the rename's entry, orders it
 * against a deletion of a tier of that name (listDeletedTierNames).
 */
export async function listFormerTierNames(db: Client): Promise<Map<string, { name: string; entryId: bigint }>> {
  const rows = await db.$queryRaw<{ previous: string; name: string; entryId: bigint }[]>`
    SELECT DISTINCT ON (a.details -> 'previous' ->> 'name') a.details -> 'previous' ->> 'name' AS previous, t.name,
           a.id AS "entryId"
      FROM audit_log a
      JOIN pricing_tiers t ON t.id::text = a.details ->> 'tierId'
     WHERE a.action = 'pricing.tier.update'
       AND a.details -> 'previous' ->> 'name' IS NOT NULL
       AND a.details -> 'next' ->> 'name' IS DISTINCT FROM a.details -> 'previous' ->> 'name'
     ORDER BY a.details -> 'previous' ->> 'name', a.id DESC`;
  return new Map(rows.map((row) => [row.previous, { name: row.name, entryId: row.entryId }]));
}

/** A name a tier was renamed away from before it was deleted (listFormerNamesOfDeletedTiers). */
export interface FormerNameOfDeletedTier {
  /** The name the tier was deleted under. */
  name: string;
  /** The rename away from the former name: orders it against other fates of that name. */
  entryId: bigint;
  /** The tier's deletion: when, and its entry (to tell it from a later deletion of another tier so named). */
  deletedAt: Date;
  deletedEntryId: bigint;
}

/**
 * Every name a tier was renamed away from whose tier was deleted since (listFormerTierNames leaves those
 * out), with the name it was deleted under: the latest rename away from each name wins. The rename and
 * the deletion are one tier's by the `tierId` both entries carry (rates.service's `pricing.tier.update`
 * and `pricing.tier.delete`).
 */
export async function listFormerNamesOfDeletedTiers(db: Client): Promise<Map<string, FormerNameOfDeletedTier>> {
  const rows = await db.$queryRaw<({ previous: string } & FormerNameOfDeletedTier)[]>`
    SELECT DISTINCT ON (a.details -> 'previous' ->> 'name') a.details -> 'previous' ->> 'name' AS previous,
           substr(d.target, 6) AS name, a.id AS "entryId", d.ts AS "deletedAt", d.id AS "deletedEntryId"
      FROM audit_log a
      JOIN audit_log d ON d.action = 'pricing.tier.delete' AND d.target LIKE 'tier:%'
                      AND d.details ->> 'tierId' = a.details ->> 'tierId' AND d.id > a.id
     WHERE a.action = 'pricing.tier.update'
       AND a.details -> 'previous' ->> 'name' IS NOT NULL
       AND a.details -> 'next' ->> 'name' IS DISTINCT FROM a.details -> 'previous' ->> 'name'
     ORDER BY a.details -> 'previous' ->> 'name', a.id DESC`;
  return new Map(
    rows.map(({ previous, ...row }) => [
      previous,
      { name: row.name, entryId: row.entryId, deletedAt: row.deletedAt, deletedEntryId: row.deletedEntryId },
    ]),
  );
}

/** A deleted tier's name as the audit log recorded its deletion (listDeletedTierNames). */
export interface DeletedTierName {
  at: Date;
  entryId: bigint;
  /**
   * The tiers its users were moved to by override (or back to their natural tier) before it was
   * deleted, as named then: a tier with users cannot be deleted until they are moved.
   */
  movedTo: string[];
}

/**
 * Every name a tier was deleted under (`pricing.tier.delete`; audit_log_action_ts_idx), the latest
 * deletion of each, with where the users placed on that tier went: the override changes away from the
 * name after any earlier deletion of a tier so called.
 */
export async function listDeletedTierNames(db: Client): Promise<Map<string, DeletedTierName>> {
  const rows = await db.$queryRaw<{ name: string; at: Date; entryId: bigint; movedTo: string[] }[]>`
    SELECT DISTINCT ON (d.target) substr(d.target, 6) AS name, d.ts AS at, d.id AS "entryId",
           ARRAY(SELECT DISTINCT coalesce(o.details ->> 'next', o.details ->> 'naturalTier')
                   FROM audit_log o
                  WHERE o.action IN ('pricing.override.set', 'pricing.override.remove')
                    AND o.details ->> 'previous' = substr(d.target, 6)
                    AND o.id < d.id
                    AND o.id > coalesce((SELECT max(p.id) FROM audit_log p
                                          WHERE p.action = 'pricing.tier.delete' AND p.target = d.target
                                            AND p.id < d.id), 0)
           ) AS "movedTo"
      FROM audit_log d
     WHERE d.action = 'pricing.tier.delete' AND d.target LIKE 'tier:%'
     ORDER BY d.target, d.id DESC`;
  return new Map(rows.map((row) => [row.name, { at: row.at, entryId: row.entryId, movedTo: row.movedTo }]));
}

/** Who last deleted a tier called `name`, and when, as the audit log recorded it (`pricing.tier.delete`). */
export async function findTierDeletion(
  db: Client,
  name: string,
): Promise<{ actor: string; at: Date; entryId: bigint } | undefined> {
  // audit_log_target_id_idx: the tier's entries, not the whole log.
  const rows = await db.$queryRaw<{ actor: string; at: Date; entryId: bigint }[]>`
    SELECT actor, ts AS at, id AS "entryId" FROM audit_log
     WHERE target = ${`tier:${name}`} AND action = 'pricing.tier.delete'
     ORDER BY id DESC LIMIT 1`;
  return rows[0];
}

/**
 * The rates `rateId` of a tier called `name` that was deleted, as its `pricing.tier.delete` audit entry
 * kept them, with who deleted it and when; undefined when no such entry holds them.
 */
export async function findDeletedTierRate(
  db: Client,
  name: string,
  rateId: number,
): Promise<{ actor: string; at: Date; cpu: Prisma.Decimal; gpu: Prisma.Decimal; mem: Prisma.Decimal } | undefined> {
  // audit_log_target_id_idx: the tier's entries, not the whole log.
  const rows = await db.$queryRaw<{ actor: string; at: Date; cpu: string; gpu: string; mem: string }[]>`
    SELECT a.actor, a.ts AS at, r ->> 'cpu' AS cpu, r ->> 'gpu' AS gpu, r ->> 'mem' AS mem
      FROM audit_log a CROSS JOIN LATERAL jsonb_array_elements(a.details -> 'rates') r
     WHERE a.target = ${`tier:${name}`} AND a.action = 'pricing.tier.delete'
       AND jsonb_typeof(a.details -> 'rates') = 'array' AND r ->> 'rateId' = ${String(rateId)}
     ORDER BY a.id DESC LIMIT 1`;
  const row = rows[0];
  if (!row) return undefined;
  return {
    actor: row.actor,
    at: row.at,
    cpu: new Prisma.Decimal(row.cpu),
    gpu: new Prisma.Decimal(row.gpu),
    mem: new Prisma.Decimal(row.mem),
  };
}

/** Renames a tier or changes its description; a name that is taken fails with P2002 (pricing_tiers_name_key). */
export async function updateTier(
  tx: Prisma.TransactionClient,
  tierId: number,
  next: { name: string; description: string },
): Promise<void> {
  await tx.pricingTier.update({ where: { id: tierId }, data: { name: next.name, description: next.description } });
}

/**
 * Deletes a tier and its rate history. pricing_rates and tier_overrides refer to the tier with
 * ON DELETE RESTRICT keys, so a tier someone is still placed on cannot go, whatever the caller checked.
 */
export async function deleteTierWithRates(tx: Prisma.TransactionClient, tierId: number): Promise<void> {
  await tx.pricingRate.deleteMany({ where: { tierId } });
  await tx.pricingTier.delete({ where: { id: tierId } });
}

/** The users placed on a tier by override, by name. */
export async function listOverrideUsernamesOfTier(tx: Client, tierId: number): Promise<string[]> {
  const rows = await tx.tierOverride.findMany({
    where: { tierId },
    orderBy: { username: 'asc' },
    select: { username: true },
  });
  return rows.map((row) => row.username);
}

/**
 * Whether the tier still exists, holding it until the transaction ends: a deletion of it waits for
 * this transaction, or this waits for the deletion and then finds it gone.
 */
export async function holdTier(tx: Prisma.TransactionClient, tierId: number): Promise<boolean> {
  const rows = await tx.$queryRaw<{ id: number }[]>`SELECT id FROM pricing_tiers WHERE id = ${tierId} FOR KEY SHARE`;
  return rows.length > 0;
}

/** The rate in force for a tier at an instant (the latest effective_from not after it). */
export async function findRateInForce(
  tx: Client,
  tierId: number,
  at: Date,
): Promise<Omit<RateRow, 'createdAt'> | undefined> {
  const rate = await tx.pricingRate.findFirst({
    where: { tierId, effectiveFrom: { lte: at } },
    orderBy: [{ effectiveFrom: 'desc' }, { id: 'desc' }],
  });
  return rate ? toRateRow(rate) : undefined;
}

/** The first rates of a tier scheduled after `at` (docs/pricing.md, "Scheduled rates"), if any. */
export async function findNextScheduledRate(tx: Client, tierId: number, at: Date): Promise<RateRow | undefined> {
  const rate = await tx.pricingRate.findFirst({
    where: { tierId, effectiveFrom: { gt: at } },
    orderBy: [{ effectiveFrom: 'asc' }, { id: 'asc' }],
  });
  return rate ? toRateRow(rate) : undefined;
}

/** A tier's rate row when it has only one (its first, as it was added); undefined otherwise. */
export async function findOnlyRateOfTier(tx: Client, tierId: number): Promise<RateRow | undefined> {
  const rates = await tx.pricingRate.findMany({ where: { tierId }, orderBy: { id: 'asc' }, take: 2 });
  return rates.length === 1 && rates[0] ? toRateRow(rates[0]) : undefined;
}

/** One rate row of a tier, by id; undefined when the tier has no such row. */
export async function findTierRate(tx: Client, tierId: number, id: number): Promise<RateRow | undefined> {
  const rate = await tx.pricingRate.findFirst({ where: { id, tierId } });
  return rate ? toRateRow(rate) : undefined;
}

/** Tiers whose rates in force at `at` are in another currency than `currency`, with theirs. */
export async function findTiersPricedInOtherCurrency(
  db: Client,
  currency: string,
  at: Date,
): Promise<Array<{ tier: string; currency: string }>> {
  return db.$queryRaw<Array<{ tier: string; currency: string }>>`
    SELECT t.name AS tier, r.currency
      FROM pricing_tiers t
      CROSS JOIN LATERAL (
        SELECT currency FROM pricing_rates
         WHERE tier_id = t.id AND effective_from <= ${at}
         ORDER BY effective_from DESC, id DESC LIMIT 1) r
     WHERE r.currency <> ${currency}
     ORDER BY t.name`;
}

/** Adds a rate row; earlier rows stay, so receipts and history keep pointing at what they used. */
export async function insertRate(
  tx: Prisma.TransactionClient,
  rate: {
    tierId: number;
    cpu: Prisma.Decimal;
    gpu: Prisma.Decimal;
    mem: Prisma.Decimal;
    currency: string;
    effectiveFrom: Date;
    createdBy: string;
  },
): Promise<{ id: number }> {
  return tx.pricingRate.create({
    data: {
      tierId: rate.tierId,
      cpuPerHour: rate.cpu,
      gpuPerHour: rate.gpu,
      memPerHour: rate.mem,
      currency: rate.currency,
      effectiveFrom: rate.effectiveFrom,
      createdBy: rate.createdBy,
    },
    select: { id: true },
  });
}

/** The tier name a user was moved to by hand, if any. */
export async function findOverride(db: Client, username: string): Promise<string | undefined> {
  // One statement: Prisma's nested select would be two round trips (override, then tier).
  const rows = await db.$queryRaw<{ name: string }[]>(Prisma.sql`
    SELECT t.name FROM tier_overrides o JOIN pricing_tiers t ON t.id = o.tier_id WHERE o.username = ${username}`);
  return rows[0]?.name;
}

/** Overrides for the given users (all when omitted), as username -> tier name. */
export async function listOverrides(db: Client, usernames?: string[]): Promise<Map<string, string>> {
  const rows = await db.tierOverride.findMany({
    where: usernames ? { username: { in: usernames } } : undefined,
    select: { username: true, tier: { select: { name: true } } },
  });
  return new Map(rows.map((row) => [row.username, row.tier.name]));
}

export interface OverrideRow {
  username: string;
  tierName: string;
  createdBy: string | null;
  createdAt: Date;
}

/** Sets or replaces a user's override; returns the previous tier name, if any. */
export async function upsertOverride(
  tx: Prisma.TransactionClient,
  input: { username: string; tierId: number; createdBy: string },
): Promise<string | undefined> {
  const previous = await findOverride(tx, input.username);
  await tx.tierOverride.upsert({
    where: { username: input.username },
    create: { username: input.username, tierId: input.tierId, createdBy: input.createdBy },
    update: { tierId: input.tierId, createdBy: input.createdBy, createdAt: new Date() },
  });
  return previous;
}

/**
 * Who gave a user the override they have now (`override`, undefined for none), and when, as the
 * audit log recorded it. None when the last move left another name: the tier was renamed since.
 */
export async function findOverrideChange(
  tx: Prisma.TransactionClient,
  username: string,
  override: string | undefined,
): Promise<{ actor: string; at: Date } | undefined> {
  // audit_log_target_id_idx: the user's entries, not the whole log.
  const rows = await tx.$queryRaw<{ actor: string; at: Date; next: string | null }[]>`
    SELECT actor, ts AS at, details ->> 'next' AS next FROM audit_log
     WHERE target = ${userTarget(username)} AND action IN ('pricing.override.set', 'pricing.override.remove')
     ORDER BY id DESC LIMIT 1`;
  const last = rows[0];
  return last && (last.next ?? undefined) === override ? { actor: last.actor, at: last.at } : undefined;
}

/** Removes a user's override; returns the tier name it had, if any. */
export async function deleteOverride(tx: Prisma.TransactionClient, username: string): Promise<string | undefined> {
  const previous = await findOverride(tx, username);
  await tx.tierOverride.deleteMany({ where: { username } });
  return previous;
}

/**
 * `known`: every username the system knows, accounts and job owners, in a `username` column.
 * The job owners come from a skip scan over the (user, end_at) index, one probe an owner.
 */
const WITH_KNOWN_USERNAMES = Prisma.sql`
  WITH RECURSIVE job_users AS (
    (SELECT "user" FROM slurm_jobs ORDER BY "user" LIMIT 1)
    UNION ALL
    SELECT (SELECT j."user" FROM slurm_jobs j WHERE j."user" > job_users."user" ORDER BY j."user" LIMIT 1)
    FROM job_users WHERE job_users."user" IS NOT NULL
  ),
  known AS (
    SELECT "user" AS username FROM job_users WHERE "user" IS NOT NULL
    UNION
    SELECT username FROM users
  )`;

/** Every username the system knows: accounts and job owners, by name. */
export async function listKnownUsernames(db: Client): Promise<string[]> {
  const rows = await db.$queryRaw<{ username: string }[]>(Prisma.sql`
    ${WITH_KNOWN_USERNAMES}
    SELECT username FROM known ORDER BY username`);
  return rows.map((row) => row.username);
}

/**
 * One page of the known usernames containing `search` (as /admin/users searches: any case,
 * everyone without one, the exact name first, then by name), and how many match, in one
 * statement: the skip scan runs once for both.
 */
export async function listKnownUsernamesPage(
  db: Client,
  options: { search?: string; offset: number; limit: number },
): Promise<{ usernames: string[]; count: number }> {
  const { where, exactFirst } = usernameSearchOf(options.search);
  const rows = await db.$queryRaw<{ usernames: string[]; count: number }[]>(Prisma.sql`
    ${WITH_KNOWN_USERNAMES},
    matched AS (SELECT username FROM known ${where})
    SELECT ARRAY(
             SELECT username FROM matched ORDER BY ${exactFirst} username OFFSET ${options.offset} LIMIT ${options.limit}
           ) AS usernames,
           (SELECT count(*)::int FROM matched) AS count`);
  return { usernames: rows[0]?.usernames ?? [], count: rows[0]?.count ?? 0 };
}

/** How many known usernames (accounts and jobs' owners) contain `search` (all of them without one). */
export async function countKnownUsernames(db: Client, search: string | undefined): Promise<number> {
  const { where } = usernameSearchOf(search);
  const rows = await db.$queryRaw<{ count: number }[]>(Prisma.sql`
    ${WITH_KNOWN_USERNAMES}
    SELECT count(*)::int AS count FROM known ${where}`);
  return rows[0]?.count ?? 0;
}

/**
 * The known username (an account or a job owner) that `typed` names: `typed` itself when it is one,
 * else its lower-case spelling when that is one (accounts are named in lower case), else null. Each
 * name is probed through the unique index of users' names and slurm_jobs' (user, …) index.
 */
export async function findKnownUsername(db: Client, typed: string): Promise<string | null> {
  const rows = await db.$queryRaw<{ name: string }[]>`
    SELECT name FROM (VALUES (${typed}::text, 1), (lower(${typed}::text), 2)) AS candidate(name, rank)
     WHERE EXISTS (SELECT 1 FROM users WHERE username = candidate.name)
        OR EXISTS (SELECT 1 FROM slurm_jobs WHERE "user" = candidate.name)
     ORDER BY rank
     LIMIT 1`;
  return rows[0]?.name ?? null;
}
