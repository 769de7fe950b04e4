import { STATUS_CODES } from 'node:http';
import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
import {
  AppError,
  DATABASE_BEHIND,
  DATABASE_HAS_NO_SCHEMA,
  DATABASE_OUT_OF_RESOURCES,
  DATABASE_READ_ONLY,
  isDatabaseUnavailable,
  isMissingColumn,
  isMissingTable,
  isOutOfResources,
  isPoolClosedByShutdown,
  isPoolWaitTimedOut,
  isReadOnlyDatabase,
  isStatementRefused,
  isTransactionTimedOut,
  isUniqueViolation,
  isUnstorableText,
  MethodNotAllowedError,
  NotFoundError,
  PASSWORD_SIGN_OUTS,
  passwordSignOutOf,
  readableMessageOf,
  UnsealedAuditAppendError,
} from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { unreadCharsetMessage } from './body-charset.js';
import { csrfTokenForErrorPage, isCsrfError, sentCsrfTokenOf } from './csrf.js';
import { nearestPageOf, routeMissOf } from './method-not-allowed.js';
import { linkTo } from './page-links.js';
import { isPlainHttpRefused, plainHttpSignInMessageFor } from './plain-http.js';
import { referringPageOf } from './referring-page.js';
import { isLoggedAsCutByShutdown, methodLabelOf, routeTemplateOf } from './request-context.js';
import { hasSessionEndedOn } from './session.js';

/** The Accept header in lower case: media types are case-insensitive (RFC 9110), `APPLICATION/JSON` too. */
function acceptOf(req: Request): string {
  return (req.get('accept') ?? '').toLowerCase();
}

/** Requests answered in JSON whatever they accept (answerInJson). */
const answeredInJson = new WeakSet<Request>();

/**
 * Marks a request as one whose answer, an error too, is JSON: a payment provider's webhook delivery.
 * Its client may accept HTML (Java's HttpURLConnection sends text/html unless told otherwise), and a
 * delivery refused from its headers (415, 404) was answered with an HTML page.
 */
export function answerInJson(req: Request): void {
  answeredInJson.add(req);
}

/** Browsers ask for HTML explicitly; API clients, curl and fetch get JSON. */
export function wantsHtml(req: Request): boolean {
  if (answeredInJson.has(req)) return false;
  const accept = acceptOf(req);
  return accept.includes('text/html') && !req.is('application/json');
}

/**
 * A client that can take an HTML page: a browser, one that takes any type or any text (curl's default
 * Accept does) or one that names no type. One that names only others (`text/csv`, a script fetching
 * its usage) cannot, so it is not sent to the sign-in page.
 */
export function acceptsHtml(req: Request): boolean {
  const accept = acceptOf(req).trim();
  return accept === '' || accept.includes('text/html') || accept.includes('*/*') || accept.includes('text/*');
}

/** A client that asked for JSON: guards answer it with a status instead of a redirect. */
export function prefersJson(req: Request): boolean {
  const accept = acceptOf(req);
  return Boolean(req.is('application/json')) || (accept.includes('application/json') && !accept.includes('text/html'));
}

/** The most fields a form may send (the body parser's `parameterLimit`, at its default). */
export const FORM_FIELD_LIMIT = 1000;

/**
 * No route took the request: 404, or 405 for a method the address does not answer (as the CSRF
 * refusal of a form sent there says). A browser opening an address that only takes a form is sent to
 * the page the form is on instead: a form refused with its page shown again leaves the browser at
 * the form's address, and opening it again later (Enter in the address bar, a restored tab) is
 * someone going back to that form. With the address's query: a form's action carries the state of
 * its page (/me/receipt?start=...&view=aggregate, the window My usage showed), and without it the
 * page came back at its default (the last 7 days). Pages ignore a query field they do not take.
 */
export const notFoundHandler: RequestHandler = (req, res, next) => {
  const miss = routeMissOf(req) ?? new NotFoundError('Page not found.');
  const isSafe = req.method === 'GET' || req.method === 'HEAD';
  if (isSafe && miss instanceof MethodNotAllowedError && wantsHtml(req)) {
    const page = nearestPageOf(req);
    if (page) {
      const query = req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?')) : '';
      res.redirect(303, `${page}${query}`);
      return;
    }
  }
  next(miss);
};

