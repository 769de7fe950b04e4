import {
  foldSteps,
  type NormalizedJob,
  type NormalizedStep,
  roundTo,
  type SkippedJob,
  type SourceItem,
} from './slurm-job.model.js';
import {
  formatTresText,
  isTerminalState,
  MAX_LOGGED_JOB_ID,
  normalizeClusterName,
  normalizeState,
  SlurmParseError,
  type TresMap,
  truncate,
} from './slurm-time.parser.js';

/**
 * The slurmdbd API versions this parser reads, oldest first: Slurm 22.05 (36-38), 23.02-24.11 (39-42),
 * 25.05 (43), 25.11 (44) and 26.05 (45). v0.0.43 to v0.0.45 changed nothing billing reads (docs/ingestion.md).
 */
export const SUPPORTED_API_VERSIONS = [
  'v0.0.36',
  'v0.0.37',
  'v0.0.38',
  'v0.0.39',
  'v0.0.40',
  'v0.0.41',
  'v0.0.42',
  'v0.0.43',
  'v0.0.44',
  'v0.0.45',
];

export type TApiVersion = (typeof SUPPORTED_API_VERSIONS)[number];

export interface SlurmRestParseOptions {
  version: string;
  /** Used when a record has no cluster. */
  defaultCluster: string;
}

export interface SlurmRestError {
  errorNumber: number | null;
  error: string;
  description: string;
  source: string;
}

export interface SlurmRestJobsResponse {
  items: SourceItem[];
  errors: SlurmRestError[];
  warnings: string[];
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * A number as any API version prints it: a plain number, null, or (v0.0.39+) the
 * `{set, infinite, number}` no-value struct. Unset gives null, infinite gives Infinity.
 */
export function readNoValNumber(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new SlurmParseError(`not a finite number: ${value}`);
    return value;
  }
  if (isObject(value)) {
    if (value.infinite === true) return Number.POSITIVE_INFINITY;
    if (value.set === false) return null;
    return readNoValNumber(value.number);
  }
  throw new SlurmParseError(`expected a number, got ${preview(value)}`);
}

/** A JSON value in a message, cut short (a string's own text is not repeated whole). */
function preview(value: unknown, max = 60): string {
  if (typeof value === 'string') return JSON.stringify(truncate(value, max));
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return truncate(JSON.stringify(value) ?? String(value), max);
}

function readString(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  throw new SlurmParseError(`expected a string, got ${preview(value)}`);
}

/**
 * The state flags Slurm's job_state_string (sacct, and 22.05's slurmrestd) prints instead of the base
 * state, in its order. slurmdbd keeps a run superseded by a requeue as the REQUEUED flag alone (and a
 * resized job's earlier record as RESIZING): data_parser v0.0.39+ prints that base first,
 * `["PENDING", "REQUEUED"]`.
 */
const STATE_FLAGS_FIRST = [
  'COMPLETING',
  'STAGE_OUT',
  'CONFIGURING',
  'RESIZING',
  'REQUEUED',
  'REQUEUE_FED',
  'REQUEUE_HOLD',
  'SPECIAL_EXIT',
  'STOPPED',
  'REVOKED',
  'RESV_DEL_HOLD',
  'SIGNALING',
];

/**
 * A state as `"COMPLETED"` (v0.0.36-38) or `["COMPLETED"]` (v0.0.39+, its flags after it), read as sacct
 * prints the same record: a flag job_state_string puts first, else the base state. The base alone read a
 * superseded requeued run as PENDING, so it was stored, not passed over as REQUEUED: beside the job's
 * finished run as another job (`21@<submit>`), pending for good.
 */
function readState(value: unknown): string {
  if (!Array.isArray(value)) return normalizeState(readString(value));
  const states = value.map((entry) => normalizeState(readString(entry)));
  return STATE_FLAGS_FIRST.find((flag) => states.includes(flag)) ?? states[0] ?? '';
}

