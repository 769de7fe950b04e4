import type { Request, Response } from 'express';
import { z } from 'zod';
import type { Metrics } from '../modules/metrics/metrics.js';
import { ServiceUnavailableError, TooManyRequestsError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { DEFAULT_CSV_STALL_MS, sendCsv, setCsvHeaders } from './csv-response.js';
import { parseInput } from './validate.js';

/**
 * The query field every CSV export takes besides its own: `bom=1` puts the UTF-8 byte-order mark
 * before the same bytes, for Excel on Windows, which reads a CSV without one in the system's
 * ANSI code page and showed every name outside ASCII as mojibake. Without it the bytes stay as
 * they always were (scripts read them). Empty is left out, as every empty optional field is.
 */
export const ZCsvExportQuery = z.object({
  bom: z
    .string()
    .trim()
    .optional()
    .transform((text) => text || undefined)
    .pipe(z.literal('1', { error: 'must be 1 (a byte-order mark for Excel), or left out' }).optional()),
});

/** `link` (a CSV export's address) asking for the byte-order mark: the "CSV for Excel" link beside it. */
export function excelCsvLinkOf(link: string): string;
export function excelCsvLinkOf(link: string | undefined): string | undefined;
export function excelCsvLinkOf(link: string | undefined): string | undefined {
  if (link === undefined) return undefined;
  return `${link}${link.includes('?') ? '&' : '?'}bom=1`;
}

/** The kinds of CSV export (the `kind` label of csv_download_total). */
export type CsvExportKind = 'my_usage' | 'user_usage' | 'receipt_items' | 'admin_paid' | 'admin_receipts' | 'audit';

/** How many CSV exports a worker runs at once, and how long one may wait on its client. */
export interface CsvExportLimits {
  /** Exports running at once in this worker; the rest of the pool stays for everything else. */
  maxConcurrent: number;
  /** Exports running or waiting at once for one user. */
  maxPerUser: number;
  /** How long an export waits for a free slot before it is refused (503). */
  queueWaitMs: number;
  /** How long an export waits for its client to read before it is cut off. */
  stallMs: number;
}

/**
 * The limits for a worker whose pool holds `dbPoolMax` connections. A usage export holds a
 * connection for its whole COPY, paced by how fast the client reads, so exports may take at
 * most half the pool (at least 1): pages, sign-ins and /readyz always have the other half.
 * `stallMs` is CSV_EXPORT_STALL_MS.
 */
export function csvExportLimitsFor(dbPoolMax: number, stallMs = DEFAULT_CSV_STALL_MS): CsvExportLimits {
  return {
    maxConcurrent: Math.max(1, Math.floor(dbPoolMax / 2)),
    maxPerUser: 2,
    queueWaitMs: 5_000,
    stallMs,
  };
}

/** Seconds a refused client is told to wait (Retry-After). */
const RETRY_AFTER_SEC = 5;

interface Waiter {
  grant(): void;
}

/**
 * A counting semaphore over export slots, with a per-user count, all in memory: taking a
 * free slot is synchronous and costs no round trip. A user at the per-user limit is refused
 * at once (429); when every slot is taken the export waits its turn (first come, first
 * served) up to `queueWaitMs`, then is refused (503). Both carry Retry-After.
 */
export function createExportSlots(limits: Pick<CsvExportLimits, 'maxConcurrent' | 'maxPerUser' | 'queueWaitMs'>) {
  let running = 0;
  const perUser = new Map<string, number>();
  const waiters: Waiter[] = [];

  const forget = (username: string) => {
    const count = (perUser.get(username) ?? 1) - 1;
    if (count > 0) perUser.set(username, count);
    else perUser.delete(username);
  };

  const releaserFor = (username: string) => {
    let isReleased = false;
    return () => {
      if (isReleased) return;
      isReleased = true;
      forget(username);
      // The slot goes straight to the longest waiter, if any.
      const next = waiters.shift();
      if (next) next.grant();
      else running -= 1;
    };
  };

  /**
   * A slot for `username`, or an error saying why not. An export that has to wait calls
   * `onLeave` with a function to call when its client leaves: it then gives up its place.
   * Resolves to the slot's release (idempotent).
   */
  function acquire(username: string, onLeave?: (leave: () => void) => void): Promise<() => void> {
    const mine = perUser.get(username) ?? 0;
    if (mine >= limits.maxPerUser) {
      return Promise.reject(
        new TooManyRequestsError(
          `You already have ${mine === 1 ? 'an export' : `${mine} exports`} running. ` +
            `Wait for ${mine === 1 ? 'it' : 'one of them'} to finish (or cancel it), then try again.`,
          RETRY_AFTER_SEC,
        ),
      );
    }
    perUser.set(username, mine + 1);
    if (running < limits.maxConcurrent) {
      running += 1;
      return Promise.resolve(releaserFor(username));
    }
    return new Promise((resolve, reject) => {
      const giveUp = (error: Error) => {
        const index = waiters.indexOf(waiter);
        if (index === -1) return;
        waiters.splice(index, 1);
        clearTimeout(timer);
        forget(username);
        reject(error);
      };
      const waiter: Waiter = {
        grant() {
          clearTimeout(timer);
          resolve(releaserFor(username));
        },
      };
      const timer = setTimeout(
        () =>
          giveUp(
            new ServiceUnavailableError(
              'Too many CSV exports are running on this server right now. Try again in a moment.',
              RETRY_AFTER_SEC,
            ),
          ),
        limits.queueWaitMs,
      );
      waiters.push(waiter);
      onLeave?.(() => giveUp(new Error('the client left while its export waited')));
    });
  }

  return {
    acquire,
    /** Exports running and waiting now (for tests and diagnostics). */
    stats: () => ({ running, waiting: waiters.length }),
  };
}

/**
 * One export: its file's name and columns, known before any query (all a HEAD answers with), and
 * `open`, which starts its queries, only for a GET and once it holds a slot (so they count against it).
 */
export interface CsvExportJob {
  kind: CsvExportKind;
  username: string;
  filename: string;
  columns: readonly string[];
  open: () => Promise<AsyncIterable<string | Uint8Array>>;
}

export interface CsvExportsDeps {
  limits: CsvExportLimits;
  logger: Logger;
  metrics: Pick<Metrics, 'csvDownloads' | 'csvExportsRefused' | 'csvExportsStalled'>;
}

/**
 * Every CSV export goes through here: its `bom` field (ZCsvExportQuery), a slot of the worker's
 * and of the user's (see createExportSlots), then sendCsv with the stall limit. A client cut off for not reading is
 * logged at warn and counted (csv_export_stalled_total). A HEAD (a link checker, `curl -I`) is answered with
 * the status and headers its GET would have, and takes no slot and runs no query: it used to run the
 * whole export and stream it to nothing.
 */
export function createCsvExports(deps: CsvExportsDeps) {
  const { limits, logger, metrics } = deps;
  const slots = createExportSlots(limits);

  async function send(req: Request, res: Response, job: CsvExportJob): Promise<void> {
    const { kind, username, filename, columns } = job;
    // Checked before a slot is taken: a refused export holds none.
    const { bom } = parseInput(ZCsvExportQuery, req.query);
    if (req.method === 'HEAD') {
      setCsvHeaders(res, filename);
      res.end();
      return;
    }
    let release: () => void;
    try {
      release = await slots.acquire(username, (leave) => {
        if (res.closed) leave();
        else res.once('close', leave);
      });
    } catch (error) {
      if (error instanceof TooManyRequestsError) metrics.csvExportsRefused.inc({ kind, reason: 'user_limit' });
      else if (error instanceof ServiceUnavailableError) metrics.csvExportsRefused.inc({ kind, reason: 'busy' });
      else if (res.closed) return;
      logger.info(
        { reqId: req.id, username, kind, status: (error as { status?: number }).status },
        'csv export refused',
      );
      throw error;
    }
    try {
      const chunks = await job.open();
      metrics.csvDownloads.inc({ kind });
      const started = Date.now();
      await sendCsv(res, filename, columns, chunks, {
        stallMs: limits.stallMs,
        hasByteOrderMark: bom === '1',
        onStall: () => {
          metrics.csvExportsStalled.inc({ kind });
          logger.warn(
            { reqId: req.id, username, kind, stallMs: limits.stallMs, elapsedMs: Date.now() - started },
            'csv export cut off: the client stopped reading',
          );
        },
      });
    } finally {
      release();
    }
  }

  return { send, stats: slots.stats };
}

export type CsvExports = ReturnType<typeof createCsvExports>;
