import { randomBytes } from 'node:crypto';
import cookieParser from 'cookie-parser';
import csurf from 'csurf';
import type { Request, RequestHandler, Response } from 'express';

/** The signed cookie that holds a visitor's CSRF secret until they sign in. */
export const CSRF_COOKIE = 'hb.csrf';

/** The CSRF token a request carries: its form's `csrf_token`, or a header; '' when it has none. */
export function sentCsrfTokenOf(req: Request): string {
  return (
    (typeof req.body?.csrf_token === 'string' ? req.body.csrf_token : undefined) ??
    req.get('x-csrftoken') ??
    req.get('x-csrf-token') ??
    ''
  );
}

/**
 * CSRF protection for every session-backed unsafe request, wrapped here so the library can
 * be swapped. The token comes from the form field `csrf_token` or the `X-CSRFToken` /
 * `X-CSRF-Token` header. A signed-in user's secret lives in their session, so a token is
 * bound to it. A visitor's (the sign-in form, error pages) lives in a signed, HttpOnly cookie:
 * csurf creates a secret for every request that lacks one, and kept in the session that
 * made every anonymous request (a crawler's, a sign-in form's) write a session row.
 */
export function createCsrfProtection(options: { secret: string; isSecureCookie: boolean }): RequestHandler {
  const value = sentCsrfTokenOf;
  const forSignedIn = csurf({ value });
  const visitorCsrf = (secure: boolean) =>
    csurf({
      value,
      cookie: { key: CSRF_COOKIE, signed: true, httpOnly: true, sameSite: 'lax', secure, path: '/' },
    });
  const forSecureVisitor = visitorCsrf(true);
  // Only with REQUIRE_HTTPS off, and only for a request that did not come over https: csurf sets
  // its cookie with fixed options, and one set over TLS must never go back over plain HTTP.
  const forPlainVisitor = options.isSecureCookie ? forSecureVisitor : visitorCsrf(false);
  // csurf signs and reads the visitor cookie through cookie-parser's req.secret and req.signedCookies.
  const parseCookies = cookieParser(options.secret);
  return (req, res, next) => {
    if (req.user) return forSignedIn(req, res, next);
    const forVisitor = req.secure ? forSecureVisitor : forPlainVisitor;
    parseCookies(req, res, (error?: unknown) => (error ? next(error) : forVisitor(req, res, next)));
  };
}

/**
 * Gives a session that is being signed in a CSRF secret of its own, before its one save; the
 * visitor's cookie secret ends with the visit. csurf keeps a session's secret under
 * `csrfSecret`, 18 random bytes in base64url as here.
 */
export function giveSessionCsrfSecret(req: Request, res: Response): void {
  req.session.csrfSecret = randomBytes(18).toString('base64url');
  res.clearCookie(CSRF_COOKIE, { path: '/' });
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
