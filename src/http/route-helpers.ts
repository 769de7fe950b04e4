import type { Request } from 'express';
import { AppError, UnauthorizedError } from '../shared/errors.js';
import { wantsHtml } from './error-handler.js';

/** The signed-in user; the guard ran before, so a missing one is a 401, not a crash. */
export function sessionUserOf(req: Request): Express.User {
  if (!req.user) throw new UnauthorizedError();
  return req.user;
}

/**
 * A browser's form refused with one of `statuses`: routes show it again with the reason and
 * what was typed; anything else (and every JSON client) goes to the error handler.
 */
export function isRefusedForm(req: Request, error: unknown, statuses: readonly number[]): error is AppError {
  return error instanceof AppError && statuses.includes(error.status) && wantsHtml(req);
}

/** What a form or query field held, as text (undefined when absent or not text). */
export function typedIn(source: unknown, name: string): string | undefined {
  const value = (source as Record<string, unknown> | undefined)?.[name];
  return typeof value === 'string' ? value : undefined;
}
