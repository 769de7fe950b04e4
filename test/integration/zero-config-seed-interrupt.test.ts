import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { embeddedDatabaseUrl, findFreePort, startEmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { applyMigrations } from '../../src/db/migrations.js';
import { DEMO_JOB_COUNT, DEMO_LOGINS } from '../../src/modules/demo/demo.service.js';
import { DEMO_RESEARCHERS } from '../../src/modules/demo/demo-jobs.js';
import { createLogger } from '../../src/shared/logger.js';
import { builtFile } from '../support/built-app.js';
import { spawnCollecting } from '../support/run-to-exit.js';
import { PROJECT_ROOT, spawnServer } from '../support/spawn-server.js';

// `npm start` with no configuration, stopped (Ctrl-C) while it seeded the demo: the start's stop
// handler said "asked to stop during start-up", then the seed went on to its end, every password
// hashed and every job ingested, before the process stopped, as the seed was not told.

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function postmasterPid(dataDir: string): number | undefined {
  const file = path.join(dataDir, 'postgres', 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  return Number(readFileSync(file, 'utf8').split('\n')[0]);
}

async function waitFor(condition: () => boolean, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  return condition();
}

/**
 * The demo's DATA_DIR, its PostgreSQL created and migrated, with a gate on slurm_jobs: every insert
 * waits until hb_test_gate has a row. The seed's first batches of jobs wait there, in their
 * transactions, for as long as the test keeps it closed: the stop lands mid-ingest, no timing guessed.
 */
async function dataDirWithGatedJobs(): Promise<string> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'hb-zero-config-seed-interrupt-'));
  cleanups.push(async () => {
    // Whatever a failed test left running must not outlive the test run.
    const pid = postmasterPid(dataDir);
    if (pid !== undefined) process.kill(pid, 'SIGQUIT');
    await rm(dataDir, { recursive: true, force: true });
  });
  const logger = createLogger('silent');
  const embedded = await startEmbeddedPostgres(dataDir, logger);
  try {
    await applyMigrations(embedded.url, logger);
    const client = new pg.Client({ connectionString: embedded.url });
    await client.connect();
    try {
      await client.query(`
        CREATE TABLE hb_test_gate (opened boolean);
        CREATE FUNCTION hb_test_wait_at_gate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          WHILE NOT EXISTS (SELECT 1 FROM hb_test_gate) LOOP PERFORM pg_sleep(0.05); END LOOP;
          RETURN NULL;
        END $$;
        CREATE TRIGGER hb_test_gate BEFORE INSERT ON slurm_jobs
          FOR EACH STATEMENT EXECUTE FUNCTION hb_test_wait_at_gate();
      `);
    } finally {
      await client.end();
    }
  } finally {
    await embedded.stop();
  }
  return dataDir;
}

/** What the stopped start left in the demo's database, read with the embedded PostgreSQL started for it. */
async function readDemoDatabase(dataDir: string) {
  const embedded = await startEmbeddedPostgres(dataDir, createLogger('silent'));
  const client = new pg.Client({ connectionString: embedded.url });
  await client.connect();
  try {
    const count = async (sql: string) => (await client.query(sql)).rows[0].n as number;
    return {
      users: await count('SELECT count(*)::int AS n FROM users'),
      jobs: await count('SELECT count(*)::int AS n FROM slurm_jobs'),
      runs: (await client.query('SELECT trigger, outcome, error FROM ingestion_runs ORDER BY id')).rows,
    };
  } finally {
    await client.end();
    await embedded.stop();
  }
}

