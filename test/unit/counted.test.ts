import { describe, expect, it } from 'vitest';
import { counted, formatCount } from '../../src/shared/counted.js';

describe('counts in messages', () => {
  it.each([
    [0, '0 jobs'],
    [1, '1 job'],
    [999, '999 jobs'],
    [1_000, '1,000 jobs'],
    [12_001, '12,001 jobs'],
    [1_234_567, '1,234,567 jobs'],
  ])('words %i as %s', (count, text) => {
    expect(counted(count, 'job')).toBe(text);
  });

  it('groups a bare count as the pages do', () => {
    expect(formatCount(3_000)).toBe('3,000');
  });
});
