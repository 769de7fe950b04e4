import { describe, expect, it } from 'vitest';
import { assignStoredIds, type StoredJobIdentity } from '../../../src/modules/ingestion/reused-job-id.js';
import type { NormalizedJob } from '../../../src/modules/ingestion/slurm-job.model.js';

const FIRST = '2026-12-04T01:00:00Z';
const SECOND = '2026-12-04T03:05:10Z';

function record(jobId: string, submit: string | null, overrides: Partial<NormalizedJob> = {}): NormalizedJob {
  return {
    cluster: 'lab',
    jobId,
    jobKey: jobId,
    arrayJobId: null,
    arrayTaskId: null,
    name: 'job',
    user: 'bob',
    account: 'physics',
    partition: 'debug',
    qos: 'normal',
    state: 'COMPLETED',
    isTerminal: true,
    exitCode: '0:0',
    submitAt: submit === null ? null : new Date(submit),
    startAt: null,
    endAt: null,
    elapsedSec: 1,
    timelimitSec: null,
    allocCpus: 1,
    allocMemMb: 50,
    allocGpus: 0,
    allocNodes: 1,
    allocBilling: null,
    reqCpus: 1,
    reqMemMb: 50,
    reqGpus: 0,
    allocTres: '',
    reqTres: '',
    cpuTimeSec: 1,
    totalCpuSec: null,
    stepMemGbHours: null,
    maxRssBytes: null,
    energyJoules: null,
    stepCount: 0,
    steps: [],
    nodeList: '',
    ...overrides,
  };
}

function row(jobId: string, submit: string | null, isTerminal = true, jobKey = jobId): StoredJobIdentity {
  return { cluster: 'lab', jobId, jobKey, submitAt: submit === null ? null : new Date(submit), isTerminal };
}

const placed = (jobs: NormalizedJob[]) => jobs.map((job) => [job.jobId, job.jobKey]);

describe('assignStoredIds', () => {
  it.each<[string, StoredJobIdentity[], NormalizedJob[], string[][]]>([
    ['a job no stored row shares an id with keeps its id', [], [record('7', SECOND)], [['7', '7']]],
    ['the stored job read again keeps its id', [row('7', FIRST)], [record('7', FIRST)], [['7', '7']]],
    [
      'a later job that reused the id of a finished one is placed beside it, its submit time after the id',
      [row('7', FIRST)],
      [record('7', SECOND)],
      [['7@20261204T030510Z', '7@20261204T030510Z']],
    ],
    [
      'an earlier job read after the later one took the plain id (a backfill) is placed beside it too',
      [row('7', SECOND)],
      [record('7', FIRST)],
      [['7@20261204T010000Z', '7@20261204T010000Z']],
    ],
    [
      'the later job read again keeps the id it was given',
      [row('7', FIRST), row('7@20261204T030510Z', SECOND)],
      [record('7', SECOND), record('7', FIRST)],
      [
        ['7@20261204T030510Z', '7@20261204T030510Z'],
        ['7', '7'],
      ],
    ],
    [
      'both jobs in one answer: the earlier keeps the plain id, whatever the order',
      [],
      [record('7', SECOND), record('7', FIRST)],
      [
        ['7@20261204T030510Z', '7@20261204T030510Z'],
        ['7', '7'],
      ],
    ],
    [
      'a requeued job, stored while its first run ran, is the same job in its next run (a later submit time)',
      [row('21', FIRST, false)],
      [record('21', SECOND)],
      [['21', '21']],
    ],
    [
      'sacct reading the submit time in the repeated hour an hour later than slurmrestd: the same job',
      [row('7', '2026-11-01T05:30:00Z')],
      [record('7', '2026-11-01T06:30:00Z')],
      [['7', '7']],
    ],
    [
      'a stored row without a submit time is taken as the same job, as before',
      [row('7', null)],
      [record('7', SECOND)],
      [['7', '7']],
    ],
    [
      'a task of a reused array with a fresh JobIDRaw but an earlier task key keeps its id, its key placed beside',
      [row('130', FIRST, true, '123_4')],
      [record('200', SECOND, { jobKey: '123_4', arrayJobId: '123', arrayTaskId: '4' })],
      [['200', '123_4@20261204T030510Z']],
    ],
    [
      'a pending array record of a reused id that runs as its last task keeps the suffix of its row',
      [row('68', FIRST), row('68@20261204T030510Z', SECOND, false, '68_[1-5%2]@20261204T030510Z')],
      [record('68', SECOND, { jobKey: '68_5' })],
      [['68@20261204T030510Z', '68_5@20261204T030510Z']],
    ],
    [
      'the same id on another cluster is another job already',
      [{ ...row('7', FIRST), cluster: 'other' }],
      [record('7', SECOND)],
      [['7', '7']],
    ],
  ])('%s', (_label, stored, jobs, expected) => {
    expect(placed(assignStoredIds(jobs, stored))).toEqual(expected);
  });
});

describe('a row sacct stored in the server zone, not APP_TZ (every time shifted alike)', () => {
  const at = (text: string) => new Date(text);
  const stored: StoredJobIdentity = {
    ...row('7', '2026-12-03T18:00:00Z'),
    startAt: at('2026-12-03T18:00:05Z'),
    endAt: at('2026-12-03T19:00:05Z'),
  };

  it('is the same job when submit, start and end are all off by the same zone difference', () => {
    const job = record('7', '2026-12-04T01:00:00Z', {
      startAt: at('2026-12-04T01:00:05Z'),
      endAt: at('2026-12-04T02:00:05Z'),
    });
    expect(placed(assignStoredIds([job], [stored]))).toEqual([['7', '7']]);
  });

  it('is another job (a reused id) when only the submit time is a whole number of hours apart', () => {
    const job = record('7', '2026-12-04T01:00:00Z', {
      startAt: at('2026-12-04T01:00:07Z'),
      endAt: at('2026-12-04T01:30:00Z'),
    });
    expect(placed(assignStoredIds([job], [stored]))).toEqual([['7@20261204T010000Z', '7@20261204T010000Z']]);
  });
});