describe('the zero-configuration start, stopped while it seeds the demo', () => {
  it('on Ctrl-C stops between two batches of jobs, stops its PostgreSQL, exits 0, and the next start ingests the rest', async () => {
    const dataDir = await dataDirWithGatedJobs();
    const env = { DATA_DIR: dataDir, PORT: String(await findFreePort()), LOG_LEVEL: 'info' };
    const server = spawnCollecting(process.execPath, [builtFile('src/server.ts')], {
      cwd: PROJECT_ROOT,
      env,
      hasOwnProcessGroup: true,
    });
    cleanups.push(async () => {
      if (server.child.exitCode === null && server.child.signalCode === null) {
        process.kill(-(server.child.pid as number), 'SIGKILL');
      }
    });
    expect(await waitFor(() => /"port":\d+,[^\n]*"msg":"embedded PostgreSQL started"/.test(server.output()))).toBe(
      true,
    );
    const port = Number(/"port":(\d+),[^\n]*"msg":"embedded PostgreSQL started"/.exec(server.output())?.[1]);
    const client = new pg.Client({ connectionString: embeddedDatabaseUrl(port) });
    client.on('error', () => undefined);
    await client.connect();
    const waitingAtGate = async () =>
      (
        await client.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event = 'PgSleep'`,
        )
      ).rows[0].n as number;
    // The users and tiers are committed; the first batches of jobs wait at the gate (its pg_sleep),
    // which must open within DB_QUERY_TIMEOUT_MS (30 s), or the seed fails on its own.
    const deadline = Date.now() + 120_000;
    while ((await waitingAtGate()) === 0 && Date.now() < deadline) {
      expect(server.child.exitCode, server.output()).toBeNull();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await waitingAtGate(), server.output()).toBeGreaterThan(0);

    // Ctrl-C in its terminal: SIGINT to its process group (its PostgreSQL runs in a group of its own).
    process.kill(-(server.child.pid as number), 'SIGINT');
    expect(await waitFor(() => server.output().includes('asked to stop during start-up')), server.output()).toBe(true);
    // The batches in flight commit; the rest are not written.
    await client.query('INSERT INTO hb_test_gate VALUES (true)');
    await client.end();

    expect({ code: await server.exited, signal: server.child.signalCode }, server.output()).toEqual({
      code: 0,
      signal: null,
    });
    const output = server.output();
    expect(output).toContain(
      '"signal":"SIGINT","msg":"asked to stop during start-up: the migration or demo seed in progress finishes or rolls back, then the process exits without serving"',
    );
    expect(output).toContain(
      "the demo's seed stopped between two batches of its jobs: its users and tiers are seeded, and the jobs written so far; the next start ingests the rest",
    );
    expect(output).toMatch(/"signal":"SIGINT","msg":"stopped during start-up: nothing was served"/);
    expect(output).not.toContain('demo data seeded');
    expect(output).not.toContain('is listening');
    expect(await waitFor(() => postmasterPid(dataDir) === undefined), 'PostgreSQL still running').toBe(true);

    // Whole users and whole batches of jobs, the run recorded failed, saying why.
    const demoUsers = new Set([...DEMO_LOGINS.map((login) => login.username), ...DEMO_RESEARCHERS]).size;
    const stopped = await readDemoDatabase(dataDir);
    expect(stopped.users).toBe(demoUsers);
    expect(stopped.jobs).toBeGreaterThan(0);
    expect(stopped.jobs).toBeLessThan(DEMO_JOB_COUNT);
    expect(stopped.jobs % 500).toBe(0);
    expect(stopped.runs).toEqual([
      {
        trigger: 'seed',
        outcome: 'failed',
        error: "file: stopped: SIGINT during the demo's seed; the next start ingests the rest of its jobs",
      },
    ]);

    // The next start finds the seed unfinished, says so, ingests the rest, and serves.
    const next = await spawnServer(env, 120_000);
    cleanups.push(async () => {
      if (next.process.exitCode === null && next.process.signalCode === null) next.process.kill('SIGKILL');
    });
    expect(next.output()).toContain(
      "an earlier demo seed was stopped while it ingested the demo's jobs: ingesting them now",
    );
    expect(next.output()).toContain(
      `demo data: kept from an earlier start whose seed was stopped; its Slurm jobs finished now (${DEMO_JOB_COUNT} from ${path.join(dataDir, 'demo', 'sacct-demo.psv')})`,
    );
    expect(await next.stop(), next.output()).toBe(0);
    const finished = await readDemoDatabase(dataDir);
    expect(finished).toMatchObject({ users: demoUsers, jobs: DEMO_JOB_COUNT });
    expect(finished.runs.map((run: { outcome: string }) => run.outcome)).toEqual(['failed', 'success']);
  }, 300_000);
});
