import type { Socket } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
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
 * (every query on it fails, the pool drops it), and a COPY is bounded by its silences, not
 * its length.
 */

const QUERY_TIMEOUT_MS = Symbol('queryTimeoutMs');

type QueryCallback = (error: Error | null | undefined, result?: unknown) => void;
type QueryConfigWithTimeout = { [QUERY_TIMEOUT_MS]?: number; submit?: unknown; callback?: unknown };

/** `config` with a time limit of its own instead of the pool's (the readiness check's, shorter). */
export function withQueryTimeout<T extends pg.QueryConfig>(config: T, timeoutMs: number): T {
  return { ...config, [QUERY_TIMEOUT_MS]: timeoutMs };
}

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
 * answer within `timeoutMs` (or the query's own limit, withQueryTimeout), destroying the
 * connection. One timer per query is all it adds. Streaming queries (submittables: a COPY)
 * are paced by their reader, so they get no timer here: read them with readWithinTimeout.
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
    const limitMs = options[QUERY_TIMEOUT_MS] ?? timeoutMs;
    const timer = setTimeout(destroyUnanswered, limitMs, this, limitMs);
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

/**
 * The chunks of a streaming query (a COPY ... TO STDOUT) as they arrive; when PostgreSQL
 * sends nothing for `timeoutMs` while the reader waits for the next chunk, the stream is
 * destroyed with DatabaseTimeoutError (the caller must then discard its connection). Time
 * the reader spends elsewhere (writing to a slow client) does not count, so an export that
 * keeps arriving is never cut, however long it takes. One timer per stream, refreshed per chunk.
 */
export async function* readWithinTimeout<T>(stream: Readable, timeoutMs: number): AsyncGenerator<T> {
  let isWaiting = true;
  const timer = setTimeout(() => {
    if (isWaiting) stream.destroy(new DatabaseTimeoutError(timeoutMs));
  }, timeoutMs);
  try {
    for await (const chunk of stream) {
      isWaiting = false;
      yield chunk as T;
      isWaiting = true;
      timer.refresh();
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs one query on the pool and gives up after `timeoutMs`, waiting for a connection included.
 * The query gets the same limit, so when it is given up its connection is destroyed rather than
 * held for the pool's longer query timeout: probes and scrapes of a silent database must not
 * take the pool from the pages.
 */
export async function queryWithin<R extends pg.QueryResultRow>(
  pool: pg.Pool,
  config: pg.QueryConfig,
  timeoutMs: number,
): Promise<pg.QueryResult<R>> {
  return answerWithin(pool.query<R>(withQueryTimeout(config, timeoutMs)), timeoutMs);
}

/**
 * queryWithin for a read that probes and scrapes repeat (readiness): while one is in flight on a
 * pool, a check waits for its answer instead of asking again, each within its own `timeoutMs`. On a
 * frozen database each probe gave up after its time while its connection attempt went on for
 * DB_CONNECT_TIMEOUT_MS: 40 probes in a second held all 10 connections with 27 requests queued behind
 * them. Shared, probes and scrapes hold at most one connection, or one place in the pool's queue.
 * A read asked with another `key` (other expected migrations) is not the same read: it starts anew.
 */
export function sharedReadWithin<R extends pg.QueryResultRow>() {
  // The read in flight on each pool, until the pool settles it (answered, failed, or its connection
  // attempt timed out), whoever has stopped waiting for it.
  const readsInFlight = new WeakMap<pg.Pool, { key: unknown; reading: Promise<pg.QueryResult<R>> }>();
  return (pool: pg.Pool, timeoutMs: number, query: () => pg.QueryConfig, key?: unknown) => {
    let read = readsInFlight.get(pool);
    if (read === undefined || read.key !== key) {
      const started = { key, reading: pool.query<R>(withQueryTimeout(query(), timeoutMs)) };
      const forget = () => {
        if (readsInFlight.get(pool) === started) readsInFlight.delete(pool);
      };
      // Its failure is each waiter's to handle; the last waiter may have given up before it settles.
      started.reading.then(forget, forget);
      readsInFlight.set(pool, started);
      read = started;
    }
    return answerWithin(read.reading, timeoutMs);
  };
}

/**
 * `work`'s answer, or a failure ("did not answer within …") once `timeoutMs` pass. Giving up does
 * not stop `work`: a connection attempt it started goes on until the pool's connect timeout.
 */
export async function answerWithin<T>(work: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
