/**
 * A job held (`sbatch -H`) and cancelled before it ran, as the lab's Slurm 22.05 printed it for the sacct
 * source's own arguments (test/fixtures/slurm/22.05/held-cancelled): CANCELLED, Start = End = the cancel,
 * Elapsed 0, nothing allocated. It is stored, not refused (the run is a success), as finished, and a
 * receipt bills it nothing; the job that ran beside it is billed as usual.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../../src/modules/metrics/metrics.js';
import { createRatesService } from '../../../src/modules/pricing/rates.service.js';
import { createReceiptsService } from '../../../src/modules/receipts/receipts.service.js';
import { buildTiers } from '../../support/billing-factories.js';
import { ingestWindowFinished, labFileSource } from '../../support/ingest-window.js';
import { buildTestConfig } from '../../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

const CAPTURE = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05/held-cancelled/sacct.psv');
const WINDOW = { start: new Date('2026-12-05T19:00:00Z'), end: new Date('2026-12-05T19:05:00Z') };
const NOW = new Date('2026-12-07T00:00:00Z');
const BILL_DAY = '2026-12-06';
const actor = { actor: 'admin', ip: '127.0.0.1', userAgent: 'test' };

let db: TestDatabase;
let dir: string;

beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(path.join(os.tmpdir(), 'held-cancelled-'));
  await buildTiers(db);
});
afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

async function ingest(text: string) {
  const file = path.join(dir, 'sacct.psv');
  writeFileSync(file, text);
  return ingestWindowFinished(db, labFileSource(file), WINDOW, { now: () => NOW, force: true });
}

function receipts() {
  const config = buildTestConfig(db.url, { APP_TZ: 'UTC' });
  const now = () => NOW;
  return createReceiptsService({
    db,
    config,
    rates: createRatesService({ db, config, now }),
    metrics: createMetrics(),
    now,
  });
}

const billedItems = async (username: string) =>
  (
    await db.pool.query(
      `SELECT ri.job_key, ri.cpu_hours::text, ri.gpu_hours::text, ri.mem_gb_hours::text, ri.cost::text
         FROM receipt_items ri JOIN receipts r ON r.id = ri.receipt_id
        WHERE r.username = $1 AND NOT ri.is_voided ORDER BY ri.job_key`,
      [username],
    )
  ).rows;

describe('a job held and then cancelled before it ran', () => {
  it('is stored as finished, not refused, and billed nothing; the job beside it is billed', async () => {
    const run = await ingest(readFileSync(CAPTURE, 'utf8'));
    expect(run).toMatchObject({ outcome: 'success', seen: 2, inserted: 2, skipped: 0 });
    const stored = await db.pool.query(
      `SELECT job_id, "user", state, is_terminal, elapsed_sec, alloc_cpus, start_at, end_at
         FROM slurm_jobs WHERE cluster = 'lab' ORDER BY job_id`,
    );
    expect(stored.rows).toEqual([
      {
        job_id: '1',
        user: 'alice',
        state: 'CANCELLED',
        is_terminal: true,
        elapsed_sec: 0,
        alloc_cpus: 0,
        start_at: new Date('2026-12-05T19:01:40Z'),
        end_at: new Date('2026-12-05T19:01:40Z'),
      },
      expect.objectContaining({ job_id: '2', user: 'bob', state: 'COMPLETED', is_terminal: true, elapsed_sec: 2 }),
    ]);

    await receipts().createForUser({ username: 'alice' }, BILL_DAY, actor);
    // On her receipt it is an item of no hours of anything, costing nothing.
    expect(await billedItems('alice')).toEqual([
      { job_key: '1', cpu_hours: '0.000000', gpu_hours: '0.000000', mem_gb_hours: '0.000000', cost: '0.0000' },
    ]);
    await receipts().createForUser({ username: 'bob' }, BILL_DAY, actor);
    const [bob] = await billedItems('bob');
    expect(bob).toMatchObject({ job_key: '2' });
    expect(Number(bob?.cpu_hours)).toBeGreaterThan(0);
  });
});
