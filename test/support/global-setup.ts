import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { isProcessRunning, startEmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { applyMigrations } from '../../src/db/migrations.js';
import { createLogger } from '../../src/shared/logger.js';
import { PROJECT_ROOT } from '../../src/shared/paths.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A URL with the right to create databases. */
    adminUrl: string;
    /** A migrated database each test file clones. */
    templateDatabase: string;
    /** Whether a test file's database is cloned with STRATEGY FILE_COPY (else the server's default). */
    isFileCopyClone: boolean;
    /**
     * The app compiled once for this run (`tsc -p tsconfig.build.json`): its src/server.js and
     * src/cli/*.js are what the tests spawn, unless a test is about the tsx path (docs/development.md).
     */
    builtApp: string;
  }
}

/**
 * The suite's own build, beside none of dist/ (`npm run build` and `npm run start:prod` own that):
 * under node_modules/.cache, where no package.json stands between it and the checkout's, so
 * src/shared/paths.ts finds the checkout's views/, public/ and prisma/, and the packages (the Prisma
 * client among them) resolve from the checkout's node_modules. One folder per run, so two runs
 * in one checkout never read each other's half-written files.
 */
const BUILDS = path.join(PROJECT_ROOT, 'node_modules/.cache/hpc-billing-test-build');

/** Compiles the app into a folder of this run's; a build that fails stops the run with tsc's words. */
async function buildApp(): Promise<{ directory: string; remove: () => Promise<void> }> {
  // A run that was killed left its folder behind: gone once its process is.
  const left = await readdir(BUILDS).catch(() => []);
  for (const name of left) {
    const pid = Number(/^run-(\d+)$/.exec(name)?.[1]);
    if (pid && pid !== process.pid && !isProcessRunning(pid)) {
      await rm(path.join(BUILDS, name), { recursive: true, force: true });
    }
  }
  const directory = path.join(BUILDS, `run-${process.pid}`);
  await rm(directory, { recursive: true, force: true });
  const tsc = path.join(PROJECT_ROOT, 'node_modules/typescript/bin/tsc');
  const built = new Promise<void>((resolve, reject) => {
    execFile(
      process.execPath,
      [tsc, '-p', 'tsconfig.build.json', '--outDir', directory],
      { cwd: PROJECT_ROOT, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (!error) return resolve();
        reject(
          new Error(
            `The tests run the compiled app, and \`tsc -p tsconfig.build.json --outDir ${path.relative(PROJECT_ROOT, directory)}\` failed (${error.code ?? error.signal}):\n${stdout}${stderr}`,
          ),
        );
      },
    );
  });
  const remove = () => rm(directory, { recursive: true, force: true });
  // tsc writes what it can even when it fails: nothing of a failed build is left behind.
  await built.catch(async (error) => {
    await remove();
    throw error;
  });
  return { directory, remove };
}

/**
 * Tests run against a real PostgreSQL: DATABASE_URL when set (it must be allowed to
 * create databases), otherwise an embedded one started here and removed afterwards.
 */
export default async function setup(project: TestProject) {
  const logger = createLogger('warn');
  // Compiled while PostgreSQL starts and the template is migrated.
  const building = buildApp();
  building.catch(() => {});
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
  const build = await building.catch(async (error) => {
    await admin.query(`DROP DATABASE IF EXISTS ${templateDatabase} WITH (FORCE)`);
    await admin.end();
    await stopEmbedded?.();
    throw error;
  });
  project.provide('builtApp', build.directory);

  return async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${templateDatabase} WITH (FORCE)`);
    await admin.end();
    await stopEmbedded?.();
    await build.remove();
  };
}

export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}
