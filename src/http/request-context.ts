import { randomUUID } from 'node:crypto';
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

/** Route template for logs and metrics, never the raw path: `/me/receipts/:id`, or `unmatched`. */
export function routeTemplateOf(req: Request): string {
  if (!req.route) return 'unmatched';
  const routePath = typeof req.route.path === 'string' ? req.route.path : String(req.route.path);
  return `${req.baseUrl}${routePath}` || '/';
}

/** Gives each request an id (a caller's X-Request-Id when it is safe) and logs one line when it ends. */
export function requestContext(logger: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    const incoming = req.get('x-request-id');
    req.id = incoming && SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.setHeader('X-Request-Id', req.id);
    const startedAt = process.hrtime.bigint();
    res.on('finish', () => {
      const latencyMs = Number(process.hrtime.bigint() - startedAt) / 1e6;
      // Method, template and status only: query strings may carry tokens.
      logger.info(
        {
          reqId: req.id,
          method: req.method,
          route: routeTemplateOf(req),
          status: res.statusCode,
          latencyMs: Math.round(latencyMs * 100) / 100,
        },
        'request',
      );
    });
    next();
  };
}
