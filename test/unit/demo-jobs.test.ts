import { describe, expect, it } from 'vitest';
import {
  formatSlurmCpuTime,
  formatSlurmDuration,
  generateDemoJobs,
  renderSacctFile,
  SACCT_DEMO_COLUMNS,
  summarizeJob,
} from '../../src/modules/demo/demo-jobs.js';
import { parseSacctText } from '../../src/modules/ingestion/sacct.parser.js';

describe('Slurm duration formats', () => {
  it.each([
    [0, '00:00:00'],
    [59, '00:00:59'],
    [3_661, '01:01:01'],
    [93_784, '1-02:03:04'],
  ])('formats %i s of Elapsed as %s', (seconds, text) => {
    expect(formatSlurmDuration(seconds)).toBe(text);
  });

  it.each([
    [0.003, '00:00.003'],
    [65.5, '01:05.500'],
    [3_600, '01:00:00'],
  ])('formats %f s of TotalCPU as %s', (seconds, text) => {
    expect(formatSlurmCpuTime(seconds)).toBe(text);
  });
});

describe('generateDemoJobs', () => {
  const now = new Date('2026-11-23T12:00:00Z');

  it('is deterministic, inside the window, and finished', () => {
    const jobs = generateDemoJobs({ count: 500, now, days: 90 });
    expect(generateDemoJobs({ count: 500, now, days: 90 })).toEqual(jobs);
    for (const job of jobs) {
      expect(job.end.getTime()).toBeLessThanOrEqual(now.getTime());
      expect(job.end.getTime()).toBeGreaterThan(now.getTime() - 90 * 86_400_000);
      expect(job.start.getTime()).toBe(job.end.getTime() - job.elapsedSec * 1000);
      expect(job.steps.length).toBeGreaterThanOrEqual(2);
    }
    expect(new Set(jobs.map((job) => job.user)).size).toBeGreaterThan(20);
    expect(jobs.some((job) => job.allocGpus > 0)).toBe(true);
    expect(new Set(jobs.map((job) => job.state))).toEqual(
      new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'OUT_OF_MEMORY']),
    );
  });

  it('renders an sacct --parsable2 file: a header, then each job followed by its steps', () => {
    const jobs = generateDemoJobs({ count: 3, now, days: 1 });
    const lines = renderSacctFile(jobs, 'Asia/Bangkok').trimEnd().split('\n');
    expect(lines[0]).toBe(SACCT_DEMO_COLUMNS.join('|'));
    const stepCount = jobs.reduce((sum, job) => sum + job.steps.length, 0);
    expect(lines).toHaveLength(1 + jobs.length + stepCount);
    for (const line of lines) expect(line.split('|')).toHaveLength(SACCT_DEMO_COLUMNS.length);
    const first = jobs[0];
    const row = Object.fromEntries(SACCT_DEMO_COLUMNS.map((column, index) => [column, lines[1]?.split('|')[index]]));
    expect(row.JobID).toBe(String(first?.jobId));
    expect(row.User).toBe(first?.user);
    // sacct prints the cluster's local time: Bangkok is UTC+7.
    const endUtc = first?.end as Date;
    const local = new Date(endUtc.getTime() + 7 * 3_600_000).toISOString().slice(0, 19);
    expect(row.End).toBe(local);
    expect(lines[2]?.split('|')[0]).toBe(`${first?.jobId}.batch`);
  });
});

describe('summarizeJob (the rows npm run bench:data writes without ingesting)', () => {
  it('gives each job the memory GB-hours that ingesting its sacct lines stores, to the last digit', () => {
    const jobs = generateDemoJobs({ count: 400, now: new Date('2026-11-23T12:00:00Z'), days: 30, seed: 8 });
    const ingested = new Map(
      parseSacctText(renderSacctFile(jobs, 'UTC'), { timeZone: 'UTC', defaultCluster: 'demo' }).flatMap((item) =>
        item.kind === 'job' ? [[item.job.jobId, item.job.stepMemGbHours] as const] : [],
      ),
    );
    expect(ingested.size).toBe(jobs.length);
    for (const job of jobs) expect(summarizeJob(job).stepMemGbHours).toBe(ingested.get(String(job.jobId)));
  });
});
