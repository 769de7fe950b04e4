import { describe, expect, it } from 'vitest';
import {
  JsonDuplicateKeyError,
  JsonNumberText,
  JsonSyntaxError,
  type LosslessJson,
  parseJsonKeepingNumberText,
} from '../../src/http/lossless-json.js';

/** The parsed value with each number as JSON.parse would give it, to compare with JSON.parse. */
function asJsonParseWould(value: LosslessJson): unknown {
  if (value instanceof JsonNumberText) return Number(value.text);
  if (Array.isArray(value)) return value.map(asJsonParseWould);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, asJsonParseWould(item)]));
  }
  return value;
}

/** The parsed value with each number as the text the client sent, marked so it cannot pass for a string. */
function withNumberText(value: LosslessJson): unknown {
  if (value instanceof JsonNumberText) return { number: value.text };
  if (Array.isArray(value)) return value.map(withNumberText);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, withNumberText(item)]));
  }
  return value;
}

describe('parseJsonKeepingNumberText', () => {
  it.each([
    ['a rate as typed', '{"cpu":0.10}', { cpu: { number: '0.10' } }],
    ['more digits than a float holds', '{"cpu":0.10000000000000001}', { cpu: { number: '0.10000000000000001' } }],
    ['an exponent', '{"cpu":1e3}', { cpu: { number: '1e3' } }],
    ['a capital exponent with a sign', '{"cpu":1E+3,"gpu":1e-7}', { cpu: { number: '1E+3' }, gpu: { number: '1e-7' } }],
    ['a small number without an exponent', '{"cpu":0.0000001}', { cpu: { number: '0.0000001' } }],
    [
      'negative numbers',
      '{"a":-0,"b":-1.50,"c":-2e2}',
      { a: { number: '-0' }, b: { number: '-1.50' }, c: { number: '-2e2' } },
    ],
    ['a number past 2^53', '[9007199254740993]', [{ number: '9007199254740993' }]],
    ['digits and "e" inside a string', '{"note":"1e3 and 0.1"}', { note: '1e3 and 0.1' }],
    ['a string that looks like a number', '{"cpu":"1e3"}', { cpu: '1e3' }],
    ['escaped quotes and a backslash', '{"a":"say \\"1e3\\"\\\\","b":2}', { a: 'say "1e3"\\', b: { number: '2' } }],
    ['unicode and control escapes', '{"a":"\\u0041\\n\\t\\/","b":1}', { a: 'A\n\t/', b: { number: '1' } }],
    ['an escaped quote before a colon', '{"k\\":1":2}', { 'k":1': { number: '2' } }],
    [
      'nested objects and lists',
      '{"a":{"b":[1,{"c":2.50}],"d":[]},"e":{}}',
      { a: { b: [{ number: '1' }, { c: { number: '2.50' } }], d: [] }, e: {} },
    ],
    [
      'whitespace everywhere',
      ' \n{ "a" :\t1 ,\r\n "b" : [ 2 , 3 ] } \n',
      { a: { number: '1' }, b: [{ number: '2' }, { number: '3' }] },
    ],
    ['true, false and null', '[true,false,null]', [true, false, null]],
    ['a bare number', '12.5', { number: '12.5' }],
    ['a bare string', '"x"', 'x'],
  ])('reads %s', (_case, text, expected) => {
    const parsed = parseJsonKeepingNumberText(text);
    expect(withNumberText(parsed)).toEqual(expected);
    // Everything but the numbers' text is what JSON.parse gives.
    expect(asJsonParseWould(parsed)).toEqual(JSON.parse(text));
  });

  // JSON.parse keeps the last value of a key given twice; a body giving one twice is refused instead.
  it.each([
    ['{"cpu":1,"cpu":2}', 'cpu'],
    ['{"a":{"b":1,"c":2,"b":3}}', 'b'],
    ['[{"x":1},{"x":2,"y":[{"z":1,"z":1}]}]', 'z'],
  ])('refuses %s, which gives a key twice', (text, key) => {
    expect(() => parseJsonKeepingNumberText(text)).toThrow(JsonDuplicateKeyError);
    try {
      parseJsonKeepingNumberText(text);
    } catch (error) {
      expect((error as JsonDuplicateKeyError).key).toBe(key);
    }
  });

  it('reads the same key in two objects, which is no key given twice', () => {
    expect(withNumberText(parseJsonKeepingNumberText('[{"x":1},{"x":2}]'))).toEqual([
      { x: { number: '1' } },
      { x: { number: '2' } },
    ]);
  });

  it('keeps "__proto__" an ordinary key, as JSON.parse does', () => {
    const parsed = parseJsonKeepingNumberText('{"__proto__":{"isAdmin":true},"a":1}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
    expect(Object.keys(parsed)).toEqual(['__proto__', 'a']);
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });

  it.each([
    ['an empty text', ''],
    ['a leading zero', '{"a":01}'],
    ['a plus sign', '{"a":+1}'],
    ['a leading dot', '{"a":.5}'],
    ['a trailing dot', '{"a":5.}'],
    ['an exponent without digits', '{"a":1e}'],
    ['NaN', '{"a":NaN}'],
    ['Infinity', '{"a":Infinity}'],
    ['hex', '{"a":0x10}'],
    ['a trailing comma', '{"a":1,}'],
    ['a trailing comma in a list', '[1,]'],
    ['a missing comma', '{"a":1 "b":2}'],
    ['a single-quoted string', "{'a':1}"],
    ['an unquoted key', '{a:1}'],
    ['an unterminated string', '{"a":"1}'],
    ['a raw newline in a string', '{"a":"x\ny"}'],
    ['a bad escape', '{"a":"\\x41"}'],
    ['a short unicode escape', '{"a":"\\u41"}'],
    ['text after the value', '{"a":1} x'],
    ['two values', '{}{}'],
    ['an unclosed object', '{"a":1'],
    ['an unclosed list', '[1,2'],
    ['a misspelt literal', '[tru]'],
    ['a comment', '{"a":1 /* one */}'],
  ])('refuses %s, as JSON.parse does', (_case, text) => {
    expect(() => JSON.parse(text)).toThrow();
    expect(() => parseJsonKeepingNumberText(text)).toThrow(JsonSyntaxError);
  });

  it('refuses nesting deeper than any request needs, without running out of stack', () => {
    expect(() => parseJsonKeepingNumberText('['.repeat(50_000))).toThrow(/nested deeper than 64 levels/);
    expect(() => parseJsonKeepingNumberText(`${'['.repeat(64)}${']'.repeat(64)}`)).not.toThrow();
  });

  it('reads a string as long as the body limit allows', () => {
    const long = `${'a\\"'.repeat(30_000)}${'é'.repeat(10_000)}`;
    expect(parseJsonKeepingNumberText(`{"a":"${long}"}`)).toEqual(JSON.parse(`{"a":"${long}"}`));
  });
});
