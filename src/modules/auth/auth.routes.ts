import { type ErrorRequestHandler, type Request, type RequestHandler, type Response, Router } from 'express';
import type { Database } from '../../db/database.js';
import { auditContextOf } from '../../http/audit-context.js';
import { isCsrfError, sentCsrfTokenOf } from '../../http/csrf.js';
import { pageOfDownloadAt } from '../../http/download-page.js';
import { prefersJson } from '../../http/error-handler.js';
import { servedPagePathOf } from '../../http/method-not-allowed.js';
import { isPlainHttpRefused, plainHttpSignInMessageFor } from '../../http/plain-http.js';
import { isRefusedForm, typedIn } from '../../http/route-helpers.js';
import { parseInput } from '../../http/validate.js';
import { ACCOUNT_DISABLED_MESSAGE, ConflictError, NotAcceptableError, readableMessageOf } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { ZSignInForm } from './auth.schema.js';
import {
  formatTimeLeft,
  normalizedUsernameOf,
  recordSignOut,
  type SessionUser,
  type SignInResult,
  secondsLeft,
  toSafeNextPath,
} from './auth.service.js';
import { type createPassport, signInOnNewSession } from './passport.js';
import { hasStoredSession } from './session.store.js';

const FAILED_MESSAGE = 'Wrong username or password.';

function homeOf(user: SessionUser): string {
  return user.role === 'admin' ? '/admin' : '/me';
}

/**
 * Where signing in goes on to: the `next` asked for, when it stays on this site; for a browser, a
 * download's page rather than the download (`/me.csv` typed by hand, an old address). Sent on to
 * the download itself, the browser saved the file and stayed on the sign-in form, which read as a
 * sign-in that had not worked. A script asked for the download, and gets it.
 */
function destinationOf(req: Request): string | undefined {
  const nextPath = toSafeNextPath(req.body?.next ?? req.query.next);
  if (!nextPath || prefersJson(req)) return nextPath;
  return pageOfDownloadAt(nextPath) ?? nextPath;
}

/** The username a sign-in form carried, to show it back (at most a username's 64 characters). */
function typedUsernameOf(req: Request): string {
  return typedIn(req.body, 'username')?.slice(0, 64) ?? '';
}

/**
 * The sign-in page, or a refused sign-in's JSON answer. `isTypedWrong`: the refusal is about what was
 * typed (a wrong username or password), so the fields are marked invalid; a lock or an expired form is not.
 */
function renderLogin(
  req: Request,
  res: Response,
  view: { error?: string; notice?: string; username?: string; isTypedWrong?: boolean },
) {
  res.set('Cache-Control', 'no-store');
  // A script signing in reads why it was refused as every JSON answer says it, not from a form page.
  if (view.error && prefersJson(req)) {
    res.json({ error: view.error, code: res.statusCode });
    return;
  }
  res.render('auth/login', {
    title: 'Sign in',
    error: view.error,
    isTypedWrong: view.isTypedWrong === true,
    notice: view.notice,
    username: view.username ?? '',
    next: toSafeNextPath(req.body?.next ?? req.query.next) ?? '',
  });
}

/**
 * Why a sign-in was refused (not locked): the one neutral message, but to a session an admin's
 * disable signed out, for the username it was signed in as. That session was told its account
 * is disabled; "Wrong username or password." then sent its user guessing passwords into a
 * lockout. Anyone else, that username included, learns nothing.
 */
function refusalOf(req: Request, typedUsername: string): string {
  const { isAccountDisabled, disabledUsername } = req.session ?? {};
  const isDisabledHere = isAccountDisabled === true && disabledUsername === normalizedUsernameOf(typedUsername);
  return isDisabledHere ? ACCOUNT_DISABLED_MESSAGE : FAILED_MESSAGE;
}

/**
 * What the sign-in page says before anyone types a password. Over plain HTTP refused, that the form
 * cannot work over this connection. Sent here by a page that needs a user (its `next`), that the
 * page needs a sign-in and that signing in returns there: the bare form left a newcomer who opened a
 * link to /me/receipts/3 wondering what had become of that page. Not when a notice already waits
 * (the session ended, or a password change or a disable signed it out): it says more, and why.
 */
