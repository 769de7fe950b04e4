import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../../src/db/database.js';
import { findIngestedThroughEveryCluster } from '../../../src/modules/ingestion/ingestion.repository.js';
import {
  createIngestionService,
  findLastIngestionSuccess,
  type IngestionDeps,
  isBackfillWindowDone,
} from '../../../src/modules/ingestion/ingestion.service.js';
import type { JobSource } from '../../../src/modules/ingestion/job-source.js';
import { createSacctFileSource } from '../../../src/modules/ingestion/sacct-file.source.js';
import { createMetrics } from '../../../src/modules/metrics/metrics.js';
import { createLogger } from '../../../src/shared/logger.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

// Two instances on one database, one per cluster (SLURM_CLUSTER=alpha and SLURM_CLUSTER=beta), each with
// its own Slurm sources. They shared the runs table's window, lock and "last run": beta's runs moved the
// window on while alpha's source was down, so alpha's jobs of the outage were never read nor billed.

let db: TestDatabase;
let dir: string;
beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(path.join(os.tmpdir(), 'cluster-runs-'));
});
afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await db.pool.query('TRUNCATE slurm_jobs, ingestion_runs RESTART IDENTITY');
});

const HEADER = 'JobID|JobIDRaw|User|State|ElapsedRaw|Start|End|AllocTRES\n';
/** A completed job's sacct line (UTC), of 10 minutes ending at `end` (`2026-11-23T14:00:00`). */
function jobLine(id: string, end: string): string {
  const start = new Date(new Date(`${end}Z`).getTime() - 600_000).toISOString().slice(0, 19);
  return `${id}|${id}|ann|COMPLETED|600|${start}|${end}|cpu=1,mem=1G,node=1\n`;
}

/** A file source for `cluster` (its records have no Cluster column: SLURM_CLUSTER names them). */
function clusterFile(cluster: string, lines: string[]): { source: JobSource; file: string } {
  const file = path.join(dir, `${cluster}.psv`);
  writeFileSync(file, HEADER + lines.join(''));
  return { source: createSacctFileSource({ path: file, timeZone: 'UTC', defaultCluster: cluster }), file };
}

const down: JobSource = {
  name: 'sacct',
  // biome-ignore lint/correctness/useYield: a source that fails before yielding anything
  async *read() {
    throw new Error('sacct exited with 1: sacct: error: Problem talking to the database: Connection refused');
  },
};

function instance(
  cluster: string | undefined,
  sources: JobSource[],
  at: string,
  overrides: Partial<IngestionDeps> & { db?: Database } = {},
) {
  return createIngestionService({
    db,
    sources,
    unconfigured: {},
    logger: createLogger('silent'),
    metrics: createMetrics(),
    overlapSec: 600,
    initialLookbackSec: 3600,
    timeZone: 'UTC',
    now: () => new Date(at),
    ...(cluster === undefined ? {} : { cluster }),
    ...overrides,
  });
}

async function finished(promise: ReturnType<ReturnType<typeof instance>['runOnce']>) {
  const result = await promise;
  if (result.status !== 'finished') throw new Error(`expected a finished run, got ${result.status}`);
  return result.run;
}

const storedJobs = async (cluster: string) =>
  (
    await db.pool.query<{ job_id: string }>('SELECT job_id FROM slurm_jobs WHERE cluster = $1 ORDER BY job_id', [
      cluster,
    ])
  ).rows.map((row) => row.job_id);

