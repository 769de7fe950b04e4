import { repeatedTimeTwin, toLocalIsoSeconds, zoneOffsetMs } from '../../shared/local-date.js';
/**
 * Pure parsers for the ways Slurm prints durations, timestamps, memory sizes and
 * TRES lists. No I/O; every function returns `null` for "no value" rather than throwing,
 * and throws SlurmParseError only for text that is present but not Slurm's.
 */

export class SlurmParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SlurmParseError';
  }
}

// Words Slurm prints where a value is missing or not applicable.
const NO_VALUE_WORDS = new Set(['', 'unknown', 'invalid', 'none', 'n/a', 'partition_limit']);

const DURATION = /^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)(?:\.(\d{1,6}))?$/;

/**
 * A duration in seconds from `D-HH:MM:SS`, `HH:MM:SS`, `MM:SS` or `MM:SS.mmm` (TotalCPU
 * under an hour), also `D-HH:MM:SS.mmm`. `Unknown`, `INVALID` and empty give null;
 * `UNLIMITED` gives Infinity so a caller can tell it from "missing".
 */
export function parseDurationSec(text: string): number | null {
  const trimmed = text.trim();
  const word = trimmed.toLowerCase();
  if (NO_VALUE_WORDS.has(word)) return null;
  if (word === 'unlimited' || word === 'infinite') return Number.POSITIVE_INFINITY;
  const match = DURATION.exec(trimmed);
  if (!match) {
    // `D-HH` is a valid Slurm input format (time limits), never output; accept it too.
    const dayHours = /^(\d+)-(\d+)$/.exec(trimmed);
    if (dayHours) return Number(dayHours[1]) * 86_400 + Number(dayHours[2]) * 3600;
    throw new SlurmParseError(`not a Slurm duration: "${truncate(trimmed)}"`);
  }
  const [, days, first, second, third, fraction] = match;
  if (days !== undefined && first === undefined) {
    // `D-HH:MM` (a time-limit input format): after a day part, two groups are hours and minutes.
    if (fraction !== undefined || Number(third) > 59) {
      throw new SlurmParseError(`not a Slurm duration: "${truncate(trimmed)}"`);
    }
    return Number(days) * 86_400 + Number(second) * 3600 + Number(third) * 60;
  }
  // With two colon groups the first is hours; with one (`MM:SS`) there are no hours.
  const hours = first === undefined ? 0 : Number(first);
  const minutes = Number(second);
  const seconds = Number(third);
  if (first !== undefined && (minutes > 59 || seconds > 59)) {
    throw new SlurmParseError(`minutes or seconds out of range: "${truncate(trimmed)}"`);
  }
  const wholeSeconds = (Number(days ?? 0) * 24 + hours) * 3600 + minutes * 60 + seconds;
  if (fraction === undefined) return wholeSeconds;
  // One division of whole units, not seconds + 0.903: that gives the same double as slurmrestd's
  // {seconds, microseconds} read as milliseconds / 1000, so both sources store the same figure.
  const scale = 10 ** fraction.length;
  return (wholeSeconds * scale + Number(fraction)) / scale;
}

/** Like parseDurationSec but refuses UNLIMITED: for values that are always finite (Elapsed, TotalCPU). */
export function parseFiniteDurationSec(text: string): number | null {
  const seconds = parseDurationSec(text);
  if (seconds === Number.POSITIVE_INFINITY) throw new SlurmParseError(`unexpected UNLIMITED duration`);
  return seconds;
}

/** TimelimitRaw (minutes) as seconds; UNLIMITED, Partition_Limit and empty give null. */
export function parseTimelimitRawSec(text: string): number | null {
  const trimmed = text.trim();
  const word = trimmed.toLowerCase();
  if (NO_VALUE_WORDS.has(word) || word === 'unlimited') return null;
  if (!/^\d+$/.test(trimmed)) throw new SlurmParseError(`not a time limit in minutes: "${truncate(trimmed)}"`);
  return Number(trimmed) * 60;
}

/** A non-negative integer column (ElapsedRaw, CPUTimeRAW, AllocNodes...); empty gives null. */
export function parseCount(text: string): number | null {
  const trimmed = text.trim();
  if (NO_VALUE_WORDS.has(trimmed.toLowerCase())) return null;
  if (!/^\d+$/.test(trimmed)) throw new SlurmParseError(`not a count: "${truncate(trimmed)}"`);
  return Number(trimmed);
}

