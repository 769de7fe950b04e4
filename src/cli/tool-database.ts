import type { AppConfig } from '../config/config.js';
import { type Database, openDatabase } from '../db/database.js';
import type { Logger } from '../shared/logger.js';

// Apart from run-tool.ts: `npm run db:migrate` uses that and never loads the Prisma client.

/**
 * A tool's connection to `databaseUrl` (its DATABASE_URL, checked by the tool): a pool of
 * `poolMax`, under the same query and connect timeouts as the server's, so that a database that
 * stops answering fails the tool as it fails a request rather than hanging it.
 */
export function openToolDatabase(
  databaseUrl: string,
  config: Pick<AppConfig, 'dbQueryTimeoutMs' | 'dbConnectTimeoutMs'>,
  options: { poolMax: number; logger: Logger },
): Database {
  return openDatabase(databaseUrl, {
    poolMax: options.poolMax,
    queryTimeoutMs: config.dbQueryTimeoutMs,
    connectTimeoutMs: config.dbConnectTimeoutMs,
    logger: options.logger,
  });
}
