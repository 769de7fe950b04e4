import { Prisma } from '@prisma/client';

/**
 * The pricing rules, as pure functions over plain data. docs/pricing.md states them
 * in words; `usage.sql.ts` repeats the hour and cost formulas in SQL for aggregates,
 * and a test keeps the two in step.
 */

// decimal.js keeps 20 significant digits by default: hours x rate can need more,
// and money must not lose a digit silently.
const Money = Prisma.Decimal.clone({ precision: 60, rounding: Prisma.Decimal.ROUND_HALF_UP });
type Numeric = Prisma.Decimal | string | number | bigint;

const toMoney = (value: Numeric) => new Money(typeof value === 'bigint' ? value.toString() : value.toString());
const toPrisma = (value: InstanceType<typeof Money>) => new Prisma.Decimal(value.toFixed());

/** Hours are kept to 6 decimals, the scale receipt items store them at. */
export const HOURS_SCALE = 6;

/** `used`: what the job's steps consumed (TotalCPU); `allocated`: CPUs held x wall time. */
export type CpuBasis = 'used' | 'allocated';

/** The stored job fields pricing reads (a subset of slurm_jobs). */
export interface JobUsage {
  elapsedSec: number;
  allocCpus: number;
  allocMemMb: Numeric;
  allocGpus: number;
  reqGpus: number;
  /** CPUTimeRAW. */
  cpuTimeSec: Numeric | null;
  /** Sum of the steps' TotalCPU. */
  totalCpuSec: Numeric | null;
  /** Sum over steps of AveRSS (GB) x step elapsed (h). */
  stepMemGbHours: Numeric | null;
}

export interface ResourceHours {
  cpuHours: Prisma.Decimal;
  gpuHours: Prisma.Decimal;
  memGbHours: Prisma.Decimal;
}

export interface Rates {
  cpu: Prisma.Decimal;
  gpu: Prisma.Decimal;
  mem: Prisma.Decimal;
  currency: string;
}

const SECONDS_PER_HOUR = 3600;
const MB_SECONDS_PER_GB_HOUR = 1024 * 3600;

const roundHours = (value: InstanceType<typeof Money>) =>
  toPrisma(value.toDecimalPlaces(HOURS_SCALE, Money.ROUND_HALF_UP));

/** CPU core-hours, GPU-hours and memory GB-hours of one job, each rounded half-up to 6 decimals. */
export function computeResourceHours(job: JobUsage, basis: CpuBasis): ResourceHours {
  const elapsed = toMoney(Math.max(0, job.elapsedSec));
  const allocatedCpuSec = toMoney(job.allocCpus).times(elapsed);
  let cpuSec = allocatedCpuSec;
  if (basis === 'used') {
    if (job.totalCpuSec !== null) cpuSec = toMoney(job.totalCpuSec);
    else if (job.cpuTimeSec !== null) cpuSec = toMoney(job.cpuTimeSec);
  }
  const gpus = job.allocGpus > 0 ? job.allocGpus : Math.max(0, job.reqGpus);
  const memGbHours =
    job.stepMemGbHours !== null
      ? toMoney(job.stepMemGbHours)
      : toMoney(job.allocMemMb).times(elapsed).dividedBy(MB_SECONDS_PER_GB_HOUR);
  return {
    cpuHours: roundHours(cpuSec.dividedBy(SECONDS_PER_HOUR)),
    gpuHours: roundHours(toMoney(gpus).times(elapsed).dividedBy(SECONDS_PER_HOUR)),
    memGbHours: roundHours(memGbHours),
  };
}

const minorUnitCache = new Map<string, number>();

/** Decimal places of the currency's minor unit (THB 2, JPY 0, KWD 3), as Intl knows it. */
export function minorUnitDigits(currency: string): number {
  let digits = minorUnitCache.get(currency);
  if (digits === undefined) {
    digits = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
    minorUnitCache.set(currency, digits);
  }
  return digits;
}

