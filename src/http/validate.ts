import type { z } from 'zod';
import { BadRequestError } from '../shared/errors.js';

/** Parses input at the edge; a failure is a 400 naming each field and what is wrong with it. */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown): z.infer<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${issue.path.join('.') || 'input'}: ${issue.message}`);
  const fields = Object.fromEntries(
    result.error.issues.map((issue) => [issue.path.join('.') || 'input', issue.message]),
  );
  throw new BadRequestError(problems.join('; '), { fields });
}
