import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import { CookieJar } from './cookie-jar.js';
import type { RouteStats } from './route-stats.js';

export interface RequestSpec {
  /** The name results are reported under, e.g. `GET /me.csv`. */
  route: string;
  path: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  form?: Record<string, string>;
  json?: string;
  /** Keep the body text (pages the next step reads a token from); otherwise it is drained. */
  isBodyNeeded?: boolean;
  /** Which answers count as success; default any 2xx or 3xx. */
  isAccepted?: (status: number, headers: IncomingHttpHeaders) => boolean;
}

export interface ResponseInfo {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  isAccepted: boolean;
}

const isSuccessStatus = (status: number) => status >= 200 && status < 400;

/**
 * The failure message of an unexpected status. A 404 means the build lacks the route, unless its
 * JSON body gives the app's reason (`no_pricing_tiers`: the database has no rates to price with).
 */
export function describeStatus(route: string, status: number, body = ''): string {
  if (status !== 404) return `${route}: unexpected HTTP ${status}`;
  if (readReason(body) === 'no_pricing_tiers')
    return `${route}: 404: no pricing tier has rates in this database (fill it with npm run bench:data)`;
  return `${route}: 404 Not Found: the route does not exist on this build`;
}

function readReason(body: string): unknown {
  try {
    return (JSON.parse(body) as { reason?: unknown }).reason;
  } catch {
    return undefined;
  }
}

/**
 * What one browser tab does: its own cookies, requests one after another. Every
 * request is timed (until the whole body is read) and recorded per route.
 */
export class HttpSession {
  readonly jar = new CookieJar();

  constructor(
    private readonly dispatcher: Dispatcher,
    /** Read on every request: the same session records setup before the clock starts, then load. */
    private readonly statsOf: () => RouteStats,
  ) {}

  /** Sends one request; undefined after a network error (already counted as a failure). */
  async send(spec: RequestSpec): Promise<ResponseInfo | undefined> {
    const headers: Record<string, string> = {
      'user-agent': 'hpc-billing-bench',
      accept: 'text/html,application/xhtml+xml',
      // The app in production sets Secure cookies only on HTTPS; it runs behind a TLS proxy
      // and, with TRUST_PROXY=loopback, believes this header from the harness.
      'x-forwarded-proto': 'https',
      ...spec.headers,
    };
    const cookie = this.jar.header();
    if (cookie) headers.cookie = cookie;
    let body: string | undefined;
    if (spec.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(spec.form).toString();
    } else if (spec.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = spec.json;
    }
    const started = performance.now();
    try {
      const response = await this.dispatcher.request({ path: spec.path, method: spec.method ?? 'GET', headers, body });
      const isAccepted = (spec.isAccepted ?? isSuccessStatus)(response.statusCode, response.headers);
      // A refusal's body is read whatever the spec says: it may say why.
      const text = spec.isBodyNeeded || !isAccepted ? await response.body.text() : '';
      if (!spec.isBodyNeeded && isAccepted) await response.body.dump({ limit: Number.POSITIVE_INFINITY });
      this.statsOf().recordRequest(spec.route, performance.now() - started, response.statusCode);
      this.jar.storeFrom(response.headers['set-cookie']);
      if (!isAccepted) this.statsOf().recordFailure(spec.route, describeStatus(spec.route, response.statusCode, text));
      return { status: response.statusCode, headers: response.headers, body: text, isAccepted };
    } catch (error) {
      this.statsOf().recordRequest(spec.route, performance.now() - started, 'error');
      const code = (error as { code?: string }).code;
      this.statsOf().recordFailure(spec.route, `${spec.route}: network error ${code ?? (error as Error).message}`);
      return undefined;
    }
  }
}
