/**
 * Slurm reuses job ids: after the controller's state is lost its ids start again at FirstJobId, and
 * past MaxJobId they wrap. slurmdbd keeps the jobs apart by their submit time, and both reach the
 * sources (slurmrestd returns every record, sacct with --duplicates). Stored by (cluster, JobIDRaw)
 * alone, the later job overwrote the earlier one's row: the earlier job's usage was lost, or, when it
 * was already billed, the later job took its place on the receipt and was never billed itself.
 *
 * A later job that reuses an id is stored under `<JobIDRaw>@<submit>` (job_id) and `<key>@<submit>`
 * (job_key, the billing key), the submit time in UTC to the second (`4242@20261204T030510Z`), so it is
 * billed on its own. The job stored first keeps the plain id and key, so stored jobs, and the
 * receipts that name them, keep their keys.
 */
import type { NormalizedJob } from './slurm-job.model.js';

/** What identifies a stored job row: its cluster, stored job id and key, when it was submitted, whether it ended. */
export interface StoredJobIdentity {
  cluster: string;
  /** Slurm's JobIDRaw, or `<JobIDRaw>@<submit>` for a later job that reused it. */
  jobId: string;
  /** The billing key, `@<submit>` after it for a later job that reused it. */
  jobKey: string;
  submitAt: Date | null;
  /** Start and end as stored: a row sacct stored in another zone than APP_TZ has all three shifted alike. */
  startAt?: Date | null;
  endAt?: Date | null;
  isTerminal: boolean;
  /** The normalized Slurm state (RESIZING: the part of a resized job before its resize). */
  state?: string;
  /** The row's steps as stored (jsonb), which a later read of the same run keeps (keepStepsOfEarlierReads). */
  steps?: unknown;
}

const SEPARATOR = '@';

/**
 * How far apart two sources may put the same submit time: sacct prints local times, and a time in
 * the hour repeated at the end of summer time is read as the later one (half an hour on Lord Howe),
 * where slurmrestd gives the exact second.
 */
const SOURCE_SHIFTS_MS = [30 * 60_000, 60 * 60_000];

/** Zones are whole quarters of an hour off UTC (Kathmandu +5:45, Chatham +12:45), at most 26 hours apart. */
const ZONE_STEP_MS = 15 * 60_000;
const MAX_ZONE_SHIFT_MS = 26 * 3_600_000;

/**
 * Whether a stored row is the record's job read with every time shifted by one zone difference: sacct
 * ran in the server's zone, not APP_TZ, before it was given TZ=APP_TZ (sacct.source.ts), so a row it
 * stored on such a host has submit, start and end off by the same whole quarters of an hour. Taken for
 * another job, the first read after the fix stored the job a second time, as `<id>@<submit>`, billed
 * twice; a job that reused the id does not start and end exactly that far from the first.
 */
function isZoneShifted(
  stored: Pick<StoredJobIdentity, 'submitAt' | 'startAt' | 'endAt'>,
  record: Pick<NormalizedJob, 'submitAt' | 'startAt' | 'endAt'>,
): boolean {
  if (!stored.submitAt || !record.submitAt || !stored.endAt || !record.endAt) return false;
  const shift = record.submitAt.getTime() - stored.submitAt.getTime();
  if (shift === 0 || shift % ZONE_STEP_MS !== 0 || Math.abs(shift) > MAX_ZONE_SHIFT_MS) return false;
  const isShiftedAlike = (a: Date | null | undefined, b: Date | null) =>
    a === undefined ? false : a === null || b === null ? a === b : b.getTime() - a.getTime() === shift;
  return isShiftedAlike(stored.endAt, record.endAt) && isShiftedAlike(stored.startAt, record.startAt);
}

/**
 * How far (ms) a record moves the times of the stored row it is the job of, when it moves its submit,
 * start and end alike by a zone difference (isZoneShifted), else null: the same job read in another
 * zone than before (APP_TZ, or the zone its sacct output is written in, changed), whose row the upsert
 * rewrites with the new times.
 */
export function zoneShiftOf(
  stored: Pick<StoredJobIdentity, 'submitAt' | 'startAt' | 'endAt'>,
  record: Pick<NormalizedJob, 'submitAt' | 'startAt' | 'endAt'>,
): number | null {
  if (!stored.submitAt || !record.submitAt || !isZoneShifted(stored, record)) return null;
  return record.submitAt.getTime() - stored.submitAt.getTime();
}

/** The stored id or key without its `@<submit>`. */
export function baseOf(idOrKey: string): string {
  const at = idOrKey.indexOf(SEPARATOR);
  return at === -1 ? idOrKey : idOrKey.slice(0, at);
}

/** `@20261204T030510Z`, or '' for an id or key without one. */
function suffixOf(idOrKey: string): string {
  const at = idOrKey.indexOf(SEPARATOR);
  return at === -1 ? '' : idOrKey.slice(at);
}

/** `@20261204T030510Z`: the submit time in UTC to the second. */
export function reuseSuffix(submitAt: Date): string {
  return `${SEPARATOR}${submitAt.toISOString().slice(0, 19).replace(/[-:]/g, '')}Z`;
}

const RESIZED = 'RESIZING';

/**
 * Whether one of the two is the record a resize closed (RESIZING, ended at the resize) and the other
 * the record the job went on as, which slurmdbd starts with its submit time at that resize (a job
 * resized again has one such pair per resize): two parts of one job, each billed on its own, whatever
 * their submit times otherwise look like (30 or 60 minutes apart is else read as one job's).
 */
