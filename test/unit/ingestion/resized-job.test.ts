import { describe, expect, it } from 'vitest';
import { assignStoredIds } from '../../../src/modules/ingestion/reused-job-id.js';
import { parseSacctText } from '../../../src/modules/ingestion/sacct.parser.js';
import type { NormalizedJob, SourceItem } from '../../../src/modules/ingestion/slurm-job.model.js';
import { parseSlurmRestJobsResponse } from '../../../src/modules/ingestion/slurm-rest.parser.js';
import { RESIZED_SACCT, resizedRestAnswer } from '../../support/resized-job.js';

const jobsOf = (items: SourceItem[]): NormalizedJob[] =>
  items.flatMap((item) => {
    if (item.kind !== 'job') throw new Error(`skipped: ${JSON.stringify(item)}`);
    return [item.job];
  });

// A job resized while it ran: slurmdbd closes its record as RESIZING at the resize, and the job goes on
// as a new record of the same JobID submitted and started at the resize (test/support/resized-job.ts).
describe.each<[string, () => NormalizedJob[]]>([
  ['sacct', () => jobsOf(parseSacctText(RESIZED_SACCT, { timeZone: 'UTC', defaultCluster: 'lab' }))],
  [
    'slurmrestd v0.0.38',
    () => jobsOf(parseSlurmRestJobsResponse(resizedRestAnswer(), { version: 'v0.0.38', defaultCluster: 'lab' }).items),
  ],
  [
    'slurmrestd v0.0.42 (state arrays)',
    () =>
      jobsOf(
        parseSlurmRestJobsResponse(resizedRestAnswer({ stateArrays: true }), {
          version: 'v0.0.42',
          defaultCluster: 'lab',
        }).items,
      ),
  ],
])('a job resized while it ran, read through %s', (_source, read) => {
  it('gives both records, the part before the resize finished and billable with its own usage', () => {
    const jobs = read();
    expect(
      jobs.map(({ jobId, jobKey, state, isTerminal, submitAt, startAt, endAt, elapsedSec, allocCpus, cpuTimeSec }) => ({
        jobId,
        jobKey,
        state,
        isTerminal,
        submitAt: submitAt?.toISOString(),
        startAt: startAt?.toISOString(),
        endAt: endAt?.toISOString(),
        elapsedSec,
        allocCpus,
        cpuTimeSec,
      })),
    ).toEqual([
      {
        jobId: '2',
        jobKey: '2',
        // It was read as not finished: never billed, and overwritten by the part after the resize.
        state: 'RESIZING',
        isTerminal: true,
        submitAt: '2026-12-04T03:13:48.000Z',
        startAt: '2026-12-04T03:13:52.000Z',
        endAt: '2026-12-04T03:13:53.000Z',
        elapsedSec: 1,
        allocCpus: 2,
        cpuTimeSec: 2,
      },
      {
        jobId: '2',
        jobKey: '2',
        state: 'COMPLETED',
        isTerminal: true,
        submitAt: '2026-12-04T03:13:53.000Z',
        startAt: '2026-12-04T03:13:53.000Z',
        endAt: '2026-12-04T03:13:54.000Z',
        elapsedSec: 1,
        allocCpus: 1,
        cpuTimeSec: 1,
      },
    ]);
  });

  it('places the two parts in rows of their own, in either order and against either stored', () => {
    const [before, after] = read() as [NormalizedJob, NormalizedJob];
    const placed = (jobs: NormalizedJob[]) => jobs.map((job) => `${job.jobId} ${job.jobKey}`);
    expect(placed(assignStoredIds([before, after], []))).toEqual(['2 2', '2@20261204T031353Z 2@20261204T031353Z']);
    expect(placed(assignStoredIds([after, before], []))).toEqual(['2@20261204T031353Z 2@20261204T031353Z', '2 2']);
    const stored = (job: NormalizedJob, jobId = job.jobId) => ({ ...job, jobId, jobKey: jobId });
    // The part before, stored first (as RESIZING): the part after is placed beside it.
    expect(placed(assignStoredIds([before, after], [stored(before)]))).toEqual([
      '2 2',
      '2@20261204T031353Z 2@20261204T031353Z',
    ]);
    // The part after, stored before this was fixed in the row of both: the part before is placed beside it.
    expect(placed(assignStoredIds([before, after], [stored(after)]))).toEqual([
      '2@20261204T031348Z 2@20261204T031348Z',
      '2 2',
    ]);
  });
});
