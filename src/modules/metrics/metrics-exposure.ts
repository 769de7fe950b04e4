import type { AppConfig } from '../../config/config.js';
import type { Logger } from '../../shared/logger.js';

/**
 * Without a token, /metrics answers anyone who reaches the port: request volumes per route,
 * sign-in failures, receipts and payments. Behind a private network that is the usual set-up
 * (docker-compose's Prometheus scrapes on its own network), so production says so once at
 * start rather than refusing to start. True when it warned.
 */
export function warnIfMetricsPublic(
  logger: Pick<Logger, 'warn'>,
  config: Pick<AppConfig, 'isProduction' | 'metrics'>,
): boolean {
  if (!config.isProduction || !config.metrics.isEnabled || config.metrics.token) return false;
  logger.warn(
    'GET /metrics answers anyone who can reach this port (request, sign-in and payment counts): ' +
      'set METRICS_TOKEN and give Prometheus the same, or keep the port off public networks ' +
      '(docs/operations.md, "Metrics")',
  );
  return true;
}
