import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CUT_LINE_MARK } from '../../../src/modules/ingestion/line-reader.js';
import { findKeyColumnProblem, parseSacctText, SacctHeaderError } from '../../../src/modules/ingestion/sacct.parser.js';
import {
  findStorageProblem,
  findTimeProblem,
  type NormalizedJob,
  type SourceItem,
} from '../../../src/modules/ingestion/slurm-job.model.js';
import { computeResourceHours } from '../../../src/modules/pricing/pricing.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05');
const read = (name: string) => readFileSync(path.join(FIXTURES, name), 'utf8');
const options = { timeZone: 'UTC', defaultCluster: 'fallback' };

function jobsOf(items: SourceItem[]): Map<string, NormalizedJob> {
  return new Map(items.flatMap((item) => (item.kind === 'job' ? [[item.job.jobKey, item.job] as const] : [])));
}

describe('sacct --parsable2 from a real Slurm 22.05 (final/sacct-steps-extra.psv)', () => {
  const items = parseSacctText(read('final/sacct-steps-extra.psv'), options);
  const jobs = jobsOf(items);

  it('yields one record per allocation, steps folded in, nothing skipped', () => {
    expect(items.every((item) => item.kind === 'job')).toBe(true);
    expect([...jobs.keys()]).toEqual(['1', '2', '3', '4', '5', '7', '9', '6_1', '6_2', '6_3', '12', '13']);
  });

  it.each([
    // key, jobId, user, state, elapsed, cpus, memMb, gpus, steps, totalCpuSec, maxRss
    ['1', '1', 'alice', 'COMPLETED', 20, 1, 200, 0, 1, 0.003, 3380 * 1024],
    ['2', '2', 'alice', 'COMPLETED', 16, 2, 600, 0, 4, 5.693, 158_612 * 1024],
    ['3', '3', 'bob', 'FAILED', 3, 1, 100, 0, 1, 0.003, null],
    ['4', '4', 'alice', 'COMPLETED', 12, 2, 1024, 0, 1, 10.268, 7716 * 1024],
    ['5', '5', 'bob', 'COMPLETED', 10, 1, 256, 1, 1, 0.003, 3284 * 1024],
    ['7', '7', 'bob', 'CANCELLED', 9, 1, 100, 0, 1, 0.002, 3216 * 1024],
    ['9', '9', 'alice', 'TIMEOUT', 87, 1, 100, 0, 1, 0.002, 3064 * 1024],
    ['6_1', '10', 'bob', 'COMPLETED', 5, 1, 100, 0, 1, 0.004, 3216 * 1024],
    ['6_3', '6', 'bob', 'COMPLETED', 5, 1, 100, 0, 1, 0.004, 3188 * 1024],
    ['13', '13', 'bob', 'COMPLETED', 60, 2, 500, 0, 1, 0.003, 3260 * 1024],
  ])(
    'job %s: raw id %s, %s, %s, %is on %i CPUs',
    (key, jobId, user, state, elapsed, cpus, memMb, gpus, steps, cpu, rss) => {
      const job = jobs.get(key);
      expect(job).toMatchObject({
        jobId,
        user,
        state,
        elapsedSec: elapsed,
        allocCpus: cpus,
        allocMemMb: memMb,
        allocGpus: gpus,
        stepCount: steps,
        totalCpuSec: cpu,
        maxRssBytes: rss,
        cluster: 'lab',
        isTerminal: true,
      });
    },
  );

  it('keeps the array task identity and the billing TRES', () => {
    expect(jobs.get('6_1')).toMatchObject({ arrayJobId: '6', arrayTaskId: '1', jobId: '10' });
    expect(jobs.get('5')).toMatchObject({ allocBilling: 3, reqGpus: 1, account: 'chemistry' });
    expect(jobs.get('1')).toMatchObject({ arrayJobId: null, arrayTaskId: null, timelimitSec: null });
    expect(jobs.get('9')?.timelimitSec).toBe(60);
    expect(jobs.get('3')?.timelimitSec).toBe(525_600 * 60);
  });

  it('reads times as UTC instants and CPUTimeRAW', () => {
    expect(jobs.get('2')).toMatchObject({
      submitAt: new Date('2026-11-23T15:40:43Z'),
      startAt: new Date('2026-11-23T15:41:04Z'),
      endAt: new Date('2026-11-23T15:41:20Z'),
      cpuTimeSec: 32,
      exitCode: '0:0',
    });
    expect(jobs.get('3')).toMatchObject({ state: 'FAILED', exitCode: '1:0' });
  });

  it('sums AveRSS GB x step hours over the steps', () => {
    // (12284K x 16 s + 0 + 6238K x 6 s + 158612K x 10 s) / (1 GiB x 1 h), rounded half-up to 6 decimals.
    expect(jobs.get('2')?.stepMemGbHours).toBe('0.000482');
    expect(jobs.get('2')?.steps.map((step) => step.id)).toEqual(['batch', '0', '1', '2']);
  });

  it('reads the same jobs from the narrower column set and from -X (no steps)', () => {
    const narrow = jobsOf(parseSacctText(read('final/sacct-steps.psv'), options));
    // Without JobIDRaw an array task is known by its display id only.
    expect(narrow.get('6_1')).toMatchObject({ jobId: '6_1', cluster: 'fallback', totalCpuSec: 0.004 });
    const allocations = jobsOf(parseSacctText(read('final/sacct-X.psv'), options));
    expect(allocations.size).toBe(12);
    // sacct -X prints TotalCPU 00:00:00 for every job: CPU time lives on the steps.
    expect(allocations.get('2')).toMatchObject({ stepCount: 0, totalCpuSec: 0 });
  });
});

describe('sacct output taken while jobs were running (live/)', () => {
  const jobs = jobsOf(parseSacctText(read('live/sacct-steps-extra.psv'), options));

  it('keeps a running job as not terminal, with no end', () => {
    expect(jobs.get('12')).toMatchObject({ state: 'RUNNING', isTerminal: false, endAt: null });
  });

  it('keeps a pending job with no start', () => {
    expect(jobs.get('13')).toMatchObject({ state: 'PENDING', isTerminal: false, startAt: null, allocCpus: 0 });
  });
});

