import { describe, expect, it } from 'vitest';
import { parseQueryFields } from '../../src/http/list-shaped-fields.js';

describe("the app's query parser", () => {
  it.each([
    ['start=2026-09-01', { start: '2026-09-01' }],
    ['start=a&start=b', { start: ['a', 'b'] }],
    ['start[]=a', { start: ['a'] }],
    ['start[0]=a&start[1]=b', { start: ['a', 'b'] }],
    ['page[a]=1', { page: ['1'] }],
    ['sort=end&sort[]=start', { sort: ['end', 'start'] }],
    ['utm[source]=mail&view=detail', { utm: ['mail'], view: 'detail' }],
    // A bracket first is no field's list: left as the key it is.
    ['[x]=1', { '[x]': '1' }],
  ])('reads %s as a field given as a list', (text, fields) => {
    expect({ ...parseQueryFields(text) }).toEqual(fields);
  });

  it('keeps a key named __proto__ a key, never the prototype', () => {
    const parsed = parseQueryFields('__proto__[]=x&a=1');
    expect(Object.getPrototypeOf(parsed)).toBeNull();
    expect(Object.hasOwn(parsed, '__proto__')).toBe(true);
    expect(parsed.a).toBe('1');
  });
});

/**
 * node:querystring reads at most 1,000 `&`-separated pairs by default and drops the rest unread: a
 * query past that (a long link a tool built, padding by someone probing) had its later fields
 * ignored, so `...&type=gov` answered the default tier's rates as if no type were given. The
 * address's own limit (Node's header size, 16 KB) bounds how many pairs there can be.
 */
describe('a query of more than 1,000 fields', () => {
  it('keeps every field, the last ones too', () => {
    const fields = parseQueryFields(`${'x=1&'.repeat(1000)}type=gov`);
    expect(fields.type).toBe('gov');
    expect(fields.x).toHaveLength(1000);
  });
});
