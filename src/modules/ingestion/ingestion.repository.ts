import type { Prisma } from '@prisma/client';
import type pg from 'pg';
import { ADVISORY_LOCK_CLASSES, ADVISORY_LOCK_KEYS, type ReleaseLock } from '../../db/advisory-locks.js';
import type { Db } from '../../db/database.js';
import { queryWithin } from '../../db/query-timeout.js';
import type { StoredJobIdentity } from './reused-job-id.js';
import type { NormalizedJob } from './slurm-job.model.js';

const INGEST_LOCK_KEY = ADVISORY_LOCK_KEYS.ingestion;
const CLUSTER_LOCK_CLASS = ADVISORY_LOCK_CLASSES.ingestionCluster;

/**
 * The cluster a run reads, as its row (ingestion_runs.cluster) and its lock name it: SLURM_CLUSTER, or ''
 * for an instance where it is unset (each source reads its host's cluster). Every window, lock and "last
 * run" is a cluster's: two instances on one database, one per cluster, each keep their own.
 */
export type RunCluster = string;

/**
 * A cluster's runs, as Prisma selects them: its own, and those recorded before runs had a cluster (NULL),
 * which are the instance's until its first run gives them its cluster (adoptRunsWithoutCluster).
 */
function runsOf(cluster: RunCluster) {
  return { OR: [{ cluster }, { cluster: null }] };
}

/**
 * The newest of `probe`'s answers for `cluster` and for the runs without one (runsOf), by `newer`: each
 * probe finds its row among its own cluster's at the end of an index (ingestion_runs (cluster, ...)),
 * where `cluster = $1 OR cluster IS NULL` scanned back over every run of the other clusters.
 */
async function newestOfRunsOf<T>(
  cluster: RunCluster,
  probe: (cluster: RunCluster | null) => Promise<T | null>,
  isNewer: (a: T, b: T) => boolean,
): Promise<T | null> {
  const [own, unadopted] = await Promise.all([probe(cluster), probe(null)]);
  if (own === null || unadopted === null) return own ?? unadopted;
  return isNewer(unadopted, own) ? unadopted : own;
}

/** runsOf in SQL, the cluster being parameter `$n`; `alias.` before the column when given. */
function runsOfSql(parameter: number, alias = ''): string {
  return `(${alias}cluster = $${parameter} OR ${alias}cluster IS NULL)`;
}

/**
 * What a batch adds to its run's counts of distinct jobs: a job the run wrote in an earlier batch
 * (`RunWrite.writtenBefore`) was counted then, so it adds nothing, except that a job counted
 * unchanged whose later record changes it moves from `unchanged` (which may then be negative) to
 * `updated`.
 */
export interface UpsertCounts {
  inserted: number;
  updated: number;
  unchanged: number;
  /**
   * The batch's jobs on a live receipt whose records' figures differ from the stored ones: left as
   * billed (counted in `unchanged` too), repeats of the run included, in job key order. The run counts
   * each job once by `rowKey` (jobRowKey), whichever of its records was refused.
   */
  held: HeldJob[];
}

/** A job whose record was refused because a live receipt bills it. */
export interface HeldJob {
  rowKey: string;
  cluster: string;
  jobKey: string;
  receiptId: number;
}

/** The run a batch is written for, so that its counts count each job once however often it is read. */
export interface RunWrite {
  /**
   * When the run began reading, by the database's clock, to the millisecond below: a row whose
   * updated_at is not before it was inserted or changed by this run.
   */
  since: Date;
  /** The keys (jobRowKey) of the batch's jobs that the run wrote in an earlier batch. */
  writtenBefore: ReadonlySet<string>;
  /**
   * The run's row (ingestion_runs), whose seen, inserted and updated the batch adds its own to in its
   * transaction: a run cut short (a shutdown that stopped waiting for it, a process killed) has its
   * row say what it stored, where they stayed 0 beside the jobs its committed batches had stored.
   */
  runId?: number;
}

/**
 * The database failed a query made for a run under way: its jobs looked up or written, the run
 * read or recorded. Raised here, where the store is queried, so that a run tells a failure of the
 * database from one of its Slurm source by where it was raised, not by its words: a PostgreSQL that
 * restarted and a slurmrestd that is down both say ECONNREFUSED. The driver's error is the `cause`,
 * which the checks of shared/errors.ts (isDatabaseUnavailable, isMissingColumn, ...) look through.
 */
export class JobStoreError extends Error {
  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = 'JobStoreError';
  }
}

/** What `query` resolves to; what it throws, as a JobStoreError. */
async function inStore<T>(query: () => Promise<T>): Promise<T> {
  try {
    return await query();
  } catch (error) {
    throw error instanceof JobStoreError ? error : new JobStoreError(error);
  }
}

/** A job's row as the upsert finds it: its cluster and stored job id. */
export function jobRowKey(job: Pick<NormalizedJob, 'cluster' | 'jobId'>): string {
  return `${job.cluster}\u0000${job.jobId}`;
}

/** The database's clock, to the millisecond below (RunWrite.since). */
export function readDatabaseClock(pool: pg.Pool): Promise<Date> {
  return inStore(async () => {
    const result = await pool.query<{ now: Date }>(`SELECT date_trunc('milliseconds', now()) AS now`);
    return (result.rows[0] as { now: Date }).now;
  });
}

