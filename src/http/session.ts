import type { Request, RequestHandler, Response } from 'express';
import session from 'express-session';
import type pg from 'pg';
import { PostgresSessionStore } from '../modules/auth/session.store.js';
import type { PasswordSignOut } from '../shared/errors.js';

declare module 'express-session' {
  interface SessionData {
    signedInAt?: number;
    lastSeenAt?: number;
    /**
     * When the session was signed in to an account that was an admin then (epoch ms; kept when a password
     * change puts the session on a new id): an admin route that refuses it later says the account is no
     * longer an administrator (describeAdminRefusal), also when no audit entry says who changed the role
     * (an operator's UPDATE in the database), and names no demotion audited before it, which a promotion
     * since undid. Sessions signed in before this was stored have none: only the audit log tells of theirs.
     */
    signedInAsAdminAt?: number;
    /**
     * Set, with a flash saying so, on every session of a user an admin disabled, in place of the
     * signed-in session (users.repository.ts signOutSessionsOf): only whoever held that session
     * learns why they were signed out. Gone at the next sign-in, which makes a new session.
     */
    isAccountDisabled?: boolean;
    /**
     * Whose account that was, beside `isAccountDisabled`: a sign-in refused for that username in
     * this session says the account is disabled, as the session was already told, instead of
     * "Wrong username or password." (src/modules/auth/auth.routes.ts).
     */
    disabledUsername?: string;
    /**
     * Set, with a flash saying so, on every session a password change or reset, or a Sign out of all
     * other sessions, signed out (users.repository.ts signOutOtherSessionsOf): a JSON client's 401 and
     * a refused form say why (PASSWORD_SIGN_OUTS), not only the one sign-in page the flash shows on.
     * Gone at the next sign-in, which makes a new session.
     */
    signedOutBy?: PasswordSignOut;
    /**
     * Whose session it was (the passport's user, as text), beside `signedOutBy`: a disable of that
     * user later finds the session by it and says the account is disabled instead, the later and
     * weightier reason (users.repository.ts signOutSessionsOf). Gone at the next sign-in.
     */
    signedOutUserId?: string;
    /** csurf's secret for a signed-in session (src/http/csrf.ts). */
    csrfSecret?: string;
    flash?: {
      type: 'success' | 'error' | 'warning';
      message: string;
      /**
       * The id of the element the redirect opens at (its Location's fragment). The browser scrolls
       * there, past the top of the page: a page that has that element shows the message inside it;
       * any other page shows it at the top.
       */
      at?: string;
      /** A link shown after the message: where to act on what it says (a disabled user's pending receipts). */
      link?: { href: string; text: string };
    };
  }
}

export interface SessionSettings {
  secret: string;
  isSecureCookie: boolean;
  idleSec: number;
  absoluteSec: number;
  now: () => Date;
}

/** The session cookie where it is not Secure: plain-HTTP development, a REQUIRE_HTTPS=0 trial. */
export const SESSION_COOKIE = 'hb.sid';

/**
 * Its name where it is Secure. A page on a sibling subdomain (a campus web host) could set `hb.sid`
 * for the parent domain, holding the attacker's own signed-in session, and the victim was signed in
 * as the attacker with no form at all: regenerating the id at sign-in stops a planted id that waits
 * to be signed in, not one that already is. Browsers take a `__Host-` cookie only from the host
 * itself, over https, with Secure, Path=/ and no Domain (docs/security.md, "Sessions").
 */
export const SECURE_SESSION_COOKIE = '__Host-hb.sid';

// Writing lastSeenAt on every request would turn each page view into a session
// UPDATE; it is written when it is this far behind: a minute, or a tenth of a short
// idle limit. The last request may be up to this much after lastSeenAt, so a session
// ends only once this much more has passed: never early, at most this late.
const MAX_LAST_SEEN_PRECISION_MS = 60_000;
const lastSeenPrecisionMs = (idleSec: number) => Math.min(MAX_LAST_SEEN_PRECISION_MS, idleSec * 100);

export const SESSION_ENDED_MESSAGE = 'Your session ended. Please sign in again.';

// Requests whose session enforceSessionLifetime ended: a form they carried fails its CSRF
// check (the token belonged to the old session), and the error should say why.
const requestsWithEndedSession = new WeakSet<Request>();

/** Whether enforceSessionLifetime ended this request's session (its form's CSRF failure then says so). */
export function hasSessionEndedOn(req: Request): boolean {
  return requestsWithEndedSession.has(req);
}

