import pg from 'pg';
import { DATABASE_BEHIND, DATABASE_HAS_NO_SCHEMA, DATABASE_READ_ONLY, isMissingTable } from '../../shared/errors.js';
import { TOOL_COMMANDS } from '../../shared/tool-commands.js';
import { findEntryRefusingAppendsWithin } from '../audit/audit.service.js';
import * as healthRepository from './health.repository.js';

/**
 * What a readiness check saw. `error` is for the log (it names the database's host and port);
 * `publicError` is what /readyz may say to anyone who can reach it. A ready database may still
 * carry a `warning`: one migrated by a newer release (below).
 */
export type Readiness =
  | { isReady: true; warning?: DatabaseAhead }
  | { isReady: false; error: string; publicError: string };

/** A database a newer release migrated: the migrations it applied that this build does not ship. */
export interface DatabaseAhead {
  publicWarning: string;
  message: string;
  unknownMigrations: string[];
}

export const MIGRATION_FAILED = `a migration of this release failed: fix its cause, then run ${TOOL_COMMANDS.migrate}`;
export const DATABASE_AHEAD = 'the database was migrated by a newer release';

/** What /readyz says of an instance without the key that seals the audit log (auditAppendRefusal). */
export const AUDIT_SEALED_WITHOUT_KEY =
  'the audit log is sealed and this instance has no AUDIT_CHAIN_KEY: set the same key on every instance';

/** What /readyz says of a database it cannot reach; the cause goes to the log only. */
export const DATABASE_UNAVAILABLE = 'database unavailable';

/**
 * Where the pool connects, as host:port (never the user or password of DATABASE_URL), read as
 * the driver reads its settings. The driver names it when a connection is refused but not when
 * the database is silent, so every readiness failure says it.
 */
