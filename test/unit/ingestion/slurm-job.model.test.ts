import { describe, expect, it } from 'vitest';
import { findTimeProblem } from '../../../src/modules/ingestion/slurm-job.model.js';

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
