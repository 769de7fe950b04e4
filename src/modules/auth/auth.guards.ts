import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Database } from '../../db/database.js';
import { auditContextOf } from '../../http/audit-context.js';
import { downloadPageOf } from '../../http/download-page.js';
import { acceptsHtml, prefersJson } from '../../http/error-handler.js';
import { servedPagePathOf } from '../../http/method-not-allowed.js';
import { referringPageOf } from '../../http/referring-page.js';
import {
  ACCOUNT_DISABLED_MESSAGE,
  AccountDisabledError,
  ForbiddenError,
  PASSWORD_SIGN_OUTS,
  passwordSignOutOf,
  UnauthorizedError,
} from '../../shared/errors.js';
import { FirstRefusals } from '../audit/first-refusals.js';
import type { Metrics } from '../metrics/metrics.js';
import { describeAdminRefusal, recordAdminPageRefusal, toSafeNextPath } from './auth.service.js';

export interface Guards {
  /** Signed-in users only; visitors go to /login?next=... (API clients get 401). */
  requireUser: RequestHandler;
  /** Admins only; other users are sent to /me, counted and audited (API clients get 403). */
  requireAdmin: RequestHandler;
}

/**
 * A browser's visit to a page: a GET, or its HEAD (a link checker, `curl -I`), which is answered as
 * its GET is. A HEAD was taken for a script's request: 401 or 403 where its GET is sent on with 302.
 * A client that takes no HTML (`Accept: text/csv`) is no visit: sent on to the sign-in page, a script
 * saved that page, with a 200, as its usage file.
 */
function isPageVisit(req: Request): boolean {
  return (req.method === 'GET' || req.method === 'HEAD') && !prefersJson(req) && acceptsHtml(req);
}

function sendToLogin(req: Request, res: Response, next: NextFunction) {
  const isDisabled = req.session?.isAccountDisabled === true;
  const passwordSignOut = passwordSignOutOf(req.session);
  if (!isPageVisit(req)) {
    if (isDisabled) return next(new AccountDisabledError());
    // A script never opens the sign-in page the flash waits on: its 401 says why, until it signs in.
    return next(new UnauthorizedError(passwordSignOut ? PASSWORD_SIGN_OUTS[passwordSignOut].notice : undefined));
  }
  // Said again on every page that needs a user: the first message may have gone to another page. Not
  // for a HEAD, which loads no page: the flash would show on the next page, which it is not about.
  if (req.method !== 'HEAD') {
    if (isDisabled) req.session.flash = { type: 'error', message: ACCOUNT_DISABLED_MESSAGE };
    else if (passwordSignOut)
      req.session.flash = { type: 'warning', message: PASSWORD_SIGN_OUTS[passwordSignOut].notice };
  }
  // A CSV download comes back to the page its link was on, or without a Referer (a bookmark, an
  // e-mail) to the page that offers it: sent on to the CSV itself, a browser signed in again
  // downloaded it and stayed on the sign-in form.
  const isDownload = req.path.endsWith('.csv');
  const pageOfDownload = isDownload ? (referringPageOf(req) ?? toSafeNextPath(downloadPageOf(req))) : undefined;
  const nextPath = pageOfDownload ?? toSafeNextPath(req.originalUrl);
  res.redirect(302, nextPath ? `/login?next=${encodeURIComponent(nextPath)}` : '/login');
}

/** Reads: their refusal does not add "so nothing was changed", which a read never does. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** "The page /admin/receipts/7" when a page is at the address asked for, else "The page you opened". */
function pageNameOf(req: Request): string {
  const path = servedPagePathOf(req, req.originalUrl);
  return path ? `The page ${path}` : 'The page you opened';
}

/**
 * The admin page a request was refused: its route (`/admin/receipts/:id`), so that walking the ids
 * is one page, by method (a form posted is another attempt than reading the page).
 */
function pageKeyOf(req: Request, userId: number): string {
  const route: unknown = req.route?.path;
  return `user ${userId} ${req.method} ${typeof route === 'string' ? route : req.path}`;
}

/** The guards routes put before their handlers: signed-in users only, admins only. */
export function createGuards(deps: {
  db: Database;
  metrics: Metrics;
  /** APP_TZ: when a demoted admin lost the role, as the refusal says it. */
  timeZone: string;
  now?: () => Date;
  /** The refusals audited as admin.forbidden; default: a new record for these guards. */
  forbiddenRefusals?: FirstRefusals;
}): Guards {
  const now = deps.now ?? (() => new Date());
  const forbiddenRefusals = deps.forbiddenRefusals ?? new FirstRefusals();
  return {
    requireUser: (req, res, next) => (req.user ? next() : sendToLogin(req, res, next)),
    requireAdmin: async (req, res, next) => {
      if (!req.user) return sendToLogin(req, res, next);
      if (req.user.role === 'admin') return next();
      // Every refusal is counted; only the first at each page in an hour is audited (recordAdminPageRefusal).
      deps.metrics.authForbiddenRedirect.inc();
      await recordAdminPageRefusal(
        { db: deps.db, refusals: forbiddenRefusals },
        { pageKey: pageKeyOf(req, req.user.id), path: req.path, method: req.method, context: auditContextOf(req) },
        now(),
      );
      const isVisit = isPageVisit(req);
      // A HEAD gets the redirect alone: it loads no page, and My usage would warn of a page never opened.
      if (isVisit && req.method === 'HEAD') return res.redirect(302, '/me');
      const refusal = await describeAdminRefusal(
        deps.db,
        req.user,
        !SAFE_METHODS.has(req.method),
        deps.timeZone,
        req.session?.signedInAsAdminAt,
      );
      if (!isVisit) return next(new ForbiddenError(refusal.message));
      // Sent on without a word, a researcher who followed a link to an admin page (from the billing
      // office, a bookmark, a sign-in's `next`) took My usage for the page the link was to.
      req.session.flash = {
        type: 'warning',
        // Named only when a page is there: /admin/receipts/<any text> reaches this guard too.
        message: `${pageNameOf(req)} is for administrators only, and ${refusal.flashAnswer}: here is My usage instead.`,
      };
      res.redirect(302, '/me');
    },
  };
}