/** An epoch-seconds timestamp; 0 and unset mean "not yet" (RUNNING has end 0, PENDING start 0). */
function readEpoch(value: unknown): Date | null {
  const seconds = readNoValNumber(value);
  if (seconds === null || seconds <= 0 || seconds === Number.POSITIVE_INFINITY) return null;
  if (seconds > MAX_EPOCH_SECONDS) throw new SlurmParseError(`timestamp out of range: ${seconds}`);
  return new Date(seconds * 1000);
}

// 9999-12-31T23:59:59Z: anything later is not a time Slurm could have recorded.
const MAX_EPOCH_SECONDS = 253_402_300_799;

/** A count or duration that cannot be negative (elapsed seconds, TRES counts). */
function readNonNegative(value: unknown, what: string): number | null {
  const number = readNoValNumber(value);
  if (number !== null && (number < 0 || number > Number.MAX_SAFE_INTEGER)) {
    throw new SlurmParseError(`${what} is not a non-negative number: ${number}`);
  }
  return number;
}

/**
 * `{seconds, microseconds}` in seconds, cut to milliseconds as sacct prints TotalCPU, so both
 * sources sum to the same figure. Slurm 22.05 does not normalise microseconds (1554372 us is seen).
 */
function readCpuTime(value: unknown): number {
  if (!isObject(value)) return 0;
  const micros =
    (readNonNegative(value.seconds, 'CPU seconds') ?? 0) * 1e6 +
    (readNonNegative(value.microseconds, 'CPU microseconds') ?? 0);
  return Math.floor(Math.round(micros) / 1000) / 1000;
}

interface TresEntry {
  type: string;
  name: string;
  count: number | null;
}

function readTresList(value: unknown): TresEntry[] {
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value)) throw new SlurmParseError('a TRES list is not an array');
  return value.map((entry) => {
    if (!isObject(entry)) throw new SlurmParseError('a TRES entry is not an object');
    const type = readString(entry.type);
    // data_parser v0.0.39+ prints an unset count (NO_VAL64) as a signed 64-bit number, -2: the energy
    // TRES of every job on a cluster without energy accounting (22.05 printed null). Refused as
    // negative, it made each such job a skipped record, never billed.
    const count = entry.count === UNSET_TRES_COUNT ? null : readNonNegative(entry.count, `TRES ${type}`);
    return { type, name: readString(entry.name), count };
  });
}

/** Slurm's NO_VAL (0xfffffffe): how a 32-bit number that is not set may be printed. */
const SLURM_NO_VAL = 0xfffffffe;

/** NO_VAL64 (0xfffffffffffffffe) read as int64: how data_parser v0.0.39+ prints a TRES count that is not set. */
const UNSET_TRES_COUNT = -2;

function tresKey(entry: TresEntry): string {
  return entry.name ? `${entry.type}/${entry.name}` : entry.type;
}

/** A TRES list as the one spelling every source stores (formatTresText): `billing=1,cpu=1,mem=200M,node=1`. */
function formatTres(entries: TresEntry[]): string {
  const tres: TresMap = new Map();
  // Memory counts are in MB, which formatTresText reads a bare number as.
  for (const entry of entries) if (entry.count !== null) tres.set(tresKey(entry), String(entry.count));
  return formatTresText(tres);
}

function summarize(entries: TresEntry[]) {
  const count = (type: string) => entries.find((entry) => entry.type === type && !entry.name)?.count ?? null;
  const gpuEntries = entries.filter((entry) => entry.type === 'gres');
  const untyped = gpuEntries.find((entry) => entry.name === 'gpu');
  const gpus = untyped
    ? (untyped.count ?? 0)
    : gpuEntries.filter((entry) => entry.name.startsWith('gpu:')).reduce((sum, entry) => sum + (entry.count ?? 0), 0);
  return {
    cpus: count('cpu') ?? 0,
    memMb: count('mem') ?? 0,
    nodes: count('node') ?? 0,
    billing: count('billing'),
    gpus,
  };
}

