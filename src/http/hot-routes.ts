import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Metrics } from '../modules/metrics/metrics.js';
import type { RatesService } from '../modules/pricing/rates.service.js';
import type { Logger } from '../shared/logger.js';
import {
  beginHotRequest,
  CLIENT_CLOSED_REQUEST,
  handOverHotRequest,
  isHotRequestCut,
  isSafeRequestId,
  methodLabelOf,
} from './request-context.js';

type NodeMiddleware = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void;

/**
 * The headers a header-only middleware (helmet) sets, computed once by running it
 * against a recording response. Only valid for middlewares whose headers do not depend
 * on the request (no CSP nonce functions); a middleware that does anything else throws.
 */
export function captureStaticHeaders(middleware: NodeMiddleware): [string, string][] {
  const headers = new Map<string, string>();
  const recorder = {
    setHeader: (name: string, value: unknown) => headers.set(name, String(value)),
    removeHeader: (name: string) => headers.delete(name),
  };
  let isDone = false;
  const request = { headers: {}, method: 'GET', url: '/' } as IncomingMessage;
  middleware(request, recorder as unknown as ServerResponse, (error) => {
    if (error) throw error;
    isDone = true;
  });
  if (!isDone) throw new Error('the header middleware did not call next() synchronously');
  return [...headers];
}

/** True when If-None-Match lists the tag (or `*`); a weak form of the same tag also matches, as RFC 9110 says. */
export function isEtagMatched(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header === etag) return true;
  return header.split(',').some((candidate) => {
    const tag = candidate.trim();
    return tag === '*' || tag === etag || tag === `W/${etag}`;
  });
}

export interface HotRoutesDeps {
  /** What helmet sets on every response, from captureStaticHeaders. */
  securityHeaders: [string, string][];
  rates: Pick<RatesService, 'getFormula'>;
  metrics: Pick<Metrics, 'httpRequests' | 'httpRequestDuration'>;
  logger: Logger;
}

const HEALTHZ_BODY = Buffer.from(JSON.stringify({ status: 'ok' }));

const failuresOfFastPath = new WeakMap<IncomingMessage, unknown>();

/**
 * The error the fast path of GET /formula met before handing the request to Express, so the
 * route answers from it instead of reading the rates again; undefined for any other request.
 */
export function takeFastPathFailure(req: IncomingMessage): unknown {
  const error = failuresOfFastPath.get(req);
  failuresOfFastPath.delete(req);
  return error;
}

/**
 * GET /healthz and GET /formula (no query string) answered on Node's own request and
 * response, before Express. Load balancers and formula pollers call them thousands of
 * times a second, and Express's per-request set-up (prototype swaps, the router walk,
 * twelve helmet middlewares) capped a 2-core machine near 5,000 req/s while Node itself
 * answers ~40,000. The answers are the same as through Express: security headers,
 * X-Request-Id, the request log line and http metrics under the same route templates.
 * Anything else (other methods, a query string, an error) is left to Express: the
 * function returns false, or hands the request to `fallback` when it fails midway.
 */
export function createHotRoutes(deps: HotRoutesDeps) {
  const { securityHeaders, rates, metrics, logger } = deps;

  // Every header of an answer but its request id and ETag, as the flat [name, value, ...] list
  // writeHead takes: one call instead of a validated setHeader per header (fifteen of them).
  const securityHeaderList = securityHeaders.flat();
  const healthzHeaders = [
    ...securityHeaderList,
    'Cache-Control',
    'no-store',
    'Content-Type',
    'application/json; charset=utf-8',
    'Content-Length',
    String(HEALTHZ_BODY.length),
  ];
  const formulaHeaders = [...securityHeaderList, 'Cache-Control', 'no-cache'];

  function requestIdOf(req: IncomingMessage): string {
    const incoming = req.headers['x-request-id'];
    return typeof incoming === 'string' && isSafeRequestId(incoming) ? incoming : randomUUID();
  }

  function count(endpoint: string, status: number, seconds: number) {
    metrics.httpRequests.inc({ method: 'GET', endpoint, status: String(status) });
    metrics.httpRequestDuration.observe({ endpoint, method: 'GET' }, seconds);
  }

  /** A /formula a shutdown cut while it waited (countHotRequestCutByShutdown): 503, as Express's. */
  const countFormulaCut = (status: number, seconds: number) => count('/formula', status, seconds);

  /** `clientClosed`: the client left before the answer was written; 499 as Express's requests get. */
  function finish(
    req: IncomingMessage,
    res: ServerResponse,
    id: string,
    endpoint: string,
    startedAt: bigint,
    clientClosed = false,
  ) {
    const latencyNs = Number(process.hrtime.bigint() - startedAt);
    const status = clientClosed ? CLIENT_CLOSED_REQUEST : res.statusCode;
    count(endpoint, status, latencyNs / 1e9);
    logger.info(
      {
        reqId: id,
        method: methodLabelOf(req.method),
        route: endpoint,
        status,
        ...(clientClosed && { clientClosed: true }),
        latencyMs: Math.round(latencyNs / 1e4) / 100,
      },
      'request',
    );
  }

  function serveHealthz(req: IncomingMessage, res: ServerResponse, startedAt: bigint) {
    const id = requestIdOf(req);
    res.writeHead(200, [...healthzHeaders, 'X-Request-Id', id]);
    res.end(HEALTHZ_BODY);
    finish(req, res, id, '/healthz', startedAt);
  }

  function serveFormula(
    req: IncomingMessage,
    res: ServerResponse,
    startedAt: bigint,
    fallback: (req: IncomingMessage) => void,
  ) {
    // The only await of a hot route: a shutdown that cuts it meanwhile logs and counts it from these.
    const id = requestIdOf(req);
    beginHotRequest(req, id, '/formula', startedAt, countFormulaCut);
    rates.getFormula(undefined).then(
      (formula) => {
        // Cut by a shutdown meanwhile: answered (503), counted and logged as cut already.
        if (isHotRequestCut(req)) return;
        // Its client may have closed the connection meanwhile.
        const clientClosed = req.socket.destroyed;
        const headers = [...formulaHeaders, 'ETag', formula.etag, 'X-Request-Id', id];
        if (isEtagMatched(req.headers['if-none-match'], formula.etag)) {
          res.writeHead(304, headers);
          res.end();
        } else {
          headers.push('Content-Type', 'application/json; charset=utf-8');
          headers.push('Content-Length', String(Buffer.byteLength(formula.body)));
          res.writeHead(200, headers);
          res.end(formula.body);
        }
        finish(req, res, id, '/formula', startedAt, clientClosed);
      },
      // No rates yet, the database is down...: Express answers with its error page or JSON,
      // from this error; asking again would make a silent database cost its timeout twice.
      (error: unknown) => {
        // Counted by Express's httpMetrics from here, a cut included (unless cut already).
        handOverHotRequest(req);
        failuresOfFastPath.set(req, error);
        fallback(req);
      },
    );
  }

  /** Serves the request when it is a hot route and returns true; false leaves it to Express. */
  return function serveHotRoute(
    req: IncomingMessage,
    res: ServerResponse,
    fallback: (req: IncomingMessage) => void,
  ): boolean {
    if (req.method !== 'GET') return false;
    if (req.url === '/healthz') {
      serveHealthz(req, res, process.hrtime.bigint());
      return true;
    }
    if (req.url === '/formula') {
      serveFormula(req, res, process.hrtime.bigint(), fallback);
      return true;
    }
    return false;
  };
}