interface BodyParserError {
  type?: string;
  status?: number;
  expose?: boolean;
  /** The charset an `charset.unsupported` refusal names. */
  charset?: string;
  /** The Content-Encoding an `encoding.unsupported` refusal names. */
  encoding?: string;
}

/**
 * What the body parsers' refusal of a body they could not read says: which charset or content
 * encoding it was sent in and what is read instead, rather than "The request could not be read.",
 * which left a script's author nothing to change.
 */
function unreadableBodyMessage(error: BodyParserError, req: Request): string {
  switch (error.type) {
    case 'entity.too.large':
      return 'The request body is too large.';
    case 'entity.parse.failed':
      return 'The request body is not valid JSON.';
    case 'parameters.too.many':
      return `The form has too many fields: at most ${FORM_FIELD_LIMIT}.`;
    case 'charset.unsupported':
      return unreadCharsetMessage(String(error.charset ?? '').toLowerCase());
    case 'encoding.unsupported':
      return (
        `The request body is sent with Content-Encoding ${error.encoding ?? req.get('content-encoding')}, which is ` +
        'not read here: send it uncompressed, or as gzip, deflate or br.'
      );
    case 'request.size.invalid':
      return 'The request body is not as long as its Content-Length says.';
  }
  const encoding = (req.get('content-encoding') ?? 'identity').toLowerCase();
  // Decompressing it failed (zlib's error, passed on as a 400): not what its header says it is.
  if (error.type === undefined && encoding !== 'identity') {
    return `The request body could not be decompressed as its Content-Encoding, ${encoding}, says it is compressed.`;
  }
  return 'The request could not be read.';
}

export interface ErrorHandlerOptions {
  /** REQUIRE_HTTPS: a form refused over plain HTTP is then explained as that. */
  isHttpsRequired?: boolean;
  /** Told of each request answered 503 because no pool connection came free in time (a metric counts them). */
  onPoolWaitTimedOut?: () => void;
}

/** The warning logged, once, for a request that got no database connection in time. */
const POOL_WAIT_TIMED_OUT_SUMMARY =
  'database busy: no free connection in the pool within DB_CONNECT_TIMEOUT_MS (all DB_POOL_MAX in use); answered 503';

/** A form sent by a browser that is no longer signed in. */
export const SIGNED_OUT_FORM_MESSAGE =
  'You are not signed in (you signed out, perhaps in another tab, or your session ended), so this form was not sent. Sign in, then send it again.';

/**
 * "Sign in again" for a form refused because its session ended: the sign-in page, sending the user
 * back to the page the form was on. Without it the page offered only the start page, and signing
 * in there or from the header lost the page (My usage's window, the Account form) the form was on.
 */
function signInAgainLink(req: Request): { href: string; text: string } {
  return { href: linkTo('/login', { next: referringPageOf(req) }, {}), text: 'Sign in again' };
}

/** What a request is told when PostgreSQL cannot be reached or cannot take more (the 503s below). */
const DATABASE_UNAVAILABLE_MESSAGE = 'The database is unavailable right now. Try again in a moment.';
/** What a request is told when its transaction or statement ran out of time and was rolled back whole. */
const DATABASE_TOO_BUSY_MESSAGE =
  'The database was too busy to finish this in time, and nothing was changed. Try again in a moment.';

