/**
 * Real Slurm 22.05 jobs of shapes a centre sees and the parsers once mishandled, recorded on the
 * lab (test/fixtures/slurm/22.05/<case>/), ingested through every source into a real database.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createIngestionService } from '../../../src/modules/ingestion/ingestion.service.js';
import type { JobSource } from '../../../src/modules/ingestion/job-source.js';
import { createSacctSource } from '../../../src/modules/ingestion/sacct.source.js';
import { createSacctFileSource } from '../../../src/modules/ingestion/sacct-file.source.js';
import { parseSlurmRestJobsResponse } from '../../../src/modules/ingestion/slurm-rest.parser.js';
import { createMetrics } from '../../../src/modules/metrics/metrics.js';
import { createLogger } from '../../../src/shared/logger.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

const CAPTURES = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05');
const FAKE_SACCT = path.resolve(import.meta.dirname, '../../fixtures/slurm/fake-sacct.mjs');

let db: TestDatabase;
let dir: string;

beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(path.join(os.tmpdir(), 'odd-jobs-'));
});
afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await db.pool.query('TRUNCATE slurm_jobs, ingestion_runs RESTART IDENTITY');
});

function ingest(source: JobSource, window: { start: Date; end: Date }) {
  return createIngestionService({
    db,
    sources: [source],
    unconfigured: {},
    logger: createLogger('silent'),
    metrics: createMetrics(),
    overlapSec: 0,
    initialLookbackSec: 3600,
  }).runOnce({ trigger: 'manual', window });
}

/** The fake sacct under a name that picks its behaviour (see the script's header). */
function fakeSacct(mode: string): string {
  const link = path.join(dir, `sacct-${mode}`);
  if (!existsSync(link)) symlinkSync(FAKE_SACCT, link);
  return link;
}

const storedJobs = async () =>
  (
    await db.pool.query(
      `SELECT job_id, job_key, name, "user", account, state, is_terminal, elapsed_sec, alloc_cpus,
              alloc_mem_mb::text, cpu_time_sec::text, total_cpu_sec::text, step_count
         FROM slurm_jobs ORDER BY job_id`,
    )
  ).rows;

describe('a job named with a `|` (sbatch -J "a|b"), which sacct --parsable2 prints unescaped', () => {
  // Job 16 of the lab, 22:45:08-22:45:09 UTC; sacct.psv is what the sacct source's own arguments printed.
  const window = { start: new Date('2026-12-03T22:45:08Z'), end: new Date('2026-12-03T22:45:10Z') };
  const expected = {
    job_id: '16',
    job_key: '16',
    name: 'a|b',
    user: 'bob',
    account: 'physics',
    state: 'COMPLETED',
    is_terminal: true,
    elapsed_sec: 1,
    alloc_cpus: 1,
    alloc_mem_mb: '50.000',
    cpu_time_sec: '1',
    total_cpu_sec: '0.010',
    step_count: 1,
  };

  it('slurmrestd gives it whole', () => {
    const body = JSON.parse(readFileSync(path.join(CAPTURES, 'pipe-in-name/rest-dbv0.0.38-jobs.json'), 'utf8'));
    const { items } = parseSlurmRestJobsResponse(body, { version: 'v0.0.38', defaultCluster: 'lab' });
    expect(items).toMatchObject([{ kind: 'job', job: { jobId: '16', name: 'a|b', state: 'COMPLETED' } }]);
  });

  it.each([
    [
      'sacct',
      () =>
        createSacctSource({
          sacctPath: fakeSacct('pipe-in-name'),
          timeZone: 'UTC',
          cluster: undefined,
          defaultCluster: 'lab',
          timeoutMs: 10_000,
        }),
    ],
    [
      'file',
      () =>
        createSacctFileSource({
          path: path.join(CAPTURES, 'pipe-in-name/sacct.psv'),
          timeZone: 'UTC',
          defaultCluster: 'lab',
        }),
    ],
  ])(
    'through %s it is stored, billable, as slurmrestd gives it (it used to be skipped, never billed)',
    async (name, build) => {
      const result = await ingest(build(), window);
      expect(result).toMatchObject({
        status: 'finished',
        run: { outcome: 'success', source: name, seen: 1, skipped: 0 },
      });
      expect(await storedJobs()).toEqual([expected]);
    },
  );
});
