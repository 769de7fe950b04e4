import { Prisma } from '@prisma/client';

/**
 * The pricing rules, as pure functions over plain data. docs/pricing.md states them
 * in words; `pricing.sql.ts` repeats the hour and cost formulas in SQL for aggregates,
 * and a test keeps the two in step.
 */

type Numeric = Prisma.Decimal | string | number | bigint;

/**
 * Exact decimal arithmetic on scaled integers: a value is `units / 10^scale`. Pricing a
 * job is a few multiplications and one rounding division, so BigInt is both exact
 * (no precision setting to outgrow) and ~50x faster than decimal.js at 60 digits,
 * which matters for a 10,000-job receipt.
 */
interface Scaled {
  units: bigint;
  scale: number;
}

const DECIMAL_TEXT = /^(-?)(\d+)(?:\.(\d+))?$/;

function toScaled(value: Numeric): Scaled {
  if (typeof value === 'bigint') return { units: value, scale: 0 };
  if (typeof value === 'number' && Number.isInteger(value)) return { units: BigInt(value), scale: 0 };
  // Prisma.Decimal and numbers in exponent form are spelled out by decimal.js first.
  const text = typeof value === 'string' && DECIMAL_TEXT.test(value) ? value : new Prisma.Decimal(value).toFixed();
  const match = DECIMAL_TEXT.exec(text);
  if (!match) throw new RangeError(`not a decimal number: ${String(value)}`);
  const fraction = match[3] ?? '';
  const units = BigInt(`${match[2]}${fraction}`);
  return { units: match[1] === '-' ? -units : units, scale: fraction.length };
}

const TEN = 10n;
const pow10 = (exponent: number) => TEN ** BigInt(exponent);

/** numerator / denominator rounded half away from zero (half-up for the non-negative amounts billed). */
function divideHalfUp(numerator: bigint, denominator: bigint): bigint {
  const isNegative = numerator < 0n !== denominator < 0n;
  const n = numerator < 0n ? -numerator : numerator;
  const d = denominator < 0n ? -denominator : denominator;
  const quotient = (n * 2n + d) / (d * 2n);
  return isNegative ? -quotient : quotient;
}

function toDecimal(units: bigint, scale: number): Prisma.Decimal {
  const isNegative = units < 0n;
  const digits = (isNegative ? -units : units).toString().padStart(scale + 1, '0');
  const text = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return new Prisma.Decimal(isNegative ? `-${text}` : text);
}

/** Hours are kept to 6 decimals, the scale receipt items store them at. */
export const HOURS_SCALE = 6;
const MICRO = pow10(HOURS_SCALE);

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

const SECONDS_PER_HOUR = 3600n;
const MB_SECONDS_PER_GB_HOUR = 1024n * 3600n;

interface MicroHours {
  cpu: bigint;
  gpu: bigint;
  mem: bigint;
}

/** Hours in millionths, each rounded half-up: the single place the hour rules live. */
function computeMicroHours(job: JobUsage, basis: CpuBasis): MicroHours {
  const elapsed = BigInt(Math.max(0, Math.trunc(job.elapsedSec)));
  let cpu: bigint;
  const cpuSource = basis === 'used' ? (job.totalCpuSec ?? job.cpuTimeSec) : null;
  if (cpuSource !== null) {
    const seconds = toScaled(cpuSource);
    cpu = divideHalfUp(seconds.units * MICRO, SECONDS_PER_HOUR * pow10(seconds.scale));
  } else {
    cpu = divideHalfUp(BigInt(Math.trunc(job.allocCpus)) * elapsed * MICRO, SECONDS_PER_HOUR);
  }
  const gpus = BigInt(Math.trunc(job.allocGpus > 0 ? job.allocGpus : Math.max(0, job.reqGpus)));
  const gpu = divideHalfUp(gpus * elapsed * MICRO, SECONDS_PER_HOUR);
  let mem: bigint;
  if (job.stepMemGbHours !== null) {
    const gbHours = toScaled(job.stepMemGbHours);
    mem = divideHalfUp(gbHours.units * MICRO, pow10(gbHours.scale));
  } else {
    const megabytes = toScaled(job.allocMemMb);
    mem = divideHalfUp(megabytes.units * elapsed * MICRO, MB_SECONDS_PER_GB_HOUR * pow10(megabytes.scale));
  }
  return { cpu, gpu, mem };
}

