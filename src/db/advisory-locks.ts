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
  /** One ingestion run at a time across workers and replicas (session lock, tried, never waited for). */
  ingestion: 727_450_116,
  /**
   * One month-end run at a time across workers and replicas (session lock, tried, never waited
   * for): a second run beside the first bills nothing the first would not, but doubles the load
   * and answers with hundreds of users "billed by another receipt".
   */
  monthEnd: 727_450_117,
} as const;
