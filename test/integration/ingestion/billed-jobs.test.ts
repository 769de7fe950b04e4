/**
 * A job on a live receipt keeps the figures it was billed with: a later read of its window that finds
 * other figures in Slurm (late step records, a corrected accounting record) does not change them under
 * the receipt, and the run says so. A job not billed yet is updated as before.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createSacctFileSource } from '../../../src/modules/ingestion/sacct-file.source.js';
import { createMetrics } from '../../../src/modules/metrics/metrics.js';
import { createRatesService } from '../../../src/modules/pricing/rates.service.js';
import { createReceiptsService } from '../../../src/modules/receipts/receipts.service.js';
import { buildTiers } from '../../support/billing-factories.js';
import { ingestWindowFinished, labFileSource } from '../../support/ingest-window.js';
import { buildTestConfig } from '../../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

const CAPTURE = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05/final/sacct-steps-extra.psv');
const WINDOW = { start: new Date('2026-11-23T15:00:00Z'), end: new Date('2026-11-23T16:00:00Z') };
const NOW = new Date('2026-11-25T00:00:00Z');
const BILL_DAY = '2026-11-24';

let db: TestDatabase;
let dir: string;

beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(path.join(os.tmpdir(), 'billed-jobs-'));
  await buildTiers(db);
});
afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await db.pool.query('TRUNCATE receipt_items, receipts, slurm_jobs, ingestion_runs RESTART IDENTITY CASCADE');
});

/** Reads `text` as the sacct file for WINDOW (a new file each time, so it is never "unchanged"). */
async function ingestText(text: string, name: string, batchSize?: number) {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return ingestWindowFinished(db, labFileSource(file), WINDOW, {
    now: () => NOW,
    force: true,
    ...(batchSize === undefined ? {} : { batchSize }),
  });
}

function receipts() {
  const config = buildTestConfig(db.url, { APP_TZ: 'UTC' });
  const now = () => NOW;
  const rates = createRatesService({ db, config, now });
  return createReceiptsService({ db, config, rates, metrics: createMetrics(), now });
}

const row = async (jobId: string) =>
  (
    await db.pool.query(
      `SELECT total_cpu_sec::text, elapsed_sec, end_at, step_mem_gb_hours::text
         FROM slurm_jobs WHERE cluster = 'lab' AND job_id = $1`,
      [jobId],
    )
  ).rows[0];

// Job 4 (alice, billed below) and job 5 (bob, not billed) as Slurm later reports them: the batch
// step of each with 10 s more CPU time (a late or corrected accounting record). Job 1 (alice, billed)
// with another name, which billing does not read.
const ORIGINAL = readFileSync(CAPTURE, 'utf8');
const CORRECTED = ORIGINAL.replace(
  '|4.batch|batch|physics|||00:00:12|12|00:10.268|',
  '|4.batch|batch|physics|||00:00:12|12|00:20.268|',
)
  .replace('|5.batch|batch|chemistry|||00:00:10|10|00:00.003|', '|5.batch|batch|chemistry|||00:00:10|10|00:10.003|')
  .replace('alice|1|single-sleep|', 'alice|1|renamed|');

