import { z } from 'zod';
import { zWholeNumber } from '../../shared/whole-number.js';
import { ZLocalDate } from '../receipts/receipts.schema.js';
import { SORT_COLUMNS, type SortColumn } from './usage.repository.js';

const optionalDate = ZLocalDate.optional().or(z.literal('').transform(() => undefined));
const optionalText = (max: number) =>
  z
    .string()
    .trim()
    .max(max)
    .optional()
    .transform((value) => (value ? value : undefined));

/** A date window; both ends optional (default: the last 7 days in APP_TZ). */
export const ZWindowQuery = z.object({ start: optionalDate, end: optionalDate });
export type TWindowQuery = z.infer<typeof ZWindowQuery>;

/** GET /me. */
export const ZUsageQuery = ZWindowQuery.extend({
  view: z.enum(['detail', 'aggregate', 'billed']).default('detail'),
  sort: z
    .enum(Object.keys(SORT_COLUMNS) as [SortColumn, ...SortColumn[]], {
      error: `must be one of ${Object.keys(SORT_COLUMNS).join(', ')}`,
    })
    .default('end'),
  dir: z.enum(['asc', 'desc']).default('desc'),
  page: zWholeNumber(1, 100_000).default(1),
});
export type TUsageQuery = z.infer<typeof ZUsageQuery>;

/** GET /admin/usage and /admin/usage.csv. */
export const ZAdminUsageQuery = ZWindowQuery.extend({
  user: optionalText(64),
  account: optionalText(64),
  partition: optionalText(64),
});
export type TAdminUsageQuery = z.infer<typeof ZAdminUsageQuery>;
