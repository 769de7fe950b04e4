import type { NextFunction, Request, Response } from 'express';
import { type AppError, BadRequestError, MethodNotAllowedError, NotFoundError } from '../shared/errors.js';

/** The parts of Express 5's router (the `router` package) that routeMissOf reads. */
interface RouterLayer {
  match(path: string): { path: string; params?: Record<string, unknown> } | false;
  route?: { _methods(includeAll?: boolean): string[] };
  handle?: { stack?: RouterLayer[] };
}

/**
 * The refusal for a request no route answers: 405 (with the methods that address answers) when
 * routes are at its path, 404 when none is; undefined when a route answers its method there.
 * Read from the app's own routes, so it cannot fall out of step with them. The CSRF check asks it
 * only to word its refusal: the request is refused either way, before any route runs.
 */
export function routeMissOf(req: Request): AppError | undefined {
  const stack = (req.app as unknown as { router?: { stack?: RouterLayer[] } }).router?.stack ?? [];
  const methods = new Set<string>();
  collectMethods(stack, req.path, methods);
  if (methods.has('*') || methods.has(req.method) || (req.method === 'OPTIONS' && methods.size > 0)) return undefined;
  if (methods.size === 0) return new NotFoundError('Page not found.');
  const takes = WEBHOOK_ADDRESS.test(req.path) ? 'the signed webhooks a payment provider posts' : undefined;
  return new MethodNotAllowedError(req.path, req.method, [...methods].sort(byUsualOrder), takes);
}

/**
 * The addresses payment providers post their webhooks to (payments.routes.ts). Opened in a browser (a
 * provider's engineer checking the endpoint), one was said to take "a form sent from a page".
 */
const WEBHOOK_ADDRESS = /^\/payments\/webhook(?:\/[^/]+)?\/?$/;

/**
 * OPTIONS, answered from every route of the app at that address. Express's router answers it by
 * itself, but from the first router that has the address alone: OPTIONS /formula said `GET, HEAD`
 * (the public formula's router) where a PUT there is refused with `Allow: GET, HEAD, POST` (the
 * admins' rate change is another router's). Mounted before the routers; an address nothing is at
 * goes on to the 404.
 */
export function answerOptions(req: Request, res: Response, next: NextFunction): void {
  if (req.url === '*') {
    answerAsterisk(req, res, next);
    return;
  }
  if (req.method !== 'OPTIONS') {
    next();
    return;
  }
  const stack = (req.app as unknown as { router?: { stack?: RouterLayer[] } }).router?.stack ?? [];
  const methods = new Set<string>();
  collectMethods(stack, req.path, methods);
  // A route for every method answers OPTIONS itself; nothing at the address is the 404's.
  if (methods.size === 0 || methods.has('*')) {
    next();
    return;
  }
  res
    .set('Allow', [...methods].sort(byUsualOrder).join(', '))
    .status(204)
    .end();
}

/**
 * The request target `*` (`OPTIONS * HTTP/1.1`, RFC 9110 9.3.7): the server as a whole, which some
 * load balancers and scanners send as a ping. OPTIONS is answered with every method a route of the
 * app answers; any other method is a 400, since it needs a path. Both before the sessions, which
 * leave a target that is not a path alone: it went on to passport, which threw, a 500 logged as an
 * unhandled error with its stack.
 */
function answerAsterisk(req: Request, res: Response, next: NextFunction): void {
  if (req.method !== 'OPTIONS') {
    next(
      new BadRequestError(
        `The request target * (the server as a whole) is for OPTIONS only; ${req.method} needs a path, such as /.`,
      ),
    );
    return;
  }
  const stack = (req.app as unknown as { router?: { stack?: RouterLayer[] } }).router?.stack ?? [];
  const methods = new Set<string>();
  collectAllMethods(stack, methods);
  methods.delete('*');
  methods.delete('OPTIONS');
  res
    .set('Allow', [...[...methods].sort(byUsualOrder), 'OPTIONS'].join(', '))
    .status(204)
    .end();
}

/** The order an address's methods are listed in (Allow, a 405's sentence), whatever order its routes were registered in. */
const USUAL_ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];
function byUsualOrder(a: string, b: string): number {
  const rank = (method: string) => (USUAL_ORDER.includes(method) ? USUAL_ORDER.indexOf(method) : USUAL_ORDER.length);
  return rank(a) - rank(b) || a.localeCompare(b);
}

/** Every method any route of `stack` answers, at any address. */
function collectAllMethods(stack: readonly RouterLayer[], into: Set<string>): void {
  for (const layer of stack) {
    if (layer.route) {
      for (const method of layer.route._methods(true)) into.add(method);
    } else if (Array.isArray(layer.handle?.stack)) {
      collectAllMethods(layer.handle.stack, into);
    }
  }
}

/**
 * The closest page above a form's address (/me for /me/receipt, /admin/receipts/12 for
 * /admin/receipts/12/paid): the first shorter path, segment by segment, that a route answers GET at.
 * Undefined when only the start page is above it.
 */
export function nearestPageOf(req: Request): string | undefined {
  const stack = (req.app as unknown as { router?: { stack?: RouterLayer[] } }).router?.stack ?? [];
  const segments = req.path.split('/').filter(Boolean);
  for (let length = segments.length - 1; length > 0; length--) {
    const candidate = `/${segments.slice(0, length).join('/')}`;
    const methods = new Set<string>();
    collectMethods(stack, candidate, methods);
    if (methods.has('GET')) return candidate;
  }
  return undefined;
}

function collectMethods(stack: readonly RouterLayer[], path: string, into: Set<string>): void {
  for (const layer of stack) {
    const match = layer.match(path);
    if (!match) continue;
    if (layer.route) {
      for (const method of layer.route._methods(true)) into.add(method);
    } else if (Array.isArray(layer.handle?.stack)) {
      collectMethods(layer.handle.stack, path.slice(match.path.length) || '/', into);
    }
  }
}

/** An id as the pages' addresses take one (/me/receipts/3): digits, at most a bigint's 19. */
const PAGE_ID = /^\d{1,19}$/;

/**
 * The path of `url` (no query) when a page of the app is there: a route answers GET at it and each
 * of its parameters is an id. Undefined otherwise. For sentences that name a page from an address
 * anyone can write in a link (/login?next=..., an admin page a researcher opened): they printed up to
 * 80 characters of the sender's own text ("/Your-account-is-locked.-Call-...") in the site's words.
 */
export function servedPagePathOf(req: Request, url: string): string | undefined {
  let path: string;
  try {
    path = new URL(url, 'http://local.invalid').pathname;
  } catch {
    return undefined;
  }
  const stack = (req.app as unknown as { router?: { stack?: RouterLayer[] } }).router?.stack ?? [];
  return servesPage(stack, path) ? path : undefined;
}

function servesPage(stack: readonly RouterLayer[], path: string): boolean {
  for (const layer of stack) {
    const match = layer.match(path);
    if (!match) continue;
    const params = Object.values(match.params ?? {});
    if (layer.route) {
      if (layer.route._methods(true).includes('GET') && params.every((value) => PAGE_ID.test(String(value)))) {
        return true;
      }
    } else if (Array.isArray(layer.handle?.stack)) {
      if (servesPage(layer.handle.stack, path.slice(match.path.length) || '/')) return true;
    }
  }
  return false;
}