// Column -> its type in the batch document and a reader from the job. A batch travels as
// one JSON parameter read with json_to_recordset: JSON.stringify and Postgres's JSON parser
// are both native, unlike pg's escaping of 36 text arrays (most of the time at 1M rows).
const COLUMNS: [column: string, type: string, read: (job: NormalizedJob) => unknown][] = [
  ['cluster', 'varchar', (job) => job.cluster],
  ['job_id', 'varchar', (job) => job.jobId],
  ['job_key', 'varchar', (job) => job.jobKey],
  ['array_job_id', 'varchar', (job) => job.arrayJobId],
  ['array_task_id', 'varchar', (job) => job.arrayTaskId],
  ['name', 'varchar', (job) => job.name.slice(0, 256)],
  ['user', 'varchar', (job) => job.user],
  ['account', 'varchar', (job) => job.account],
  ['partition', 'varchar', (job) => job.partition],
  ['qos', 'varchar', (job) => job.qos],
  ['state', 'varchar', (job) => job.state],
  ['is_terminal', 'boolean', (job) => job.isTerminal],
  ['exit_code', 'varchar', (job) => job.exitCode],
  ['submit_at', 'timestamptz', (job) => job.submitAt],
  ['start_at', 'timestamptz', (job) => job.startAt],
  ['end_at', 'timestamptz', (job) => job.endAt],
  ['elapsed_sec', 'int', (job) => job.elapsedSec],
  ['timelimit_sec', 'int', (job) => job.timelimitSec],
  ['alloc_cpus', 'int', (job) => job.allocCpus],
  ['alloc_mem_mb', 'numeric', (job) => roundOrNull(job.allocMemMb, 3)],
  ['alloc_gpus', 'int', (job) => job.allocGpus],
  ['alloc_nodes', 'int', (job) => job.allocNodes],
  ['alloc_billing', 'numeric', (job) => roundOrNull(job.allocBilling, 4)],
  ['req_cpus', 'int', (job) => job.reqCpus],
  ['req_mem_mb', 'numeric', (job) => roundOrNull(job.reqMemMb, 3)],
  ['req_gpus', 'int', (job) => job.reqGpus],
  ['alloc_tres', 'text', (job) => job.allocTres],
  ['req_tres', 'text', (job) => job.reqTres],
  ['cpu_time_sec', 'bigint', (job) => roundOrNull(job.cpuTimeSec, 0)],
  ['total_cpu_sec', 'numeric', (job) => roundOrNull(job.totalCpuSec, 3)],
  // Decimal text, exact (slurm-job.model.ts, sumStepMemGbHours): json_to_recordset reads it as numeric.
  ['step_mem_gb_hours', 'numeric', (job) => job.stepMemGbHours],
  ['max_rss_bytes', 'bigint', (job) => roundOrNull(job.maxRssBytes, 0)],
  ['energy_joules', 'bigint', (job) => roundOrNull(job.energyJoules, 0)],
  ['step_count', 'int', (job) => job.stepCount],
  ['steps', 'jsonb', (job) => job.steps],
  ['node_list', 'text', (job) => job.nodeList],
];

