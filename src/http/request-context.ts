import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from '../shared/logger.js';

declare global {
  namespace Express {
    interface Request {
      id: string;
    }
  }
}

const SAFE_REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** A caller's X-Request-Id is echoed into logs only when it cannot forge a log line. */
export function isSafeRequestId(value: string): boolean {
  return SAFE_REQUEST_ID.test(value);
}

const ROUTE_TEMPLATE = Symbol('routeTemplate');

type TrackedRequest = Request & { [ROUTE_TEMPLATE]?: string };

/**
 * Records the route template at the moment Express picks the route. By the time the
 * response finishes, an error that left a nested router has already reset
 * `req.baseUrl` (to undefined at the top), which would turn `/me/receipts/:id`
 * into `undefined/receipts/:id`. Idempotent; the first middleware should call it.
 */
export function trackRouteTemplate(req: Request): void {
  if (Object.hasOwn(req, ROUTE_TEMPLATE)) return;
  const tracked = req as TrackedRequest;
  let route: unknown = tracked.route;
  tracked[ROUTE_TEMPLATE] = undefined;
  Object.defineProperty(req, 'route', {
    configurable: true,
    enumerable: true,
    get: () => route,
    set(value: { path?: unknown } | undefined) {
      route = value;
      const routePath = typeof value?.path === 'string' ? value.path : String(value?.path);
      tracked[ROUTE_TEMPLATE] = value ? `${req.baseUrl ?? ''}${routePath}` || '/' : undefined;
    },
  });
}

/** The methods the app answers (OPTIONS by answerOptions); logged and labelled by their own name. */
const ROUTED_METHODS = new Set(['GET', 'HEAD', 'POST', 'OPTIONS']);

/**
 * A request's method for logs and metrics: Node accepts some 34 methods (PROPFIND, MKCOL, ...),
 * and labelled by name each would be a series any client could add, so the ones no route answers
 * share `other`. The log lines say the same, so that a line and its series read against each other.
 */
export function methodLabelOf(method: string | undefined): string {
  return method !== undefined && ROUTED_METHODS.has(method) ? method : 'other';
}

/**
 * Route template for logs and metrics, never the raw path: `/me/receipts/:id`; `unmatched` for
 * a request no route took (a 404, a static file); `before_route` for one the middleware in
 * front of the routes answered with an error (a CSRF or NUL refusal, a body too large, the
 * session store unreachable), which may well have been meant for a real route.
 */
export function routeTemplateOf(req: Request, status = req.res?.statusCode ?? 200): string {
  const recorded = (req as TrackedRequest)[ROUTE_TEMPLATE];
  if (recorded !== undefined) return recorded;
  if (!req.route) {
    // `status` is how the exchange ended: 499 for a client that left, or 503 for a request a shutdown
    // cut, while a middleware still worked on it (the response's own status is still 200 then).
    return status >= 400 && status !== 404 ? 'before_route' : 'unmatched';
  }
  const routePath = typeof req.route.path === 'string' ? req.route.path : String(req.route.path);
  return `${req.baseUrl ?? ''}${routePath}` || '/';
}

/** nginx's "client closed request": the client went away before the answer was sent. */
export const CLIENT_CLOSED_REQUEST = 499;

/** Servers whose shutdown ran out of time and cut the connections left (closeGracefully). */
const serversCuttingConnections = new WeakSet<object>();

/**
 * Says that `server`'s connections still open are being cut by a shutdown: the requests on them
 * end by the server's doing, not their clients'. Call it just before cutting them.
 */
export function markConnectionsCutByShutdown(server: object): void {
  serversCuttingConnections.add(server);
}

/** Requests whose line requestContext logged as cut by a shutdown (`"cutByShutdown":true`). */
const requestsLoggedAsCut = new WeakSet<Request>();

/**
 * Whether `req`'s line was logged as cut by a shutdown: its line names the cause, and a database
 * error its handler meets afterwards (the shutdown destroying the pool's connections under it) is
 * that same shutdown, not a second cause. At LOG_LEVEL=warn too, where the shutdown's cut logs it
 * (logRequestCutByShutdown); false for a shutdown given no logger.
 */
export function isLoggedAsCutByShutdown(req: Request): boolean {
  return requestsLoggedAsCut.has(req);
}

/** Answers the app cut off itself because their client stopped reading (a stalled CSV export). */
const answersCutAsStalled = new WeakSet<object>();

/**
 * Says that the app is cutting `res` off because its client stopped reading (CSV_EXPORT_STALL_MS):
 * the exchange ends by the app's doing, with the status it had sent, not as a client that left
 * (499). Call it just before destroying the response.
 */
export function markCutAsStalled(res: object): void {
  answersCutAsStalled.add(res);
}