describe('two instances on one database, one per cluster', () => {
  it("one cluster's outage, while the other's runs succeed, does not move its window: its jobs of the whole outage are read", async () => {
    const alphaBefore = jobLine('100', '2026-11-23T13:55:00');
    // Ended during alpha's outage (14:00-15:40), while beta's runs succeeded every 20 minutes.
    const alphaDuring = jobLine('101', '2026-11-23T14:10:00');
    const alpha = clusterFile('alpha', [alphaBefore]);
    const beta = clusterFile('beta', [jobLine('200', '2026-11-23T13:58:00')]);
    await finished(instance('alpha', [alpha.source], '2026-11-23T14:00:00Z').runOnce({ trigger: 'schedule' }));
    await finished(instance('beta', [beta.source], '2026-11-23T14:00:30Z').runOnce({ trigger: 'schedule' }));
    writeFileSync(alpha.file, HEADER + alphaBefore + alphaDuring);
    for (const at of ['2026-11-23T14:20:00Z', '2026-11-23T14:40:00Z', '2026-11-23T15:00:00Z', '2026-11-23T15:40:00Z']) {
      const failed = await finished(instance('alpha', [down], at).runOnce({ trigger: 'schedule' }));
      expect(failed.outcome).toBe('failed');
      const read = await finished(instance('beta', [beta.source], at).runOnce({ trigger: 'schedule' }));
      expect(read.outcome).toBe('success');
      // Beta's own window goes on from beta's last run.
      expect(read.window.end).toEqual(new Date(at));
    }

    // Alpha's source is back: its window starts where alpha's last completed run ended, less the overlap.
    const back = await finished(
      instance('alpha', [alpha.source], '2026-11-23T16:00:00Z').runOnce({ trigger: 'schedule' }),
    );
    expect(back).toMatchObject({ outcome: 'success', window: { start: new Date('2026-11-23T13:50:00Z') } });
    expect(await storedJobs('alpha')).toEqual(['100', '101']);
    expect(await storedJobs('beta')).toEqual(['200']);
    // Each run is recorded with its cluster.
    const { rows } = await db.pool.query<{ cluster: string; n: number }>(
      'SELECT cluster, count(*)::int AS n FROM ingestion_runs GROUP BY cluster ORDER BY cluster',
    );
    expect(rows).toEqual([
      { cluster: 'alpha', n: 6 },
      { cluster: 'beta', n: 5 },
    ]);
  });

  it("a run of one cluster in progress does not block the other's, and still blocks a second run of its own", async () => {
    const alpha = clusterFile('alpha', [jobLine('100', '2026-11-23T13:55:00')]);
    const beta = clusterFile('beta', [jobLine('200', '2026-11-23T13:58:00')]);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered!: () => void;
    const isInside = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const slow: JobSource = {
      name: 'sacct',
      async *read(window) {
        entered();
        await gate;
        yield* alpha.source.read(window);
      },
    };
    const first = instance('alpha', [slow], '2026-11-23T14:00:00Z').runOnce({ trigger: 'schedule' });
    await isInside;
    // The other instances have pools of their own, as other processes do.
    const betaDb = await openDatabase(db.url, {
      poolMax: 2,
      queryTimeoutMs: db.queryTimeoutMs,
      logger: createLogger('silent'),
    });
    const alphaDb = await openDatabase(db.url, {
      poolMax: 2,
      queryTimeoutMs: db.queryTimeoutMs,
      logger: createLogger('silent'),
    });
    try {
      const betaRun = await finished(
        instance('beta', [beta.source], '2026-11-23T14:00:30Z', { db: betaDb }).runOnce({ trigger: 'schedule' }),
      );
      expect(betaRun.outcome).toBe('success');
      // Beta's run did not take alpha's run, still going, for one its process left running.
      const { rows } = await db.pool.query<{ outcome: string }>(
        "SELECT outcome FROM ingestion_runs WHERE cluster = 'alpha'",
      );
      expect(rows).toEqual([{ outcome: 'running' }]);
      // A second alpha instance (another worker or replica) is kept out, as before.
      expect(
        await instance('alpha', [alpha.source], '2026-11-23T14:00:40Z', { db: alphaDb }).runOnce({
          trigger: 'schedule',
        }),
      ).toEqual({ status: 'skipped', reason: 'locked' });
      // The first alpha run, let go, ends as it would have alone.
      release();
      expect((await finished(first)).outcome).toBe('success');
    } finally {
      release();
      await betaDb.close();
      await alphaDb.close();
    }
    expect(await storedJobs('alpha')).toEqual(['100']);
    expect(await storedJobs('beta')).toEqual(['200']);
  });

  it("a scheduled run is not skipped as this interval's for another cluster's run", async () => {
    const alpha = clusterFile('alpha', [jobLine('100', '2026-11-23T13:55:00')]);
    const beta = clusterFile('beta', [jobLine('200', '2026-11-23T13:58:00')]);
    await finished(instance('beta', [beta.source], '2026-11-23T14:00:00Z').runOnce({ trigger: 'schedule' }));
    const alphaRun = await instance('alpha', [alpha.source], '2026-11-23T14:00:10Z').runOnce({
      trigger: 'schedule',
      skipIfFinishedWithinSec: 60,
    });
    expect(alphaRun.status).toBe('finished');
    // Beta's own next tick is skipped: beta ran this interval.
    expect(
      await instance('beta', [beta.source], '2026-11-23T14:00:20Z').runOnce({
        trigger: 'schedule',
        skipIfFinishedWithinSec: 60,
      }),
    ).toEqual({ status: 'skipped', reason: 'recent' });
  });

  it("a run left running by a dead process of one cluster is marked failed by its cluster's next run only", async () => {
    await db.pool.query(
      `INSERT INTO ingestion_runs (trigger, cluster, window_start, window_end)
       VALUES ('schedule', 'alpha', '2026-11-23T13:00:00Z', '2026-11-23T14:00:00Z')`,
    );
    const beta = clusterFile('beta', [jobLine('200', '2026-11-23T13:58:00')]);
    await finished(instance('beta', [beta.source], '2026-11-23T14:00:30Z').runOnce({ trigger: 'schedule' }));
    // Beta cannot know whether alpha's process is alive: alpha's lock says so, which beta does not take.
    const alphaOutcome = async () =>
      (await db.pool.query<{ outcome: string }>("SELECT outcome FROM ingestion_runs WHERE cluster = 'alpha'")).rows[0]
        ?.outcome;
    expect(await alphaOutcome()).toBe('running');
    const alpha = clusterFile('alpha', [jobLine('100', '2026-11-23T13:55:00')]);
    await finished(instance('alpha', [alpha.source], '2026-11-23T14:01:00Z').runOnce({ trigger: 'schedule' }));
    expect(
      (
        await db.pool.query<{ outcome: string }>(
          "SELECT outcome FROM ingestion_runs WHERE cluster = 'alpha' ORDER BY id LIMIT 1",
        )
      ).rows[0]?.outcome,
    ).toBe('failed');
  });

  it("a backfill day one cluster read is not done for the other's backfill", async () => {
    const day = { start: new Date('2026-11-22T00:00:00Z'), end: new Date('2026-11-23T00:00:00Z') };
    const alpha = clusterFile('alpha', [jobLine('100', '2026-11-22T13:55:00')]);
    await finished(
      instance('alpha', [alpha.source], '2026-11-23T14:00:00Z').runOnce({ trigger: 'backfill', window: day }),
    );
    expect(await isBackfillWindowDone(db, day, 'alpha')).toBe(true);
    expect(await isBackfillWindowDone(db, day, 'beta')).toBe(false);
  });

  it("the freshness gauges read the instance's own cluster's runs", async () => {
    const alpha = clusterFile('alpha', [jobLine('100', '2026-11-23T13:55:00')]);
    await finished(instance('alpha', [alpha.source], '2026-11-23T14:00:00Z').runOnce({ trigger: 'schedule' }));
    expect(await findLastIngestionSuccess(db, 5_000, 'alpha')).not.toBeNull();
    // Beta has never read its Slurm: IngestionStale must not stay silent for alpha's runs.
    expect(await findLastIngestionSuccess(db, 5_000, 'beta')).toBeNull();
  });

  it("month-end's data-complete mark is the earliest of the clusters' marks", async () => {
    const alpha = clusterFile('alpha', [jobLine('100', '2026-11-23T13:55:00')]);
    const beta = clusterFile('beta', [jobLine('200', '2026-11-23T13:58:00')]);
    await finished(instance('alpha', [alpha.source], '2026-11-23T14:00:00Z').runOnce({ trigger: 'schedule' }));
    await finished(instance('beta', [beta.source], '2026-11-23T14:30:00Z').runOnce({ trigger: 'schedule' }));
    await finished(instance('beta', [beta.source], '2026-11-23T15:00:00Z').runOnce({ trigger: 'schedule' }));
    // Alpha's read stopped at 14:00: a month-end run may not take beta's 15:00 for the data of both.
    expect(await findIngestedThroughEveryCluster(db.prisma, new Date('2026-11-23T15:00:00Z'))).toEqual({
      through: new Date('2026-11-23T14:00:00Z'),
      cluster: 'alpha',
      clusterCount: 2,
    });
  });
});