function roundOrNull(value: number | null, digits: number): number | null {
  if (value === null) return null;
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

const quote = (column: string) => (column === 'user' ? '"user"' : column);
const COLUMN_LIST = COLUMNS.map(([column]) => quote(column)).join(', ');
const RECORD_TYPES = COLUMNS.map(([column, type]) => `${quote(column)} ${type}`).join(', ');
// Only the data columns decide "changed": re-reading the same job from another source is not a change.
const COMPARED = COLUMNS.map(([column]) => quote(column)).filter(
  (column) => column !== 'cluster' && column !== 'job_id',
);

// Columns a source may not know: slurmrestd 22.05 (v0.0.36-38) cannot give the exit code
// (it says SUCCESS for failed jobs), sacct and later slurmrestd versions can. Null from such a
// source keeps what another source stored, so switching sources neither loses it nor counts a
// job as changed.
// Likewise TotalCPU from output without step rows (sacct -X, allocations-only.ts), where sacct prints 0
// for every job: stored as not known, it keeps the figure a read with the steps stored.
const KEPT_WHEN_UNKNOWN = new Set(['exit_code', 'total_cpu_sec']);
const incoming = (column: string) =>
  KEPT_WHEN_UNKNOWN.has(column) ? `COALESCE(EXCLUDED.${column}, slurm_jobs.${column})` : `EXCLUDED.${column}`;
/** A record's value as the upsert would store it over the row `j` (for the billed check). */
const heldValue = (column: string) =>
  KEPT_WHEN_UNKNOWN.has(column) ? `COALESCE(t.${column}, j.${column})` : `t.${column}`;

// A row a live receipt item bills (same cluster and job key) keeps the figures it was billed with:
// the receipt's hours and cost were computed from them, and the usage pages show them beside that
// cost. A later read that finds other figures (late step records, a corrected accounting record)
// used to change them under the receipt. For such a row the record's figures are replaced by the
// stored ones before the upsert, so only what billing does not read (the exit code another source
// adds, the name, the TRES text's spelling) may still change; a record whose figures differ is counted
// and named instead (the run's notes). Once the receipt is voided, the next read stores them.
const FROZEN_WHEN_BILLED = new Set([
  'job_key',
  'user',
  'state',
  'is_terminal',
  'start_at',
  'end_at',
  'elapsed_sec',
  'alloc_cpus',
  'alloc_mem_mb',
  'alloc_gpus',
  'req_gpus',
  'cpu_time_sec',
  'total_cpu_sec',
  'step_mem_gb_hours',
  'max_rss_bytes',
  'step_count',
  'steps',
]);
const FROZEN = COMPARED.filter((column) => FROZEN_WHEN_BILLED.has(column.replaceAll('"', '')));
// Kept too, though billing does not read it and a record that differs in it alone is not held: the
// submit time is how a later read tells the job from another that reused its id (reused-job-id.ts).
// Taken from a read in another zone (APP_TZ changed) while the frozen start and end were not, the
// billed row's submit was hours off its start and end, and the next read in its own zone stored the
// job again, as `<id>@<submit>`, and billed it a second time.
const KEPT_WHEN_BILLED = [...FROZEN, 'submit_at'];
const recordColumn = (column: string) =>
  KEPT_WHEN_BILLED.includes(column)
    ? `CASE WHEN b.receipt_id IS NULL THEN t.${column} ELSE j.${column} END`
    : `t.${column}`;

// Counted once a job per run (UpsertCounts): `is_repeat` marks a job the run wrote in an earlier batch,
// and `is_written_in_run` one whose row that earlier write inserted or changed (updated_at since $3).
const UPSERT_SQL = `
WITH t AS MATERIALIZED (
  SELECT * FROM json_to_recordset($1::json) AS t(${RECORD_TYPES}, is_repeat boolean)
), r AS MATERIALIZED (
  SELECT t.*, b.receipt_id, j.updated_at >= $3::timestamptz AS is_written_in_run,
         b.receipt_id IS NOT NULL
           AND (${FROZEN.map((column) => `j.${column}`).join(', ')})
               IS DISTINCT FROM (${FROZEN.map(heldValue).join(', ')}) AS is_held,
         ${COLUMNS.map(([column]) => `${recordColumn(quote(column))} AS "w_${column}"`).join(',\n         ')}
    FROM t
    LEFT JOIN slurm_jobs j ON j.cluster = t.cluster AND j.job_id = t.job_id
    LEFT JOIN LATERAL (
      SELECT ri.receipt_id FROM receipt_items ri
       WHERE ri.cluster = j.cluster AND ri.job_key = j.job_key AND NOT ri.is_voided
       LIMIT 1
    ) b ON true
), written AS (
  INSERT INTO slurm_jobs (${COLUMN_LIST}, source)
  SELECT ${COLUMNS.map(([column]) => `"w_${column}"`).join(', ')}, $2::varchar FROM r
  ON CONFLICT (cluster, job_id) DO UPDATE SET
    ${COMPARED.map((column) => `${column} = ${incoming(column)}`).join(',\n    ')},
    source = EXCLUDED.source,
    updated_at = now()
  WHERE (${COMPARED.map((column) => `slurm_jobs.${column}`).join(', ')})
    IS DISTINCT FROM (${COMPARED.map(incoming).join(', ')})
  RETURNING (xmax = 0) AS is_inserted, slurm_jobs.cluster, slurm_jobs.job_id
), o AS (
  SELECT r.is_repeat, r.is_written_in_run, w.is_inserted
    FROM r LEFT JOIN written w ON w.cluster = r.cluster AND w.job_id = r.job_id
)
SELECT (SELECT count(*) FROM o WHERE NOT is_repeat)::int AS firsts,
       (SELECT count(*) FROM o WHERE NOT is_repeat AND is_inserted)::int AS inserted,
       (SELECT count(*) FROM o WHERE NOT is_repeat AND NOT is_inserted)::int AS updated,
       (SELECT count(*) FROM o WHERE is_repeat AND NOT is_inserted AND is_written_in_run IS NOT TRUE)::int AS changed_later,
       (SELECT coalesce(json_agg(json_build_array(cluster, job_id, job_key, receipt_id) ORDER BY job_key), '[]'::json)
          FROM r WHERE is_held) AS held`;

// The user locks (ADVISORY_LOCK_CLASSES.userJobs) of every owner the batch's jobs have, stored or
// incoming, shared and in key order: batches share them, a receipt holds its user's exclusively,
// and a receipt takes one lock only, so no two transactions can each wait for a lock the other holds.
// The subquery's ORDER BY sorts the keys before the outer SELECT takes each lock.
const HOLD_OWNERS_SQL = `
SELECT count(pg_advisory_xact_lock_shared($2::int, k.key))::int AS held
  FROM (SELECT DISTINCT hashtext(o.owner) AS key
          FROM (SELECT t."user" AS owner FROM json_to_recordset($1::json) AS t(cluster varchar, job_id varchar, "user" varchar)
                UNION ALL
                SELECT j."user"
                  FROM json_to_recordset($1::json) AS t(cluster varchar, job_id varchar, "user" varchar)
                  JOIN slurm_jobs j ON j.cluster = t.cluster AND j.job_id = t.job_id) o
         ORDER BY 1) k`;

/**
 * Upserts one batch by (cluster, job_id) in a single statement (atomic on its own: a batch
 * is written whole or not at all). Rows whose data did not change are left untouched, and so are
 * rows a live receipt bills (counted as `held` when the record differs).
 *
 * In a transaction that first takes the user locks of the batch's owners (HOLD_OWNERS_SQL): the
 * upsert decides "billed or not" from the snapshot its statement starts with, and under READ
 * COMMITTED that snapshot, taken once the locks are granted, holds every receipt of those users
 * that committed while the batch waited, and none can commit before the batch does. A receipt
 * committing between the snapshot and the row's update used to leave the row with new figures
 * beside an item priced from the old ones (docs/billing.md, "Receipts and ingestion").
 */
export function upsertJobs(pool: pg.Pool, jobs: NormalizedJob[], source: string, run: RunWrite): Promise<UpsertCounts> {
  return inStore(() => writeJobs(pool, jobs, source, run));
}

async function writeJobs(pool: pg.Pool, jobs: NormalizedJob[], source: string, run: RunWrite): Promise<UpsertCounts> {
  if (jobs.length === 0) return { inserted: 0, updated: 0, unchanged: 0, held: [] };
  // Postgres refuses to update one row twice in a statement: the last record of a job wins.
  const unique = new Map<string, NormalizedJob>();
  for (const job of jobs) unique.set(jobRowKey(job), job);
  const rows = [...unique].map(([key, job]) => {
    const row: Record<string, unknown> = { is_repeat: run.writtenBefore.has(key) };
    for (const [column, , read] of COLUMNS) row[column] = read(job);
    return row;
  });
  const owners = rows.map((row) => ({ cluster: row.cluster, job_id: row.job_id, user: row.user }));
  return inPgTransaction(pool, async (client) => {
    await client.query(HOLD_OWNERS_SQL, [JSON.stringify(owners), ADVISORY_LOCK_CLASSES.userJobs]);
    const result = await client.query<UpsertRow>(UPSERT_SQL, [JSON.stringify(rows), source, run.since]);
    const counts = countsOf(result.rows[0]);
    if (run.runId !== undefined) {
      // Last before the COMMIT: the run's row is locked only from here to there, so a batch beside
      // this one waits for it only that long.
      await client.query(ADD_RUN_COUNTS_SQL, [
        run.runId,
        counts.inserted + counts.updated + counts.unchanged,
        counts.inserted,
        counts.updated,
      ]);
    }
    return counts;
  });
}

/** `work` on one of the pool's connections in a transaction, committed when it returns. */
async function inPgTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let result: T;
  try {
    await client.query('BEGIN');
    result = await work(client);
    await client.query('COMMIT');
  } catch (error) {
    // A connection that cannot roll back is dropped, which rolls back too.
    const failed = await client.query('ROLLBACK').then(
      () => undefined,
      (rollbackError: unknown) => rollbackError as Error,
    );
    client.release(failed);
    throw error;
  }
  client.release();
  return result;
}

/** What UPSERT_SQL answers: one row. */
interface UpsertRow {
  firsts: number;
  inserted: number;
  updated: number;
  changed_later: number;
  held: [cluster: string, jobId: string, jobKey: string, receiptId: number][];
}

/** What UPSERT_SQL's row says, as the run counts it. */
function countsOf(row: UpsertRow | undefined): UpsertCounts {
  const { firsts, inserted, updated, changed_later, held } = row ?? {
    firsts: 0,
    inserted: 0,
    updated: 0,
    changed_later: 0,
    held: [],
  };
  return {
    inserted,
    updated: updated + changed_later,
    unchanged: firsts - inserted - updated - changed_later,
    held: held.map(([cluster, jobId, jobKey, receiptId]) => ({
      rowKey: jobRowKey({ cluster, jobId }),
      cluster,
      jobKey,
      receiptId,
    })),
  };
}

// A batch's jobs added to its run's counts (RunWrite.runId): `seen` by the jobs the run wrote for the
// first time (inserted + updated + unchanged), as the run counts them.
const ADD_RUN_COUNTS_SQL = `
UPDATE ingestion_runs SET seen = seen + $2, inserted = inserted + $3, updated = updated + $4 WHERE id = $1`;

