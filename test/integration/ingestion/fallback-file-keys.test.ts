/**
 * A FALLBACK_CSV read beside slurmrestd or sacct must name its jobs as they do: with JobIDRaw (an array
 * task's own job id) and Cluster (or SLURM_CLUSTER). A file without them stored an array task under its
 * display id (6_1) and, with SLURM_CLUSTER unset, every job under the cluster "default"; the same jobs
 * read through sacct or slurmrestd were then stored beside them, and billed twice.
 */
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildSources } from '../../../src/modules/ingestion/ingestion.factory.js';
import { ingestWindowFinished } from '../../support/ingest-window.js';
import { buildTestConfig } from '../../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/slurm');
// sacct's own columns, without JobIDRaw and Cluster (the shared captures' bare file).
const BARE_FILE = path.join(FIXTURES, '22.05/final/sacct-steps.psv');
// The same jobs with JobIDRaw and Cluster.
const FULL_FILE = path.join(FIXTURES, '22.05/final/sacct-steps-extra.psv');
const WINDOW = { start: new Date('2026-11-23T15:00:00Z'), end: new Date('2026-11-23T16:00:00Z') };

let db: TestDatabase;
let dir: string;

function fakeSacct(mode: string): string {
  const link = path.join(dir, `sacct-${mode}`);
  if (!existsSync(link)) symlinkSync(path.join(FIXTURES, 'fake-sacct.mjs'), link);
  return link;
}

async function run(env: Record<string, string>, force = true) {
  const { sources, unconfigured } = buildSources(buildTestConfig(db.url, { APP_TZ: 'UTC', ...env }));
  return ingestWindowFinished(db, sources, WINDOW, { unconfigured, force });
}

async function storedKeys() {
  const { rows } = await db.pool.query<{ cluster: string; job_id: string; job_key: string }>(
    'SELECT cluster, job_id, job_key FROM slurm_jobs ORDER BY cluster, job_id',
  );
  return rows;
}

beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(path.join(os.tmpdir(), 'fallback-file-keys-'));
});
afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await db.pool.query('TRUNCATE slurm_jobs, ingestion_runs RESTART IDENTITY CASCADE');
});

describe('a fallback file without JobIDRaw or Cluster', () => {
  it('fails the run as a setting to fix, stores nothing, and a later sacct run stores each job once', async () => {
    const failed = await run({ SACCT_PATH: fakeSacct('fail'), FALLBACK_CSV: BARE_FILE });
    expect(failed.outcome).toBe('failed');
    expect(failed.error).toContain(
      `file: FALLBACK_CSV ${BARE_FILE} cannot stand in for slurmrestd and sacct: it has no JobIDRaw or Cluster column and SLURM_CLUSTER is unset`,
    );
    expect(await storedKeys()).toEqual([]);

    const answered = await run({ SACCT_PATH: fakeSacct('ok'), FALLBACK_CSV: BARE_FILE });
    expect(answered).toMatchObject({ outcome: 'success', source: 'sacct', inserted: 12 });
    const keys = await storedKeys();
    expect(keys).toHaveLength(12);
    expect(new Set(keys.map((key) => key.job_key)).size).toBe(12);
    expect(keys.filter((key) => key.job_key === '6_1')).toEqual([{ cluster: 'lab', job_id: '10', job_key: '6_1' }]);
    // The broken fallback is named while sacct answers, before the outage it is there for.
    expect(answered.sourceNotes?.file).toMatch(
      /^not tried \(sacct answered\), but would fail: FALLBACK_CSV .* cannot stand in for slurmrestd and sacct: it has no JobIDRaw or Cluster column/,
    );
  });

  // Found on an operator's walk: a file that had been the only source, then put behind a source added
  // in front of it, answered that source's outage as "file unchanged since run #N, nothing new", a
  // success, because an unchanged file is not read again; the refusal waited for the file's next export.
  it('is refused as unfit also while it is unchanged since a run that read it alone', async () => {
    const file = path.join(dir, 'bare-unchanged.psv');
    copyFileSync(BARE_FILE, file);
    // Written within the window, so the run that reads it covers it (readThrough) and the next finds it unchanged.
    utimesSync(file, new Date('2026-11-23T15:45:00Z'), new Date('2026-11-23T15:45:00Z'));
    const alone = await run({ FALLBACK_CSV: file }, false);
    expect(alone).toMatchObject({ outcome: 'success', source: 'file', inserted: 12 });

    const behindSacct = await run({ SACCT_PATH: fakeSacct('fail'), FALLBACK_CSV: file }, false);
    expect(behindSacct.outcome).toBe('failed');
    expect(behindSacct.error).toContain(
      `file: FALLBACK_CSV ${file} cannot stand in for slurmrestd and sacct: it has no JobIDRaw or Cluster column`,
    );
    expect(await storedKeys()).toHaveLength(12);
  });

  it('with SLURM_CLUSTER set, still needs JobIDRaw', async () => {
    const failed = await run({ SACCT_PATH: fakeSacct('fail'), FALLBACK_CSV: BARE_FILE, SLURM_CLUSTER: 'lab' });
    expect(failed.outcome).toBe('failed');
    expect(failed.error).toContain('it has no JobIDRaw column: ');
    expect(await storedKeys()).toEqual([]);
  });

  it('is read as before where it is the only source (the demo, a file alone)', async () => {
    const alone = await run({ FALLBACK_CSV: BARE_FILE });
    expect(alone).toMatchObject({ outcome: 'success', source: 'file', inserted: 12 });
  });

  it('a file with both columns stands in for sacct, and the jobs are the same rows', async () => {
    const fromFile = await run({ SACCT_PATH: fakeSacct('fail'), FALLBACK_CSV: FULL_FILE });
    expect(fromFile).toMatchObject({ outcome: 'success', source: 'file', inserted: 12 });
    expect(fromFile.sourceNotes?.file).toBe('answered');
    const fromSacct = await run({ SACCT_PATH: fakeSacct('ok'), FALLBACK_CSV: FULL_FILE });
    expect(fromSacct).toMatchObject({ outcome: 'success', source: 'sacct', inserted: 0 });
    // Checked, and fit to stand in: said so (it used to go unmentioned).
    expect(fromSacct.sourceNotes?.file).toBe('not tried (sacct answered), set-up checked: no problem found');
    expect(await storedKeys()).toHaveLength(12);
  });

  it('joined after a file with both columns (cat), has the lines under its header skipped, not stored twice', async () => {
    const joined = path.join(dir, 'joined.psv');
    writeFileSync(joined, readFileSync(FULL_FILE, 'utf8') + readFileSync(BARE_FILE, 'utf8'));
    const fromFile = await run({ SACCT_PATH: fakeSacct('fail'), FALLBACK_CSV: joined });
    expect(fromFile).toMatchObject({ outcome: 'partial', source: 'file', inserted: 12, skipped: 1 });
    expect(fromFile.sourceNotes?.skipped).toBe(
      '1 job(s) skipped, first: a record (line 29): a header row without the JobIDRaw and Cluster columns a record needs (two sacct outputs of different formats joined?): the 27 line(s) under it were skipped',
    );
    expect(await storedKeys()).toHaveLength(12);
  });
});
