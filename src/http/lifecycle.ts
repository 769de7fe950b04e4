import type http from 'node:http';
import type { RequestListener } from 'node:http';
import { createServer } from 'node:http';

/** Starts an HTTP server and resolves once it listens. */
export function listen(handler: RequestListener, port: number, host: string): Promise<http.Server> {
  return new Promise((resolve, reject) => {
    const server = createServer(handler);
    // Behind a load balancer, idle sockets must outlive its own idle timeout.
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
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
    const timer = setTimeout(() => {
      if (isDone) return;
      isDone = true;
      server.closeAllConnections();
      resolve(false);
    }, timeoutMs);
    timer.unref();
    server.close(() => {
      if (isDone) return;
      isDone = true;
      clearTimeout(timer);
      resolve(true);
    });
    server.closeIdleConnections();
  });
}
