import type pg from 'pg';

/** The connections one instance may open: every worker's pool full at once. */
export interface InstanceConnections {
  workers: number;
  poolMax: number;
}

/**
 * The connections PostgreSQL lets the session's role open, under its rules for the last slots:
 * superuser_reserved_connections are kept from every role but a superuser, and reserved_connections
 * (PostgreSQL 16) from every role but a superuser or one with the privileges of
 * pg_use_reserved_connections. A superuser may open all of max_connections.
 */
async function findRoleConnectionLimit(pool: pg.Pool): Promise<{ max: number; reserved: number }> {
  const { rows } = await pool.query<{
    max: number;
    superuserReserved: number;
    reserved: number;
    isSuperuser: boolean;
    usesReserved: boolean;
  }>(
    // reserved_connections and its role are PostgreSQL 16's: missing_ok and to_regrole read them as
    // null (none) on older servers.
    `SELECT current_setting('max_connections')::int AS max,
            current_setting('superuser_reserved_connections')::int AS "superuserReserved",
            coalesce(nullif(current_setting('reserved_connections', true), ''), '0')::int AS reserved,
            r.rolsuper AS "isSuperuser",
            coalesce(pg_has_role(session_user, to_regrole('pg_use_reserved_connections'), 'USAGE'), false)
              AS "usesReserved"
       FROM pg_roles r WHERE r.rolname = session_user`,
  );
  const row = rows[0];
  if (!row) return { max: 0, reserved: 0 };
  const reserved = row.isSuperuser ? 0 : row.superuserReserved + (row.usesReserved ? 0 : row.reserved);
  return { max: row.max, reserved };
}

/**
 * Why one instance alone may open more connections than PostgreSQL lets the app's role have
 * (WEB_CONCURRENCY x DB_POOL_MAX against max_connections less the slots kept from the role:
 * findRoleConnectionLimit), or undefined.
 * Pools open connections lazily, so the overflow shows only under load: PostgreSQL refuses them
 * ("sorry, too many clients already") and the requests that needed them answer 503, with nothing
 * at start to say why. Other replicas, cron's tools and other applications share the same limit,
 * which this instance cannot see: it speaks only of a total that cannot fit whatever they use.
 */
export async function describeConnectionOverflow(
  pool: pg.Pool,
  { workers, poolMax }: InstanceConnections,
): Promise<string | undefined> {
  const { max, reserved } = await findRoleConnectionLimit(pool);
  const needed = workers * poolMax;
  const available = max - reserved;
  if (max <= 0 || needed <= available) return undefined;
  const limit = reserved > 0 ? `max_connections ${max}, ${reserved} of them kept in reserve` : `max_connections ${max}`;
  return (
    `WEB_CONCURRENCY x DB_POOL_MAX (${workers} x ${poolMax}) is ${needed} database connections for this instance alone, ` +
    `more than the ${available} PostgreSQL lets the app's role open (${limit}): ` +
    `under load it refuses the rest ("sorry, too many clients already") and the requests that need them fail with 503 while /readyz reads not ready. ` +
    `Lower WEB_CONCURRENCY or DB_POOL_MAX, raise max_connections, or put PgBouncer in front (docs/operations.md, "Tuning knobs")`
  );
}
