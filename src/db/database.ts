import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '@prisma/client';
import pg from 'pg';
import { DEFAULT_DB_CONNECT_TIMEOUT_MS } from '../config/config.schema.js';
import type { Logger } from '../shared/logger.js';
import { settlesWithin } from '../shared/settles-within.js';
import { clientWithQueryTimeout } from './query-timeout.js';

export type Db = PrismaClient;

/** The pool (sessions, readiness, bulk COPY) and Prisma on top of it share one set of connections. */
export interface Database {
  pool: pg.Pool;
  prisma: PrismaClient;
  /** How long a query may go without an answer before it fails and its connection is destroyed. */
  queryTimeoutMs: number;
  /**
   * Says the process is stopping: from now on PostgreSQL ending a connection is expected (a
   * database shutting down at the same moment, such as a compose stack stopped together) and
   * is not logged as a warning. Idle connections lost before it, in a burst whose one warning
   * waits for its window to pass, are warned about at once.
   */
  markStopping(): void;
  /**
   * Closes every connection checked out of the pool now (a transaction, a session lock), for a
   * shutdown that has stopped waiting for the work on them: PostgreSQL rolls back a transaction
   * whose connection ends, so none is left half-applied. How many were closed.
   */
  closeConnectionsInUse(): number;
  /**
   * Ends every connection. With `graceMs`, a database that has not let them end by then (a silent
   * one: a query in flight waits out DB_QUERY_TIMEOUT_MS, an idle connection's goodbye as long)
   * has every connection still open destroyed, which is logged: a shutdown must not outlast the
   * orchestrator's grace period waiting for a database that does not answer.
   */
  close(options?: { graceMs?: number }): Promise<void>;
}

/**
 * How long after an idle connection is lost the others lost are counted into its one warning: a
 * database restart ends every connection of the pool at once, which was one warning each.
 */
const LOST_CONNECTIONS_WINDOW_MS = 2_000;

/** How long close() waits for the connections it destroyed to be dropped before it returns anyway. */
const DESTROYED_DROP_WAIT_MS = 1_000;

type ConnectCallback = Parameters<pg.Pool['connect']>[0];

/**
 * Gives a checked-out connection back to the pool as soon as it is lost (a query timeout
 * destroyed it, the server ended it), and makes its holder's own release a no-op. Prisma's
 * transactions release their connection only after a successful ROLLBACK, which a lost
 * connection cannot run: the pool counted it forever, and after DB_POOL_MAX such losses it
 * had nothing left to hand out.
 */
function releaseWhenLost(client: pg.PoolClient, inUse: Set<pg.PoolClient>): pg.PoolClient {
  const release = client.release;
  let isReleased = false;
  inUse.add(client);
  const onLost = () => {
    isReleased = true;
    inUse.delete(client);
    release(true);
  };
  client.once('end', onLost);
  client.release = (error) => {
    if (isReleased) return;
    isReleased = true;
    inUse.delete(client);
    client.removeListener('end', onLost);
    release(error);
  };
  return client;
}

/** A pg pool whose checked-out connections cannot outlive their socket (releaseWhenLost). */
class Pool extends pg.Pool {
  /** The connections checked out by connect(): transactions and session locks. */
  readonly inUse = new Set<pg.PoolClient>();

  override connect(): Promise<pg.PoolClient>;
  override connect(callback: NonNullable<ConnectCallback>): void;
  override connect(callback?: ConnectCallback): Promise<pg.PoolClient> | undefined {
    // The callback form is pool.query's own checkout, which releases a lost connection itself.
    if (callback) {
      super.connect(callback);
      return undefined;
    }
    return super.connect().then((client) => releaseWhenLost(client, this.inUse));
  }
}

/**
 * Opens a pool and a Prisma client over it. Connections are made lazily. A query with no
 * answer within `queryTimeoutMs` fails and its connection is destroyed (query-timeout.ts);
 * a connection not open within `connectTimeoutMs` (DB_CONNECT_TIMEOUT_MS's default when not
 * given), or no free connection within that time, fails the query.
 */
