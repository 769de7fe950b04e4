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
      server.closeAllConnections();
      finish(false);
    }, timeoutMs);
    timer.unref();
    server.close(() => finish(true));
    server.closeIdleConnections();
  });
}
