import { formatZonedTimeSeconds } from '../../shared/local-date.js';
import { SlurmParseError, truncate } from './slurm-time.parser.js';

/**
 * The one job model every source produces, mapped 1:1 onto the `slurm_jobs` table.
 * Sums over steps are computed here so sacct and slurmrestd records agree by construction.
 */

export interface NormalizedStep {
  /** `batch`, `extern`, `interactive` or an srun step number, without the job part. */
  id: string;
  name: string;
  state: string;
  elapsedSec: number;
  /** User + system CPU time of the step (sacct TotalCPU). */
  totalCpuSec: number;
  aveRssBytes: number | null;
  maxRssBytes: number | null;
  energyJoules: number | null;
}

export interface NormalizedJob {
  cluster: string;
  /** JobIDRaw: unique per cluster, also for array tasks and heterogeneous components. */
  jobId: string;
  /** The parent display id without step suffix: `123`, `123_4`, `123+0`. */
  jobKey: string;
  arrayJobId: string | null;
  arrayTaskId: string | null;
  name: string;
  user: string;
  account: string;
  partition: string;
  qos: string;
  state: string;
  isTerminal: boolean;
  /**
   * sacct's `1:0` (return code:signal); null where the source cannot say. slurmrestd 22.05
   * (v0.0.36-38) reports `SUCCESS`/0 for failed jobs, at job and step level, so it gives null,
   * and the upsert keeps the exit code another source stored (ingestion.repository.ts).
   */
  exitCode: string | null;
  submitAt: Date | null;
  startAt: Date | null;
  endAt: Date | null;
  elapsedSec: number;
  timelimitSec: number | null;
  allocCpus: number;
  allocMemMb: number;
  allocGpus: number;
  allocNodes: number;
  allocBilling: number | null;
  reqCpus: number;
  reqMemMb: number;
  reqGpus: number;
  allocTres: string;
  reqTres: string;
  /** CPUTimeRAW: allocated CPUs x elapsed seconds. */
  cpuTimeSec: number | null;
  totalCpuSec: number | null;
  /**
   * Sum over steps of AveRSS (GiB) x step elapsed (hours), as decimal text rounded half-up to 6
   * decimals (what numeric(18, 6) stores): memory usage is billed, and money is never a float.
   */
  stepMemGbHours: string | null;
  maxRssBytes: number | null;
  energyJoules: number | null;
  stepCount: number;
  steps: NormalizedStep[];
  nodeList: string;
  /**
   * What the sacct output the job was read from has no column for (an older `--format`), so was read as
   * none: undefined when it has them all, as slurmrestd's answer always does. Not stored: the run's
   * notes say it.
   */
  missingColumns?: MissingBillingColumns | undefined;
}

/**
 * Billing figures an sacct output's columns cannot give: `gpus`, without AllocTRES and ReqTRES (no GPU
 * is read, so none is billed); `allocCpus`, without AllocTRES and AllocCPUS (no allocated CPU is).
 */
export interface MissingBillingColumns {
  readonly gpus: boolean;
  readonly allocCpus: boolean;
}

/**
 * What a source yields: a job, or a record it had to skip (with where and why). A skip names the job
 * it is of as its row would be keyed (`job`: cluster and JobIDRaw, jobRowKey) when the source could
 * read them, so that the run counts a job once, and as stored when another record of it was.
 */
export type SourceItem =
  | { kind: 'job'; job: NormalizedJob; line: number }
  | {
      kind: 'skip';
      line: number;
      jobId: string | null;
      reason: string;
      job?: SkippedJob;
      /**
       * Which output `line` counts in, where a read is several (sacct's one a day over a long window,
       * each numbered from its own header): "sacct's output for <start> .. <end>".
       */
      output?: string;
    };

/** The cluster and JobIDRaw of a skipped record's job, as its row would have them. */
export interface SkippedJob {
  cluster: string;
  jobId: string;
}

