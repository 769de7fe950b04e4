import type { Request } from 'express';
import type { z } from 'zod';
import { BadRequestError, UnauthorizedError } from '../shared/errors.js';

/** The signed-in user; the guard ran before, so a missing one is a 401, not a crash. */
export function sessionUserOf(req: Request): Express.User {
  if (!req.user) throw new UnauthorizedError();
  return req.user;
}

/** Parses input with a zod schema; the first problem becomes a 400 naming the field. */
export function parseInput<Schema extends z.ZodType>(schema: Schema, data: unknown): z.output<Schema> {
  const parsed = schema.safeParse(data ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue?.path.join('.') || 'input';
  throw new BadRequestError(`${field}: ${issue?.message ?? 'is invalid'}`, { field });
}