function memFrom(list: unknown): number | null {
  const entry = readTresList(list).find((candidate) => candidate.type === 'mem');
  return entry?.count ?? null;
}

/** `"batch"`, `0`, or (v0.0.39+) `"123.batch"` / `"123+0.0"`: the part after the job. */
function readStepId(value: unknown): string {
  const text = readString(value);
  const dot = text.indexOf('.');
  return dot >= 0 ? text.slice(dot + 1) : text;
}

function readStep(step: unknown): NormalizedStep {
  if (!isObject(step)) throw new SlurmParseError('a step is not an object');
  const time = isObject(step.time) ? step.time : {};
  const info = isObject(step.step) ? step.step : {};
  const tres = isObject(step.tres) ? step.tres : {};
  // steps[].tres.requested.* is TRESUsageIn* (AveRSS/MaxRSS), in bytes.
  const usage = isObject(tres.requested) ? tres.requested : {};
  const statistics = isObject(step.statistics) ? step.statistics : {};
  const energy = isObject(statistics.energy) ? readNoValNumber(statistics.energy.consumed) : null;
  let id = readStepId(info.id);
  if (id === '') throw new SlurmParseError('a step without an id');
  // A component of a heterogeneous step: sacct prints `53.0+0`, v0.0.39+ `step.id` "53.0+0", but
  // v0.0.36-38 the bare number with `step.het.component` beside it (seen on the lab).
  const component = isObject(info.het) ? readNoValNumber(info.het.component) : null;
  const isComponent = component !== null && Number.isInteger(component) && component >= 0 && component < SLURM_NO_VAL;
  if (isComponent && !id.includes('+')) id = `${id}+${component}`;
  return {
    id,
    name: readString(info.name),
    state: readState(step.state),
    elapsedSec: readNonNegative(time.elapsed, 'step elapsed') ?? 0,
    totalCpuSec: readCpuTime(time.total),
    aveRssBytes: memFrom(usage.average),
    maxRssBytes: memFrom(usage.max),
    energyJoules: energy === Number.POSITIVE_INFINITY ? null : energy,
  };
}

/**
 * Exit code as sacct prints it (`1:0`). Only v0.0.39+ report it reliably: 22.05 says SUCCESS for
 * FAILED jobs, so those versions give null, and the upsert keeps what sacct stored.
 */
function readExitCode(value: unknown, isLegacy: boolean): string | null {
  if (isLegacy || !isObject(value)) return null;
  const code = readNoValNumber(value.return_code);
  const signal = isObject(value.signal) ? readNoValNumber(value.signal.id) : 0;
  if (code === null || code === Number.POSITIVE_INFINITY) return null;
  return `${code}:${signal === null || signal === Number.POSITIVE_INFINITY ? 0 : signal}`;
}

function versionNumber(version: string): number {
  const match = /^v0\.0\.(\d+)$/.exec(version);
  if (!match) throw new SlurmParseError(`not a slurmrestd API version: ${truncate(version)}`);
  return Number(match[1]);
}