/** Sessions in Postgres (shared by workers and replicas, kept across restarts). */
export function createSessionMiddleware(pool: pg.Pool, settings: SessionSettings): RequestHandler {
  // express-session reads and sets one cookie name, with one Secure flag: one for each, each
  // reading only the cookie it sets. A store each: express-session gives its store the cookie
  // options a regenerated session (every sign-in) gets, and a shared one took the last instance's.
  const sessionWith = (name: string, secure: boolean) =>
    session({
      name,
      secret: settings.secret,
      // The row outlives its last write by the absolute limit, as it did while the cookie carried it;
      // enforceSessionLifetime ends the session by both limits whatever the row's expiry.
      store: new PostgresSessionStore(pool, { ttlSec: settings.absoluteSec }),
      resave: false,
      saveUninitialized: false,
      rolling: false,
      cookie: {
        httpOnly: true,
        sameSite: 'lax',
        path: '/',
        secure,
        // No maxAge: a browser-session cookie, gone when the browser closes. With an expiry, a
        // session on a shared lab or library computer survived closing the browser, and the next
        // person to open it was signed in. The server's limits (idle, absolute) hold either way.
      },
    });
  const forSecure = sessionWith(SECURE_SESSION_COOKIE, true);
  // Only with REQUIRE_HTTPS off, and only for a request Express does not see as https (as
  // express-session's secure: 'auto' decided): a cookie set over TLS must never go back over plain HTTP.
  const forPlain = settings.isSecureCookie ? forSecure : sessionWith(SESSION_COOKIE, false);
  return (req, res, next) => (req.secure ? forSecure : forPlain)(req, res, next);
}

/**
 * Writes a changed session before the response is sent, not as it ends. express-session saves
 * at res.end but sends the headers first, so a browser following a redirect could ask for the
 * next page before the session row was written: a sign-in landed on /login again, a change's
 * confirmation (the flash) went missing (both seen under load in Chromium). Mounted right after
 * the session middleware, so it sees the session as loaded: a session whose id or content (the
 * cookie aside, as express-session compares it) changed since is saved first, and
 * express-session's own save at the end then finds nothing new to write. A failed save leaves
 * the end to express-session, which saves again and reports its error as it always did.
 */
export const saveSessionBeforeResponding: RequestHandler = (req, res, next) => {
  const loadedId = req.sessionID;
  const loadedContent = req.session ? contentOf(req.session) : undefined;
  const end = res.end;
  let isSaving = false;
  res.end = function endOnceSaved(this: Response, ...args: unknown[]) {
    const current = req.session;
    const isChanged = current && (req.sessionID !== loadedId || contentOf(current) !== loadedContent);
    if (isSaving || !current || !isChanged) return end.apply(this, args as Parameters<Response['end']>);
    isSaving = true;
    current.save((error) => {
      if (!error) skipResaveUnlessChanged(current);
      end.apply(res, args as Parameters<Response['end']>);
    });
    return this;
  } as Response['end'];
  next();
};

/*
 * express-session would save the session once more as the response ends: a regenerated one
 * always looks unsaved to it (its regenerate makes the new session through the store, out of
 * the middleware's sight). That save is skipped unless something changed since the save before.
 */
function skipResaveUnlessChanged(session: Request['session']): void {
  const savedContent = contentOf(session);
  const saveToStore = session.save;
  Object.defineProperty(session, 'save', {
    configurable: true,
    enumerable: false,
    writable: true,
    value(this: Request['session'], callback?: (error?: unknown) => void) {
      if (contentOf(this) === savedContent) {
        callback?.();
        return this;
      }
      return saveToStore.call(this, callback);
    },
  });
}

/** The session as stored, but for its cookie, whose expiry express-session moves on at every response. */
function contentOf(session: Request['session']): string {
  return JSON.stringify(session, function withoutCookie(this: unknown, key: string, value: unknown) {
    return this === session && key === 'cookie' ? undefined : value;
  });
}

/**
 * Ends signed-in sessions idle longer than idleSec or older than absoluteSec; runs before
 * passport reads the session.
 */
export function enforceSessionLifetime(settings: SessionSettings): RequestHandler {
  const precisionMs = lastSeenPrecisionMs(settings.idleSec);
  return (req, _res, next) => {
    const current = req.session;
    if (!current?.passport?.user) return next();
    const now = settings.now().getTime();
    const signedInAt = current.signedInAt ?? now;
    const lastSeenAt = current.lastSeenAt ?? now;
    const isIdle = now - lastSeenAt > settings.idleSec * 1000 + precisionMs;
    if (isIdle || now - signedInAt > settings.absoluteSec * 1000) {
      const ended = (error?: unknown, isReplaced = true) => {
        // Not replaced: a disable (or a change of the password) signed the row out after this request
        // read it, and the session now says so; "Your session ended" would hide why.
        if (!error && isReplaced) {
          req.session.flash = { type: 'warning', message: SESSION_ENDED_MESSAGE };
          requestsWithEndedSession.add(req);
        }
        next(error);
      };
      if (req.sessionStore instanceof PostgresSessionStore) req.sessionStore.endSession(req, ended);
      else req.session.regenerate(ended);
      return;
    }
    if (now - lastSeenAt >= precisionMs) current.lastSeenAt = now;
    next();
  };
}

/**
 * Moves a one-time message from the session to the next page rendered. Taken at render time,
 * not here: a request that only redirects (an ended session sent to /login) leaves the
 * message for the page it leads to, as a HEAD's page does.
 */
export const exposeFlash: RequestHandler = (req, res, next) => {
  const render = res.render;
  res.render = function renderWithFlash(this: Response, ...args: Parameters<Response['render']>) {
    if (req.session?.flash) {
      res.locals.flash = req.session.flash;
      // A HEAD's page is seen by no one: the message waits for the page the browser opens next, and
      // the HEAD still renders it, so that its Content-Length is the one its GET would send.
      if (req.method !== 'HEAD') delete req.session.flash;
    }
    return render.apply(this, args);
  } as Response['render'];
  next();
};
