/**
 * slurmdbd returns with a job only the steps that overlap the window asked, so a read of a long job's
 * last window lacks the steps that ended before it. The steps earlier reads of the same run stored are
 * kept (keepEarlierSteps), and the job's step figures folded from the merged set.
 */
import { describe, expect, it } from 'vitest';
import { isSameRun } from '../../../src/modules/ingestion/reused-job-id.js';
import {
  foldSteps,
  keepEarlierSteps,
  keepStepsOfEarlierReads,
  type NormalizedJob,
  type NormalizedStep,
  readStoredSteps,
  type StoredRun,
} from '../../../src/modules/ingestion/slurm-job.model.js';

const GIB = 1024 ** 3;
const step = (id: string, totalCpuSec: number, aveRssGib: number | null, elapsedSec = 3600): NormalizedStep => ({
  id,
  name: id,
  state: 'COMPLETED',
  elapsedSec,
  totalCpuSec,
  aveRssBytes: aveRssGib === null ? null : aveRssGib * GIB,
  maxRssBytes: aveRssGib === null ? null : aveRssGib * GIB,
  energyJoules: null,
});
const SUBMIT = new Date('2026-12-06T04:47:30Z');
const job = (steps: NormalizedStep[], values: Partial<NormalizedJob> = {}): NormalizedJob =>
  foldSteps(
    {
      cluster: 'lab',
      jobId: '2',
      jobKey: '2',
      arrayJobId: null,
      arrayTaskId: null,
      name: 'wrap',
      user: 'alice',
      account: 'physics',
      partition: 'debug',
      qos: 'normal',
      state: 'COMPLETED',
      isTerminal: true,
      exitCode: '0:0',
      submitAt: SUBMIT,
      startAt: SUBMIT,
      endAt: new Date('2026-12-06T07:47:30Z'),
      elapsedSec: 10_800,
      timelimitSec: null,
      allocCpus: 1,
      allocMemMb: 1024,
      allocGpus: 0,
      allocNodes: 1,
      allocBilling: 1,
      reqCpus: 1,
      reqMemMb: 1024,
      reqGpus: 0,
      allocTres: 'billing=1,cpu=1,mem=1G,node=1',
      reqTres: '',
      cpuTimeSec: 10_800,
      totalCpuSec: 0,
      stepMemGbHours: null,
      maxRssBytes: null,
      energyJoules: null,
      stepCount: 0,
      steps: [],
      nodeList: 'vm',
      ...values,
    },
    steps,
  );
const figures = (folded: NormalizedJob) => ({
  steps: folded.steps.map((s) => s.id),
  stepCount: folded.stepCount,
  totalCpuSec: folded.totalCpuSec,
  stepMemGbHours: folded.stepMemGbHours,
  maxRssBytes: folded.maxRssBytes,
});

describe('keepEarlierSteps', () => {
  it.each([
    [
      'the last window lacks step 0, ended hours before (the lab: 2.0 missing from -S after its end)',
      [step('batch', 1, 1), step('1', 3000, 2)],
      [step('batch', 0.5, 1), step('0', 3500, 4), step('1', 100, 2)],
      { steps: ['batch', '0', '1'], stepCount: 3, totalCpuSec: 6501, stepMemGbHours: '7.000000', maxRssBytes: 4 * GIB },
    ],
    [
      'the read has every earlier step: returned as read (its versions, its order)',
      [step('1', 3000, 2), step('batch', 1, 1), step('0', 3500, 4)],
      [step('batch', 0.5, 1), step('0', 10, 4)],
      { steps: ['1', 'batch', '0'], stepCount: 3, totalCpuSec: 6501, stepMemGbHours: '7.000000', maxRssBytes: 4 * GIB },
    ],
    [
      'nothing stored earlier',
      [step('batch', 1, null)],
      [],
      { steps: ['batch'], stepCount: 1, totalCpuSec: 1, stepMemGbHours: null, maxRssBytes: null },
    ],
    [
      'a read without any step (an allocations-only read) keeps the earlier ones',
      [],
      [step('batch', 2, null), step('0', 40, 1)],
      { steps: ['batch', '0'], stepCount: 2, totalCpuSec: 42, stepMemGbHours: '1.000000', maxRssBytes: GIB },
    ],
    [
      'the read version of a step read running before wins; steps new to the read come after the earlier ones',
      [step('2', 7, null), step('0', 90, 1)],
      [step('batch', 1, null), step('0', 5, null)],
      { steps: ['batch', '0', '2'], stepCount: 3, totalCpuSec: 98, stepMemGbHours: '1.000000', maxRssBytes: GIB },
    ],
  ])('%s', (_case, read, earlier, expected) => {
    expect(figures(keepEarlierSteps(job(read), earlier))).toEqual(expected);
  });

  it('a read whose steps carry no CPU time (sacct output without a TotalCPU column) keeps it unknown', () => {
    // The parser leaves such a job's totalCpuSec null, for pricing to fall back to CPUTimeRAW; refolded
    // with the earlier steps it became their zeros summed, and the job was billed no CPU.
    const read = { ...job([step('1', 0, null)]), totalCpuSec: null };
    expect(figures(keepEarlierSteps(read, [step('batch', 0, null), step('1', 0, null)]))).toEqual({
      steps: ['batch', '1'],
      stepCount: 2,
      totalCpuSec: null,
      stepMemGbHours: null,
      maxRssBytes: null,
    });
  });

  it('returns the very record when nothing is missing (no copy, nothing refolded)', () => {
    const read = job([step('batch', 1, 1)]);
    expect(keepEarlierSteps(read, [step('batch', 9, 9)])).toBe(read);
  });
});