function signInNoticeOf(req: Request, isHttpsRequired: boolean): string | undefined {
  if (isPlainHttpRefused(req, isHttpsRequired)) return plainHttpSignInMessageFor(req);
  if (req.session?.flash) return undefined;
  // Reloaded after that notice: a disabled account's sign-in will not take anyone anywhere.
  if (req.session?.isAccountDisabled === true) return undefined;
  // Only a `next` the sign-in will follow is named: any other is dropped from the form as well.
  const nextPath = toSafeNextPath(req.query.next);
  if (!nextPath) return undefined;
  // Named only when a page is there: the address is anyone's text (a link sent to the user). A download
  // typed as `next` is named by its page, where signing in goes (destinationOf): it named the download.
  const page = servedPagePathOf(req, pageOfDownloadAt(nextPath) ?? nextPath) ?? 'the page you opened';
  return `Sign in to see ${page}: you will be taken there once signed in.`;
}

/**
 * A sign-in posted by someone already signed in comes from a second sign-in tab (its form's
 * token died with the visit when the first tab signed in): send them where they were going
 * instead of refusing the stale token. Mounted before the CSRF check; it changes nothing.
 */
export const redirectSignedInFromSignIn: RequestHandler = (req, res, next) => {
  if (!req.user) return next();
  // A script asking for someone else: the redirect is a sign-in's success to it, so it went on as the
  // one it named while acting as the one signed in. Refused, changing nothing; a browser's second tab
  // is sent on as below.
  const typed = typedIn(req.body, 'username');
  const asked = typed === undefined ? '' : normalizedUsernameOf(typed);
  if (prefersJson(req) && asked !== '' && asked !== req.user.username) {
    const signedIn = req.user.username;
    return next(
      new ConflictError(
        `You are already signed in as ${signedIn}, so ${asked} was not signed in and no password was checked. ` +
          `Sign out first (POST /logout, with the X-CSRFToken header), then sign in as ${asked}.`,
        undefined,
        { publicFields: { username: signedIn } },
      ),
    );
  }
  // A script signing in again gets the redirect a sign-in gets, without the note: it never loads the
  // next page, so the note would wait in its session and show on a page opened later.
  if (!prefersJson(req)) {
    req.session.flash = { type: 'warning', message: `You are already signed in as ${req.user.username}.` };
  }
  res.redirect(303, destinationOf(req) ?? homeOf(req.user));
};

const SIGNED_OUT_MESSAGE = 'You are signed out.';

/**
 * The sign-in page saying "You are signed out." without a session to carry it. True whoever opens
 * it: a signed-in visitor is sent on from /login, so only someone signed out ever reads it.
 */
const SIGNED_OUT_PAGE = '/login?signed_out=1';

/**
 * A sign-out posted by someone no longer signed in comes from a tab left open after signing out in
 * another (which ended the session its token belonged to) or after the session ended: they are
 * signed out already, so they get the sign-in page a sign-out leads to instead of a 403 for the
 * stale token, whose reload would post it again. Mounted before the CSRF check; there is no
 * session to end, so a forged sign-out can do nothing here but have the sign-in page say so.
 */
export const redirectSignedOutFromSignOut: RequestHandler = (req, res, next) => {
  if (req.user) return next();
  if (prefersJson(req)) return answerSignedOut(res);
  // The bare form left the person at a shared computer's last open tab as unsure as a sign-out
  // without the notice did. A session ended with a reason (a disable, a password changed
  // elsewhere) carries that reason, which says more, so it stays. The notice goes only into a
  // session that has a row already (that tab's browser holds the signed-out session the other
  // tab's sign-out made): answered before the CSRF check, a sign-out with no session is anyone's to
  // send, and each stored a new row for the notice, so a flood of them filled the session table.
  // One without a row (its cookie outlived it: the prune) is told in the address instead, which
  // stores nothing; the bare form it got left that tab's person as unsure as the others were.
  if (!hasStoredSession(req)) return res.redirect(302, SIGNED_OUT_PAGE);
  if (!req.session.flash) req.session.flash = { type: 'success', message: SIGNED_OUT_MESSAGE };
  res.redirect(302, '/login');
};

