import type pg from 'pg';
import { isDatabaseUnavailable } from '../shared/errors.js';

/**
 * Runs `write` (one that records how work ended, often after the database failed it) and runs it again
 * while it fails as the database unavailable on a connection the pool had kept idle. PostgreSQL ending
 * every connection (a restart, a failover) leaves the pool idle connections it has not yet seen die
 * (under load the write comes first, or the network drops them silently): the pool hands them out as
 * alive, one after another, and drops each once it fails. A failure on a connection opened for the
 * attempt (none was idle) is the database's answer and is thrown, as any other error is. At most one
 * attempt more than the pool holds connections.
 */
export async function retryOnStaleConnection<T>(pool: pg.Pool, write: () => Promise<T>): Promise<T> {
  const attempts = (pool.options.max ?? 10) + 1;
  for (let attempt = 1; ; attempt++) {
    const hadIdle = pool.idleCount > 0;
    try {
      return await write();
    } catch (error) {
      if (!hadIdle || attempt >= attempts || !isDatabaseUnavailable(error)) throw error;
    }
  }
}
