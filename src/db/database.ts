import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '@prisma/client';
import pg from 'pg';
import type { Logger } from '../shared/logger.js';

export type Db = PrismaClient;

/** The pool (sessions, readiness, bulk COPY) and Prisma on top of it share one set of connections. */
export interface Database {
  pool: pg.Pool;
  prisma: PrismaClient;
  close(): Promise<void>;
}

/** Opens a pool and a Prisma client over it. Connections are made lazily. */
export function openDatabase(url: string, options: { poolMax: number; logger: Logger }): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolMax,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle connection dying (database restart, network blip) must not crash
  // the process; the pool drops it and opens a new one on the next query.
  pool.on('error', (error) => options.logger.warn({ err: error.message }, 'idle database connection lost'));
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  let isClosed = false;
  return {
    pool,
    prisma,
    async close() {
      if (isClosed) return;
      isClosed = true;
      await prisma.$disconnect();
      await pool.end();
    },
  };
}