/** Byte-seconds in one GiB-hour. */
const BYTE_SECONDS_PER_GIB_HOUR = 1024n ** 3n * 3600n;
/** step_mem_gb_hours is numeric(18, 6): millionths of a GiB-hour. */
const MEM_HOURS_SCALE = 6;
const MICRO = 10n ** BigInt(MEM_HOURS_SCALE);

/**
 * AveRSS x elapsed summed over the steps, in GiB-hours rounded half-up to 6 decimals, as decimal
 * text. Summed exactly, in whole byte-seconds, and divided once: summed as floats in GiB-hours and
 * rounded with Math.round, a sum on a half millionth (AveRSS 3637248K for 60 s is 0.0578125 GiB-hours)
 * was stored, and billed, as 0.057812 rather than 0.057813. Steps without an AveRSS add nothing.
 */
export function sumStepMemGbHours(steps: readonly Pick<NormalizedStep, 'id' | 'aveRssBytes' | 'elapsedSec'>[]): string {
  let byteSeconds = 0n;
  for (const step of steps) {
    if (step.aveRssBytes === null) continue;
    byteSeconds +=
      wholeNumber(step.aveRssBytes, `step ${step.id}: AveRSS`, 'bytes') *
      wholeNumber(step.elapsedSec, `step ${step.id}: elapsed`, 'seconds');
  }
  const micro = (byteSeconds * MICRO * 2n + BYTE_SECONDS_PER_GIB_HOUR) / (BYTE_SECONDS_PER_GIB_HOUR * 2n);
  const digits = micro.toString().padStart(MEM_HOURS_SCALE + 1, '0');
  return `${digits.slice(0, -MEM_HOURS_SCALE)}.${digits.slice(-MEM_HOURS_SCALE)}`;
}

/** A figure summed exactly: a whole number that a double holds exactly, or a SlurmParseError. */
function wholeNumber(value: number, what: string, unit: string): bigint {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new SlurmParseError(
      `${what} is not a whole number of ${unit} from 0 to ${Number.MAX_SAFE_INTEGER}: ${value}`,
    );
  }
  return BigInt(value);
}

/**
 * Fills the step sums of a job from its steps: total CPU, AveRSS GB x elapsed hours,
 * peak RSS and energy. A job without steps keeps what its own row said.
 *
 * A job none of whose steps has an AveRSS has no memory figure (null), which pricing reads from the
 * allocation (docs/pricing.md), not a sum of nothing: Slurm samples memory every
 * JobAcctGatherFrequency (30 s by default), so a step that ends before its first sample has none (the
 * lab's 3 s job 3: sacct AveRSS empty, slurmrestd no mem), and under jobacct_gather/none no step has one.
 * Summed to 0, every such job was billed no memory at all.
 */
export function foldSteps(job: NormalizedJob, steps: NormalizedStep[]): NormalizedJob {
  if (steps.length === 0) return job;
  let totalCpuSec = 0;
  let maxRss: number | null = null;
  let energy: number | null = null;
  for (const step of steps) {
    totalCpuSec += step.totalCpuSec;
    if (step.maxRssBytes !== null) maxRss = Math.max(maxRss ?? 0, step.maxRssBytes);
    if (step.energyJoules !== null) energy = (energy ?? 0) + step.energyJoules;
  }
  return {
    ...job,
    totalCpuSec: roundTo(totalCpuSec, 3),
    stepMemGbHours: steps.some((step) => step.aveRssBytes !== null) ? sumStepMemGbHours(steps) : null,
    maxRssBytes: maxRss,
    energyJoules: job.energyJoules ?? energy,
    stepCount: steps.length,
    steps,
  };
}

/**
 * The job as read, with the steps an earlier read of the same run of it stored that this read lacks,
 * its step figures folded from the merged set. slurmdbd returns with a job only the steps that overlap
 * the window asked (`as_mysql_jobacct_process.c`: `time_start <= end && (time_end >= start || still
 * running)`, for sacct's -S/-E and slurmrestd's start_time/end_time alike), and a read used to replace
 * a job's steps: the first `srun` of a long job, ended before the window of the job's end, was in no
 * read of it then, and its CPU time and memory were never billed. Steps are matched by id; the read's
 * version wins for the steps it has (a step read running is read again once it ends, its window
 * overlapping the next). A read that has every earlier step is returned as it is.
 *
 * The job's own energy is kept as read: Slurm's job record gives it whole, and it is not billed.
 */
