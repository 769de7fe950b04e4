import { createHash, randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { DEFAULT_DB_CONNECT_TIMEOUT_MS } from '../config/config.schema.js';
import type { Logger } from '../shared/logger.js';
import { PROJECT_ROOT } from '../shared/paths.js';
import { ADVISORY_LOCK_KEYS } from './advisory-locks.js';

export const MIGRATIONS_DIR = path.join(PROJECT_ROOT, 'prisma', 'migrations');

// Any constant works; it only has to be the same for every process.
const MIGRATION_LOCK_KEY = ADVISORY_LOCK_KEYS.migrations;

export interface MigrationOptions {
  /** The folder of migrations; tests give their own. */
  migrationsDir?: string;
  /** How long one try of a migration waits for a table lock before it steps aside. */
  lockTimeoutMs?: number;
  /** The pause between tries, in which the queries queued behind the migration run. */
  retryDelayMs?: number;
  /** How long in all a migration keeps trying for its locks before it fails. */
  maxWaitMs?: number;
  /**
   * How long opening a connection may take (DB_CONNECT_TIMEOUT_MS): without it, a host that takes
   * the connection and never answers hung `db:migrate` for as long as the socket stayed open.
   */
  connectTimeoutMs?: number;
  /**
   * Aborted when the process is told to stop (SIGTERM, Ctrl-C): a migration that is applying
   * finishes (its transaction commits whole), one waiting for a lock rolls back, and no later one
   * starts; StoppedDuringStartup is thrown.
   */
  stopSignal?: AbortSignal;
}

/** The process was told to stop (SIGTERM, Ctrl-C) while it migrated or seeded: not a failed start. */
export class StoppedDuringStartup extends Error {
  /** `applied`: the migrations applied before the stop, for `db:migrate` to say. */
  constructor(
    readonly signal: string,
    readonly applied: readonly string[] = [],
  ) {
    super(`stopped by ${signal} during start-up`);
    this.name = 'StoppedDuringStartup';
  }
}

/** Throws StoppedDuringStartup once `stopSignal` is aborted; its reason is the signal's name. */
export function throwIfStoppedDuringStartup(stopSignal: AbortSignal | undefined): void {
  if (stopSignal?.aborted) throw new StoppedDuringStartup(String(stopSignal.reason ?? 'a signal'));
}

/**
 * Waits for `take` (a lock PostgreSQL hands out in turn: another process migrates or seeds) unless
 * told to stop meanwhile: then `cancel` ends the wait (pg_cancel_backend, from a connection of its
 * own: PostgreSQL does not notice a client gone while it waits for a lock, and would hand the lock
 * to it) and StoppedDuringStartup is thrown. A lock taken just as it was told to stop is thrown for
 * too, once the cancel has landed or missed: the caller gives it back (its transaction, its finally).
 */
export async function waitForLockUnlessStopped(
  take: () => Promise<unknown>,
  cancel: () => Promise<unknown>,
  stopSignal: AbortSignal | undefined,
): Promise<void> {
  throwIfStoppedDuringStartup(stopSignal);
  let cancelling: Promise<unknown> | undefined;
  const onStop = () => {
    cancelling = cancel().catch(() => undefined);
  };
  stopSignal?.addEventListener('abort', onStop, { once: true });
  try {
    await take();
  } catch (error) {
    await cancelling;
    throwIfStoppedDuringStartup(stopSignal);
    throw error;
  } finally {
    stopSignal?.removeEventListener('abort', onStop);
  }
  await cancelling;
  throwIfStoppedDuringStartup(stopSignal);
}

const LOCK_NOT_AVAILABLE = '55P03';

/**
 * Applies prisma/migrations in order, each in its own transaction, recording them in
 * Prisma's `_prisma_migrations` table so `prisma migrate status` agrees.
 *
 * Prisma's WebAssembly schema engine (the only one that works without downloading
 * native binaries) splits scripts on semicolons and cannot apply PL/pgSQL bodies;
 * Postgres applies a whole script in one simple query just fine.
 *
 * A migration that changes a table waits for its lock behind the transactions of the release still
 * serving (a long export), and every later query of that table waits behind the migration: a
 * deploy stopped the app until the export ended. Each try waits at most `lockTimeoutMs`, then rolls
 * back and lets the queue through for `retryDelayMs`, for up to `maxWaitMs` in all.
 */
export async function applyMigrations(
  databaseUrl: string,
  logger: Logger,
  options: MigrationOptions = {},
): Promise<string[]> {
  const {
    migrationsDir = MIGRATIONS_DIR,
    lockTimeoutMs = 2_000,
    retryDelayMs = 1_000,
    maxWaitMs = 600_000,
    connectTimeoutMs = DEFAULT_DB_CONNECT_TIMEOUT_MS,
    stopSignal,
  } = options;
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: connectTimeoutMs });
  await client.connect();
  try {
    // A statement_timeout set for the app's role or database (docs/operations.md) is sized for
    // requests. Rebuilding an index or a column of a large table takes longer, and so may waiting
    // for the lock below while another host migrates: cut by it, a migration failed again at every
    // try and the app never started. A role's lock_timeout would cut that wait as well.
    await client.query('SET statement_timeout = 0');
    await client.query('SET lock_timeout = 0');
    // Several workers or replicas may start at once; one migrates, the rest wait.
    await waitForMigrationLock(client, databaseUrl, connectTimeoutMs, stopSignal);
    await client.query(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
      "id" VARCHAR(36) PRIMARY KEY,
      "checksum" VARCHAR(64) NOT NULL,
      "finished_at" TIMESTAMPTZ,
      "migration_name" VARCHAR(255) NOT NULL,
      "logs" TEXT,
      "rolled_back_at" TIMESTAMPTZ,
      "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
      "applied_steps_count" INTEGER NOT NULL DEFAULT 0)`);
    const applied = await client.query<{ migration_name: string; checksum: string }>(
      'SELECT migration_name, checksum FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL',
    );
    const appliedChecksums = new Map(applied.rows.map((row) => [row.migration_name, row.checksum]));
    const names = namesOf(await readdir(migrationsDir, { withFileTypes: true }));
    warnIfMigratedByANewerRelease(names, [...appliedChecksums.keys()], logger);
    const newlyApplied: string[] = [];
    try {
      for (const name of names) {
        const sql = await readFile(path.join(migrationsDir, name, 'migration.sql'), 'utf8');
        const checksum = createHash('sha256').update(sql).digest('hex');
        const known = appliedChecksums.get(name);
        if (known !== undefined) {
          if (known !== checksum) logger.warn({ migration: name }, 'applied migration was edited afterwards');
          continue;
        }
        // Between migrations: each is one transaction, so the database stops at a whole one.
        throwIfStoppedDuringStartup(stopSignal);
        const startedAt = performance.now();
        for (;;) {
          await client.query('BEGIN');
          try {
            await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(lockTimeoutMs))}`);
            await client.query(sql);
            await client.query(
              `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count)
             VALUES ($1, $2, now(), $3, 1)`,
              [randomUUID(), checksum, name],
            );
            await client.query('COMMIT');
            break;
          } catch (error) {
            await client.query('ROLLBACK');
            if ((error as { code?: string }).code !== LOCK_NOT_AVAILABLE) {
              throw new Error(`migration ${name} failed: ${(error as Error).message}`);
            }
            // Told to stop while it waited for a lock: rolled back just now, nothing of it applied.
            throwIfStoppedDuringStartup(stopSignal);
            if (performance.now() - startedAt + retryDelayMs >= maxWaitMs) {
              throw new Error(
                `migration ${name} failed: another session held a lock it needs for more than ${describeDuration(maxWaitMs)} ` +
                  `(it waited ${lockTimeoutMs} ms at a time, letting other queries through between tries). A long ` +
                  'request, export or ingestion of a running instance, or a transaction left open in psql, holds it: ' +
                  `find it with SELECT pid, xact_start, state, query FROM pg_stat_activity WHERE xact_start < now() - interval '1 minute', ` +
                  'let it end or end it, and start again. Nothing of this migration was applied.',
              );
            }
            logger.warn(
              { migration: name },
              `migration ${name} waited ${lockTimeoutMs} ms for a lock another session holds (a long request or export ` +
                `of a running instance); trying again in ${retryDelayMs} ms, for up to ${describeDuration(maxWaitMs)} in all`,
            );
            await sleep(retryDelayMs, undefined, { signal: stopSignal }).catch(() => undefined);
            throwIfStoppedDuringStartup(stopSignal);
          }
        }
        logger.info({ migration: name }, 'migration applied');
        newlyApplied.push(name);
      }
    } catch (error) {
      // Told to stop: the caller says which migrations were applied before it.
      if (error instanceof StoppedDuringStartup) throw new StoppedDuringStartup(error.signal, newlyApplied);
      throw error;
    }
    return newlyApplied;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await client.end();
  }
}