// The rows that share a cluster and JobIDRaw or job key with a record of the batch, with or without
// the `@<submit>` of a job that reused an id (reused-job-id.ts): `4242` and `4242@...`, the range
// between `4242@` and `4242A` in the byte order of the "C" collation these columns use. Four probes
// of the (cluster, job_id) and (cluster, job_key) indexes per record. The rows found by JobIDRaw bring
// their steps, which a later read of the same run keeps (keepStepsOfEarlierReads): read here, in the
// batch's one lookup, not in a query of their own.
const IDENTITY_COLUMNS = 'j.cluster, j.job_id, j.job_key, j.submit_at, j.start_at, j.end_at, j.is_terminal, j.state';
const STORED_IDENTITIES_SQL = `
WITH wanted AS MATERIALIZED (
  SELECT DISTINCT * FROM json_to_recordset($1::json)
    AS w(cluster varchar COLLATE "C", job_id varchar COLLATE "C", job_key varchar COLLATE "C")
)
SELECT ${IDENTITY_COLUMNS}, j.steps
  FROM wanted w JOIN slurm_jobs j ON j.cluster = w.cluster AND j.job_id = w.job_id
UNION ALL
SELECT ${IDENTITY_COLUMNS}, j.steps
  FROM wanted w JOIN slurm_jobs j
    ON j.cluster = w.cluster AND j.job_id > w.job_id || '@' AND j.job_id < w.job_id || 'A'
UNION ALL
SELECT ${IDENTITY_COLUMNS}, NULL::jsonb
  FROM wanted w JOIN slurm_jobs j ON j.cluster = w.cluster AND j.job_key = w.job_key
UNION ALL
SELECT ${IDENTITY_COLUMNS}, NULL::jsonb
  FROM wanted w JOIN slurm_jobs j
    ON j.cluster = w.cluster AND j.job_key > w.job_key || '@' AND j.job_key < w.job_key || 'A'`;

/**
 * The stored rows a batch's records may be, or may collide with: the same cluster and JobIDRaw or
 * job key, also as a later job that reused the id stored them (`4242@20261204T030510Z`); those of the
 * same JobIDRaw with their stored steps.
 */
export async function findStoredIdentities(pool: pg.Pool, jobs: NormalizedJob[]): Promise<StoredJobIdentity[]> {
  if (jobs.length === 0) return [];
  const wanted = jobs.map((job) => ({ cluster: job.cluster, job_id: job.jobId, job_key: job.jobKey }));
  const result = await inStore(() =>
    pool.query<{
      cluster: string;
      job_id: string;
      job_key: string;
      submit_at: Date | null;
      start_at: Date | null;
      end_at: Date | null;
      is_terminal: boolean;
      state: string;
      steps: unknown;
    }>(STORED_IDENTITIES_SQL, [JSON.stringify(wanted)]),
  );
  return result.rows.map((row) => ({
    cluster: row.cluster,
    jobId: row.job_id,
    jobKey: row.job_key,
    submitAt: row.submit_at,
    startAt: row.start_at,
    endAt: row.end_at,
    isTerminal: row.is_terminal,
    state: row.state,
    // Null from the rows found by key only; steps are kept by JobIDRaw (keepStepsOfEarlierReads).
    ...(row.steps === null ? {} : { steps: row.steps }),
  }));
}

// A cluster's run lock, on one connection: ADVISORY_LOCK_CLASSES.ingestionCluster's for the cluster,
// exclusive, then ADVISORY_LOCK_KEYS.ingestion shared, which a run of an older release holds exclusively.
interface LockStep {
  take: string;
  tryTake: string;
  params: (cluster: RunCluster) => unknown[];
}
const CLUSTER_LOCK: LockStep = {
  take: 'pg_advisory_lock($1, hashtext($2))',
  tryTake: 'pg_try_advisory_lock($1, hashtext($2))',
  params: (cluster) => [CLUSTER_LOCK_CLASS, cluster],
};
const RELEASE_LOCK: LockStep = {
  take: 'pg_advisory_lock_shared($1)',
  tryTake: 'pg_try_advisory_lock_shared($1)',
  params: () => [INGEST_LOCK_KEY],
};

/** The release of a cluster's run lock held by `client`, which goes back to its pool. */
function ingestLockReleaser(client: pg.PoolClient, cluster: RunCluster): ReleaseLock {
  return async () => {
    try {
      await client.query('SELECT pg_advisory_unlock_shared($1), pg_advisory_unlock($2, hashtext($3))', [
        INGEST_LOCK_KEY,
        CLUSTER_LOCK_CLASS,
        cluster,
      ]);
      client.release();
    } catch (error) {
      // Destroying the connection releases its session locks too.
      client.release(error as Error);
    }
  };
}

/**
 * Takes the cluster's lock, then the release lock, with `take` (tried or waited for): both, held by
 * `client` until the returned function releases them, or neither, `client` back in its pool.
 */
async function takeBothOrNeither(
  client: pg.PoolClient,
  cluster: RunCluster,
  take: (lock: LockStep) => Promise<boolean>,
): Promise<ReleaseLock | undefined> {
  if (await take(CLUSTER_LOCK)) {
    if (await take(RELEASE_LOCK)) return ingestLockReleaser(client, cluster);
    await client.query('SELECT pg_advisory_unlock($1, hashtext($2))', CLUSTER_LOCK.params(cluster));
  }
  client.release();
  return undefined;
}

/**
 * Takes `cluster`'s ingestion lock (RunCluster) on a dedicated connection, or returns undefined when
 * another process holds it: another run of the cluster, or a run of a release from before runs had a
 * cluster (a rolling deploy). Runs of other clusters do not keep it. The returned function releases it.
 */
export async function tryAcquireIngestLock(pool: pg.Pool, cluster: RunCluster = ''): Promise<ReleaseLock | undefined> {
  const client = await pool.connect();
  try {
    const tryTake = async (lock: LockStep) =>
      (await client.query<{ locked: boolean }>(`SELECT ${lock.tryTake} AS locked`, lock.params(cluster))).rows[0]
        ?.locked === true;
    return await takeBothOrNeither(client, cluster, tryTake);
  } catch (error) {
    // Destroying the connection releases a session lock it may have taken.
    client.release(error as Error);
    throw error;
  }
}

// PostgreSQL's "lock_not_available": lock_timeout ended the wait.
const LOCK_NOT_AVAILABLE = '55P03';
// One wait of the loop below: short, so that a shutdown is not held up; and at most half of
// DB_QUERY_TIMEOUT_MS, which would take the silence of a longer one for a dead database.
const LOCK_WAIT_STEP_MS = 1_000;

/**
 * Takes the ingestion lock like tryAcquireIngestLock, but queues for it for up to `waitMs`
 * (on one connection, held meanwhile) instead of giving up at once. PostgreSQL grants a freed
 * lock to the waiter already queued, so a waiter gets its turn between two backfill days,
 * which try the lock again only after the day before released it; a try alone almost never
 * lands in that gap. Undefined when the wait ran out or `signal` aborted it.
 */
