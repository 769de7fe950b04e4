import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import pg from 'pg';
import { DatabaseTimeoutError } from '../shared/errors.js';

/*
 * A PostgreSQL that stops answering while its TCP connection stays open (a frozen host, a
 * SIGSTOPped server, a network that drops packets) never fails a query by itself: the
 * request waits forever and keeps its pooled connection, and once the pool is used up
 * every page hangs. pg's own `query_timeout` is no answer: it leaves the connection
 * mid-query (a transaction's ROLLBACK then queues behind the lost answer), and a COPY
 * stream never calls the query callback that clears its timer, so the timer fires after
 * the export has finished. Here a query without an answer in time destroys its connection
 * (every query on it fails, the pool drops it).
 */

type QueryCallback = (error: Error | null | undefined, result?: unknown) => void;
type QueryConfigWithTimeout = { submit?: unknown; callback?: unknown };

const baseQuery = pg.Client.prototype.query as unknown as (
  this: pg.Client,
  config: unknown,
  values?: unknown,
  callback?: unknown,
) => unknown;

const baseEnd = pg.Client.prototype.end as unknown as (this: pg.Client, callback?: unknown) => unknown;

function destroyUnanswered(client: pg.Client, timeoutMs: number) {
  // pg fails every query of the connection with this error and marks it unusable; the pool
  // then drops it instead of handing it out again. PostgreSQL rolls back an open transaction
  // when it notices the connection is gone.
  client.connection.stream.destroy(new DatabaseTimeoutError(timeoutMs));
}

/**
 * A pg Client class whose queries fail with DatabaseTimeoutError when PostgreSQL sends no
 * answer within `timeoutMs`, destroying the connection. One timer per query is all it adds.
 * Streaming queries (submittables: a COPY) are paced by their reader, so they get no timer here.
 */
export function clientWithQueryTimeout(timeoutMs: number): typeof pg.Client {
  class ClientWithQueryTimeout extends pg.Client {
    constructor(config?: string | pg.ClientConfig) {
      super(config);
      // A lost connection fails its queries, which tell their callers. pg also emits the error
      // on the client, and a checked-out client has no listener of the pool's: without this,
      // a connection destroyed under an export or a transaction would crash the process.
      this.on('error', () => undefined);
    }
  }
  function timedQuery(this: pg.Client, config: unknown, values?: unknown, callback?: unknown): unknown {
    const options = (typeof config === 'object' && config !== null ? config : {}) as QueryConfigWithTimeout;
    if (typeof options.submit === 'function') return baseQuery.call(this, config, values, callback);
    const timer = setTimeout(destroyUnanswered, timeoutMs, this, timeoutMs);
    const settle = () => clearTimeout(timer);
    const settling =
      (done: QueryCallback): QueryCallback =>
      (error, result) => {
        clearTimeout(timer);
        done(error, result);
      };
    try {
      if (typeof values === 'function') return baseQuery.call(this, config, settling(values as QueryCallback));
      if (typeof callback === 'function') {
        return baseQuery.call(this, config, values, settling(callback as QueryCallback));
      }
      if (typeof options.callback === 'function') {
        const withCallback = { ...options, callback: settling(options.callback as QueryCallback) };
        return baseQuery.call(this, withCallback, values);
      }
      const result = baseQuery.call(this, config, values) as Promise<unknown>;
      result.then(settle, settle);
      return result;
    } catch (error) {
      // pg refused the arguments before queueing anything.
      settle();
      throw error;
    }
  }
  function boundedEnd(this: pg.Client, callback?: unknown): unknown {
    // An idle connection is ended politely (Terminate, then wait for the server to close it),
    // which a silent server never does: the half-open socket kept pool.end(), and so a
    // graceful shutdown, waiting until the database came back. Give the goodbye the same limit.
    // (A socket never connected, or already gone, has no goodbye to wait for.)
    const socket = this.connection.stream as Partial<Socket> & Duplex;
    if (!socket.destroyed && socket.pending === false) {
      const timer = setTimeout(() => socket.destroy(), timeoutMs);
      socket.once('close', () => clearTimeout(timer));
    }
    return baseEnd.call(this, callback);
  }
  ClientWithQueryTimeout.prototype.query = timedQuery as pg.Client['query'];
  ClientWithQueryTimeout.prototype.end = boundedEnd as pg.Client['end'];
  return ClientWithQueryTimeout;
}
