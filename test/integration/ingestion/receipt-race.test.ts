/**
 * A receipt and an ingestion run that rewrites one of its jobs, at the same instant: the receipt
 * bills exactly the figures the job row keeps. Each order is held open at its critical point on a
 * connection of the test's (the receipt after writing its items, the run after writing its rows),
 * the other side is started, and the first is let go once the second has either finished or is
 * waiting for it.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Prisma } from '@prisma/client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ADVISORY_LOCK_KEYS } from '../../../src/db/advisory-locks.js';
import { createMetrics } from '../../../src/modules/metrics/metrics.js';
import { cpuHoursSql, GPU_HOURS_SQL, MEM_GB_HOURS_SQL } from '../../../src/modules/pricing/pricing.sql.js';
import { createRatesService } from '../../../src/modules/pricing/rates.service.js';
import { createReceiptsService } from '../../../src/modules/receipts/receipts.service.js';
import { buildTiers } from '../../support/billing-factories.js';
import { ingestWindowFinished, labFileSource } from '../../support/ingest-window.js';
import { sessionsWaitingForLocks } from '../../support/lock-waits.js';
import { buildTestConfig } from '../../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

const CAPTURE = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05/final/sacct-steps-extra.psv');
const WINDOW = { start: new Date('2026-11-23T15:00:00Z'), end: new Date('2026-11-23T16:00:00Z') };
const NOW = new Date('2026-11-25T00:00:00Z');
const BILL_DAY = '2026-11-24';
// Any key the app does not use: the test holds it, and a trigger of the test's waits for it.
const HOLD_KEY = 4242;

let db: TestDatabase;
let dir: string;

beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(path.join(os.tmpdir(), 'receipt-race-'));
  await buildTiers(db);
});
afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await db.pool.query('TRUNCATE receipt_items, receipts, slurm_jobs, ingestion_runs RESTART IDENTITY CASCADE');
});

let files = 0;
/** Reads `text` as the sacct file for WINDOW (a new file each time, so it is never "unchanged"). */
async function ingestText(text: string) {
  const file = path.join(dir, `read-${++files}.psv`);
  writeFileSync(file, text);
  return ingestWindowFinished(db, labFileSource(file), WINDOW, { now: () => NOW, force: true });
}

function billAlice() {
  const config = buildTestConfig(db.url, { APP_TZ: 'UTC' });
  const now = () => NOW;
  const rates = createRatesService({ db, config, now });
  return createReceiptsService({ db, config, rates, metrics: createMetrics(), now }).createForUser(
    { username: 'alice' },
    BILL_DAY,
    { actor: 'alice', ip: '127.0.0.1', userAgent: 'test' },
  );
}

// Job 4 (alice's) as Slurm later reports it: its batch step with 10 s more CPU time.
const ORIGINAL = readFileSync(CAPTURE, 'utf8');
const CORRECTED = ORIGINAL.replace(
  '|4.batch|batch|physics|||00:00:12|12|00:10.268|',
  '|4.batch|batch|physics|||00:00:12|12|00:20.268|',
);
// Job 4 alone (the header and its lines), its owner corrected to bob: the run writes none of alice's
// jobs as hers, and must still wait for her receipt, the owner the row has.
const MOVED_TO_BOB = CORRECTED.split('\n')
  .filter((line, index) => index === 0 || /^[^|]*\|4(\.|\|)/.test(line))
  .map((line) => `${line}\n`)
  .join('')
  .replace('alice|4|mem-c2|', 'bob|4|mem-c2|')
  .replace('|4|lab|alice|1001|', '|4|lab|bob|1002|');

/** Job 4's row, and each live item of it with the hours its row gives now (the receipt's formulas). */
async function job4() {
  const [row] = await db.prisma.$queryRaw<{ user: string; totalCpuSec: string }[]>`
    SELECT "user", total_cpu_sec::text AS "totalCpuSec" FROM slurm_jobs WHERE cluster = 'lab' AND job_id = '4'`;
  const items = await db.prisma.$queryRaw<{ billed: string[]; fromRow: string[] }[]>`
    SELECT ARRAY[ri.cpu_hours::text, ri.gpu_hours::text, ri.mem_gb_hours::text] AS billed,
           ARRAY[(${cpuHoursSql('used')})::text, (${GPU_HOURS_SQL})::text, (${MEM_GB_HOURS_SQL})::text] AS "fromRow"
      FROM receipt_items ri JOIN slurm_jobs j ON j.cluster = ri.cluster AND j.job_key = ri.job_key
     WHERE ri.cluster = 'lab' AND ri.job_key = '4' AND NOT ri.is_voided`;
  return { row, items };
}