/** Normalizes one slurmdbd job record of any supported API version. */
export function parseSlurmRestJob(record: unknown, options: SlurmRestParseOptions): NormalizedJob {
  if (!isObject(record)) throw new SlurmParseError('a job record is not an object');
  const minor = versionNumber(options.version);
  // 22.05's versions: their exit codes say SUCCESS for failed jobs (readExitCode).
  const isLegacy = minor <= 38;
  const jobIdNumber =
    typeof record.job_id === 'number' || isObject(record.job_id) ? readNoValNumber(record.job_id) : null;
  if (jobIdNumber === null || !Number.isInteger(jobIdNumber) || jobIdNumber <= 0) {
    throw new SlurmParseError(`job_id is not a positive integer: ${preview(record.job_id)}`);
  }
  const jobId = String(jobIdNumber);
  const user = readString(record.user) || (isObject(record.association) ? readString(record.association.user) : '');
  if (user === '') throw new SlurmParseError(`job ${jobId} has no user`);
  const time = isObject(record.time) ? record.time : {};
  const array = isObject(record.array) ? record.array : {};
  const het = isObject(record.het) ? record.het : {};
  const state = readState(isObject(record.state) ? record.state.current : record.state);
  if (state === '') throw new SlurmParseError(`job ${jobId} has no state`);

  const arrayJob = readNoValNumber(array.job_id);
  const arrayTask = readNoValNumber(array.task_id);
  const hetJob = readNoValNumber(het.job_id);
  const hetOffset = readNoValNumber(het.job_offset);
  const isArrayTask = arrayJob !== null && arrayJob > 0 && arrayTask !== null && Number.isFinite(arrayTask);
  const isHetComponent = hetJob !== null && hetJob > 0 && hetOffset !== null && Number.isFinite(hetOffset);
  // The record of an array's tasks that never ran (cancelled while pending): no task id, its tasks in `task`.
  const pendingTasks = !isArrayTask && arrayJob !== null && arrayJob > 0 ? readPendingArrayTasks(array) : null;
  let jobKey = jobId;
  if (isArrayTask) jobKey = `${arrayJob}_${arrayTask}`;
  else if (pendingTasks !== null) jobKey = `${arrayJob}_${pendingTasks}`;
  else if (isHetComponent) jobKey = `${hetJob}+${hetOffset}`;

  const elapsedSec = readNonNegative(time.elapsed, 'elapsed') ?? 0;
  const endAt = readEpoch(time.end);
  const rawSteps = Array.isArray(record.steps) ? record.steps : [];
  const steps = rawSteps.map(readStep);
  let startAt = readEpoch(time.start);
  const tres = isObject(record.tres) ? record.tres : {};
  const allocatedList = readTresList(tres.allocated);
  // Cancelled while pending: nothing was allocated and no step ran.
  const hasNeverStarted = allocatedList.length === 0 && rawSteps.length === 0;
  if (minor <= 37) {
    // dbv0.0.36/37 in Slurm 22.05 report the eligible time as `start` (seen in the captures);
    // the real start is end - elapsed, or the first step's start while still running. A job that
    // never started (cancelled while pending: nothing allocated, no step) has none, as sacct
    // (`None`) and v0.0.38 (null) say; it used to be given its end as its start.
    const suspended = readNoValNumber(time.suspended) ?? 0;
    if (hasNeverStarted) startAt = null;
    else if (endAt) startAt = new Date(endAt.getTime() - (elapsedSec + suspended) * 1000);
    else {
      const stepStarts = rawSteps
        .map((step) => (isObject(step) && isObject(step.time) ? readNoValNumber(step.time.start) : null))
        .filter((start): start is number => start !== null && start > 0 && Number.isFinite(start));
      if (stepStarts.length > 0) startAt = new Date(Math.min(...stepStarts) * 1000);
    }
  }
  const limit = readNoValNumber(time.limit);
  const requestedList = readTresList(tres.requested);
  const alloc = summarize(allocatedList);
  const req = summarize(requestedList);
  const energyEntry = allocatedList.find((entry) => entry.type === 'energy');
  const nodes = readString(record.nodes);
  const job: NormalizedJob = {
    cluster: normalizeClusterName(readString(record.cluster) || options.defaultCluster),
    jobId,
    jobKey,
    arrayJobId: isArrayTask || pendingTasks !== null ? String(arrayJob) : null,
    arrayTaskId: isArrayTask ? String(arrayTask) : pendingTasks,
    name: readString(record.name),
    user,
    account: readString(record.account) || (isObject(record.association) ? readString(record.association.account) : ''),
    partition: readString(record.partition),
    qos: readString(record.qos),
    state,
    isTerminal: isTerminalState(state) && endAt !== null,
    exitCode: readExitCode(record.exit_code, isLegacy),
    submitAt: readEpoch(time.submission),
    startAt,
    endAt,
    elapsedSec,
    timelimitSec: limit === null || limit === Number.POSITIVE_INFINITY ? null : limit * 60,
    allocCpus: alloc.cpus,
    allocMemMb: alloc.memMb,
    allocGpus: alloc.gpus,
    allocNodes: alloc.nodes || (readNoValNumber(record.allocation_nodes) ?? 0),
    allocBilling: alloc.billing,
    reqCpus: req.cpus,
    reqMemMb: req.memMb,
    reqGpus: req.gpus,
    allocTres: formatTres(allocatedList),
    reqTres: formatTres(requestedList),
    cpuTimeSec: alloc.cpus * elapsedSec,
    // Job-level time.total is 0 in slurmdbd; the steps carry the CPU time (folded below).
    totalCpuSec: roundTo(readCpuTime(time.total), 3),
    stepMemGbHours: null,
    maxRssBytes: null,
    // sacct prints 0 for a job that never started, and it used none: null made every switch of
    // source rewrite such jobs.
    energyJoules: energyEntry?.count ?? (hasNeverStarted && endAt !== null ? 0 : null),
    stepCount: 0,
    steps: [],
    nodeList: nodes === 'None assigned' ? '' : nodes,
  };
  return foldSteps(job, steps);
}

