import { describe, expect, it } from 'vitest';
import { containsNulCharacter } from '../../src/http/reject-nul-characters.js';

describe('containsNulCharacter', () => {
  it.each([
    ['a plain string', 'alice', false],
    ['a string with a NUL', 'ali\u0000ce', true],
    ['an empty body', {}, false],
    ['no body at all', undefined, false],
    ['a form field', { username: 'a\u0000' }, true],
    ['a field name', { 'user\u0000name': 'alice' }, true],
    ['a nested array', { notes: ['fine', { deeper: 'x\u0000' }] }, true],
    ['numbers and booleans', { amount: 12, isPaid: true, note: null }, false],
    ['the text "%00", which is not a NUL', { note: '%00' }, false],
  ])('%s: %s', (_case, body, expected) => {
    expect(containsNulCharacter(body)).toBe(expected);
  });
});
