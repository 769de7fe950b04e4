import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { isDatabaseUnavailable, isRefusedByServer } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';

export interface WaitForDatabaseOptions {
  /** How long in all to keep trying (DB_START_WAIT_SEC, in ms); 0 tries once. */
  waitMs: number;
  /** How long one attempt may take to connect (DB_CONNECT_TIMEOUT_MS). */
  connectTimeoutMs: number;
  logger: Logger;
  /** The pause after the first failed attempt; it doubles up to `maxRetryDelayMs`. */
  firstRetryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** Aborted (with the signal's name) when the process is told to stop while it waits. */
  stopSignal?: AbortSignal;
}

/** The wait ended because the process was told to stop (SIGTERM, Ctrl-C): not a failed start. */
export class StoppedWhileWaiting extends Error {
  constructor(readonly signal: string) {
    super(`stopped by ${signal} while waiting for the database`);
    this.name = 'StoppedWhileWaiting';
  }
}

/**
 * Waits for the configured database to answer before the start migrates it. In docker-compose
 * without its healthcheck, under systemd (whose default start limit gives up after 5 quick
 * failures), or on a host that reboots and brings the app up before its database, a start that
 * failed at once stayed down, or crash-looped, although the database came up seconds later. So a
 * database that cannot be reached yet is tried again, with a warning per attempt, for `waitMs`; then
 * the last error is thrown, saying how long it was tried. Anything else fails at once.
 */
export async function waitForDatabase(databaseUrl: string, options: WaitForDatabaseOptions): Promise<void> {
  const { waitMs, connectTimeoutMs, logger, firstRetryDelayMs = 1_000, maxRetryDelayMs = 5_000, stopSignal } = options;
  const stopped = () => new StoppedWhileWaiting(String(stopSignal?.reason ?? 'a signal'));
  const startedAt = Date.now();
  let delayMs = firstRetryDelayMs;
  for (let attempt = 1; ; attempt++) {
    const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: connectTimeoutMs });
    // A connection lost after connecting is reported on the client too; the query's failure tells it.
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      // Told to stop during this attempt: the start would otherwise carry on, the signal lost.
      if (stopSignal?.aborted) throw stopped();
      if (attempt > 1) {
        logger.info({ attempt, waitedMs: Date.now() - startedAt }, 'the database answers: starting');
      }
      return;
    } catch (error) {
      if (error instanceof StoppedWhileWaiting) throw error;
      if (waitMs === 0 || !isDatabaseUnavailable(error) || isRefusedByServer(error)) throw error;
      // A server that refuses this login or database refuses it again in a moment: said at once.
      const leftMs = waitMs - (Date.now() - startedAt);
      const message = (error as Error).message;
      if (leftMs <= 0) {
        throw new Error(
          `${message}, still after ${attempt} attempts in DB_START_WAIT_SEC (${Math.round(waitMs / 1000)} s)`,
          { cause: error },
        );
      }
      const retryInMs = Math.min(delayMs, leftMs);
      logger.warn(
        { err: message, attempt, retryInMs, leftMs },
        `waiting for the database (DATABASE_URL): ${message}; trying again in ${describeSeconds(retryInMs)}, ` +
          `for ${describeSeconds(leftMs)} more (DB_START_WAIT_SEC)`,
      );
      if (stopSignal?.aborted) throw stopped();
      try {
        await sleep(retryInMs, undefined, { signal: stopSignal });
      } catch {
        throw stopped();
      }
      delayMs = Math.min(delayMs * 2, maxRetryDelayMs);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

function describeSeconds(ms: number): string {
  return `${Math.max(1, Math.round(ms / 1000))} s`;
}
