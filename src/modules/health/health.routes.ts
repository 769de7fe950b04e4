import { Router } from 'express';
import type pg from 'pg';
import { checkReadiness, type Readiness } from './health.service.js';

export interface HealthRoutesOptions {
  pool: pg.Pool;
  readyTimeoutMs: number;
  /** The migrations this build ships (shippedMigrationNames), which the database must have applied. */
  expectedMigrations: readonly string[];
  /**
   * Told what each readiness check saw: the hpc_ready gauge, and the readiness log, which says
   * why once when it changes rather than at every probe (readiness-log.ts).
   */
  onReadiness?: (readiness: Readiness) => void;
  /** True once a shutdown has begun: /readyz then answers 503 so the instance leaves rotation. */
  isDraining?: () => boolean;
}

/** Liveness and readiness for orchestrators and load balancers. */
export function healthRoutes({
  pool,
  readyTimeoutMs,
  expectedMigrations,
  onReadiness,
  isDraining,
}: HealthRoutesOptions): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    if (isDraining?.()) {
      // Not a database problem: the database is not asked and nothing is logged per probe. hpc_ready
      // reads 0 as well: the metrics read the same drain at each scrape.
      res.set('Cache-Control', 'no-store').status(503).json({ status: 'error', error: 'shutting down' });
      return;
    }
    const readiness = await checkReadiness(pool, readyTimeoutMs, expectedMigrations);
    onReadiness?.(readiness);
    res.set('Cache-Control', 'no-store');
    // Ready on a database a newer release migrated, and says so (health.service.ts says why).
    if (readiness.isReady && readiness.warning) res.json({ status: 'ok', warning: readiness.warning.publicWarning });
    else if (readiness.isReady) res.json({ status: 'ok' });
    // The driver's message names the database's host and port; /readyz is often reachable by
    // anyone who can reach the load balancer, so the detail goes to the log only (onReadiness).
    else res.status(503).json({ status: 'error', error: readiness.publicError });
  });
  return router;
}
