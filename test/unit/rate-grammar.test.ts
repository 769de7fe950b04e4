import { describe, expect, it } from 'vitest';
import { JsonNumberText } from '../../src/http/lossless-json.js';
import { parseInput } from '../../src/http/validate.js';
import { ZCreateTier, ZSetRates } from '../../src/modules/pricing/pricing.schema.js';
import { AppError } from '../../src/shared/errors.js';

const SIGN = 'cpu: must be a plain decimal such as 0.25, without a sign';
const EXPONENT = 'cpu: must be written as a plain decimal such as 0.50, without an exponent';

/** The rate `cpu` through each input that takes a rate: the rates form or JSON, and the add-tier form. */
const parsers = {
  'set rates': (cpu: unknown) => parseInput(ZSetRates, { type: 'mu', cpu, gpu: '1', mem: '1' }).cpu,
  'add a tier': (cpu: unknown) => parseInput(ZCreateTier, { name: 'gold', cpu, gpu: '1', mem: '1' }).cpu,
};

function refusalOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return (error as AppError).message;
  }
  throw new Error('the rate was accepted');
}

describe.each(Object.entries(parsers))('a rate (%s) is plain decimal digits with an optional fraction', (_, parse) => {
  it.each([
    ['0', '0'],
    ['0.25', '0.25'],
    ['5', '5'],
    ['5.0', '5'],
    ['0.50', '0.5'],
    ['0.123456', '0.123456'],
    ['1000000', '1000000'],
    ['1000000.000000', '1000000'],
    // Leading zeros hide no digit and allow one reading only.
    ['00.5', '0.5'],
    ['007', '7'],
    // A form field is trimmed.
    [' 0.5 ', '0.5'],
  ])('reads %j as %s, as form text and as a JSON number', (text, expected) => {
    expect(parse(text).toFixed()).toBe(expected);
    if (text.trim() === text) expect(parse(new JsonNumberText(text)).toFixed()).toBe(expected);
  });

  it.each([
    // Any sign, even on a zero: a rate has one written form.
    ['-0', SIGN],
    ['-0.0', SIGN],
    ['-0.000', SIGN],
    ['+0', SIGN],
    ['+1', SIGN],
    ['+0.25', SIGN],
    ['--1', SIGN],
    ['-1', 'cpu: must be 0 or more'],
    ['-0.5', 'cpu: must be 0 or more'],
    ['-.5', 'cpu: must be 0 or more'],
    // A digit missing on one side of the point.
    ['.5', 'cpu: must have a digit before the decimal point, such as 0.5'],
    ['.25', 'cpu: must have a digit before the decimal point, such as 0.25'],
    ['5.', 'cpu: must have a digit after the decimal point, such as 5.0, or none: 5'],
    ['1e3', EXPONENT],
    ['1E3', EXPONENT],
    ['5e-1', EXPONENT],
    ['.5e2', EXPONENT],
    ['-1e3', EXPONENT],
    ['.', 'cpu: must be a plain decimal such as 0.25'],
    ['1,5', 'cpu: must be a plain decimal such as 0.25'],
    ['1 000', 'cpu: must be a plain decimal such as 0.25'],
    ['0x10', 'cpu: must be a plain decimal such as 0.25'],
    ['lots', 'cpu: must be a plain decimal such as 0.25'],
    ['Infinity', 'cpu: must be a plain decimal such as 0.25'],
    ['١', 'cpu: must be a plain decimal such as 0.25'],
    ['', 'cpu: is required'],
    ['  ', 'cpu: is required'],
    [undefined, 'cpu: is required'],
    ['0.1234567', 'cpu: must have at most 6 decimal places'],
    ['1000000.01', 'cpu: must be at most 1000000 per hour'],
  ])('refuses %j: %s', (text, message) => {
    expect(refusalOf(() => parse(text))).toBe(message);
  });

  it.each([
    ['-0', SIGN],
    ['-0.0', SIGN],
    ['-1', 'cpu: must be 0 or more'],
    ['1e3', EXPONENT],
  ])('refuses the JSON number %s as it refuses the text', (text, message) => {
    expect(refusalOf(() => parse(new JsonNumberText(text)))).toBe(message);
  });
});
