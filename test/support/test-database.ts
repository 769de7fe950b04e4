import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { DEFAULT_DB_QUERY_TIMEOUT_MS } from '../../src/config/config.schema.js';
import { type Database, openDatabase } from '../../src/db/database.js';
import { configureAuditChain } from '../../src/modules/audit/audit.service.js';
import { createLogger } from '../../src/shared/logger.js';
import { withDatabase } from './global-setup.js';

export interface TestDatabase extends Database {
  url: string;
  name: string;
  /** Closes the pool and drops the database. */
  drop(): Promise<void>;
}

async function withAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: inject('adminUrl') });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * A fresh, migrated database of the test file's own, cloned from the template:
 * files run in parallel without seeing each other's rows. The audit chain's settings start without a
 * key, whatever the file before it in this worker left (isolate: false): entries sealed with a key left
 * over, an app without it built later is refused its own after them.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  configureAuditChain({ chainKeys: [], unsealedUntil: 0n });
  const name = `hb_test_${randomBytes(6).toString('hex')}`;
  const strategy = inject('isFileCopyClone') ? ' STRATEGY FILE_COPY' : '';
  await withAdmin((client) =>
    client.query(`CREATE DATABASE ${name} TEMPLATE ${inject('templateDatabase')}${strategy}`),
  );
  const url = withDatabase(inject('adminUrl'), name);
  const database = openDatabase(url, {
    poolMax: 10,
    queryTimeoutMs: DEFAULT_DB_QUERY_TIMEOUT_MS,
    logger: createLogger('silent'),
  });
  return {
    ...database,
    url,
    name,
    async drop() {
      await database.close();
      await withAdmin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}
