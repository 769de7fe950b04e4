import { describe, expect, it } from 'vitest';
import {
  createLocalTimeConverter,
  formatLocalTimestamp,
  isKnownState,
  isTerminalState,
  normalizeClusterName,
  normalizeState,
  parseDurationSec,
  parseMemory,
  parseTimelimitRawSec,
  parseTres,
  SlurmParseError,
  summarizeTres,
} from '../../../src/modules/ingestion/slurm-time.parser.js';
import { toLocalDate } from '../../../src/shared/local-date.js';

describe('parseDurationSec', () => {
  it.each([
    ['00:00:20', 20],
    ['1-02:00:00', 26 * 3600],
    ['12-00:00:01', 12 * 86_400 + 1],
    ['00:30:00', 1800],
    ['05:00.500', 300.5],
    ['00:05.694', 5.694],
    ['00:00.003', 0.003],
    ['59:59', 3599],
    ['100:00:00', 360_000],
    ['1-00:00:00.250', 86_400.25],
    ['2-12', 2 * 86_400 + 12 * 3600],
    ['2-12:30', 2 * 86_400 + 12 * 3600 + 30 * 60],
  ])('parses %s as %f seconds', (text, seconds) => {
    expect(parseDurationSec(text)).toBeCloseTo(seconds, 6);
  });

  // slurmrestd's {seconds, microseconds} is read as whole milliseconds / 1000; sacct's text must
  // give the very same double, or every switch of source rewrites the job (7 + 0.903 is not 7.903).
  it.each([
    ['00:07.903', 7903],
    ['00:05.694', 5694],
    ['01:02:03.107', 3_723_107],
    ['1-00:00:00.250', 86_400_250],
    ['00:00.1', 100],
  ])('parses %s as exactly %i milliseconds / 1000', (text, millis) => {
    expect(parseDurationSec(text)).toBe(millis / 1000);
  });

  it.each(['', 'Unknown', 'INVALID', 'None', '  '])('reads "%s" as no value', (text) => {
    expect(parseDurationSec(text)).toBeNull();
  });

  it('reads UNLIMITED as Infinity, apart from missing', () => {
    expect(parseDurationSec('UNLIMITED')).toBe(Number.POSITIVE_INFINITY);
  });

  it.each(['abc', '1:2:3:4', '00:61:00', '-5', '12', '1-', '00:00:60'])('refuses "%s"', (text) => {
    expect(() => parseDurationSec(text)).toThrow(SlurmParseError);
  });
});

describe('parseTimelimitRawSec', () => {
  it.each([
    ['1', 60],
    ['525600', 525_600 * 60],
    ['UNLIMITED', null],
    ['Partition_Limit', null],
    ['', null],
  ])('reads %s', (text, seconds) => {
    expect(parseTimelimitRawSec(text)).toBe(seconds);
  });
});

describe('parseMemory', () => {
  it.each([
    ['3380K', 3380 * 1024, undefined],
    ['200M', 200 * 1024 ** 2, undefined],
    ['1G', 1024 ** 3, undefined],
    ['1.50G', 1.5 * 1024 ** 3, undefined],
    ['2T', 2 * 1024 ** 4, undefined],
    ['0', 0, undefined],
    ['512', 512, undefined],
    ['4000Mc', 4000 * 1024 ** 2, 'cpu'],
    ['16Gn', 16 * 1024 ** 3, 'node'],
  ])('reads %s', (text, bytes, per) => {
    expect(parseMemory(text)).toEqual({ bytes, per });
  });

  it('reads a bare number in the unit the column uses', () => {
    expect(parseMemory('600', 'M')?.bytes).toBe(600 * 1024 ** 2);
  });

  it.each(['', 'Unknown'])('reads "%s" as no value', (text) => {
    expect(parseMemory(text)).toBeNull();
  });

  it.each(['12Q', 'K', '1,5G', '-1M'])('refuses "%s"', (text) => {
    expect(() => parseMemory(text)).toThrow(SlurmParseError);
  });
});