describe('malformed sacct lines', () => {
  const header = 'JobID|JobIDRaw|User|State|Elapsed|TotalCPU|AllocTRES|AveRSS|MaxRSS|Start|End';
  const good = '7|7|ann|COMPLETED|00:01:00|00:30.000|cpu=1,mem=1G,node=1|||2025-01-01T00:00:00|2025-01-01T00:01:00';
  const goodStep =
    '7.batch|7.batch||COMPLETED|00:01:00|00:30.000|cpu=1|1024K|2048K|2025-01-01T00:00:00|2025-01-01T00:01:00';

  it.each([
    ['too few fields', '8|8|ann|COMPLETED', /expected 11 fields, found 4/],
    [
      'a bad job id',
      'x8|8|ann|COMPLETED|00:01:00|00:30.000|cpu=1|||2025-01-01T00:00:00|2025-01-01T00:01:00',
      /not a Slurm job id/,
    ],
    [
      'a bad duration',
      '8|8|ann|COMPLETED|1:2:3:4|00:30.000|cpu=1|||2025-01-01T00:00:00|2025-01-01T00:01:00',
      /duration/,
    ],
    ['a bad timestamp', '8|8|ann|COMPLETED|00:01:00|00:30.000|cpu=1|||2025-01-01T00:00:00|yesterday', /timestamp/],
    ['no user', '8|8||COMPLETED|00:01:00|00:30.000|cpu=1|||2025-01-01T00:00:00|2025-01-01T00:01:00', /without a user/],
    [
      'an orphan step',
      '9.batch|9.batch||COMPLETED|00:01:00|00:30.000|cpu=1|||2025-01-01T00:00:00|2025-01-01T00:01:00',
      /without its job row/,
    ],
  ])('skips a line with %s, with its line number, and keeps the rest', (_label, line, reason) => {
    const items = parseSacctText([header, good, goodStep, line, good.replaceAll('7', '5')].join('\n'), options);
    const skips = items.filter((item) => item.kind === 'skip');
    expect(skips).toEqual([expect.objectContaining({ line: 4, reason: expect.stringMatching(reason) })]);
    expect(jobsOf(items).size).toBe(2);
  });

  // A line whose JobID is the damaged field: the skip has no job id to name (the run then says "a record
  // (line N)" and counts each such line), never an empty one ("job  (line N)", all counted as one).
  it.each([
    [
      'an empty JobID',
      '|8|ann|COMPLETED|00:01:00|00:30.000|cpu=1|||2025-01-01T00:00:00|2025-01-01T00:01:00',
      /^not a Slurm job id: ""$/,
    ],
    [
      'a JobID of spaces',
      '  |8|ann|COMPLETED|00:01:00|00:30.000|cpu=1|||2025-01-01T00:00:00|2025-01-01T00:01:00',
      /^not a Slurm job id: " {2}"$/,
    ],
    ['an empty JobID and too few fields', '|8|ann|COMPLETED', /^expected 11 fields, found 4$/],
  ])('a line with %s is skipped without a job id, by its line number', (_label, line, reason) => {
    const items = parseSacctText([header, good, goodStep, line, good.replaceAll('7', '5')].join('\n'), options);
    expect(items.filter((item) => item.kind === 'skip')).toEqual([
      { kind: 'skip', line: 4, jobId: null, reason: expect.stringMatching(reason) },
    ]);
    expect([...jobsOf(items).keys()].sort()).toEqual(['5', '7']);
  });

  it('skips a whole job when one of its steps is malformed (its sums would be wrong)', () => {
    const badStep = goodStep.replace('1024K', '12Q');
    const items = parseSacctText([header, good, badStep, goodStep.replace('batch', '0')].join('\n'), options);
    expect(items).toEqual([
      {
        kind: 'skip',
        line: 3,
        jobId: '7',
        reason: expect.stringMatching(/step 7.batch: not a memory size/),
        job: { cluster: 'fallback', jobId: '7' },
      },
    ]);
  });

  it('skips a whole job whose step memory cannot be summed exactly, rather than bill it short', () => {
    const hugeStep = goodStep.replace('1024K', '99999999P');
    const items = parseSacctText([header, good, hugeStep].join('\n'), options);
    expect(items).toEqual([
      {
        kind: 'skip',
        line: 2,
        jobId: '7',
        reason: expect.stringMatching(/^step batch: AveRSS is not a whole number/),
        job: { cluster: 'fallback', jobId: '7' },
      },
    ]);
  });

  // The line reader keeps only the start of a line longer than it holds (line-reader.ts).
  it.each([
    ['a job line', `8|8|ann|COMPLETED|00:01:00|00:30.000|cpu=1,mem=1G,node=1|||2025-01-0${CUT_LINE_MARK}`, '8', 4],
    // Even cut inside its last field, where it has every field: it is not read as a whole line.
    ['a job line cut in its last field', `${good.replaceAll('7', '8').slice(0, -3)}${CUT_LINE_MARK}`, '8', 4],
  ])('skips %s that the reader cut, naming its job', (_label, line, jobId, lineNumber) => {
    const items = parseSacctText([header, good, goodStep, line, good.replaceAll('7', '5')].join('\n'), options);
    expect(items.filter((item) => item.kind === 'skip')).toEqual([
      { kind: 'skip', line: lineNumber, jobId, reason: expect.stringMatching(/^a line longer than \d+ characters$/) },
    ]);
    expect([...jobsOf(items).keys()].sort()).toEqual(['5', '7']);
  });

  it('skips the whole job when the reader cut one of its steps (its sums would be wrong)', () => {
    const cutStep = `${goodStep.replace('batch', '0').slice(0, 40)}${CUT_LINE_MARK}`;
    const items = parseSacctText([header, good, goodStep, cutStep, good.replaceAll('7', '5')].join('\n'), options);
    expect(items.filter((item) => item.kind === 'skip')).toEqual([
      {
        kind: 'skip',
        line: 4,
        jobId: '7',
        reason: expect.stringMatching(/^step 7\.0: a line longer than/),
        job: { cluster: 'fallback', jobId: '7' },
      },
    ]);
    expect([...jobsOf(items).keys()]).toEqual(['5']);
  });

  describe('a runaway value never reaches a skip whole (skips are logged)', () => {
    const huge = 'x'.repeat(1_000_000);
    const digits = '9'.repeat(1_000_000);
    const cut = (text: string) => `${text.slice(0, 61)}...`;
    it.each([
      ['a line of one huge field', huge, cut(huge), /^expected 11 fields, found 1$/],
      ['a huge JobID in a line with too few fields', `${digits}|x`, cut(digits), /^expected 11 fields, found 2$/],
      ['a huge JobID that is not a job id', good.replace(/^7/, huge), cut(huge), /^not a Slurm job id: "x{57}\.\.\."$/],
      [
        'a huge step id without its job row',
        goodStep.replace(/^7\.batch/, `${digits}.batch`),
        cut(digits),
        /^step 9{61}\.\.\. without its job row before it$/,
        // Its JobIDRaw (`7.batch`) names its job.
        '7',
      ],
      ['a huge JobIDRaw', good.replace('7|7|', `8|${huge}|`), '8', /^JobIDRaw is not a number: "x{57}\.\.\."$/],
      [
        'a huge TRES value',
        good.replace('7|7|', '8|8|').replace('cpu=1,', `cpu=${huge},`),
        '8',
        /^TRES cpu is not a number: "x{57}\.\.\."$/,
        '8',
      ],
    ])('%s', (_label, line, jobId, reason, rawId?: string) => {
      const items = parseSacctText([header, good, goodStep, line].join('\n'), options);
      const skips = items.filter((item) => item.kind === 'skip');
      const job = rawId === undefined ? {} : { job: { cluster: 'fallback', jobId: rawId } };
      expect(skips).toEqual([{ kind: 'skip', line: 4, jobId, reason: expect.stringMatching(reason), ...job }]);
      expect(JSON.stringify(skips).length).toBeLessThan(300);
    });
  });

  it('reads past the header row repeated, as `cat a.psv b.psv` of two sacct exports gives it', () => {
    const next = good.replaceAll('7', '8');
    const items = parseSacctText([header, good, goodStep, header, `${next}\r`, header].join('\n'), options);
    expect(items.filter((item) => item.kind === 'skip')).toEqual([]);
    expect(items.flatMap((item) => (item.kind === 'job' ? [[item.job.jobKey, item.job.stepCount]] : []))).toEqual([
      ['7', 1],
      ['8', 0],
    ]);
  });

  it('refuses output without a header row or a needed column', () => {
    expect(() => parseSacctText(good, options)).toThrow(SacctHeaderError);
    expect(() => parseSacctText('', options)).toThrow(SacctHeaderError);
  });
});

