import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSacctText } from '../../../src/modules/ingestion/sacct.parser.js';
import type { NormalizedJob, SourceItem } from '../../../src/modules/ingestion/slurm-job.model.js';
import {
  isAuthenticationError,
  isQueryTooWideError,
  parseSlurmRestJobsResponse,
  readNoValNumber,
} from '../../../src/modules/ingestion/slurm-rest.parser.js';

type Json = Record<string, unknown>;

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/slurm');
const readJson = (name: string): unknown => JSON.parse(readFileSync(path.join(FIXTURES, name), 'utf8'));
const options = (version: string) => ({ version, defaultCluster: 'fallback' });

function jobsOf(items: SourceItem[]): Map<string, NormalizedJob> {
  return new Map(items.flatMap((item) => (item.kind === 'job' ? [[item.job.jobKey, item.job] as const] : [])));
}

// The figures billing uses; sacct and every API version must agree on them.
const billable = (job: NormalizedJob) => ({
  jobId: job.jobId,
  jobKey: job.jobKey,
  user: job.user,
  account: job.account,
  state: job.state,
  isTerminal: job.isTerminal,
  startAt: job.startAt?.toISOString(),
  endAt: job.endAt?.toISOString(),
  elapsedSec: job.elapsedSec,
  allocCpus: job.allocCpus,
  allocMemMb: job.allocMemMb,
  allocGpus: job.allocGpus,
  allocBilling: job.allocBilling,
  totalCpuSec: job.totalCpuSec,
  stepCount: job.stepCount,
  maxRssBytes: job.maxRssBytes,
});

const sacctJobs = jobsOf(
  parseSacctText(readFileSync(path.join(FIXTURES, '22.05/final/sacct-steps-extra.psv'), 'utf8'), {
    timeZone: 'UTC',
    defaultCluster: 'lab',
  }),
);

describe('slurmdbd jobs from a real Slurm 22.05 (v0.0.36-v0.0.38)', () => {
  it.each(['v0.0.36', 'v0.0.37', 'v0.0.38'])('%s gives the same billable figures as sacct for every job', (version) => {
    const response = parseSlurmRestJobsResponse(readJson(`22.05/final/rest-db${version}-jobs.json`), options(version));
    expect(response.errors).toEqual([]);
    const jobs = jobsOf(response.items);
    expect([...jobs.keys()].sort()).toEqual([...sacctJobs.keys()].sort());
    for (const [key, job] of jobs) expect(billable(job), key).toEqual(billable(sacctJobs.get(key) as NormalizedJob));
  });

  it.each(['v0.0.36', 'v0.0.37'])(
    '%s: the start time is rebuilt (22.05 reports the eligible time there)',
    (version) => {
      const jobs = jobsOf(
        parseSlurmRestJobsResponse(readJson(`22.05/final/rest-db${version}-jobs.json`), options(version)).items,
      );
      expect(jobs.get('2')?.startAt).toEqual(new Date('2026-11-23T15:41:04Z'));
    },
  );

  it('renders TRES like sacct and does not trust the 22.05 exit code', () => {
    const jobs = jobsOf(
      parseSlurmRestJobsResponse(readJson('22.05/final/rest-dbv0.0.38-jobs.json'), options('v0.0.38')).items,
    );
    expect(jobs.get('5')?.allocTres).toBe('billing=3,cpu=1,gres/gpu:fake=1,gres/gpu=1,mem=256M,node=1');
    expect(jobs.get('4')?.allocTres).toBe(sacctJobs.get('4')?.allocTres);
    // sacct says 1:0 for the failed job; dbv0.0.38 claims SUCCESS/0, so it gives no exit code (sacct's stays).
    expect(jobs.get('3')).toMatchObject({ state: 'FAILED', exitCode: null });
    expect(jobs.get('2')?.steps.map((step) => step.id)).toEqual(['batch', 0, 1, 2].map(String));
  });

  it.each(['v0.0.36', 'v0.0.37', 'v0.0.38'])('%s while jobs ran: RUNNING has no end, PENDING no start', (version) => {
    const jobs = jobsOf(
      parseSlurmRestJobsResponse(readJson(`22.05/live/rest-db${version}-jobs.json`), options(version)).items,
    );
    expect(jobs.get('12')).toMatchObject({ state: 'RUNNING', isTerminal: false, endAt: null });
    expect(jobs.get('12')?.startAt).toEqual(new Date('2026-11-23T15:43:36Z'));
    expect(jobs.get('13')).toMatchObject({ state: 'PENDING', isTerminal: false, endAt: null, allocCpus: 0 });
  });

  it('reads a never-started job (start null, nothing allocated)', () => {
    const jobs = jobsOf(
      parseSlurmRestJobsResponse(readJson('22.05/final/rest-dbv0.0.38-job-8.json'), options('v0.0.38')).items,
    );
    expect(jobs.get('8')).toMatchObject({
      state: 'CANCELLED',
      startAt: null,
      allocCpus: 0,
      elapsedSec: 0,
      nodeList: '',
    });
  });

  it('hands back the errors array of an HTTP-200 authentication failure', () => {
    const response = parseSlurmRestJobsResponse(readJson('22.05/rest-dbv0.0.38-auth-error.json'), options('v0.0.38'));
    expect(response.items).toEqual([]);
    expect(response.errors.map(isAuthenticationError)).toEqual([true]);
  });
});

