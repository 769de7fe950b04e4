import { describe, expect, it } from 'vitest';
import { backfillDayWindow } from '../../../src/modules/ingestion/ingestion.service.js';
import { addLocalDays, toLocalDate } from '../../../src/shared/local-date.js';

/**
 * A backfill day's window was its 00:00 read as a sacct time: where summer time starts at midnight
 * the clocks go from 23:59:59 to 01:00, that 00:00 does not exist, and it was read an hour early (23:00
 * of the day before). A day is now [its first instant, the next day's first instant), as the usage pages'.
 */
describe('a backfill day in APP_TZ', () => {
  it.each([
    // Summer time starts at midnight: the day starts at 01:00, the jump.
    ['America/Santiago', '2026-09-06', '2026-09-06T04:00:00.000Z', '2026-09-07T03:00:00.000Z'],
    ['America/Santiago', '2026-09-05', '2026-09-05T04:00:00.000Z', '2026-09-06T04:00:00.000Z'],
    ['America/Asuncion', '2024-10-06', '2024-10-06T04:00:00.000Z', '2024-10-07T03:00:00.000Z'],
    ['America/Havana', '2026-03-08', '2026-03-08T05:00:00.000Z', '2026-03-09T04:00:00.000Z'],
    ['Asia/Beirut', '2026-03-29', '2026-03-28T22:00:00.000Z', '2026-03-29T21:00:00.000Z'],
    // Summer time ends at midnight: 23:00 to 23:59 of the day before are shown twice (Beirut), or the
    // day's first hour is (Havana); the day starts after the first or at the first of them.
    ['Asia/Beirut', '2026-10-25', '2026-10-24T22:00:00.000Z', '2026-10-25T22:00:00.000Z'],
    ['America/Havana', '2026-11-01', '2026-11-01T04:00:00.000Z', '2026-11-02T05:00:00.000Z'],
    ['Europe/Berlin', '2026-03-29', '2026-03-28T23:00:00.000Z', '2026-03-29T22:00:00.000Z'],
    ['UTC', '2026-09-06', '2026-09-06T00:00:00.000Z', '2026-09-07T00:00:00.000Z'],
  ])('in %s, %s is read from %s to %s', (timeZone, day, start, end) => {
    const window = backfillDayWindow(day, timeZone);
    expect([window.start.toISOString(), window.end.toISOString()]).toEqual([start, end]);
    // Its first second is of the day, the second before it of the day before; the next day starts at its end.
    expect(toLocalDate(window.start, timeZone)).toBe(day);
    expect(toLocalDate(new Date(window.start.getTime() - 1000), timeZone)).toBe(addLocalDays(day, -1));
    expect(toLocalDate(new Date(window.end.getTime() - 1000), timeZone)).toBe(day);
    expect(backfillDayWindow(addLocalDays(day, 1), timeZone).start).toEqual(window.end);
  });
});
