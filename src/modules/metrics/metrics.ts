import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { CsvExportKind } from '../../http/csv-exports.js';
import type { IngestionFreshness } from '../ingestion/ingestion.service.js';
import { KNOWN_EVENT_TYPES } from '../payments/payment-provider.js';
import type { WebhookOutcome } from '../payments/payments.service.js';

/** What the pool gauges read at scrape time; a pg.Pool has these. */
export interface PoolStats {
  totalCount: number;
  idleCount: number;
  waitingCount: number;
}

export interface MetricsOptions {
  /** Node's process metrics (CPU, memory, event loop lag), off unless METRICS_PROCESS=1. */
  hasProcessMetrics?: boolean;
  /**
   * Labels on those process metrics: a cluster worker's `worker` number. The primary sums what the
   * workers report, and a sum of their fd limits, heap limits or event-loop lags is no process's.
   */
  processLabels?: Record<string, string>;
}

/**
 * How long a scrape of /metrics waits for each database read (hpc_ready's check, the ingestion and
 * checkout gauges; at most READY_TIMEOUT_MS): half of Prometheus's default scrape_timeout, 10 s.
 */
export const SCRAPE_DATABASE_READ_LIMIT_MS = 5_000;

/** slurm_ingest_jobs_total's results: what happened to each job a run read. */
export const INGEST_JOB_RESULTS = ['inserted', 'updated', 'unchanged', 'skipped'] as const;

/** payments_checkout_expire_total's outcomes: what the provider said when a void closed a checkout. */
export const CHECKOUT_EXPIRY_OUTCOMES = ['expired', 'already_complete', 'failed'] as const;

/** auth_login_failure_total's reasons. */
export const LOGIN_FAILURE_REASONS = ['bad_credentials', 'disabled', 'locked'] as const;

/** The `kind` label of the CSV export counters: every CsvExportKind. */
export const CSV_EXPORT_KINDS = [
  'admin_paid',
  'admin_receipts',
  'my_usage',
  'user_usage',
  'audit',
  'receipt_items',
] as const satisfies readonly CsvExportKind[];

/** csv_export_refused_total's reasons. */
export const CSV_EXPORT_REFUSALS = ['user_limit', 'busy'] as const;

/**
 * payments_webhook_events_total's (event, outcome) pairs that can happen: a delivery whose body is
 * no event, or fails its signature, is counted as event "other" (as is an event type we do not
 * know, which is ignored); a known event type can have any outcome of applying it.
 */
export const WEBHOOK_EVENT_OUTCOMES: readonly (readonly [string, WebhookOutcome])[] = [
  ...(['bad_signature', 'error', 'ignored', 'duplicate'] as const).map((outcome) => ['other', outcome] as const),
  ...KNOWN_EVENT_TYPES.flatMap((event) =>
    (['ok', 'duplicate', 'mismatch', 'review', 'ignored', 'unknown_payment', 'error'] as const).map(
      (outcome) => [event, outcome] as const,
    ),
  ),
];

/**
 * Every metric the app exports, on a registry of its own. Names, types and labels are
 * a contract with the dashboards and alert rules in grafana/ and prometheus/.
 *
 * With several workers the primary sums each worker's values (prom-client's
 * AggregatorRegistry); gauges that must not be summed say how they combine in `aggregator`.
 */