describe('a job on a live receipt', () => {
  it('keeps the figures it was billed with when Slurm later reports others, and the run says so', async () => {
    expect(CORRECTED).not.toBe(ORIGINAL);
    expect(await ingestText(ORIGINAL, 'first.psv')).toMatchObject({ outcome: 'success', inserted: 12 });
    const receipt = await receipts().createForUser({ username: 'alice' }, BILL_DAY, {
      actor: 'alice',
      ip: '127.0.0.1',
      userAgent: 'test',
    });
    expect(receipt).toBeTruthy();
    const billed = await db.pool.query(
      `SELECT ri.cpu_hours::text FROM receipt_items ri WHERE ri.cluster = 'lab' AND ri.job_key = '4' AND NOT ri.is_voided`,
    );
    expect(billed.rows).toEqual([{ cpu_hours: '0.002852' }]);

    const run = await ingestText(CORRECTED, 'second.psv');
    // Bob's job 5 is not billed: it takes the new figures. Alice's job 4 keeps what its receipt billed;
    // her job 1 takes its new name, which changes nothing billed.
    expect(run).toMatchObject({ outcome: 'success', inserted: 0, updated: 2 });
    expect((await db.pool.query(`SELECT name FROM slurm_jobs WHERE job_id = '1'`)).rows[0].name).toBe('renamed');
    expect(await row('5')).toMatchObject({ total_cpu_sec: '10.003' });
    expect(await row('4')).toMatchObject({ total_cpu_sec: '10.268' });
    expect(run.sourceNotes.billed).toMatch(
      /^1 job\(s\) on a live receipt .*first: job 4 of cluster lab on receipt #\d+/,
    );
    const stored = await db.pool.query(`SELECT source_notes->>'billed' AS billed FROM ingestion_runs WHERE id = $1`, [
      run.runId,
    ]);
    expect(stored.rows[0].billed).toBe(run.sourceNotes.billed);

    // Read again: the same answer is no news; nothing is updated and the note stays.
    const again = await ingestText(CORRECTED, 'third.psv');
    expect(again).toMatchObject({ inserted: 0, updated: 0, unchanged: 12 });
    expect(await row('4')).toMatchObject({ total_cpu_sec: '10.268' });
  });

  it('counts a billed job once in the note, whichever of its records in the run was refused', async () => {
    await ingestText(ORIGINAL, 'first.psv');
    await receipts().createForUser({ username: 'alice' }, BILL_DAY, {
      actor: 'alice',
      ip: '127.0.0.1',
      userAgent: 't',
    });
    // Two slices of a window (sacct's days; here two exports joined, written in batches of 5): job 4's
    // first record has the billed figures, its second other ones, which are refused. The note counted a
    // job only by its first record, and said nothing.
    const [, ...corrected] = CORRECTED.trimEnd().split('\n');
    const twice = `${ORIGINAL}${corrected.join('\n')}\n`;
    const run = await ingestText(twice, 'twice.psv', 5);
    expect(run.sourceNotes.billed).toMatch(
      /^1 job\(s\) on a live receipt .*first: job 4 of cluster lab on receipt #\d+/,
    );
    expect(await row('4')).toMatchObject({ total_cpu_sec: '10.268' });
    // Refused in both slices, it is still one job.
    const both = `${CORRECTED}${corrected.join('\n')}\n`;
    const again = await ingestText(both, 'both.psv', 5);
    expect(again.sourceNotes.billed).toMatch(/^1 job\(s\) on a live receipt /);
  });

  it('takes the new figures once its receipt is voided', async () => {
    await ingestText(ORIGINAL, 'first.psv');
    await receipts().createForUser({ username: 'alice' }, BILL_DAY, {
      actor: 'alice',
      ip: '127.0.0.1',
      userAgent: 't',
    });
    await db.pool.query('UPDATE receipt_items SET is_voided = true');
    const run = await ingestText(CORRECTED, 'second.psv');
    expect(run).toMatchObject({ updated: 3 });
    expect(run.sourceNotes.billed).toBeUndefined();
    expect(await row('4')).toMatchObject({ total_cpu_sec: '20.268' });
  });
});

describe('a billed job read in another zone, then in its own again', () => {
  it('stays one job: it is not stored, and billed, a second time', async () => {
    // A day wide enough for the file's jobs read in UTC (about 15:40) and as Bangkok's (7 hours earlier).
    const day = { start: new Date('2026-11-23T00:00:00Z'), end: new Date('2026-11-24T00:00:00Z') };
    const read = (timeZone: string, name: string) => {
      const file = path.join(dir, name);
      writeFileSync(file, ORIGINAL);
      const source = createSacctFileSource({ path: file, timeZone, defaultCluster: 'lab' });
      return ingestWindowFinished(db, source, day, { now: () => NOW, force: true });
    };
    expect(await read('UTC', 'utc.psv')).toMatchObject({ inserted: 12 });
    await receipts().createForUser({ username: 'alice' }, BILL_DAY, {
      actor: 'alice',
      ip: '127.0.0.1',
      userAgent: 't',
    });
    // APP_TZ set to Asia/Bangkok for a while (the file still written in UTC): alice's billed jobs keep
    // their times. Their rows took the record's submit time all the same, so the next read in the
    // file's own zone found a row whose submit was 7 hours off and start and end were not, took it for
    // another job that reused the id, and stored each a second time (`4@20261123T…Z`), to be billed again.
    await read('Asia/Bangkok', 'bangkok.psv');
    const back = await read('UTC', 'utc-again.psv');
    expect(back).toMatchObject({ inserted: 0 });
    expect(await db.prisma.slurmJob.count()).toBe(12);
    const unbilled = await db.pool.query(
      `SELECT j.job_key FROM slurm_jobs j WHERE j."user" = 'alice'
          AND NOT EXISTS (SELECT 1 FROM receipt_items ri WHERE ri.cluster = j.cluster AND ri.job_key = j.job_key)`,
    );
    expect(unbilled.rows).toEqual([]);
  });
});
