import { describe, expect, it } from 'vitest';
import { exactWholeNumberOf } from '../../src/modules/payments/payment-provider.js';

describe('exactWholeNumberOf', () => {
  it.each([
    ['1000', 1000n],
    ['1000.0', 1000n],
    ['1000.000', 1000n],
    ['1e3', 1000n],
    ['1E+3', 1000n],
    ['100000e-2', 1000n],
    ['0', 0n],
    ['-0', 0n],
    ['0.0e5', 0n],
    ['9007199254740993', 9007199254740993n],
  ])('reads %s as the whole number %s', (text, whole) => {
    expect(exactWholeNumberOf(text)).toBe(whole);
  });

  it.each(['999.99999999999999', '1000.0000000000000001', '99999999999999999e-14', '1000.5', '1e-1', '1e999999999'])(
    'reads %s as no whole number',
    (text) => {
      expect(exactWholeNumberOf(text)).toBeUndefined();
    },
  );
});
