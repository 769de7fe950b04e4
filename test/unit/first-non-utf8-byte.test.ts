import { describe, expect, it } from 'vitest';
import { findFirstNonUtf8Byte } from '../../src/shared/utf8-bytes.js';

const bytes = (...parts: (string | number[])[]) =>
  Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part) : Buffer.from(part))));

describe('findFirstNonUtf8Byte', () => {
  it.each([
    ['nothing', bytes()],
    ['ASCII', bytes('{"a":1}')],
    ['characters of two, three and four bytes', bytes('é€😀')],
    ['a byte-order mark and U+FFFD written whole', bytes([0xef, 0xbb, 0xbf], '\ufffd')],
  ])('finds none in %s', (_label, text) => {
    expect(findFirstNonUtf8Byte(text)).toBeUndefined();
  });

  it.each([
    ['a byte no UTF-8 has', bytes('é€', [0xff], 'a'), 5],
    ['a continuation byte alone', bytes('ab', [0x80]), 2],
    ['a character cut short before ASCII', bytes('😀', [0xe2, 0x82], 'x'), 4],
    ['a character cut short at the end', bytes('ab', [0xf0, 0x9f, 0x98]), 2],
    ['an overlong form', bytes('a', [0xc0, 0xaf]), 1],
    ['a surrogate', bytes('a', [0xed, 0xa0, 0x80]), 1],
    ['a code point past U+10FFFF', bytes('a', [0xf4, 0x90, 0x80, 0x80]), 1],
    ['the first of two', bytes([0xef, 0xbb, 0xbf], 'a', [0xfe], 'b', [0xff]), 4],
  ])('finds %s at the offset where its sequence begins, counted in bytes', (_label, text, offset) => {
    expect(findFirstNonUtf8Byte(text)).toBe(offset);
  });

  it('finds one at the far end of a body of 64 KiB', () => {
    const body = bytes('€'.repeat(21_845), [0xc3]);
    expect(findFirstNonUtf8Byte(body)).toBe(65_535);
  });
});
