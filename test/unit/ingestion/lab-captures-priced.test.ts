/**
 * Every job of the real Slurm 22.05 captures (fixtures/slurm/22.05/{final,live}, copied from
 * ../shared/slurm/captures), read through each shape the lab printed it in and priced by the pricing core,
 * as a Slurm administrator reads the same jobs in sacct: one row per allocation and per array task (keyed
 * by its display id, stored under its own JobIDRaw), CPU time from the steps, memory from AveRSS where a
 * step was sampled, GPUs from gres/gpu, and nothing billable until the job has ended.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSacctText } from '../../../src/modules/ingestion/sacct.parser.js';
import type { NormalizedJob, SourceItem } from '../../../src/modules/ingestion/slurm-job.model.js';
import { parseSlurmRestJobsResponse } from '../../../src/modules/ingestion/slurm-rest.parser.js';
import { computeResourceHours } from '../../../src/modules/pricing/pricing.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05');
const read = (name: string) => readFileSync(path.join(FIXTURES, name), 'utf8');

function jobsOf(items: SourceItem[]): Map<string, NormalizedJob> {
  expect(items.filter((item) => item.kind !== 'job')).toEqual([]);
  return new Map(items.flatMap((item) => (item.kind === 'job' ? [[item.job.jobKey, item.job] as const] : [])));
}

/** Each shape a capture directory holds a window's jobs in, read as the app reads it. */
function sourcesOf(dir: 'final' | 'live'): [string, Map<string, NormalizedJob>][] {
  const sacct = (file: string) =>
    jobsOf(parseSacctText(read(`${dir}/${file}`), { timeZone: 'UTC', defaultCluster: 'lab' }));
  const rest = (version: string) =>
    jobsOf(
      parseSlurmRestJobsResponse(JSON.parse(read(`${dir}/rest-db${version}-jobs.json`)), {
        version,
        defaultCluster: 'lab',
      }).items,
    );
  return [
    ['sacct-steps-extra.psv', sacct('sacct-steps-extra.psv')],
    ['sacct-steps.psv', sacct('sacct-steps.psv')],
    ['slurmrestd v0.0.36', rest('v0.0.36')],
    ['slurmrestd v0.0.37', rest('v0.0.37')],
    ['slurmrestd v0.0.38', rest('v0.0.38')],
  ];
}

// key, state, CPUs, memory MB and GPUs held (AllocTRES: job 2's --mem-per-cpu=300M on 2 CPUs holds 600 MB,
// job 5's gres/gpu:fake:1 one GPU), billable, CPU core-hours (used), CPU core-hours (allocated),
// memory GB-hours, GPU-hours. Job 9 hit its one-minute limit and is billed the 87 s it held its CPU.
// Memory: AveRSS x elapsed summed over the steps sampled; a job none of whose steps was sampled (job 3 ran
// 3 s, under JobAcctGatherFrequency=task=5: sacct prints AveRSS empty, slurmrestd no mem) is priced
// from its allocation, 100 MB for 3 s.
const FINAL: [string, string, number, number, number, boolean, string, string, string, string][] = [
  ['1', 'COMPLETED', 1, 200, 0, true, '0.000001', '0.005556', '0.000018', '0.000000'],
  ['2', 'COMPLETED', 2, 600, 0, true, '0.001581', '0.008889', '0.000482', '0.000000'],
  ['3', 'FAILED', 1, 100, 0, true, '0.000001', '0.000833', '0.000081', '0.000000'],
  ['4', 'COMPLETED', 2, 1024, 0, true, '0.002852', '0.006667', '0.000025', '0.000000'],
  ['5', 'COMPLETED', 1, 256, 1, true, '0.000001', '0.002778', '0.000009', '0.002778'],
  ['7', 'CANCELLED', 1, 100, 0, true, '0.000001', '0.002500', '0.000008', '0.000000'],
  ['9', 'TIMEOUT', 1, 100, 0, true, '0.000001', '0.024167', '0.000071', '0.000000'],
  ['6_1', 'COMPLETED', 1, 100, 0, true, '0.000001', '0.001389', '0.000004', '0.000000'],
  ['6_2', 'COMPLETED', 1, 100, 0, true, '0.000001', '0.001389', '0.000004', '0.000000'],
  ['6_3', 'COMPLETED', 1, 100, 0, true, '0.000001', '0.001389', '0.000004', '0.000000'],
  ['12', 'CANCELLED', 1, 300, 0, true, '0.000001', '0.022778', '0.000071', '0.000000'],
  ['13', 'COMPLETED', 2, 500, 0, true, '0.000001', '0.033333', '0.000052', '0.000000'],
];

function priced(job: NormalizedJob) {
  const used = computeResourceHours(job, 'used');
  const allocated = computeResourceHours(job, 'allocated');
  return [
    job.state,
    job.allocCpus,
    job.allocMemMb,
    job.allocGpus,
    job.isTerminal,
    used.cpuHours.toFixed(6),
    allocated.cpuHours.toFixed(6),
    used.memGbHours.toFixed(6),
    used.gpuHours.toFixed(6),
  ];
}

describe('the lab jobs after they ended (final/), every shape: read and priced as sacct accounts them', () => {
  const cases = sourcesOf('final').flatMap(([source, jobs]) =>
    FINAL.map(([key, ...expected]) => [source, key, expected, jobs] as const),
  );

  it.each(cases)('%s: job %s', (_source, key, expected, jobs) => {
    const job = jobs.get(key);
    expect(job).toBeDefined();
    expect(priced(job as NormalizedJob)).toEqual(expected);
  });

  it.each(sourcesOf('final'))('%s: every job of the window, once, under its display id', (_source, jobs) => {
    // Job 8 (held, then cancelled) is in no window query; an array task is a job of its own.
    expect([...jobs.keys()].sort()).toEqual(FINAL.map(([key]) => key).sort());
  });
});

describe('the lab jobs while 12 ran and 13 waited (live/): nothing billable until a job ends', () => {
  it.each(sourcesOf('live'))('%s', (_source, jobs) => {
    expect(jobs.get('12')).toMatchObject({ state: 'RUNNING', isTerminal: false, endAt: null });
    expect(jobs.get('13')).toMatchObject({ state: 'PENDING', isTerminal: false, startAt: null, endAt: null });
    // The running job's only step has not been sampled yet: no memory figure, not a measured 0.
    expect(jobs.get('12')?.stepMemGbHours).toBeNull();
    expect(jobs.get('13')).toMatchObject({ allocCpus: 0, allocMemMb: 0, stepCount: 0, stepMemGbHours: null });
  });
});