export function openDatabase(
  url: string,
  options: { poolMax: number; queryTimeoutMs: number; connectTimeoutMs?: number; logger: Logger },
): Database {
  const pool = new Pool({
    Client: clientWithQueryTimeout(options.queryTimeoutMs),
    connectionString: url,
    max: options.poolMax,
    // PostgreSQL's default random_page_cost (4) models spinning disks. With it the planner
    // hashed every live receipt item for a user's two-week listing (a sequential scan per
    // request, 31-38 ms) instead of probing the index per job (6-10 ms); 1.1 is the usual
    // value for SSDs and cached data, and still picks the hash for year-long aggregates.
    // Set per connection so the app behaves the same on a server left at its defaults.
    // Transactions are READ COMMITTED unless one asks for more (ONE_SNAPSHOT's lists), whatever
    // default_transaction_isolation the database or the role was given: the audit chain reads its
    // head after taking its lock, which under a REPEATABLE READ default read the transaction's
    // older snapshot, and two appends chained after the same entry (the chain forked).
    options: '-c random_page_cost=1.1 -c default_transaction_isolation=read\\ committed',
    connectionTimeoutMillis: options.connectTimeoutMs ?? DEFAULT_DB_CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
  });
  let isStopping = false;
  // The idle connections lost since the first of a burst, warned about once its window has passed
  // (or the process stops): one line a burst, saying how many, the first one's error.
  let lostBurst: { lostConnections: number; err: string; timer: NodeJS.Timeout } | undefined;
  const warnLostBurst = () => {
    if (!lostBurst) return;
    const { lostConnections, err, timer } = lostBurst;
    lostBurst = undefined;
    clearTimeout(timer);
    options.logger.warn({ err, lostConnections }, 'idle database connection lost');
  };
  // An idle connection dying (database restart, network blip) must not crash
  // the process; the pool drops it and opens a new one on the next query.
  pool.on('error', (error) => {
    if (isStopping) {
      options.logger.info({ err: error.message }, 'database connection ended while stopping');
    } else if (lostBurst) {
      lostBurst.lostConnections += 1;
    } else {
      const timer = setTimeout(warnLostBurst, LOST_CONNECTIONS_WINDOW_MS);
      timer.unref();
      lostBurst = { lostConnections: 1, err: error.message, timer };
    }
  });
  // pool.end() resolves once it has asked every connection to close, not once they have: a
  // database stopped right after it (the embedded one, stopped last) ended connections still
  // saying goodbye, each logged as lost. 'remove' comes once a connection has ended.
  let openConnections = 0;
  let onAllEnded: (() => void) | undefined;
  // Every connection the pool opened and has not dropped yet, checked out or idle: the ones a
  // close that stopped waiting destroys.
  const connections = new Set<pg.PoolClient>();
  pool.on('connect', (client) => {
    openConnections += 1;
    connections.add(client);
  });
  pool.on('remove', (client) => {
    connections.delete(client);
    openConnections -= 1;
    if (openConnections === 0) onAllEnded?.();
  });
  const allEnded = () =>
    new Promise<void>((resolve) => {
      if (openConnections === 0) resolve();
      else onAllEnded = resolve;
    });
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  let isClosed = false;
  return {
    pool,
    prisma,
    queryTimeoutMs: options.queryTimeoutMs,
    markStopping() {
      isStopping = true;
      // Lost while serving: written now, as the stopping process may exit before the window ends.
      warnLostBurst();
    },
    closeConnectionsInUse() {
      const inUse = [...pool.inUse];
      // Released with an error, the pool destroys the connection: its query fails at once.
      for (const client of inUse) client.release(new Error('closed by a shutdown that stopped waiting for it'));
      return inUse.length;
    },
    async close(closeOptions = {}) {
      if (isClosed) return;
      isClosed = true;
      isStopping = true;
      warnLostBurst();
      const closing = (async () => {
        await prisma.$disconnect();
        await pool.end();
        await allEnded();
      })();
      if (closeOptions.graceMs === undefined) return closing;
      if (await settlesWithin(closing, closeOptions.graceMs)) return;
      // Their queries fail at once and the pool drops them; PostgreSQL rolls back a transaction
      // whose connection is gone, once it notices.
      const abandoned = [...connections];
      for (const client of abandoned) {
        (client as unknown as pg.Client).connection.stream.destroy();
      }
      options.logger.warn(
        { graceMs: closeOptions.graceMs, destroyedConnections: abandoned.length },
        `the database did not let its connections close within ${closeOptions.graceMs} ms: destroyed ${abandoned.length} database connection(s), their queries in flight abandoned (an open transaction rolls back)`,
      );
      await settlesWithin(closing, DESTROYED_DROP_WAIT_MS);
    },
  };
}
