import type { NextFunction, Request, Response } from 'express';
import type { Metrics } from '../modules/metrics/metrics.js';
import { methodLabelOf, onRequestEnd, routeTemplateOf, trackRouteTemplate } from './request-context.js';

export interface HttpMetricsOptions {
  /**
   * Route templates not recorded. Prometheus's own scrapes of /metrics would
   * otherwise pull the latency percentiles toward whatever a scrape costs.
   */
  skipEndpoints?: readonly string[];
}

/**
 * Counts each request and times it, labelled by route template. Register it before the
 * routers: it reads the template once the response has been sent, or once the client closed
 * the connection before that (counted with status 499, see `onRequestEnd`).
 */
export function httpMetrics(metrics: Metrics, { skipEndpoints = ['/metrics'] }: HttpMetricsOptions = {}) {
  const skipped = new Set(skipEndpoints);
  return (req: Request, res: Response, next: NextFunction) => {
    trackRouteTemplate(req);
    const startedAt = process.hrtime.bigint();
    onRequestEnd(res, (status) => {
      // Unmatched paths all share one value, so a scan of random URLs adds no series.
      const endpoint = routeTemplateOf(req, status);
      if (skipped.has(endpoint)) return;
      const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
      const method = methodLabelOf(req.method);
      metrics.httpRequests.inc({ method, endpoint, status: String(status) });
      metrics.httpRequestDuration.observe({ endpoint, method }, seconds);
    });
    next();
  };
}