/**
 * The tasks of an array record that has no task id (those still pending, or cancelled before they
 * ran) as sacct names them: `[1-5%2]`, `[1,3,5-7,200]`. slurmdbd keeps them as a hex bitmap, which
 * 22.05's slurmrestd returns as it is (`task: "0x3E"`, seen on the lab), and the throttle in
 * `limits.max.running.tasks`. Read as the master's plain id, such a job had another key through
 * slurmrestd than through sacct, so a switch of source gave a job on a receipt a new, unbilled key.
 * Null when `task` is not such a bitmap.
 */
function readPendingArrayTasks(array: Json): string | null {
  const task = array.task;
  if (typeof task !== 'string' || !/^0x[0-9a-f]+$/i.test(task)) return null;
  const ranges: string[] = [];
  let first = -1;
  let last = -2;
  const digits = task.slice(2);
  for (let position = digits.length - 1, base = 0; position >= 0; position -= 1, base += 4) {
    const nibble = Number.parseInt(digits[position] as string, 16);
    for (let bit = 0; bit < 4; bit += 1) {
      if ((nibble & (1 << bit)) === 0) continue;
      const index = base + bit;
      if (index !== last + 1) {
        if (first >= 0) ranges.push(first === last ? `${first}` : `${first}-${last}`);
        first = index;
      }
      last = index;
    }
  }
  if (first < 0) return null;
  ranges.push(first === last ? `${first}` : `${first}-${last}`);
  const limits = isObject(array.limits) && isObject(array.limits.max) ? array.limits.max : {};
  const running = isObject(limits.running) ? readNoValNumber(limits.running.tasks) : null;
  const throttle = running !== null && running > 0 && Number.isFinite(running) ? `%${running}` : '';
  return `[${ranges.join(',')}${throttle}]`;
}

function readErrors(value: unknown): SlurmRestError[] {
  if (!Array.isArray(value)) return [];
  return value.map((entry) => {
    const item = isObject(entry) ? entry : {};
    const number =
      typeof item.error_number === 'number'
        ? item.error_number
        : typeof item.error_code === 'number'
          ? item.error_code
          : null;
    // Cut short: these end up in the run's error and the log.
    return {
      errorNumber: number,
      error: typeof item.error === 'string' ? truncate(item.error, 200) : '',
      description: typeof item.description === 'string' ? truncate(item.description, 200) : '',
      source: typeof item.source === 'string' ? truncate(item.source, 200) : '',
    };
  });
}

