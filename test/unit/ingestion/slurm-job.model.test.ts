import { Prisma } from '@prisma/client';
import { describe, expect, it } from 'vitest';
import {
  findStorageProblem,
  findTimeProblem,
  foldSteps,
  type NormalizedJob,
  type NormalizedStep,
} from '../../../src/modules/ingestion/slurm-job.model.js';
import { parseMemoryBytes } from '../../../src/modules/ingestion/slurm-time.parser.js';
import { computeResourceHours, priceJob } from '../../../src/modules/pricing/pricing.js';

const at = (text: string | null) => (text === null ? null : new Date(text));

describe('findTimeProblem', () => {
  it.each([
    ['ended after it started', '2026-11-20T05:00:00Z', '2026-11-20T06:00:00Z', null],
    ['ended the second it started (cancelled while pending)', '2026-11-20T05:00:00Z', '2026-11-20T05:00:00Z', null],
    ['is still running', '2026-11-20T05:00:00Z', null, null],
    ['never started', null, '2026-11-20T05:00:00Z', null],
    [
      'ended before it started',
      '2026-11-20T05:00:00Z',
      '2026-11-20T02:00:00Z',
      'End 2026-11-20 09:00:00 (Asia/Bangkok) is before Start 2026-11-20 12:00:00 (Asia/Bangkok)',
    ],
    [
      'ended a second before it started',
      '2026-11-20T05:00:00Z',
      '2026-11-20T04:59:59Z',
      'End 2026-11-20 11:59:59 (Asia/Bangkok) is before Start 2026-11-20 12:00:00 (Asia/Bangkok)',
    ],
  ])('a job that %s (times named in APP_TZ, as pages give them)', (_label, start, end, problem) => {
    expect(findTimeProblem({ startAt: at(start), endAt: at(end) }, 'Asia/Bangkok')).toBe(problem);
  });
});

const job = (values: Partial<NormalizedJob>): NormalizedJob => ({
  cluster: 'lab',
  jobId: '1',
  jobKey: '1',
  arrayJobId: null,
  arrayTaskId: null,
  name: 'job',
  user: 'ann',
  account: 'physics',
  partition: 'debug',
  qos: 'normal',
  state: 'COMPLETED',
  isTerminal: true,
  exitCode: '0:0',
  submitAt: null,
  startAt: null,
  endAt: null,
  elapsedSec: 0,
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
  cpuTimeSec: 0,
  totalCpuSec: 0,
  stepMemGbHours: '0.000000',
  maxRssBytes: null,
  energyJoules: null,
  stepCount: 0,
  steps: [],
  nodeList: '',
  ...values,
});

describe('findStorageProblem: each number against its own column', () => {
  it.each([
    // alloc_billing is numeric(18, 4): below 10^14. Between 10^14 and 10^15 it was let through, and the
    // database refused the whole batch.
    ['allocBilling', 99_999_999_999_999.98, null],
    [
      'allocBilling',
      1e14,
      'allocBilling is out of range (0 to below 100000000000000, numeric(18, 4)): 100000000000000',
    ],
    [
      'allocBilling',
      5e14,
      'allocBilling is out of range (0 to below 100000000000000, numeric(18, 4)): 500000000000000',
    ],
    ['allocBilling', -1, 'allocBilling is out of range (0 to below 100000000000000, numeric(18, 4)): -1'],
    ['allocBilling', null, null],
    // numeric(18, 3): below 10^15, once rounded to 3 decimals as it is written.
    ['allocMemMb', 999_999_999_999_999, null],
    ['allocMemMb', 1e15, 'allocMemMb is out of range (0 to below 1000000000000000, numeric(18, 3)): 1000000000000000'],
    ['reqMemMb', Number.NaN, 'reqMemMb is out of range (0 to below 1000000000000000, numeric(18, 3)): NaN'],
    // numeric(18, 6): below 10^12.
    ['stepMemGbHours', '999999999.999999', null],
    [
      'stepMemGbHours',
      '1000000000000.000000',
      'stepMemGbHours is out of range (0 to below 1000000000000, numeric(18, 6)): 1000000000000.000000',
    ],
    // bigint columns keep the bound beyond any real value.
    ['cpuTimeSec', 1e15, 'cpuTimeSec is out of range (0 to below 1000000000000000, bigint): 1000000000000000'],
    ['maxRssBytes', 1e14, null],
  ] as const)('%s = %s', (field, value, problem) => {
    expect(findStorageProblem(job({ [field]: value }))).toBe(problem);
  });
});

