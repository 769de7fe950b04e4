import { Prisma } from '@prisma/client';
import type { CpuBasis } from './pricing.js';
import type { RateTableRow } from './rates.service.js';

/**
 * The pricing formulas of pricing.ts in SQL, for aggregates, exports and receipts that
 * must not load every job into Node. Same inputs, same 6-decimal hours, same half-up
 * rounding (PostgreSQL's round() on numeric rounds half away from zero, which is
 * half-up for the non-negative amounts here); test/integration/usage.service.test.ts
 * and test/integration/receipts.service.test.ts check both give identical numbers.
 * Expects the job as `j` and the rates as `r`.
 */
export function cpuHoursSql(basis: CpuBasis): Prisma.Sql {
  const allocated = Prisma.sql`j.alloc_cpus::numeric * greatest(j.elapsed_sec, 0)`;
  if (basis === 'allocated') return Prisma.sql`round(${allocated} / 3600, 6)`;
  return Prisma.sql`round(coalesce(j.total_cpu_sec, j.cpu_time_sec::numeric, ${allocated}) / 3600, 6)`;
}

/**
 * A job without GPUs (most of them) gets 0, with the formula's 6 decimals, without numeric
 * arithmetic. With the memory formula's change below, the admin's usage over a year of
 * 1,000,000 jobs went from 2.69-2.90 to 2.34-2.65 s of one backend's CPU (docs/performance.md,
 * "Admin usage over a year").
 */
export const GPU_HOURS_SQL = Prisma.sql`(CASE WHEN j.alloc_gpus <= 0 AND j.req_gpus <= 0 THEN 0.000000 ELSE round(
  (CASE WHEN j.alloc_gpus > 0 THEN j.alloc_gpus ELSE greatest(j.req_gpus, 0) END)::numeric
  * greatest(j.elapsed_sec, 0) / 3600, 6) END)`;

/**
 * step_mem_gb_hours is stored with 6 decimals (numeric(18,6)), so rounding it to 6 changes
 * nothing: only the estimate from the allocation is rounded, which spares most jobs a rounding.
 */
export const MEM_GB_HOURS_SQL = Prisma.sql`coalesce(j.step_mem_gb_hours,
  round(j.alloc_mem_mb * greatest(j.elapsed_sec, 0) / 3686400, 6))`;

/**
 * Cost of one job at the rates `r`, rounded half-up to `pricedDigits` (the currency's minor unit,
 * or fewer where the payment provider charges it in a coarser step) and written to `minorDigits`.
 */
export function costSql(basis: CpuBasis, minorDigits: number, pricedDigits = minorDigits): Prisma.Sql {
  return costOfHoursSql(cpuHoursSql(basis), GPU_HOURS_SQL, MEM_GB_HOURS_SQL, Prisma.sql`r`, minorDigits, pricedDigits);
}

/**
 * The same cost from hours already computed (rounded to 6 decimals as above) and a row
 * `rates` holding cpu, gpu and mem: lets a query compute each job's hours once.
 */
export function costOfHoursSql(
  cpuHours: Prisma.Sql,
  gpuHours: Prisma.Sql,
  memGbHours: Prisma.Sql,
  rates: Prisma.Sql,
  minorDigits: number,
  pricedDigits = minorDigits,
): Prisma.Sql {
  const cost = Prisma.sql`round(
    ${cpuHours} * ${rates}.cpu + ${gpuHours} * ${rates}.gpu + ${memGbHours} * ${rates}.mem,
    ${Prisma.raw(String(Math.trunc(Math.min(pricedDigits, minorDigits))))})`;
  // 12.35 KWD priced in Stripe's step is still written 12.350, as every KWD amount is.
  return pricedDigits < minorDigits ? Prisma.sql`round(${cost}, ${Prisma.raw(String(Math.trunc(minorDigits)))})` : cost;
}

/** A `rates` CTE body: `SELECT username, tier, cpu, gpu, mem` from arrays bound as parameters. */
export function rateTableSql(rows: RateTableRow[]): Prisma.Sql {
  return Prisma.sql`SELECT * FROM unnest(
    ${rows.map((row) => row.username)}::text[],
    ${rows.map((row) => row.tier)}::text[],
    ${rows.map((row) => row.cpu.toFixed())}::numeric[],
    ${rows.map((row) => row.gpu.toFixed())}::numeric[],
    ${rows.map((row) => row.mem.toFixed())}::numeric[]) AS t(username, tier, cpu, gpu, mem)`;
}