/**
 * Reads a `/slurmdb/v0.0.NN/jobs` body: jobs normalized (a bad record becomes a `skip`
 * with its index), plus the `errors` and `warnings` arrays, which callers must check:
 * Slurm 22.05 answers a bad token with HTTP 200, an error and no jobs. Throws for a body
 * without a `jobs` array and without errors: that is not an answer, let alone an empty one.
 */
export function parseSlurmRestJobsResponse(body: unknown, options: SlurmRestParseOptions): SlurmRestJobsResponse {
  if (!isObject(body)) throw new SlurmParseError('the response is not a JSON object');
  const errors = readErrors(body.errors);
  const warnings = Array.isArray(body.warnings)
    ? body.warnings.map((warning) =>
        truncate(isObject(warning) ? readString(warning.description) : String(warning), 200),
      )
    : [];
  if (!Array.isArray(body.jobs)) {
    // Slurm sends `jobs: []` when nothing matched; only an answer that failed (errors set, e.g. a
    // query it could not parse) goes without. Taken as "no jobs", an answer without it would
    // complete the run and move the ingestion window past jobs that were never read.
    if (body.jobs === undefined && errors.length > 0) return { items: [], errors, warnings };
    throw new SlurmParseError(body.jobs === undefined ? 'the response has no `jobs` array' : '`jobs` is not an array');
  }
  const jobs: unknown[] = body.jobs;
  const items: SourceItem[] = jobs.map((record, index) => {
    try {
      return { kind: 'job', job: parseSlurmRestJob(record, options), line: index + 1 };
    } catch (error) {
      const rawId = isObject(record) ? record.job_id : undefined;
      // A blank job_id names no job: the run names the record by its place, as one without a job_id.
      const jobId =
        rawId === undefined || rawId === null || (typeof rawId === 'string' && rawId.trim() === '')
          ? null
          : typeof rawId === 'string'
            ? truncate(rawId, MAX_LOGGED_JOB_ID)
            : preview(rawId, MAX_LOGGED_JOB_ID);
      return {
        kind: 'skip',
        line: index + 1,
        jobId,
        reason: truncate(error instanceof Error ? error.message : String(error), 300),
        ...skippedJobOf(record, options),
      };
    }
  });
  return { items, errors, warnings };
}

/** The cluster and job id a skipped record's row would have, when its job_id and cluster can be read. */
function skippedJobOf(record: unknown, options: SlurmRestParseOptions): { job?: SkippedJob } {
  if (!isObject(record) || !(typeof record.job_id === 'number' || isObject(record.job_id))) return {};
  let jobId: number | null;
  try {
    jobId = readNoValNumber(record.job_id);
  } catch {
    return {};
  }
  if (jobId === null || !Number.isSafeInteger(jobId) || jobId <= 0) return {};
  const cluster = typeof record.cluster === 'string' ? record.cluster : '';
  if (cluster.length > MAX_LOGGED_JOB_ID) return {};
  return { job: { cluster: normalizeClusterName(cluster || options.defaultCluster), jobId: String(jobId) } };
}

/** ESLURM_DB_QUERY_TOO_WIDE: slurmdbd refused a window longer than its MaxQueryTimeRange. */
export const QUERY_TOO_WIDE = 7007;

/**
 * slurmdbd's refusal of a window longer than MaxQueryTimeRange (slurmdbd.conf): error 7007, "Too wide
 * of a date range in query" (Slurm's slurm_errno.h and slurm_errno.c).
 */
export function isQueryTooWideError(error: SlurmRestError): boolean {
  return (
    error.errorNumber === QUERY_TOO_WIDE || /too wide of a date range/i.test(`${error.error} ${error.description}`)
  );
}

/** Slurm's "Protocol authentication error" and friends: a configuration problem, not a transient one. */
export function isAuthenticationError(error: SlurmRestError): boolean {
  return (
    error.errorNumber === 1007 ||
    error.errorNumber === 1005 ||
    /authenticat|unauthori[sz]ed|invalid token|permission denied/i.test(`${error.error} ${error.description}`)
  );
}