export async function acquireIngestLockWaiting(
  pool: pg.Pool,
  options: { waitMs: number; queryTimeoutMs: number; signal?: AbortSignal; cluster?: RunCluster },
): Promise<ReleaseLock | undefined> {
  const { waitMs, queryTimeoutMs, signal } = options;
  const cluster = options.cluster ?? '';
  const deadline = Date.now() + waitMs;
  const longestStepMs = Math.min(LOCK_WAIT_STEP_MS, queryTimeoutMs / 2);
  const client = await pool.connect();
  /** Queues for one lock until the deadline; whether it was granted. */
  const waitFor = async (lock: LockStep): Promise<boolean> => {
    for (;;) {
      const stepMs = Math.min(longestStepMs, deadline - Date.now());
      if (stepMs <= 0 || signal?.aborted) return false;
      // SET LOCAL ends with the transaction; the advisory lock is the session's and stays.
      await client.query('BEGIN');
      try {
        await client.query(`SELECT set_config('lock_timeout', $1, true)`, [`${Math.max(1, Math.round(stepMs))}ms`]);
        await client.query(`SELECT ${lock.take}`, lock.params(cluster));
        await client.query('COMMIT');
        return true;
      } catch (error) {
        await client.query('ROLLBACK');
        if ((error as { code?: unknown }).code !== LOCK_NOT_AVAILABLE) throw error;
      }
    }
  };
  try {
    return await takeBothOrNeither(client, cluster, waitFor);
  } catch (error) {
    client.release(error as Error);
    throw error;
  }
}

/**
 * Gives the runs recorded before runs had a cluster (cluster NULL) to `cluster`, the first run of a
 * release with the column: a single-cluster site's window goes on where it was, and a cluster added
 * later, by a second instance, starts with runs of its own (INGEST_LOOKBACK_DAYS back), not with the
 * first's. Called holding `cluster`'s lock; under a lock of its own, so that two instances upgraded at
 * once do not share the rows out. How many.
 */
export async function adoptRunsWithoutCluster(pool: pg.Pool, cluster: RunCluster): Promise<number> {
  // Not inStore: it runs before the run is begun, as failAbandonedRuns does, so a database that refuses it
  // (read-only, behind the code) is a run not started, not a run's store failing.
  return inPgTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCK_KEYS.ingestionAdoption]);
    const result = await client.query('UPDATE ingestion_runs SET cluster = $1 WHERE cluster IS NULL', [cluster]);
    return result.rowCount ?? 0;
  });
}

export interface RunRecord {
  id: number;
  trigger: string;
  /** RunCluster; null for a run recorded before runs had a cluster and not yet adopted. */
  cluster: string | null;
  source: string | null;
  sourceNotes: Record<string, string> | null;
  windowStart: Date;
  windowEnd: Date;
  seen: number;
  inserted: number;
  updated: number;
  skipped: number;
  outcome: 'running' | 'success' | 'partial' | 'failed';
  error: string | null;
  startedAt: Date;
  finishedAt: Date | null;
  durationMs: number | null;
}

const RUN_SELECT = {
  id: true,
  trigger: true,
  cluster: true,
  source: true,
  sourceNotes: true,
  windowStart: true,
  windowEnd: true,
  seen: true,
  inserted: true,
  updated: true,
  skipped: true,
  outcome: true,
  error: true,
  startedAt: true,
  finishedAt: true,
  durationMs: true,
} as const;

function toRunRecord(row: Prisma.IngestionRunGetPayload<{ select: typeof RUN_SELECT }>): RunRecord {
  return { ...row, sourceNotes: (row.sourceNotes as Record<string, string> | null) ?? null };
}

/** Records a run as started. */
export async function createRun(
  db: Db,
  input: { trigger: string; cluster: RunCluster; window: { start: Date; end: Date } },
) {
  const row = await db.ingestionRun.create({
    data: {
      trigger: input.trigger,
      cluster: input.cluster,
      windowStart: input.window.start,
      windowEnd: input.window.end,
    },
    select: { id: true },
  });
  return row.id;
}

/** A run's counts as its row (ingestion_runs) holds them. */
export interface RunCounts {
  seen: number;
  inserted: number;
  updated: number;
}

/**
 * How a run ended. A failed run gives no counts: its row keeps those its committed batches added
 * (RunWrite.runId). The run's own count of `seen` includes the jobs of a batch the database refused or
 * lost, rolled back with them, and said it stored more than it did.
 */
export type RunEnd = {
  source: string | null;
  sourceNotes: Record<string, string>;
  skipped: number;
  error: string | null;
  /** Stopped by its server's shutdown (findLastLiveRunFinish leaves it out); its error says so for people. */
  stoppedByShutdown: boolean;
  finishedAt: Date;
  durationMs: number;
  /** Set when the run read less than its window: a file written before the window's end. */
  windowEnd?: Date;
} & ({ outcome: 'success' | 'partial'; seen: number; inserted: number; updated: number } | { outcome: 'failed' });

/** Records how a run ended; the counts its row holds then. */
export async function finishRun(db: Db, id: number, result: RunEnd): Promise<RunCounts> {
  return inStore(() =>
    db.ingestionRun.update({ where: { id }, data: result, select: { seen: true, inserted: true, updated: true } }),
  );
}

/**
 * What the notes of a run cut short (`how`) say of its counts, under `counts`: its batches added theirs
 * to its row as they committed (RunWrite.runId), so the counts are what it stored, not the whole window.
 */
export function cutRunCountsNote(how: string): string {
  return `${how}: the counts are those of the batches of jobs it committed, each with its jobs (a batch not committed rolled back with its jobs); its skipped records were not counted`;
}

/** How long the shutdown's record of a run waits for a batch of the run that is committing (it holds the run's row). */
const SHUTDOWN_RECORD_LOCK_WAIT_MS = 2_000;

/**
 * Records run `id` failed and stopped by its server's shutdown if it is still running (a run the
 * shutdown stopped waiting for), with `countsNote` as its notes' `counts`; the counts its committed
 * batches left on its row, or null when it had ended and written its own record. A batch committing
 * meanwhile holds the row: waited for a moment, past which this throws and the row stays running.
 */