describe('sacct lines with the wrong number of fields (final/sacct-steps-extra.psv, 35 columns)', () => {
  // Lines: 4 = job 2, 5-8 = its steps 2.batch, 2.0, 2.1, 2.2; 9 = job 3, 10 = 3.batch. User comes before JobID.
  const capture = read('final/sacct-steps-extra.psv');
  const dropLastField = (line: string) => line.slice(0, line.lastIndexOf('|'));
  const allKeys = ['1', '2', '3', '4', '5', '7', '9', '6_1', '6_2', '6_3', '12', '13'];
  const fullJob2 = { totalCpuSec: 5.693, stepCount: 4 };

  it.each([
    [
      'a step of the open job without its last field',
      7,
      dropLastField,
      [{ line: 7, jobId: '2', reason: 'step 2.1: expected 35 fields, found 34', job: { cluster: 'lab', jobId: '2' } }],
      ['2'],
    ],
    [
      'a step of the open job cut right after its JobID',
      7,
      () => '|2.1|',
      [{ line: 7, jobId: '2', reason: 'step 2.1: expected 35 fields, found 3', job: { cluster: 'lab', jobId: '2' } }],
      ['2'],
    ],
    [
      'a step of the open job cut inside its JobID',
      7,
      () => '|2.',
      [
        { line: 7, jobId: '2.', reason: 'expected 35 fields, found 2' },
        {
          line: 4,
          jobId: '2',
          reason: 'line 7 after it cannot be read (expected 35 fields, found 2) and may be one of its steps',
          job: { cluster: 'lab', jobId: '2' },
        },
      ],
      ['2'],
    ],
    [
      'a line cut before its JobID, after the open job',
      7,
      () => '|',
      [
        { line: 7, jobId: null, reason: 'expected 35 fields, found 2' },
        {
          line: 4,
          jobId: '2',
          reason: 'line 7 after it cannot be read (expected 35 fields, found 2) and may be one of its steps',
          job: { cluster: 'lab', jobId: '2' },
        },
      ],
      ['2'],
    ],
    [
      'the next job row without its last field (its step goes with it)',
      9,
      dropLastField,
      [{ line: 9, jobId: '3', reason: 'expected 35 fields, found 34' }],
      ['3'],
    ],
    [
      'the next job row cut inside its JobID, which cannot be a step of the open job',
      9,
      () => 'bob|3',
      [
        { line: 9, jobId: '3', reason: 'expected 35 fields, found 2' },
        {
          line: 10,
          jobId: '3.batch',
          reason: 'step 3.batch without its job row before it',
          job: { cluster: 'lab', jobId: '3' },
        },
      ],
      ['3'],
    ],
  ])('%s', (_label, lineNumber, edit, skips, lost) => {
    const lines = capture.split('\n');
    lines[lineNumber - 1] = edit(lines[lineNumber - 1] as string);
    const items = parseSacctText(lines.join('\n'), options);
    expect(items.filter((item) => item.kind === 'skip')).toEqual(skips.map((skip) => ({ kind: 'skip', ...skip })));
    const jobs = jobsOf(items);
    expect([...jobs.keys()]).toEqual(allKeys.filter((key) => !lost.includes(key)));
    if (!lost.includes('2')) expect(jobs.get('2')).toMatchObject(fullJob2);
  });

  it('a cut step row of another job (its job row missing) is skipped alone; the open job keeps its steps', () => {
    const lines = capture.split('\n');
    lines[7] = dropLastField((lines[7] as string).replace('|2.2|', '|8.2|'));
    const items = parseSacctText(lines.join('\n'), options);
    expect(items.filter((item) => item.kind === 'skip')).toEqual([
      { kind: 'skip', line: 8, jobId: '8.2', reason: 'step 8.2: expected 35 fields, found 34' },
    ]);
    expect(jobsOf(items).get('2')).toMatchObject({ totalCpuSec: 4.139, stepCount: 3 });
  });

  it("a damaged job row of another job among the open job's steps is skipped alone; the open job keeps its steps", () => {
    // A bad line in a file (FALLBACK_CSV) between 2.batch and 2.0: it used to close job 2, which was
    // stored with its batch step alone (0.038 s of CPU of 5.693, 0.000052 memory GB-hours of 0.000482, billed so), and
    // its steps after the line were skipped as "without its job row before it".
    const lines = capture.split('\n');
    lines.splice(5, 0, 'bob|77|broken|physics|debug|normal|xx:yy|zz');
    const items = parseSacctText(lines.join('\n'), options);
    expect(items.filter((item) => item.kind === 'skip')).toEqual([
      { kind: 'skip', line: 6, jobId: '77', reason: 'expected 35 fields, found 8' },
    ]);
    expect([...jobsOf(items).keys()]).toEqual(allKeys);
    expect(jobsOf(items).get('2')).toMatchObject(fullJob2);
  });

  it("another job's row with a value that cannot be read, among the open job's steps, is skipped alone too", () => {
    const lines = capture.split('\n');
    const job77 = (lines[3] as string).replace('|2|multi-step|', '|77|multi-step|').replace('|2|lab|', '|77|lab|');
    lines.splice(5, 0, job77.replace('|16|', '|sixteen|'));
    const skips = parseSacctText(lines.join('\n'), options).filter((item) => item.kind === 'skip');
    expect(skips).toEqual([expect.objectContaining({ line: 6, jobId: '77', job: { cluster: 'lab', jobId: '77' } })]);
    expect(jobsOf(parseSacctText(lines.join('\n'), options)).get('2')).toMatchObject(fullJob2);
  });

  it('a damaged job row with steps of its own after it: they go with it, uncounted, and the open job is whole', () => {
    const lines = capture.split('\n');
    const job77 = (lines[3] as string).replace('|2|multi-step|', '|77|multi-step|').replace('|2|lab|', '|77|lab|');
    const step77 = (lines[4] as string).replace('|2.batch|', '|77.batch|').replace('|2.batch|lab|', '|77.batch|lab|');
    lines.splice(5, 0, dropLastField(job77), step77);
    const items = parseSacctText(lines.join('\n'), options);
    expect(items.filter((item) => item.kind === 'skip')).toEqual([
      { kind: 'skip', line: 6, jobId: '77', reason: 'expected 35 fields, found 34' },
    ]);
    expect(jobsOf(items).get('2')).toMatchObject(fullJob2);
  });

  it('a step named with `|`s (JobName the only free-text column) is read whole, with its job', () => {
    const lines = capture.split('\n');
    lines[6] = (lines[6] as string).replace('|bash|', '|b|a|sh|');
    const items = parseSacctText(lines.join('\n'), options);
    expect(items.every((item) => item.kind === 'job')).toBe(true);
    expect(jobsOf(items).get('2')).toMatchObject(fullJob2);
    expect(
      jobsOf(items)
        .get('2')
        ?.steps.map((step) => step.name),
    ).toContain('b|a|sh');
  });

  describe('a `|` inside a value (more fields than the header)', () => {
    // Comment is free text too: with two such columns the stray `|` could be in either.
    const row = (name: string, id: string) => `${name}|${id}|ann|COMPLETED|00:01:00|00:30.000|cpu=1|note`;
    it.each([
      [
        "after the JobID column: the JobID still says it is the open job's step",
        'JobID|JobName|User|State|Elapsed|TotalCPU|AllocTRES|Comment',
        (name: string, id: string) => row(name, id).replace(`${name}|${id}`, `${id}|${name}`),
        [
          {
            kind: 'skip',
            line: 3,
            jobId: '7',
            reason: 'step 7.0: expected 8 fields, found 9',
            job: { cluster: 'fallback', jobId: '7' },
          },
        ],
      ],
      [
        'before the JobID column (JobName first): the JobID cannot be trusted, the open job is skipped too',
        'JobName|JobID|User|State|Elapsed|TotalCPU|AllocTRES|Comment',
        row,
        [
          { kind: 'skip', line: 3, jobId: null, reason: 'expected 8 fields, found 9' },
          {
            kind: 'skip',
            line: 2,
            jobId: '7',
            reason: 'line 3 after it cannot be read (expected 8 fields, found 9) and may be one of its steps',
            job: { cluster: 'fallback', jobId: '7' },
          },
        ],
      ],
    ])('with two free-text columns, %s', (_label, header, line, skips) => {
      const text = [header, line('job', '7'), line('a|b', '7.0'), line('job', '8')].join('\n');
      const items = parseSacctText(text, options);
      expect(items.filter((item) => item.kind === 'skip')).toEqual(skips);
      expect([...jobsOf(items).keys()]).toEqual(['8']);
    });

    it.each([
      [
        'after the JobID column',
        'JobID|JobName|User|State|Elapsed|TotalCPU|AllocTRES',
        '7|a|b||c|ann|COMPLETED|00:01:00|00:30.000|cpu=1',
      ],
      [
        'before the JobID column',
        'JobName|JobID|User|State|Elapsed|TotalCPU|AllocTRES',
        'a|b||c|7|ann|COMPLETED|00:01:00|00:30.000|cpu=1',
      ],
    ])('with JobName the only free-text column, %s: the name is put back together', (_label, header, line) => {
      const items = parseSacctText([header, line].join('\n'), options);
      expect(items).toMatchObject([
        { kind: 'job', job: { jobKey: '7', name: 'a|b||c', user: 'ann', elapsedSec: 60, totalCpuSec: 30 } },
      ]);
    });
  });
});