function isResizedPair(
  stored: Pick<StoredJobIdentity, 'submitAt' | 'endAt' | 'state'>,
  record: Pick<NormalizedJob, 'submitAt' | 'endAt' | 'state'>,
): boolean {
  const follows = (closed: { endAt?: Date | null }, next: { submitAt: Date | null }) =>
    closed.endAt != null && next.submitAt !== null && closed.endAt.getTime() === next.submitAt.getTime();
  return (stored.state === RESIZED && follows(stored, record)) || (record.state === RESIZED && follows(record, stored));
}

/**
 * Whether a record is the job a stored row with the same cluster and JobIDRaw holds: the same
 * submit time (as two sources may print it), or a later run of a requeued job, whose next run has a
 * submit time of its own while its earlier run, stored unfinished, is superseded (its REQUEUED record
 * is never stored). A row or record without a submit time is taken as the same job, as before. The
 * parts of a resized job are not (isResizedPair).
 */
export function isSameJob(
  stored: Pick<StoredJobIdentity, 'submitAt' | 'startAt' | 'endAt' | 'isTerminal' | 'state'>,
  record: Pick<NormalizedJob, 'submitAt' | 'startAt' | 'endAt' | 'state'>,
): boolean {
  if (stored.submitAt === null || record.submitAt === null) return true;
  if (isResizedPair(stored, record)) return false;
  if (isSubmittedAlike(stored, record)) return true;
  return !stored.isTerminal && record.submitAt > stored.submitAt;
}

/**
 * Whether the two submit times are one job's as two sources may print it: the same instant, one of
 * the sources' shifts apart, or shifted by a zone as the start and end are (isZoneShifted).
 */
function isSubmittedAlike(
  stored: Pick<StoredJobIdentity, 'submitAt' | 'startAt' | 'endAt'>,
  record: Pick<NormalizedJob, 'submitAt' | 'startAt' | 'endAt'>,
): boolean {
  if (!stored.submitAt || !record.submitAt) return false;
  const apart = Math.abs(record.submitAt.getTime() - stored.submitAt.getTime());
  return apart === 0 || SOURCE_SHIFTS_MS.includes(apart) || isZoneShifted(stored, record);
}

/**
 * Whether a stored row (or an earlier record) holds the same run of a record's job, whose steps the
 * record may keep (keepStepsOfEarlierReads): the same job by its submit time, as isSameJob tells it,
 * but not a requeued job's next run, which has a submit time of its own; the steps of the run before
 * it are not billed (docs/ingestion.md, Requeued jobs). Without a submit time on either side the run
 * cannot be told, and nothing is kept.
 */
export function isSameRun(
  stored: Pick<StoredJobIdentity, 'submitAt' | 'startAt' | 'endAt' | 'state'>,
  record: Pick<NormalizedJob, 'submitAt' | 'startAt' | 'endAt' | 'state'>,
): boolean {
  if (!stored.submitAt || record.submitAt === null) return false;
  return !isResizedPair(stored, record) && isSubmittedAlike(stored, record);
}

/**
 * The job id and key each record of a batch is stored under, given the stored rows that share its
 * cluster and JobIDRaw or job key (with or without `@<submit>`). A record that is the job of one of
 * them (isSameJob; the same submit time first) takes that row's id and keeps its `@<submit>`. Any
 * other record is a job of its own: it keeps the plain id and key unless another job holds them,
 * and takes `@<submit>` otherwise (an array task or heterogeneous component of a reused id may have a
 * fresh JobIDRaw but the key of an earlier job's). Records are placed in the order they were
 * submitted, each seeing those placed before it.
 */
export function assignStoredIds(jobs: NormalizedJob[], stored: StoredJobIdentity[]): NormalizedJob[] {
  // By cluster and JobIDRaw: the rows a record may be the job of; by cluster and key: the keys taken.
  const byId = new Map<string, StoredJobIdentity[]>();
  const keys = new Set<string>();
  const place = (row: StoredJobIdentity) => {
    const group = `${row.cluster}\u0000${baseOf(row.jobId)}`;
    const rows = byId.get(group) ?? [];
    byId.set(group, [...rows.filter((other) => other.jobId !== row.jobId), row]);
    keys.add(`${row.cluster}\u0000${row.jobKey}`);
  };
  for (const row of stored) place(row);
  const order = jobs
    .map((job, index) => ({ job, index }))
    .sort(
      (a, b) =>
        (a.job.submitAt?.getTime() ?? Number.NEGATIVE_INFINITY) -
          (b.job.submitAt?.getTime() ?? Number.NEGATIVE_INFINITY) || a.index - b.index,
    );
  const result = [...jobs];
  for (const { job, index } of order) {
    const sameId = byId.get(`${job.cluster}\u0000${job.jobId}`) ?? [];
    const submitted = job.submitAt?.getTime();
    const match =
      sameId.find((row) => submitted !== undefined && row.submitAt?.getTime() === submitted) ??
      sameId.find((row) => isSameJob(row, job));
    let jobId = job.jobId;
    let jobKey = job.jobKey;
    if (match) {
      jobId = match.jobId;
      jobKey = `${job.jobKey}${suffixOf(match.jobKey)}`;
    } else if (job.submitAt !== null) {
      const suffix = reuseSuffix(job.submitAt);
      if (sameId.some((row) => row.jobId === job.jobId)) jobId = `${job.jobId}${suffix}`;
      if (keys.has(`${job.cluster}\u0000${job.jobKey}`)) jobKey = `${job.jobKey}${suffix}`;
    }
    result[index] = jobId === job.jobId && jobKey === job.jobKey ? job : { ...job, jobId, jobKey };
    // The row as the upsert leaves it, for the records after it in the batch.
    place({
      cluster: job.cluster,
      jobId,
      jobKey,
      submitAt: job.submitAt,
      startAt: job.startAt,
      endAt: job.endAt,
      isTerminal: job.isTerminal,
      state: job.state,
    });
  }
  return result;
}