/** What a JSON client asking GET /logout is told (406). */
const GET_LOGOUT_REFUSAL =
  'GET /logout is the page with the Sign out button, for browsers, and signs no one out. ' +
  'To sign out, send POST /logout with the X-CSRFToken header.';

/**
 * A script signing out reads that it worked as every JSON answer says it: a redirect to the
 * sign-in page, with the message stored in a new session for it, left a session row the script
 * never opens until it expired.
 */
function answerSignedOut(res: Response) {
  res.set('Cache-Control', 'no-store');
  res.json({ ok: true, message: SIGNED_OUT_MESSAGE });
}

/**
 * A sign-in form whose token had expired (left open while another tab signed in and out, which
 * ends the visit its token belonged to) gets the form back, with a fresh token and the username
 * kept, instead of a 403 page whose reload would post the same stale form. Mounted after the
 * CSRF check as an error handler; nothing was checked or written.
 */
export function signInFormOnExpiredToken(options: { isHttpsRequired: boolean }): ErrorRequestHandler {
  return (error, req, res, next) => {
    const isExpiredSignIn =
      req.method === 'POST' && !req.user && isCsrfError(error) && !isPlainHttpRefused(req, options.isHttpsRequired);
    if (!isExpiredSignIn) return next(error);
    res.status(403);
    // A script has no form that could have expired: it sent no token, or one without the cookie of the
    // GET /login that gave it (a client keeping no cookies), and "Sign in again" failed the same way.
    if (prefersJson(req)) {
      res.set('Cache-Control', 'no-store');
      res.json({ error: scriptSignInTokenRefusal(req), code: 403 });
      return;
    }
    res.locals.csrfToken = req.csrfToken();
    renderLogin(req, res, {
      error: 'The security token of this sign-in form had expired. Sign in again.',
      username: typedUsernameOf(req),
    });
  };
}

/** What a JSON client's sign-in refused by the CSRF check is to change. */
function scriptSignInTokenRefusal(req: Request): string {
  if (!sentCsrfTokenOf(req)) {
    return (
      'The security token (CSRF token) is missing, so no one was signed in: read the csrf_token field of the ' +
      'form at GET /login and send it in the X-CSRFToken header, with the cookie that GET set.'
    );
  }
  return (
    "The security token (CSRF token) does not go with this client's cookie, so no one was signed in: a token " +
    'is good only with the cookie set by the GET /login that gave it. Keep the cookies of GET /login and send ' +
    'its csrf_token in the X-CSRFToken header.'
  );
}