// Jobs 8 and 11 of the lab, cancelled while pending (never started): sacct prints Start `None`, v0.0.38
// gives `time.start` null, and v0.0.36/37 give the eligible time there, as for every job. The start
// rebuilt from it (end - elapsed) made a job that never ran start when it was cancelled, so a switch
// between v0.0.36/37 and sacct or v0.0.38 rewrote both rows on every run. Nor did any version give
// sacct's energy (0) for them: every switch between slurmrestd and sacct rewrote them too.
describe('a job cancelled before it started (recorded on the lab, 22.05/cancelled-pending)', () => {
  const sacct = jobsOf(
    parseSacctText(readFileSync(path.join(FIXTURES, '22.05/cancelled-pending/sacct.psv'), 'utf8'), {
      timeZone: 'UTC',
      defaultCluster: 'lab',
    }),
  );
  const cases = ['v0.0.36', 'v0.0.37', 'v0.0.38'].flatMap((version) =>
    ['8', '11'].map((jobId) => [version, jobId] as const),
  );
  it.each(cases)('%s job %s has no start, as sacct says', (version, jobId) => {
    const jobs = jobsOf(
      parseSlurmRestJobsResponse(readJson(`22.05/cancelled-pending/rest-db${version}-jobs.json`), options(version))
        .items,
    );
    expect(sacct.get(jobId)).toMatchObject({ state: 'CANCELLED', startAt: null, elapsedSec: 0 });
    expect(jobs.get(jobId)).toMatchObject({ state: 'CANCELLED', startAt: null, elapsedSec: 0 });
    expect(billable(jobs.get(jobId) as NormalizedJob)).toEqual(billable(sacct.get(jobId) as NormalizedJob));
    // The whole record, as the store compares it (22.05's exit code is not read: sacct's is kept).
    expect({ ...jobs.get(jobId), exitCode: '0:0' }).toEqual(sacct.get(jobId));
  });
  it.each(['v0.0.36', 'v0.0.37'])('%s still rebuilds the start of the jobs that ran', (version) => {
    const jobs = jobsOf(
      parseSlurmRestJobsResponse(readJson(`22.05/cancelled-pending/rest-db${version}-jobs.json`), options(version))
        .items,
    );
    // Job 2 ran 35 s and ended at 1796415366 (v0.0.38 says it started at 1796415331).
    expect(jobs.get('2')?.startAt).toEqual(new Date(1796415331 * 1000));
  });
});