const UNIT_BYTES: Record<string, number> = {
  '': 1,
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
  T: 1024 ** 4,
  P: 1024 ** 5,
};

const MEMORY = /^(\d+(?:\.\d+)?)([KMGTP]?)([nc]?)$/i;

export interface MemoryAmount {
  bytes: number;
  /** Old Slurm (< 21.08) suffixed ReqMem with `n` (per node) or `c` (per CPU). */
  per: 'node' | 'cpu' | undefined;
}

/**
 * Memory as sacct prints it: `3380K`, `200M`, `1.50G`, `0`, or with a per-node `n` /
 * per-CPU `c` suffix (`4000Mc`). A bare number is in bytes for RSS columns; callers
 * that know better pass `bareUnit`.
 */
export function parseMemory(text: string, bareUnit: 'B' | 'K' | 'M' = 'B'): MemoryAmount | null {
  const trimmed = text.trim();
  if (NO_VALUE_WORDS.has(trimmed.toLowerCase())) return null;
  const match = MEMORY.exec(trimmed);
  if (!match) throw new SlurmParseError(`not a memory size: "${truncate(trimmed)}"`);
  const [, amount, unitText, perText] = match;
  const unit = (unitText ?? '').toUpperCase() || (bareUnit === 'B' ? '' : bareUnit);
  const bytes = Math.round(Number(amount) * (UNIT_BYTES[unit] as number));
  const perLetter = (perText ?? '').toLowerCase();
  return { bytes, per: perLetter === 'n' ? 'node' : perLetter === 'c' ? 'cpu' : undefined };
}

/** Memory in bytes, or null; see parseMemory. */
export function parseMemoryBytes(text: string, bareUnit: 'B' | 'K' | 'M' = 'B'): number | null {
  return parseMemory(text, bareUnit)?.bytes ?? null;
}

export type TresMap = Map<string, string>;

/** `billing=1,cpu=1,gres/gpu=1,mem=200M,node=1` as a map; empty text gives an empty map. */
export function parseTres(text: string): TresMap {
  const map: TresMap = new Map();
  const trimmed = text.trim();
  if (trimmed === '') return map;
  for (const pair of trimmed.split(',')) {
    const equals = pair.indexOf('=');
    if (equals <= 0) throw new SlurmParseError(`not a TRES list: "${truncate(trimmed)}"`);
    map.set(pair.slice(0, equals), pair.slice(equals + 1));
  }
  return map;
}

/** Memory TRES in the largest unit that divides it exactly (600M, 1G), as sacct prints it without --noconvert. */
export function formatTresMemMb(megabytes: number): string {
  const units = ['M', 'G', 'T', 'P'];
  let value = megabytes;
  let unit = 0;
  while (unit < units.length - 1 && value >= 1024 && value % 1024 === 0) {
    value /= 1024;
    unit += 1;
  }
  return `${value}${units[unit]}`;
}

/**
 * The one spelling of a TRES list that every source stores (alloc_tres, req_tres), so a job read
 * from sacct and from slurmrestd is the same record: sacct --noconvert prints `mem=1024M` where
 * slurmrestd gives 1024 (MB) and a converted sacct file `mem=1G`; all become `mem=1G` (a whole
 * number of MB in the largest unit that divides it). Pairs are sorted as text, as sacct prints
 * them; `energy`, which slurmrestd gives without a count, is left out.
 */
export function formatTresText(tres: TresMap): string {
  const pairs: string[] = [];
  for (const [key, value] of tres) {
    if (key === 'energy') continue;
    let text = value;
    if (key === 'mem') {
      const bytes = parseMemoryBytes(value, 'M');
      const megabytes = bytes === null ? null : bytes / 1024 ** 2;
      if (megabytes !== null && Number.isInteger(megabytes)) text = formatTresMemMb(megabytes);
    }
    pairs.push(`${key}=${text}`);
  }
  return pairs.sort().join(',');
}

export interface TresTotals {
  cpus: number;
  memMb: number;
  gpus: number;
  nodes: number;
  billing: number | null;
  energyJoules: number | null;
}

const TRES_COUNT = /^\d+(?:\.\d+)?$/;

/**
 * The billable totals of a TRES map. GPUs count the untyped `gres/gpu` when present, else
 * the sum of typed `gres/gpu:<type>` entries (Slurm lists both for typed GRES).
 */