describe('sacct lines whose End is before their Start', () => {
  const header = 'JobID|JobIDRaw|User|State|ElapsedRaw|CPUTimeRAW|AllocTRES|Start|End';
  // Kept as jobs (billed by ElapsedRaw and CPUTimeRAW); the ingestion run warns about them.
  it.each([
    [
      'inverted in the accounting itself',
      'UTC',
      '8|8|ann|COMPLETED|600|600|cpu=1,node=1|2026-11-20T05:00:00|2026-11-20T02:00:00',
      'End 2026-11-20 02:00:00 (UTC) is before Start 2026-11-20 05:00:00 (UTC)',
    ],
    [
      // Started 02:50 CEST, ended 20 minutes later at 02:10 CET: both read as CET.
      'across the repeated hour at the end of summer time',
      'Europe/Berlin',
      '8|8|ann|COMPLETED|1200|1200|cpu=1,node=1|2026-10-25T02:50:00|2026-10-25T02:10:00',
      'End 2026-10-25 02:10:00 (UTC+01:00) (Europe/Berlin) is before Start 2026-10-25 02:50:00 (UTC+01:00) (Europe/Berlin)',
    ],
    ['in order', 'UTC', '8|8|ann|COMPLETED|600|600|cpu=1,node=1|2026-11-20T02:00:00|2026-11-20T02:10:00', null],
  ])('a job %s is a job, not a skip', (_label, timeZone, line, problem) => {
    const items = parseSacctText([header, line].join('\n'), { timeZone, defaultCluster: 'lab' });
    expect(items).toEqual([expect.objectContaining({ kind: 'job', line: 2 })]);
    const job = (items[0] as Extract<SourceItem, { kind: 'job' }>).job;
    expect(job).toMatchObject({ elapsedSec: Number(line.split('|')[4]), isTerminal: true });
    expect(findTimeProblem(job, timeZone)).toBe(problem);
  });
});

