import { describe, expect, it } from 'vitest';
import { JsonNumberText } from '../../src/http/lossless-json.js';
import { parseInput } from '../../src/http/validate.js';
import { ZResolveReview } from '../../src/modules/payments/payments.schema.js';
import { ZFormulaQuery, ZSetOverride, ZSetRates } from '../../src/modules/pricing/pricing.schema.js';
import { ZMarkPaid, ZReceiptFilter, ZReceiptId, ZVoidReceipt } from '../../src/modules/receipts/receipts.schema.js';
import { ZUsageQuery } from '../../src/modules/usage/usage.schema.js';
import {
  ZChangeOwnPasswordForm,
  ZChangeRoleForm,
  ZCreateUserForm,
  ZUserId,
} from '../../src/modules/users/users.schema.js';
import { AppError, InvalidFieldsError, readableMessageOf } from '../../src/shared/errors.js';

/** The message of the 400 parseInput throws, as an API client reads it. */
function messageOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).status).toBe(400);
    return (error as AppError).message;
  }
  throw new Error('parseInput accepted the input');
}

describe('parseInput says what is wrong in words people read', () => {
  it.each([
    ['page 0', () => parseInput(ZUsageQuery, { page: '0' }), 'page: must be at least 1'],
    ['a page that is not a number', () => parseInput(ZUsageQuery, { page: 'abc' }), 'page: must be a whole number'],
    [
      'a page of 21 digits',
      () => parseInput(ZUsageQuery, { page: '99999999999999999999' }),
      'page: must be at most 100000',
    ],
    ['a sort column it does not know', () => parseInput(ZUsageQuery, { sort: 'password' }), 'sort: must be one of'],
    [
      'a receipt id that is a word',
      () => parseInput(ZReceiptId, 'abc', 'receipt id'),
      'receipt id: must be a whole number',
    ],
    ['a receipt id of 0', () => parseInput(ZReceiptId, '0', 'receipt id'), 'receipt id: must be at least 1'],
    ['a receipt id in exponent form', () => parseInput(ZReceiptId, '5e0', 'receipt id'), 'receipt id: must be a whole'],
    ['a receipt id in hex', () => parseInput(ZReceiptId, '0x4', 'receipt id'), 'receipt id: must be a whole number'],
    ['a user id in exponent form', () => parseInput(ZUserId, '1e1', 'user id'), 'user id: must be a whole number'],
    [
      'a user id past integer',
      () => parseInput(ZUserId, '99999999999', 'user id'),
      'user id: must be at most 2147483647',
    ],
    ['a page with a sign', () => parseInput(ZUsageQuery, { page: '+2' }), 'page: must be a whole number'],
    [
      'a receipt id with a leading zero',
      () => parseInput(ZReceiptId, '007', 'receipt id'),
      'receipt id: must be written without leading zeros',
    ],
    ['a user id of 00', () => parseInput(ZUserId, '00', 'user id'), 'user id: must be written without leading zeros'],
    ['a page of 02', () => parseInput(ZUsageQuery, { page: '02' }), 'page: must be written without leading zeros'],
    ['a bare value without a name', () => parseInput(ZReceiptId, 'abc'), 'input: must be a whole number'],
    ['a tier given twice', () => parseInput(ZFormulaQuery, { type: ['gov', 'mu'] }), 'type: must be given once'],
    [
      'a start date given twice',
      () => parseInput(ZUsageQuery, { start: ['2026-01-01', '2026-02-01'] }),
      'start: must be given once',
    ],
    ['a page given twice', () => parseInput(ZUsageQuery, { page: ['1', '2'] }), 'page: must be given once'],
    // The simple query and form parsers read `start[]=` as a key of its own, which no schema named.
    ['a date given as a list', () => parseInput(ZUsageQuery, { 'start[]': '2026-01-01' }), 'start: must be given once'],
    ['a page given as an object', () => parseInput(ZUsageQuery, { 'page[a]': '1' }), 'page: must be given once'],
    [
      'a field given both plainly and as a list',
      () => parseInput(ZUsageQuery, { sort: 'end', 'sort[0]': 'start' }),
      'sort: must be given once',
    ],
    [
      'a list-shaped field of a strict body that it does not have, named as sent',
      () => parseInput(ZVoidReceipt, { reason: 'duplicate', 'refund[]': 'yes' }),
      'input: has an unknown field: refund[]',
    ],
    [
      'a list-shaped field of a strict body that it has',
      () => parseInput(ZVoidReceipt, { 'reason[]': 'duplicate' }),
      'reason: must be given once',
    ],
    [
      'a status it does not know, on a filter that also takes an empty field',
      () => parseInput(ZReceiptFilter, { status: 'bogus' }),
      'status: must be one of pending, paid, void',
    ],
    [
      'a date that is no date, on a field that also takes an empty one',
      () => parseInput(ZReceiptFilter, { start: '2026-13-01' }),
      'start: is not a real calendar date (2026-13-01)',
    ],
    [
      'a JSON null for an optional date',
      () => parseInput(ZMarkPaid, { method: 'cash', amount_received: '10.00', paid_on: null }),
      'paid_on: cannot be null (leave it out, or give a value)',
    ],
    ['an empty rate', () => parseInput(ZSetRates, { type: 'mu', cpu: '', gpu: '1', mem: '1' }), 'cpu: '],
    ['a missing role', () => parseInput(ZChangeRoleForm, {}), 'role: '],
    ['an empty username', () => parseInput(ZCreateUserForm, { username: '  ' }), 'username: is required'],
    [
      'a username of 65 valid letters',
      () => parseInput(ZCreateUserForm, { username: 'a'.repeat(65) }),
      'username: must be at most 64 characters',
    ],
    [
      // Capitals are read in lower case (Alice is alice); a space is bad in any case.
      'a username with a space',
      () => parseInput(ZCreateUserForm, { username: 'Al ice' }),
      'username: must start with a lowercase letter or _',
    ],
    [
      'a void reason of two letters',
      () => parseInput(ZVoidReceipt, { reason: 'ab' }),
      'reason: must say why the receipt is void, in at least 3 characters',
    ],
    [
      'a void reason of zero-width spaces and a direction mark, which show as nothing',
      () => parseInput(ZVoidReceipt, { reason: '\u200b\u200b\u200b\u200e\u2060' }),
      'reason: must say why the receipt is void, in at least 3 characters',
    ],
    [
      'a resolution note of ten characters only two of which show',
      () =>
        parseInput(ZResolveReview, {
          outcome: 'dismissed',
          note: 'ok\u200b\u200b\u200b\u200b\u200b\u200b\u200b\u200b',
        }),
      'note: must say what was done, in at least 10 characters',
    ],
    [
      'a field the form does not have',
      () => parseInput(ZSetRates, { type: 'mu', cpu: '1', gpu: '1', mem: '1', effective_from: '2030-01-01' }),
      'input: has an unknown field: effective_from',
    ],
    [
      'two fields the form does not have',
      () => parseInput(ZVoidReceipt, { reason: 'duplicate', refund: 'yes', notify: 'no' }),
      'input: has unknown fields: refund, notify',
    ],
    ['an empty username', () => parseInput(ZSetOverride, { username: '  ', tier: 'gov' }), 'username: is required'],
    [
      'a username with a space',
      () => parseInput(ZSetOverride, { username: 'a b', tier: 'gov' }),
      'username: is not a username',
    ],
  ])('%s', (_case, run, expected) => {
    const message = messageOf(run);
    expect(message.startsWith(expected), message).toBe(true);
    expect(message).not.toMatch(/Too small|Too big|Invalid input|expected \w+, received|>=|<=/);
  });

  // The rule is the field's, not its type's: a field whose schema words its own refusal (a list of
  // choices, a decimal's form, "is required: the amount that arrived") said that of a null instead,
  // so a script could not tell a null it sent from a value of the wrong form.
  const NULL_REASON = 'cannot be null (leave it out, or give a value)';
  it.each([
    ['a payment method', () => parseInput(ZMarkPaid, { method: null, amount_received: '10.00' }), 'method'],
    ['an amount received', () => parseInput(ZMarkPaid, { method: 'cash', amount_received: null }), 'amount_received'],
    ['a rate', () => parseInput(ZSetRates, { type: 'mu', cpu: null, gpu: '1', mem: '1' }), 'cpu'],
    ['a role', () => parseInput(ZChangeRoleForm, { role: null }), 'role'],
    ['a usage view', () => parseInput(ZUsageQuery, { view: null }), 'view'],
  ])('says a JSON null for %s cannot be null, whatever its own wording', (_case, run, field) => {
    expect(messageOf(run)).toBe(`${field}: ${NULL_REASON}`);
  });

  it.each([
    ['an empty list', []],
    ['a list holding the fields', [{ type: 'mu', cpu: '1', gpu: '1', mem: '1' }]],
    ['a string', 'x'],
    ['a number', 5],
    ['null', null],
  ])('says a body that is %s must be a JSON object, not that a field was given twice', (_case, body) => {
    expect(messageOf(() => parseInput(ZSetRates, body))).toBe('The request body must be a JSON object.');
    expect(messageOf(() => parseInput(ZCreateUserForm, body))).toBe('The request body must be a JSON object.');
  });

  it.each([
    ['1e3', 'cpu: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25'],
    ['1e-7', 'cpu: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25'],
    ['0.0000001', 'cpu: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25'],
    [
      '0.10000000000000001',
      'cpu: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25',
    ],
  ])('judges the JSON number %s by its text', (text, expected) => {
    const cpu = new JsonNumberText(text);
    expect(messageOf(() => parseInput(ZSetRates, { type: 'mu', cpu, gpu: '1', mem: '1' }))).toBe(expected);
  });

  it.each([
    ['0.1234', '0.1234'],
    ['0.50', '0.5'],
    ['1000000', '1000000'],
  ])('reads the JSON number %s as %s', (text, expected) => {
    const cpu = new JsonNumberText(text);
    expect(parseInput(ZSetRates, { type: 'mu', cpu, gpu: '1', mem: '1' }).cpu.toFixed()).toBe(expected);
  });

  it('refuses a rate that already went through a float, whose digits are lost', () => {
    expect(messageOf(() => parseInput(ZSetRates, { type: 'mu', cpu: 0.5, gpu: '1', mem: '1' }))).toBe(
      'cpu: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25',
    );
  });

  it('takes a username of 64 letters', () => {
    expect(parseInput(ZCreateUserForm, { username: 'a'.repeat(64) }).username).toBe('a'.repeat(64));
  });

  it('lets a form carry its CSRF token and leaves it out of what the route gets', () => {
    expect(parseInput(ZVoidReceipt, { reason: 'duplicate', csrf_token: 'abc' })).toEqual({ reason: 'duplicate' });
  });

  it('gives one reason a field', () => {
    expect(messageOf(() => parseInput(ZUsageQuery, { page: '99999999999999999999' }))).toBe(
      'page: must be at most 100000',
    );
  });
});

