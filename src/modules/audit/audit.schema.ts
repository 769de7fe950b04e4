import { z } from 'zod';
import { ZLocalDate } from '../../shared/local-date.js';

const optionalText = (max: number) =>
  z
    .string()
    .trim()
    .max(max)
    .optional()
    .transform((value) => value || undefined);

export const ZAuditQuery = z.object({
  actor: optionalText(64),
  action: optionalText(64),
  from: z
    .union([z.literal(''), ZLocalDate])
    .optional()
    .transform((value) => value || undefined),
  to: z
    .union([z.literal(''), ZLocalDate])
    .optional()
    .transform((value) => value || undefined),
  before: z
    .string()
    .regex(/^\d{1,18}$/, 'must be an entry id')
    .optional()
    .transform((value) => (value ? BigInt(value) : undefined)),
});

export type TAuditQuery = z.infer<typeof ZAuditQuery>;
