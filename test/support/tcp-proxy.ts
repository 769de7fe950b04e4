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
  /**
   * Ends the server's side of each connection whose proxy-to-server socket has one of `serverSidePorts`
   * as its local port (PostgreSQL's pg_stat_activity.client_port), and keeps the client's side open and
   * silent: a connection the server has ended (a restart, a failover) that its client has not seen end.
   * The client learns it only by using it: the proxy then closes its side, as a write to a dead
   * connection meets a reset. How many it ended so.
   */
  endUnseen(serverSidePorts: Iterable<number>): number;
  /** Connections clients opened through the proxy so far, refused ones included. */
  readonly connectionCount: number;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  /** Its server's side ended (endUnseen): whatever the client sends next closes the client's side. */
  isEndedUnseen: boolean;
  forget(): void;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let isCut = false;
  let isFrozen = false;
  // Forwarding by hand instead of pipe(): pipe resumes its source on every drain, which
  // would undo a freeze. A paused socket is not read, so bytes (and an end) wait in it.
  const forward = (pair: Pair, from: net.Socket, to: net.Socket) => {
    from.on('data', (chunk) => {
      if (pair.isEndedUnseen) {
        pair.forget();
        return;
      }
      if (!to.write(chunk)) from.pause();
    });
    to.on('drain', () => {
      if (!isFrozen) from.resume();
    });
    from.on('end', () => {
      if (pair.isEndedUnseen) pair.forget();
      else to.end();
    });
  };
  let connectionCount = 0;
  const server = net.createServer((client) => {
    connectionCount += 1;
    if (isCut) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    const pair: Pair = {
      client,
      upstream,
      isEndedUnseen: false,
      forget() {
        pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      },
    };
    pairs.add(pair);
    const forget = () => pair.forget();
    client.on('error', forget).on('close', forget);
    // The server's side ended unseen closes only itself: the client's stays open until it is used.
    const upstreamGone = () => {
      if (!pair.isEndedUnseen) pair.forget();
    };
    upstream.on('error', upstreamGone).on('close', upstreamGone);
    forward(pair, client, upstream);
    forward(pair, upstream, client);
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
      for (const pair of [...pairs]) pair.forget();
    },
    restore() {
      isCut = false;
    },
    freeze() {
      isFrozen = true;
      for (const pair of pairs) {
        pair.client.pause();
        pair.upstream.pause();
      }
    },
    thaw() {
      isFrozen = false;
      for (const pair of pairs) {
        pair.client.resume();
        pair.upstream.resume();
      }
    },
    endUnseen(serverSidePorts) {
      const ports = new Set(serverSidePorts);
      let ended = 0;
      for (const pair of pairs) {
        if (pair.upstream.localPort === undefined || !ports.has(pair.upstream.localPort)) continue;
        pair.isEndedUnseen = true;
        pair.upstream.destroy();
        // Read, so that what the client sends next is seen (and closes it) even after a freeze.
        pair.client.resume();
        ended += 1;
      }
      return ended;
    },
    close: () =>
      new Promise((resolve) => {
        for (const pair of [...pairs]) pair.forget();
        server.close(() => resolve());
      }),
  };
}
