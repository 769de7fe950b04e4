import { describe, expect, it } from 'vitest';
import { counted, formatCount, listedNames } from '../../src/shared/counted.js';

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

describe('names listed in a sentence', () => {
  // A username from Slurm (a hand-made sacct file's) with a right-to-left override turned the rest of
  // the sentence around where it was listed: the month-end summary's "By user: …", the audit log's
  // "is part of 3 actors: …". Each name's bidirectional controls are written as their escapes.
  it('writes a bidirectional control in a name as its escape, so it turns nothing after it around', () => {
    expect(listedNames(['x\u202eabc (2)', 'bob (1)'])).toBe('x\\u202eabc (2), bob (1)');
    expect(listedNames(['a\u2066b', 'plain'])).toBe('a\\u2066b, plain');
  });
});
