import { describe, expect, it } from 'vitest';
import { JsonNumberText } from '../../src/http/lossless-json.js';
import { parseInput } from '../../src/http/validate.js';
import { ZCreateTier, ZSetRates } from '../../src/modules/pricing/pricing.schema.js';
import { AppError } from '../../src/shared/errors.js';

// Every refusal says the whole rule, in one wording, whatever was wrong.
const RULE = 'cpu: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25';

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
    // So do zeros past the sixth decimal: only a digit other than 0 there is one the rate would lose.
    ['0.5000000', '0.5'],
    ['0.1234560', '0.123456'],
    // A form field is trimmed.
    [' 0.5 ', '0.5'],
  ])('reads %j as %s, as form text and as a JSON number', (text, expected) => {
    expect(parse(text).toFixed()).toBe(expected);
    if (text.trim() === text) expect(parse(new JsonNumberText(text)).toFixed()).toBe(expected);
  });

  it.each([
    // Any sign, even on a zero: a rate has one written form.
    ['-0', RULE],
    ['-0.0', RULE],
    ['-0.000', RULE],
    ['+0', RULE],
    ['+1', RULE],
    ['+0.25', RULE],
    ['--1', RULE],
    ['-1', RULE],
    ['-0.5', RULE],
    ['-.5', RULE],
    // A digit missing on one side of the point.
    ['.5', RULE],
    ['.25', RULE],
    ['5.', RULE],
    ['1e3', RULE],
    ['1E3', RULE],
    ['5e-1', RULE],
    ['.5e2', RULE],
    ['-1e3', RULE],
    ['.', RULE],
    ['1,5', RULE],
    ['1 000', RULE],
    ['0x10', RULE],
    ['lots', RULE],
    ['Infinity', RULE],
    ['١', RULE],
    ['', RULE],
    ['  ', RULE],
    [undefined, RULE],
    ['0.1234567', RULE],
    ['0.12345601', RULE],
    ['1000000.01', RULE],
  ])('refuses %j: %s', (text, message) => {
    expect(refusalOf(() => parse(text))).toBe(message);
  });

  it.each([
    ['-0', RULE],
    ['-0.0', RULE],
    ['-1', RULE],
    ['1e3', RULE],
  ])('refuses the JSON number %s as it refuses the text', (text, message) => {
    expect(refusalOf(() => parse(new JsonNumberText(text)))).toBe(message);
  });
});
