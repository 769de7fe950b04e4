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