describe('a name with newlines, which sacct prints across lines', () => {
  const header = 'JobID|JobName|User|State|ElapsedRaw';
  it.each([
    ['one newline', ['7|a', 'b|ann|COMPLETED|60'], 'a\nb'],
    ['two newlines and a blank line', ['7|a', '', 'b|ann|COMPLETED|60'], 'a\n\nb'],
    // Both used to be skipped: the first line ran past the name's column, or the rest had as many fields as a record.
    ['a `|` before the newline', ['7|a|b', 'c|ann|COMPLETED|60'], 'a|b\nc'],
    ['a `|` after the newline', ['7|a', 'b|c|ann|COMPLETED|60'], 'a\nb|c'],
    ['`|`s on both sides of two newlines', ['7|x|a', 'b|', '|c|ann|COMPLETED|60'], 'x|a\nb|\n|c'],
  ])('%s: the record is put back together', (_label, lines, name) => {
    const items = parseSacctText([header, ...lines, '8|job|ann|COMPLETED|5'].join('\n'), options);
    expect(items).toMatchObject([
      { kind: 'job', line: 2, job: { jobKey: '7', name, elapsedSec: 60 } },
      { kind: 'job', job: { jobKey: '8' } },
    ]);
  });

  it('lines that do not make up exactly one record are skipped as before; the record after them is kept', () => {
    const items = parseSacctText([header, '7|a', 'b|ann', '8|job|ann|COMPLETED|5'].join('\n'), options);
    expect(items).toMatchObject([
      { kind: 'skip', line: 2, jobId: '7', reason: 'expected 5 fields, found 3' },
      { kind: 'job', job: { jobKey: '8' } },
    ]);
  });

  it('a line cut short in the name, followed by a whole record, is never joined to it', () => {
    const items = parseSacctText([header, '7|a', '8|job|ann|COMPLETED|5'].join('\n'), options);
    expect(items).toMatchObject([
      { kind: 'skip', line: 2, jobId: '7', reason: 'expected 5 fields, found 2' },
      { kind: 'job', job: { jobKey: '8', name: 'job' } },
    ]);
  });
});

// A site's sacct file need not have the sacct source's columns: AllocCPUS and ReqMem (sacct before
// TRES, and many sites' exports) or no AveRSS. Memory is billed from what the file does say.
describe('memory from a file without AllocTRES or AveRSS', () => {
  const header = 'JobID|User|State|ElapsedRaw|AllocCPUS|AllocNodes|ReqMem|Start|End';
  const row = (id: number, cpus: number, nodes: number, reqMem: string) =>
    `${id}|ann|COMPLETED|3600|${cpus}|${nodes}|${reqMem}|2025-01-01T00:00:00|2025-01-01T01:00:00`;

  it.each([
    ['per CPU, times the CPUs it holds', row(1, 4, 1, '4000Mc'), 16_000],
    ['per node, times the nodes it holds', row(1, 8, 2, '2Gn'), 4096],
    ['per CPU in G, lower case', row(1, 2, 1, '1.5gc'), 3072],
    ['for the job (Slurm 21.08 and later print no suffix)', row(1, 4, 2, '1000M'), 1000],
    ['a bare number, in MB', row(1, 4, 2, '512'), 512],
    ['none asked', row(1, 4, 2, ''), 0],
  ])('ReqMem %s', (_label, line, memMb) => {
    const job = jobsOf(parseSacctText([header, line].join('\n'), options)).get('1');
    expect(job?.allocMemMb).toBe(memMb);
  });

  it('AllocTRES, when there, says what the job holds', () => {
    const text = [`${header}|AllocTRES`, `${row(1, 4, 1, '4000Mc')}|cpu=4,mem=1G,node=1`].join('\n');
    expect(jobsOf(parseSacctText(text, options)).get('1')?.allocMemMb).toBe(1024);
  });

  it.each([
    ['without an AveRSS column, no step memory: priced from the allocation', header, '', null],
    // A step that ended before its first sample (or any step under jobacct_gather/none) has AveRSS empty:
    // no figure either, not a measured 0 (it was summed to 0, and the job billed no memory).
    ['with an AveRSS column but no step sampled, no step memory either', `${header}|AveRSS`, '|', null],
    ['with an AveRSS column, the steps sum what they show', `${header}|AveRSS`, '|0', '0.000000'],
  ])('%s', (_label, head, empty, stepMem) => {
    const lines = [
      head,
      `${row(1, 4, 1, '4000Mc')}${empty}`,
      `${row(1, 4, 1, '').replace(/^1\|ann/, '1.batch|')}${empty}`,
    ];
    const job = jobsOf(parseSacctText(lines.join('\n'), options)).get('1');
    expect(job).toMatchObject({ stepCount: 1, stepMemGbHours: stepMem });
  });
});

