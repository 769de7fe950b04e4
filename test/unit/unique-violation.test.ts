import { describe, expect, it } from 'vitest';
import { isUniqueViolation, uniqueViolationOf } from '../../src/shared/errors.js';

describe('uniqueViolationOf', () => {
  it.each([
    ['Prisma P2002 with a target', { code: 'P2002', meta: { target: 'users_username_key' } }, 'users_username_key'],
    [
      'a raw query through the pg adapter (P2010)',
      {
        code: 'P2010',
        meta: {
          driverAdapterError: {
            name: 'DriverAdapterError',
            cause: {
              originalCode: '23505',
              kind: 'UniqueConstraintViolation',
              constraint: { index: 'receipt_items_live_job_key' },
            },
          },
        },
      },
      'receipt_items_live_job_key',
    ],
    ['a pg error', { code: '23505' }, ''],
    ['a wrapped pg error', new Error('wrapped', { cause: { code: '23505' } }), ''],
    [
      'another raw query failure',
      { code: 'P2010', meta: { driverAdapterError: { cause: { originalCode: '23503' } } } },
      undefined,
    ],
    ['not an error object', 'boom', undefined],
  ])('%s', (_case, error, expected) => {
    expect(uniqueViolationOf(error)).toBe(expected);
    expect(isUniqueViolation(error)).toBe(expected !== undefined);
  });
});
