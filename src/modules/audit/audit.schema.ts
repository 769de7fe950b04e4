import { z } from 'zod';
import { fieldLabelsOf, labelFields, refusedField, refusedPageNumber } from '../../http/field-labels.js';
import { ZOptionalLocalDate } from '../../shared/local-date.js';

const optionalText = (max: number) =>
  z
    .string()
    .trim()
    .max(max)
    .optional()
    .transform((value) => value || undefined);

/**
 * The other pages' names for a window (usage, its exports, paid.csv), which the audit log does not
 * read: refused by name. Ignored as unknown fields, audit.csv?start=…&end=… exported the whole log.
 */
const ZOtherWindowKey = refusedField(
  'is not read here: the audit log reads its window as from and to; start and end are read by the other pages',
);

/**
 * The "older entries" cursor, read as the payments page's cursors and every id are: empty or blank
 * (a script's unset variable) is left out, as every optional field is (it was "must be an entry id");
 * an id is digits alone without leading zeros (`before=007` was the page of `before=7` under a
 * second address). A bigint: audit_log's ids outgrow an integer.
 */
const ZEntryCursor = z.preprocess(
  (value) => (typeof value === 'string' && value.trim() === '' ? undefined : value),
  z
    .string()
    .regex(/^\d{1,18}$/, 'must be an entry id')
    .refine((value) => !/^0\d+$/.test(value), 'must be written without leading zeros')
    // No entry is #0 (ids start at 1): it listed nothing and, 0n being falsy, lost the page's way back.
    .refine((value) => value !== '0', 'must be at least 1')
    .optional()
    .transform((value) => (value === undefined ? undefined : BigInt(value))),
);

export const ZAuditQuery = labelFields(
  z.object({
    actor: optionalText(64),
    action: optionalText(64),
    // A whole target as the log writes it: `receipt:42`, `tier:standard`, `user:alice`, a path.
    target: optionalText(256).refine(
      (value) => value === undefined || !/^receipt:/.test(value) || /^receipt:\d+$/.test(value),
      {
        // "receipt:#42" or "receipt: 42" matched nothing, which read as "no history".
        message: 'a receipt is written receipt: and its number (receipt:42)',
      },
    ),
    from: ZOptionalLocalDate,
    to: ZOptionalLocalDate,
    start: ZOtherWindowKey,
    end: ZOtherWindowKey,
    before: ZEntryCursor,
    page: refusedPageNumber(
      'the audit log is paged by its older entries link (before=<id>, nextPageUrl in its JSON); start at the newest entries and follow it',
    ),
  }),
  // The audit log's filter labels; `before` is the "older entries" link's cursor.
  {
    actor: 'Actor',
    action: 'Action',
    target: 'Target',
    from: 'Logged from',
    to: 'Logged to',
    before: 'Older than entry',
  },
);

export type TAuditQuery = z.infer<typeof ZAuditQuery>;

/**
 * GET /admin/audit.csv: the page's filters, not its "older entries" cursor (`before`), which the
 * export does not read: ignored as any unknown query field is, whatever it says. `before=5` was
 * ignored while `before=abc` refused the whole export.
 */
export const ZAuditCsvQuery = labelFields(ZAuditQuery.omit({ before: true, page: true }), fieldLabelsOf(ZAuditQuery));
export type TAuditCsvQuery = z.infer<typeof ZAuditCsvQuery>;