/** Rounds half-up (away from zero for the non-negative amounts billed here) to the currency's minor unit. */
export function roundMoney(amount: Numeric, currency: string): Prisma.Decimal {
  return toPrisma(toMoney(amount).toDecimalPlaces(minorUnitDigits(currency), Money.ROUND_HALF_UP));
}

/** The cost of one job: cpu_h x cpu + gpu_h x gpu + mem_h x mem, rounded once, half-up, to the minor unit. */
export function priceHours(hours: ResourceHours, rates: Rates): Prisma.Decimal {
  const raw = toMoney(hours.cpuHours)
    .times(toMoney(rates.cpu))
    .plus(toMoney(hours.gpuHours).times(toMoney(rates.gpu)))
    .plus(toMoney(hours.memGbHours).times(toMoney(rates.mem)));
  return roundMoney(raw.toFixed(), rates.currency);
}

/** A receipt total: the sum of its already rounded items, so the items always add up to it. */
export function sumCosts(costs: Iterable<Prisma.Decimal>): Prisma.Decimal {
  let total = new Money(0);
  for (const cost of costs) total = total.plus(toMoney(cost));
  return toPrisma(total);
}

export interface PricedJob extends ResourceHours {
  cost: Prisma.Decimal;
}

/** Hours and cost of one job at the given rates. */
export function priceJob(job: JobUsage, rates: Rates, basis: CpuBasis): PricedJob {
  const hours = computeResourceHours(job, basis);
  return { ...hours, cost: priceHours(hours, rates) };
}

/** One classifier rule: usernames matching `pattern` belong to `tier`. */
export interface TierRule {
  pattern: RegExp;
  tier: string;
}

/** The tier of the first rule whose pattern matches the username, if any. */
export function classifyTier(username: string, rules: readonly TierRule[]): string | undefined {
  return rules.find((rule) => rule.pattern.test(username))?.tier;
}

export type TierSource = 'override' | 'rule' | 'default';

export interface EffectiveTier {
  tier: string;
  source: TierSource;
  /** What the user would get without an override: classifier, else the default tier. */
  naturalTier: string;
}

/**
 * The user's override if any, else the first matching rule, else the default tier.
 * Names that are not known tiers are ignored, so a stale override or a rule for a
 * tier nobody created never prices a job with rates that do not exist.
 */
export function resolveEffectiveTier(input: {
  username: string;
  override: string | undefined;
  rules: readonly TierRule[];
  knownTiers: ReadonlySet<string>;
  defaultTier: string;
}): EffectiveTier {
  const known = (name: string | undefined) => (name !== undefined && input.knownTiers.has(name) ? name : undefined);
  const classified = known(
    classifyTier(
      input.username,
      input.rules.filter((rule) => input.knownTiers.has(rule.tier)),
    ),
  );
  const naturalTier = classified ?? input.defaultTier;
  const override = known(input.override);
  if (override !== undefined) return { tier: override, source: 'override', naturalTier };
  return { tier: naturalTier, source: classified !== undefined ? 'rule' : 'default', naturalTier };
}

/** Parses PRICING_TIER_RULES (a JSON list of {pattern, tier}); throws with a readable message. */
export function parseTierRules(text: string): TierRule[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error('must be a JSON list like [{"pattern":"^gov_","tier":"gov"}]');
  }
  if (!Array.isArray(parsed)) throw new Error('must be a JSON list of {"pattern","tier"} objects');
  return parsed.map((entry, index) => {
    const rule = entry as { pattern?: unknown; tier?: unknown };
    if (typeof rule?.pattern !== 'string' || typeof rule.tier !== 'string' || rule.tier.trim() === '') {
      throw new Error(`rule ${index + 1} needs a "pattern" string and a "tier" name`);
    }
    try {
      // Case-insensitive: usernames are compared as people type them.
      return { pattern: new RegExp(rule.pattern, 'i'), tier: rule.tier.trim() };
    } catch {
      throw new Error(`rule ${index + 1}: "${rule.pattern}" is not a valid regular expression`);
    }
  });
}
