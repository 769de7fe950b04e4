import type { Request, RequestHandler } from 'express';

// Kept beside the request, not in res.locals: every view's data is declared (view-engine.ts), and
// this is no view's.
const pagesOfDownloads = new WeakMap<Request, string>();

/**
 * Names the page that offers a download (the page its link is on), at what the link asks for. A
 * browser sent to sign in first from no page of this site (a bookmark, an e-mail, the download
 * history: no Referer to go back to) goes on to it once signed in. Sent on to the download itself,
 * the browser saved the file and stayed on the sign-in form, which read as a sign-in that had not
 * worked.
 */
export function offeredOn(pageOf: (req: Request) => string): RequestHandler {
  return (req, _res, next) => {
    pagesOfDownloads.set(req, pageOf(req));
    next();
  };
}

/** The page `offeredOn` named for this request's download, or undefined. */
export function downloadPageOf(req: Request): string | undefined {
  return pagesOfDownloads.get(req);
}

/** A receipt's page for the receipt number in a download's address, or `list` when it is none. */
export function receiptPageOf(list: string, id: unknown): string {
  return typeof id === 'string' && /^[1-9][0-9]*$/.test(id) ? `${list}/${id}` : list;
}
