import { z } from 'zod';

/** The largest id a PostgreSQL `integer` column holds. */
export const MAX_INT4 = 2_147_483_647;

/**
 * A whole number written in plain digits, between min and max. `z.coerce.number()` reads
 * with Number(), which takes "1e1", "0x2", " 7 " and "" (as 0): an admin who typed
 * /admin/users/1e1 would act on user 10. Leading zeros are refused too: /admin/receipts/007
 * served receipt 7 under a second address (and any number of others), which links, caches and
 * audit trails then disagree about. Numbers (from JSON) pass when they are integers.
 */
export function zWholeNumber(min: number, max: number) {
  return z.unknown().transform((input, context): number => {
    const problem = wholeNumberProblem(input, min, max);
    if (problem === undefined) return Number(input);
    context.addIssue({ code: 'custom', message: problem, input });
    return z.NEVER;
  });
}

function wholeNumberProblem(input: unknown, min: number, max: number): string | undefined {
  if (input === undefined || input === '') return 'is required';
  // JSON's null, worded as describeIssue (validate.ts) words it for every other field: an optional
  // field sent as null was told "is required".
  if (input === null) return 'cannot be null (leave it out, or give a value)';
  const isWhole =
    (typeof input === 'string' && /^\d+$/.test(input)) || (typeof input === 'number' && Number.isSafeInteger(input));
  if (!isWhole) return 'must be a whole number';
  if (typeof input === 'string' && /^0\d/.test(input)) return 'must be written without leading zeros';
  const value = Number(input);
  if (value < min) return `must be at least ${min}`;
  if (value > max) return `must be at most ${max}`;
  return undefined;
}

/** The most pages a listing's `?page=` may ask for. */
const MAX_PAGE = 100_000;

/**
 * `?page=` of a listing, 1 when left out. Empty or only spaces (a form's empty field, a script's
 * unset variable) is left out too, as an empty optional field is everywhere (ZOptionalLocalDate):
 * it was refused with "Page: is required", which a field that has a default never is.
 */
export const ZPageNumber = z.preprocess(
  (value) => (typeof value === 'string' && value.trim() === '' ? undefined : value),
  zWholeNumber(1, MAX_PAGE).default(1),
);
