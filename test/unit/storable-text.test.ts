import { describe, expect, it } from 'vitest';
import { NUL_CHARACTER_MESSAGE, UNPAIRED_SURROGATE_MESSAGE, unstorableTextIn } from '../../src/shared/storable-text.js';

describe('unstorableTextIn', () => {
  it.each([
    ['a plain string', 'alice', undefined],
    ['a string with a NUL', 'ali\u0000ce', NUL_CHARACTER_MESSAGE],
    ['an empty body', {}, undefined],
    ['no body at all', undefined, undefined],
    ['a form field', { username: 'a\u0000' }, NUL_CHARACTER_MESSAGE],
    ['a field name', { 'user\u0000name': 'alice' }, NUL_CHARACTER_MESSAGE],
    ['a nested array', { notes: ['fine', { deeper: 'x\u0000' }] }, NUL_CHARACTER_MESSAGE],
    ['numbers and booleans', { amount: 12, isPaid: true, note: null }, undefined],
    ['the text "%00", which is not a NUL', { note: '%00' }, undefined],
    ['a lone high surrogate', { description: '\ud800' }, UNPAIRED_SURROGATE_MESSAGE],
    ['a lone low surrogate', { description: 'a\udc00b' }, UNPAIRED_SURROGATE_MESSAGE],
    ['a pair the wrong way round', 'x\udc00\ud800', UNPAIRED_SURROGATE_MESSAGE],
    ['a surrogate in a field name', { '\udfff': 'x' }, UNPAIRED_SURROGATE_MESSAGE],
    ['a nested surrogate', { notes: ['fine', { deeper: '\ud83d' }] }, UNPAIRED_SURROGATE_MESSAGE],
    ['a whole pair (an emoji)', { description: 'rocket \ud83d\ude80' }, undefined],
    ['the text "\\ud800", which is six characters', { note: '\\ud800' }, undefined],
    ['U+FFFD, what a bad %-escape decodes to', { user: '\ufffd' }, undefined],
  ])('%s: %s', (_case, body, expected) => {
    expect(unstorableTextIn(body)).toBe(expected);
  });
});
