import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  findLastSuccessfulFinish,
  findLiveHighWaterMark,
  LAST_SUCCESSFUL_FINISH_SQL,
  LIVE_WINDOW_TRIGGERS,
  liveHighWaterMarkSql,
  RECENT_CATCH_UP_START_SQL,
} from '../../../src/modules/ingestion/ingestion.repository.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

/**
 * ingestion_runs only grows: the scheduler records a run every INGEST_INTERVAL_SEC (60 s), about
 * 525,000 rows a year, and nothing deletes them (docs/operations.md, "What the database keeps").
 * The statements every scheduled run, /admin/ingestion, the receipt forms and the start-up send
 * must read the newest runs from an index, not every run ever recorded: on two years of runs
 * (1,051,200) the high-water mark's sequential scan took 415 ms, and the start-up's 295 ms.
 * Plans, not timings.
 */
let db: TestDatabase;
const FIRST = new Date('2026-01-01T00:00:00Z');
const RUNS = 20_000;
const minutes = (n: number) => new Date(FIRST.getTime() + n * 60_000);

beforeAll(async () => {
  db = await createTestDatabase();
  // A scheduled run a minute, one in 50 failed and one in 70 partial, and a backfill day now and then.
  await db.pool.query(
    `INSERT INTO ingestion_runs (cluster, trigger, source, window_start, window_end, outcome, started_at, finished_at, duration_ms)
     SELECT '', 'schedule', 'sacct', $1::timestamptz + (i - 15) * INTERVAL '1 minute', $1::timestamptz + i * INTERVAL '1 minute',
            (CASE WHEN i % 50 = 0 THEN 'failed' WHEN i % 70 = 0 THEN 'partial' ELSE 'success' END)::"IngestionOutcome",
            $1::timestamptz + i * INTERVAL '1 minute', $1::timestamptz + i * INTERVAL '1 minute' + INTERVAL '1 second', 1000
       FROM generate_series(1, $2::int) AS i`,
    [FIRST, RUNS],
  );
  await db.pool.query(
    `INSERT INTO ingestion_runs (cluster, trigger, source, window_start, window_end, outcome, started_at, finished_at, duration_ms)
     SELECT '', 'backfill', 'sacct', $1::timestamptz + (d - 1) * INTERVAL '1 day', $1::timestamptz + d * INTERVAL '1 day', 'success',
            $1::timestamptz + d * INTERVAL '1 day' + INTERVAL '1 hour', $1::timestamptz + d * INTERVAL '1 day' + INTERVAL '1 hour', 2000
       FROM generate_series(1, 10) AS d`,
    [FIRST],
  );
  await db.pool.query('ANALYZE ingestion_runs');
}, 60_000);
afterAll(() => db?.drop());

async function planOf(sql: string, values: unknown[] = []): Promise<string> {
  const { rows } = await db.pool.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, values);
  return rows.map((row) => row['QUERY PLAN']).join('\n');
}

/**
 * No sequential scan, and a sort only of the rows an index found by cluster (the runs without one, none
 * once adopted): a sort of anything else is a sort of every run ever recorded.
 */