export function databaseAddressOf(pool: pg.Pool): string {
  // A Client only parses its settings until it connects.
  const { host, port } = new pg.Client(pool.options);
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** How many migration names a log line lists before it says how many more. */
const LISTED_MIGRATIONS = 5;

function listed(names: string[]): string {
  const shown = names.slice(0, LISTED_MIGRATIONS).join(', ');
  return names.length > LISTED_MIGRATIONS ? `${shown} and ${names.length - LISTED_MIGRATIONS} more` : shown;
}

/**
 * Ready means the database answers within the timeout, has the users table, takes writes (not a
 * standby), and has applied every migration this build ships (`expectedMigrations`, read once at
 * start), none of them recorded as failed. A database restored empty (a restore that failed, a new one nobody migrated) answered
 * `SELECT 1`, so /readyz said ready while every page failed; so did one restored from an older dump
 * or upgraded without `npm run db:migrate`, while every page reading a newer column failed with a
 * 500. Probed every few seconds, so one query: a lookup of one name in the catalogue (to_regclass,
 * through the same search_path as the app's queries), one setting (transaction_read_only) and three small reads of `_prisma_migrations`
 * (a few dozen rows) against the names given as one parameter.
 *
 * A database AHEAD of the code (migrations this build does not ship: the code rolled back, or an
 * instance of the older release still serving while a deploy migrates for the newer one) stays
 * ready, with a warning: migrations are additive, so the older release mostly works there, and every
 * instance of it saying 503 would take the whole service out of rotation during every upgrade and
 * every rollback, an outage worse than the errors it might meet.
 */
export async function checkReadiness(
  pool: pg.Pool,
  timeoutMs: number,
  expectedMigrations: readonly string[],
): Promise<Readiness> {
  const startedAt = performance.now();
  let state: healthRepository.ReadinessState;
  try {
    state = await healthRepository.readReadinessState(pool, timeoutMs, expectedMigrations);
  } catch (error) {
    // No _prisma_migrations: a database emptied or never migrated, as a rule (a second query, on
    // this broken path only, says whether the users table is missing too).
    if (isMissingTable(error)) return withoutMigrationHistory(pool, timeoutMs);
    return {
      isReady: false,
      error: `database at ${databaseAddressOf(pool)} unavailable: ${(error as Error).message}`,
      publicError: DATABASE_UNAVAILABLE,
    };
  }
  if (!state.hasSchema) return hasNoSchema(pool);
  if (state.isReadOnly) {
    // A standby after a failover, or a database set read-only: it answers and has every table, but
    // signing in and every page that writes fail.
    return {
      isReady: false,
      error:
        `database at ${databaseAddressOf(pool)} only reads (transaction_read_only is on: a standby, or ` +
        'default_transaction_read_only set): point DATABASE_URL at the primary',
      publicError: DATABASE_READ_ONLY,
    };
  }
  if (state.failed.length > 0) {
    return {
      isReady: false,
      error: `database at ${databaseAddressOf(pool)} has a failed migration (${listed(state.failed)}, recorded in _prisma_migrations): fix its cause, then run ${TOOL_COMMANDS.migrate}`,
      publicError: MIGRATION_FAILED,
    };
  }
  if (state.pending.length > 0) {
    return {
      isReady: false,
      error: `database at ${databaseAddressOf(pool)} is behind this release: ${state.pending.length} migration(s) not applied (${listed(state.pending)}): run ${TOOL_COMMANDS.migrate}`,
      publicError: DATABASE_BEHIND,
    };
  }
  const auditRefusal = await auditAppendRefusal(pool, Math.max(1, timeoutMs - (performance.now() - startedAt)));
  if (auditRefusal) return auditRefusal;
  if (state.unknown.length > 0) {
    return {
      isReady: true,
      warning: {
        publicWarning: DATABASE_AHEAD,
        unknownMigrations: state.unknown,
        message:
          `database at ${databaseAddressOf(pool)} has ${state.unknown.length} applied migration(s) this release does not ship ` +
          `(newest ${state.unknown.at(-1)}): it may fail where that schema changed. Run the newer release, or restore the ` +
          'backup taken before that upgrade (docs/operations.md, "Upgrading")',
      },
    };
  }
  return { isReady: true };
}

/**
 * Not ready when this process has no AUDIT_CHAIN_KEY and the audit log's newest entry is sealed (or
 * changed): every request that writes an entry, a sign-in among them, is refused here (503,
 * UnsealedAuditAppendError), so a load balancer must send them to the instances that have the key.
 * One indexed read of the newest entry, within what is left of the check's time, and only by a
 * process without a key (never in production, which requires one). Liveness (/healthz) is not
 * touched: the process is well, and restarting it without the key mends nothing.
 */
async function auditAppendRefusal(pool: pg.Pool, timeoutMs: number): Promise<Readiness | undefined> {
  let entryId: bigint | undefined;
  try {
    entryId = await findEntryRefusingAppendsWithin(pool, timeoutMs);
  } catch (error) {
    return {
      isReady: false,
      error: `database at ${databaseAddressOf(pool)} unavailable: ${(error as Error).message}`,
      publicError: DATABASE_UNAVAILABLE,
    };
  }
  if (entryId === undefined) return undefined;
  return {
    isReady: false,
    error:
      `the audit log's newest entry (#${entryId}) is sealed with a key (or was changed) and this instance has no AUDIT_CHAIN_KEY: ` +
      'every request that writes an audit entry (a sign-in, a sign-out, every change) is refused (503) here; set AUDIT_CHAIN_KEY ' +
      '(and AUDIT_CHAIN_OLD_KEYS, AUDIT_CHAIN_UNSEALED_UNTIL) as the other instances have them, and restart this one',
    publicError: AUDIT_SEALED_WITHOUT_KEY,
  };
}

/**
 * A database without `_prisma_migrations`: no schema at all, or tables made some other way (`prisma
 * db push`, a partial restore) that `npm run db:migrate` cannot carry on from.
 */
async function withoutMigrationHistory(pool: pg.Pool, timeoutMs: number): Promise<Readiness> {
  let hasUsers: boolean;
  try {
    hasUsers = await healthRepository.hasUsersTable(pool, timeoutMs);
  } catch (error) {
    return {
      isReady: false,
      error: `database at ${databaseAddressOf(pool)} unavailable: ${(error as Error).message}`,
      publicError: DATABASE_UNAVAILABLE,
    };
  }
  if (!hasUsers) return hasNoSchema(pool);
  return {
    isReady: false,
    error:
      `database at ${databaseAddressOf(pool)} has tables but no _prisma_migrations (made without ${TOOL_COMMANDS.migrate}, ` +
      'or restored in part): restore a whole dump, or migrate a new database',
    publicError: DATABASE_HAS_NO_SCHEMA,
  };
}

function hasNoSchema(pool: pg.Pool): Readiness {
  return {
    isReady: false,
    error: `database at ${databaseAddressOf(pool)} has no schema (no users table): run ${TOOL_COMMANDS.migrate}`,
    publicError: DATABASE_HAS_NO_SCHEMA,
  };
}