/** CPU core-hours, GPU-hours and memory GB-hours of one job, each rounded half-up to 6 decimals. */
export function computeResourceHours(job: JobUsage, basis: CpuBasis): ResourceHours {
  const hours = computeMicroHours(job, basis);
  return {
    cpuHours: toDecimal(hours.cpu, HOURS_SCALE),
    gpuHours: toDecimal(hours.gpu, HOURS_SCALE),
    memGbHours: toDecimal(hours.mem, HOURS_SCALE),
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

/** `units / 10^scale` rounded half-up to `digits` decimals, still in units of 10^-digits. */
function roundScaled(value: Scaled, digits: number): bigint {
  if (value.scale <= digits) return value.units * pow10(digits - value.scale);
  return divideHalfUp(value.units, pow10(value.scale - digits));
}

/** Rounds half-up (away from zero for the non-negative amounts billed here) to the currency's minor unit. */
export function roundMoney(amount: Numeric, currency: string): Prisma.Decimal {
  const digits = minorUnitDigits(currency);
  return toDecimal(roundScaled(toScaled(amount), digits), digits);
}

interface ScaledRates {
  cpu: bigint;
  gpu: bigint;
  mem: bigint;
  /** All three rates are in units of 10^-scale. */
  scale: number;
  digits: number;
}

function scaleRates(rates: Rates): ScaledRates {
  const parts = [toScaled(rates.cpu), toScaled(rates.gpu), toScaled(rates.mem)];
  const scale = Math.max(...parts.map((part) => part.scale));
  const [cpu, gpu, mem] = parts.map((part) => part.units * pow10(scale - part.scale)) as [bigint, bigint, bigint];
  return { cpu, gpu, mem, scale, digits: minorUnitDigits(rates.currency) };
}

function costOf(hours: MicroHours, rates: ScaledRates): Prisma.Decimal {
  const raw = hours.cpu * rates.cpu + hours.gpu * rates.gpu + hours.mem * rates.mem;
  return toDecimal(roundScaled({ units: raw, scale: HOURS_SCALE + rates.scale }, rates.digits), rates.digits);
}

/** The cost of one job: cpu_h x cpu + gpu_h x gpu + mem_h x mem, rounded once, half-up, to the minor unit. */
export function priceHours(hours: ResourceHours, rates: Rates): Prisma.Decimal {
  const micro = {
    cpu: roundScaled(toScaled(hours.cpuHours), HOURS_SCALE),
    gpu: roundScaled(toScaled(hours.gpuHours), HOURS_SCALE),
    mem: roundScaled(toScaled(hours.memGbHours), HOURS_SCALE),
  };
  return costOf(micro, scaleRates(rates));
}

/** A receipt total: the sum of its already rounded items, so the items always add up to it. */
export function sumCosts(costs: Iterable<Prisma.Decimal>): Prisma.Decimal {
  let scale = 0;
  const parts: Scaled[] = [];
  for (const cost of costs) {
    const part = toScaled(cost);
    parts.push(part);
    scale = Math.max(scale, part.scale);
  }
  let total = 0n;
  for (const part of parts) total += part.units * pow10(scale - part.scale);
  return toDecimal(total, scale);
}

export interface PricedJob extends ResourceHours {
  cost: Prisma.Decimal;
}

/** A pricer for many jobs at the same rates (the rates are parsed once). */
export function createJobPricer(rates: Rates, basis: CpuBasis): (job: JobUsage) => PricedJob {
  const scaled = scaleRates(rates);
  return (job) => {
    const hours = computeMicroHours(job, basis);
    return {
      cpuHours: toDecimal(hours.cpu, HOURS_SCALE),
      gpuHours: toDecimal(hours.gpu, HOURS_SCALE),
      memGbHours: toDecimal(hours.mem, HOURS_SCALE),
      cost: costOf(hours, scaled),
    };
  };
}

/** Hours and cost of one job at the given rates. */
export function priceJob(job: JobUsage, rates: Rates, basis: CpuBasis): PricedJob {
  return createJobPricer(rates, basis)(job);
}

/**
 * Said after an unknown tier typed in capitals (`Private`): tier names are lower case (ZNewTierName),
 * and a name is read as written, not in lower case as a username is, since nothing in the database
 * keeps them so (a tier added by SQL may be called `Private`, beside `private`). `known` are the
 * tiers' names; the tier the name is in lower case is named. Empty for a name without capitals, and
 * when a tier's name has some (then tier names are not all lower case).
 */
export function tierNameCaseNote(name: string, known: Iterable<string>): string {
  const names = [...known];
  const lower = name.toLowerCase();
  if (name === lower || names.some((tier) => tier !== tier.toLowerCase())) return '';
  const tier = names.includes(lower) ? ` (the tier is called ${lower})` : '';
  return `: tier names are lower case and read as written${tier}`;
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
    // Loaded by a shell (`set -a && . /etc/hpc-billing/env`, an unquoted `export`), the JSON's double
    // quotes are gone, and the refusal did not show the value: the file looked right to whoever read it.
    const quotesLost = /[{[]/.test(text) && !text.includes('"');
    throw new Error(
      `must be a JSON list like [{"pattern":"^gov_","tier":"gov"}] (got ${JSON.stringify(text)})${
        quotesLost
          ? `: its double quotes are gone, as a shell removes them from a value not in single quotes; in a shell write PRICING_TIER_RULES='[{"pattern":"^gov_","tier":"gov"}]', and load an env file with node --env-file, systemd's EnvironmentFile or Compose, which keep them (not with ". file")`
          : ''
      }`,
    );
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
