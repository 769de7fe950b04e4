/**
 * The same jobs read from sacct and from slurmrestd must normalise to the same record, field for
 * field: the store compares every column, so any difference rewrites the job each time the source
 * switches (slurmrestd down -> sacct fallback -> back). The captures in fixtures/slurm/22.05/switch
 * were recorded on the real Slurm 22.05 lab for one window, through the sacct source's own
 * arguments (--noconvert) and through /slurmdb/v0.0.36-38/jobs.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSacctText } from '../../../src/modules/ingestion/sacct.parser.js';
import type { NormalizedJob, SourceItem } from '../../../src/modules/ingestion/slurm-job.model.js';
import { parseSlurmRestJobsResponse } from '../../../src/modules/ingestion/slurm-rest.parser.js';
import { formatTresText, parseTres } from '../../../src/modules/ingestion/slurm-time.parser.js';

const SWITCH = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05/switch');
const VERSIONS = ['v0.0.36', 'v0.0.37', 'v0.0.38'] as const;

function jobsOf(items: SourceItem[]): Map<string, NormalizedJob> {
  expect(items.filter((item) => item.kind !== 'job')).toEqual([]);
  return new Map(items.flatMap((item) => (item.kind === 'job' ? [[item.job.jobKey, item.job] as const] : [])));
}

const viaSacct = jobsOf(
  parseSacctText(readFileSync(path.join(SWITCH, 'sacct.psv'), 'utf8'), { timeZone: 'UTC', defaultCluster: 'x' }),
);
const viaRest = Object.fromEntries(
  VERSIONS.map((version) => [
    version,
    jobsOf(
      parseSlurmRestJobsResponse(JSON.parse(readFileSync(path.join(SWITCH, `rest-db${version}-jobs.json`), 'utf8')), {
        version,
        defaultCluster: 'x',
      }).items,
    ),
  ]),
) as Record<(typeof VERSIONS)[number], Map<string, NormalizedJob>>;

const cases = VERSIONS.flatMap((version) => [...viaSacct.keys()].map((jobKey) => [version, jobKey] as const));

describe('one job, either source: the same stored record', () => {
  it('the captures hold the same 23 jobs from both sources, the shapes that differed among them', () => {
    expect(viaSacct.size).toBe(23);
    for (const version of VERSIONS) expect([...viaRest[version].keys()].sort()).toEqual([...viaSacct.keys()].sort());
    // A failed job (sacct ExitCode 1:0, slurmrestd 22.05 "SUCCESS") and --mem=1G (sacct --noconvert: 1024M).
    expect(viaSacct.get('2')?.state).toBe('FAILED');
    expect(readFileSync(path.join(SWITCH, 'sacct.psv'), 'utf8')).toContain('mem=1024M');
  });

  // Every field but the exit code, which 22.05's slurmrestd cannot give: it reads null, and the
  // store keeps sacct's (test/integration/ingestion/ingestion.service.test.ts, "switching the source").
  it.each(cases)('%s: job %s normalises as sacct reads it', (version, jobKey) => {
    const sacctJob = viaSacct.get(jobKey) as NormalizedJob;
    expect(sacctJob.exitCode).toMatch(/^\d+:\d+$/);
    expect(viaRest[version].get(jobKey)).toEqual({ ...sacctJob, exitCode: null });
  });

  it('a failed job keeps its exit code from sacct; 22.05 slurmrestd says none rather than its "SUCCESS"', () => {
    expect(viaSacct.get('2')).toMatchObject({ state: 'FAILED', exitCode: '1:0' });
    for (const version of VERSIONS)
      expect(viaRest[version].get('2')).toMatchObject({ state: 'FAILED', exitCode: null });
  });

  it.each([
    ['--mem=1G', '3', { allocTres: 'billing=2,cpu=2,mem=1G,node=1', reqTres: 'billing=2,cpu=2,mem=1G,node=1' }],
  ])('%s (job %s) is stored as %o from either source', (_label, jobKey, expected) => {
    expect(viaSacct.get(jobKey)).toMatchObject(expected);
    for (const version of VERSIONS) expect(viaRest[version].get(jobKey)).toMatchObject(expected);
  });
});

describe('formatTresText: one spelling of a TRES list', () => {
  it.each([
    ['billing=2,cpu=2,mem=1024M,node=1', 'billing=2,cpu=2,mem=1G,node=1'],
    ['billing=2,cpu=2,mem=1G,node=1', 'billing=2,cpu=2,mem=1G,node=1'],
    ['cpu=1,mem=1536M', 'cpu=1,mem=1536M'],
    ['cpu=1,mem=1.50G', 'cpu=1,mem=1536M'],
    ['cpu=1,mem=1048576M', 'cpu=1,mem=1T'],
    ['cpu=1,mem=1024', 'cpu=1,mem=1G'],
    ['mem=200M,cpu=1,gres/gpu=1,gres/gpu:fake=1', 'cpu=1,gres/gpu:fake=1,gres/gpu=1,mem=200M'],
    ['cpu=1,energy=42,mem=100M', 'cpu=1,mem=100M'],
    ['', ''],
  ])('%j -> %j', (text, canonical) => {
    expect(formatTresText(parseTres(text))).toBe(canonical);
  });
});

// Recorded on the lab (fixtures/slurm/22.05/het-step): job 53 ran `srun -n1 sleep 3 : -n1 sleep 3`, a
// heterogeneous step, which sacct prints as `53.0+0` and 22.05's slurmrestd as step 0 with
// `step.het.component` 0. sacct's row was skipped as "not a Slurm job id", so the job lost that step's
// usage, differed from slurmrestd's record (rewritten at each switch of source) and every run was partial.
describe('a heterogeneous step (srun ... : ...), either source', () => {
  const HET_STEP = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05/het-step');
  const sacctItems = parseSacctText(readFileSync(path.join(HET_STEP, 'sacct.psv'), 'utf8'), {
    timeZone: 'UTC',
    defaultCluster: 'x',
  });

  it('is read by sacct as a step of its job, not skipped', () => {
    expect(sacctItems.filter((item) => item.kind === 'skip')).toEqual([]);
    const job = jobsOf(sacctItems).get('53');
    expect(job?.steps.map((step) => step.id)).toEqual(['batch', '0+0']);
    expect(job?.stepCount).toBe(2);
  });

  it.each(VERSIONS)('%s: gives the same record as sacct', (version) => {
    const rest = jobsOf(
      parseSlurmRestJobsResponse(JSON.parse(readFileSync(path.join(HET_STEP, `rest-db${version}-jobs.json`), 'utf8')), {
        version,
        defaultCluster: 'x',
      }).items,
    );
    const sacct = jobsOf(sacctItems);
    expect([...rest.keys()].sort()).toEqual(['52', '53']);
    for (const [key, job] of sacct) expect(rest.get(key)).toEqual({ ...job, exitCode: null });
  });
});
