/**
 * Job shapes recorded on the real Slurm 22.05 lab (test/fixtures/slurm/22.05/shapes/window.txt) for one
 * window, through the sacct source's own arguments and through /slurmdb/v0.0.36-38/jobs: heterogeneous
 * jobs (`sbatch ... : ...`, `#SBATCH hetjob`; run on two nodes, and cancelled before they started), salloc
 * without srun, with srun steps, with an interactive step (LaunchParameters=use_interactive_step) and
 * exiting 3, job arrays, a requeued job, `--mem-per-cpu` with GPUs (`--gres=gpu:fake:2`, `--gpus=1`). Each
 * job normalises to the same record from either source, and to what sacct printed.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSacctText } from '../../../src/modules/ingestion/sacct.parser.js';
import type { NormalizedJob, SourceItem } from '../../../src/modules/ingestion/slurm-job.model.js';
import { parseSlurmRestJobsResponse } from '../../../src/modules/ingestion/slurm-rest.parser.js';
import { computeResourceHours } from '../../../src/modules/pricing/pricing.js';

const SHAPES = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05/shapes');
const VERSIONS = ['v0.0.36', 'v0.0.37', 'v0.0.38'] as const;

function jobsOf(items: SourceItem[]): Map<string, NormalizedJob> {
  expect(items.filter((item) => item.kind !== 'job')).toEqual([]);
  return new Map(items.flatMap((item) => (item.kind === 'job' ? [[item.job.jobKey, item.job] as const] : [])));
}

const viaSacct = jobsOf(
  parseSacctText(readFileSync(path.join(SHAPES, 'sacct.psv'), 'utf8'), { timeZone: 'UTC', defaultCluster: 'x' }),
);
const viaRest = Object.fromEntries(
  VERSIONS.map((version) => [
    version,
    jobsOf(
      parseSlurmRestJobsResponse(JSON.parse(readFileSync(path.join(SHAPES, `rest-db${version}-jobs.json`), 'utf8')), {
        version,
        defaultCluster: 'x',
      }).items,
    ),
  ]),
) as Record<(typeof VERSIONS)[number], Map<string, NormalizedJob>>;

describe('lab shapes: one record from either source', () => {
  it('both sources hold the same 27 jobs', () => {
    expect(viaSacct.size).toBe(27);
    for (const version of VERSIONS) expect([...viaRest[version].keys()].sort()).toEqual([...viaSacct.keys()].sort());
  });

  it.each(VERSIONS.flatMap((version) => [...viaSacct.keys()].map((jobKey) => [version, jobKey] as const)))(
    '%s: job %s normalises as sacct reads it',
    (version, jobKey) => {
      const sacctJob = viaSacct.get(jobKey) as NormalizedJob;
      expect(viaRest[version].get(jobKey)).toEqual({ ...sacctJob, exitCode: null });
    },
  );
});

const steps = (jobKey: string) => viaSacct.get(jobKey)?.steps.map((step) => [step.id, step.totalCpuSec]);
/** The hours billed under the default `used` CPU basis, as stored (6 decimals). */
function hours(jobKey: string) {
  const { cpuHours, gpuHours, memGbHours } = computeResourceHours(viaSacct.get(jobKey) as NormalizedJob, 'used');
  return { cpuHours: cpuHours.toFixed(6), gpuHours: gpuHours.toFixed(6), memGbHours: memGbHours.toFixed(6) };
}

