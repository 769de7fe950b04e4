import { createHash, timingSafeEqual } from 'node:crypto';
import { Router } from 'express';
import { ForbiddenError, UnauthorizedError } from '../../shared/errors.js';

/** The Prometheus text exposition format, whatever the registry itself announces. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface MetricsRoutesOptions {
  /** The exposition text: this process's registry, or the sum over cluster workers. */
  scrape: () => Promise<string>;
  /** When set, scrapes must send `Authorization: Bearer <token>`. */
  token: string | undefined;
}

// Hashing first gives both sides the same length, so the comparison time says
// nothing about the token's length or its first differing byte.
function isSameSecret(given: string, expected: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

function bearerTokenOf(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

/** The headers a reverse proxy adds to what it relays (nginx as docs/operations.md sets it up, Caddy, Traefik, ingresses). */
const PROXY_HEADERS = ['x-forwarded-for', 'forwarded', 'x-forwarded-proto', 'x-real-ip'];

export const METRICS_THROUGH_PROXY =
  'GET /metrics without METRICS_TOKEN answers only scrapes that reach the app directly: this one came through a proxy ' +
  '(it carries X-Forwarded-For or the like), so it may be anyone on the network the proxy serves. Scrape the app ' +
  'itself, or set METRICS_TOKEN and give Prometheus the same (docs/operations.md, "Metrics").';

/**
 * `GET /metrics` for Prometheus; mount it only when METRICS_ENABLED is on.
 *
 * Without a token it refuses requests a proxy relayed: the production set-up docs/operations.md
 * describes (HOST=127.0.0.1 behind nginx's `location /`) kept the port off the network, as the
 * start-up warning asks, and still served every visitor of the site its metrics through the proxy.
 */
export function metricsRoutes({ scrape, token }: MetricsRoutesOptions): Router {
  const router = Router();
  router.get('/metrics', async (req, res) => {
    if (token !== undefined) {
      const given = bearerTokenOf(req.get('authorization'));
      if (given === undefined || !isSameSecret(given, token)) {
        res.set('WWW-Authenticate', 'Bearer realm="metrics"');
        throw new UnauthorizedError('A valid metrics token is required.');
      }
    } else if (PROXY_HEADERS.some((header) => req.get(header) !== undefined)) {
      throw new ForbiddenError(METRICS_THROUGH_PROXY);
    }
    const text = await scrape();
    res.set('Content-Type', METRICS_CONTENT_TYPE).set('Cache-Control', 'no-store').send(text);
  });
  return router;
}