export async function failRunningRunForShutdown(
  pool: pg.Pool,
  id: number,
  result: { error: string; countsNote: string; finishedAt: Date; durationMs: number },
): Promise<{ seen: number; inserted: number; updated: number } | null> {
  return inPgTransaction(pool, async (client) => {
    await client.query(`SET LOCAL lock_timeout = ${SHUTDOWN_RECORD_LOCK_WAIT_MS}`);
    const updated = await client.query<{ seen: number; inserted: number; updated: number }>(
      `UPDATE ingestion_runs
          SET outcome = 'failed', stopped_by_shutdown = true, error = $2, finished_at = $3, duration_ms = $4,
              source_notes = coalesce(source_notes, '{}'::jsonb) || jsonb_build_object('counts', $5::text)
        WHERE id = $1 AND outcome = 'running'
        RETURNING seen, inserted, updated`,
      [id, result.error, result.finishedAt, result.durationMs, result.countsNote],
    );
    return updated.rows[0] ?? null;
  });
}

/** How a run that failed on its database ended, kept by its process while that end could not be written. */
export interface UnrecordedRunEnd {
  id: number;
  error: string;
  sourceNotes: Record<string, string>;
  finishedAt: Date;
  durationMs: number;
}

/**
 * Writes the ends of runs whose process knows how they failed (their database connection lost, the
 * record of it refused too) where they are still `running`; only called while holding the ingest lock,
 * before failAbandonedRuns, which would say their process stopped. Their counts are those their committed
 * batches left, which their notes say. The ids no longer running afterwards (written now, or earlier by
 * another process).
 */
export async function failRunsLeftByLostConnection(
  pool: pg.Pool,
  ends: readonly UnrecordedRunEnd[],
): Promise<number[]> {
  const settled: number[] = [];
  for (const end of ends) {
    await pool.query(
      `UPDATE ingestion_runs
          SET outcome = 'failed', error = $2, finished_at = $3, duration_ms = $4,
              source_notes = coalesce(source_notes, '{}'::jsonb) || $5::jsonb || jsonb_build_object('counts', $6::text)
        WHERE id = $1 AND outcome = 'running'`,
      [
        end.id,
        end.error,
        end.finishedAt,
        end.durationMs,
        JSON.stringify(end.sourceNotes),
        cutRunCountsNote('cut short when its database connection was lost'),
      ],
    );
    settled.push(end.id);
  }
  return settled;
}

/**
 * `cluster`'s runs left `running` by a process that died; only called while holding its ingest lock (a
 * run of another cluster may be running: its lock says so, not this one). Their counts are those their
 * committed batches left (RunWrite.runId), which their notes say.
 */
export async function failAbandonedRuns(pool: pg.Pool, now: Date, cluster: RunCluster = ''): Promise<number> {
  // Added to the notes the run had (an access warning, why a source did not answer), not in their place.
  const result = await pool.query(
    `UPDATE ingestion_runs
        SET outcome = 'failed', error = $1, finished_at = $2,
            source_notes = coalesce(source_notes, '{}'::jsonb) || jsonb_build_object('counts', $3::text)
      WHERE outcome = 'running' AND ${runsOfSql(4)}`,
    [
      'interrupted: the process stopped before the run finished',
      now,
      cutRunCountsNote('cut short when its process stopped'),
      cluster,
    ],
  );
  return result.rowCount ?? 0;
}

/**
 * Triggers whose runs read up to now: scheduled runs, "Run now" and the demo's seed. A backfill
 * day reads a window of the past, and says nothing about whether this interval was read.
 */
export const LIVE_WINDOW_TRIGGERS = ['schedule', 'manual', 'seed'];

/**
 * How far a completed run of any trigger has read (the admin page's "data through"). A backfill day
 * read up to the earlier of its window's end and when it ran (today's ends at midnight, in the
 * future), and moves the mark only where it joins on to what was read before it: from the mark of the
 * runs reading up to now, a backfill day that begins by then extends it, and the days after it in
 * turn. A day that had not begun when it was read (`--to` the month's end) read nothing. The newest
 * backfill day used to be taken whatever came before it: a backfill of today, or of a day still to
 * come, said the data was complete up to when it ran while the scheduled runs had failed since
 * yesterday, and the hours between were never read.
 */
export async function findHighWaterMark(db: Db, cluster: RunCluster = ''): Promise<Date | null> {
  const live = await findLiveHighWaterMark(db, { cluster });
  // Only the days reaching past the mark: a few, however long the backfills before them. With no run
  // reading up to now (backfills alone, a day at a time from cron), every day, joined on from the first:
  // the newest day read used to be taken, so a day whose run failed, and was never read again, was
  // counted as complete (the month-end form did not say the month's data was short of it).
  const later = await db.ingestionRun.findMany({
    where: {
      ...runsOf(cluster),
      outcome: { in: ['success', 'partial'] },
      trigger: 'backfill',
      ...(live === null ? {} : { windowEnd: { gt: live } }),
    },
    orderBy: [{ windowStart: 'asc' }, { startedAt: 'asc' }],
    select: { windowStart: true, windowEnd: true, startedAt: true },
  });
  const first = later.find((run) => run.windowStart <= run.startedAt);
  if (live === null && first === undefined) return null;
  let mark = live?.getTime() ?? (first as { windowStart: Date }).windowStart.getTime();
  for (const run of later) {
    if (run.windowStart.getTime() > mark || run.windowStart > run.startedAt) continue;
    mark = Math.max(mark, Math.min(run.windowEnd.getTime(), run.startedAt.getTime()));
  }
  return new Date(mark);
}

/**
 * How recently a cluster's runs must have started for month-end to wait for its data: a cluster whose
 * instance was retired (or whose SLURM_CLUSTER was renamed) would otherwise hold the mark back for ever.
 * A month and a few days, so that an instance down for the whole month still counts.
 */
export const MONTH_END_CLUSTER_DAYS = 35;

/**
 * How far Slurm accounting has been read for every cluster the database's instances read (month-end's
 * form): the earliest of their marks (findHighWaterMark), and whose it is; null before any completed run.
 * The clusters are those with a run of a live trigger started in the last MONTH_END_CLUSTER_DAYS (else
 * the newest run's); one that never completed a run has no mark and is left out. With one instance per
 * cluster on one database, the mark of the instance that happened to serve the page said the data was
 * complete while the other cluster's source had been down since.
 */
export async function findIngestedThroughEveryCluster(
  db: Db,
  now: Date,
): Promise<{ through: Date; cluster: RunCluster; clusterCount: number } | null> {
  const since = new Date(now.getTime() - MONTH_END_CLUSTER_DAYS * 86_400_000);
  const live = LIVE_WINDOW_TRIGGERS.map((trigger) => `'${trigger}'`).join(', ');
  const recent = await db.$queryRawUnsafe<{ cluster: string }[]>(
    `SELECT DISTINCT cluster FROM ingestion_runs
      WHERE cluster IS NOT NULL AND trigger IN (${live}) AND started_at >= $1::timestamptz ORDER BY cluster`,
    since.toISOString(),
  );
  let clusters = recent.map((row) => row.cluster);
  if (clusters.length === 0) {
    const newest = await db.ingestionRun.findFirst({ orderBy: { id: 'desc' }, select: { cluster: true } });
    clusters = [newest?.cluster ?? ''];
  }
  let earliest: { through: Date; cluster: RunCluster } | null = null;
  for (const cluster of clusters) {
    const through = await findHighWaterMark(db, cluster);
    if (through && (earliest === null || through < earliest.through)) earliest = { through, cluster };
  }
  return earliest && { ...earliest, clusterCount: clusters.length };
}

