import { z } from 'zod';
import { labelFields, refusedAuditWindow } from '../../http/field-labels.js';
import { ZOptionalLocalDate } from '../../shared/local-date.js';
import { ZPageNumber } from '../../shared/whole-number.js';

const optionalText = (max: number) =>
  z
    .string()
    .trim()
    .max(max)
    .optional()
    .transform((value) => (value ? value : undefined));

/**
 * The labels of the usage pages' window dates (My usage, Usage across users, and their exports): the
 * jobs that ended in it. A bare "To" (the start "From") told a screen reader moving from field to field nothing.
 */
export const WINDOW_FIELD_LABELS = { start: 'Ended from', end: 'Ended to' } as const;

/** The labels of the billing page's Paid receipts export's dates (/admin/paid.csv): the receipts paid in it. */
export const PAID_WINDOW_FIELD_LABELS = { start: 'Paid from', end: 'Paid to' } as const;

/** A window's dates as its form labels them, which its refusals name them by. */
export type WindowFieldLabels = { start: string; end: string };

/** A date window; both ends optional (From alone: up to today; To alone or neither: 7 days, in APP_TZ). */
export const ZWindowQuery = labelFields(
  z.object({ start: ZOptionalLocalDate, end: ZOptionalLocalDate }),
  WINDOW_FIELD_LABELS,
);
export type TWindowQuery = z.infer<typeof ZWindowQuery>;

/**
 * The audit log's names for a window, which the exports do not read: refused by name. Ignored as any
 * unknown query field is, paid.csv?from=2026-03-01&to=2026-03-31 exported the last 7 days, and
 * finance reconciled a period against the bank from another period's lines.
 */
const AUDIT_WINDOW_KEYS = refusedAuditWindow('this export reads its window');

/**
 * The same names on the usage pages (My usage, Usage across users), refused in the same words:
 * /admin/usage?from=2026-12-01&to=2026-12-02 showed the last 7 days as if they were those two.
 */
const PAGE_AUDIT_WINDOW_KEYS = refusedAuditWindow('this page reads its window');

/** GET /admin/paid.csv: the same, its dates named by the billing page's Paid receipts export form. */
export const ZPaidExportQuery = labelFields(ZWindowQuery.extend(AUDIT_WINDOW_KEYS), PAID_WINDOW_FIELD_LABELS);

/** The usage pages' labels of their fields, which a refusal on a page names them by. */
const USAGE_FIELD_LABELS = {
  ...WINDOW_FIELD_LABELS,
  view: 'View',
  sort: 'Sort',
  dir: 'Sort direction',
  page: 'Page',
  job: 'Job id',
  user: 'User',
  account: 'Account',
  partition: 'Partition',
  tier: 'Tier',
} as const;

/**
 * The columns My usage's jobs may be sorted by, as `sort=` names them and its refusal lists them.
 * The list is the query's, so it lives here; the repository maps each to the SQL it orders by.
 */
export const USAGE_SORTS = ['end', 'job', 'name', 'state', 'elapsed', 'cpu', 'gpu', 'mem', 'cost'] as const;
export type TUsageSort = (typeof USAGE_SORTS)[number];

/** My usage's sort (`sort=`), refused listing the sorts there are; its export reads it too. */
const ZUsageSort = z.enum(USAGE_SORTS, { error: `must be one of ${USAGE_SORTS.join(', ')}` });
/** A sort's direction (`dir=`). */
const ZSortDirection = z.enum(['asc', 'desc']);

/** A Slurm job id (`4242`, an array task `777_3`) or an array job's id for all its tasks: Jobs lists only those. */
const ZJobIdFilter = optionalText(32);

/** My usage's views, each with the tab that shows it. */
const USAGE_VIEW_TABS = { detail: 'Jobs', aggregate: 'Per day', billed: 'Billed' } as const;
const USAGE_VIEWS = Object.keys(USAGE_VIEW_TABS) as [keyof typeof USAGE_VIEW_TABS, ...(keyof typeof USAGE_VIEW_TABS)[]];

/** GET /me. */
export const ZUsageQuery = labelFields(
  ZWindowQuery.extend({
    ...PAGE_AUDIT_WINDOW_KEYS,
    // A tab's name typed in (view=Per day) was told "one of detail, aggregate, billed", words the page never shows.
    view: z
      .enum(USAGE_VIEWS, {
        error: `must be one of ${Object.entries(USAGE_VIEW_TABS)
          .map(([view, tab]) => `${view} (${tab})`)
          .join(', ')}`,
      })
      .default('detail'),
    sort: ZUsageSort.default('end'),
    dir: ZSortDirection.default('desc'),
    page: ZPageNumber,
    job: ZJobIdFilter.optional(),
  }),
  USAGE_FIELD_LABELS,
);
export type TUsageQuery = z.infer<typeof ZUsageQuery>;

/**
 * GET /me.csv and /admin/my.csv (their `bom` is read by csvExports): the window, and the Jobs view's
 * sort and Job id, which My usage's Download CSV carries. Refused in the page's words; left out, the
 * file lists every job of the window in the order they ended, as it always has. Without them the link
 * downloaded every job in that order, whatever the page was sorted by or searched for.
 */
export const ZOwnUsageExportQuery = labelFields(
  ZWindowQuery.extend({
    ...AUDIT_WINDOW_KEYS,
    sort: ZUsageSort.optional(),
    dir: ZSortDirection.optional(),
    job: ZJobIdFilter.optional(),
  }),
  USAGE_FIELD_LABELS,
);
export type TOwnUsageExportQuery = z.infer<typeof ZOwnUsageExportQuery>;

/** GET /admin/usage (its export extends it with the exports' words for from and to). */
export const ZAdminUsageQuery = labelFields(
  ZWindowQuery.extend({
    ...PAGE_AUDIT_WINDOW_KEYS,
    user: optionalText(64),
    account: optionalText(64),
    partition: optionalText(64),
    // A tier's name (ZNewTierName: up to 64 characters); one that is no tier is refused by the service.
    tier: optionalText(64),
  }),
  USAGE_FIELD_LABELS,
);
export type TAdminUsageQuery = z.infer<typeof ZAdminUsageQuery>;

/**
 * GET /admin/usage as a page: its window and filters, and which page of users it lists. Apart from
 * ZAdminUsageQuery, which the JSON and the CSV read: both answer every user of the window at once.
 */
export const ZAdminUsagePageQuery = labelFields(ZAdminUsageQuery.extend({ page: ZPageNumber }), USAGE_FIELD_LABELS);
export type TAdminUsagePageQuery = z.infer<typeof ZAdminUsagePageQuery>;

/** GET /admin/usage.csv: the page's window and filters. */
export const ZAdminUsageCsvQuery = labelFields(ZAdminUsageQuery.extend(AUDIT_WINDOW_KEYS), USAGE_FIELD_LABELS);
