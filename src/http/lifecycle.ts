import type http from 'node:http';
import type { RequestListener } from 'node:http';
import { createServer } from 'node:http';
import type { HttpTimeouts } from '../config/config.js';
import { DEFAULT_HTTP_HEADERS_TIMEOUT_MS, DEFAULT_HTTP_REQUEST_TIMEOUT_MS } from '../config/config.schema.js';
import { markConnectionsCutByShutdown } from './request-context.js';

/**
 * Starts an HTTP server and resolves once it listens. A client gets `headersTimeoutMs` to send
 * its headers (from its first byte, or from connecting) and `requestTimeoutMs` for the whole
 * request with its body; then Node answers 408 and closes the connection. Neither limits the
 * answer: once the request is in, a CSV export streams for as long as its client reads.
 */
export function listen(
  handler: RequestListener,
  port: number,
  host: string,
  timeouts: HttpTimeouts = {
    headersTimeoutMs: DEFAULT_HTTP_HEADERS_TIMEOUT_MS,
    requestTimeoutMs: DEFAULT_HTTP_REQUEST_TIMEOUT_MS,
  },
): Promise<http.Server> {
  return new Promise((resolve, reject) => {
    const server = createServer(
      {
        headersTimeout: timeouts.headersTimeoutMs,
        requestTimeout: timeouts.requestTimeoutMs,
        // Node looks for expired requests this often (30 s by default, which let a request
        // overstay its limit by as much): a quarter of the headers limit, at most a second.
        connectionsCheckingInterval: Math.min(1_000, Math.max(10, Math.floor(timeouts.headersTimeoutMs / 4))),
      },
      handler,
    );
    // Behind a load balancer, idle sockets must outlive its own idle timeout. The time a
    // keep-alive connection waits for its next request does not count toward headersTimeout.
    server.keepAliveTimeout = 65_000;
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/**
 * Stops accepting connections, lets in-flight requests finish, and after `timeoutMs`
 * cuts whatever is left. Resolves true when everything finished in time.
 */
export function closeGracefully(server: http.Server, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let isDone = false;
    // A keep-alive socket whose request just finished would otherwise hold
    // close() open until the client's idle timeout; sweep idle ones until done.
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    const finish = (isClean: boolean) => {
      if (isDone) return;
      isDone = true;
      clearInterval(sweep);
      clearTimeout(timer);
      resolve(isClean);
    };
    const timer = setTimeout(() => {
      // Their requests are logged as cut by the shutdown, not as closed by their clients (499).
      markConnectionsCutByShutdown(server);
      server.closeAllConnections();
      finish(false);
    }, timeoutMs);
    timer.unref();
    server.close(() => finish(true));
    server.closeIdleConnections();
  });
}
