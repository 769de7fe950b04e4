import net from 'node:net';

/** A loopback TCP proxy a test can cut and restore, to make a real server vanish and return. */
export interface TcpProxy {
  port: number;
  /** Drops every open connection and refuses new ones. */
  cut(): void;
  restore(): void;
  /**
   * Stops forwarding bytes both ways and keeps every socket open, as a frozen host or a
   * SIGSTOPped server does: the client's writes succeed and no answer ever comes. A
   * connection opened meanwhile is accepted and frozen too.
   */
  freeze(): void;
  /** Forwards again, starting with whatever was held back while frozen. */
  thaw(): void;
  /** Connections clients opened through the proxy so far, refused ones included. */
  readonly connectionCount: number;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let isCut = false;
  let isFrozen = false;
  // Forwarding by hand instead of pipe(): pipe resumes its source on every drain, which
  // would undo a freeze. A paused socket is not read, so bytes (and an end) wait in it.
  const forward = (from: net.Socket, to: net.Socket) => {
    from.on('data', (chunk) => {
      if (!to.write(chunk)) from.pause();
    });
    to.on('drain', () => {
      if (!isFrozen) from.resume();
    });
    from.on('end', () => to.end());
  };
  let connectionCount = 0;
  const server = net.createServer((client) => {
    connectionCount += 1;
    if (isCut) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    sockets.add(client);
    sockets.add(upstream);
    const forget = () => {
      sockets.delete(client);
      sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', forget).on('close', forget);
    upstream.on('error', forget).on('close', forget);
    forward(client, upstream);
    forward(upstream, client);
    if (isFrozen) {
      client.pause();
      upstream.pause();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as net.AddressInfo;
  return {
    port: address.port,
    get connectionCount() {
      return connectionCount;
    },
    cut() {
      isCut = true;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    restore() {
      isCut = false;
    },
    freeze() {
      isFrozen = true;
      for (const socket of sockets) socket.pause();
    },
    thaw() {
      isFrozen = false;
      for (const socket of sockets) socket.resume();
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
