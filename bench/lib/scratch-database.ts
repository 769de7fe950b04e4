import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { createLogger } from '../../src/shared/logger.js';

export interface ScratchDatabase {
  url: string;
  drop(): Promise<void>;
}

/**
 * A new empty database for one run: on the server of `adminUrl` when given (it must be
 * allowed to create databases), else in an embedded PostgreSQL under a temporary folder.
 */
export async function createScratchDatabase(adminUrl: string | undefined): Promise<ScratchDatabase> {
  let stopEmbedded: (() => Promise<void>) | undefined;
  let serverUrl = adminUrl;
  if (!serverUrl) {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'hpc-billing-bench-'));
    const embedded = await startEmbeddedPostgres(dataDir, createLogger('warn'));
    serverUrl = embedded.url;
    stopEmbedded = async () => {
      await embedded.stop();
      await rm(dataDir, { recursive: true, force: true });
    };
  }
  const name = `hb_bench_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: serverUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
      await stopEmbedded?.();
    },
  };
}
