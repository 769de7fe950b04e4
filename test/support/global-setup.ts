import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { applyMigrations } from '../../src/db/migrations.js';
import { createLogger } from '../../src/shared/logger.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A URL with the right to create databases. */
    adminUrl: string;
    /** A migrated database each test file clones. */
    templateDatabase: string;
    /** Whether a test file's database is cloned with STRATEGY FILE_COPY (else the server's default). */
    isFileCopyClone: boolean;
  }
}

/**
 * Tests run against a real PostgreSQL: DATABASE_URL when set (it must be allowed to
 * create databases), otherwise an embedded one started here and removed afterwards.
 */
export default async function setup(project: TestProject) {
  const logger = createLogger('warn');
  let stopEmbedded: (() => Promise<void>) | undefined;
  let adminUrl = process.env.DATABASE_URL;
  // PostgreSQL's default copies the template block by block through the WAL. Without fsync the
  // checkpoints of a plain file copy cost little, and it took half as long (120-155 against
  // 220-240 ms a database, embedded server); with fsync each clone would wait for two checkpoints,
  // and a DATABASE_URL's server may be older than the STRATEGY option (PostgreSQL 15).
  const isFileCopyClone = !adminUrl;
  if (!adminUrl) {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'hpc-billing-test-'));
    // Thrown away at the end: no flushing to disk (each test file's DROP DATABASE waited for it).
    const embedded = await startEmbeddedPostgres(dataDir, logger, { isDisposable: true });
    adminUrl = embedded.url;
    stopEmbedded = async () => {
      await embedded.stop();
      await rm(dataDir, { recursive: true, force: true });
    };
  }
  const templateDatabase = `hb_template_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${templateDatabase}`);
  await applyMigrations(withDatabase(adminUrl, templateDatabase), logger);
  project.provide('adminUrl', adminUrl);
  project.provide('templateDatabase', templateDatabase);
  project.provide('isFileCopyClone', isFileCopyClone);

  return async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${templateDatabase} WITH (FORCE)`);
    await admin.end();
    await stopEmbedded?.();
  };
}

export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}