/** Rows counted exactly before storedJobCount falls back to the planner's estimate. */
const EXACT_JOB_COUNT_LIMIT = 10_000;

/**
 * How many jobs slurm_jobs holds, whoever loaded them: exact up to EXACT_JOB_COUNT_LIMIT, else
 * the planner's estimate (pg_class.reltuples, kept by ANALYZE), as a count(*) of a million rows
 * reads them all.
 */
export async function storedJobCount(db: Db): Promise<{ count: number; isEstimate: boolean }> {
  const rows = await db.$queryRaw<{ counted: number; estimated: number | null }[]>`
    SELECT (SELECT count(*) FROM (SELECT 1 FROM slurm_jobs LIMIT ${EXACT_JOB_COUNT_LIMIT}) AS first_rows)::int AS counted,
           (SELECT reltuples FROM pg_class WHERE oid = 'slurm_jobs'::regclass)::float8 AS estimated`;
  const counted = rows[0]?.counted ?? 0;
  if (counted < EXACT_JOB_COUNT_LIMIT) return { count: counted, isEstimate: false };
  return { count: Math.max(counted, Math.round(rows[0]?.estimated ?? 0)), isEstimate: true };
}

/**
 * The end of the newest window a run reading up to now completed: everything before it has
 * been read, and the scheduler's next window starts there. Each such window starts where the
 * one before ended (less the overlap). A backfill day does not move it: it says nothing about
 * the time between that mark and its start, and a day not over yet ends in the future.
 * `withSeed: false` leaves out the demo's seed run, which read the demo's file and nothing else.
 */
export async function findLiveHighWaterMark(
  db: Db,
  options: { withSeed?: boolean; cluster?: RunCluster } = {},
): Promise<Date | null> {
  const triggers = options.withSeed === false ? LIVE_WINDOW_TRIGGERS.filter((t) => t !== 'seed') : LIVE_WINDOW_TRIGGERS;
  const rows = await db.$queryRawUnsafe<{ window_end: Date | null }[]>(
    liveHighWaterMarkSql(triggers),
    options.cluster ?? '',
  );
  return rows[0]?.window_end ?? null;
}

/**
 * findLiveHighWaterMark's statement for runs of `triggers` and of cluster `$1` (runsOf; a test reads its
 * plan): the newest of each completed outcome, of the cluster and of the runs without one, each read from
 * the index on (cluster, outcome, window_end) newest first. One ORDER BY over `outcome IN ('success',
 * 'partial')` cannot use an index in its order: it read and sorted every run ever recorded, a run a minute
 * by default (415 ms at each scheduled run and page view after two years, 1,051,200 runs). Nor can the
 * index on (outcome, window_end) serve a cluster alone: the runs without a cluster are none once adopted,
 * and looking for them there read every completed run.
 */
export function liveHighWaterMarkSql(triggers: readonly string[]): string {
  const list = triggers.map((trigger) => `'${trigger}'`).join(', ');
  const newest = (outcome: string, cluster: string) => `(SELECT window_end FROM ingestion_runs
              WHERE ${cluster} AND outcome = '${outcome}' AND trigger IN (${list}) ORDER BY window_end DESC LIMIT 1)`;
  const all = ['success', 'partial'].flatMap((outcome) => [
    newest(outcome, 'cluster = $1'),
    newest(outcome, 'cluster IS NULL'),
  ]);
  return `SELECT max(window_end) AS window_end FROM (${all.join(' UNION ALL ')}) AS newest`;
}

/**
 * Where the failed runs of the newest outage began, while it is recent: the window start of the first
 * completed run reading up to now that followed failed runs (they all had its window start, since a
 * failed run does not move the mark), when that run's window ended after `since`; else null.
 * Accounting records of the jobs that ended during an outage of slurmdbd reach it after it is back
 * (slurmctld queues them), possibly after that first run read the outage: the runs after it re-read
 * from there until `since` passes it.
 */
export async function findRecentCatchUpStart(db: Db, since: Date, cluster: RunCluster = ''): Promise<Date | null> {
  const rows = await db.$queryRawUnsafe<{ start: Date | null }[]>(
    RECENT_CATCH_UP_START_SQL,
    since.toISOString(),
    cluster,
  );
  return rows[0]?.start ?? null;
}

const LIVE_TRIGGERS_SQL = LIVE_WINDOW_TRIGGERS.map((trigger) => `'${trigger}'`).join(', ');

/**
 * findRecentCatchUpStart's statement, `since` its $1 and the cluster its $2 (runsOf; a test reads its plan). The window_end bounds let
 * (outcome, window_end) find the few rows concerned. OFFSET 0 keeps each EXISTS a subplan run for each
 * recent run, reading its window's runs from that index: as a semi-join PostgreSQL hashed every failed
 * run ever recorded at each scheduled run (45,828 of them, 29-65 ms, on a copy aged two years with a
 * month of runs failed for want of a source), and with the failed runs' EXISTS alone fenced, it planned
 * to hash every completed run (523,948) for the NOT EXISTS.
 */
export const RECENT_CATCH_UP_START_SQL = `SELECT min(r.window_start) AS start FROM ingestion_runs r
     WHERE r.outcome IN ('success', 'partial') AND r.trigger IN (${LIVE_TRIGGERS_SQL}) AND r.window_end > $1::timestamptz
       AND ${runsOfSql(2, 'r.')}
       AND EXISTS (SELECT 1 FROM ingestion_runs f
                   WHERE f.outcome = 'failed' AND f.trigger IN (${LIVE_TRIGGERS_SQL}) AND ${runsOfSql(2, 'f.')}
                     AND f.window_start = r.window_start
                     AND f.window_end > r.window_start AND f.window_end <= r.window_end AND f.id < r.id
                   OFFSET 0)
       AND NOT EXISTS (SELECT 1 FROM ingestion_runs p
                       WHERE p.outcome IN ('success', 'partial') AND p.trigger IN (${LIVE_TRIGGERS_SQL})
                         AND ${runsOfSql(2, 'p.')} AND p.window_start = r.window_start
                         AND p.window_end > r.window_start AND p.window_end <= r.window_end AND p.id < r.id
                       OFFSET 0)`;