describe('job records for v0.0.40-v0.0.45 built from the published OpenAPI schema', () => {
  const SCHEMA_VERSIONS = ['v0.0.40', 'v0.0.41', 'v0.0.42', 'v0.0.43', 'v0.0.44', 'v0.0.45'];

  it.each(SCHEMA_VERSIONS)('%s normalizes to the same figures as sacct', (version) => {
    const response = parseSlurmRestJobsResponse(readJson(`schema/${version}-jobs.json`), options(version));
    const jobs = jobsOf(response.items);
    expect([...jobs.keys()].sort()).toEqual(['2', '3', '5', '6_1', '6_3']);
    for (const [key, job] of jobs) expect(billable(job), key).toEqual(billable(sacctJobs.get(key) as NormalizedJob));
  });

  it.each(['v0.0.42', 'v0.0.43', 'v0.0.44', 'v0.0.45'])(
    '%s: reads exit codes, `{set, infinite, number}` limits and `job.step` ids',
    (version) => {
      const jobs = jobsOf(parseSlurmRestJobsResponse(readJson(`schema/${version}-jobs.json`), options(version)).items);
      expect(jobs.get('3')).toMatchObject({ exitCode: '1:0', timelimitSec: 525_600 * 60 });
      expect(jobs.get('2')).toMatchObject({ exitCode: '0:0', timelimitSec: null });
      expect(jobs.get('2')?.steps.map((step) => step.id)).toEqual(['batch', '0', '1', '2']);
    },
  );

  it.each(SCHEMA_VERSIONS)(
    '%s: an unset TRES count (-2, as data_parser prints NO_VAL64) is no count, not a bad record',
    (version) => {
      const body = readJson(`schema/${version}-jobs.json`) as { jobs: Json[] };
      const record = body.jobs.find((job) => job.job_id === 3) as Json;
      expect(JSON.stringify(record.tres)).toContain('{"type":"energy","name":"","id":3,"count":-2}');
      // Read as 22.05's null: the same job, and the same TRES text as sacct's.
      const asNull = JSON.parse(JSON.stringify(record).replace('"count":-2', '"count":null')) as Json;
      const [read, readAsNull] = parseSlurmRestJobsResponse({ jobs: [record, asNull] }, options(version)).items;
      expect(read).toMatchObject({ kind: 'job', job: { allocTres: sacctJobs.get('3')?.allocTres } });
      expect(read).toEqual({ ...readAsNull, line: 1 });
    },
  );

  it.each([[-1], [-3], [-2.5]])('still skips a record whose TRES count is %d', (count) => {
    const record = structuredClone((readJson('schema/v0.0.42-jobs.json') as { jobs: Json[] }).jobs[0]) as Json;
    record.tres = { allocated: [{ type: 'cpu', name: '', id: 1, count }], requested: [] };
    const { items } = parseSlurmRestJobsResponse({ jobs: [record] }, options('v0.0.42'));
    expect(items).toEqual([
      {
        kind: 'skip',
        line: 1,
        jobId: '2',
        reason: `TRES cpu is not a non-negative number: ${count}`,
        job: { cluster: 'lab', jobId: '2' },
      },
    ]);
  });

  // What v0.0.43 (Slurm 25.05), v0.0.44 (25.11) and v0.0.45 (26.05) changed in a slurmdb job is not what
  // billing reads (docs/ingestion.md, "API versions"): the same jobs give the same records, field for field.
  it.each(['v0.0.43', 'v0.0.44', 'v0.0.45'])('%s gives the very records v0.0.42 gives', (version) => {
    const records = (name: string) =>
      parseSlurmRestJobsResponse(readJson(`schema/${name}-jobs.json`), options(name)).items.map((item) =>
        item.kind === 'job' ? item.job : item,
      );
    const answer = readJson(`schema/${version}-jobs.json`) as { jobs: Json[]; meta: Json };
    expect(answer.meta.plugin).toMatchObject({ data_parser: `data_parser/${version}` });
    expect(answer.jobs[0]).toMatchObject({ segment_size: 0, reservation: { requested: '' } });
    expect(records(version)).toEqual(records('v0.0.42'));
  });

  // Slurm's job_state_string (sacct, 22.05's slurmrestd) prints these flags instead of the base state;
  // data_parser v0.0.39+ prints the base first. slurmdbd keeps a requeued job's superseded run as the
  // REQUEUED flag alone (base PENDING), a resized job's earlier record as RESIZING.
  it.each<[current: string[], state: string, isTerminal: boolean]>([
    [['COMPLETED'], 'COMPLETED', true],
    [['CANCELLED'], 'CANCELLED', true],
    [['PENDING', 'REQUEUED'], 'REQUEUED', false],
    [['PENDING', 'RESIZING'], 'RESIZING', true],
    [['PENDING', 'REVOKED'], 'REVOKED', false],
    [['PENDING', 'REQUEUE_HOLD'], 'REQUEUE_HOLD', false],
    [['RUNNING', 'CONFIGURING', 'COMPLETING'], 'COMPLETING', false],
    [['PENDING', 'REQUEUED', 'SPECIAL_EXIT'], 'REQUEUED', false],
    [['FAILED', 'LAUNCH_FAILED'], 'FAILED', true],
    [['RUNNING', 'POWER_UP_NODE'], 'RUNNING', false],
  ])('state %j reads %s, as sacct prints that record', (current, state, isTerminal) => {
    const record = structuredClone((readJson('schema/v0.0.42-jobs.json') as { jobs: Json[] }).jobs[0]) as Json;
    record.state = { current, reason: 'None' };
    const [item] = parseSlurmRestJobsResponse({ jobs: [record] }, options('v0.0.42')).items;
    expect(item).toMatchObject({ kind: 'job', job: { state, isTerminal } });
  });

  it('keys heterogeneous components as 123+N and reads unset numbers', () => {
    const body = readJson('schema/v0.0.40-jobs.json') as { jobs: Record<string, unknown>[] };
    const component = structuredClone(body.jobs[0]) as Record<string, unknown>;
    component.job_id = 101;
    component.het = { job_id: 100, job_offset: { set: true, infinite: false, number: 1 } };
    const jobs = jobsOf(parseSlurmRestJobsResponse({ jobs: [component] }, options('v0.0.40')).items);
    expect(jobs.get('100+1')).toMatchObject({ jobId: '101', arrayJobId: null });
  });
});

