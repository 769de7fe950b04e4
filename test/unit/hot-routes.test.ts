import helmet from 'helmet';
import { describe, expect, it } from 'vitest';
import { captureStaticHeaders, isEtagMatched } from '../../src/http/hot-routes.js';

describe('If-None-Match', () => {
  it.each([
    [undefined, false],
    ['"abc"', true],
    ['W/"abc"', true],
    ['"x", "abc"', true],
    ['*', true],
    ['"abcd"', false],
    ['abc', false],
  ])('%s matches "abc": %s', (header, isMatched) => {
    expect(isEtagMatched(header, '"abc"')).toBe(isMatched);
  });
});

describe('captureStaticHeaders', () => {
  it('records what helmet sets and what it removes', () => {
    const headers = new Map(captureStaticHeaders(helmet({ referrerPolicy: { policy: 'same-origin' } })));
    expect(headers.get('Referrer-Policy')).toBe('same-origin');
    expect(headers.get('Content-Security-Policy')).toContain("default-src 'self'");
    expect(headers.has('X-Powered-By')).toBe(false);
  });

  it('refuses a middleware that does not finish synchronously or fails', () => {
    expect(() => captureStaticHeaders(() => undefined)).toThrow(/did not call next/);
    expect(() => captureStaticHeaders((_req, _res, next) => next(new Error('nonce needed')))).toThrow('nonce needed');
  });
});
