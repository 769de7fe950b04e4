import { describe, expect, it } from 'vitest';
import {
  findStorageProblem,
  findTimeProblem,
  type NormalizedJob,
} from '../../../src/modules/ingestion/slurm-job.model.js';

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
      'End 2026-11-20T02:00:00.000Z is before Start 2026-11-20T05:00:00.000Z',
    ],
    [
      'ended a second before it started',
      '2026-11-20T05:00:00Z',
      '2026-11-20T04:59:59Z',
      'End 2026-11-20T04:59:59.000Z is before Start 2026-11-20T05:00:00.000Z',
    ],
  ])('a job that %s', (_label, start, end, problem) => {
    expect(findTimeProblem({ startAt: at(start), endAt: at(end) })).toBe(problem);
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
  stepMemGbHours: 0,
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
    [
      'stepMemGbHours',
      1e12,
      'stepMemGbHours is out of range (0 to below 1000000000000, numeric(18, 6)): 1000000000000',
    ],
    // bigint columns keep the bound beyond any real value.
    ['cpuTimeSec', 1e15, 'cpuTimeSec is out of range (0 to below 1000000000000000, bigint): 1000000000000000'],
    ['maxRssBytes', 1e14, null],
  ] as const)('%s = %s', (field, value, problem) => {
    expect(findStorageProblem(job({ [field]: value }))).toBe(problem);
  });
});
