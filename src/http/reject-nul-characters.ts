import type { RequestHandler } from 'express';
import { BadRequestError } from '../shared/errors.js';

export const NUL_CHARACTER_MESSAGE = 'The request contains a NUL character (%00), which no field accepts.';

const MAX_DEPTH = 32;

/** True when a string anywhere in a parsed body holds U+0000. */
export function containsNulCharacter(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return value.includes('\0');
  if (typeof value !== 'object' || value === null || depth > MAX_DEPTH) return false;
  for (const [key, inner] of Object.entries(value)) {
    if (key.includes('\0') || containsNulCharacter(inner, depth + 1)) return true;
  }
  return false;
}

/**
 * PostgreSQL text cannot hold U+0000, and no field of this app means one, so a query or form
 * that carries it is refused here with a 400 before any service or query sees it (it used
 * to fail inside the database as "invalid byte sequence" and surface as a 500). Runs after
 * the body parsers. A NUL can only reach the query string percent-encoded, as %00.
 */
export const rejectNulCharacters: RequestHandler = (req, _res, next) => {
  if (req.originalUrl.includes('%00') || containsNulCharacter(req.body)) {
    next(new BadRequestError(NUL_CHARACTER_MESSAGE));
    return;
  }
  next();
};