export function createMetrics(options: MetricsOptions = {}) {
  const registry = new Registry();
  const registers = [registry];
  let pool: PoolStats | undefined;
  let probeReadiness: (() => Promise<boolean>) | undefined;
  let isDraining: (() => boolean) | undefined;
  let readLastIngestSuccess: (() => Promise<IngestionFreshness | null>) | undefined;
  let pendingIngestRead: Promise<IngestionFreshness | null | undefined> | undefined;
  /**
   * The newest completed run, as the two ingestion gauges read it at a scrape: one read at a time, which
   * a scrape's two collects (run together) share, and scrapes of a frozen database do not pile up
   * queries on the pool. Undefined when it cannot be read: a scrape must not fail with the database,
   * the gauges keep their last values, and hpc_ready says why.
   */
  const readIngestFreshness = (): Promise<IngestionFreshness | null | undefined> => {
    if (!readLastIngestSuccess) return Promise.resolve(undefined);
    pendingIngestRead ??= readLastIngestSuccess()
      .catch(() => undefined)
      .finally(() => {
        pendingIngestRead = undefined;
      });
    return pendingIngestRead;
  };
  let readOpenCheckouts: (() => Promise<{ provider: string; openedAt: Date }[]>) | undefined;
  let pendingCheckoutRead: Promise<void> | undefined;

  const metrics = {
    registry,
    httpRequests: new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests by method, route template and status.',
      labelNames: ['method', 'endpoint', 'status'] as const,
      registers,
    }),
    httpRequestDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency by route template and method.',
      labelNames: ['endpoint', 'method'] as const,
      // 0.5 and 1.5 are the p95 and p99 objectives: at a bucket's bound histogram_quantile says
      // exactly whether they are met, where between 1 and 2.5 it could only guess.
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2.5, 5],
      registers,
    }),
    authLoginSuccess: new Counter({ name: 'auth_login_success_total', help: 'Successful sign-ins.', registers }),
    authLoginFailure: new Counter({
      name: 'auth_login_failure_total',
      help: 'Failed sign-ins by reason.',
      labelNames: ['reason'] as const,
      registers,
    }),
    authLockoutActive: new Counter({
      name: 'auth_lockout_active_total',
      help: 'Sign-ins and password changes refused unchecked because a lock was already on (not the failure that started it); a count of refused attempts, not of the locks in force.',
      registers,
    }),
    authLockoutStart: new Counter({
      name: 'auth_lockout_start_total',
      help: 'Wrong passwords (sign-in or password change) that started a lock, once each whatever it locked (username, address, network).',
      registers,
    }),
    // Per lock, where the start is per password: one wrong password can lock the pair, the username
    // and the address, so this may rise by more than the start did.
    authLockoutEnd: new Counter({
      name: 'auth_lockout_end_total',
      help: 'Locks that ended (found ended by a later attempt or the prune, or lifted by an admin), each lock once: can rise by more than auth_lockout_start_total, which counts the wrong password that started them.',
      registers,
    }),
    authForbiddenRedirect: new Counter({
      name: 'auth_forbidden_redirect_total',
      help: 'Signed-in non-admins sent away from admin pages.',
      registers,
    }),
    receiptCreated: new Counter({
      name: 'billing_receipt_created_total',
      help: 'Receipts created, by who created them.',
      labelNames: ['scope'] as const,
      registers,
    }),
    receiptMarkedPaid: new Counter({
      name: 'billing_receipt_marked_paid_total',
      help: 'Receipts marked paid, by actor type.',
      labelNames: ['actor_type'] as const,
      registers,
    }),
    receiptVoided: new Counter({ name: 'billing_receipt_voided_total', help: 'Receipts voided.', registers }),
    csvDownloads: new Counter({
      name: 'csv_download_total',
      help: 'CSV exports by kind.',
      labelNames: ['kind'] as const,
      registers,
    }),
    csvExportsStalled: new Counter({
      name: 'csv_export_stalled_total',
      help: 'CSV exports cut off because the client stopped reading (its connection was freed).',
      labelNames: ['kind'] as const,
      registers,
    }),
    csvExportsRefused: new Counter({
      name: 'csv_export_refused_total',
      help: 'CSV exports refused: the user had too many running (user_limit) or the worker was full (busy).',
      labelNames: ['kind', 'reason'] as const,
      registers,
    }),
    webhookEvents: new Counter({
      name: 'payments_webhook_events_total',
      help: 'Payment webhook deliveries by provider, event type and outcome.',
      labelNames: ['provider', 'event', 'outcome'] as const,
      registers,
    }),
    checkoutExpiries: new Counter({
      name: 'payments_checkout_expire_total',
      help: 'Checkouts of voided payments (and of abandoned starts) the payment provider was asked to close, by outcome: expired, already_complete (paid just before), failed (left open).',
      labelNames: ['provider', 'outcome'] as const,
      registers,
    }),
    paymentProvider: new Gauge({
      name: 'payments_provider_info',
      help: 'The payment provider whose webhooks this app takes (1); no series when online payment is off.',
      labelNames: ['provider'] as const,
      // Every worker has the same provider: 1, not the number of workers.
      aggregator: 'max',
      registers,
    }),
    // Before hpc_ready: its scrape-time probe borrows a connection, and the pool
    // gauges, collected in registration order, should not count that one as busy.
    dbPoolConnections: new Gauge({
      name: 'db_pool_connections',
      help: 'Open connections in the database pool (idle and in use).',
      registers,
      collect() {
        if (pool) this.set(pool.totalCount);
      },
    }),
    dbPoolIdleConnections: new Gauge({
      name: 'db_pool_idle_connections',
      help: 'Open database connections not in use.',
      registers,
      collect() {
        if (pool) this.set(pool.idleCount);
      },
    }),
    dbPoolWaitingRequests: new Gauge({
      name: 'db_pool_waiting_requests',
      help: 'Queries waiting for a free database connection; above 0 for long means DB_POOL_MAX is too low.',
      registers,
      collect() {
        if (pool) this.set(pool.waitingCount);
      },
    }),
    // Counted where the request is answered 503 (the error handler), not in the pool: the
    // operator's question is how many requests the load turned away.
    dbPoolWaitTimeouts: new Counter({
      name: 'db_pool_wait_timeouts_total',
      help: 'Requests answered 503 because no database connection came free within DB_CONNECT_TIMEOUT_MS.',
      registers,
    }),
    ready: new Gauge({
      name: 'hpc_ready',
      help: '1 when the last readiness check saw the database usable (reachable, migrated for this release, writable), else 0; 0 from the start of a shutdown drain, as /readyz says.',
      // The app is ready only when every worker reaches the database and none is draining.
      aggregator: 'min',
      registers,
      async collect() {
        // A draining instance is leaving rotation (/readyz answers 503): dashboards and alerts
        // read 0 from the first scrape, without asking the database. At 1 they disagreed with
        // /readyz for the whole SHUTDOWN_DRAIN_DELAY_MS.
        if (isDraining?.()) {
          this.set(0);
          return;
        }
        // Refreshed at each scrape too: nothing may be calling /readyz, and a value
        // frozen at start-up would keep AppNotReady firing (or silent) forever.
        if (!probeReadiness) return;
        const isReady = await probeReadiness();
        // A drain that began while the database was asked wins.
        this.set(isReady && !isDraining?.() ? 1 : 0);
      },
    }),
    // Set by every readiness check beside hpc_ready (registered after it, so a scrape's probe
    // sets it first). A database ahead of the code stays ready by design (health.service.ts): with
    // only hpc_ready, a rolled-back release running on a newer schema paged no one.
    schemaUnknownMigrations: new Gauge({
      name: 'hpc_schema_unknown_migrations',
      help: 'Migrations the database has applied that this build does not ship (the database is ahead of the code: the code was rolled back, or this instance was left on an older release), as the last readiness check that reached it saw; 0 when none.',
      // Every process checks the same database; the older build among them sees the most.
      aggregator: 'max',
      registers,
    }),
    ingestLastSuccess: new Gauge({
      name: 'slurm_ingest_last_success_timestamp_seconds',
      help: 'When the newest successful (or partial) run reading Slurm up to now finished, in Unix seconds, whether it found jobs or no job (a quiet cluster): scheduled, Run now, cron, or a backfill reaching today; a backfill of past days does not count.',
      // Every process reads the same newest run; max() also covers a read that failed (kept value).
      aggregator: 'max',
      registers,
      async collect() {
        // Read from the database at each scrape: the run may be another process's (the ingestion
        // leader, another replica, `npm run ingest` from cron with INGEST_ENABLED=false). Set only
        // by the runs of this process, the gauge stayed 0 there and IngestionStale fired forever.
        const last = await readIngestFreshness();
        if (last) this.set(last.finishedAt.getTime() / 1000);
      },
    }),
    // From the same read as ingestLastSuccess at each scrape (the same row). A FALLBACK_CSV nothing refreshes
    // answers every run, a success with nothing new, so the last success stayed fresh and IngestionStale
    // never fired: the file's own age says no job has come in since (IngestionFileNotRefreshed).
    ingestFileModified: new Gauge({
      name: 'slurm_ingest_file_modified_timestamp_seconds',
      help: 'When FALLBACK_CSV was last modified (Unix seconds), as the newest successful (or partial) run reading up to now read it, when the file answered that run; no series when another source answered it, or before any.',
      // A label, so that a reset leaves no series (an unlabelled gauge reads 0 after one, as if 1970).
      labelNames: ['source'] as const,
      // Every process reads the same run; a read that failed keeps the older value: the later wins.
      aggregator: 'max',
      registers,
      async collect() {
        const last = await readIngestFreshness();
        // The read failed: the last value stays, as slurm_ingest_last_success_timestamp_seconds's does.
        if (last === undefined) return;
        this.reset();
        if (last?.fileModifiedAt) this.set({ source: 'file' }, last.fileModifiedAt.getTime() / 1000);
      },
    }),
    // From the same read as ingestLastSuccess at each scrape (the same row's notes). While slurmrestd answered,
    // a fallback that would fail (an SACCT_PATH that cannot be run) showed only in the runs' notes, and was
    // found in the outage it is there for (IngestionFallbackBroken).
    ingestFallbackSetup: new Gauge({
      name: 'slurm_ingest_fallback_setup_ok',
      help: '1 when the newest successful (or partial) run reading up to now checked the set-up of a fallback it did not need (sacct, file) and found no problem, 0 when it found the fallback would fail; no series for a fallback it tried, did not check, or that is not configured.',
      labelNames: ['source'] as const,
      // Every process reads the same run; 0 from any is a fallback that would fail.
      aggregator: 'min',
      registers,
      async collect() {
        const last = await readIngestFreshness();
        // The read failed: the last values stay, as slurm_ingest_last_success_timestamp_seconds's does.
        if (last === undefined) return;
        this.reset();
        for (const { source, isOk } of last?.fallbackSetup ?? []) this.set({ source }, isOk ? 1 : 0);
      },
    }),
    // Set when the token is read (at start, and each time a run re-reads SLURMRESTD_TOKEN_FILE or a scheduled
    // tick is skipped: buildIngestionService), never at a scrape: nothing warned before slurmrestd's JWT expired, and then every run failed (SlurmrestdTokenExpiring).
    ingestTokenExpiry: new Gauge({
      name: 'slurm_ingest_token_expiry_timestamp_seconds',
      help: "When slurmrestd's JWT (SLURMRESTD_TOKEN or SLURMRESTD_TOKEN_FILE) expires (Unix seconds), from its exp claim as last read by a process that runs ingestion; no series for a token that is no JWT or has no exp.",
      // A label, so that a token without exp leaves no series (an unlabelled gauge reads 0 after a reset).
      labelNames: ['source'] as const,
      // A process that has not read the file since it was renewed (within one interval) still holds the token
      // it replaced, which expires sooner.
      aggregator: 'max',
      registers,
    }),
    oldestOpenCheckout: new Gauge({
      name: 'payments_oldest_open_checkout_timestamp_seconds',
      help: 'When the oldest checkout still open (payment pending, no word from the provider yet) was opened (Unix seconds), per provider; no series when none is open.',
      labelNames: ['provider'] as const,
      // Every process reads the same table; one whose read failed keeps an older value, which a
      // checkout closed since would leave behind: the later reading wins.
      aggregator: 'max',
      registers,
      async collect() {
        // Read from the database at each scrape, like the ingestion gauge: whichever process
        // opened the checkout, and a restart does not forget it. NoWebhooks warns when one has
        // been open for hours and no webhook came.
        if (!readOpenCheckouts) return;
        pendingCheckoutRead ??= readOpenCheckouts()
          .then((open) => {
            this.reset();
            for (const { provider, openedAt } of open) this.set({ provider }, openedAt.getTime() / 1000);
          })
          // A scrape must not fail with the database: the last values stay, hpc_ready says why.
          .catch(() => undefined)
          .finally(() => {
            pendingCheckoutRead = undefined;
          });
        await pendingCheckoutRead;
      },
    }),
    ingestRuns: new Counter({
      name: 'slurm_ingest_runs_total',
      help: 'Ingestion runs by source and outcome.',
      labelNames: ['source', 'outcome'] as const,
      registers,
    }),
    ingestSourceFailures: new Counter({
      name: 'slurm_ingest_source_failures_total',
      help: 'Ingestion sources that failed when a run tried them, by source (a later source in the chain may have answered the run).',
      labelNames: ['source'] as const,
      registers,
    }),
    ingestJobs: new Counter({
      name: 'slurm_ingest_jobs_total',
      help: 'Jobs seen by ingestion, by result (inserted, updated, unchanged, skipped).',
      labelNames: ['result'] as const,
      registers,
    }),
    ingestDuration: new Histogram({
      name: 'slurm_ingest_duration_seconds',
      help: 'Duration of ingestion runs.',
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    }),
    auditChainOk: new Gauge({
      name: 'audit_chain_ok',
      help: '1 when the last verification of the audit log hash chain passed, 0 when it found a break; no sample until one has finished.',
      aggregator: 'min',
      registers,
    }),
    auditChainVerifiedAt: new Gauge({
      name: 'audit_chain_last_verified_timestamp_seconds',
      help: 'When the audit log hash chain was last verified (Unix time), whatever the verdict.',
      aggregator: 'max',
      registers,
    }),
  };

  // Series the dashboards and alerts query exist at 0 before the first event, so rate() and
  // absent() behave from the first scrape: a series born at its first event has no earlier
  // sample to rise from, so rate() and increase() miss that event and an alert on it waits for
  // the second. Only bounded, known label sets (never per user or per route).
  for (const reason of LOGIN_FAILURE_REASONS) metrics.authLoginFailure.inc({ reason }, 0);
  metrics.receiptCreated.inc({ scope: 'user' }, 0);
  metrics.receiptCreated.inc({ scope: 'admin' }, 0);
  metrics.receiptMarkedPaid.inc({ actor_type: 'admin' }, 0);
  for (const kind of CSV_EXPORT_KINDS) {
    metrics.csvDownloads.inc({ kind }, 0);
    metrics.csvExportsStalled.inc({ kind }, 0);
    for (const reason of CSV_EXPORT_REFUSALS) metrics.csvExportsRefused.inc({ kind, reason }, 0);
  }
  for (const result of INGEST_JOB_RESULTS) metrics.ingestJobs.inc({ result }, 0);
  // slurm_ingest_runs_total's sources are the configured ones: the ingestion service creates them.
  metrics.ready.set(0);
  // No verdict until a verification finishes: not 1, which read "intact" from a restart to its first
  // verification, so AuditChainBroken resolved over a chain already broken and fired again once
  // the start-up verification ended. Nor 0: nothing is known to be broken either. Without a
  // sample the rule keeps the instance's last verdict (last_over_time), and the cluster primary's
  // minimum is over the workers that have one.
  metrics.auditChainOk.remove();
  if (options.hasProcessMetrics) collectDefaultMetrics({ register: registry, labels: options.processLabels });

  return {
    ...metrics,
    /** Points the pool gauges at the pool they describe; read at each scrape. */
    observeDbPool(target: PoolStats) {
      pool = target;
    },
    /**
     * Names the payment provider webhooks come from (none: online payment is off). NoWebhooks
     * watches only a provider named in payments_provider_info, and the provider's counters exist
     * at 0 from the start (every outcome), so the alert can tell "no delivery yet" from "no
     * provider" and the first delivery of each outcome shows in rate().
     */
    observePaymentProvider(provider: string | undefined) {
      if (!provider) return;
      metrics.paymentProvider.set({ provider }, 1);
      for (const [event, outcome] of WEBHOOK_EVENT_OUTCOMES) metrics.webhookEvents.inc({ provider, event, outcome }, 0);
      metrics.receiptMarkedPaid.inc({ actor_type: 'provider' }, 0);
      for (const outcome of CHECKOUT_EXPIRY_OUTCOMES) metrics.checkoutExpiries.inc({ provider, outcome }, 0);
    },
    /**
     * Reads, per provider, when the oldest checkout still open was opened, at each scrape, for
     * payments_oldest_open_checkout_timestamp_seconds. `read` must give up within a scrape's time.
     */
    observeOpenCheckouts(read: () => Promise<{ provider: string; openedAt: Date }[]>) {
      readOpenCheckouts = read;
    },
    /** Runs this readiness check at each scrape to refresh hpc_ready. */
    observeReadiness(probe: () => Promise<boolean>) {
      probeReadiness = probe;
    },
    /** Reads whether a shutdown drain has begun at each scrape: hpc_ready is 0 from then on. */
    observeDrain(draining: () => boolean) {
      isDraining = draining;
    },
    /**
     * Reads when the newest completed ingestion run finished (and when the file that answered it was
     * written), at each scrape, for slurm_ingest_last_success_timestamp_seconds and
     * slurm_ingest_file_modified_timestamp_seconds. `read` must give up within a scrape's time.
     */
    observeIngestionFreshness(read: () => Promise<IngestionFreshness | null>) {
      readLastIngestSuccess = read;
    },
    /** When slurmrestd's token expires, as last read; null (a token that is no JWT, or has no exp) leaves no series. */
    observeIngestTokenExpiry(expiresAt: Date | null) {
      metrics.ingestTokenExpiry.reset();
      if (expiresAt) metrics.ingestTokenExpiry.set({ source: 'slurmrestd' }, expiresAt.getTime() / 1000);
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
