import type { RequestHandler } from 'express';
import session from 'express-session';
import type pg from 'pg';
import { PostgresSessionStore } from '../modules/auth/session.store.js';

declare module 'express-session' {
  interface SessionData {
    signedInAt?: number;
    lastSeenAt?: number;
    /** csurf's secret for a signed-in session (src/http/csrf.ts). */
    csrfSecret?: string;
    flash?: { type: 'success' | 'error' | 'warning'; message: string };
  }
}

export interface SessionSettings {
  secret: string;
  isSecureCookie: boolean;
  idleSec: number;
  absoluteSec: number;
  now: () => Date;
}

export const SESSION_COOKIE = 'hb.sid';

// Writing lastSeenAt on every request would turn each page view into a session
// UPDATE; a minute's precision is plenty for an idle timeout of many minutes.
const LAST_SEEN_PRECISION_MS = 60_000;

/** Sessions in Postgres (shared by workers and replicas, kept across restarts). */
export function createSessionMiddleware(pool: pg.Pool, settings: SessionSettings): RequestHandler {
  return session({
    name: SESSION_COOKIE,
    secret: settings.secret,
    store: new PostgresSessionStore(pool),
    resave: false,
    saveUninitialized: false,
    rolling: false,
    cookie: { httpOnly: true, sameSite: 'lax', secure: settings.isSecureCookie, maxAge: settings.absoluteSec * 1000 },
  });
}

/**
 * Ends signed-in sessions idle longer than idleSec or older than absoluteSec; runs before
 * passport reads the session.
 */
export function enforceSessionLifetime(settings: SessionSettings): RequestHandler {
  return (req, _res, next) => {
    const current = req.session;
    if (!current?.passport?.user) return next();
    const now = settings.now().getTime();
    const signedInAt = current.signedInAt ?? now;
    const lastSeenAt = current.lastSeenAt ?? now;
    if (now - lastSeenAt > settings.idleSec * 1000 || now - signedInAt > settings.absoluteSec * 1000) {
      req.session.regenerate((error) => {
        if (!error) req.session.flash = { type: 'warning', message: 'Your session ended. Please sign in again.' };
        next(error);
      });
      return;
    }
    if (now - lastSeenAt >= LAST_SEEN_PRECISION_MS) current.lastSeenAt = now;
    next();
  };
}

/** Moves a one-time message from the session to the page about to render. */
export const exposeFlash: RequestHandler = (req, res, next) => {
  if (req.session?.flash) {
    res.locals.flash = req.session.flash;
    delete req.session.flash;
  }
  next();
};