describe('TRES', () => {
  it('sums typed GPUs only when the untyped count is missing', () => {
    expect(summarizeTres(parseTres('billing=3,cpu=1,gres/gpu:fake=1,gres/gpu=1,mem=256M,node=1'))).toEqual({
      cpus: 1,
      memMb: 256,
      gpus: 1,
      nodes: 1,
      billing: 3,
      energyJoules: null,
    });
    expect(summarizeTres(parseTres('cpu=8,gres/gpu:a100=2,gres/gpu:v100=1,mem=1G')).gpus).toBe(3);
  });

  it('reads memory units and a missing list', () => {
    expect(summarizeTres(parseTres('cpu=2,mem=1.50G,node=1')).memMb).toBe(1536);
    expect(summarizeTres(parseTres(''))).toMatchObject({ cpus: 0, memMb: 0, gpus: 0, billing: null });
  });

  it.each(['cpu', 'cpu=x', '=1'])('refuses "%s"', (text) => {
    expect(() => summarizeTres(parseTres(text))).toThrow(SlurmParseError);
  });

  // A typed GPU count that is not one used to count as 0 GPUs (or as -1), so the job was stored, and
  // billed, without its GPUs and the run said success; slurmrestd's reader skips such a record. Slurm
  // prints TRES counts as plain decimal numbers, so hex or exponent forms are not counts either.
  it.each([
    ['cpu=1,gres/gpu:a100=x,mem=200M', 'TRES gres/gpu:a100 is not a number: "x"'],
    ['cpu=1,gres/gpu:a100=-1', 'TRES gres/gpu:a100 is not a number: "-1"'],
    ['cpu=1,gres/gpu:a100=2,gres/gpu:v100=two', 'TRES gres/gpu:v100 is not a number: "two"'],
    ['cpu=0x10,mem=1G', 'TRES cpu is not a number: "0x10"'],
    ['cpu=1,gres/gpu=1e3', 'TRES gres/gpu is not a number: "1e3"'],
  ])('refuses the count in "%s"', (text, message) => {
    expect(() => summarizeTres(parseTres(text))).toThrow(new SlurmParseError(message));
  });

  it.each([
    ['cpu=1,gres/gpu:a100=2,gres/gpu:v100=1', 3],
    ['cpu=1,gres/gpu:a100=,gres/gpu:v100=1', 1],
    ['cpu=1,gres/gpu=2,gres/gpu:a100=x', 2],
  ])('counts the GPUs of "%s" as %d', (text, gpus) => {
    expect(summarizeTres(parseTres(text)).gpus).toBe(gpus);
  });
});

describe('local timestamps', () => {
  it('reads UTC as is', () => {
    expect(createLocalTimeConverter('UTC')('2026-11-23T15:41:03')?.toISOString()).toBe('2026-11-23T15:41:03.000Z');
  });

  it.each([
    ['Asia/Bangkok', '2025-03-01T07:00:00', '2025-03-01T00:00:00.000Z'],
    ['Europe/Berlin', '2025-01-15T12:00:00', '2025-01-15T11:00:00.000Z'],
    ['Europe/Berlin', '2025-07-15T12:00:00', '2025-07-15T10:00:00.000Z'],
    // The hour that repeats when summer time ends is ambiguous in sacct's output: the later reading is taken.
    ['Europe/Berlin', '2025-10-26T02:30:00', '2025-10-26T01:30:00.000Z'],
    ['America/New_York', '2025-03-09T01:59:59', '2025-03-09T06:59:59.000Z'],
    ['America/New_York', '2025-03-09T03:00:00', '2025-03-09T07:00:00.000Z'],
  ])('converts %s wall clock %s to %s', (zone, text, iso) => {
    expect(createLocalTimeConverter(zone)(text)?.toISOString()).toBe(iso);
  });

  // Zones half an hour off the hour change their clocks at a half hour UTC (Adelaide at 16:30Z):
  // an offset looked up per whole UTC hour read 03:15 on the morning summer time starts as 04:15.
  it.each([
    ['Australia/Adelaide', '2026-10-04T03:15:00', '2026-10-03T16:45:00.000Z'],
    ['Australia/Adelaide', '2026-10-04T03:29:59', '2026-10-03T16:59:59.000Z'],
    ['Australia/Lord_Howe', '2026-10-04T02:45:00', '2026-10-03T15:45:00.000Z'],
  ])('converts %s wall clock %s, just after a change at a half hour UTC, to %s', (zone, text, iso) => {
    expect(createLocalTimeConverter(zone)(text)?.toISOString()).toBe(iso);
  });

  // A wall-clock time the clocks skipped (sacct on a host whose zone data still has a change the app's
  // has not, or a file written by hand) is read as the time it would be had they not jumped: as late
  // as the jump, as east of UTC. West of UTC it was read an hour early, and where summer time starts at
  // midnight (Santiago, Havana) a job sacct printed as ending at 00:30 was put on the day before.
  it.each([
    ['America/Santiago', '2026-09-06T00:30:00', '2026-09-06T04:30:00.000Z', '2026-09-06'],
    ['America/Havana', '2026-03-08T00:30:00', '2026-03-08T05:30:00.000Z', '2026-03-08'],
    ['America/New_York', '2026-03-08T02:30:00', '2026-03-08T07:30:00.000Z', '2026-03-08'],
    ['Europe/Berlin', '2026-03-29T02:30:00', '2026-03-29T01:30:00.000Z', '2026-03-29'],
    ['Pacific/Chatham', '2026-09-27T02:50:00', '2026-09-26T14:05:00.000Z', '2026-09-27'],
  ])('reads %s wall clock %s, which the clocks skipped, forward by the jump: %s, on %s', (zone, text, iso, day) => {
    const instant = createLocalTimeConverter(zone)(text) as Date;
    expect(instant.toISOString()).toBe(iso);
    expect(toLocalDate(instant, zone)).toBe(day);
  });

  it.each([
    ['Australia/Adelaide', '2026-10-03T12:00:00Z'],
    ['Australia/Adelaide', '2026-04-04T12:00:00Z'],
    ['Australia/Lord_Howe', '2026-10-03T12:00:00Z'],
    ['Australia/Lord_Howe', '2026-04-04T12:00:00Z'],
    ['America/St_Johns', '2026-03-08T00:00:00Z'],
    ['America/St_Johns', '2026-11-01T00:00:00Z'],
    ['Asia/Kathmandu', '2026-03-08T00:00:00Z'],
    ['America/New_York', '2026-11-01T00:00:00Z'],
    ['Europe/Berlin', '2026-03-29T00:00:00Z'],
  ])(
    'every minute of the day around %s clock change from %s reads back as the wall clock sacct printed',
    (zone, from) => {
      const convert = createLocalTimeConverter(zone);
      const misread: string[] = [];
      for (let minute = 0; minute < 24 * 60; minute += 1) {
        const text = formatLocalTimestamp(new Date(Date.parse(from) + minute * 60_000), zone);
        const instant = convert(text) as Date;
        if (formatLocalTimestamp(instant, zone) !== text) misread.push(`${text} -> ${instant.toISOString()}`);
      }
      expect(misread).toEqual([]);
    },
  );

  it('round-trips with formatLocalTimestamp', () => {
    const instant = new Date('2025-06-30T23:59:59Z');
    for (const zone of ['UTC', 'Asia/Bangkok', 'America/Los_Angeles']) {
      expect(createLocalTimeConverter(zone)(formatLocalTimestamp(instant, zone))).toEqual(instant);
    }
  });

  it.each(['Unknown', 'None', ''])('reads "%s" as no time', (text) => {
    expect(createLocalTimeConverter('UTC')(text)).toBeNull();
  });

  it.each(['2026-02-30T00:00:00', '2026-11-23 15:41:03', '1795448463', '2026-11-23T25:00:00'])(
    'refuses "%s"',
    (text) => {
      expect(() => createLocalTimeConverter('UTC')(text)).toThrow(SlurmParseError);
    },
  );
});