/** How an exchange ended: answered whole, its client gone first, cut as stalled, or cut by a shutdown. */
export type RequestEnd = 'finished' | 'client_closed' | 'cut_as_stalled' | 'cut_by_shutdown';

/**
 * Calls `done` exactly once when the exchange ends. 'finish' alone misses a request whose client
 * closed the connection first (a browser giving up on a slow receipt of many jobs): 'finish' never fires
 * for it, though its handler keeps running and changing data. 'close' does fire then, with
 * `writableFinished` false; it also fires after 'finish' on every normal request, hence the guard.
 * A request a shutdown cut (SHUTDOWN_TIMEOUT_MS ran out) is not the client's doing: its status is
 * what was sent (a download cut midway: 200), or 503 when nothing was (a body still arriving too),
 * never 499.
 */
export function onRequestEnd(
  res: Response,
  done: (status: number, clientClosed: boolean, end: RequestEnd) => void,
): void {
  // The socket is detached from the response by the time it closes.
  const server = (res.req.socket as { server?: object } | undefined)?.server;
  let ended = false;
  const end = (isUnfinished: boolean) => {
    if (ended) return;
    ended = true;
    const isCut = server !== undefined && serversCuttingConnections.has(server);
    // A body still arriving (a slow upload) when the shutdown cut its connection: the body parser
    // takes the cut for an aborted request, and the error handler's 400 'finishes' into the closed
    // socket. Not a byte of it reached the client, and the client sent nothing wrong.
    if (isCut && (isUnfinished || !res.req.complete)) done(cutStatusOf(res), false, 'cut_by_shutdown');
    else if (!isUnfinished) done(res.statusCode, false, 'finished');
    // A stalled export's client did not close anything: it was logged and counted as 499 with
    // clientClosed, which reads as answers slower than clients wait (docs/operations.md, Metrics).
    else if (answersCutAsStalled.has(res)) done(res.statusCode, false, 'cut_as_stalled');
    else done(CLIENT_CLOSED_REQUEST, true, 'client_closed');
  };
  res.once('finish', () => end(false));
  res.once('close', () => end(!res.writableFinished));
}

/**
 * When a request began, kept on it only where requestContext adds no listener (LOG_LEVEL=warn): a
 * shutdown that cuts it logs its line (logRequestCutByShutdown), and its latency with it.
 */
const STARTED_AT = Symbol('startedAt');

type TimedRequest = Request & { [STARTED_AT]?: bigint };

/**
 * Gives each request an id (a caller's X-Request-Id when it is safe) and logs one line when it
 * ends, also when its client left before the answer: status 499 and `clientClosed: true`, logged
 * as the connection closes (the handler may still be running); or when a shutdown cut it:
 * `cutByShutdown: true` (see onRequestEnd), at warn, so that it is logged at LOG_LEVEL=warn too
 * (there by the shutdown's cut itself, logRequestCutByShutdown).
 */
export function requestContext(logger: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    // A plain GET /formula its fast path handed over (hot-routes.ts: an error) keeps the id, route
    // and start it was given there (beginHotRequest).
    const hotStartedAt = (req as TimedRequest)[STARTED_AT];
    if (hotStartedAt === undefined) {
      trackRouteTemplate(req);
      const incoming = req.get('x-request-id');
      req.id = incoming && isSafeRequestId(incoming) ? incoming : randomUUID();
    }
    res.setHeader('X-Request-Id', req.id);
    const startedAt = hotStartedAt ?? process.hrtime.bigint();
    // At LOG_LEVEL=warn (a quiet production's; the default is info) no line would be written but a
    // cut one, so skip the listener (a closure and two listeners on every request); the shutdown's
    // cut, which goes through the connections it cuts anyway, logs those.
    if (!logger.isLevelEnabled('info')) {
      (req as TimedRequest)[STARTED_AT] = startedAt;
      return next();
    }
    if (hotStartedAt !== undefined) {
      // Cut by the shutdown while the fast path waited: its line is written, its connection gone.
      if (requestsLoggedAsCut.has(req)) return next();
      // From here its end is logged by the listener below, not by the shutdown's cut as well.
      delete (req as TimedRequest)[STARTED_AT];
    }
    onRequestEnd(res, (status, clientClosed, end) => logRequestLine(logger, req, startedAt, status, end, clientClosed));
    next();
  };
}

/** The request's line: at info, but for one a shutdown cut, which is at warn. */
function logRequestLine(
  logger: Logger,
  req: Request,
  startedAt: bigint,
  status: number,
  end: RequestEnd,
  clientClosed = false,
): void {
  const latencyMs = Number(process.hrtime.bigint() - startedAt) / 1e6;
  const isCut = end === 'cut_by_shutdown';
  if (isCut) requestsLoggedAsCut.add(req);
  // Method, template and status only: query strings may carry tokens.
  const fields = {
    reqId: req.id,
    method: methodLabelOf(req.method),
    route: routeTemplateOf(req, status),
    status,
    ...(clientClosed && { clientClosed: true }),
    ...(isCut && { cutByShutdown: true }),
    ...(end === 'cut_as_stalled' && { cutAsStalled: true }),
    latencyMs: Math.round(latencyMs * 100) / 100,
  };
  if (isCut) logger.warn(fields, 'request');
  else logger.info(fields, 'request');
}

