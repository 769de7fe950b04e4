import csurf from 'csurf';
import type { Request, RequestHandler, Response } from 'express';

/**
 * CSRF protection for every session-backed unsafe request, wrapped here so the
 * library can be swapped. The secret lives in the session (not a cookie); the token
 * comes from the form field `csrf_token` or the `X-CSRFToken` / `X-CSRF-Token` header.
 */
export function createCsrfProtection(): RequestHandler {
  return csurf({
    value: (req: Request) =>
      (typeof req.body?.csrf_token === 'string' ? req.body.csrf_token : undefined) ??
      req.get('x-csrftoken') ??
      req.get('x-csrf-token') ??
      '',
  });
}

/** True for the error csurf raises on a missing or wrong token. */
export function isCsrfError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'EBADCSRFTOKEN';
}

/**
 * Gives the views `csrfToken` only when a page is rendered: a token costs a random salt and
 * a hash, and CSV downloads, redirects and JSON answers never show one. Every render (the
 * error page included) goes through res.render, so every form still gets a fresh token.
 */
export function exposeCsrfTokenOnRender(req: Request, res: Response): void {
  const render = res.render;
  res.render = function renderWithCsrfToken(this: Response, ...args: Parameters<Response['render']>) {
    res.locals.csrfToken = req.csrfToken();
    return render.apply(this, args);
  } as Response['render'];
}