/** Maps anything thrown into a status and a message safe to show. */
function describe(
  error: unknown,
  req: Request,
  options: ErrorHandlerOptions,
): {
  status: number;
  message: string;
  isExpected: boolean;
  /** A way on from the error page: the sign-in page, or the page the refused form was on. */
  backLink?: { href: string; text: string } | undefined;
  /** The Allow header of a 405 that is not an AppError of its own (a CSRF refusal at an address). */
  allowedMethods?: readonly string[];
  /** The log line's message for an unexpected error, when it says more than its status. */
  logSummary?: string;
  /**
   * Logged as a one-line warning with no error or stack: a load the server sheds on purpose, not
   * a fault anyone has to trace.
   */
  isLoggedAsWarning?: boolean;
  /** No pool connection came free in time (counted by onPoolWaitTimedOut). */
  isPoolWaitTimeout?: boolean;
} {
  if (error instanceof UnsealedAuditAppendError) {
    // Expected by no one: logged at error level at each request, since only an operator mends it.
    return {
      status: error.status,
      message: error.message,
      isExpected: false,
      logSummary: `audit entry refused: ${error.logReason}`,
    };
  }
  if (error instanceof AppError) return { status: error.status, message: error.message, isExpected: true };
  // A form sent where no route takes it (POST /nope, POST to a page that only shows) is refused by
  // the CSRF check before routing: say what routing would have, not that a form was not sent.
  const routeMiss = isCsrfError(error) ? routeMissOf(req) : undefined;
  if (routeMiss) {
    const { allowedMethods } = routeMiss as { allowedMethods?: readonly string[] };
    return { status: routeMiss.status, message: routeMiss.message, isExpected: true, allowedMethods };
  }
  if (isCsrfError(error) && isPlainHttpRefused(req, options.isHttpsRequired ?? false)) {
    // The visitor's CSRF cookie is Secure: a client that keeps Secure cookies off plain HTTP
    // (curl or a browser on any host but localhost) never sends it back, so every form fails here.
    return { status: 403, message: plainHttpSignInMessageFor(req), isExpected: true };
  }
  if (isCsrfError(error) && hasSessionEndedOn(req)) {
    return {
      status: 403,
      message: 'Your session ended, so this form was not sent. Sign in again, then send it again.',
      isExpected: true,
      backLink: signInAgainLink(req),
    };
  }
  if (isCsrfError(error) && !req.user && req.path !== '/login' && req.session?.isAccountDisabled) {
    return {
      status: 403,
      message: 'Your account has been disabled, so this form was not sent. Ask an administrator.',
      isExpected: true,
    };
  }
  const passwordSignOut = passwordSignOutOf(req.session);
  if (isCsrfError(error) && !req.user && req.path !== '/login' && passwordSignOut) {
    return {
      status: 403,
      message: PASSWORD_SIGN_OUTS[passwordSignOut].formRefused,
      isExpected: true,
      backLink: signInAgainLink(req),
    };
  }
  if (isCsrfError(error) && !req.user && req.path !== '/login') {
    // Every form but the sign-in's needs a signed-in user: one sent without a session comes from a
    // tab left open after signing out in another, or after the browser dropped an expired session's
    // cookie. Reloading the answer would only post it again.
    return { status: 403, message: SIGNED_OUT_FORM_MESSAGE, isExpected: true, backLink: signInAgainLink(req) };
  }
  if (isCsrfError(error) && prefersJson(req)) {
    // A script has no page to open again: it is told the header to send, and where the token is read.
    return {
      status: 403,
      message: sentCsrfTokenOf(req)
        ? 'The security token (CSRF token) is not one of this session, so nothing was done: it was read before the ' +
          "session last signed in or changed its password, or from another session. Read this session's token again " +
          "(csrfToken in GET /account's JSON; the forms of its pages hold it as csrf_token) and send it in the " +
          'X-CSRFToken header.'
        : 'The security token (CSRF token) is missing, so nothing was done: send the token of this session in the ' +
          "X-CSRFToken header (or the csrf_token field): it is csrfToken in GET /account's JSON, and the forms of " +
          'its pages hold it as csrf_token.',
      isExpected: true,
    };
  }
  if (isCsrfError(error)) {
    // Signed in, with a token of an earlier secret: a tab loaded before this session signed in again
    // (a password change in another tab does). "Reload the page" reloaded this answer, which posts
    // the same stale token again; the page the form was on gives it a fresh one.
    const formPage = referringPageOf(req);
    return {
      status: 403,
      message: sentCsrfTokenOf(req)
        ? 'The security token of this form has expired, so it was not sent: the page it was on was loaded ' +
          'before you last signed in or changed your password. Open that page again and send the form from there.'
        : 'The security token of this form is missing, so it was not sent. Open the page the form is on again ' +
          'and send it from there.',
      isExpected: true,
      backLink: formPage ? { href: formPage, text: 'Open that page again' } : undefined,
    };
  }
  if (isUniqueViolation(error)) {
    return { status: 409, message: 'This conflicts with something that already exists.', isExpected: true };
  }
  if (error instanceof URIError) {
    // The router could not decode a %-escape in the path (%ff, %zz): the address is wrong.
    return { status: 400, message: 'The address contains a malformed %-escape.', isExpected: true };
  }
  if (isUnstorableText(error)) {
    // The routes and the webhooks refuse a NUL up front (storable-text.ts); this catches any path that does not.
    return {
      status: 400,
      message: 'The request contains text that cannot be stored (a NUL character).',
      isExpected: true,
    };
  }
  const httpError = error as BodyParserError;
  if (httpError?.expose && typeof httpError.status === 'number' && httpError.status >= 400 && httpError.status < 500) {
    return { status: httpError.status, message: unreadableBodyMessage(httpError, req), isExpected: true };
  }
  if (isPoolClosedByShutdown(error)) {
    // Logged by errorHandler as a warning: an "unhandled error" with a stack at every deploy that
    // cut a request sent operators looking for a bug that is not there.
    return { status: 503, message: 'The server is restarting. Try again in a moment.', isExpected: true };
  }
  if (isPoolWaitTimedOut(error)) {
    // Every DB_POOL_MAX connection was busy for DB_CONNECT_TIMEOUT_MS (a burst: ~300 webhooks at
    // once answered 112 of these): the query that waited never reached the database (a webhook's
    // transaction never began) and the client, a provider or a browser, may try again. It was logged as 'database unavailable' at error with
    // a stack per request, a flood that hid the one line saying why; a warning each, and
    // db_pool_wait_timeouts_total, tell an operator the pool is too small for the load.
    return {
      status: 503,
      message: 'The server is busy right now. Try again in a moment.',
      isExpected: false,
      logSummary: POOL_WAIT_TIMED_OUT_SUMMARY,
      isLoggedAsWarning: true,
      isPoolWaitTimeout: true,
    };
  }
  if (isDatabaseUnavailable(error)) {
    // Not the request's fault and usually over in moments (a restart, a failover): 503 tells
    // clients and load balancers to retry; it is still logged, since someone may need to act.
    return {
      status: 503,
      message: DATABASE_UNAVAILABLE_MESSAGE,
      isExpected: false,
    };
  }
  if (isTransactionTimedOut(error)) {
    // A lock held elsewhere, or a database too busy: it was a bare 500 "Something went wrong",
    // logged as an unhandled error, though the transaction was rolled back whole. Still logged, as
    // an error: transactions running out of time again and again need someone to look at why.
    return {
      status: 503,
      message: DATABASE_TOO_BUSY_MESSAGE,
      isExpected: false,
      logSummary: 'transaction ran out of time and was rolled back',
    };
  }
  if (isStatementRefused(error)) {
    // statement_timeout, lock_timeout, a cancel or a deadlock: the database works and rolled the
    // transaction back whole, as when the transaction runs out of its own time above.
    return {
      status: 503,
      message: DATABASE_TOO_BUSY_MESSAGE,
      isExpected: false,
      logSummary: 'statement canceled by the database and rolled back',
    };
  }
  if (isOutOfResources(error)) {
    // A full disk or no memory: no bug in the page, and someone must act, so it is logged as an error.
    return {
      status: 503,
      message: DATABASE_UNAVAILABLE_MESSAGE,
      isExpected: false,
      logSummary: `database unavailable: ${DATABASE_OUT_OF_RESOURCES}`,
    };
  }
  if (isMissingTable(error)) {
    // The database answers but has none of this release's tables: restored empty (a restore that
    // failed) or new and never migrated. /readyz says so too; a 500 with a stack at every page read
    // like a bug in the page. Logged as an error at every request: someone has to migrate or restore.
    return {
      status: 503,
      message: DATABASE_UNAVAILABLE_MESSAGE,
      isExpected: false,
      logSummary: `database unavailable: ${DATABASE_HAS_NO_SCHEMA}`,
    };
  }
  if (isReadOnlyDatabase(error)) {
    // A standby (a failover that left DATABASE_URL on the old primary) or a database set
    // read-only: not a bug in the page, and /readyz says so too.
    return {
      status: 503,
      message: DATABASE_UNAVAILABLE_MESSAGE,
      isExpected: false,
      logSummary: `database unavailable: ${DATABASE_READ_ONLY}`,
    };
  }
  if (isMissingColumn(error)) {
    // A column this release reads is missing: the database is behind the code (an older dump
    // restored, an upgrade nobody migrated), as /readyz says. A 500 with a stack read like a bug.
    return {
      status: 503,
      message: DATABASE_UNAVAILABLE_MESSAGE,
      isExpected: false,
      logSummary: `database unavailable: ${DATABASE_BEHIND}`,
    };
  }
  return { status: 500, message: 'Something went wrong on our side.', isExpected: false };
}