export function summarizeTres(tres: TresMap): TresTotals {
  const number = (key: string) => {
    const value = tres.get(key);
    if (value === undefined || value.trim() === '') return null;
    // Slurm prints a TRES count as a plain decimal number. Number() alone also took `0x10` (16),
    // `1e3` (1000) or `-1`.
    if (!TRES_COUNT.test(value.trim())) throw new SlurmParseError(`TRES ${key} is not a number: "${truncate(value)}"`);
    return Number(value);
  };
  let gpus = number('gres/gpu');
  if (gpus === null) {
    let typed = 0;
    // Checked as the untyped count is: `Number(value) || 0` counted `gres/gpu:a100=x` as no GPU and
    // `=-1` as minus one, so such a job was stored, and billed, without its GPUs.
    for (const key of tres.keys()) if (key.startsWith('gres/gpu:')) typed += number(key) ?? 0;
    gpus = typed;
  }
  const mem = tres.get('mem');
  return {
    cpus: number('cpu') ?? 0,
    // A TRES mem without a unit is in megabytes.
    memMb: mem === undefined ? 0 : (parseMemoryBytes(mem, 'M') ?? 0) / 1024 ** 2,
    gpus,
    nodes: number('node') ?? 0,
    billing: number('billing'),
    energyJoules: number('energy'),
  };
}

const SKIPPED_TIME_LOOKBACK_MS = 6 * 3_600_000;

const LOCAL_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/;

/**
 * Converts wall-clock times of one IANA zone to UTC. sacct prints timestamps in the
 * cluster's local time without an offset. The offsets come from zoneOffsetMs, cached per
 * day, so a million rows cost a handful of Intl calls. They were cached per whole UTC hour,
 * which zones half an hour off the hour do not change their clocks on (Adelaide at 16:30Z):
 * the half hour after the change was read an hour late.
 */
export function createLocalTimeConverter(timeZone: string): (text: string) => Date | null {
  const isUtc = timeZone === 'UTC' || timeZone === 'Etc/UTC';
  const offsetAt = (utcMs: number): number => zoneOffsetMs(utcMs, timeZone);
  return (text: string) => {
    const trimmed = text.trim();
    if (NO_VALUE_WORDS.has(trimmed.toLowerCase())) return null;
    const match = LOCAL_TIMESTAMP.exec(trimmed);
    if (!match) throw new SlurmParseError(`not a Slurm timestamp: "${truncate(trimmed)}"`);
    const [, year, month, day, hour, minute, second] = match.map(Number) as number[];
    const naive = Date.UTC(year as number, (month as number) - 1, day as number, hour, minute, second);
    const check = new Date(naive);
    if (check.getUTCDate() !== day || check.getUTCMonth() !== (month as number) - 1) {
      throw new SlurmParseError(`not a calendar date: "${trimmed}"`);
    }
    if (isUtc) return check;
    // Two passes settle the offset across DST changes. A time the clocks show twice keeps the reading
    // they give (New York's earlier, Berlin's later, as sacct's own mktime reads them).
    const firstGuess = naive - offsetAt(naive);
    const utc = naive - offsetAt(firstGuess);
    if (utc + offsetAt(utc) === naive) return new Date(utc);
    // A time the clocks skipped (sacct on a host whose zone data has a change the app's has not) is read
    // with the offset before the jump, as late as the jump, as glibc's mktime reads it. West of UTC the
    // passes gave the offset after it, an hour early: where summer time starts at midnight (Santiago,
    // Havana) a job that ended at 00:30 was put on the day before. No zone changes twice in 6 hours.
    return new Date(naive - offsetAt(utc - SKIPPED_TIME_LOOKBACK_MS));
  };
}

/** Formats a UTC instant as the zone's wall-clock time, as sacct -S/-E and slurmrestd expect. */
export function formatLocalTimestamp(date: Date, timeZone: string): string {
  return toLocalIsoSeconds(date, timeZone);
}

/**
 * A window's edge for sacct -S/-E, in the zone sacct runs in, such that no reading of it narrows the
 * window. A wall-clock time the clocks show twice (the hour repeated when summer time ends) has two
 * readings, and sacct takes either (Slurm's parse_time gives it to mktime with tm_isdst = -1: in a
 * fresh process Europe/Berlin's 02:15 is read as the later, CET, America/New_York's 01:15 as the
 * earlier, EDT). Written as it was, a start in the first such hour read as the second was an hour
 * late (and a window over the change began after it ended), so the jobs that ended in that hour were in
 * no window, never stored nor billed. Such a start is written as early again as its other reading is
 * late (before the repeated hour), an end in the second such hour as late again as its other reading
 * is early: the window only grows, and a job read twice is the same row.
 */
