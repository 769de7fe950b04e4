import type { RequestHandler } from 'express';
import { CSRF_COOKIE } from './csrf.js';
import { SESSION_COOKIE } from './session.js';

/** A cookie of `name` in a Cookie header: at its start or after a `;`, so `__Host-hb.sid` is not `hb.sid`. */
const cookieIn = (name: string) => new RegExp(`(?:^|;)\\s*${name.replace(/\./g, '\\.')}=`);

const RENAMED = [SESSION_COOKIE, CSRF_COOKIE].map((name) => ({ name, isIn: cookieIn(name) }));

/**
 * Expires the `hb.sid` and `hb.csrf` a browser still has from before their rename to `__Host-hb.sid`
 * and `__Host-hb.csrf` (7c45fd6c, ae49cf9e), where the `__Host-` names are in use (REQUIRE_HTTPS on,
 * or a request over https): it sent them with every request until they expired (hb.sid with the
 * browser, which one restoring its tabs never closes), to be ignored. Expired with the path and flags
 * they were set with (Path=/, HttpOnly, SameSite=Lax, Secure, no Domain); one a sibling subdomain
 * planted for the parent domain is not the host's to expire, and stays ignored. Mounted with the
 * session: static files and the hot routes go without.
 */
export function expireRenamedCookies(options: { isSecureCookie: boolean }): RequestHandler {
  return (req, res, next) => {
    const header = req.headers.cookie;
    if (header === undefined || !(options.isSecureCookie || req.secure)) return next();
    for (const { name, isIn } of RENAMED) {
      if (isIn.test(header)) res.clearCookie(name, { path: '/', httpOnly: true, sameSite: 'lax', secure: true });
    }
    next();
  };
}