/**
 * Takes the migration lock, waiting for as long as another process migrates; told to stop
 * meanwhile, the wait is cancelled and StoppedDuringStartup thrown (waitForLockUnlessStopped).
 */
async function waitForMigrationLock(
  client: pg.Client,
  databaseUrl: string,
  connectTimeoutMs: number,
  stopSignal: AbortSignal | undefined,
) {
  const cancel = async () => {
    const canceller = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: connectTimeoutMs });
    try {
      await canceller.connect();
      await canceller.query('SELECT pg_cancel_backend($1)', [(client as unknown as { processID: number }).processID]);
    } finally {
      await canceller.end().catch(() => undefined);
    }
  };
  await waitForLockUnlessStopped(
    () => client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]),
    cancel,
    stopSignal,
  );
}

/** The migrations of a folder, oldest first: one folder each, named for the time it was written. */
function namesOf(entries: Array<{ name: string; isDirectory(): boolean }>): string[] {
  return entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
}

let shippedNames: readonly string[] | undefined;

/**
 * The migrations this build ships (prisma/migrations), oldest first. Read once per process, at the
 * first call (createApp's, at start): the readiness check compares the database with them at every
 * probe, and the folder does not change while the process runs.
 */
export function shippedMigrationNames(): readonly string[] {
  shippedNames ??= Object.freeze(namesOf(readdirSync(MIGRATIONS_DIR, { withFileTypes: true })));
  return shippedNames;
}

/**
 * An older release started on a database a newer one migrated (a rollback of the code alone, an
 * instance left behind in a deploy) runs on a schema it does not know: it may fail where the newer
 * schema changed (an older release's receipts failed on a NOT NULL column it never wrote). Said at
 * start, so that the errors that follow have an explanation; not refused, since additive migrations
 * leave the older release working.
 */
function warnIfMigratedByANewerRelease(known: string[], applied: string[], logger: Logger) {
  const knownNames = new Set(known);
  const unknown = applied.filter((name) => !knownNames.has(name)).sort();
  if (unknown.length === 0) return;
  logger.warn(
    { unknownMigrations: unknown },
    `the database was migrated by a newer release: ${unknown.length} applied migration(s) are not in this one (newest ${unknown.at(-1)}); ` +
      'it may fail on that schema. Run the newer release, or restore the backup taken before that upgrade (docs/operations.md, "Upgrading")',
  );
}

function describeDuration(ms: number): string {
  return ms >= 60_000 && ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.round(ms / 1000)} s`;
}
