import type { Request } from 'express';
import { toSafeNextPath } from '../modules/auth/auth.service.js';

/**
 * The page of this site a request was sent from (its Referer's path and query), or undefined when
 * the browser did not say or the page is another site's.
 */
export function referringPageOf(req: Request): string | undefined {
  const referer = req.get('referer');
  if (!referer) return undefined;
  try {
    const url = new URL(referer);
    return url.host === req.get('host') ? toSafeNextPath(`${url.pathname}${url.search}`) : undefined;
  } catch {
    return undefined;
  }
}