/** Every live item's hours against those its job row gives now; empty when they all agree. */
async function itemsUnlikeTheirRows() {
  return db.prisma.$queryRaw<{ jobKey: string }[]>(Prisma.sql`
    SELECT ri.job_key AS "jobKey"
      FROM receipt_items ri JOIN slurm_jobs j ON j.cluster = ri.cluster AND j.job_key = ri.job_key
     WHERE NOT ri.is_voided
       AND (ri.cpu_hours, ri.gpu_hours, ri.mem_gb_hours)
           IS DISTINCT FROM (${cpuHoursSql('used')}, ${GPU_HOURS_SQL}, ${MEM_GB_HOURS_SQL})`);
}

/**
 * Starts `work` and returns, its outcome to come in `outcome`, once it has finished or `waiting`
 * sessions wait for a lock (it among them).
 */
async function startedAndWaiting<T>(work: Promise<T>, waiting: number) {
  const outcome = work.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  await Promise.race([outcome, sessionsWaitingForLocks(db.pool, 5_000, waiting)]);
  return { outcome };
}

/**
 * Bills alice and, while her receipt's items are written but uncommitted (its audit entry waits for
 * the audit lock held here), reads `text`; then lets both finish and checks both succeeded.
 */
async function readWhileAliceIsBilled(text: string) {
  const holder = await db.pool.connect();
  try {
    await holder.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEYS.auditAppend]);
    const receipt = await startedAndWaiting(billAlice(), 1);
    expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
    const run = await startedAndWaiting(ingestText(text), 2);
    await holder.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCK_KEYS.auditAppend]);
    expect(await receipt.outcome).toMatchObject({ value: { itemCount: expect.any(Number) } });
    expect(await run.outcome).toMatchObject({ value: { outcome: 'success', error: null } });
  } finally {
    await holder.query('SELECT pg_advisory_unlock_all()');
    holder.release();
  }
}

describe('a receipt in flight while an ingestion run rewrites one of its jobs', () => {
  it('is billed with the figures the job keeps: the run waits for it, then keeps them as billed', async () => {
    await ingestText(ORIGINAL);
    await readWhileAliceIsBilled(CORRECTED);
    const { row, items } = await job4();
    expect(row).toEqual({ user: 'alice', totalCpuSec: '10.268' });
    expect(items).toEqual([
      { billed: ['0.002852', '0.000000', '0.000025'], fromRow: ['0.002852', '0.000000', '0.000025'] },
    ]);
    expect(await itemsUnlikeTheirRows()).toEqual([]);
  });

  it("keeps the job's owner too when the run reads it as another user's", async () => {
    await ingestText(ORIGINAL);
    await readWhileAliceIsBilled(MOVED_TO_BOB);
    expect((await job4()).row).toEqual({ user: 'alice', totalCpuSec: '10.268' });
    expect(await itemsUnlikeTheirRows()).toEqual([]);
  });
});

describe('an ingestion run in flight while a receipt bills the job it rewrites', () => {
  it('is billed by the receipt with its new figures: the receipt waits for it', async () => {
    await ingestText(ORIGINAL);
    // The run's rows are written, uncommitted: a trigger of the test's holds its statement there.
    await db.pool.query(`
      CREATE FUNCTION hold_ingestion() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_advisory_xact_lock(${HOLD_KEY}); RETURN NULL; END $$;
      CREATE TRIGGER hold_ingestion AFTER UPDATE ON slurm_jobs
        FOR EACH STATEMENT EXECUTE FUNCTION hold_ingestion();`);
    const holder = await db.pool.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [HOLD_KEY]);
      const run = await startedAndWaiting(ingestText(CORRECTED), 1);
      expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
      const receipt = await startedAndWaiting(billAlice(), 2);
      await holder.query('SELECT pg_advisory_unlock($1)', [HOLD_KEY]);
      expect(await run.outcome).toMatchObject({ value: { outcome: 'success', updated: 1 } });
      expect(await receipt.outcome).toMatchObject({ value: { itemCount: expect.any(Number) } });
    } finally {
      await holder.query('SELECT pg_advisory_unlock_all()');
      holder.release();
      await db.pool.query(
        'DROP TRIGGER IF EXISTS hold_ingestion ON slurm_jobs; DROP FUNCTION IF EXISTS hold_ingestion();',
      );
    }
    const { row, items } = await job4();
    expect(row).toEqual({ user: 'alice', totalCpuSec: '20.268' });
    expect(items).toEqual([
      { billed: ['0.005630', '0.000000', '0.000025'], fromRow: ['0.005630', '0.000000', '0.000025'] },
    ]);
    expect(await itemsUnlikeTheirRows()).toEqual([]);
  });
});