/** Signing in and out: the sign-in form and its POST, and the sign-out (GET asks, POST signs out). */
export function authRoutes(deps: {
  db: Database;
  passport: ReturnType<typeof createPassport>;
  now: () => Date;
  /** REQUIRE_HTTPS: sign-in over plain HTTP is refused, since its session cookie would never be set. */
  isHttpsRequired: boolean;
  /** Where a sign-out whose audit entry was refused is logged (recordSignOut). */
  logger: Logger;
}): Router {
  const router = Router();

  router.get('/login', (req, res) => {
    if (req.user) return res.redirect(302, destinationOf(req) ?? homeOf(req.user));
    // A notice kept in the session (a reason the session ended) says more, and takes its place.
    if (req.query.signed_out === '1' && !req.session?.flash) {
      res.locals.flash = { type: 'success', message: SIGNED_OUT_MESSAGE };
    }
    renderLogin(req, res, { notice: signInNoticeOf(req, deps.isHttpsRequired) });
  });

  router.post('/login', (req, res, next) => {
    const username = typedUsernameOf(req);
    if (isPlainHttpRefused(req, deps.isHttpsRequired)) {
      // Refused before the password is checked: the attempt is not counted against the lockout,
      // audited as a sign-in, nor given a session row that no cookie would ever point to.
      res.status(403);
      return renderLogin(req, res, { error: plainHttpSignInMessageFor(req), username });
    }
    try {
      parseInput(ZSignInForm, req.body);
    } catch (error) {
      // Not a sign-in at all (a field missing, or not text): said as a refused form is, with
      // nothing checked, counted or audited.
      if (!isRefusedForm(req, error, [400])) return next(error);
      res.status(400);
      return renderLogin(req, res, { error: readableMessageOf(error), username });
    }
    deps.passport.authenticate('local', (error: unknown, user: SessionUser | false, info?: SignInResult) => {
      if (error) return next(error);
      if (!user) {
        // The form again, with a status that says it was refused: 401 for a wrong password, 429 with
        // Retry-After (whole seconds, rounded up as the message rounds them) while locked. A 200
        // would tell a script or a monitor checking the status that it had signed in.
        if (info?.outcome === 'locked') {
          const now = deps.now();
          res.status(429).set('Retry-After', String(secondsLeft(info.lockedUntil, now)));
          const isNetwork = info.scopes.includes('network');
          const from = isNetwork ? ' from your network' : '';
          // What to do, not only how long: a locked researcher who then remembered the password was
          // refused with it too, and did not know the help desk could end the wait (Unlock sign-in,
          // or a password reset). No one lifts a network's lock: it ends on its own.
          const meanwhile = isNetwork
            ? 'Until then even the right password is refused.'
            : 'Until then even the right password is refused; an administrator can lift the lock sooner.';
          const message = `Too many failed sign-ins${from}. Try again in ${formatTimeLeft(info.lockedUntil, now)}. ${meanwhile}`;
          return renderLogin(req, res, { error: message, username });
        }
        res.status(401);
        const refusal = refusalOf(req, username);
        return renderLogin(req, res, { error: refusal, username, isTypedWrong: refusal === FAILED_MESSAGE });
      }
      const nextPath = destinationOf(req);
      const signedIn = {
        at: deps.now().getTime(),
        passwordChangedAt: info?.outcome === 'ok' ? info.passwordChangedAt : null,
        sessionEpoch: info?.outcome === 'ok' ? info.sessionEpoch : undefined,
      };
      signInOnNewSession(deps.passport, req, res, user, signedIn, (loginError) => {
        if (loginError) return next(loginError);
        res.redirect(302, nextPath ?? homeOf(user));
      });
    })(req, res, next);
  });

  // People type /logout; signing out is a POST (with the CSRF token), so this page offers the button.
  router.get('/logout', (req, res) => {
    // A script that asked for JSON got the page with the button (or a redirect to the sign-in page):
    // told nothing, it could take the GET for a sign-out. It signs no one out, signed in or not.
    if (prefersJson(req)) throw new NotAcceptableError(GET_LOGOUT_REFUSAL);
    if (!req.user) return res.redirect(302, '/login');
    res.render('auth/logout', { title: 'Sign out' });
  });

  router.post('/logout', async (req, res, next) => {
    if (req.user) await recordSignOut(deps.db, req.user, auditContextOf(req), deps.logger.child({ reqId: req.id }));
    req.logout((logoutError) => {
      if (logoutError) return next(logoutError);
      // The signed-in session's row goes; a fresh, signed-out one carries the one line that says it
      // worked. The bare sign-in page left someone on a shared computer unsure they were out.
      req.session.regenerate((regenerateError) => {
        if (regenerateError) return next(regenerateError);
        if (prefersJson(req)) {
          // No session at all, not even the new empty one: express-session stores a regenerated
          // session whatever it holds, and sets its cookie; without one it does neither.
          (req as { session: unknown }).session = null;
          return answerSignedOut(res);
        }
        req.session.flash = { type: 'success', message: SIGNED_OUT_MESSAGE };
        res.redirect(302, '/login');
      });
    });
  });

  return router;
}
