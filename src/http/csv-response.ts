import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { stringify } from 'csv-stringify';
import type { Response } from 'express';

/**
 * Streams rows as a CSV attachment with a header row. Backpressure flows from the
 * socket through csv-stringify to the row source, so a slow client pauses the
 * database batches instead of filling memory.
 */
export async function sendCsv(
  res: Response,
  filename: string,
  columns: readonly string[],
  rows: AsyncIterable<unknown> | Iterable<unknown>,
): Promise<void> {
  res.status(200);
  res.setHeader('Content-Type', 'text/csv; charset=utf-8');
  res.setHeader('Content-Disposition', `attachment; filename="${filename.replace(/[^A-Za-z0-9._-]/g, '_')}"`);
  res.setHeader('Cache-Control', 'no-store');
  try {
    await pipeline(Readable.from(rows), stringify({ header: true, columns: [...columns] }), res);
  } catch (error) {
    // The client went away mid-download: nothing to answer, and the row source has been closed.
    if ((error as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE') return;
    throw error;
  }
}