export function keepEarlierSteps(job: NormalizedJob, earlier: readonly NormalizedStep[]): NormalizedJob {
  const read = new Map(job.steps.map((step) => [step.id, step]));
  if (earlier.every((step) => read.has(step.id))) return job;
  const known = new Set(earlier.map((step) => step.id));
  // The earlier order first (Slurm's: batch, extern, 0, 1, ...), then the steps new to this read.
  const merged = [
    ...earlier.map((step) => read.get(step.id) ?? step),
    ...job.steps.filter((step) => !known.has(step.id)),
  ];
  const folded = foldSteps(job, merged);
  // Steps read without their CPU time (sacct output without a TotalCPU column: the parser leaves the job's
  // null) sum to 0 here; the job's CPU time stays unknown, priced from CPUTimeRAW, not billed as none.
  return job.totalCpuSec === null && job.steps.length > 0 ? { ...folded, totalCpuSec: null } : folded;
}

/**
 * The steps of a stored row (its `steps` jsonb, NormalizedStep as written), or null when they are not
 * in that shape (then nothing is merged: the read is stored as it is, as before).
 */
export function readStoredSteps(value: unknown): NormalizedStep[] | null {
  if (!Array.isArray(value)) return null;
  const isCount = (field: unknown) => field === null || (typeof field === 'number' && Number.isFinite(field));
  for (const step of value) {
    if (typeof step !== 'object' || step === null) return null;
    const s = step as Record<string, unknown>;
    if (typeof s.id !== 'string' || typeof s.name !== 'string' || typeof s.state !== 'string') return null;
    if (typeof s.elapsedSec !== 'number' || typeof s.totalCpuSec !== 'number') return null;
    if (!isCount(s.aveRssBytes) || !isCount(s.maxRssBytes) || !isCount(s.energyJoules)) return null;
  }
  return (value as NormalizedStep[]).map((step) => ({
    id: step.id,
    name: step.name,
    state: step.state,
    elapsedSec: step.elapsedSec,
    totalCpuSec: step.totalCpuSec,
    aveRssBytes: step.aveRssBytes,
    maxRssBytes: step.maxRssBytes,
    energyJoules: step.energyJoules,
  }));
}

/** A stored row as the step merge needs it: which job and run it holds, and its steps. */
export interface StoredRun {
  cluster: string;
  jobId: string;
  submitAt: Date | null;
  startAt?: Date | null;
  endAt?: Date | null;
  state?: string;
  steps?: unknown;
}

/**
 * Each record of a batch (already under the id it is stored as, assignStoredIds) with the steps
 * earlier reads of the same run saw (keepEarlierSteps): the stored row's, and those of the batch's
 * earlier records of the job (a job that overlaps two slices of a window comes in both, each with its
 * own steps, and the upsert writes the last). A requeued job's new run is not its earlier run
 * (isSameRun): its row's steps are the run that is not billed, and are dropped as before.
 */
export function keepStepsOfEarlierReads(
  jobs: readonly NormalizedJob[],
  stored: readonly StoredRun[],
  isSameRun: (earlier: StoredRun, record: NormalizedJob) => boolean,
): NormalizedJob[] {
  const latest = new Map<string, { run: StoredRun; steps: readonly NormalizedStep[] | null }>();
  for (const row of stored) {
    // A row found by its key alone comes without steps (findStoredIdentities); the same row by JobIDRaw has them.
    if (row.steps !== undefined)
      latest.set(`${row.cluster}\u0000${row.jobId}`, { run: row, steps: readStoredSteps(row.steps) });
  }
  return jobs.map((job) => {
    const key = `${job.cluster}\u0000${job.jobId}`;
    const earlier = latest.get(key);
    const merged = earlier?.steps && isSameRun(earlier.run, job) ? keepEarlierSteps(job, earlier.steps) : job;
    latest.set(key, { run: job, steps: merged.steps });
    return merged;
  });
}