describe('lab shapes: what each is read and billed as', () => {
  it('a heterogeneous job that ran is one row a component, each with its own steps (sacct 24+1.0 is 25.0)', () => {
    expect(viaSacct.get('24+0')).toMatchObject({ jobId: '24', allocCpus: 1, allocMemMb: 200, totalCpuSec: 1.317 });
    expect(viaSacct.get('24+1')).toMatchObject({ jobId: '25', allocCpus: 1, allocMemMb: 300, totalCpuSec: 1.767 });
    expect(steps('24+0')).toEqual([
      ['batch', 0.03],
      ['0', 1.287],
    ]);
    expect(steps('24+1')).toEqual([
      ['0', 1.765],
      ['1', 0.002],
    ]);
  });

  it('a heterogeneous job cancelled before it started: each component at 0, its GPU request not billed', () => {
    expect(viaSacct.get('3+1')).toMatchObject({ state: 'CANCELLED', startAt: null, elapsedSec: 0, reqGpus: 1 });
    expect(hours('3+1')).toMatchObject({ cpuHours: '0.000000', gpuHours: '0.000000', memGbHours: '0.000000' });
  });

  it('salloc without srun: no step, TotalCPU 0 (a real zero), memory from the allocation', () => {
    expect(viaSacct.get('7')).toMatchObject({ stepCount: 0, totalCpuSec: 0, stepMemGbHours: null, elapsedSec: 6 });
    expect(hours('7')).toMatchObject({ cpuHours: '0.000000', memGbHours: '0.000163' });
  });

  it('salloc with srun steps and with an interactive step: each step counted once', () => {
    expect(steps('9')).toEqual([
      ['0', 2.315],
      ['1', 0.001],
    ]);
    expect(steps('23')).toEqual([
      ['interactive', 0.823],
      ['0', 0.002],
    ]);
    expect(viaSacct.get('8')).toMatchObject({ state: 'FAILED', exitCode: '3:0' });
  });

  it('--mem-per-cpu=300M -n 2 with --gres=gpu:fake:2, and --gpus=1: memory and GPUs as allocated', () => {
    expect(viaSacct.get('5')).toMatchObject({ allocCpus: 2, allocMemMb: 600, allocGpus: 2, elapsedSec: 4 });
    expect(viaSacct.get('6')).toMatchObject({ allocGpus: 1, reqGpus: 1 });
    expect(hours('5')).toMatchObject({ gpuHours: '0.002222' });
  });

  it('arrays: each task its own row keyed by its task; the requeued job its newest run alone', () => {
    expect([...viaSacct.keys()].filter((key) => key.includes('_')).sort()).toEqual([
      '10_1',
      '10_2',
      '10_3',
      '16_1',
      '16_2',
    ]);
    expect(viaSacct.get('10_3')).toMatchObject({ jobId: '10', arrayJobId: '10', arrayTaskId: '3' });
    expect(viaSacct.get('11')).toMatchObject({ state: 'COMPLETED', elapsedSec: 28, stepCount: 2 });
    expect(viaSacct.get('11')?.submitAt?.toISOString()).toBe('2026-12-06T07:22:20.000Z');
  });
});

/**
 * `scontrol requeue` of a job that had completed (22.05/requeue-after-completion/window.txt): slurmdbd rewrites the
 * finished run's record as REQUEUED with End the requeue time (job 21: 3 s that ran, 26 min 19 s as printed), and
 * the next run is a record of its own. Both sources read the REQUEUED record as not finished, never billed as it
 * stands (the run drops it: ingestion.service.ts, SUPERSEDED_RUN_STATE), and the next run as a job of its own.
 */
describe('lab shapes: a job requeued after it completed', () => {
  const AFTER = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05/requeue-after-completion');
  const runs = (items: SourceItem[]) =>
    items.flatMap((item) =>
      item.kind === 'job' && item.job.jobId === '21'
        ? [[item.job.state, item.job.isTerminal, item.job.elapsedSec, item.job.submitAt?.toISOString()]]
        : [],
    );
  const expected = [
    ['REQUEUED', false, 1579, '2026-12-06T07:27:49.000Z'],
    ['COMPLETED', true, 3, '2026-12-06T07:54:08.000Z'],
  ];

  it('by id through sacct and from slurmrestd: the rewritten run not finished, the next run finished', () => {
    const sacct = parseSacctText(readFileSync(path.join(AFTER, 'sacct-jobs.psv'), 'utf8'), {
      timeZone: 'UTC',
      defaultCluster: 'x',
    });
    expect(runs(sacct)).toEqual(expected);
    const rest = parseSlurmRestJobsResponse(
      JSON.parse(readFileSync(path.join(AFTER, 'rest-dbv0.0.38-jobs.json'), 'utf8')),
      { version: 'v0.0.38', defaultCluster: 'x' },
    ).items;
    expect(runs(rest)).toEqual(expected);
  });
});