describe('readStoredSteps', () => {
  const stored = step('0', 12.5, 1);
  it.each<[string, unknown, NormalizedStep[] | null]>([
    ['steps as the upsert writes them', [stored], [stored]],
    ['no steps', [], []],
    ['not an array (null, an object)', null, null],
    ['an object', { id: '0' }, null],
    ['a step without an id', [{ ...stored, id: 0 }], null],
    ['a step whose CPU time is text', [{ ...stored, totalCpuSec: '12.5' }], null],
    ['a step whose AveRSS is text', [{ ...stored, aveRssBytes: '1G' }], null],
    ['a step that is null', [null], null],
  ])('%s', (_case, value, expected) => {
    expect(readStoredSteps(value)).toEqual(expected);
  });

  it('keeps only the fields of a step, whatever else the row has', () => {
    expect(readStoredSteps([{ ...stored, extra: 'x' }])).toEqual([stored]);
  });
});

describe('isSameRun', () => {
  const at = (iso: string) => new Date(iso);
  it.each([
    ['the same submit time', { submitAt: SUBMIT }, { submitAt: SUBMIT }, true],
    ['an hour off (sacct in the repeated hour)', { submitAt: at('2026-12-06T03:47:30Z') }, { submitAt: SUBMIT }, true],
    // A requeued job's next run is submitted anew: its earlier run's steps are not billed.
    ['a later submit time (a requeued run)', { submitAt: at('2026-12-06T04:40:00Z') }, { submitAt: SUBMIT }, false],
    ['no stored submit time', { submitAt: null }, { submitAt: SUBMIT }, false],
    ['no submit time read', { submitAt: SUBMIT }, { submitAt: null }, false],
  ])('%s: %s', (_case, stored, record, expected) => {
    const times = { startAt: null, endAt: null, state: 'COMPLETED' };
    expect(isSameRun({ ...times, ...stored }, { ...times, ...record })).toBe(expected);
  });
});

describe('keepStepsOfEarlierReads', () => {
  const row = (values: Partial<StoredRun>): StoredRun => ({ cluster: 'lab', jobId: '2', submitAt: SUBMIT, ...values });
  const STORED = [step('batch', 1, null), step('0', 3500, 4)];
  it.each<[string, StoredRun[], number]>([
    ['the stored row of the same run', [row({ steps: STORED })], 6501],
    ['a requeued run before this one', [row({ steps: STORED, submitAt: new Date('2026-12-06T04:00:00Z') })], 3001],
    ['another cluster', [row({ steps: STORED, cluster: 'other' })], 3001],
    ['another job id', [row({ steps: STORED, jobId: '2@20261206T040000Z' })], 3001],
    ['the row found by key alone (no steps)', [row({})], 3001],
    ['the row by id, then by key (no steps)', [row({ steps: STORED }), row({})], 6501],
    ['steps not in the stored shape', [row({ steps: [{ id: 0 }] })], 3001],
  ])('%s', (_case, stored, totalCpuSec) => {
    const [merged] = keepStepsOfEarlierReads([job([step('batch', 1, null), step('1', 3000, 2)])], stored, isSameRun);
    expect(merged?.totalCpuSec).toBe(totalCpuSec);
  });

  it("keeps a batch's earlier record of the job (two slices of a window), so the one written has both", () => {
    const slices = [
      job([step('batch', 1, null), step('0', 3500, 4)]),
      job([step('batch', 2, null), step('1', 3000, 2)]),
    ];
    const merged = keepStepsOfEarlierReads(slices, [], isSameRun);
    expect(figures(merged[1] as NormalizedJob)).toEqual({
      steps: ['batch', '0', '1'],
      stepCount: 3,
      totalCpuSec: 6502,
      stepMemGbHours: '6.000000',
      maxRssBytes: 4 * GIB,
    });
  });
});
