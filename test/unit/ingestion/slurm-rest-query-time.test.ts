import { describe, expect, it } from 'vitest';
import { formatQueryTime } from '../../../src/modules/ingestion/slurm-rest.source.js';

const NOW = new Date('2026-12-05T12:00:00Z');

describe('formatQueryTime: a window edge as each slurmrestd API version reads it, whatever its zone', () => {
  it.each([
    // Slurm 22.05 and 23.02 parse a written time in their own zone: relative to now, 5 s more before a start.
    ['v0.0.36', '2026-12-05T11:45:00Z', 'start', 'now-905seconds'],
    ['v0.0.38', '2026-12-05T11:45:00Z', 'start', 'now-905seconds'],
    ['v0.0.38', '2026-12-05T12:00:00Z', 'end', 'now'],
    ['v0.0.39', '2026-12-05T11:45:00Z', 'start', 'now-905seconds'],
    ['v0.0.39', '2026-12-05T11:59:59.500Z', 'end', 'now'],
    // 23.11 and later take Unix timestamps: the same instant in any zone, rounded outwards.
    ['v0.0.40', '2026-12-05T11:45:00Z', 'start', '1796471100'],
    ['v0.0.40', '2026-12-05T12:00:00Z', 'end', '1796472000'],
    ['v0.0.42', '2026-12-05T11:45:00.700Z', 'start', '1796471100'],
    ['v0.0.44', '2026-12-05T11:59:59.300Z', 'end', '1796472000'],
    ['v0.0.45', '2026-11-23T15:40:43Z', 'start', '1795448443'],
  ] as const)('%s, %s as the %s', (version, edge, side, expected) => {
    expect(formatQueryTime(version, new Date(edge), NOW, side)).toBe(expected);
  });
});
