import type { Request, RequestHandler, Router } from 'express';
import { parseQueryFields } from './list-shaped-fields.js';

// Kept beside the request, not in res.locals: every view's data is declared (view-engine.ts), and
// this is no view's.
// The function, not the page: the page is worked out only for a request sent to sign in, not for
// every download served (/me.csv is on the busiest path).
const pagesOfDownloads = new WeakMap<Request, PageOf>();

/** What a download's address asks for: its route's parameters and its query, as Express parses them. */
type DownloadAddress = { params: Record<string, unknown>; query: unknown };
type PageOf = (address: DownloadAddress) => string;

// Every download route that named its page, by its route, so that a download's address alone (a
// sign-in's `next`) finds the page too. The same route named again, by another app, replaces it.
const downloadRoutes = new Map<string, { pattern: RegExp; pageOf: PageOf }>();

/** An Express route (`/me/receipts/:id/items.csv`) as Express matches it: any case, a trailing slash. */
function patternOf(route: string): RegExp {
  const escaped = route.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:(\w+)/g, '(?<$1>[^/]+)');
  return new RegExp(`^${escaped}/?$`, 'i');
}

/**
 * Names the page that offers a download (the page its link is on), at what the link asks for. A
 * browser sent to sign in first from no page of this site (a bookmark, an e-mail, the download
 * history: no Referer to go back to) goes on to it once signed in. Sent on to the download itself,
 * the browser saved the file and stayed on the sign-in form, which read as a sign-in that had not
 * worked.
 */
function offeredOn(route: string, pageOf: PageOf): RequestHandler {
  downloadRoutes.set(route, { pattern: patternOf(route), pageOf });
  return (req, _res, next) => {
    pagesOfDownloads.set(req, pageOf);
    next();
  };
}

/**
 * `router.get(route, ...handlers)` for a download whose page `pageOf` names (offeredOn), the route
 * written once: the route Express matches and the one a sign-in's `next` is matched against.
 */
export function getDownload(router: Router, route: string, pageOf: PageOf, ...handlers: RequestHandler[]): void {
  router.get(route, offeredOn(route, pageOf), ...handlers);
}

/** The page `offeredOn` named for this request's download, or undefined. */
export function downloadPageOf(req: Request): string | undefined {
  return pagesOfDownloads.get(req)?.(req);
}

/** A receipt's page for the receipt number in a download's address, or `list` when it is none. */
export function receiptPageOf(list: string, id: unknown): string {
  return typeof id === 'string' && /^[1-9][0-9]*$/.test(id) ? `${list}/${id}` : list;
}

/**
 * The page offering the download at `path` (a path and query of this site), or undefined when it is
 * no download. A sign-in's `next` that is a download (typed by hand, or an old address) goes there:
 * sent on to the download itself, the browser saved the file and stayed on the sign-in form.
 */
export function pageOfDownloadAt(path: string): string | undefined {
  const url = new URL(path, 'http://local.invalid');
  for (const { pattern, pageOf } of downloadRoutes.values()) {
    const match = pattern.exec(url.pathname);
    if (!match) continue;
    const params = Object.fromEntries(
      Object.entries(match.groups ?? {}).map(([name, value]) => [name, decodedParam(value)]),
    );
    return pageOf({ params, query: parseQueryFields(url.search.slice(1)) });
  }
  return undefined;
}

function decodedParam(value: string): string | undefined {
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}
