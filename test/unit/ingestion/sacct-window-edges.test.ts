/**
 * The window sacct is asked for, written in APP_TZ (sacct runs with TZ=APP_TZ). A wall-clock time the
 * clocks show twice (the hour repeated when summer time ends) has two readings, and sacct takes either:
 * Slurm's parse_time hands it to mktime with tm_isdst = -1, which in a fresh process reads 02:15 on
 * 2026-10-25 in Europe/Berlin as 01:15 UTC (the later reading) and 01:15 on 2026-11-01 in New York as
 * 05:15 UTC (the earlier one). The edges written must hold the window meant under either reading.
 */
import { describe, expect, it } from 'vitest';
import { buildSacctArgs, type SacctSourceOptions } from '../../../src/modules/ingestion/sacct.source.js';
import { formatLocalTimestamp } from '../../../src/modules/ingestion/slurm-time.parser.js';
import { zoneOffsetMs } from '../../../src/shared/local-date.js';

const optionsIn = (timeZone: string): SacctSourceOptions => ({
  sacctPath: '/usr/bin/sacct',
  timeZone,
  cluster: undefined,
  defaultCluster: 'lab',
  timeoutMs: 1000,
  inheritedEnvironment: {},
});

function edgesOf(timeZone: string, start: string, end: string): { start: string; end: string } {
  const args = buildSacctArgs(optionsIn(timeZone), { start: new Date(start), end: new Date(end) });
  const value = (name: string) => args.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3) ?? '';
  return { start: value('starttime'), end: value('endtime') };
}

/** Every instant whose wall-clock time in the zone is `text` (two in a repeated hour, else one). */
function readingsOf(text: string, timeZone: string): number[] {
  const naive = Date.parse(`${text}Z`);
  const offsets = new Set([-12, -6, 0, 6, 12].map((hours) => zoneOffsetMs(naive + hours * 3_600_000, timeZone)));
  return [...offsets]
    .map((offset) => naive - offset)
    .filter((instant) => formatLocalTimestamp(new Date(instant), timeZone) === text);
}

describe('the window sacct is asked for around the hour repeated when summer time ends', () => {
  it.each<[zone: string, start: string, end: string, expected: { start: string; end: string }]>([
    // An ordinary window: as it is.
    [
      'Europe/Berlin',
      '2026-10-24T10:00:00Z',
      '2026-10-24T10:15:00Z',
      { start: '2026-10-24T12:00:00', end: '2026-10-24T12:15:00' },
    ],
    // The first 02:15-02:30 (CEST): read as CET, it was 01:15-01:30 UTC, an hour late, and the jobs that
    // ended meanwhile were in no window. Its start is written before the repeated hour.
    [
      'Europe/Berlin',
      '2026-10-25T00:15:00Z',
      '2026-10-25T00:30:00Z',
      { start: '2026-10-25T01:15:00', end: '2026-10-25T02:30:00' },
    ],
    // The second 02:15-02:30 (CET): read as CEST, its end was an hour early. Its end is written after it.
    [
      'Europe/Berlin',
      '2026-10-25T01:15:00Z',
      '2026-10-25T01:30:00Z',
      { start: '2026-10-25T02:15:00', end: '2026-10-25T03:30:00' },
    ],
    // From the first 02:45 to the second 02:00: read as CET both, it began after it ended.
    [
      'Europe/Berlin',
      '2026-10-25T00:45:00Z',
      '2026-10-25T01:00:00Z',
      { start: '2026-10-25T01:45:00', end: '2026-10-25T03:00:00' },
    ],
    [
      'America/New_York',
      '2026-11-01T05:15:00Z',
      '2026-11-01T06:30:00Z',
      { start: '2026-11-01T00:15:00', end: '2026-11-01T02:30:00' },
    ],
    // Half an hour repeated on Lord Howe Island (01:30-02:00).
    [
      'Australia/Lord_Howe',
      '2026-04-04T14:45:00Z',
      '2026-04-04T15:20:00Z',
      { start: '2026-04-05T01:15:00', end: '2026-04-05T02:20:00' },
    ],
  ])('%s %s .. %s is asked as %j', (zone, start, end, expected) => {
    expect(edgesOf(zone, start, end)).toEqual(expected);
  });

  it.each([
    ['Europe/Berlin', '2026-10-24T22:00:00Z'],
    ['America/New_York', '2026-11-01T03:00:00Z'],
    ['Australia/Lord_Howe', '2026-04-04T12:00:00Z'],
    ['Australia/Sydney', '2026-04-04T13:00:00Z'],
  ])('every 15-minute window of the night %s changes its clocks (from %s) holds under either reading', (zone, from) => {
    const misread: string[] = [];
    for (let minute = 0; minute < 6 * 60; minute += 1) {
      const start = Date.parse(from) + minute * 60_000;
      const end = start + 15 * 60_000;
      const edges = edgesOf(zone, new Date(start).toISOString(), new Date(end).toISOString());
      if (readingsOf(edges.start, zone).some((reading) => reading > start)) misread.push(`start ${edges.start}`);
      if (readingsOf(edges.end, zone).some((reading) => reading < end)) misread.push(`end ${edges.end}`);
    }
    expect(misread).toEqual([]);
  });
});
