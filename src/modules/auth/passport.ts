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
          result.outcome === 'ok'
            ? done(null, result.user, { message: result.outcome, ...result })
            : done(null, false, { message: result.outcome, ...result }),
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
  signedIn: {
    at: number;
    /**
     * When the password it proved was set (epoch ms, or null): the session is served only while
     * the user's password is still that one (session.store.ts). Undefined for a session kept on a
     * new id that was signed in before the stamp was stored: it stays unchecked, as it was.
     */
    passwordChangedAt: number | null | undefined;
    /**
     * The account's session epoch, read with its enabled flag by the check that signs it in: the
     * session is served only while a disable has not raised it since (session.store.ts).
     */
    sessionEpoch: number | undefined;
    /**
     * When the session it goes on from was signed in as an admin (SessionData.signedInAsAdminAt), kept
     * whatever `user` is now; undefined for none.
     */
    signedInAsAdminAt?: number | undefined;
  },
  done: (error?: unknown) => void,
): void {
  req.session.regenerate((regenerateError) => {
    if (regenerateError) return done(regenerateError);
    passport.serializeUser(user, req, (serializeError, serialized) => {
      if (serializeError) return done(serializeError);
      req.session.passport = { user: serialized };
      req.session.signedInAt = signedIn.at;
      req.session.lastSeenAt = signedIn.at;
      req.session.passwordChangedAt = signedIn.passwordChangedAt;
      req.session.sessionEpoch = signedIn.sessionEpoch;
      const signedInAsAdminAt = user.role === 'admin' ? signedIn.at : signedIn.signedInAsAdminAt;
      if (signedInAsAdminAt !== undefined) req.session.signedInAsAdminAt = signedInAsAdminAt;
      giveSessionCsrfSecret(req, res);
      // Written before the redirect is sent, by saveSessionBeforeResponding (src/http/session.ts).
      req.logIn(user, { session: false }, (loginError) => done(loginError ?? undefined));
    });
  });
}