describe('a file without an ElapsedRaw or Elapsed column', () => {
  // Every resource-hour is priced on a job's elapsed time: read as 0, a 4-CPU, 1-GPU, 1 GiB job of an hour
  // was billed no GPU-hours, no memory and no allocated CPU, and the file's window passed.
  const row = '1|ann|COMPLETED|cpu=4,gres/gpu=1,mem=1G,node=1|2025-01-01T00:00:00|2025-01-01T01:00:00';
  const columns = 'JobID|User|State|AllocTRES|Start|End';

  it.each([
    ['ElapsedRaw', `${columns}|ElapsedRaw`, `${row}|3600`],
    ['Elapsed', `${columns}|Elapsed`, `${row}|01:00:00`],
  ])('with %s, the job is priced on its elapsed time', (_column, head, line) => {
    const job = jobsOf(parseSacctText([head, line].join('\n'), options)).get('1') as NormalizedJob;
    const hours = computeResourceHours(job, 'allocated');
    expect([hours.cpuHours, hours.gpuHours, hours.memGbHours].map((h) => h.toFixed(6))).toEqual([
      '4.000000',
      '1.000000',
      '1.000000',
    ]);
  });

  it('without either, the file is refused, naming the columns to export', () => {
    const read = () => parseSacctText([columns, row].join('\n'), options);
    expect(read).toThrow(SacctHeaderError);
    expect(read).toThrow(
      /^its header row has no ElapsedRaw or Elapsed column, without which every job would be billed for no time: export it with --format=JobID,JobIDRaw,/,
    );
  });

  it('without either in a header row after the first, the lines under it are skipped', () => {
    const items = parseSacctText(
      [`${columns}|ElapsedRaw`, `${row}|3600`, columns, row.replace(/^1/, '2')].join('\n'),
      options,
    );
    expect(items.map((item) => (item.kind === 'job' ? item.job.jobKey : item.reason))).toEqual([
      '1',
      'a header row without the ElapsedRaw or Elapsed column a record needs (two sacct outputs of different formats joined?): the 1 line(s) under it were skipped',
    ]);
  });
});

describe('CPU time from a file without a TotalCPU column', () => {
  // A job of 4 CPUs for an hour with one step; a site's export may leave TotalCPU (and CPUTimeRAW) out.
  const columns = 'JobID|User|State|ElapsedRaw|AllocTRES|Start|End';
  const job = '1|ann|COMPLETED|3600|cpu=4,mem=1G,node=1|2025-01-01T00:00:00|2025-01-01T01:00:00';
  const step = '1.batch||COMPLETED|3600|cpu=4,mem=1G,node=1|2025-01-01T00:00:00|2025-01-01T01:00:00';

  it.each([
    // Read as 0 (each step's missing TotalCPU summed as 0), such a job was billed no CPU under `used`,
    // where docs/pricing.md falls back to CPUTimeRAW, then to allocated CPUs x elapsed.
    ['without TotalCPU, used CPU comes from CPUTimeRAW', `${columns}|CPUTimeRAW`, '|7200', '|7200', null, '2.000000'],
    ['without TotalCPU or CPUTimeRAW, from allocated CPUs x elapsed', columns, '', '', null, '4.000000'],
    ['with TotalCPU, the steps sum what they show', `${columns}|TotalCPU`, '|00:30:00', '|00:30:00', 1800, '0.500000'],
    ['with TotalCPU 0 on its steps, a real zero', `${columns}|TotalCPU`, '|00:00:00', '|00:00:00', 0, '0.000000'],
  ])('%s', (_label, head, jobCells, stepCells, totalCpuSec, cpuHours) => {
    const text = [head, `${job}${jobCells}`, `${step}${stepCells}`].join('\n');
    const parsed = jobsOf(parseSacctText(text, options)).get('1');
    expect(parsed).toMatchObject({ stepCount: 1, totalCpuSec });
    expect(computeResourceHours(parsed as NormalizedJob, 'used').cpuHours.toFixed(6)).toBe(cpuHours);
  });
});

// A fallback file is read beside slurmrestd or sacct, whose records carry JobIDRaw and Cluster. Without
// them its records are not the rows those sources store for the same jobs (an array task under its
// display id, a cluster named "default"), and a switch of source stored, and billed, such jobs twice.
describe('findKeyColumnProblem: whether a file names its jobs as slurmrestd and sacct do', () => {
  const header = (...names: string[]) => ['JobID', 'User', 'State', ...names].join('|');
  it.each([
    [header('JobIDRaw', 'Cluster'), false, null],
    [header('JobIDRaw', 'Cluster'), true, null],
    [header('JobIDRaw'), true, null],
    [` ${header('JobIDRaw', 'Cluster')}\r`, false, null],
    [header('Cluster'), false, 'it has no JobIDRaw column'],
    [header('Cluster'), true, 'it has no JobIDRaw column'],
    [header('JobIDRaw'), false, 'it has no Cluster column and SLURM_CLUSTER is unset'],
    [header(), false, 'it has no JobIDRaw or Cluster column and SLURM_CLUSTER is unset'],
    [header(), true, 'it has no JobIDRaw column'],
  ])('%j with SLURM_CLUSTER set: %s', (text, isClusterSet, start) => {
    const problem = findKeyColumnProblem(text, { isClusterSet });
    if (start === null) expect(problem).toBeNull();
    else expect(problem).toMatch(new RegExp(`^${start}: `));
  });

  it('says what goes wrong and what to do', () => {
    expect(findKeyColumnProblem(header(), { isClusterSet: false })).toBe(
      'it has no JobIDRaw or Cluster column and SLURM_CLUSTER is unset: its jobs would not be the rows ' +
        'slurmrestd and sacct store for them (an array task under its display id, 123_4, not its own job id; ' +
        'the cluster named "default"), so each job read both ways would be stored, and billed, twice. ' +
        'Add JobIDRaw and Cluster to the sacct --format that writes it, or set SLURM_CLUSTER',
    );
    expect(findKeyColumnProblem(header('Cluster'), { isClusterSet: false })).toBe(
      'it has no JobIDRaw column: its jobs would not be the rows slurmrestd and sacct store for them ' +
        '(an array task under its display id, 123_4, not its own job id), so each job read both ways would ' +
        'be stored, and billed, twice. Add JobIDRaw to the sacct --format that writes it',
    );
  });
});

