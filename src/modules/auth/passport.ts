import type { Request, Response } from 'express';
import { Passport } from 'passport';
import { Strategy as LocalStrategy } from 'passport-local';
import { giveSessionCsrfSecret } from '../../http/csrf.js';
import { type AuthServiceDeps, findSessionUser, type SessionUser, signIn, toSessionUser } from './auth.service.js';

declare global {
  namespace Express {
    interface User extends SessionUser {}
  }
}

declare module 'express-session' {
  interface SessionData {
    /** Passport's own key: what serializeUser made of the signed-in user (their id). */
    passport?: { user?: unknown };
  }
}

/** A Passport of the app's own (no global singleton): local strategy, user id in the session. */
export function createPassport(deps: AuthServiceDeps): InstanceType<typeof Passport> {
  const passport = new Passport();
  passport.use(
    new LocalStrategy({ passReqToCallback: true }, (req, username, password, done) => {
      signIn(deps, { username, password, ip: req.ip ?? 'unknown', userAgent: req.get('user-agent') ?? null })
        .then((result) =>
          result.outcome === 'ok' ? done(null, result.user) : done(null, false, { message: result.outcome, ...result }),
        )
        .catch(done);
    }),
  );
  passport.serializeUser((user, done) => done(null, user.id));
  // Read on every request so a disabled user's session stops working at once: the session
  // store reads the user with the session row; a session without that falls back to a query.
  passport.deserializeUser<number, Request>((req, id, done) => {
    const loaded = req.session?.loadedUser;
    if (loaded?.id === id) return done(null, loaded.isDisabled ? false : toSessionUser(loaded));
    findSessionUser(deps.db.prisma, id)
      .then((user) => done(null, user ?? false))
      .catch(done);
  });
  return passport;
}

/**
 * Signs `user` in on a new session id, so an id planted before sign-in is useless
 * (fixation), and writes the new session row once. req.logIn saves the regenerated session
 * itself, express-session saves it again at the end of the response (its id changed), and
 * the first page would save it a third time to hold a CSRF secret; here everything is in the
 * session before the one save at the end of the response, which is also sent only after it.
 */
export function signInOnNewSession(
  passport: InstanceType<typeof Passport>,
  req: Request,
  res: Response,
  user: Express.User,
  signedInAt: number,
  done: (error?: unknown) => void,
): void {
  req.session.regenerate((regenerateError) => {
    if (regenerateError) return done(regenerateError);
    passport.serializeUser(user, req, (serializeError, serialized) => {
      if (serializeError) return done(serializeError);
      req.session.passport = { user: serialized };
      req.session.signedInAt = signedInAt;
      req.session.lastSeenAt = signedInAt;
      giveSessionCsrfSecret(req, res);
      // Saved before the caller redirects: express-session saves at res.end, but sends the
      // headers first, so a browser could follow the redirect to /me before the session row
      // was written, find no session and land on /login again (seen under load in Chromium).
      req.logIn(user, { session: false }, (loginError) => {
        if (loginError) return done(loginError);
        req.session.save((saveError) => {
          if (!saveError) skipResaveUnlessChanged(req.session);
          done(saveError ?? undefined);
        });
      });
    });
  });
}

/*
 * express-session saves a regenerated session once more as the response ends: its regenerate
 * makes the new session through the store, out of sight of the middleware's record of what was
 * saved, so the session always looks unsaved to it. After the save above, that second write is
 * skipped unless something in the session changed since. The cookie is left out of the
 * comparison, as express-session leaves it out: the end of the response moves its expiry on by
 * the milliseconds the response took.
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

function contentOf(session: Request['session']): string {
  return JSON.stringify(session, function withoutCookie(this: unknown, key: string, value: unknown) {
    return this === session && key === 'cookie' ? undefined : value;
  });
}