function expectNoFullRead(plan: string): void {
  expect(plan).not.toMatch(/Seq Scan/);
  const lines = plan.split('\n');
  lines.forEach((line, at) => {
    if (!/(^|->)\s*Sort\s+\(/.test(line)) return;
    const input = lines.slice(at + 1).findIndex((next) => /Index Scan/.test(next));
    expect(lines[at + 2 + input], `the input of "${line.trim()}"`).toMatch(/Index Cond: \(\(?cluster (IS NULL|= )/);
  });
}

describe('the high-water mark (each scheduled run, /admin/ingestion, the receipt forms)', () => {
  it.each([
    ['every live trigger', LIVE_WINDOW_TRIGGERS],
    ['without the seed', LIVE_WINDOW_TRIGGERS.filter((trigger) => trigger !== 'seed')],
  ])('reads the newest completed run from the index on (cluster, outcome, window_end), %s', async (_, triggers) => {
    // The site's own cluster (''), and one that has never completed a run: each probe reads its own rows.
    for (const cluster of ['', 'beta']) {
      const plan = await planOf(liveHighWaterMarkSql(triggers), [cluster]);
      expect(plan).toMatch(
        /Index Scan( Backward)? using ingestion_runs_cluster_outcome_window_end_idx on ingestion_runs/,
      );
      // The runs without a cluster (none here, as after adoption) come from the cluster's index: on
      // (outcome, window_end) their probe read every completed run.
      expectNoFullRead(plan);
    }
  });

  it('is the end of the newest completed run reading up to now: partial counts; failed, backfill and (without it) the seed do not', async () => {
    // The last scheduled run (the 20,000th) failed: the one before it is the mark.
    expect(await findLiveHighWaterMark(db.prisma)).toEqual(minutes(RUNS - 1));
    // Another cluster's window is its own: none of the site's runs is its.
    expect(await findLiveHighWaterMark(db.prisma, { cluster: 'beta' })).toBeNull();
    const add = (trigger: string, outcome: string, windowEnd: Date) =>
      db.pool.query(
        `INSERT INTO ingestion_runs (trigger, source, window_start, window_end, outcome, started_at, finished_at)
         VALUES ($1, 'sacct', $2::timestamptz - INTERVAL '15 minutes', $2, $3::"IngestionOutcome", $2, $2)`,
        [trigger, windowEnd, outcome],
      );
    await add('schedule', 'partial', minutes(RUNS + 1));
    await add('schedule', 'failed', minutes(RUNS + 2));
    await add('schedule', 'running', minutes(RUNS + 3));
    await add('backfill', 'success', minutes(RUNS + 24 * 60));
    expect(await findLiveHighWaterMark(db.prisma)).toEqual(minutes(RUNS + 1));
    await add('seed', 'success', minutes(RUNS + 4));
    expect(await findLiveHighWaterMark(db.prisma)).toEqual(minutes(RUNS + 4));
    expect(await findLiveHighWaterMark(db.prisma, { withSeed: false })).toEqual(minutes(RUNS + 1));
    await add('manual', 'success', minutes(RUNS + 5));
    expect(await findLiveHighWaterMark(db.prisma, { withSeed: false })).toEqual(minutes(RUNS + 5));
  });
});

describe('the catch-up after an outage (each scheduled run)', () => {
  it("reads the failed runs of each recent run's window from the index, not every failed run ever recorded", async () => {
    // Runs of the last INGEST_OVERLAP_SEC (900 s), as a scheduled run asks.
    const plan = await planOf(RECENT_CATCH_UP_START_SQL, [minutes(RUNS - 15), '']);
    expect(plan).not.toMatch(/Hash|Seq Scan/);
    expect(plan).toMatch(
      /Index Scan using ingestion_runs_outcome_window_end_idx on ingestion_runs f [^\n]*\n\s+Index Cond: \(\(outcome = 'failed'::"IngestionOutcome"\) AND \(window_end > r\.window_start\)/,
    );
  });
});

describe("the start-up's freshness gauge (restoreFreshnessGauge)", () => {
  it('reads the newest completed run from an index by id, newest first', async () => {
    for (const cluster of ['', 'beta']) {
      const plan = await planOf(LAST_SUCCESSFUL_FINISH_SQL, [cluster]);
      expect(plan).toMatch(/Index Scan( Backward)? using ingestion_runs_(pkey|cluster_id_idx) on ingestion_runs/);
      expectNoFullRead(plan);
    }
  });

  it("is the newest completed run's finish; a failed run and a backfill of past days after it are left out", async () => {
    const { rows } = await db.pool.query<{ finished_at: Date }>(
      `INSERT INTO ingestion_runs (trigger, source, window_start, window_end, outcome, started_at, finished_at)
       VALUES ('schedule', 'sacct', now() - INTERVAL '15 minutes', now(), 'success', now(), now() + INTERVAL '1 second')
       RETURNING finished_at`,
    );
    await db.pool.query(
      `INSERT INTO ingestion_runs (trigger, source, window_start, window_end, outcome, started_at, finished_at)
       VALUES ('schedule', 'sacct', now(), now(), 'failed', now(), now() + INTERVAL '2 seconds'),
              ('backfill', 'sacct', '2026-01-02', '2026-01-03', 'success', now(), now() + INTERVAL '3 seconds')`,
    );
    expect(await findLastSuccessfulFinish(db.prisma)).toEqual(rows[0]?.finished_at);
  });
});