describe('the `jobs` array of a recorded answer, for every API version', () => {
  // Every real answer has `jobs`, also the HTTP-200 authentication error (`jobs: []`); 22.05 adds
  // `meta` and `errors`, v0.0.40+ `warnings` too.
  const answers: [version: string, file: string][] = [
    ['v0.0.36', '22.05/final/rest-dbv0.0.36-jobs.json'],
    ['v0.0.37', '22.05/final/rest-dbv0.0.37-jobs.json'],
    ['v0.0.38', '22.05/final/rest-dbv0.0.38-jobs.json'],
    ['v0.0.40', 'schema/v0.0.40-jobs.json'],
    ['v0.0.41', 'schema/v0.0.41-jobs.json'],
    ['v0.0.42', 'schema/v0.0.42-jobs.json'],
    ['v0.0.43', 'schema/v0.0.43-jobs.json'],
    ['v0.0.44', 'schema/v0.0.44-jobs.json'],
    ['v0.0.45', 'schema/v0.0.45-jobs.json'],
  ];
  const recorded = (file: string) => readJson(file) as Record<string, unknown>;

  it.each<[version: string, file: string]>([
    ...answers,
    ['v0.0.36', '22.05/live/rest-dbv0.0.36-jobs.json'],
    ['v0.0.37', '22.05/live/rest-dbv0.0.37-jobs.json'],
    ['v0.0.38', '22.05/live/rest-dbv0.0.38-jobs.json'],
    ['v0.0.38', '22.05/final/rest-dbv0.0.38-job-8.json'],
    ['v0.0.38', '22.05/rest-dbv0.0.38-auth-error.json'],
  ])('%s: %s has a `jobs` array', (version, file) => {
    const answer = recorded(file);
    expect(Array.isArray(answer.jobs)).toBe(true);
    expect(parseSlurmRestJobsResponse(answer, options(version)).items).toHaveLength((answer.jobs as unknown[]).length);
  });

  it.each(answers)('%s: an answer without `jobs` is refused, not read as "no jobs"', (version, file) => {
    const { jobs: _jobs, ...rest } = recorded(file);
    expect(() => parseSlurmRestJobsResponse(rest, options(version))).toThrow(/the response has no `jobs` array/);
  });

  it.each(answers)('%s: `jobs: []` is a real "no jobs" answer, also with warnings', (version, file) => {
    const answer = { ...recorded(file), jobs: [], warnings: [{ description: 'slurmdbd is slow' }] };
    expect(parseSlurmRestJobsResponse(answer, options(version))).toEqual({
      items: [],
      errors: [],
      warnings: ['slurmdbd is slow'],
    });
  });

  it.each([
    ['an empty object', {}],
    [
      'meta and empty errors and warnings only',
      { meta: recorded('22.05/final/rest-dbv0.0.38-jobs.json').meta, errors: [], warnings: [] },
    ],
    ['warnings only', { warnings: [{ description: 'something' }] }],
    ['`jobs: null`', { jobs: null, errors: [] }],
  ])('refuses %s', (_label, body) => {
    expect(() => parseSlurmRestJobsResponse(body, options('v0.0.38'))).toThrow(/`jobs`/);
  });

  it('hands back the errors of a failed answer without `jobs`, for the caller to report', () => {
    const { jobs: _jobs, ...failed } = recorded('22.05/rest-dbv0.0.38-auth-error.json');
    const response = parseSlurmRestJobsResponse(failed, options('v0.0.38'));
    expect(response.items).toEqual([]);
    expect(response.errors.map(isAuthenticationError)).toEqual([true]);
  });
});

