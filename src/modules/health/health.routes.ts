import { Router } from 'express';
import type pg from 'pg';
import type { Logger } from '../../shared/logger.js';
import { checkReadiness, type Readiness } from './health.service.js';

export interface HealthRoutesOptions {
  pool: pg.Pool;
  readyTimeoutMs: number;
  logger: Logger;
  /** Told what each readiness check saw (the hpc_ready gauge). */
  onReadiness?: (readiness: Readiness) => void;
}

/** Liveness and readiness for orchestrators and load balancers. */
export function healthRoutes({ pool, readyTimeoutMs, logger, onReadiness }: HealthRoutesOptions): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const readiness = await checkReadiness(pool, readyTimeoutMs);
    onReadiness?.(readiness);
    res.set('Cache-Control', 'no-store');
    if (readiness.isReady) res.json({ status: 'ok' });
    else {
      // The driver's message names the database's host and port; /readyz is often reachable by
      // anyone who can reach the load balancer, so the detail goes to the log only.
      logger.warn({ err: readiness.error }, 'not ready');
      res.status(503).json({ status: 'error', error: 'database unavailable' });
    }
  });
  return router;
}
