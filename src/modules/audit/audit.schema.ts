import { z } from 'zod';
import { labelFields } from '../../http/field-labels.js';
import { ZOptionalLocalDate } from '../../shared/local-date.js';

const optionalText = (max: number) =>
  z
    .string()
    .trim()
    .max(max)
    .optional()
    .transform((value) => value || undefined);

export const ZAuditQuery = labelFields(
  z.object({
    actor: optionalText(64),
    action: optionalText(64),
    from: ZOptionalLocalDate,
    to: ZOptionalLocalDate,
    before: z
      .string()
      .regex(/^\d{1,18}$/, 'must be an entry id')
      .optional()
      .transform((value) => (value ? BigInt(value) : undefined)),
  }),
  // The audit log's filter labels; `before` is the "older entries" link's cursor.
  { actor: 'Actor', action: 'Action', from: 'From', to: 'To', before: 'Older than entry' },
);

export type TAuditQuery = z.infer<typeof ZAuditQuery>;
