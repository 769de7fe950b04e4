import { describe, expect, it } from 'vitest';
import { findFieldLeftUndecoded, findNotUtf8Field } from '../../src/http/percent-encoded-utf8.js';

const latin1 = (text: string) => Buffer.from(text, 'latin1');

describe('findNotUtf8Field', () => {
  it.each([
    ['nothing', ''],
    ['ASCII', 'reason=late+fee&x=1'],
    ['escapes of UTF-8 in either case', 'reason=caf%C3%A9+%e2%82%ac+%F0%9F%98%80'],
    ['U+FFFD escaped as UTF-8', 'reason=%EF%BF%BD'],
    ['UTF-8 unescaped', 'reason=caf\u00c3\u00a9'],
    ['a % with no two hex digits after it (the parser keeps it as text)', 'reason=100%+%E&x=%'],
    ['an escaped & or = inside a value', 'reason=a%26b%3Dc'],
    ['a field with no =', 'flag&reason=caf%C3%A9'],
  ])('finds none in %s', (_label, text) => {
    expect(findNotUtf8Field(latin1(text))).toBeUndefined();
  });

  it.each([
    ['a Latin-1 escape', 'a=1&reason=caf%E9', { name: 'reason', sent: '%E9' }],
    ['an escape in lower case, as sent', 'reason=caf%e9', { name: 'reason', sent: '%e9' }],
    ['a byte sent unescaped', 'reason=caf\u00e9', { name: 'reason', sent: 'the byte 0xE9' }],
    ['a character cut short', 'reason=caf%C3', { name: 'reason', sent: '%C3' }],
    ['a character cut short by the next field', 'reason=caf%C3&x=%A9', { name: 'reason', sent: '%C3' }],
    ['a continuation byte alone', 'reason=%A9', { name: 'reason', sent: '%A9' }],
    ['an overlong form', 'reason=%C0%AF', { name: 'reason', sent: '%C0' }],
    ['a surrogate', 'reason=%ED%A0%80', { name: 'reason', sent: '%ED' }],
    ['a name that is not UTF-8', 'caf%E9=1', { name: undefined, sent: '%E9' }],
    ['a field with no = that is not UTF-8', 'caf%E9', { name: undefined, sent: '%E9' }],
    ['the first of two', 'a=%FF&b=%FE', { name: 'a', sent: '%FF' }],
    ['a name read as the parser reads it', 'my+field%21=%FF', { name: 'my field!', sent: '%FF' }],
    ['a long name, cut', `${'n'.repeat(50)}=%FF`, { name: `${'n'.repeat(40)}…`, sent: '%FF' }],
  ])('finds %s', (_label, text, field) => {
    expect(findNotUtf8Field(latin1(text))).toEqual(field);
  });

  it('finds one at the far end of a form of 100 kB', () => {
    const text = `reason=${'%C3%A9'.repeat(16_000)}&last=%E9`;
    expect(findNotUtf8Field(latin1(text))).toEqual({ name: 'last', sent: '%E9' });
  });
});

describe('findFieldLeftUndecoded', () => {
  it.each([
    ['no %', 'reason=late+fee'],
    ['escapes alone', 'reason=caf%C3%A9+%25'],
    ['a stray % alone in a field', 'reason=100%+refund+%ZZ+%E'],
    ['a stray % and escapes in different fields', 'reason=100%&note=caf%C3%A9'],
  ])('finds none in %s', (_label, text) => {
    expect(findFieldLeftUndecoded(latin1(text))).toBeUndefined();
  });

  it.each([
    ['a stray % after an escape', 'a=1&reason=caf%C3%A9+100%', { name: 'reason' }],
    ['a stray % before an escape', 'reason=%+caf%C3%A9', { name: 'reason' }],
    ['a % with one hex digit', 'reason=%41%4', { name: 'reason' }],
    ['a name', 'caf%C3%A9%=1', { name: undefined }],
  ])('finds %s', (_label, text, field) => {
    expect(findFieldLeftUndecoded(latin1(text))).toEqual(field);
  });
});