/**
 * The runs that say new jobs are being read: every run reading up to now, and a backfill day only when
 * it had begun by the time the run started (today). A backfill of past days, counted as fresh, kept
 * IngestionStale silent for as long as an operator backfilled last month while the scheduled runs
 * failed, and no new job was read.
 */
const READ_UP_TO_ITS_START_SQL = `(trigger <> 'backfill' OR window_end >= started_at)`;

/** When the newest completed run that read up to its own start finished (READ_UP_TO_ITS_START_SQL). */
export async function findLastSuccessfulFinish(db: Db, cluster: RunCluster = ''): Promise<Date | null> {
  const rows = await db.$queryRawUnsafe<{ finished_at: Date }[]>(LAST_SUCCESSFUL_FINISH_SQL, cluster);
  return rows[0]?.finished_at ?? null;
}

/**

 * The newest completed run of cluster `$1` that read up to its start, and of those without a cluster
 * (runsOf), as a FROM item with `columns`: by id (a cluster's runs hold its lock, so its ids follow its
 * finishes), each found at the end of the (cluster, id) index, not behind every run of another cluster.
 * Ordered by finished_at, which no index holds, it read and sorted every run ever recorded at each
 * start-up (295 ms after two years of runs a minute).
 */
function newestSuccessOfRunsOfSql(columns: string): string {
  const newest = (cluster: string) => `(SELECT id, ${columns} FROM ingestion_runs
      WHERE ${cluster} AND outcome IN ('success', 'partial') AND finished_at IS NOT NULL AND ${READ_UP_TO_ITS_START_SQL}
      ORDER BY id DESC LIMIT 1)`;
  return `(${newest('cluster = $1')} UNION ALL ${newest('cluster IS NULL')} ORDER BY id DESC LIMIT 1) AS newest`;
}

/** findLastSuccessfulFinish's statement, the cluster its $1 (a test reads its plan). */
export const LAST_SUCCESSFUL_FINISH_SQL = `SELECT finished_at FROM ${newestSuccessOfRunsOfSql('finished_at')}`;

/**
 * As findLastSuccessfulFinish, with the run's source and file fingerprint, for the freshness gauges at each scrape: the newest by id (runs
 * hold the ingestion lock, so ids follow finishes), found at the primary key's end however many
 * runs the table holds, and given up after `timeoutMs` (its connection closed, as /readyz does)
 * so that a silent database cannot make the scrape time out.
 */
export async function findLastSuccessfulFinishWithin(
  pool: pg.Pool,
  timeoutMs: number,
  cluster: RunCluster = '',
): Promise<{
  finishedAt: Date;
  source: string | null;
  fileFingerprint: string | null;
  fallbackNotes: { sacct: string | null; file: string | null };
} | null> {
  const { rows } = await queryWithin<{
    finished_at: Date;
    source: string | null;
    file_fingerprint: string | null;
    sacct_note: string | null;
    file_note: string | null;
  }>(
    pool,
    {
      // The same row says which source answered it and, for the file, the fingerprint it read; and what
      // the set-up checks of the fallbacks it did not need found (slurmrestd is never a fallback).
      text: `SELECT finished_at, source, file_fingerprint, sacct_note, file_note
               FROM ${newestSuccessOfRunsOfSql(
                 `finished_at, source, source_notes->>'fileFingerprint' AS file_fingerprint,
                  source_notes->>'sacct' AS sacct_note, source_notes->>'file' AS file_note`,
               )}`,
      values: [cluster],
    },
    timeoutMs,
  );
  const row = rows[0];
  return row
    ? {
        finishedAt: row.finished_at,
        source: row.source,
        fileFingerprint: row.file_fingerprint,
        fallbackNotes: { sacct: row.sacct_note, file: row.file_note },
      }
    : null;
}

/**
 * When the newest run reading up to now (of any outcome) finished; runs hold the lock, so ids
 * follow finishes. A run its server's shutdown stopped does not count: it read its window only
 * part way, and counted, the other instances skipped their next tick (an interval more unread).
 * Told by its stopped_by_shutdown, not its error's words: a source's error ending with the
 * shutdown's words was taken for one, and rewording them would have lost the runs before.
 */
export async function findLastLiveRunFinish(db: Db, cluster: RunCluster = ''): Promise<Date | null> {
  const row = await newestOfRunsOf(
    cluster,
    (probed) =>
      db.ingestionRun.findFirst({
        where: {
          cluster: probed,
          finishedAt: { not: null },
          trigger: { in: LIVE_WINDOW_TRIGGERS },
          stoppedByShutdown: false,
        },
        orderBy: { id: 'desc' },
        select: { id: true, finishedAt: true },
      }),
    (a, b) => a.id > b.id,
  );
  return row?.finishedAt ?? null;
}

/** `cluster`'s newest completed run that read from `source`. */
export async function findLastCompletedRun(
  db: Db,
  source: string,
  cluster: RunCluster = '',
): Promise<RunRecord | null> {
  const row = await inStore(() =>
    newestOfRunsOf(
      cluster,
      (probed) =>
        db.ingestionRun.findFirst({
          where: { cluster: probed, outcome: { in: ['success', 'partial'] }, source },
          orderBy: { id: 'desc' },
          select: RUN_SELECT,
        }),
      (a, b) => a.id > b.id,
    ),
  );
  return row ? toRunRecord(row) : null;
}

/** The most recent runs of every cluster, newest first. */
export async function listRecentRuns(db: Db, limit: number): Promise<RunRecord[]> {
  const rows = await db.ingestionRun.findMany({ orderBy: { id: 'desc' }, take: limit, select: RUN_SELECT });
  return rows.map(toRunRecord);
}

/**
 * Whether a completed backfill run already read all of [start, end] (the backfill CLI skips it).
 * Only a run that started after the window ended counts: one that read today, or a day still to
 * come (`--to` the month's end), saw only the jobs that had ended by then, and counting it kept
 * every later backfill from reading the rest of that day.
 */
export async function isBackfillWindowDone(
  db: Db,
  window: { start: Date; end: Date },
  cluster: RunCluster = '',
): Promise<boolean> {
  const row = await db.ingestionRun.findFirst({
    where: {
      ...runsOf(cluster),
      trigger: 'backfill',
      outcome: { in: ['success', 'partial'] },
      windowStart: { lte: window.start },
      windowEnd: { gte: window.end },
      startedAt: { gte: window.end },
    },
    select: { id: true },
  });
  return row !== null;
}

/** Counts stored jobs (admin page). */
export async function countJobs(db: Db): Promise<number> {
  return db.slurmJob.count();
}
