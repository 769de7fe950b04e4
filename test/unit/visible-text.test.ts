import { describe, expect, it } from 'vitest';
import { countVisibleCharacters, revealControls } from '../../src/shared/visible-text.js';

describe('countVisibleCharacters', () => {
  it.each([
    ['duplicate receipt', 16],
    ['   ', 0],
    ['\u200b\u200c\u200d\u2060\ufeff', 0],
    ['\u200e\u200f\u202a\u202e', 0],
    ['a\u200bb\u200bc', 3],
    ['ค่าบริการ', 7],
    ['5.00 THB', 7],
    ['—!?', 3],
    ['e\u0301', 1],
  ])('counts %j as %i', (text, count) => {
    expect(countVisibleCharacters(text)).toBe(count);
  });
});

describe('revealControls', () => {
  it.each([
    ['train\u001b[31mred', 'train\\u001b[31mred'],
    ['csi\u009b2J', 'csi\\u009b2J'],
    ['\u0000\u0001\u0007\u0008\u000b\u000c\u000e\u001f', '\\u0000\\u0001\\u0007\\u0008\\u000b\\u000c\\u000e\\u001f'],
    ['del\u007f c1\u0080\u0085', 'del\\u007f c1\\u0080\\u0085'],
    ['rlo\u202e lri\u2066', 'rlo\\u202e lri\\u2066'],
    // White space a terminal only moves its cursor for, and the neighbours of each range, stay.
    ['tab\tlf\ncr\r', 'tab\tlf\ncr\r'],
    ['~ \u00a0\u00ff\u200e\u2029\u206a', '~ \u00a0\u00ff\u200e\u2029\u206a'],
    ['\\u001b', '\\u001b'],
  ])('writes %j as %j', (text, revealed) => {
    expect(revealControls(text)).toBe(revealed);
  });
});