export function formatSacctWindowEdge(edge: Date, timeZone: string, side: 'start' | 'end'): string {
  const at = Math.floor(edge.getTime() / 1000) * 1000;
  const twin = repeatedTimeTwin(new Date(at), timeZone)?.getTime();
  if (twin !== undefined && side === 'start' && twin > at)
    return formatLocalTimestamp(new Date(2 * at - twin), timeZone);
  if (twin !== undefined && side === 'end' && twin < at) return formatLocalTimestamp(new Date(2 * at - twin), timeZone);
  return formatLocalTimestamp(new Date(at), timeZone);
}

// Billing only ever charges jobs in one of these: they will not change again. RESIZING is the record
// slurmdbd closes when a running job is resized (scontrol update JobId=N NumNodes=...): it ends at the
// resize with the allocation held until then, and the job goes on as a new record of the same JobID
// whose submit and start are the resize time. That record is never written again, so it is billed as
// it stands, and the part after the resize on its own (reused-job-id.ts): taken as not finished, the
// next part overwrote it and the usage before the resize was never billed.
const TERMINAL_STATES = new Set([
  'BOOT_FAIL',
  'CANCELLED',
  'COMPLETED',
  'DEADLINE',
  'FAILED',
  'NODE_FAIL',
  'OUT_OF_MEMORY',
  'PREEMPTED',
  'RESIZING',
  'TIMEOUT',
]);

/**
 * Slurm's states of a job that may still change: the base states and the state flags sacct(1) and
 * squeue(1) list under JOB STATE CODES, and the flags slurmrestd and squeue print on their own
 * (slurm.h: LAUNCH_FAILED, UPDATE_DB, POWER_UP_NODE, RECONFIG_FAIL, EXPEDITING). A job in one of
 * these is stored as not finished, and billed once Slurm reports it in a terminal state.
 */
const NON_TERMINAL_STATES = new Set([
  'PENDING',
  'RUNNING',
  'SUSPENDED',
  'REQUEUED',
  'REQUEUE_HOLD',
  'REQUEUE_FED',
  'REVOKED',
  'COMPLETING',
  'CONFIGURING',
  'STOPPED',
  'SIGNALING',
  'STAGE_OUT',
  'SPECIAL_EXIT',
  'RESV_DEL_HOLD',
  'UPDATE_DB',
  'POWER_UP_NODE',
  'LAUNCH_FAILED',
  'RECONFIG_FAIL',
  'EXPEDITING',
]);

/**
 * A cluster name as Slurm stores it: slurm.conf(5) ClusterName's upper-case letters are mapped to
 * lower case in the accounting database, so sacct and slurmrestd give `lab` for ClusterName=LAB.
 * The one place SLURM_CLUSTER (config.ts) and every source's cluster (the parsers) are normalized:
 * kept as given, a SLURM_CLUSTER=LAB stored the records without a Cluster column under `LAB` beside
 * the same jobs under `lab`, and each was billable.
 */
export function normalizeClusterName(text: string): string {
  return text.trim().toLowerCase();
}

/** `CANCELLED by 1002` -> `CANCELLED`; upper-case, first word only. */
export function normalizeState(text: string): string {
  const word = text.trim().split(/\s+/)[0] ?? '';
  return word.toUpperCase();
}

/** Whether a normalized state is final (billable once the job has an end time). */
export function isTerminalState(state: string): boolean {
  return TERMINAL_STATES.has(state);
}

/**
 * Whether a normalized state is one Slurm is known to report, terminal or not. Any other (a state
 * a later Slurm adds, a typo in a file) is stored as not terminal, so never billed, and the run
 * says so (ingestion.service.ts): how such a job should be billed is not this app's guess to make.
 */
export function isKnownState(state: string): boolean {
  return TERMINAL_STATES.has(state) || NON_TERMINAL_STATES.has(state);
}

/**
 * The sacct `--state` list that selects only terminal jobs, the records a resize closed (RS) among
 * them: without RS sacct never read the part of a resized job before its resize.
 */
export const SACCT_TERMINAL_STATE_LIST = 'BF,CA,CD,DL,F,NF,OOM,PR,RS,TO';

/**
 * Text from Slurm cut to `max` characters (an ellipsis marks the cut), for messages and log
 * fields: a runaway value (a 60 MB line) must never become a 60 MB log line.
 */
export function truncate(text: string, max = 60): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

/** The longest job id a skip or log line carries. */
export const MAX_LOGGED_JOB_ID = 64;
