import { describe, expect, it } from 'vitest';
import { JsonNumberText } from '../../src/http/lossless-json.js';
import {
  addLocalDays,
  daysBetween,
  endOfLocalDay,
  isLocalDate,
  startOfLocalDay,
  toLocalDate,
  ZLocalDate,
  ZOptionalLocalDate,
} from '../../src/shared/local-date.js';

describe('local days', () => {
  it.each([
    ['2026-03-10', 'UTC', '2026-03-10T00:00:00.000Z'],
    ['2026-03-10', 'Asia/Bangkok', '2026-03-09T17:00:00.000Z'],
    ['2026-03-29', 'Europe/Berlin', '2026-03-28T23:00:00.000Z'],
    ['2026-03-30', 'Europe/Berlin', '2026-03-29T22:00:00.000Z'],
    ['2026-11-01', 'America/New_York', '2026-11-01T04:00:00.000Z'],
    // Summer time starts at midnight: the day starts at 01:00 new time.
    ['2024-09-08', 'America/Santiago', '2024-09-08T04:00:00.000Z'],
    ['2024-03-10', 'America/Havana', '2024-03-10T05:00:00.000Z'],
    // Summer time ends at midnight: 00:00 comes once, after the repeated hour of the day before.
    ['2024-04-07', 'America/Santiago', '2024-04-07T04:00:00.000Z'],
  ])('%s in %s starts at %s', (date, zone, iso) => {
    expect(startOfLocalDay(date, zone).toISOString()).toBe(iso);
  });

  it('ends a day when the next one starts, across a DST change (23-hour day)', () => {
    const start = startOfLocalDay('2026-03-29', 'Europe/Berlin');
    const end = endOfLocalDay('2026-03-29', 'Europe/Berlin');
    expect((end.getTime() - start.getTime()) / 3_600_000).toBe(23);
  });

  it.each([
    'UTC',
    'Europe/Berlin',
    'America/Santiago',
    'America/Havana',
    'Asia/Beirut',
    'Australia/Lord_Howe',
    'Asia/Bangkok',
  ])('starts every day of 2024 and 2025 in %s at its first second', (zone) => {
    for (let date = '2024-01-01'; date <= '2025-12-31'; date = addLocalDays(date, 1)) {
      const start = startOfLocalDay(date, zone);
      expect(toLocalDate(start, zone), `${date} starts on its own date`).toBe(date);
      expect(toLocalDate(new Date(start.getTime() - 1000), zone) < date, `${date} starts no later`).toBe(true);
    }
  });

  it('names the local date of an instant', () => {
    expect(toLocalDate(new Date('2026-03-09T17:30:00Z'), 'Asia/Bangkok')).toBe('2026-03-10');
    expect(toLocalDate(new Date('2026-03-09T17:30:00Z'), 'UTC')).toBe('2026-03-09');
  });

  it.each(['2026-02-30', '2026-13-01', '26-01-01', 'yesterday', ''])('refuses %j as a date', (text) => {
    expect(ZLocalDate.safeParse(text).success).toBe(false);
  });

  it.each([
    ['', 'is required'],
    ['   ', 'is required'],
    ['yesterday', 'must be a date as YYYY-MM-DD (got "yesterday")'],
    ['2026/09/01', 'must be a date as YYYY-MM-DD (got "2026/09/01")'],
    [' 01-09-2026 ', 'must be a date as YYYY-MM-DD (got "01-09-2026")'],
    ['2026-02-30', 'is not a real calendar date (2026-02-30)'],
    // A fifth digit typed into a browser's date field's year: Chromium's holds years up to 275760 and
    // sends them as typed, and "must be a date as YYYY-MM-DD" told a date picked in a picker it was
    // in the wrong format.
    ['20266-01-01', 'must be between 1900-01-01 and 2999-12-31'],
    ['275760-09-13', 'must be between 1900-01-01 and 2999-12-31'],
    ['0266-01-01', 'must be between 1900-01-01 and 2999-12-31'],
    // Quoted as JSON writes a string: a quote, a backslash or a control character cannot end the
    // quote early or break the line, and a bidirectional control is written out, not obeyed.
    ['say "when"', 'must be a date as YYYY-MM-DD (got "say \\"when\\"")'],
    ['2026\t09\n01', 'must be a date as YYYY-MM-DD (got "2026\\t09\\n01")'],
    ['\u202e10-90-6202', 'must be a date as YYYY-MM-DD (got "\\u202e10-90-6202")'],
    ['2026\u200b-09-01\u{e0041}', 'must be a date as YYYY-MM-DD (got "2026\\u200b-09-01\\udb40\\udc41")'],
    // Bounded: what was typed is shown for the reader to recognise, not echoed whole.
    ['x'.repeat(500), `must be a date as YYYY-MM-DD (got "${'x'.repeat(32)}…")`],
    ['😀'.repeat(40), `must be a date as YYYY-MM-DD (got "${'😀'.repeat(32)}…")`],
  ])('says why %j is no date', (text, reason) => {
    expect(ZLocalDate.safeParse(text).error?.issues.map((issue) => issue.message)).toEqual([reason]);
  });

  it.each([
    [undefined, undefined],
    ['', undefined],
    ['   ', undefined],
    [' 2026-03-10 ', '2026-03-10'],
  ])('reads %j as an optional date %j', (text, date) => {
    expect(ZOptionalLocalDate.parse(text)).toBe(date);
  });

  // A JSON number, true or an object was "must be text", which named no format.
  it.each([
    [20260101, 'must be a date as YYYY-MM-DD (got 20260101)'],
    [false, 'must be a date as YYYY-MM-DD (got false)'],
    [{ y: 2026 }, 'must be a date as YYYY-MM-DD (got {"y":2026})'],
    [{ n: 'x'.repeat(100) }, `must be a date as YYYY-MM-DD (got {"n":"${'x'.repeat(26)}…)`],
    [{ toJSON: 1 }, 'must be a date as YYYY-MM-DD (got {"toJSON":1})'],
    [new JsonNumberText('20260101.5'), 'must be a date as YYYY-MM-DD (got 20260101.5)'],
    [Number.POSITIVE_INFINITY, 'must be a date as YYYY-MM-DD (got a number too large to read)'],
  ])('names the format to %j sent where a date goes, required or not', (value, reason) => {
    for (const schema of [ZLocalDate, ZOptionalLocalDate]) {
      expect(schema.safeParse(value).error?.issues.map((issue) => issue.message)).toEqual([reason]);
    }
  });

  it('still refuses an optional date that is given but no date', () => {
    expect(ZOptionalLocalDate.safeParse('yesterday').error?.issues.map((issue) => issue.message)).toEqual([
      'must be a date as YYYY-MM-DD (got "yesterday")',
    ]);
  });
});

describe('local date arithmetic', () => {
  it.each([
    ['2025-09-10', true],
    ['2024-02-29', true],
    ['2025-02-29', false],
    ['2025-9-1', false],
  ])('%s is a local date: %s', (text, expected) => {
    expect(isLocalDate(text)).toBe(expected);
  });

  it('adds days across months and years, and counts them', () => {
    expect(addLocalDays('2025-02-27', 3)).toBe('2025-03-02');
    expect(addLocalDays('2025-01-01', -1)).toBe('2024-12-31');
    expect(daysBetween('2025-09-01', '2025-09-08')).toBe(7);
    expect(daysBetween('2025-09-08', '2025-09-01')).toBe(-7);
  });

  it('a Bangkok day ends at 17:00 UTC', () => {
    expect(endOfLocalDay('2025-09-10', 'Asia/Bangkok').toISOString()).toBe('2025-09-10T17:00:00.000Z');
  });
});