describe('the cluster, as Slurm names it', () => {
  // Slurm lower-cases cluster names (slurm.conf(5) ClusterName), so sacct and slurmrestd store `lab`:
  // a record stored as `LAB` (SLURM_CLUSTER=LAB, or a file's Cluster column) was the same job twice.
  const header = 'JobID|JobIDRaw|Cluster|User|State|ElapsedRaw|Start|End|AllocTRES';
  const row = (cluster: string) => `7|7|${cluster}|ann|COMPLETED|60|2026-11-23T15:10:00|2026-11-23T15:11:00|cpu=1`;
  it.each([
    ['lab', 'fallback', 'lab'],
    ['LAB', 'fallback', 'lab'],
    ['', 'LAB', 'lab'],
    ['', 'Lab', 'lab'],
  ])('Cluster %j with the default %j is stored as %j', (cluster, defaultCluster, stored) => {
    const items = parseSacctText([header, row(cluster)].join('\n'), { timeZone: 'UTC', defaultCluster });
    expect(items).toEqual([
      expect.objectContaining({ kind: 'job', job: expect.objectContaining({ cluster: stored }) }),
    ]);
  });
});

describe('a header row after the first with other columns (`cat a.psv b.psv` of two sacct --formats)', () => {
  const header = 'JobID|JobIDRaw|Cluster|User|State|ElapsedRaw|AllocTRES';
  const first = '1|1|lab|ann|COMPLETED|60|cpu=1,mem=1G,node=1';
  const skipOf = (line: number, reason: string) => ({ kind: 'skip', line, jobId: null, reason });
  const withoutState =
    'a header row without the State column a record needs (two sacct outputs of different formats joined?): the 2 line(s) under it were skipped';

  it.each([
    [
      'columns in another order',
      ['User|State|JobID|JobIDRaw|AllocTRES|ElapsedRaw|Cluster', 'bob|FAILED|2|2|cpu=2,mem=2G,node=1|120|lab'],
      [['2', 'bob', 'FAILED', 120, 2, 'lab']],
      [],
    ],
    [
      'more columns, with CRLF line ends',
      [
        'JobID|Partition|JobIDRaw|Cluster|User|State|ElapsedRaw|AllocTRES\r',
        '3|gpu|3|lab|cy|COMPLETED|30|cpu=4,mem=1G,node=1\r',
      ],
      [['3', 'cy', 'COMPLETED', 30, 4, 'lab']],
      [],
    ],
    [
      'fewer columns that still have every one a record needs',
      ['JobID|User|State|ElapsedRaw|AllocCPUS', '4|dee|COMPLETED|40|8'],
      [['4', 'dee', 'COMPLETED', 40, 8, 'fallback']],
      [],
    ],
    [
      'no State column: the lines under it are skipped, as one skip, up to the next usable header',
      [
        'JobID|JobIDRaw|User|ElapsedRaw',
        '5|5|eve|50',
        '',
        '6|6|eve|60',
        header,
        '7|7|lab|fay|COMPLETED|70|cpu=1,mem=1G,node=1',
      ],
      [['7', 'fay', 'COMPLETED', 70, 1, 'lab']],
      [skipOf(3, withoutState)],
    ],
    [
      'no State column up to the end of the output',
      ['JobID|JobIDRaw|User|ElapsedRaw', '5|5|eve|50', '6|6|eve|60'],
      [],
      [skipOf(3, withoutState)],
    ],
    [
      'no JobID column (JobIDRaw only)',
      ['JobIDRaw|User|State', '8|gus|COMPLETED'],
      [],
      [
        skipOf(
          3,
          'a header row without the JobID column a record needs (two sacct outputs of different formats joined?): the 1 line(s) under it were skipped',
        ),
      ],
    ],
    [
      'one header without the columns, then another: each its own skip',
      ['JobID|User', '9|hal', 'JobID|State', '10|COMPLETED'],
      [],
      [
        skipOf(
          3,
          'a header row without the State column a record needs (two sacct outputs of different formats joined?): the 1 line(s) under it were skipped',
        ),
        skipOf(
          5,
          'a header row without the User column a record needs (two sacct outputs of different formats joined?): the 1 line(s) under it were skipped',
        ),
      ],
    ],
    ['a header without the columns and nothing under it', ['JobID|Elapsed', header], [], []],
  ])('%s', (_label, lines, jobs, skips) => {
    const items = parseSacctText([header, first, ...lines].join('\n'), options);
    expect(items.filter((item) => item.kind === 'skip')).toEqual(skips);
    const read = items.flatMap((item) =>
      item.kind === 'job'
        ? [[item.job.jobKey, item.job.user, item.job.state, item.job.elapsedSec, item.job.allocCpus, item.job.cluster]]
        : [],
    );
    expect(read).toEqual([['1', 'ann', 'COMPLETED', 60, 1, 'lab'], ...jobs]);
  });

  it('is no header row when a job merely has JobID in its name', () => {
    const items = parseSacctText(
      [`${header}|JobName`, `${first}|JobID`, '2|2|lab|bob|COMPLETED|60|cpu=1,mem=1G,node=1|JobID|x'].join('\n'),
      options,
    );
    expect(items.map((item) => (item.kind === 'job' ? item.job.name : item.reason))).toEqual(['JobID', 'JobID|x']);
  });

  it('ends the job before it: its steps were summed with its own columns', () => {
    const withRss = 'JobID|JobIDRaw|User|State|ElapsedRaw|AllocTRES|AveRSS';
    const items = parseSacctText(
      [
        withRss,
        '1|1|ann|COMPLETED|3600|cpu=1,mem=1G,node=1|',
        '1.batch|1.batch||COMPLETED|3600|cpu=1,mem=1G,node=1|1G',
        header,
        '2|2|lab|bob|COMPLETED|60|cpu=1,mem=1G,node=1',
      ].join('\n'),
      options,
    );
    expect(items.map((item) => (item.kind === 'job' ? [item.job.jobKey, item.job.stepMemGbHours] : item))).toEqual([
      ['1', '1.000000'],
      ['2', null],
    ]);
  });

  it('skips the lines under a header without the key columns a fallback file needs (requiredColumns)', () => {
    const items = parseSacctText([header, first, 'JobID|JobIDRaw|User|State', '2|2|bob|COMPLETED'].join('\n'), {
      ...options,
      requiredColumns: ['JobIDRaw', 'Cluster'],
    });
    expect(items.filter((item) => item.kind === 'skip')).toEqual([
      skipOf(
        3,
        'a header row without the Cluster column a record needs (two sacct outputs of different formats joined?): the 1 line(s) under it were skipped',
      ),
    ]);
  });
});

