import { describe, expect, it } from 'vitest';
import { hasDaysAfterToday, listPerDayDays } from '../../src/modules/usage/per-day-listing.js';

/**
 * Which days of a window Per day lists: the page (getUserUsage) and its HEAD (checkUserUsagePage)
 * both ask this one rule, the page with its day series and the HEAD with one max(end_at).
 */
const TODAY = '2026-02-15';

describe('listPerDayDays', () => {
  it.each([
    // window, last day with a job (or none), last day listed, days listed, any days to come
    ['window ending before today, no jobs', ['2026-01-01', '2026-01-31'], undefined, '2026-01-31', 31, false],
    ['window ending before today, jobs', ['2026-01-01', '2026-01-31'], '2026-01-10', '2026-01-31', 31, false],
    ['window ending today, no jobs', ['2026-02-01', '2026-02-15'], undefined, '2026-02-15', 15, false],
    ['window ending today, last job today', ['2026-02-01', '2026-02-15'], '2026-02-15', '2026-02-15', 15, false],
    ['window past today, no jobs', ['2026-02-01', '2026-02-28'], undefined, '2026-02-15', 15, true],
    ['window past today, last job today', ['2026-02-01', '2026-02-28'], '2026-02-15', '2026-02-15', 15, true],
    ['window past today, last job before today', ['2026-02-01', '2026-02-28'], '2026-02-03', '2026-02-15', 15, true],
    ['window past today, a job after today', ['2026-02-01', '2026-02-28'], '2026-02-20', '2026-02-20', 20, true],
    ['window past today, a job on its last day', ['2026-02-01', '2026-02-28'], '2026-02-28', '2026-02-28', 28, false],
    ['window of today alone, no jobs', ['2026-02-15', '2026-02-15'], undefined, '2026-02-15', 1, false],
    ['window from tomorrow, no jobs', ['2026-02-16', '2026-03-31'], undefined, undefined, 0, true],
    ['window wholly after today, no jobs', ['2026-03-01', '2026-03-31'], undefined, undefined, 0, true],
    ['window wholly after today, jobs only there', ['2026-03-01', '2026-03-31'], '2026-03-10', '2026-03-10', 10, true],
    [
      'window wholly after today, a job on its last day',
      ['2026-03-01', '2026-03-31'],
      '2026-03-31',
      '2026-03-31',
      31,
      false,
    ],
    [
      'window wholly after today, a job on its first day',
      ['2026-03-01', '2026-03-31'],
      '2026-03-01',
      '2026-03-01',
      1,
      true,
    ],
  ] as const)('%s', (_, [start, end], lastJobDay, lastListed, count, hasDaysToCome) => {
    expect(listPerDayDays({ start, end }, TODAY, lastJobDay)).toEqual({ lastListed, count, hasDaysToCome });
  });

  it('ignores a job day outside the window (the window decides what can be listed)', () => {
    expect(listPerDayDays({ start: '2026-03-01', end: '2026-03-31' }, TODAY, '2026-04-02')).toEqual({
      lastListed: undefined,
      count: 0,
      hasDaysToCome: true,
    });
    expect(listPerDayDays({ start: '2026-02-01', end: '2026-02-28' }, TODAY, '2026-01-20')).toEqual({
      lastListed: '2026-02-15',
      count: 15,
      hasDaysToCome: true,
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