/** Rounds half away from zero to `digits` decimals (what numeric(18,digits) stores). */
export function roundTo(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

export interface JobKeyParts {
  /** The parent display id: `123`, `123_4`, `123+0`. */
  jobKey: string;
  /** `batch`, `0`, ... when the id names a step, else null. */
  stepId: string | null;
  arrayJobId: string | null;
  arrayTaskId: string | null;
  hetJobId: string | null;
  hetOffset: string | null;
}

// A step may end in `+<component>`: a heterogeneous step (`srun ... : ...`, one line per component,
// seen on the lab: `53.0+0`), which Slurm 20.11+ runs in any allocation. Refused as "not a Slurm job
// id", such a step was skipped, its usage left out of its job's sums, and the run called partial.
const JOB_ID = /^(\d+)(?:_(\d+|\[[^\]]*\]))?(?:\+(\d+))?(?:\.([A-Za-z0-9_-]+(?:\+\d+)?))?$/;

/**
 * Splits a Slurm display id: `123`, `123.batch`, `123.0`, `123_4`, `123_4.extern`,
 * `123_[1-3]` (pending array), `123+0`, `123+1.0`, `123.0+1` (a component of a heterogeneous step).
 * Returns null for anything else.
 */
export function parseJobId(text: string): JobKeyParts | null {
  const match = JOB_ID.exec(text.trim());
  if (!match) return null;
  const [, base, arrayTask, hetOffset, step] = match as unknown as [string, string, string?, string?, string?];
  let jobKey = base;
  if (arrayTask !== undefined) jobKey += `_${arrayTask}`;
  if (hetOffset !== undefined) jobKey += `+${hetOffset}`;
  return {
    jobKey,
    stepId: step ?? null,
    arrayJobId: arrayTask !== undefined ? base : null,
    arrayTaskId: arrayTask ?? null,
    hetJobId: hetOffset !== undefined ? base : null,
    hetOffset: hetOffset ?? null,
  };
}

const INT32_MAX = 2_147_483_647;
const TEXT_LIMITS: [keyof NormalizedJob, number][] = [
  ['cluster', 64],
  ['jobId', 32],
  ['jobKey', 48],
  ['arrayJobId', 32],
  ['arrayTaskId', 32],
  ['user', 64],
  ['account', 64],
  ['partition', 64],
  ['qos', 64],
  ['state', 32],
  ['exitCode', 16],
];
const INT_FIELDS: (keyof NormalizedJob)[] = [
  'elapsedSec',
  'timelimitSec',
  'allocCpus',
  'allocGpus',
  'allocNodes',
  'reqCpus',
  'reqGpus',
  'stepCount',
];
/**
 * Each number's column (prisma/schema.prisma): numeric(18, s) holds a value that, rounded to s
 * decimals as it is written, is below 10^(18 - s); a bigint is bounded at 10^15, beyond any real value.
 * One bound for all (10^15) let an alloc_billing between 10^14 and 10^15 through to numeric(18, 4),
 * which refused it, and with it the whole batch of 2,000 jobs, with a database error.
 */
const NUMBER_COLUMNS: [field: keyof NormalizedJob, scale: number, type: string][] = [
  ['allocMemMb', 3, 'numeric(18, 3)'],
  ['reqMemMb', 3, 'numeric(18, 3)'],
  ['allocBilling', 4, 'numeric(18, 4)'],
  ['cpuTimeSec', 0, 'bigint'],
  ['totalCpuSec', 3, 'numeric(18, 3)'],
  ['maxRssBytes', 0, 'bigint'],
  ['energyJoules', 0, 'bigint'],
];
const BIGINT_BOUND = 1e15;