describe('the job a skipped record is of, as its row would be keyed (cluster and JobIDRaw)', () => {
  const header = 'JobID|JobIDRaw|Cluster|User|State|ElapsedRaw|AllocTRES';
  it.each([
    ['a job row with a bad value', '6_1|10|LAB|ann|COMPLETED|x|cpu=1', { cluster: 'lab', jobId: '10' }],
    ['a step without its job row', '6_1.batch|10.batch|lab||COMPLETED|60|cpu=1', { cluster: 'lab', jobId: '10' }],
    ['a job row without a cluster', '6_1|10||ann|COMPLETED|x|cpu=1', { cluster: 'fallback', jobId: '10' }],
    ['a job row whose JobIDRaw is no number', '6_1|ten|lab|ann|COMPLETED|60|cpu=1', undefined],
  ])('%s', (_label, line, job) => {
    const [skip] = parseSacctText([header, line].join('\n'), options);
    expect(skip).toMatchObject({ kind: 'skip', line: 2 });
    expect(skip?.kind === 'skip' ? skip.job : 'a job').toEqual(job);
  });

  it('without a JobIDRaw column, the job key, as readJob stores it', () => {
    const [skip] = parseSacctText(['JobID|User|State|ElapsedRaw', '6_1|ann|COMPLETED|x'].join('\n'), options);
    expect(skip).toMatchObject({ kind: 'skip', job: { cluster: 'fallback', jobId: '6_1' } });
  });
});

// Job 1 of the lab (22.05/held-cancelled, recorded 2026-12-05): `sbatch -H`, then scancel while held,
// never eligible nor started. With the sacct source's own arguments (`--state=...CA...`) sacct prints it
// in the window it was cancelled in, Start = End = the cancel, Elapsed 0, no AllocTRES; other Slurm
// builds and SLURM_TIME_FORMATs print `Unknown` or `None` for a time never set. Whatever the shape, it is
// read (not skipped) as a CANCELLED job that holds nothing, and the pricing core bills it nothing.
describe('a job held and then cancelled before it ran (22.05/held-cancelled)', () => {
  const capture = read('held-cancelled/sacct.psv');
  const [header = '', held = ''] = capture.split('\n');
  const start = '2026-12-05T19:01:40';
  it.each([
    ['as sacct 22.05 printed it (Start = End)', held, new Date('2026-12-05T19:01:40Z'), true],
    ['with Start Unknown', held.replace(`|${start}|${start}|`, `|Unknown|${start}|`), null, true],
    ['with Start None', held.replace(`|${start}|${start}|`, `|None|${start}|`), null, true],
    // No End: never taken as finished, so never billed (stored as not terminal).
    ['with Start and End Unknown', held.replace(`|${start}|${start}|`, '|Unknown|Unknown|'), null, false],
    ['with Elapsed instead of ElapsedRaw', held, new Date('2026-12-05T19:01:40Z'), true],
  ])('%s: read as a CANCELLED job that holds nothing, billed nothing', (label, line, startAt, isTerminal) => {
    const head = label.includes('ElapsedRaw') ? header.replace('|ElapsedRaw|', '|ElapsedRawX|') : header;
    expect(line).not.toBe('');
    const items = parseSacctText(`${head}\n${line}\n`, options);
    expect(items.map((item) => item.kind)).toEqual(['job']);
    const job = (items[0] as Extract<SourceItem, { kind: 'job' }>).job;
    expect(job).toMatchObject({
      jobId: '1',
      user: 'alice',
      state: 'CANCELLED',
      isTerminal,
      startAt,
      elapsedSec: 0,
      allocCpus: 0,
      allocMemMb: 0,
      allocGpus: 0,
      allocTres: '',
      totalCpuSec: 0,
      stepCount: 0,
      reqCpus: 1,
    });
    expect(findStorageProblem(job)).toBeNull();
    expect(findTimeProblem(job, 'UTC')).toBeNull();
    for (const basis of ['used', 'allocated'] as const) {
      const hours = computeResourceHours(job, basis);
      expect([hours.cpuHours, hours.gpuHours, hours.memGbHours].map((value) => value.toFixed())).toEqual([
        '0',
        '0',
        '0',
      ]);
    }
  });

  it('is read beside the job that ran in the same window, which keeps its figures', () => {
    const jobs = jobsOf(parseSacctText(capture, options));
    expect([...jobs.keys()]).toEqual(['1', '2']);
    expect(jobs.get('2')).toMatchObject({ state: 'COMPLETED', elapsedSec: 2, allocCpus: 1, stepCount: 1 });
  });
});
