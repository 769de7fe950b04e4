import type { Response } from 'express';

/** Where a streamed page's view puts its rows (`<%- STREAMED_ROWS %>`, passed as `streamedRows`). */
export const STREAMED_ROWS = '<!-- streamed rows -->';

/** A view rendered to text with the response's locals, as res.render would send it. */
export function renderView(res: Response, view: string, data: Record<string, unknown>): Promise<string> {
  return new Promise((resolve, reject) => {
    res.render(view, data, (error: Error | null, html?: string) => {
      if (error) reject(error);
      else resolve(html ?? '');
    });
  });
}

/**
 * Sends a page whose rows are too many to hold at once: `view` is rendered first (with
 * `streamedRows` where the rows go), its part up to the rows is sent, then each chunk of
 * `rows` as it comes, then the rest. Everything that can refuse the request (not found,
 * forbidden) must have been checked before: once the first part is out, a failure can only
 * cut the page short. Waits for the socket between chunks, so a slow client slows the reading
 * instead of filling memory; a client that leaves stops it.
 */
export async function sendStreamedPage(
  res: Response,
  view: string,
  data: Record<string, unknown>,
  rows: AsyncIterable<string>,
): Promise<void> {
  const page = await renderView(res, view, { ...data, streamedRows: STREAMED_ROWS });
  const at = page.indexOf(STREAMED_ROWS);
  if (at === -1) throw new Error(`View ${view} has no place for its streamed rows.`);
  let isClosed = false;
  res.once('close', () => {
    isClosed = true;
  });
  res.status(200);
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.write(page.slice(0, at));
  for await (const chunk of rows) {
    if (isClosed) return;
    if (!res.write(chunk)) {
      await new Promise<void>((resolve) => {
        const settle = () => {
          res.off('drain', settle);
          res.off('close', settle);
          resolve();
        };
        res.on('drain', settle);
        res.on('close', settle);
      });
    }
  }
  if (isClosed) return;
  res.end(page.slice(at + STREAMED_ROWS.length));
}