/**
 * Counts a request a hot route began (beginHotRequest) in the http metrics, as httpMetrics counts
 * one of Express's: its status (503 for a cut one) and how long it took, in seconds.
 */
export type CountHotRequest = (status: number, seconds: number) => void;

/** How a request a hot route serves is counted should a shutdown cut it (beginHotRequest). */
const COUNT_IF_CUT = Symbol('countIfCut');

type HotRequest = TimedRequest & TrackedRequest & { [COUNT_IF_CUT]?: CountHotRequest };

/** Requests a hot route began that a shutdown cut while they waited: counted, logged, answered 503. */
const hotRequestsCut = new WeakSet<IncomingMessage>();

/**
 * Gives a request a hot route serves on Node's own request, before Express (hot-routes.ts), what
 * requestContext and httpMetrics would: its id, route template and start, and how to count it. A
 * shutdown that cuts it while it waits (a GET /formula on a frozen database) then logs its line as
 * cut (logRequestCutByShutdown), at every LOG_LEVEL, and counts it (countHotRequestCutByShutdown),
 * as no listener waits for its end; it had no line at all, and its query's failure, handed to
 * Express once the pool was closed, was logged as "database unavailable" at error level. Four stores
 * (`countIfCut` made once per app), and nothing more for a request no shutdown cuts.
 */
export function beginHotRequest(
  req: IncomingMessage,
  id: string,
  route: string,
  startedAt: bigint,
  countIfCut: CountHotRequest,
): void {
  const hot = req as unknown as HotRequest;
  hot.id = id;
  hot[ROUTE_TEMPLATE] = route;
  hot[STARTED_AT] = startedAt;
  hot[COUNT_IF_CUT] = countIfCut;
}

/**
 * Hands a request a hot route began over to Express (its fast path failed): from here httpMetrics
 * counts it, also when a shutdown cuts it, so the cut must not count it as well.
 */
export function handOverHotRequest(req: IncomingMessage): void {
  (req as unknown as HotRequest)[COUNT_IF_CUT] = undefined;
}

/**
 * Whether a request a hot route began (beginHotRequest) was cut by a shutdown: answered (503),
 * counted and logged as cut already, so its fast path must neither answer nor count it again.
 */
export function isHotRequestCut(req: IncomingMessage): boolean {
  return hotRequestsCut.has(req);
}

/**
 * Counts a request a hot route began, and that a shutdown is cutting (closeGracefully, as it cuts
 * it), in http_requests_total and the latency histogram as httpMetrics counts a cut request of
 * Express's: status 503, the route its template. Uncounted, a hot route's cut had a 503 in the log
 * and none in the metrics. Once; does nothing for one its hot route answered already (its answer
 * ended: counted as it was), nor for any other request (httpMetrics counts those).
 */
export function countHotRequestCutByShutdown(answer: ServerResponse): void {
  const req = answer.req as (IncomingMessage & HotRequest) | undefined;
  const count = req?.[COUNT_IF_CUT];
  if (req === undefined || count === undefined || answer.writableEnded || hotRequestsCut.has(req)) return;
  hotRequestsCut.add(req);
  const startedAt = req[STARTED_AT];
  const seconds = startedAt === undefined ? 0 : Number(process.hrtime.bigint() - startedAt) / 1e9;
  count(cutStatusOf(answer), seconds);
}

/**
 * Logs the line of a request that a shutdown is cutting (closeGracefully, as it cuts it), where
 * requestContext added no listener to log it as it ends (LOG_LEVEL=warn). Its status is the one
 * the listener would give: what was sent (a download cut midway), else 503, also for a body still
 * arriving. Does nothing for a request requestContext logs itself, or never saw.
 */
export function logRequestCutByShutdown(logger: Logger, answer: ServerResponse): void {
  const req = answer.req as TimedRequest | undefined;
  const startedAt = req?.[STARTED_AT];
  if (req === undefined || startedAt === undefined || requestsLoggedAsCut.has(req)) return;
  logRequestLine(logger, req, startedAt, cutStatusOf(answer), 'cut_by_shutdown');
}

/**
 * The status a request a shutdown cut is logged with: what was sent (a download cut midway), else
 * 503, also for a body still arriving, whatever its handler went on to answer into the closed socket.
 */
function cutStatusOf(answer: Pick<ServerResponse, 'req' | 'headersSent' | 'statusCode'>): number {
  return answer.req.complete && answer.headersSent ? answer.statusCode : 503;
}
