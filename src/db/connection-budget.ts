import type pg from 'pg';

/** The connections one instance may open: every worker's pool full at once. */
export interface InstanceConnections {
  workers: number;
  poolMax: number;
}

/**
 * Why one instance alone may open more connections than PostgreSQL lets the app's role have
 * (WEB_CONCURRENCY x DB_POOL_MAX against max_connections less the reserved ones), or undefined.
 * Pools open connections lazily, so the overflow shows only under load: PostgreSQL refuses them
 * ("sorry, too many clients already") and the requests that needed them answer 503, with nothing
 * at start to say why. Other replicas, cron's tools and other applications share the same limit,
 * which this instance cannot see: it speaks only of a total that cannot fit whatever they use.
 */
export async function describeConnectionOverflow(
  pool: pg.Pool,
  { workers, poolMax }: InstanceConnections,
): Promise<string | undefined> {
  const { rows } = await pool.query<{ max: number; reserved: number }>(
    // reserved_connections is PostgreSQL 16's; missing_ok reads it as null on older servers.
    `SELECT current_setting('max_connections')::int AS max,
            current_setting('superuser_reserved_connections')::int
              + coalesce(nullif(current_setting('reserved_connections', true), ''), '0')::int AS reserved`,
  );
  const { max, reserved } = rows[0] ?? { max: 0, reserved: 0 };
  const needed = workers * poolMax;
  const available = max - reserved;
  if (max <= 0 || needed <= available) return undefined;
  return (
    `WEB_CONCURRENCY x DB_POOL_MAX (${workers} x ${poolMax}) is ${needed} database connections for this instance alone, ` +
    `more than the ${available} PostgreSQL lets the app's role open (max_connections ${max}, ${reserved} of them kept in reserve): ` +
    `under load it refuses the rest ("sorry, too many clients already") and the requests that need them fail with 503 while /readyz reads not ready. ` +
    `Lower WEB_CONCURRENCY or DB_POOL_MAX, raise max_connections, or put PgBouncer in front (docs/operations.md, "Tuning knobs")`
  );
}
