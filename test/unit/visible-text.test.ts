import { describe, expect, it } from 'vitest';
import { countVisibleCharacters } from '../../src/shared/visible-text.js';

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
