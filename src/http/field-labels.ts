import { z } from 'zod';

/** Field key -> the label its form shows it under. */
export type FieldLabels = Readonly<Record<string, string>>;

const labelsBySchema = new WeakMap<z.ZodType, FieldLabels>();

/**
 * Gives `schema`'s fields the labels their form shows, so that a refusal read on a page says
 * "CPU core-hour: must be a plain decimal ..." where an API client reads "cpu: ...". Returns `schema`.
 */
export function labelFields<T extends z.ZodType>(schema: T, labels: FieldLabels): T {
  labelsBySchema.set(schema, labels);
  return schema;
}

/** The labels given to `schema`'s fields; none when it has none. */
export function fieldLabelsOf(schema: z.ZodType): FieldLabels {
  return labelsBySchema.get(schema) ?? {};
}

/**
 * A query field this schema refuses by name with `reason` when it is sent at all: one another page
 * reads (a window's names), which would otherwise be ignored as any unknown field is.
 */
export function refusedField(reason: string) {
  return z.undefined({ error: reason }).optional();
}

/**
 * `page`, refused by name on a list paged by a place in it (`reason` says which link to follow) rather
 * than ignored as an unknown field: a script looping `page=1..N`, as the numbered lists take it, read
 * the newest page as every page. Empty, as a script's unset variable sends it, is left out.
 */
export function refusedPageNumber(reason: string) {
  return z.preprocess(
    (value) => (typeof value === 'string' && value.trim() === '' ? undefined : value),
    refusedField(`is not read here: ${reason}`),
  );
}

/**
 * The audit log's names for a window, `from` and `to`, refused by name where `reader` (what reads
 * its window from start and end: "this export reads its window") does not read them. Ignored as
 * unknown fields, they showed or exported another window (the last 7 days, or every receipt) as the
 * one asked for. One sentence for every page and export that refuses them, so they say it alike.
 */
export function refusedAuditWindow(reader: string) {
  const refused = refusedField(
    `is not read here: ${reader} from start and end; from and to are read by the audit log only`,
  );
  return { from: refused, to: refused };
}
