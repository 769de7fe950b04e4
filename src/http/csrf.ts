import { randomBytes } from 'node:crypto';
import cookieParser from 'cookie-parser';
import csurf from 'csurf';
import type { Request, RequestHandler, Response } from 'express';

/** The signed cookie that holds a visitor's CSRF secret until they sign in, where it is not Secure. */
export const CSRF_COOKIE = 'hb.csrf';

/**
 * Its name where it is Secure. A browser takes a `__Host-` cookie only from the host itself, over
 * https, with Secure, Path=/ and no Domain, so a page on a sibling subdomain (a campus web host)
 * cannot plant one for the parent domain, as it could `hb.csrf` with its own secret and token,
 * and sign the victim into the attacker's account (a same-site form post carries Lax cookies).
 */
export const SECURE_CSRF_COOKIE = '__Host-hb.csrf';

/** The visitor cookie of a request, as the CSRF check named and flagged it; read again to clear it. */
interface VisitorCookie {
  name: string;
  secure: boolean;
}
const visitorCookieOf = new WeakMap<Request, VisitorCookie>();
const visitorCookieFor = (secure: boolean): VisitorCookie => ({
  name: secure ? SECURE_CSRF_COOKIE : CSRF_COOKIE,
  secure,
});

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
  // Each reads only the cookie it sets: a Secure request never takes `hb.csrf`, which anyone on a
  // sibling subdomain can set. No Domain, so the cookie is the host's alone either way.
  const visitorCsrf = (cookie: VisitorCookie) => ({
    cookie,
    check: csurf({
      value,
      cookie: { key: cookie.name, signed: true, httpOnly: true, sameSite: 'lax', secure: cookie.secure, path: '/' },
    }),
  });
  const forSecureVisitor = visitorCsrf(visitorCookieFor(true));
  // Only with REQUIRE_HTTPS off, and only for a request that did not come over https: csurf sets
  // its cookie with fixed options, and one set over TLS must never go back over plain HTTP.
  const forPlainVisitor = options.isSecureCookie ? forSecureVisitor : visitorCsrf(visitorCookieFor(false));
  // csurf signs and reads the visitor cookie through cookie-parser's req.secret and req.signedCookies.
  const parseCookies = cookieParser(options.secret);
  return (req, res, next) => {
    if (req.user) return forSignedIn(req, res, next);
    const forVisitor = req.secure ? forSecureVisitor : forPlainVisitor;
    visitorCookieOf.set(req, forVisitor.cookie);
    parseCookies(req, res, (error?: unknown) => (error ? next(error) : forVisitor.check(req, res, next)));
  };
}

/**
 * Gives a session that is being signed in a CSRF secret of its own, before its one save; the
 * visitor's cookie secret ends with the visit. csurf keeps a session's secret under
 * `csrfSecret`, 18 random bytes in base64url as here. The cookie is cleared under the name and
 * with the flags the CSRF check of this request gave it: a bare `hb.csrf=; Path=/` was the one
 * Set-Cookie of a production sign-in without Secure, HttpOnly and SameSite, which cookie audits flag.
 */
export function giveSessionCsrfSecret(req: Request, res: Response): void {
  req.session.csrfSecret = randomBytes(18).toString('base64url');
  const cookie = visitorCookieOf.get(req) ?? visitorCookieFor(req.secure);
  res.clearCookie(cookie.name, { path: '/', httpOnly: true, sameSite: 'lax', secure: cookie.secure });
}

/** True for the error csurf raises on a missing or wrong token. */
export function isCsrfError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'EBADCSRFTOKEN';
}

// csurf with no method checked: it only gives the request its csrfToken(), from the session's secret.
const issueOnly = csurf({ ignoreMethods: ['GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH', 'DELETE'] });

/**
 * A token for the page of an error, so that its Sign out form works: a refusal raised before the
 * page middleware (a stale token, a NUL, an unreadable body) rendered it with an empty token, and
 * pressing Sign out there was refused in turn. Only for a signed-in user, whose secret is in the
 * session; a visitor's page has no form in its header.
 */
export function csrfTokenForErrorPage(req: Request, res: Response): string | undefined {
  if (!req.user || !req.session) return undefined;
  // csurf calls back at once; a CSRF refusal has already given the request its csrfToken().
  if (typeof req.csrfToken !== 'function') issueOnly(req, res, () => {});
  return typeof req.csrfToken === 'function' ? req.csrfToken() : undefined;
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
