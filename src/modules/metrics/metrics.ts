import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Every metric the app exports, on a registry of its own. Names, types and labels are
 * a contract with the dashboards and alert rules in grafana/ and prometheus/.
 */
export function createMetrics() {
  const registry = new Registry();
  const registers = [registry];

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
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
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
      help: 'Sign-in attempts refused because the account or address is locked.',
      registers,
    }),
    authLockoutStart: new Counter({ name: 'auth_lockout_start_total', help: 'Lockouts started.', registers }),
    authLockoutEnd: new Counter({ name: 'auth_lockout_end_total', help: 'Lockouts that ended.', registers }),
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
    webhookEvents: new Counter({
      name: 'payments_webhook_events_total',
      help: 'Payment webhook deliveries by provider, event type and outcome.',
      labelNames: ['provider', 'event', 'outcome'] as const,
      registers,
    }),
    ready: new Gauge({
      name: 'hpc_ready',
      help: '1 when the last readiness check saw the database, else 0.',
      registers,
    }),
    ingestLastSuccess: new Gauge({
      name: 'slurm_ingest_last_success_timestamp_seconds',
      help: 'When the last successful ingestion run finished (Unix seconds).',
      registers,
    }),
    ingestRuns: new Counter({
      name: 'slurm_ingest_runs_total',
      help: 'Ingestion runs by source and outcome.',
      labelNames: ['source', 'outcome'] as const,
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
  };

  // Series the dashboards and alerts query exist at 0 before the first event,
  // so rate() and absent() behave from the first scrape.
  metrics.authLoginFailure.inc({ reason: 'bad_credentials' }, 0);
  metrics.receiptCreated.inc({ scope: 'user' }, 0);
  metrics.receiptCreated.inc({ scope: 'admin' }, 0);
  metrics.receiptMarkedPaid.inc({ actor_type: 'admin' }, 0);
  for (const kind of ['admin_paid', 'my_usage', 'user_usage', 'audit']) metrics.csvDownloads.inc({ kind }, 0);
  metrics.webhookEvents.inc({ provider: 'dummy', event: 'payment.succeeded', outcome: 'ok' }, 0);
  metrics.ready.set(0);
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;