/** The bound a value of a column must stay below once rounded as it is written. */
function columnBound(scale: number, type: string): number {
  return type === 'bigint' ? BIGINT_BOUND : 10 ** (18 - scale);
}

/**
 * The most hours of one resource a job may bill: a million cores for a thousand hours, beyond any
 * real job. Pricing multiplies them by a rate of up to 1,000,000 into a receipt item's
 * numeric(20, 4), which three resources at this bound still fit; a job past it (each of its values
 * fitting its own column) made every receipt of its user fail with a numeric overflow.
 */
export const MAX_JOB_RESOURCE_HOURS = 1_000_000_000;

/** The most hours a job may bill of each resource, under either CPU basis, as float bounds. */
function findResourceHoursProblem(job: NormalizedJob): string | null {
  const elapsedHours = Math.max(0, job.elapsedSec) / 3600;
  const cpuHours = Math.max(job.allocCpus * elapsedHours, (job.totalCpuSec ?? 0) / 3600, (job.cpuTimeSec ?? 0) / 3600);
  const gpuHours = Math.max(job.allocGpus, job.reqGpus) * elapsedHours;
  const memGbHours = Math.max((job.allocMemMb / 1024) * elapsedHours, Number(job.stepMemGbHours ?? 0));
  for (const [name, hours] of [
    ['CPU core-hours', cpuHours],
    ['GPU-hours', gpuHours],
    ['memory GB-hours', memGbHours],
  ] as const) {
    if (hours > MAX_JOB_RESOURCE_HOURS) return `${name} are more than ${MAX_JOB_RESOURCE_HOURS}: ${Math.round(hours)}`;
  }
  return null;
}

/**
 * Why a job cannot be stored as is (a value too long or too large for its column, or hours too
 * many to price), or null. Checked before a batch is written, so one bad record never fails a
 * whole batch.
 */
export function findStorageProblem(job: NormalizedJob): string | null {
  for (const [field, limit] of TEXT_LIMITS) {
    const value = job[field];
    if (typeof value === 'string' && value.length > limit) return `${field} is longer than ${limit} characters`;
  }
  for (const field of INT_FIELDS) {
    const value = job[field];
    if (value !== null && (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > INT32_MAX)) {
      return `${field} is not a whole number between 0 and ${INT32_MAX}: ${value}`;
    }
  }
  for (const [field, scale, type] of NUMBER_COLUMNS) {
    const value = job[field];
    if (value === null) continue;
    const bound = columnBound(scale, type);
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || roundTo(value, scale) >= bound) {
      return `${field} is out of range (0 to below ${bound}, ${type}): ${value}`;
    }
  }
  const memory = job.stepMemGbHours;
  // Decimal text with at most 6 decimals (sumStepMemGbHours): numeric(18, 6) holds it below 10^12.
  if (memory !== null && !/^\d{1,12}(?:\.\d{1,6})?$/.test(memory.replace(/^0+(?=\d)/, ''))) {
    return `stepMemGbHours is out of range (0 to below ${10 ** 12}, numeric(18, 6)): ${truncate(memory)}`;
  }
  return findResourceHoursProblem(job);
}

/**
 * Why a job's times contradict each other (End before Start), or null. Such a job is stored
 * and billed all the same, with a warning: billing uses the elapsed and CPU time Slurm
 * measured, not End - Start, and real jobs look like this in sacct's local times when they
 * span the repeated hour at the end of summer time (both times in it get the same reading, the one
 * sacct's mktime gives: New York's earlier, Berlin's later).
 * Its times are named in `timeZone` (APP_TZ), to the second.
 */
export function findTimeProblem(job: Pick<NormalizedJob, 'startAt' | 'endAt'>, timeZone: string): string | null {
  if (job.startAt !== null && job.endAt !== null && job.endAt < job.startAt) {
    // Read on the admin page and in `npm run ingest`'s summary: in APP_TZ, as pages give times.
    return `End ${formatZonedTimeSeconds(job.endAt, timeZone)} is before Start ${formatZonedTimeSeconds(job.startAt, timeZone)}`;
  }
  return null;
}
