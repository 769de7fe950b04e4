import type { Request } from 'express';
import { Passport } from 'passport';
import { Strategy as LocalStrategy } from 'passport-local';
import { type AuthServiceDeps, findSessionUser, type SessionUser, signIn, toSessionUser } from './auth.service.js';

declare global {
  namespace Express {
    interface User extends SessionUser {}
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