describe('a refusal names fields by key for API clients and by label on a page', () => {
  /** The refusal parseInput throws for `input`. */
  function refusalOf(run: () => unknown): InvalidFieldsError {
    try {
      run();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidFieldsError);
      return error as InvalidFieldsError;
    }
    throw new Error('parseInput accepted the input');
  }

  it.each([
    [
      'two rates',
      () => parseInput(ZSetRates, { type: 'mu', cpu: '-1', gpu: '1', mem: 'lots' }),
      'cpu: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25; mem: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25',
      'CPU core-hour: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25; Memory GB-hour: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25',
    ],
    [
      'the day a payment was made',
      () => parseInput(ZMarkPaid, { method: 'cash', amount_received: '10.00', paid_on: '2025-02-30' }),
      'paid_on: is not a real calendar date (2025-02-30)',
      'Paid on: is not a real calendar date (2025-02-30)',
    ],
    [
      'a refined field (the confirmation)',
      () =>
        parseInput(ZChangeOwnPasswordForm, {
          current: 'old-password-1',
          password: 'new-password-12',
          confirm: 'other-password-1',
        }),
      'confirm: does not match the new password',
      'New password again: does not match the new password',
    ],
    [
      'a window',
      () => parseInput(ZUsageQuery, { start: '2025-13-01' }),
      'start: is not a real calendar date (2025-13-01)',
      'Ended from: is not a real calendar date (2025-13-01)',
    ],
  ])('%s', (_what, run, message, readable) => {
    const refusal = refusalOf(run);
    expect(refusal.message).toBe(message);
    expect(readableMessageOf(refusal)).toBe(readable);
  });

  it('keeps the key where a schema gives its field no label', () => {
    // An empty type is the default tier (a field left empty is a field not given); a name longer
    // than any tier's is refused.
    const refusal = refusalOf(() => parseInput(ZFormulaQuery, { type: 'x'.repeat(500) }));
    expect(readableMessageOf(refusal)).toBe(refusal.message);
    expect(refusal.message).toMatch(/^type: /);
  });

  it('shows any other refusal as it is', () => {
    expect(readableMessageOf(new AppError(409, 'Already paid.'))).toBe('Already paid.');
  });
});

// The sorts are the schema's own list (the repository maps each to its SQL): the refusal names them all, in order.
describe("My usage's sort", () => {
  const SORTS = ['end', 'job', 'name', 'state', 'elapsed', 'cpu', 'gpu', 'mem', 'cost'];

  it('refuses a column it does not sort by, naming every one it does', () => {
    expect(messageOf(() => parseInput(ZUsageQuery, { sort: 'password' }))).toBe(
      `sort: must be one of ${SORTS.join(', ')}`,
    );
  });

  it.each(SORTS)('takes sort=%s', (sort) => {
    expect(parseInput(ZUsageQuery, { sort }).sort).toBe(sort);
  });
});