describe('readNoValNumber', () => {
  it.each([
    [5, 5],
    [null, null],
    [undefined, null],
    [{ set: true, infinite: false, number: 7 }, 7],
    [{ set: false, infinite: false, number: 0 }, null],
    [{ set: true, infinite: true, number: 0 }, Number.POSITIVE_INFINITY],
  ])('reads %j as %s', (value, expected) => {
    expect(readNoValNumber(value)).toBe(expected);
  });

  it.each([['5'], [{ number: 'x' }], [Number.NaN]])('refuses %j', (value) => {
    expect(() => readNoValNumber(value)).toThrow();
  });
});

describe('malformed records', () => {
  it('skips a bad record with its position and keeps the others', () => {
    const body = readJson('22.05/final/rest-dbv0.0.38-jobs.json') as { jobs: Record<string, unknown>[] };
    const jobs = body.jobs.slice(0, 3).map((job) => structuredClone(job));
    (jobs[1] as Record<string, unknown>).job_id = 'two';
    (jobs[2] as Record<string, unknown>).time = { elapsed: 'long' };
    const response = parseSlurmRestJobsResponse({ jobs }, options('v0.0.38'));
    expect(response.items.map((item) => item.kind)).toEqual(['job', 'skip', 'skip']);
    expect(response.items[1]).toMatchObject({ line: 2, jobId: 'two', reason: expect.stringMatching(/job_id/) });
  });

  it.each([
    [
      'a huge string',
      'x'.repeat(1_000_000),
      `${'x'.repeat(61)}...`,
      /^job_id is not a positive integer: "x{57}\.\.\."$/,
    ],
    [
      'an unset struct',
      { set: false, infinite: false, number: 0 },
      '{"set":false,"infinite":false,"number":0}',
      /^job_id is not a positive integer: \{"set":false/,
    ],
    ['a negative number', -1, '-1', /^job_id is not a positive integer: -1$/],
    // No id to name: the run says "a record (record N)", not "job  (record N)".
    ['an empty string', '', null, /^job_id is not a positive integer: ""$/],
    ['a string of spaces', '   ', null, /^job_id is not a positive integer: " {3}"$/],
  ])('a record whose job_id is %s is skipped with that id cut short', (_label, jobId, logged, reason) => {
    const record = structuredClone(
      (readJson('22.05/final/rest-dbv0.0.38-jobs.json') as { jobs: Record<string, unknown>[] }).jobs[0],
    ) as Record<string, unknown>;
    record.job_id = jobId;
    const { items } = parseSlurmRestJobsResponse({ jobs: [record] }, options('v0.0.38'));
    expect(items).toEqual([{ kind: 'skip', line: 1, jobId: logged, reason: expect.stringMatching(reason) }]);
    expect(JSON.stringify(items).length).toBeLessThan(300);
  });

  it('cuts short the errors and warnings it hands back (callers put them in messages)', () => {
    const huge = 'x'.repeat(1_000_000);
    const response = parseSlurmRestJobsResponse(
      {
        errors: [{ error_number: 9, error: huge, description: huge, source: huge }],
        warnings: [{ description: huge }],
        jobs: [],
      },
      options('v0.0.38'),
    );
    expect(JSON.stringify(response).length).toBeLessThan(1000);
    expect(response.errors[0]?.description).toBe(`${'x'.repeat(197)}...`);
  });

  it.each([[null], ['text'], [{ jobs: {} }]])('refuses a body that is not a jobs response: %j', (body) => {
    expect(() => parseSlurmRestJobsResponse(body, options('v0.0.38'))).toThrow();
  });
});

describe("isQueryTooWideError: slurmdbd's refusal of a window longer than MaxQueryTimeRange", () => {
  it.each([
    [
      'error 7007 with its words',
      { errorNumber: 7007, error: 'Too wide of a date range in query', description: '' },
      true,
    ],
    ['error 7007 alone', { errorNumber: 7007, error: '', description: '' }, true],
    [
      'its words in the description',
      { errorNumber: null, error: '', description: 'Too wide of a date range in query' },
      true,
    ],
    ['Nothing found', { errorNumber: 9003, error: 'Nothing found', description: '' }, false],
    ['an authentication error', { errorNumber: 1007, error: 'Protocol authentication error', description: '' }, false],
    [
      'a result too large (7006)',
      { errorNumber: 7006, error: 'Query result exceeds size limit', description: '' },
      false,
    ],
  ])('%s: %s', (_label, error, expected) => {
    expect(isQueryTooWideError({ source: '', ...error })).toBe(expected);
  });
});

describe('the cluster, as Slurm names it', () => {
  // Slurm lower-cases cluster names (slurm.conf(5) ClusterName); sacct stores `lab`.
  const record = (readJson('22.05/final/rest-dbv0.0.38-jobs.json') as { jobs: Json[] }).jobs[0] as Json;
  it.each([
    ['lab', 'fallback', 'lab'],
    ['LAB', 'fallback', 'lab'],
    ['', 'LAB', 'lab'],
  ])('cluster %j with the default %j is stored as %j', (cluster, defaultCluster, stored) => {
    const response = parseSlurmRestJobsResponse(
      { jobs: [{ ...record, cluster }], errors: [], warnings: [] },
      { version: 'v0.0.38', defaultCluster },
    );
    expect(response.items).toEqual([
      expect.objectContaining({ kind: 'job', job: expect.objectContaining({ cluster: stored }) }),
    ]);
  });
});

// A job held (`sbatch -H`) and cancelled before it ran, as slurmrestd 22.05 gives it by its id
// (`/slurmdb/v0.0.NN/job/{id}`): v0.0.36/37 with `time.start` 0, v0.0.38 with the cancel time there
// (22.05/held-cancelled, recorded 2026-12-05) or null (final/, job 8, recorded 2026-11-23); `eligible` 0,
// `tres.allocated` []. (The window queries the source asks never return it: it was never eligible. sacct
// with the source's `--state` does; sacct.parser.test.ts.) Read as a CANCELLED job that holds nothing.
describe('a job held and then cancelled before it ran', () => {
  it.each([
    ['v0.0.36', '22.05/held-cancelled/rest-dbv0.0.36-job-1.json', '1', null],
    ['v0.0.37', '22.05/held-cancelled/rest-dbv0.0.37-job-1.json', '1', null],
    ['v0.0.38', '22.05/held-cancelled/rest-dbv0.0.38-job-1.json', '1', new Date('2026-12-05T19:01:40Z')],
    ['v0.0.38', '22.05/final/rest-dbv0.0.38-job-8.json', '8', null],
  ])('%s (%s): a CANCELLED job that holds nothing', (version, file, jobId, startAt) => {
    const { items, errors } = parseSlurmRestJobsResponse(readJson(file), options(version));
    expect(errors).toEqual([]);
    expect(items.map((item) => item.kind)).toEqual(['job']);
    expect(jobsOf(items).get(jobId)).toMatchObject({
      state: 'CANCELLED',
      isTerminal: true,
      startAt,
      elapsedSec: 0,
      allocCpus: 0,
      allocMemMb: 0,
      allocGpus: 0,
      allocTres: '',
      stepCount: 0,
      totalCpuSec: 0,
    });
  });

  it.each(['v0.0.36', 'v0.0.37', 'v0.0.38'])(
    '%s: the window it was cancelled in returns only the job that ran',
    (version) => {
      const { items } = parseSlurmRestJobsResponse(
        readJson(`22.05/held-cancelled/rest-db${version}-jobs.json`),
        options(version),
      );
      expect([...jobsOf(items).keys()]).toEqual(['2']);
    },
  );
});