/**
 * The one error path: an HTML page or `{error, code}` JSON (with the error's publicFields, when it
 * has any); unknown errors are logged with the request id.
 */
export function errorHandler(logger: Logger, options: ErrorHandlerOptions = {}): ErrorRequestHandler {
  return (error, req, res, next) => {
    const described = describe(error, req, options);
    const { status, message, isExpected, backLink } = described;
    // The route template, as the request's own line has it: a raw path no route took can carry
    // anything (a token, a name) into the logs.
    const route = routeTemplateOf(req, status);
    // A request the shutdown cut while it waited on a frozen database: its line says
    // "cutByShutdown":true, and the shutdown then destroys the pool's connections under its query.
    // Logged again as 'database unavailable', at error level, it had two causes in the log (and
    // paged someone over a deploy). A bug's 'unhandled error' is still logged.
    const isCutDatabaseError = status === 503 && isLoggedAsCutByShutdown(req);
    if (described.isPoolWaitTimeout) options.onPoolWaitTimedOut?.();
    if (!isExpected && !isCutDatabaseError) {
      const summary = described.logSummary ?? (status === 503 ? 'database unavailable' : 'unhandled error');
      const fields = { reqId: req.id, method: methodLabelOf(req.method), route };
      if (described.isLoggedAsWarning) logger.warn(fields, summary);
      else logger.error({ err: error, ...fields }, summary);
    } else if (isPoolClosedByShutdown(error)) {
      logger.warn(
        { reqId: req.id, method: methodLabelOf(req.method), route },
        'request failed after the shutdown closed the database pool: the server is shutting down',
      );
    }
    if (res.headersSent) {
      // A streamed response failed midway: all we can do is cut it off.
      next(error);
      return;
    }
    const body: Record<string, unknown> = {
      error: message,
      code: status,
      ...(isExpected ? {} : { requestId: req.id }),
    };
    if (error instanceof AppError) {
      for (const [name, value] of Object.entries(error.publicFields)) if (!(name in body)) body[name] = value;
    }
    res.status(status);
    const allowedMethods = described.allowedMethods ?? (error as { allowedMethods?: unknown }).allowedMethods;
    if (Array.isArray(allowedMethods)) res.set('Allow', allowedMethods.join(', '));
    const { retryAfterSec } = error as { retryAfterSec?: unknown };
    if (typeof retryAfterSec === 'number') res.set('Retry-After', String(retryAfterSec));
    else if (status === 503) res.set('Retry-After', '5');
    if (wantsHtml(req)) {
      // An error raised before the page's locals were set (a CSRF or NUL refusal) must still
      // show a signed-in user their own navigation, not "Sign in".
      res.locals.currentUser ??= req.user;
      res.locals.csrfToken ??= csrfTokenForErrorPage(req, res);
      // Refusals before the page middleware missed its no-store: the page names who is signed in.
      res.set('Cache-Control', 'no-store');
      if (backLink) res.locals.backLink = backLink;
      const shown = error instanceof AppError ? readableMessageOf(error) : message;
      // The heading names the status in words: a bare "404" said nothing to whoever does not know HTTP's codes.
      const statusText = STATUS_CODES[status] ?? 'Error';
      res.render('error', {
        // So does the title, which a screen reader announces first, starting "Error: " as every page showing
        // what went wrong does: it was "Error 404".
        title: `Error: ${statusText} (${status})`,
        status,
        statusText,
        message: shown,
        requestId: isExpected ? undefined : req.id,
      });
    } else {
      res.json(body);
    }
  };
}
