import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findLiveHighWaterMark } from '../../../src/modules/ingestion/ingestion.repository.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

/**
 * docs/operations.md, "Pruning ingestion runs": the SQL an operator runs to delete the runs older than a
 * year. Run as the guide prints it: it deletes in transactions of 10,000 rows, never a running run, and
 * keeps the newest completed run of each trigger and source however old (where ingestion resumes).
 */
const GUIDE = readFileSync(path.resolve(import.meta.dirname, '../../../docs/operations.md'), 'utf8');

function pruneSql(): string {
  const section = GUIDE.slice(GUIDE.indexOf('### Pruning ingestion runs'));
  const match = /```sql\n([\s\S]*?)```/.exec(section);
  if (!match?.[1]) throw new Error('docs/operations.md has no SQL under "Pruning ingestion runs"');
  return match[1];
}

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
}, 60_000);
afterAll(() => db?.drop());

const insertRuns = (sql: string, values: unknown[] = []) =>
  db.pool.query(
    `INSERT INTO ingestion_runs (trigger, source, window_start, window_end, outcome, started_at, finished_at) ${sql}`,
    values,
  );

describe('the guide’s SQL that prunes ingestion runs', () => {
  it('deletes the runs older than a year in transactions of 10,000, and keeps the rest', async () => {
    // 25,000 scheduled runs, one every 20 minutes from two years ago to 383 days ago, then one a minute for the last day.
    await insertRuns(
      `SELECT 'schedule', 'sacct', t - INTERVAL '15 minutes', t, (CASE WHEN i % 100 = 0 THEN 'failed' ELSE 'success' END)::"IngestionOutcome", t, t
         FROM generate_series(1, 25000) AS i, LATERAL (SELECT now() - INTERVAL '730 days' + i * INTERVAL '20 minutes') AS w(t)`,
    );
    // A run left running two years ago by a process that died, never failed since (it is a run's to fail).
    await insertRuns(
      `VALUES ('schedule', 'sacct', now() - INTERVAL '731 days', now() - INTERVAL '730 days', 'running', now() - INTERVAL '730 days', NULL)`,
    );
    // The only file run and the only backfill ever, both old: the newest of their trigger and source.
    await insertRuns(`VALUES ('schedule', 'file', now() - INTERVAL '600 days', now() - INTERVAL '600 days', 'success', now() - INTERVAL '600 days', now() - INTERVAL '600 days'),
                             ('backfill', 'sacct', now() - INTERVAL '501 days', now() - INTERVAL '500 days', 'success', now() - INTERVAL '500 days', now() - INTERVAL '500 days')`);
    await insertRuns(
      `SELECT 'schedule', 'sacct', t - INTERVAL '15 minutes', t, 'success', t, t
         FROM generate_series(1, 1440) AS i, LATERAL (SELECT now() - INTERVAL '1 day' + i * INTERVAL '1 minute') AS w(t)`,
    );
    const mark = await findLiveHighWaterMark(db.prisma);
    // Which transaction deleted each row, to count them.
    await db.pool.query(`CREATE TABLE deleted_runs (id int, xid bigint);
      CREATE FUNCTION note_deleted_run() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO deleted_runs VALUES (OLD.id, txid_current()); RETURN OLD; END $$;
      CREATE TRIGGER note_deleted_run AFTER DELETE ON ingestion_runs FOR EACH ROW EXECUTE FUNCTION note_deleted_run();`);

    await db.pool.query(pruneSql());

    const { rows: deleted } = await db.pool.query<{ rows: number; transactions: number; largest: number }>(
      `SELECT sum(n)::int AS rows, count(*)::int AS transactions, max(n)::int AS largest
         FROM (SELECT xid, count(*) AS n FROM deleted_runs GROUP BY xid) AS t`,
    );
    expect(deleted[0]).toEqual({ rows: 25000, transactions: 3, largest: 10000 });
    const { rows: left } = await db.pool.query<{ trigger: string; source: string; outcome: string; old: boolean }>(
      `SELECT trigger, source, outcome::text, started_at < now() - INTERVAL '365 days' AS old
         FROM ingestion_runs WHERE started_at < now() - INTERVAL '2 days' ORDER BY id`,
    );
    expect(left).toEqual([
      { trigger: 'schedule', source: 'sacct', outcome: 'running', old: true },
      { trigger: 'schedule', source: 'file', outcome: 'success', old: true },
      { trigger: 'backfill', source: 'sacct', outcome: 'success', old: true },
    ]);
    const { rows: recent } = await db.pool.query<{ count: number }>(
      `SELECT count(*)::int AS count FROM ingestion_runs WHERE started_at >= now() - INTERVAL '2 days'`,
    );
    expect(recent[0]?.count).toBe(1440);
    expect(await findLiveHighWaterMark(db.prisma)).toEqual(mark);
  });
});
