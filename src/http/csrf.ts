import csurf from 'csurf';
import type { Request, RequestHandler } from 'express';

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