const D = (value: string) => new Prisma.Decimal(value);

/** A step as the parsers read it: AveRSS as sacct prints it (`1234567K`, or bytes with --noconvert). */
const step = (id: string, aveRss: string, elapsedSec: number): NormalizedStep => ({
  id,
  name: id,
  state: 'COMPLETED',
  elapsedSec,
  totalCpuSec: 0,
  aveRssBytes: parseMemoryBytes(aveRss),
  maxRssBytes: null,
  energyJoules: null,
});

// The exact figure: sum of AveRSS bytes x seconds / (2^30 x 3600), rounded half-up to 6 decimals
// (worked out in whole numbers, outside this code). Summed as floats, a sum on a half millionth
// was rounded down: memory was stored, and billed, a millionth of a GB-hour short.
describe('foldSteps: memory GB-hours summed exactly', () => {
  it.each([
    [
      'job 2 recorded on the lab (final/sacct-steps-extra.psv)',
      [step('batch', '12284K', 16), step('0', '0', 0), step('1', '6238K', 6), step('2', '158612K', 10)],
      '0.000482',
    ],
    ['job 11 recorded with --noconvert (switch/sacct.psv)', [step('batch', '4976640', 10)], '0.000013'],
    ['AveRSS 1234567K for an hour', [step('batch', '1234567K', 3600)], '1.177375'],
    ['AveRSS 1234567K for a day', [step('batch', '1234567K', 86_400)], '28.256996'],
    ['one step on a half millionth: 3637248K for 60 s is 0.0578125', [step('batch', '3637248K', 60)], '0.057813'],
    [
      'two steps whose sum is on a half millionth (0.6265625)',
      [step('batch', '7605964K', 300), step('0', '695042K', 120)],
      '0.626563',
    ],
    ['steps without an AveRSS add nothing', [step('batch', '', 600), step('extern', '0', 600)], '0.000000'],
    [
      '512 GiB for 30 days, 100 steps',
      Array.from({ length: 100 }, (_, i) => step(`${i}`, '512G', 2_592_000)),
      '36864000.000000',
    ],
  ])('%s', (_case, steps, expected) => {
    const folded = foldSteps(job({ elapsedSec: 600, allocMemMb: 1024 }), steps);
    expect(folded.stepMemGbHours).toBe(expected);
    // Priced as stored: the same figure, not another rounding of it.
    expect(computeResourceHours(folded, 'used').memGbHours.toFixed(6)).toBe(expected);
  });

  // Slurm samples memory every JobAcctGatherFrequency: a step that ends before its first sample has no
  // AveRSS (the lab's 3 s job 3, final/sacct-steps-extra.psv), nor has any under jobacct_gather/none. A job
  // with no sampled step has no memory figure, and is priced from its allocation: it was summed to 0 and
  // billed no memory at all.
  it.each([
    ['no step sampled (the lab job 3: one 3 s batch step)', [step('batch', '', 3)], null, '0.000814'],
    ['no step of several sampled', [step('batch', '', 3), step('0', '', 2)], null, '0.000814'],
    [
      'one step of two sampled, at 0: a measured 0',
      [step('batch', '', 3), step('extern', '0', 3)],
      '0.000000',
      '0.000000',
    ],
  ])('%s', (_case, steps, stored, memGbHours) => {
    const folded = foldSteps(job({ elapsedSec: 3, allocMemMb: 1000 }), steps);
    expect(folded.stepMemGbHours).toBe(stored);
    expect(computeResourceHours(folded, 'used').memGbHours.toFixed(6)).toBe(memGbHours);
  });

  it('prices the half millionth that floats lost', () => {
    const folded = foldSteps(job({ elapsedSec: 60 }), [step('batch', '3637248K', 60)]);
    const rates = { cpu: D('0'), gpu: D('0'), mem: D('100000'), currency: 'THB' };
    // 0.0578125 GB-hours rounded half-up to 0.057813, at 100,000 an hour: 5781.30 (5781.20 from 0.057812).
    expect(priceJob(folded, rates, 'used').cost.toFixed(2)).toBe('5781.30');
  });

  it('skips, with the step named, an AveRSS too large to sum exactly', () => {
    expect(() => foldSteps(job({}), [step('batch', '99999999P', 60)])).toThrow(
      /^step batch: AveRSS is not a whole number of bytes from 0 to 9007199254740991: /,
    );
  });
});
