import { describe, expect, it } from 'vitest';
import { hasDaysAfterToday, listPerDayDays } from '../../src/modules/usage/per-day-listing.js';

/**
 * Which days of a window Per day lists: the page (getUserUsage) and its HEAD (checkUserUsagePage)
 * both ask this one rule, the page with its day series and the HEAD with one max(end_at).
 */
const TODAY = '2026-02-15';

describe('listPerDayDays', () => {
  it.each([
    // window, last day with a job (or none), last day listed, days listed, the days not listed (or none)
    ['window ending before today, no jobs', ['2026-01-01', '2026-01-31'], undefined, '2026-01-31', 31, undefined],
    ['window ending before today, jobs', ['2026-01-01', '2026-01-31'], '2026-01-10', '2026-01-31', 31, undefined],
    ['window ending today, no jobs', ['2026-02-01', '2026-02-15'], undefined, '2026-02-15', 15, undefined],
    ['window ending today, last job today', ['2026-02-01', '2026-02-15'], '2026-02-15', '2026-02-15', 15, undefined],
    ['window ending tomorrow, no jobs', ['2026-02-01', '2026-02-16'], undefined, '2026-02-15', 15, ['2026-02-16']],
    ['window ending tomorrow, a job tomorrow', ['2026-02-01', '2026-02-16'], '2026-02-16', '2026-02-16', 16, undefined],
    ['window past today, no jobs', ['2026-02-01', '2026-02-28'], undefined, '2026-02-15', 15, ['2026-02-16']],
    ['window past today, last job today', ['2026-02-01', '2026-02-28'], '2026-02-15', '2026-02-15', 15, ['2026-02-16']],
    [
      'window past today, last job before today',
      ['2026-02-01', '2026-02-28'],
      '2026-02-03',
      '2026-02-15',
      15,
      ['2026-02-16'],
    ],
    // The days from tomorrow to the job's are listed: only those after the job's are not.
    ['window past today, a job tomorrow', ['2026-02-01', '2026-02-28'], '2026-02-16', '2026-02-16', 16, ['2026-02-17']],
    [
      'window past today, a job after today',
      ['2026-02-01', '2026-02-28'],
      '2026-02-20',
      '2026-02-20',
      20,
      ['2026-02-21'],
    ],
    [
      'window past today, a job on its day before last',
      ['2026-02-01', '2026-02-28'],
      '2026-02-27',
      '2026-02-27',
      27,
      ['2026-02-28'],
    ],
    [
      'window past today, a job on its last day',
      ['2026-02-01', '2026-02-28'],
      '2026-02-28',
      '2026-02-28',
      28,
      undefined,
    ],
    ['window of today alone, no jobs', ['2026-02-15', '2026-02-15'], undefined, '2026-02-15', 1, undefined],
    ['window of tomorrow alone, no jobs', ['2026-02-16', '2026-02-16'], undefined, undefined, 0, ['2026-02-16']],
    ['window of tomorrow alone, a job on it', ['2026-02-16', '2026-02-16'], '2026-02-16', '2026-02-16', 1, undefined],
    ['window from tomorrow, no jobs', ['2026-02-16', '2026-03-31'], undefined, undefined, 0, ['2026-02-16']],
    // Not from tomorrow: the days before the window's start are none of its days.
    ['window wholly after today, no jobs', ['2026-03-01', '2026-03-31'], undefined, undefined, 0, ['2026-03-01']],
    [
      'window wholly after today, jobs only there',
      ['2026-03-01', '2026-03-31'],
      '2026-03-10',
      '2026-03-10',
      10,
      ['2026-03-11'],
    ],
    [
      'window wholly after today, a job on its last day',
      ['2026-03-01', '2026-03-31'],
      '2026-03-31',
      '2026-03-31',
      31,
      undefined,
    ],
    [
      'window wholly after today, a job on its first day',
      ['2026-03-01', '2026-03-31'],
      '2026-03-01',
      '2026-03-01',
      1,
      ['2026-03-02'],
    ],
  ] as const)('%s', (_, [start, end], lastJobDay, lastListed, count, notListedFrom) => {
    const notListed = notListedFrom === undefined ? undefined : { start: notListedFrom[0], end };
    expect(listPerDayDays({ start, end }, TODAY, lastJobDay)).toEqual({ lastListed, count, notListed });
  });

  it('leaves out only days after today and after the last day with a job, up to the window end', () => {
    // The rule the page's note states ("after today, and no job has ended on them yet"), for every
    // window within a week either side of today and every last job day in it (or none).
    const days = Array.from({ length: 15 }, (_, i) => new Date(Date.UTC(2026, 1, 8 + i)).toISOString().slice(0, 10));
    for (const start of days) {
      for (const end of days.filter((day) => day >= start)) {
        for (const lastJobDay of [undefined, ...days.filter((day) => day >= start && day <= end)]) {
          const { lastListed, count, notListed } = listPerDayDays({ start, end }, TODAY, lastJobDay);
          const label = `${start}..${end}, last job ${lastJobDay}`;
          if (notListed === undefined) {
            expect(lastListed, label).toBe(end);
            continue;
          }
          expect(notListed.end, label).toBe(end);
          expect(notListed.start > TODAY, label).toBe(true);
          if (lastJobDay !== undefined) expect(notListed.start > lastJobDay, label).toBe(true);
          // Listed and not listed are the window's days, each once, with no gap between them.
          expect(notListed.start, label).toBe(
            lastListed === undefined ? start : new Date(Date.parse(lastListed) + 86_400_000).toISOString().slice(0, 10),
          );
          expect(count, label).toBe(
            lastListed === undefined ? 0 : (Date.parse(lastListed) - Date.parse(start)) / 86_400_000 + 1,
          );
        }
      }
    }
  });

  it('ignores a job day outside the window (the window decides what can be listed)', () => {
    expect(listPerDayDays({ start: '2026-03-01', end: '2026-03-31' }, TODAY, '2026-04-02')).toEqual({
      lastListed: undefined,
      count: 0,
      notListed: { start: '2026-03-01', end: '2026-03-31' },
    });
    expect(listPerDayDays({ start: '2026-02-01', end: '2026-02-28' }, TODAY, '2026-01-20')).toEqual({
      lastListed: '2026-02-15',
      count: 15,
      notListed: { start: '2026-02-16', end: '2026-02-28' },
    });
  });
});

describe('hasDaysAfterToday', () => {
  it.each([
    [['2026-01-01', '2026-01-31'], false],
    [['2026-02-01', '2026-02-15'], false],
    [['2026-02-01', '2026-02-16'], true],
    [['2026-03-01', '2026-03-31'], true],
  ] as const)('%j: %s (only then can a job decide what is listed)', ([start, end], expected) => {
    expect(hasDaysAfterToday({ start, end }, TODAY)).toBe(expected);
  });
});