describe('runs recorded before runs had a cluster (the upgrade)', () => {
  /** A completed scheduled run as the release before this one recorded it: no cluster. */
  async function recordedBefore(windowEnd: string) {
    await db.pool.query(
      `INSERT INTO ingestion_runs (trigger, window_start, window_end, outcome, started_at, finished_at)
       VALUES ('schedule', $1::timestamptz - interval '20 minutes', $1, 'success', $1, $1)`,
      [windowEnd],
    );
  }

  it("continue the window of the instance's cluster: its first run adopts them, and a cluster added later starts afresh", async () => {
    await recordedBefore('2026-11-23T12:00:00Z');
    await recordedBefore('2026-11-23T13:00:00Z');
    const alpha = clusterFile('alpha', [jobLine('100', '2026-11-23T13:55:00')]);
    const first = await finished(
      instance('alpha', [alpha.source], '2026-11-23T14:00:00Z').runOnce({ trigger: 'schedule' }),
    );
    // Where the runs before the upgrade left it, less the overlap: not the first run's look-back.
    expect(first.window.start).toEqual(new Date('2026-11-23T12:50:00Z'));
    const { rows } = await db.pool.query<{ cluster: string | null }>('SELECT cluster FROM ingestion_runs ORDER BY id');
    expect(rows.map((row) => row.cluster)).toEqual(['alpha', 'alpha', 'alpha']);

    // A second instance added since, for beta, has no run of its own: INGEST_LOOKBACK_DAYS back.
    const beta = clusterFile('beta', [jobLine('200', '2026-11-23T13:58:00')]);
    const betaFirst = await finished(
      instance('beta', [beta.source], '2026-11-23T14:05:00Z').runOnce({ trigger: 'schedule' }),
    );
    expect(betaFirst.window.start).toEqual(new Date('2026-11-23T13:05:00Z'));
  });

  it('count for an instance without SLURM_CLUSTER as its own, before its first run too', async () => {
    await recordedBefore('2026-11-23T13:00:00Z');
    expect(await findLastIngestionSuccess(db, 5_000, undefined)).not.toBeNull();
    const file = clusterFile('lab', [jobLine('100', '2026-11-23T13:55:00')]);
    const run = await finished(
      instance(undefined, [file.source], '2026-11-23T14:00:00Z').runOnce({ trigger: 'schedule' }),
    );
    expect(run.window.start).toEqual(new Date('2026-11-23T12:50:00Z'));
  });
});
