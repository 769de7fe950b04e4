import path from 'node:path';
import type { RequestHandler } from 'express';

/** How long browsers keep the icon: as long as the other static files in production. */
export const FAVICON_MAX_AGE = '1d';

/**
 * GET /favicon.ico: public/favicon.ico (made by scripts/make-favicon.ts). Browsers ask for it on
 * their own wherever no page names an icon (a JSON answer, /healthz, a CSV), and its 404 was an
 * error in their consoles and a request counted as `unmatched`. Sent with Last-Modified and an
 * ETag, so a browser revalidating it gets a 304.
 */
export function serveFavicon(publicDir: string): RequestHandler {
  const file = path.join(publicDir, 'favicon.ico');
  return (_req, res, next) => {
    res.sendFile(file, { maxAge: FAVICON_MAX_AGE, headers: { 'Content-Type': 'image/x-icon' } }, (error) => {
      if (error) next(error);
    });
  };
}