describe('normalizeState', () => {
  it.each([
    ['CANCELLED by 1002', 'CANCELLED'],
    ['COMPLETED', 'COMPLETED'],
    ['running', 'RUNNING'],
    ['OUT_OF_MEMORY', 'OUT_OF_MEMORY'],
  ])('reads %s as %s', (text, state) => {
    expect(normalizeState(text)).toBe(state);
  });
});

describe('isTerminalState and isKnownState', () => {
  // Slurm's job states (sacct(1) and squeue(1) JOB STATE CODES, and the state flags slurmrestd and
  // squeue print on their own): a job in one the app does not know is stored as not finished, and
  // the run says so (ingestion.service.ts), rather than leaving it unbilled without a word.
  it.each([
    ['BOOT_FAIL', true, true],
    ['CANCELLED', true, true],
    ['COMPLETED', true, true],
    ['DEADLINE', true, true],
    ['FAILED', true, true],
    ['NODE_FAIL', true, true],
    ['OUT_OF_MEMORY', true, true],
    ['PREEMPTED', true, true],
    ['TIMEOUT', true, true],
    ['PENDING', false, true],
    ['RUNNING', false, true],
    ['SUSPENDED', false, true],
    ['REQUEUED', false, true],
    ['REQUEUE_HOLD', false, true],
    ['REQUEUE_FED', false, true],
    ['RESIZING', true, true],
    ['REVOKED', false, true],
    ['COMPLETING', false, true],
    ['CONFIGURING', false, true],
    ['STOPPED', false, true],
    ['SIGNALING', false, true],
    ['STAGE_OUT', false, true],
    ['SPECIAL_EXIT', false, true],
    ['RESV_DEL_HOLD', false, true],
    ['UPDATE_DB', false, true],
    ['POWER_UP_NODE', false, true],
    ['LAUNCH_FAILED', false, true],
    ['RECONFIG_FAIL', false, true],
    ['EXPEDITING', false, true],
    ['COMPLETD', false, false],
    ['ARCHIVED', false, false],
    ['', false, false],
  ])('%s: terminal %s, known %s', (state, isTerminal, isKnown) => {
    expect(isTerminalState(state)).toBe(isTerminal);
    expect(isKnownState(state)).toBe(isKnown);
  });
});

describe('normalizeClusterName', () => {
  // slurm.conf(5) ClusterName: upper-case letters are mapped to lower case in the accounting database.
  it.each([
    ['lab', 'lab'],
    ['LAB', 'lab'],
    ['Lab-2', 'lab-2'],
    [' lab ', 'lab'],
  ])('reads %j as %j', (text, cluster) => {
    expect(normalizeClusterName(text)).toBe(cluster);
  });
});
