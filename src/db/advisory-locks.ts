import type pg from 'pg';

/**
 * Every PostgreSQL advisory lock key the app takes, in one place: two features that picked the
 * same number would wait on each other without any error. Ingestion once shared the audit log's
 * key, so every audited request (a sign-in, a rate change) waited for a whole Slurm read.
 * A key in use must not change while an older release may still run (a rolling deploy): the old
 * and the new process would then not exclude each other.
 */
export const ADVISORY_LOCK_KEYS = {
  /** Held by the migration runner for the whole run (session lock). */
  migrations: 727_450_113,
  /** Held while the demo seed checks and fills an empty database (transaction lock). */
  demoSeed: 727_450_114,
  /** Serialises appends to the audit hash chain (transaction lock): the chain never forks. */
  auditAppend: 727_450_115,
  /**
   * One ingestion run at a time across workers and replicas: the releases before runs had a cluster
   * held it exclusively (session lock, tried; a scheduled run queued for it for up to half an
   * interval). A run now holds it shared beside its cluster's lock (ADVISORY_LOCK_CLASSES.ingestionCluster),
   * so that runs of two clusters go side by side while a process of an older release, in a rolling
   * deploy, still excludes them all and they it.
   */
  ingestion: 727_450_116,
  /**
   * One month-end run at a time across workers and replicas (session lock, tried, never waited
   * for): a second run beside the first bills nothing the first would not, but doubles the load
   * and answers with hundreds of users "billed by another receipt".
   */
  monthEnd: 727_450_117,
  /**
   * Rates against receipts (transaction lock): a receipt holds it shared while it reads and copies
   * the rates, a rate change exclusively, so the change is dated after the receipts in flight and
   * read by every receipt after it. Fair, unlike a shared row lock: a month-end run's receipts,
   * overlapping one another, cannot keep a rate change waiting for the whole run.
   */
  pricingChange: 727_450_118,
  /**
   * Month-end starts against one another (transaction lock, tried): a start holds it from before it
   * tries `monthEnd` until its run's row has committed, so a second start refused at the same
   * moment reads that row and can name the run already going (its id and page). A start finding it
   * taken tries again shortly, holding no connection meanwhile: waiting for it inside a transaction
   * kept a pool connection each, and starved the start holding it of the second one it needs.
   */
  monthEndStart: 727_450_120,
  /**
   * Held (transaction lock) while a run gives the runs recorded before runs had a cluster
   * (ingestion_runs.cluster NULL) to its own cluster: two instances upgraded at once do not share them out.
   */
  ingestionAdoption: 727_450_121,
} as const;

/**
 * The first key of the two-key advisory locks (`pg_advisory_xact_lock(int, int)`), one per kind of
 * object; the second key names the object. PostgreSQL keeps the two-key locks apart from the
 * one-key locks above (pg_locks.objsubid 2, not 1), so they can never meet those keys.
 */
export const ADVISORY_LOCK_CLASSES = {
  /**
   * A user's jobs, second key `hashtext(username)` (transaction lock): a receipt billing the user
   * holds it exclusively from before it reads their unbilled jobs; an ingestion batch holds it
   * shared for every user whose stored or incoming jobs it writes, taken in key order before its
   * upsert. So a receipt bills the figures the job rows keep (docs/billing.md, "Receipts and
   * ingestion"). Two users whose names share a hash only wait for each other now and then.
   */
  userJobs: 727_450_119,
  /**
   * One ingestion run at a time per cluster, across workers, replicas and instances (session lock),
   * second key `hashtext(cluster)` (SLURM_CLUSTER, '' where it is unset): two instances on one
   * database, one per cluster, each run their own. Two cluster names that share a hash only make
   * their runs wait for each other.
   */
  ingestionCluster: 727_450_122,
} as const;

/** Releases a session lock taken by tryAcquireSessionLock and gives its connection back. */
export type ReleaseLock = () => Promise<void>;

/**
 * Takes the session advisory lock `key` on a dedicated connection of `pool`, or returns undefined
 * when another session holds it. `label`, when given, becomes the holding session's
 * application_name (what another process can read of who holds it) until the release.
 */
export async function tryAcquireSessionLock(
  pool: pg.Pool,
  key: number,
  label?: string,
): Promise<ReleaseLock | undefined> {
  const client = await pool.connect();
  try {
    const result = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [key]);
    if (!result.rows[0]?.locked) {
      client.release();
      return undefined;
    }
    if (label !== undefined) await client.query(`SELECT set_config('application_name', $1, false)`, [label]);
  } catch (error) {
    // Destroying the connection releases a session lock it may have taken.
    client.release(error as Error);
    throw error;
  }
  return releaserOf(client, key, label !== undefined);
}

/** The release of session lock `key` held by `client`; it gives the connection back to its pool. */
export function releaserOf(client: pg.PoolClient, key: number, isLabelled = false): ReleaseLock {
  return async () => {
    try {
      if (isLabelled) await client.query('RESET application_name');
      await client.query('SELECT pg_advisory_unlock($1)', [key]);
      client.release();
    } catch (error) {
      // Destroying the connection releases a session lock too.
      client.release(error as Error);
    }
  };
}
